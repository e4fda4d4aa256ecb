"""Index sets over MNIST: P1/P2 (Szegedy et al. 2014, section 4.3), a validation hold-out, and the test set.

The rule later stages rely on: a model is never calibrated, tuned or evaluated on data it trained on.
HELD_OUT says, for each training set, which sets that model may be calibrated, tuned or evaluated on.
"""

from __future__ import annotations

import numpy as np

from tempered.config import MNIST_TRAIN_SIZE

MNIST_TEST_SIZE = 10_000

# Training sets a model may use, and the sets held out from each. Szegedy trains on all 60k ("full") and
# on P1 or P2, which together cover the 60k: for "full" only the test set is held out, for P1 it is P2.
HELD_OUT = {
    "train": ("val", "test"),
    "full": ("test",),
    "p1": ("p2", "test"),
    "p2": ("p1", "test"),
}
# Which array of the MNIST file each index set points into.
SOURCE_ARRAY = {"train": "train", "full": "train", "p1": "train", "p2": "train", "val": "train", "test": "test"}

# Membership-inference roles (tempered.privacy.roles) are index sets too, in files of their own; the one drawn
# from the test set is listed here, every other role indexes the training array. A model trained on a role is
# monitored on the role "calibration", the test digits no membership evaluation uses.
TEST_ROLES = ("calibration",)
ROLE_MONITOR = "calibration"
# The monitor of a role-trained model reads this many calibration digits: a progress signal in history.csv only
# (weights never depend on it), kept small because membership targets train on a few thousand digits and the
# whole calibration set per epoch would cost more than the training itself.
ROLE_MONITOR_LIMIT = 1000


def source_array(name: str) -> str:
    """"train" or "test": the MNIST array an index set (a split set or a membership role) points into."""
    return SOURCE_ARRAY.get(name, "test" if name in TEST_ROLES else "train")


def monitor_set(train_set: str, limit_eval: int | None) -> tuple[str, int | None]:
    """The held-out set a model's training history is measured on (never its own training data), and how many
    of its samples: evaluation.limit_eval for a split set, ROLE_MONITOR_LIMIT for a membership role."""
    if train_set in HELD_OUT:
        return HELD_OUT[train_set][0], limit_eval
    return ROLE_MONITOR, min(limit_eval or ROLE_MONITOR_LIMIT, ROLE_MONITOR_LIMIT)


def make_split(validation_size: int, seed: int, n_train: int = MNIST_TRAIN_SIZE,
               n_test: int = MNIST_TEST_SIZE) -> dict[str, np.ndarray]:
    """Sorted index arrays for every set; P1/P2 halve the shuffled training set, val is drawn independently."""
    if not 0 < validation_size < n_train:
        raise ValueError(f"validation_size {validation_size} must be in (0, {n_train})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_train)
    half = n_train // 2
    val = np.sort(rng.permutation(n_train)[:validation_size])
    return {
        "full": np.arange(n_train, dtype=np.int64),
        "p1": np.sort(order[:half]).astype(np.int64),
        "p2": np.sort(order[half:]).astype(np.int64),
        "val": val.astype(np.int64),
        "train": np.setdiff1d(np.arange(n_train), val).astype(np.int64),
        "test": np.arange(n_test, dtype=np.int64),
    }


def describe_split(split: dict[str, np.ndarray]) -> dict:
    return {
        "sizes": {name: int(len(idx)) for name, idx in split.items()},
        "held_out": {name: list(sets) for name, sets in HELD_OUT.items()},
        "indexes_into": SOURCE_ARRAY,
    }
