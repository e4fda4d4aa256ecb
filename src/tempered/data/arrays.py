"""Load parsed MNIST arrays and index sets as float tensors, whole, in memory (no per-sample loader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tempered.artifacts import ArtifactError, read_arrays
from tempered.data.split import source_array

IMAGE_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_images(path: Path | str) -> dict[str, np.ndarray]:
    return read_arrays(path, required=IMAGE_KEYS)


def subset(images: dict[str, np.ndarray], split: dict[str, np.ndarray], name: str,
           limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of one index set as (N, 1, 28, 28) float32 in [0, 1] and int64 labels; first `limit` only."""
    if name not in split:
        raise ArtifactError(f"split has no set {name!r}; it has {sorted(split)}")
    idx = split[name][:limit] if limit else split[name]
    source = source_array(name)
    x = torch.from_numpy(images[f"x_{source}"][idx].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(images[f"y_{source}"][idx].astype(np.int64))
    return x, y
