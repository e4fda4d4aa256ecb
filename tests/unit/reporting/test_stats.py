"""The one interval over seeds: Student-t quantiles against published tables and scipy, a hand-computed interval,
and every caller (seed summaries, claims, the membership report) giving the bytes it gave before it shared it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tempered import paths
from tempered.reporting.stats import T_80, T_975, MeanInterval, detectable_difference, mean_interval, t_975
from tempered.reporting.summary import across_seeds
from tempered.stages.membership import report as membership_report
from tempered.stages.report.claims import Metric, measure


@pytest.mark.parametrize(("df", "quantile"), [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (12, 2.179),
                                              (15, 2.131), (20, 2.086), (25, 2.060), (30, 2.042)])
def test_the_quantiles_are_the_published_table(df, quantile):
    assert t_975(df) == quantile


def test_every_tabled_quantile_is_the_exact_one_rounded_and_the_expansion_is_exact_beyond():
    """The table through df 30 (the old summary table jumped from df 10 to 15 to 20 to 30 and used the lower
    df's wider value in between, then 1.96 past 30); Cornish-Fisher beyond, with no jump at 31."""
    from scipy import stats

    for df, quantile in T_975.items():
        assert quantile == round(float(stats.t.ppf(0.975, df)), 3), df
    for df in (31, 32, 40, 63, 100, 1000):
        assert t_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-5), df
    assert t_975(30) > t_975(31) > t_975(1000) > 1.96


def test_the_power_quantiles_are_exact_rounded_and_the_expansion_exact_beyond():
    from scipy import stats

    for df, quantile in T_80.items():
        assert quantile == round(float(stats.t.ppf(0.80, df)), 3), df
    for df in (31, 40, 100, 1000):
        assert detectable_difference(1.0, df) == pytest.approx(stats.t.ppf(0.975, df) + stats.t.ppf(0.80, df),
                                                               abs=1e-5), df
    assert detectable_difference(1.0) == pytest.approx(stats.norm.ppf(0.975) + stats.norm.ppf(0.80), abs=1e-9)


@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_a_true_difference_of_the_detectable_size_is_found_four_times_in_five(n):
    """The power of the two-sided one-sample t-test over n seeds (noncentral t, exact) at the difference the
    report calls detectable: 0.77 at 3 seeds, 0.79-0.80 beyond. The normal factor 2.80 at 3 seeds gives 0.35."""
    from scipy import stats

    df, standard_error = n - 1, 0.01
    critical = stats.t.ppf(0.975, df)

    def power(difference):
        shift = difference / standard_error
        return 1 - stats.nct.cdf(critical, df, shift) + stats.nct.cdf(-critical, df, shift)

    assert 0.75 <= power(detectable_difference(standard_error, df)) <= 0.85
    if n == 3:
        assert power(detectable_difference(standard_error)) < 0.4


def test_an_interval_needs_two_values():
    with pytest.raises(ValueError, match="at least 2 values"):
        t_975(0)
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])
    assert mean_interval([0.5]) == MeanInterval(0.5, 1)


def test_a_hand_computed_interval():
    # [1, 2, 3]: mean 2, sample std 1, half-width t(0.975, 2) / sqrt(3) = 4.303 / 1.7320508 = 2.4843382.
    result = mean_interval([1.0, 2.0, 3.0])
    assert (result.mean, result.n, result.std) == (2.0, 3, 1.0)
    assert result.low == pytest.approx(2 - 2.4843382, abs=1e-7)
    assert result.high == pytest.approx(2 + 2.4843382, abs=1e-7)


# Mean, low and high of [0.68, 0.71] and [0.68, 0.71, 0.75] as reporting/summary.py, stages/report/claims.py and
# stages/membership/report.py computed them, each with its own t table, before they shared tempered.reporting.stats:
# the same bytes in all three.
OLD_BYTES = {2: (0.6950000000000001, 0.5044100000000006, 0.8855899999999995),
             3: (0.7133333333333334, 0.6260862427737559, 0.8005804238929108)}
OLD_STD = {2: 0.021213203435596368, 3: 0.035118845842842444}
VALUES = {2: [0.68, 0.71], 3: [0.68, 0.71, 0.75]}


@pytest.mark.parametrize("n", [2, 3])
def test_seed_summaries_keep_their_bytes(n):
    mean, low, high = OLD_BYTES[n]
    assert across_seeds(VALUES[n]) == {"mean": mean, "std": OLD_STD[n], "ci95_low": low, "ci95_high": high,
                                       "n_seeds": n}


@pytest.mark.parametrize("n", [2, 3])
def test_claims_keep_their_bytes(n, tmp_path):
    for seed, value in enumerate(VALUES[n]):
        path = tmp_path / paths.EVAL_METRICS.format(model="cnn", seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"test": {"error_rate": value}}))
    m = measure(Metric("EVAL_METRICS", "test/error_rate", model="cnn"), list(range(n)), tmp_path)
    assert (m.value, m.low, m.high, m.n_seeds) == (*OLD_BYTES[n], n)


@pytest.mark.parametrize("n", [2, 3])
def test_the_membership_summary_keeps_its_bytes(n):
    frame = pd.DataFrame({"auroc": VALUES[n], "auroc_low": 0.0, "auroc_high": 1.0})
    got = membership_report._mean_interval(frame, "auroc")
    assert (got["auroc"], got["auroc_low"], got["auroc_high"]) == OLD_BYTES[n]


def test_one_seed_keeps_the_bootstrap_interval_its_file_stores():
    frame = pd.DataFrame({"auroc": [0.6], "auroc_low": [0.55], "auroc_high": [0.65]})
    assert membership_report._mean_interval(frame, "auroc") == {"auroc": 0.6, "auroc_low": 0.55, "auroc_high": 0.65}
    assert across_seeds([0.6]) == {"mean": 0.6, "n_seeds": 1}
