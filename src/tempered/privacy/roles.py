"""Data roles of the membership experiments (issue 8), as index arrays into the training images (MNIST's, or
Fashion-MNIST's for a target on it), one file per target size and one per shadow, so that adding a size or a
shadow adds files and changes none:

- held out: a seeded pool of n_eval P1 images that no target trains on;
- target: a seeded subset of the rest of P1 of the size; members: a seeded sample of it (at most n_eval);
- nonmembers: as many images of the held-out pool. Members and non-members come from one distribution (the
  training images): test images as non-members would let a distribution shift pass for leakage. Members then
  non-members are the target's candidates;
- calibration: the test set, where temperature scaling is fitted and training monitored;
- shadow k (Carlini et al. 2022's online setting): trains on a random half of the candidates (shadows 2p and
  2p + 1 split them into complementary halves, so each candidate is IN for half of the shadows) and on P2
  images up to the target's size; its members for the threshold attacks are its IN candidates, its non-members
  its OUT candidates.

A target trains on its own set only (never P2, the held-out pool or the test set); a shadow on candidates and P2
only (never a target's training images other than its members, nor the test set). Random streams are keyed by
(seed, role, size, k or pair).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Role tags that keep the random streams of the pool, the targets and the shadows (their halves of the candidates,
# their P2 filler) apart.
_POOL, _TARGET, _SHADOW, _FILLER = 0, 1, 2, 3


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
                         f"{len(p1)} images but n_eval={n_eval} held out; a shadow fills up from P2's {len(p2)})")


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


def _candidates(split: Mapping[str, np.ndarray], size: int, n_eval: int, seed: int) -> np.ndarray:
    """The target's candidates of this size in the attack's order: its members, then its non-members."""
    roles = target_roles(split, size, n_eval, seed)
    return np.concatenate([roles["members"], roles["nonmembers"]])


def candidate_in(n_candidates: int, k: int, size: int, seed: int) -> np.ndarray:
    """Which candidates shadow k trains on: shadows 2p and 2p + 1 split the candidates into two random halves,
    one each, so every candidate is IN for exactly half of an even number of shadows (an odd last shadow takes a
    half alone) and every shadow for exactly half of the candidates (Carlini et al. 2022's random halves, balanced)."""
    order = np.random.default_rng([seed, _SHADOW, size, k // 2]).permutation(n_candidates)
    mine = order[:n_candidates // 2] if k % 2 == 0 else order[n_candidates // 2:]
    mask = np.zeros(n_candidates, dtype=bool)
    mask[mine] = True
    return mask


def shadow_roles(split: Mapping[str, np.ndarray], size: int, k: int, n_eval: int,
                 seed: int) -> dict[str, np.ndarray]:
    """{"shadow_in", "shadow_members", "shadow_out", "calibration", "candidate_in"} of shadow k for targets of this
    size: it trains on its half of the targets' candidates (candidate_in, in the order members then non-members)
    and on P2 digits up to the size; its members for the threshold attacks are its IN candidates, its non-members
    its OUT candidates (as many)."""
    p1, p2, test = _sets(split)
    _check_size(size, p1, p2, n_eval)
    candidates = _candidates(split, size, n_eval, seed)
    mask = candidate_in(len(candidates), k, size, seed)
    filler = np.random.default_rng([seed, _SHADOW, size, k, _FILLER]).permutation(p2)[:size - int(mask.sum())]
    return {"shadow_in": np.sort(np.concatenate([candidates[mask], filler])),
            "shadow_members": np.sort(candidates[mask]), "shadow_out": np.sort(candidates[~mask]),
            "calibration": np.sort(test), "candidate_in": mask}
