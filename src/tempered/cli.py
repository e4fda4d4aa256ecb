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


def cmd_fetch(args: argparse.Namespace) -> None:
    from tempered.steps import fetch_dataset_step

    fetch_dataset_step(args.config, args.dataset, Path(args.out), Path(args.manifest))


def cmd_split(args: argparse.Namespace) -> None:
    from tempered.steps import split_step

    split_step(args.config, Path(args.out), Path(args.manifest))


def cmd_train(args: argparse.Namespace) -> None:
    from tempered.steps import train_step

    train_step(args.config, args.model, args.seed, Path(args.images), Path(args.split),
               Path(args.checkpoint), Path(args.history), Path(args.soft_labels) if args.soft_labels else None)


def cmd_soft_labels(args: argparse.Namespace) -> None:
    from tempered.steps import soft_labels_step

    soft_labels_step(args.config, args.model, Path(args.checkpoint), Path(args.images), Path(args.split),
                     Path(args.out))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from tempered.steps import evaluate_step

    evaluate_step(args.config, args.model, Path(args.checkpoint), Path(args.images), Path(args.split),
                  Path(args.logits), Path(args.metrics))


def cmd_summarize(args: argparse.Namespace) -> None:
    from tempered.steps import summarize_step

    summarize_step(args.model, [Path(p) for p in args.metrics], Path(args.out))


def cmd_plot_training(args: argparse.Namespace) -> None:
    from tempered.steps import plot_training_step

    plot_training_step(args.model, [Path(p) for p in args.histories], Path(args.out))


def cmd_export_dvc(args: argparse.Namespace) -> None:
    from tempered.dvc_export import export_dvc_yaml

    export_dvc_yaml(args.config, Path(args.out), check=args.check)


def cmd_validate(args: argparse.Namespace) -> None:
    from tempered.config import load_config

    load_config(args.config)
    print(f"configuration valid: {' + '.join(args.config)}")


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

    p = step("fetch", cmd_fetch, "fetch, verify and parse a dataset's raw IDX files")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion_mnist"])
    p.add_argument("--out", required=True, help=".npz of parsed arrays")
    p.add_argument("--manifest", required=True, help="JSON: source used, digests, sizes, failed sources")

    p = step("split", cmd_split, "write the P1/P2, validation, training and test index sets")
    p.add_argument("--out", required=True)
    p.add_argument("--manifest", required=True)

    p = step("train", cmd_train, "train one model for one seed")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", required=True, type=int)
    for name in ("images", "split", "checkpoint", "history"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--soft-labels", help="a distillation student's targets: its teacher's soft labels (.npz)")

    p = step("soft-labels", cmd_soft_labels, "a distillation teacher's softmax at its temperature on its training set")
    p.add_argument("--model", required=True, help="the teacher, e.g. teacher_T20")
    for name in ("checkpoint", "images", "split", "out"):
        p.add_argument(f"--{name}", required=True)

    p = step("evaluate", cmd_evaluate, "logits and metrics of a trained model on its held-out sets")
    p.add_argument("--model", required=True)
    for name in ("checkpoint", "images", "split", "logits", "metrics"):
        p.add_argument(f"--{name}", required=True)

    p = step("summarize", cmd_summarize, "aggregate a model's metrics across seeds")
    p.add_argument("--model", required=True)
    p.add_argument("--metrics", required=True, nargs="+")
    p.add_argument("--out", required=True)

    p = step("plot-training", cmd_plot_training, "training-curve figure of a model across seeds")
    p.add_argument("--model", required=True)
    p.add_argument("--histories", required=True, nargs="+")
    p.add_argument("--out", required=True)

    p = step("export-dvc", cmd_export_dvc, "write dvc.yaml from the Snakemake DAG for these config files")
    p.add_argument("--out", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="fail if --out differs instead of writing it")

    p = step("validate-config", cmd_validate, "validate config files against the schema and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = args.config or ["config.yaml"]
    setup_logging(args.log)
    try:
        args.func(args)
    except EXPECTED_ERRORS as err:
        log.error("%s", err)
        return 2
    return 0

