"""Paired statistics for the question itself: does a change to the target (temperature scaling) change leakage?

Both variants score the same candidates, so the difference of a metric between them is estimated on the same
resamples (a paired bootstrap: members and non-members resampled separately, the same indices for both
variants), which cancels the candidates' own variation that two separate intervals would count twice. A
permutation null says whether an attack's best-threshold accuracy is distinguishable from a target that leaks
nothing: shuffling which candidates are members gives the accuracies of a blind attack on these scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tempered.ood.metrics import auroc, bootstrap_resamples, percentile_interval
from tempered.privacy.metrics import advantage, tpr_at_fpr
from tempered.reporting.stats import detectable_difference

Metric = Callable[[np.ndarray, np.ndarray], float]


def best_threshold_accuracy(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """Balanced accuracy of the best single threshold (Song et al. 2019's number): 0.5 + advantage / 2."""
    return 0.5 + 0.5 * advantage(members, nonmembers)


PAIRED_METRICS: dict[str, Metric] = {
    "auroc": auroc,
    "tpr_at_0.001_fpr": lambda m, n: tpr_at_fpr(m, n, 0.001),
    "tpr_at_0.01_fpr": lambda m, n: tpr_at_fpr(m, n, 0.01),
    "best_threshold_accuracy": best_threshold_accuracy,
}


@dataclass(frozen=True)
class PairedDifference:
    """metric(b) - metric(a) on the same candidates, its percentile bootstrap interval, and the smallest true
    difference this many candidates would detect with 80% power (two-sided, alpha 0.05; from the bootstrap
    standard error)."""

    difference: float
    low: float
    high: float
    detectable: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self, name: str) -> dict[str, float | bool]:
        return {f"{name}_change": self.difference, f"{name}_change_low": self.low,
                f"{name}_change_high": self.high, f"{name}_change_detectable": self.detectable,
                f"{name}_change_excludes_zero": self.excludes_zero}


def paired_difference(metric: Metric, members_a: np.ndarray, nonmembers_a: np.ndarray, members_b: np.ndarray,
                      nonmembers_b: np.ndarray, n_boot: int, level: float, seed: int) -> PairedDifference:
    """metric(b) - metric(a), with the candidates resampled together for both variants (seeded)."""
    arrays = [np.asarray(x, dtype=np.float64) for x in (members_a, nonmembers_a, members_b, nonmembers_b)]
    members_a, nonmembers_a, members_b, nonmembers_b = arrays
    if members_a.shape != members_b.shape or nonmembers_a.shape != nonmembers_b.shape:
        raise ValueError(f"paired variants must score the same candidates: members {members_a.shape} vs "
                         f"{members_b.shape}, non-members {nonmembers_a.shape} vs {nonmembers_b.shape}")
    point = metric(members_b, nonmembers_b) - metric(members_a, nonmembers_a)
    replicates = np.array([metric(members_b[m], nonmembers_b[n]) - metric(members_a[m], nonmembers_a[n])
                           for m, n in bootstrap_resamples(len(members_a), len(nonmembers_a), n_boot, seed)])
    low, high = percentile_interval(replicates, level)
    return PairedDifference(float(point), low, high, detectable_difference(float(replicates.std(ddof=1))))


def permutation_p_value(metric: Metric, members: np.ndarray, nonmembers: np.ndarray, n_permutations: int,
                        seed: int) -> float:
    """P(a blind attack does as well): the share of member/non-member relabellings of these scores whose metric
    reaches the observed one, counting the observed labelling itself ((1 + hits) / (1 + n), never 0)."""
    members, nonmembers = np.asarray(members, dtype=np.float64), np.asarray(nonmembers, dtype=np.float64)
    observed = metric(members, nonmembers)
    pooled = np.concatenate([members, nonmembers])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_permutations):
        order = rng.permutation(len(pooled))
        hits += metric(pooled[order[:len(members)]], pooled[order[len(members):]]) >= observed
    return (1 + hits) / (1 + n_permutations)
