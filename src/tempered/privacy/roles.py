"""Data roles of the membership experiments, as index arrays into MNIST (issue 8):

- target training sets: seeded subsets of P1, one per configured size (a size of None = all of P1);
- members: a seeded sample of each target's own training set;
- non-members: the first part of the test set, as many as there are members (balanced evaluation);
- calibration: the rest of the test set, where a target's temperature scaling is fitted (none of the above);
- shadow training sets: seeded halves of P2, one per shadow model; each shadow's other half is its non-members.

Targets never see P2 or the test set, shadows never see P1 or the test set, so every role is disjoint from
the ones it is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def membership_roles(split: Mapping[str, np.ndarray], train_sizes: Sequence[int | None], n_eval: int,
                     n_shadows: int, seed: int) -> dict[str, np.ndarray]:
    """Every role as sorted int64 indices (train-array indices, except 'nonmembers' and 'calibration', which
    index the test array). Keys: target_<size>, members_<size>, nonmembers_<size>, calibration, shadow_<k>_in,
    shadow_<k>_out. Raises ValueError naming the size that does not fit."""
    rng = np.random.default_rng(seed)
    p1, p2, test = (np.asarray(split[k], dtype=np.int64) for k in ("p1", "p2", "test"))
    if n_eval > len(test) // 2:
        raise ValueError(f"membership.n_eval {n_eval} leaves too little of the {len(test)} test samples for "
                         f"calibration (at most {len(test) // 2})")
    roles: dict[str, np.ndarray] = {"calibration": np.sort(test[n_eval:])}
    for size in train_sizes:
        tag = "all" if size is None else str(size)
        if size is not None and not 0 < size <= len(p1):
            raise ValueError(f"membership.train_sizes: {size} is not in (0, {len(p1)}] (the size of P1)")
        target = p1 if size is None else np.sort(rng.choice(p1, size=size, replace=False))
        n = min(n_eval, len(target))
        roles[f"target_{tag}"] = target
        roles[f"members_{tag}"] = np.sort(rng.choice(target, size=n, replace=False))
        roles[f"nonmembers_{tag}"] = np.sort(test[:n])
    for k in range(n_shadows):
        order = rng.permutation(p2)
        half = len(order) // 2
        roles[f"shadow_{k}_in"], roles[f"shadow_{k}_out"] = np.sort(order[:half]), np.sort(order[half:])
    return roles
