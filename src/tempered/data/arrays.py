"""Load parsed MNIST arrays and index sets as float tensors, whole, in memory (no per-sample loader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tempered.artifacts import ArtifactError, read_arrays, read_json, sha256_file
from tempered.data.split import source_array

IMAGE_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10


def manifest_path(images_path: Path | str) -> Path:
    """The manifest the fetch step writes beside a dataset's arrays: mnist.npz -> mnist.manifest.json."""
    path = Path(images_path)
    return path.with_name(f"{path.stem}.manifest.json")


def _pixel_problem(x: np.ndarray) -> str | None:
    """What is wrong with an image array that is not the fetch step's uint8 0..255 (None: nothing)."""
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        return f"shape {x.shape}, expected (N, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]})"
    if x.dtype == np.uint8:
        return None
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        return f"dtype {x.dtype}, expected uint8 pixels 0..255"
    values = x.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        return f"{int((~finite).sum())} non-finite pixels (NaN or inf); expected uint8 pixels 0..255"
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    if low < 0 or high > 255:
        return f"pixels range over [{low:g}, {high:g}], outside 0..255 (dtype {x.dtype}, expected uint8)"
    if np.issubdtype(x.dtype, np.floating) and high <= 1:
        return (f"pixels range over [{low:g}, {high:g}]: already scaled to [0, 1]? expected uint8 0..255 "
                f"(scaling happens once, on load)")
    return f"dtype {x.dtype}, expected uint8 pixels 0..255"


def _label_problem(y: np.ndarray) -> str | None:
    if y.ndim != 1:
        return f"shape {y.shape}, expected (N,)"
    if not np.issubdtype(y.dtype, np.integer):
        return f"dtype {y.dtype}, expected integer class labels 0..{N_CLASSES - 1}"
    outside = (y < 0) | (y >= N_CLASSES)
    if outside.any():
        return (f"{int(outside.sum())} labels outside 0..{N_CLASSES - 1} (first: {int(y[outside][0])} at row "
                f"{int(np.flatnonzero(outside)[0])})")
    return None


def check_images(path: Path | str, images: dict[str, np.ndarray]) -> None:
    """Dtype, shape, range, finiteness, label range and row counts of a dataset's arrays; ArtifactError naming
    the file, the array and what is wrong."""
    for key in IMAGE_KEYS:
        problem = (_pixel_problem if key.startswith("x_") else _label_problem)(images[key])
        if problem:
            raise ArtifactError(f"artifact {path}: array {key!r}: {problem}")
    for split in ("train", "test"):
        n_x, n_y = len(images[f"x_{split}"]), len(images[f"y_{split}"])
        if n_x != n_y:
            raise ArtifactError(f"artifact {path}: {n_x} images in 'x_{split}' but {n_y} labels in 'y_{split}'")


def check_manifest_digest(path: Path | str) -> None:
    """The sha256 the fetch step recorded for the arrays (when its manifest lies beside them) must match."""
    manifest = manifest_path(path)
    if not manifest.exists():
        return
    recorded = read_json(manifest)
    expected = recorded.get("arrays_sha256") if isinstance(recorded, dict) else None
    if not isinstance(expected, str):
        raise ArtifactError(f"manifest {manifest} has no 'arrays_sha256' string for {path}")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"artifact {path}: sha256 mismatch with {manifest}: recorded {expected}, got {actual}; "
                            f"the arrays were altered after they were fetched")


def read_images(path: Path | str) -> dict[str, np.ndarray]:
    """A dataset's arrays (x_/y_ train/test), checked against its manifest's digest and for sane contents."""
    images = read_arrays(path, required=IMAGE_KEYS)  # first: a damaged file is named as such, not as a mismatch
    check_manifest_digest(path)
    check_images(path, images)
    return images


def subset(images: dict[str, np.ndarray], split: dict[str, np.ndarray], name: str,
           limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of one index set as (N, 1, 28, 28) float32 in [0, 1] and int64 labels; first `limit` only."""
    if name not in split:
        raise ArtifactError(f"split has no set {name!r}; it has {sorted(split)}")
    idx = split[name][:limit] if limit else split[name]
    source = source_array(name)
    rows = len(images[f"x_{source}"])
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ArtifactError(f"split set {name!r} is {idx.dtype} of shape {idx.shape}, expected integer row indexes")
    if len(idx) and (idx.min() < 0 or idx.max() >= rows):
        raise ArtifactError(f"split set {name!r} indexes rows {int(idx.min())}..{int(idx.max())}, but "
                            f"'x_{source}' has {rows} rows (a split made for another dataset?)")
    x = torch.from_numpy(images[f"x_{source}"][idx].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(images[f"y_{source}"][idx].astype(np.int64))
    return x, y
