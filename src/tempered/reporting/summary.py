"""Aggregate one number across training seeds: mean, spread and a 95% interval (tempered.reporting.stats), as the
summary JSON spells them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tempered.reporting.stats import mean_interval


def across_seeds(values: Sequence[float]) -> dict[str, float | int]:
    """Mean, sample std and the t-interval of the mean. With one seed there is no spread: only the mean is
    given (no nulls, which `dvc metrics show` cannot parse)."""
    stats = mean_interval(values)
    if stats.n == 1:
        return {"mean": stats.mean, "n_seeds": 1}
    return {"mean": stats.mean, "std": stats.std, "ci95_low": stats.low, "ci95_high": stats.high, "n_seeds": stats.n}


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
