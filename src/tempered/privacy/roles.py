"""Data roles of the membership experiments (issue 15), as index arrays into the training images (MNIST's, or
Fashion-MNIST's for a model on it), on Carlini et al. 2022's protocol (tensorflow/privacy, research/mi_lira_2021):
every membership model of one size trains on a random half of one pool, and any of them can be the target while
the others are its shadows.

- pool: 2 x size images of the split's 'train' set (never the validation digits nor the test set), seeded by
  (seed, size). Its first 2 x min(n_eval, size) images are the candidates every attack scores; the rest only
  fill the halves up to the size.
- model seed k: half of the candidates and half of the rest (models 2p and 2p + 1 take complementary halves of
  each, so a target's partner is OUT for every candidate the target is IN for), exactly `size` images with
  exactly min(n_eval, size) candidates IN. Its members are its IN candidates, its non-members its OUT candidates:
  one distribution, the training images; test images as non-members would let a distribution shift pass for
  leakage.
- calibration: the test set, where temperature scaling is fitted and training monitored.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Tags that keep the random streams of the pool and of the halves (of the candidates, of the rest) apart.
_POOL, _CANDIDATES, _REST = 0, 1, 2


def largest_size(n_train: int) -> int:
    """The largest membership size a 'train' set of n_train images allows: a pool of twice the size."""
    return n_train // 2


def membership_pool(split: Mapping[str, np.ndarray], size: int, n_eval: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(candidates, rest) of the pool of this size: int64 indices into the training images, in the pool's order."""
    train = np.asarray(split["train"], dtype=np.int64)
    if not 0 < size <= largest_size(len(train)):
        raise ValueError(f"membership.train_sizes: {size} is not in (0, {largest_size(len(train))}]: the pool of a "
                         f"size holds twice as many of the split's {len(train)} 'train' images")
    pool = np.random.default_rng([seed, _POOL, size]).permutation(train)[:2 * size]
    n_candidates = 2 * min(n_eval, size)
    return pool[:n_candidates], pool[n_candidates:]


def half_mask(n: int, k: int, size: int, seed: int, part: int) -> np.ndarray:
    """Which of n items model seed k takes: models 2p and 2p + 1 split one random order into complementary halves,
    so every item is IN for exactly one model of each pair (Carlini et al. 2022's random halves, balanced)."""
    order = np.random.default_rng([seed, part, size, k // 2]).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[order[:n // 2] if k % 2 == 0 else order[n // 2:]] = True
    return mask


def model_roles(split: Mapping[str, np.ndarray], size: int, k: int, n_eval: int,
                seed: int) -> dict[str, np.ndarray]:
    """{"pool_half", "candidates", "candidate_in", "members", "nonmembers", "calibration"} of model seed k of this
    size: pool_half (sorted) is what it trains on; candidates (the pool's order, the same for every k) are what
    the attacks score, candidate_in which of them it trained on; members / nonmembers (sorted) its IN / OUT
    candidates; calibration (sorted, into the test images) the test set."""
    candidates, rest = membership_pool(split, size, n_eval, seed)
    inside = half_mask(len(candidates), k, size, seed, _CANDIDATES)
    filler = rest[half_mask(len(rest), k, size, seed, _REST)]
    return {"pool_half": np.sort(np.concatenate([candidates[inside], filler])), "candidates": candidates,
            "candidate_in": inside, "members": np.sort(candidates[inside]),
            "nonmembers": np.sort(candidates[~inside]), "calibration": np.sort(np.asarray(split["test"], np.int64))}
