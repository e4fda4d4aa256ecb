"""Out-of-distribution test sets for MNIST classifiers (Hendrycks & Gimpel 2017, section 3.1, "MNIST").

- fashion_mnist: the Fashion-MNIST test set (fetched and verified like MNIST, rule fetch_fashion_mnist);
- uniform_noise: i.i.d. U[0, 1] pixels (both papers);
- gaussian_noise_unclipped: i.i.d. N(mean, std^2) pixels left as drawn, Hendrycks & Gimpel's N(0, 1)
  (hendrycks/error-detection, Vision/MNIST_Softmax_Stats.ipynb: `np.random.normal(size=(10000, 28*28))`, fed
  to an MLP trained on raw [0, 1] pixels with no clipping or normalisation);
- gaussian_noise_clipped: i.i.d. N(mean, std^2) pixels clipped to [0, 1], DeVries & Taylor's N(0.5, 1)
  (uoguelph-mlrg/confidence_estimation, utils/datasets.py GaussianNoise: normal(0.5, 1.0) then np.clip(0, 1)).
  Each noise set is seeded with its own stream, so every model sees the same images;
- kmnist, emnist_letters, omniglot: the test sets torchvision downloads (it checks their md5 sums), when it can.
  One that cannot be had is skipped with its reason in the manifest, and the report lists it.

All images are (N, 1, 28, 28) float32, white strokes on black like MNIST, in [0, 1] except
gaussian_noise_unclipped, whose pixels fall outside it by design (the models see raw pixels: nothing rescales it).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Each noise set's stream of ood.noise.seed. Stream 1 was the one clipped Gaussian set before the two were told
# apart, so gaussian_noise_clipped keeps its images.
NOISE_STREAMS = {"uniform_noise": 0, "gaussian_noise_clipped": 1, "gaussian_noise_unclipped": 2}
# Whether a Gaussian set is clipped to the pixel range [0, 1]; its mean and std are ood.noise.<name>.
GAUSSIAN_CLIPPED = {"gaussian_noise_unclipped": False, "gaussian_noise_clipped": True}
NOISE_SETS = tuple(NOISE_STREAMS)
DOWNLOADED_SETS = ("kmnist", "emnist_letters", "omniglot")
ALL_SETS = ("fashion_mnist", *NOISE_SETS, *DOWNLOADED_SETS)
DOWNLOAD_TIMEOUT_S = 60


def noise_images(kind: str, cfg: Mapping[str, Any]) -> np.ndarray:
    """cfg: ood.noise (seed, size, and {mean, std} under each Gaussian set's name). Each kind has its own stream
    of the seed (NOISE_STREAMS)."""
    if kind not in NOISE_STREAMS:
        raise ValueError(f"unknown noise {kind!r}; known: {NOISE_SETS}")
    rng = np.random.default_rng([cfg["seed"], NOISE_STREAMS[kind]])
    shape = (cfg["size"], 1, 28, 28)
    if kind == "uniform_noise":
        return rng.random(shape, dtype=np.float32)
    values = rng.normal(cfg[kind]["mean"], cfg[kind]["std"], shape)
    if GAUSSIAN_CLIPPED[kind]:
        values = np.clip(values, 0.0, 1.0)
    return values.astype(np.float32)


def as_unit_images(uint8_images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 1, 28, 28) float32 in [0, 1]."""
    if uint8_images.ndim != 3 or uint8_images.shape[1:] != (28, 28):
        raise ValueError(f"expected (N, 28, 28) images, got {uint8_images.shape}")
    return (uint8_images.astype(np.float32) / 255.0)[:, None]


def emnist_upright(images: np.ndarray) -> np.ndarray:
    """EMNIST's IDX files store each image transposed relative to MNIST; transpose it back."""
    return np.ascontiguousarray(images.transpose(0, 2, 1))


def omniglot_as_mnist(images: np.ndarray) -> np.ndarray:
    """Omniglot's 105x105 black-on-white characters -> 28x28 white-on-black uint8, like MNIST digits."""
    from PIL import Image

    resized = [np.asarray(Image.fromarray(img).resize((28, 28), Image.Resampling.BILINEAR)) for img in images]
    return (255 - np.stack(resized)).astype(np.uint8)


def _kmnist(root: Path) -> np.ndarray:
    from torchvision import datasets

    return datasets.KMNIST(str(root), train=False, download=True).data.numpy()


def _emnist_letters(root: Path) -> np.ndarray:
    from torchvision import datasets

    return emnist_upright(datasets.EMNIST(str(root), split="letters", train=False, download=True).data.numpy())


def _omniglot(root: Path) -> np.ndarray:
    from torchvision import datasets

    # The evaluation alphabets ("background=False"), Hendrycks & Gimpel's choice; images are PIL mode "L".
    ds = datasets.Omniglot(str(root), background=False, download=True)
    return omniglot_as_mnist(np.stack([np.asarray(ds[i][0], dtype=np.uint8) for i in range(len(ds))]))


DOWNLOADERS: dict[str, Callable[[Path], np.ndarray]] = {
    "kmnist": _kmnist, "emnist_letters": _emnist_letters, "omniglot": _omniglot,
}


def fetch_downloaded_sets(names: Sequence[str], root: Path,
                          downloaders: Mapping[str, Callable[[Path], np.ndarray]] = DOWNLOADERS,
                          ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Try each named set; returns (uint8 arrays of those fetched, {name: status}) where status says
    "fetched" with the size, or "skipped" with the reason (the download root is not part of the reason,
    so the manifest does not depend on where the attempt ran)."""
    arrays, status = {}, {}
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        for name in names:
            try:
                images = np.asarray(downloaders[name](root / name), dtype=np.uint8)
                if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) == 0:
                    raise ValueError(f"expected (N, 28, 28) images, got {images.shape}")
            except Exception as err:  # network, checksum, format: every failure is a reason to report
                reason = f"{type(err).__name__}: {err}".replace(str(root), "<download dir>")
                reason = " ".join(reason.split())
                log.warning("OOD set %s skipped: torchvision could not provide it (%s)", name, reason)
                status[name] = {"status": "skipped", "reason": f"torchvision could not download it: {reason}"}
                continue
            arrays[name] = images
            status[name] = {"status": "fetched", "source": "torchvision", "size": int(len(images))}
            log.info("OOD set %s: %d images from torchvision", name, len(images))
    finally:
        socket.setdefaulttimeout(previous)
    return arrays, status
