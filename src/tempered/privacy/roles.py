"""Data roles of the membership experiments (issue 8), as index arrays into MNIST, one file per target size and
one per shadow, so that adding a size or a shadow adds files and changes none:

- held out: a seeded pool of n_eval P1 digits that no target trains on;
- target: a seeded subset of the rest of P1 of the size; members: a seeded sample of it (at most n_eval);
- nonmembers: as many digits of the held-out pool. Members and non-members come from one distribution (MNIST's
  training digits): test digits as non-members would let a distribution shift pass for leakage;
- calibration: the test set, where temperature scaling is fitted and training monitored;
- shadow k: shadow_in, a seeded subset of P2 of the target's size (its training set); shadow_members, a sample
  of it; shadow_out, as many P2 digits it never saw (its non-members).

Targets never see P2, the held-out pool or the test set, and shadows never see P1 or the test set, so members,
non-members, calibration and shadow data are pairwise disjoint. Random streams are keyed by (seed, role, size, k).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Role tags that keep the random streams of the pool, the targets and the shadows apart.
_POOL, _TARGET, _SHADOW = 0, 1, 2


def _sets(split: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(split[k], dtype=np.int64) for k in ("p1", "p2", "test"))


def _held_out_pool(p1: np.ndarray, n_eval: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n_eval P1 digits in random order (non-members are its first ones) and the sorted rest (targets' data)."""
    order = np.random.default_rng([seed, _POOL]).permutation(p1)
    return order[:n_eval], np.sort(order[n_eval:])


def _check_size(size: int, p1: np.ndarray, p2: np.ndarray, n_eval: int) -> None:
    largest = min(len(p1), len(p2)) - n_eval
    if not 0 < size <= largest:
        raise ValueError(f"membership.train_sizes: {size} is not in (0, {largest}] (a target trains on P1's "
                         f"{len(p1)} digits but n_eval={n_eval} held out; a shadow needs as many of P2's "
                         f"{len(p2)} plus n_eval held out)")


def target_roles(split: Mapping[str, np.ndarray], size: int, n_eval: int, seed: int) -> dict[str, np.ndarray]:
    """{"target", "members", "nonmembers", "calibration"}: sorted int64 indices (calibration into the test array,
    the others into the training array)."""
    p1, p2, test = _sets(split)
    _check_size(size, p1, p2, n_eval)
    pool, available = _held_out_pool(p1, n_eval, seed)
    rng = np.random.default_rng([seed, _TARGET, size])
    target = np.sort(rng.choice(available, size=size, replace=False))
    n = min(n_eval, size)
    return {"target": target, "members": np.sort(rng.choice(target, size=n, replace=False)),
            "nonmembers": np.sort(pool[:n]), "calibration": np.sort(test)}


def shadow_roles(split: Mapping[str, np.ndarray], size: int, k: int, n_eval: int,
                 seed: int) -> dict[str, np.ndarray]:
    """{"shadow_in", "shadow_members", "shadow_out", "calibration"} of shadow k for targets of this size."""
    p1, p2, test = _sets(split)
    _check_size(size, p1, p2, n_eval)
    rng = np.random.default_rng([seed, _SHADOW, size, k])
    order = rng.permutation(p2)
    n = min(n_eval, size)
    shadow_in = np.sort(order[:size])
    return {"shadow_in": shadow_in, "shadow_members": np.sort(rng.choice(shadow_in, size=n, replace=False)),
            "shadow_out": np.sort(order[size:size + n]), "calibration": np.sort(test)}
