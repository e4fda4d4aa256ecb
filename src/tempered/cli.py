"""`python -m tempered <step>`: one command per pipeline step. Parses arguments, calls the library, writes
artifacts. Snakemake rules and DVC stages run exactly these commands."""

from __future__ import annotations

import argparse
import logging
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


def stage_modules():
    """Each pipeline stage's module registers its own steps (tempered.steps.STAGES)."""
    import importlib

    from tempered.steps import STAGES

    return [importlib.import_module(f"tempered.steps.{name}") for name in STAGES]


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
    return parser


def use_config_threads(config_files: Sequence[str]) -> None:
    """Every step computes with compute.threads torch threads, whatever OMP_NUM_THREADS the engine set:
    backward passes are not bit-identical across thread counts, and both engines must agree."""
    import torch

    from tempered.config import load_config

    torch.set_num_threads(load_config(config_files)["compute"]["threads"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = args.config or ["config.yaml"]
    setup_logging(args.log)
    try:
        if args.step not in ("export-dvc", "validate-config"):
            use_config_threads(args.config)
        args.func(args)
    except EXPECTED_ERRORS as err:
        log.error("%s", err)
        return 2
    return 0

