import statistics

import pytest

from tempered.reporting.summary import across_seeds, summarise_metrics


def test_single_seed_has_only_a_mean():
    assert across_seeds([0.5]) == {"mean": 0.5, "n_seeds": 1}


def test_three_seeds_known_answer():
    values = [0.98, 0.99, 1.0]
    result = across_seeds(values)
    assert result["mean"] == pytest.approx(0.99)
    assert result["std"] == pytest.approx(statistics.stdev(values))
    half = 4.303 * statistics.stdev(values) / 3 ** 0.5
    assert (result["ci95_low"], result["ci95_high"]) == (pytest.approx(0.99 - half), pytest.approx(0.99 + half))


def test_summarise_metrics_keeps_float_metrics_per_set():
    per_seed = {0: {"test": {"accuracy": 0.9, "n": 10}}, 1: {"test": {"accuracy": 0.8, "n": 10}}}
    summary = summarise_metrics(per_seed)
    assert set(summary["test"]) == {"accuracy"}
    assert summary["test"]["accuracy"]["mean"] == pytest.approx(0.85)


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        across_seeds([])
