"""The mean of a sample and its two-sided 95% Student-t interval: the one interval every number aggregated over
training seeds carries (seed summaries, claim verdicts, the membership report); and the smallest difference a
test at that level finds with 80% power."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# t(0.975, df) for df 1-30 as standard tables print it (3 decimals; each is the exact quantile rounded). The
# pipeline's published intervals were computed with these rounded values, so they stay: a change of the factor
# would change every interval at 2 or 3 seeds (what config.yaml runs) in the last digits.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045, 30: 2.042}
# t(0.80, df), likewise: the power term of the detectable difference.
T_80 = {1: 1.376, 2: 1.061, 3: 0.978, 4: 0.941, 5: 0.920, 6: 0.906, 7: 0.896, 8: 0.889, 9: 0.883, 10: 0.879,
        11: 0.876, 12: 0.873, 13: 0.870, 14: 0.868, 15: 0.866, 16: 0.865, 17: 0.863, 18: 0.862, 19: 0.861,
        20: 0.860, 21: 0.859, 22: 0.858, 23: 0.858, 24: 0.857, 25: 0.856, 26: 0.856, 27: 0.855, 28: 0.855,
        29: 0.854, 30: 0.854}
_Z_975 = 1.959963984540054
_Z_80 = 0.8416212335729143


def t_975(df: int) -> float:
    """The 0.975 quantile of Student's t with df degrees of freedom: the half-width factor of a 95% interval.

    Past the table, the Cornish-Fisher expansion of t around the normal quantile (Abramowitz & Stegun 26.7.5),
    within 2e-6 of the exact value from df 31 on: never the normal 1.96 itself, which is too narrow at any df.
    """
    return _t_quantile(df, T_975, _Z_975)


def _t_quantile(df: int, table: dict[int, float], z: float) -> float:
    """The tabled quantile for df up to 30, past it the Cornish-Fisher expansion around the normal's z."""
    if df < 1:
        raise ValueError(f"a t-interval needs at least 2 values (df >= 1), got df={df}")
    if df in table:
        return table[df]
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def detectable_difference(standard_error: float, df: int | None = None) -> float:
    """The smallest true difference that a two-sided test at level 0.05 finds with 80% power, for an estimate
    with this standard error: (q_0.975 + q_0.80) x standard_error, with normal quantiles (2.80) when df is None
    (a bootstrap's standard error over many candidates) and Student's t with df degrees of freedom otherwise (a
    mean over few seeds: 5.36 at 3 seeds, where the normal's 2.80 would claim twice the power we have)."""
    if df is None:
        return (_Z_975 + _Z_80) * standard_error
    return (t_975(df) + _t_quantile(df, T_80, _Z_80)) * standard_error


@dataclass(frozen=True)
class MeanInterval:
    """A sample's mean; with two or more values, its sample standard deviation and 95% t-interval of the mean."""

    mean: float
    n: int
    std: float | None = None
    low: float | None = None
    high: float | None = None


def mean_interval(values: Sequence[float]) -> MeanInterval:
    """Mean, sample standard deviation (n - 1) and the 95% t-interval of the mean. One value has no spread to
    estimate: only its mean is given.

    Plain left-to-right sums, in this order: the bytes of every metrics file written so far depend on it."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = sum(values) / n
    if n == 1:
        return MeanInterval(mean, 1)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_975(n - 1) * std / math.sqrt(n)
    return MeanInterval(mean, n, std, mean - half, mean + half)
