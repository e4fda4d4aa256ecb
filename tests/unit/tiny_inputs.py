"""Inputs small enough for a real step to run in seconds: an untrained CNN checkpoint and random digits, or real
digits with the pipeline's split."""

from pathlib import Path

import numpy as np

from tempered.artifacts import write_arrays, write_checkpoint
from tempered.data.split import make_split
from tempered.models import build_model


def write_tiny_cnn_and_digits(place: Path, cnn_config: dict) -> tuple[Path, Path]:
    """model.pt (the configured CNN, untrained) and mnist.npz (5 training and 20 test images, uint8) in `place`."""
    model = build_model(cnn_config)
    write_checkpoint(place / "model.pt", model.state_dict(), {"model_config": cnn_config, "provenance": {"seed": 0}})
    rng = np.random.default_rng(0)
    write_arrays(place / "mnist.npz", {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), "y_train": np.arange(5, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), "y_test": np.arange(20, dtype=np.uint8) % 10,
    })
    return place / "model.pt", place / "mnist.npz"


def write_digits_and_split(place: Path, arrays: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """mnist.npz (the given arrays) and split.npz (the pipeline's split: 5,000 held out, seed 0) in `place`: the
    inputs of a real train step."""
    write_arrays(place / "mnist.npz", arrays)
    write_arrays(place / "split.npz", make_split(5000, 0))
    return place / "mnist.npz", place / "split.npz"


def write_membership_models(place: Path, cnn_config: dict, model: str, seeds: range, n_candidates: int = 16,
                            n_images: int = 40) -> None:
    """What membership-outputs reads, for model seeds `seeds` of one recipe: mnist.npz (n_images random digits in
    each array), roles/seed<k>.npz (the candidates are the first n_candidates training digits; seeds 2p and 2p + 1
    take complementary halves) and model/seed<k>.pt (an untrained CNN whose provenance names the model, the seed
    and its roles' digest, as a train step records them)."""
    from tempered.artifacts import sha256_file
    from tempered.privacy.roles import half_mask

    rng = np.random.default_rng(0)
    write_arrays(place / "mnist.npz", {
        f"{kind}_{part}": (rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8) if kind == "x"
                           else np.arange(n_images, dtype=np.uint8) % 10)
        for kind in ("x", "y") for part in ("train", "test")})
    candidates = np.arange(n_candidates, dtype=np.int64)
    (place / "roles").mkdir(exist_ok=True)
    (place / "model").mkdir(exist_ok=True)
    for k in seeds:
        inside = half_mask(n_candidates, k, n_candidates, 0, 1)
        roles = place / "roles" / f"seed{k}.npz"
        write_arrays(roles, {"pool_half": np.sort(candidates[inside]), "candidates": candidates,
                             "candidate_in": inside, "members": np.sort(candidates[inside]),
                             "nonmembers": np.sort(candidates[~inside]),
                             "calibration": np.arange(n_images, dtype=np.int64)})
        write_checkpoint(place / "model" / f"seed{k}.pt", build_model(cnn_config).state_dict(),
                         {"model": model, "model_config": cnn_config,
                          "provenance": {"seed": k, "data_digests": {roles.name: sha256_file(roles)}}})
