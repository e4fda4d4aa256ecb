"""Aggregate one number across training seeds: mean, spread and a 95% interval."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# Two-sided 95% Student-t quantiles by degrees of freedom; beyond 30 the normal value is close enough.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t_quantile_95(dof: int) -> float:
    eligible = [d for d in _T95 if d <= dof]
    return _T95[max(eligible)] if dof <= 30 else 1.96


def across_seeds(values: Sequence[float]) -> dict[str, float | int]:
    """Mean, sample std and the t-interval of the mean. With one seed there is no spread: only the mean is
    given (no nulls, which `dvc metrics show` cannot parse)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = sum(values) / n
    if n == 1:
        return {"mean": mean, "n_seeds": 1}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_95(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "n_seeds": n}


def summarise_metrics(per_seed: Mapping[int, Mapping[str, Mapping[str, float]]]) -> dict:
    """{seed: {set: {metric: value}}} -> {set: {metric: across_seeds(...)}} for every numeric metric."""
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    return {
        split: {
            metric: across_seeds([per_seed[s][split][metric] for s in seeds])
            for metric, value in metrics.items() if isinstance(value, float)
        }
        for split, metrics in first.items()
    }
