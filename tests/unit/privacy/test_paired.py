"""Paired statistics of a change to the target (tempered.privacy.paired): the paired bootstrap interval covers
the true difference at its nominal rate on synthetic data, and is much narrower than two separate intervals
when the variants move together; the permutation null catches a memorising target and not a blind one."""

import numpy as np
import pytest
from scipy.stats import norm

from tempered.ood.metrics import auroc, bootstrap_interval
from tempered.privacy.paired import (
    PAIRED_METRICS,
    best_threshold_accuracy,
    paired_difference,
    permutation_p_value,
)


def test_identical_variants_differ_by_exactly_nothing():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(0.5, 1, 200), rng.normal(0, 1, 200)
    for metric in PAIRED_METRICS.values():
        d = paired_difference(metric, members, nonmembers, members, nonmembers, n_boot=50, level=0.95, seed=0)
        assert (d.difference, d.low, d.high, d.detectable, d.excludes_zero) == (0.0, 0.0, 0.0, 0.0, False)


def test_the_paired_interval_covers_the_true_auroc_change_at_its_nominal_rate():
    """Members' scores N(mu, 1) against non-members' N(0, 1) have AUROC Phi(mu / sqrt 2); variant b adds 0.2
    to every member's score (a change that moves every candidate together, as temperature scaling does)."""
    true = norm.cdf(0.7 / np.sqrt(2)) - norm.cdf(0.5 / np.sqrt(2))
    covered, trials = 0, 200
    for trial in range(trials):
        rng = np.random.default_rng(1000 + trial)
        members, nonmembers = rng.normal(0.5, 1, 300), rng.normal(0, 1, 300)
        d = paired_difference(auroc, members, nonmembers, members + 0.2, nonmembers, n_boot=200, level=0.95,
                              seed=trial)
        covered += d.low <= true <= d.high
    assert 0.90 <= covered / trials <= 0.99, covered / trials


def test_pairing_removes_the_candidates_own_variation():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(0.5, 1, 500), rng.normal(0, 1, 500)
    shifted = members + 0.05
    d = paired_difference(auroc, members, nonmembers, shifted, nonmembers, n_boot=300, level=0.95, seed=0)
    _, low_a, high_a = bootstrap_interval(auroc, members, nonmembers, n_boot=300, seed=0)
    _, low_b, high_b = bootstrap_interval(auroc, shifted, nonmembers, n_boot=300, seed=1)
    assert d.excludes_zero and d.low > 0  # a small, consistent change is found...
    assert not (high_a < low_b)  # ...which two separate intervals, overlapping, would miss
    assert (d.high - d.low) < 0.25 * ((high_a - low_a) + (high_b - low_b))
    # The detectable difference follows from the bootstrap spread: 2.8 standard errors.
    assert d.detectable == pytest.approx(2.8 * (d.high - d.low) / 3.92, rel=0.2)


def test_variants_must_score_the_same_candidates():
    with pytest.raises(ValueError, match="same candidates"):
        paired_difference(auroc, np.zeros(5), np.zeros(5), np.zeros(4), np.zeros(5), n_boot=5, level=0.9, seed=0)


def test_the_permutation_null_catches_memorising_and_not_blind_targets():
    rng = np.random.default_rng(3)
    nonmembers = rng.normal(0, 1, 400)
    memorised, unseen = rng.normal(0.6, 1, 400), rng.normal(0, 1, 400)
    n = 199
    assert permutation_p_value(best_threshold_accuracy, memorised, nonmembers, n, seed=0) == 1 / (1 + n)
    assert permutation_p_value(best_threshold_accuracy, unseen, nonmembers, n, seed=0) > 0.05
    # Under the null the p-value is (close to) uniform: about 5% of blind targets fall below 0.05.
    false_alarms = sum(permutation_p_value(best_threshold_accuracy, rng.normal(0, 1, 150), rng.normal(0, 1, 150),
                                           99, seed=s) < 0.05 for s in range(100))
    assert false_alarms <= 12, false_alarms
