"""`python -m tempered <step>`: one command per pipeline step. Parses arguments, calls the library, writes
artifacts. Snakemake rules and DVC stages run exactly these commands."""

from __future__ import annotations

import argparse
import errno
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from tempered.artifacts import ArtifactError
from tempered.config import ConfigError
from tempered.data.idx import IdxError
from tempered.data.sources import DataSourceError

log = logging.getLogger("tempered")

EXPECTED_ERRORS = (ConfigError, ArtifactError, IdxError, DataSourceError, FloatingPointError)


def setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_export_dvc(args: argparse.Namespace) -> None:
    from tempered.dvc_export import export_dvc_yaml

    export_dvc_yaml(args.config, Path(args.out), check=args.check)


def cmd_validate(args: argparse.Namespace) -> None:
    from tempered.config import load_config

    load_config(args.config)
    print(f"configuration valid: {' + '.join(args.config)}")


def cmd_preflight(args: argparse.Namespace) -> int:
    from tempered.preflight import run

    return run(args.config)


def cmd_costs(args: argparse.Namespace) -> None:
    from tempered.costs import write_cost_report
    from tempered.paths import COST_RECORDS, cost_label

    label = cost_label(args.config)
    print(f"cost table: {write_cost_report(Path(COST_RECORDS), label, Path(args.out))}")


def cmd_publish_reference(args: argparse.Namespace) -> None:
    from tempered.stages.report.publish import publish_reference

    copied = publish_reference(Path(args.results), Path(args.out), args.preset)
    print(f"published {len(copied)} files of {args.results} to {args.out}")


# Commands about the run rather than steps of it: no compute threads to set.
RUN_COMMANDS = ("export-dvc", "validate-config", "preflight", "costs", "publish-reference")


def stage_modules():
    """Each pipeline stage's steps module registers its own steps (tempered.stages.STAGES)."""
    import importlib

    from tempered.stages import STAGES

    return [importlib.import_module(f"tempered.stages.{name}.steps") for name in STAGES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tempered", description=__doc__)
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")

    def step(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--config", action="append", metavar="YAML",
                       help="config file; repeat to overlay presets in order (default: config.yaml)")
        p.add_argument("--log", metavar="FILE", help="also write the log to FILE")
        return p

    for module in stage_modules():
        module.register(step)

    p = step("export-dvc", cmd_export_dvc, "write dvc.yaml from the Snakemake DAG for these config files")
    p.add_argument("--out", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="fail if --out differs instead of writing it")

    p = step("validate-config", cmd_validate, "validate config files against the schema and exit")

    step("preflight", cmd_preflight, "say what `make reproduce` will run (jobs, expected time here) before it starts")

    p = step("costs", cmd_costs, "per-rule cost table and figure of the last Snakemake run of these config files")
    p.add_argument("--out", default="results/costs", help="directory for <preset>.md, .csv and .png")

    p = step("publish-reference", cmd_publish_reference,
             "copy a finished run's REPORT.md, the figures it shows and its tables into a reference directory")
    p.add_argument("--results", default="results", help="the run's results directory")
    p.add_argument("--out", required=True, help="the reference directory, e.g. docs/reference/quick")
    p.add_argument("--preset", help="the preset the run used: refuse a run of any other config files")
    return parser


def use_config_threads(config_files: Sequence[str]) -> None:
    """Every step computes with compute.threads torch threads, whatever OMP_NUM_THREADS the engine set:
    backward passes are not bit-identical across thread counts, and both engines must agree."""
    import torch

    from tempered.config import load_config

    torch.set_num_threads(load_config(config_files)["compute"]["threads"])


# artifacts.atomic_path writes <dir>/.<name>.<random>.tmp and renames it onto <dir>/<name>.
_TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")


def disk_full_message(step: str, err: OSError) -> str:
    """ENOSPC names the artifact being written (the OS names the temporary file beside it, or none at all)."""
    if err.filename is None:
        return f"{step}: disk full (no space left on device) while writing its outputs; free space and rerun"
    path = Path(err.filename)
    match = _TEMPORARY_NAME.match(path.name)
    target = path.with_name(match["name"]) if match else path
    return f"{step}: disk full (no space left on device) writing {target}; free space and rerun"


def is_out_of_memory(err: BaseException) -> bool:
    """numpy raises MemoryError; torch raises OutOfMemoryError on a GPU and a plain RuntimeError on the CPU."""
    import torch

    return isinstance(err, MemoryError | torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


_SIZE_KEY = re.compile(r"^(batch_size|samples|gradient_samples|example_images|n_eval|n_boot|[a-z_]*_sizes?|"
                       r"limit_[a-z_]+)$")


def size_keys(args: argparse.Namespace) -> list[str]:
    """The config keys this step reads that set how much it holds in memory (batch sizes, sample counts)."""
    from tempered.config import load_config
    from tempered.nested import leaves
    from tempered.step_params import lookup, step_config_keys

    try:
        config = load_config(args.config)
        wildcards = {name: getattr(args, name) for name in ("model", "attack", "dataset") if hasattr(args, name)}
        keys = step_config_keys(args.step, config, **wildcards)
    except (KeyError, ValueError):  # a step that reads no config, or a model the config does not know
        return []
    return sorted({leaf for key in keys for leaf in leaves(lookup(config, key), key)
                   if _SIZE_KEY.match(leaf.rsplit(".", 1)[-1])})


def out_of_memory_message(args: argparse.Namespace, err: BaseException) -> str:
    keys = size_keys(args)
    lower = f"lower the sizes it uses ({', '.join(keys)})" if keys else "lower the sizes in its config section"
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{args.step}: out of memory ({detail}); {lower}, or run it where more memory is free"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = args.config or ["config.yaml"]
    setup_logging(args.log)
    try:
        if args.step not in RUN_COMMANDS:
            use_config_threads(args.config)
        status = args.func(args)
    except EXPECTED_ERRORS as err:
        log.error("%s", err)
        return 2
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        log.error("%s", disk_full_message(args.step, err))
        return 2
    except (MemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
        log.error("%s", out_of_memory_message(args, err))
        return 2
    return status or 0

