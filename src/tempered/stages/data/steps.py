"""Data steps (workflow/rules/data.smk): fetch a dataset's raw files and write the index split."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from tempered.artifacts import sha256_file, write_arrays, write_json
from tempered.data.sources import fetch_dataset
from tempered.data.split import describe_split, make_split
from tempered.provenance import provenance
from tempered.step_params import step_config


def fetch_dataset_step(config_files: Sequence[str], dataset: str, out: Path, manifest: Path) -> None:
    config = step_config(config_files, "fetch", dataset=dataset)
    cfg = config["data"][dataset]
    with tempfile.TemporaryDirectory(prefix=f"tempered-{dataset}-") as workdir:
        result = fetch_dataset(dataset, cfg, Path(workdir))
    raw = result.arrays
    write_arrays(out, {
        "x_train": raw["train-images-idx3-ubyte"], "y_train": raw["train-labels-idx1-ubyte"],
        "x_test": raw["t10k-images-idx3-ubyte"], "y_test": raw["t10k-labels-idx1-ubyte"],
    })
    write_json(manifest, {
        "dataset": dataset,
        "source": result.source,
        "raw_sha256": result.digests,
        "shapes": {name: list(array.shape) for name, array in raw.items()},
        "failed_sources": result.failures,
        "arrays_sha256": sha256_file(out),
        "provenance": provenance(cfg, seed=None, device="cpu"),
    })


def split_step(config_files: Sequence[str], out: Path, manifest: Path) -> None:
    config = step_config(config_files, "split")
    cfg = config["split"]
    split = make_split(cfg["validation_size"], cfg["seed"])
    write_arrays(out, split)
    write_json(manifest, {**describe_split(split), "provenance": provenance(cfg, seed=cfg["seed"], device="cpu")})


def register(add_step) -> None:
    """This stage's CLI steps: fetch a dataset, split it."""
    p = add_step("fetch", lambda a: fetch_dataset_step(a.config, a.dataset, Path(a.out), Path(a.manifest)),
                 "fetch, verify and parse a dataset's raw IDX files")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion_mnist"])
    p.add_argument("--out", required=True, help=".npz of parsed arrays")
    p.add_argument("--manifest", required=True, help="JSON: source used, digests, sizes, failed sources")

    p = add_step("split", lambda a: split_step(a.config, Path(a.out), Path(a.manifest)),
                 "write the P1/P2, validation, training and test index sets")
    p.add_argument("--out", required=True)
    p.add_argument("--manifest", required=True)
