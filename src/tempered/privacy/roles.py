"""Data roles of the membership experiments (issue 8), as index arrays into MNIST, one file per target size and
one per shadow, so that adding a size or a shadow adds files and changes none:

- target: a seeded subset of P1 of the size; members: a seeded sample of it (at most n_eval);
- nonmembers: as many digits of a seeded pool of n_eval test digits (the evaluation is balanced);
- calibration: the test digits outside that pool, where temperature scaling is fitted and training monitored;
- shadow k: shadow_in, a seeded subset of P2 of the target's size (its training set); shadow_members, a sample
  of it; shadow_out, as many P2 digits it never saw (its non-members).

Targets never see P2 or the test set and shadows never see P1 or the test set, so members, non-members,
calibration and shadow data are pairwise disjoint. Random streams are keyed by (seed, role, size, k).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Role tags that keep the random streams of the pool, the targets and the shadows apart.
_POOL, _TARGET, _SHADOW = 0, 1, 2


def _sets(split: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(split[k], dtype=np.int64) for k in ("p1", "p2", "test"))


def _test_pool(test: np.ndarray, n_eval: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n_eval test digits in random order (non-members are its first ones) and the sorted rest (calibration)."""
    if not 0 < n_eval <= len(test) // 2:
        raise ValueError(f"membership.n_eval {n_eval} must be in (0, {len(test) // 2}]: the rest of the "
                         f"{len(test)} test digits is the calibration set")
    pool = np.random.default_rng([seed, _POOL]).permutation(test)[:n_eval]
    return pool, np.setdiff1d(test, pool)


def _check_size(size: int, p1: np.ndarray, p2: np.ndarray, n_eval: int) -> None:
    largest = min(len(p1), len(p2) - n_eval)
    if not 0 < size <= largest:
        raise ValueError(f"membership.train_sizes: {size} is not in (0, {largest}] (P1 has {len(p1)} digits; a "
                         f"shadow needs as many of P2's {len(p2)} plus n_eval={n_eval} held out)")


def target_roles(split: Mapping[str, np.ndarray], size: int, n_eval: int, seed: int) -> dict[str, np.ndarray]:
    """{"target", "members", "nonmembers", "calibration"}: sorted int64 indices (the last two into the test
    array, the others into the training array)."""
    p1, p2, test = _sets(split)
    _check_size(size, p1, p2, n_eval)
    pool, calibration = _test_pool(test, n_eval, seed)
    rng = np.random.default_rng([seed, _TARGET, size])
    target = np.sort(rng.choice(p1, size=size, replace=False))
    n = min(n_eval, size)
    return {"target": target, "members": np.sort(rng.choice(target, size=n, replace=False)),
            "nonmembers": np.sort(pool[:n]), "calibration": calibration}


def shadow_roles(split: Mapping[str, np.ndarray], size: int, k: int, n_eval: int,
                 seed: int) -> dict[str, np.ndarray]:
    """{"shadow_in", "shadow_members", "shadow_out", "calibration"} of shadow k for targets of this size."""
    p1, p2, test = _sets(split)
    _check_size(size, p1, p2, n_eval)
    _, calibration = _test_pool(test, n_eval, seed)
    rng = np.random.default_rng([seed, _SHADOW, size, k])
    order = rng.permutation(p2)
    n = min(n_eval, size)
    shadow_in = np.sort(order[:size])
    return {"shadow_in": shadow_in, "shadow_members": np.sort(rng.choice(shadow_in, size=n, replace=False)),
            "shadow_out": np.sort(order[size:size + n]), "calibration": calibration}
