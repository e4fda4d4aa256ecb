"""Claims as data: verdict rules at their boundaries, measurement across seeds, requirement checks, and the
claims file itself (every row well-formed, every paper cited in full)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tempered import paths
from tempered.artifacts import ArtifactError
from tempered.config import REPO_ROOT, ConfigError, load_config
from tempered.reporting.stats import t_975
from tempered.stages.report.claims import (
    DIRECTION_ONLY,
    NOT_COMPARABLE,
    NOT_JUDGED,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    UNKNOWN_CAUSE,
    VALUE_RULES,
    Measurement,
    Metric,
    evaluate,
    evaluate_all,
    fill_cause,
    load_claims,
    measure,
    metric_files,
    ordering_verdict,
    unmet_requirements,
    value_verdict,
)

CLAIMS = REPO_ROOT / paths.CLAIMS


def point(value: float, low: float | None = None, high: float | None = None) -> Measurement:
    return Measurement(value, low, high, 1)


@pytest.mark.parametrize(("ours", "verdict"), [(0.084, REPRODUCED), (0.064, REPRODUCED), (0.0841, NOT_REPRODUCED),
                                               (0.0639, NOT_REPRODUCED)])
def test_abs_rule_holds_exactly_at_its_tolerance(ours, verdict):
    assert value_verdict({"kind": "abs", "tol": 0.01}, point(ours), 0.074) == verdict


@pytest.mark.parametrize(("ours", "verdict"), [(1.3, REPRODUCED), (0.7, REPRODUCED), (1.31, NOT_REPRODUCED)])
def test_rel_rule_is_relative_to_the_published_value(ours, verdict):
    assert value_verdict({"kind": "rel", "tol": 0.3}, point(ours), 1.0) == verdict


@pytest.mark.parametrize(("low", "high", "verdict"), [(-0.03, -0.01, REPRODUCED), (-0.03, 0.001, NOT_REPRODUCED),
                                                      (0.01, 0.03, NOT_REPRODUCED), (None, None, NOT_REPRODUCED)])
def test_a_below_rule_needs_the_whole_interval_below_the_bound(low, high, verdict):
    """An effect claim (temperature scaling reduces leakage): a negative point estimate is not enough."""
    assert value_verdict({"kind": "below"}, point(-0.02, low, high), 0.0) == verdict


@pytest.mark.parametrize(("low", "high", "verdict"), [(0.01, 0.03, REPRODUCED), (-0.001, 0.03, NOT_REPRODUCED),
                                                      (-0.03, -0.01, NOT_REPRODUCED), (None, None, NOT_REPRODUCED)])
def test_an_above_rule_needs_the_whole_interval_above_the_bound(low, high, verdict):
    """An effect claim (the robust model leaks more): a positive point estimate is not enough."""
    assert value_verdict({"kind": "above"}, point(0.02, low, high), 0.0) == verdict


def test_published_value_inside_our_interval_counts_as_reproduced():
    rule = {"kind": "abs", "tol": 0.01}
    assert value_verdict(rule, point(0.10, 0.05, 0.2), 0.18) == REPRODUCED
    assert value_verdict(rule, point(0.10, 0.05, 0.17), 0.18) == NOT_REPRODUCED


@pytest.mark.parametrize(("kind", "ours", "verdict"), [
    ("at_least", 0.99, REPRODUCED), ("at_least", 0.989, NOT_REPRODUCED),
    ("at_most", 0.99, REPRODUCED), ("at_most", 0.991, NOT_REPRODUCED)])
def test_bounds_include_their_value(kind, ours, verdict):
    assert value_verdict({"kind": kind, "value": 0.99}, point(ours), 1.0) == verdict


def test_a_missed_value_moving_the_published_way_is_direction_only():
    rule = {"kind": "abs", "tol": 0.02}
    # Published: 0.99 (base) -> 0.013 (distilled). Ours fell too, but not as far.
    assert value_verdict(rule, point(0.30), 0.013, point(0.95), 0.99) == DIRECTION_ONLY
    assert value_verdict(rule, point(0.97), 0.013, point(0.95), 0.99) == NOT_REPRODUCED
    assert value_verdict({"kind": "direction"}, point(0.01), 0.012, point(0.05), 0.165) == REPRODUCED
    assert value_verdict({"kind": "direction"}, point(0.06), 0.012, point(0.05), 0.165) == NOT_REPRODUCED


def test_ordering_allows_ties_and_falls_back_to_the_end_points():
    assert ordering_verdict("decreasing", [0.9, 0.5, 0.5, 0.01]) == REPRODUCED
    assert ordering_verdict("decreasing", [0.9, 0.2, 0.4, 0.01]) == DIRECTION_ONLY
    assert ordering_verdict("decreasing", [0.1, 0.2, 0.4]) == NOT_REPRODUCED
    assert ordering_verdict("increasing", [0.1, 0.2, 0.4]) == REPRODUCED


def write_eval(root, model: str, seed: int, error: float) -> None:
    path = root / paths.EVAL_METRICS.format(model=model, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"test": {"error_rate": error, "auroc": error, "auroc_low": 0.0, "auroc_high": 1.0}}))


def test_measure_averages_seeds_with_a_t_interval(tmp_path):
    for seed, error in enumerate([0.10, 0.12, 0.14]):
        write_eval(tmp_path, "cnn", seed, error)
    m = measure(Metric("EVAL_METRICS", "test/error_rate", model="cnn"), [0, 1, 2], tmp_path)
    assert m.value == pytest.approx(0.12) and m.n_seeds == 3
    # sd 0.02, t(0.975, 2) = 4.303: half-width 4.303 * 0.02 / sqrt(3)
    assert m.high - m.value == pytest.approx(4.303 * 0.02 / 3 ** 0.5)


def test_one_seed_takes_the_bootstrap_interval_stored_beside_the_key(tmp_path):
    write_eval(tmp_path, "cnn", 0, 0.5)
    m = measure(Metric("EVAL_METRICS", "test/auroc", model="cnn"), [0], tmp_path)
    assert (m.value, m.low, m.high) == (0.5, 0.0, 1.0)
    assert measure(Metric("EVAL_METRICS", "test/error_rate", model="cnn"), [0], tmp_path).low is None


def test_a_claim_naming_a_missing_metric_fails_naming_file_and_key(tmp_path):
    write_eval(tmp_path, "cnn", 0, 0.5)
    with pytest.raises(ArtifactError, match=r"seed0\.json: no key 'test/ece'"):
        measure(Metric("EVAL_METRICS", "test/ece", model="cnn"), [0], tmp_path)
    with pytest.raises(ArtifactError, match="missing"):
        measure(Metric("EVAL_METRICS", "test/error_rate", model="cnn"), [0, 1], tmp_path)


def test_a_claim_on_an_untrained_model_is_not_run(repo_config, tmp_path):
    claim = {"id": "x", "paper": "p", "where": "w", "quantity": "q", "published": 0.1, "source": "EVAL_METRICS",
             "model": "student_T7", "key": "test/error_rate", "rule": {"kind": "abs", "tol": 0.01}}
    outcome = evaluate(claim, repo_config, tmp_path)
    assert outcome.verdict == NOT_RUN and "student_T7" in outcome.reason
    assert unmet_requirements({**claim, "model": "cnn"}, repo_config) == ""


def test_a_claim_on_a_disabled_attack_is_not_run_even_as_an_ordering(repo_config):
    claim = {"id": "x", "paper": "p", "where": "w", "quantity": "q", "published": [0.9, 0.1],
             "source": "ATTACK_METRICS", "attack": "jsma", "key": "success_rate",
             "models": ["student_T1", "student_T100"], "rule": {"kind": "decreasing"}}
    assert unmet_requirements(claim, repo_config) == ""
    no_jsma = {**repo_config, "attacks": {**repo_config["attacks"], "enabled": ["fgsm"]}}
    assert "jsma" in unmet_requirements(claim, no_jsma)
    assert metric_files([claim], no_jsma) == []


def write_claims(tmp_path, rows: str):
    path = tmp_path / "claims.yaml"
    path.write_text("claims:\n" + rows)
    return path


@pytest.mark.parametrize(("rows", "message"), [
    ('  - {id: a, paper: p, where: w, quantity: q, rule: {kind: abs, tol: 0.1}}\n', r"claim 0 \(a\): missing field"),
    ('  - {id: a, paper: p, where: w, quantity: q, published: 1, rule: {kind: near}}\n', "rule.kind must be one of"),
    ('  - {id: a, paper: p, where: w, quantity: q, published: 1, rule: {kind: abs}}\n', "needs a numeric 'tol'"),
    ('  - {id: a, paper: p, where: w, quantity: q, published: 1, source: NOPE, key: k, rule: {kind: at_least}}\n',
     "source 'NOPE'"),
    ('  - {id: a, paper: p, where: w, quantity: q, published: 1, requires_stage: s, rule: {kind: at_least}}\n' * 2,
     "duplicate id"),
])
def test_bad_claims_fail_naming_the_file_and_claim(tmp_path, rows, message):
    path = write_claims(tmp_path, rows)
    with pytest.raises(ConfigError, match=message) as err:
        load_claims(path)
    assert str(path) in str(err.value)


def test_the_claims_file_loads_and_every_claim_can_be_placed():
    claims = load_claims(CLAIMS)
    papers = (REPO_ROOT / paths.CLAIMS).read_text()
    for claim in claims:
        assert f"  {claim['paper']}:" in papers, f"{claim['id']}: paper {claim['paper']!r} not under 'papers'"


@pytest.mark.parametrize("preset", [None, "quick", "smoke"])
def test_every_file_a_claim_reads_is_one_the_dag_can_build(preset):
    """The report rule takes these files as inputs, so a claim pointing at a file no rule writes would break
    the DAG; here the same check without Snakemake: each file matches a pattern of a configured model."""
    files = [REPO_ROOT / "config.yaml"] + ([REPO_ROOT / f"workflow/presets/{preset}.yaml"] if preset else [])
    config = load_config(files)
    wanted = metric_files(load_claims(CLAIMS), config)
    assert wanted and all(f.startswith("results/metrics/") and f.endswith(".json") for f in wanted)
    seeds = {str(s) for s in config["seeds"]}
    assert {f.rsplit("seed", 1)[1].removesuffix(".json") for f in wanted if "/seed" in f} <= seeds


def _song_like(tmp_path, best: float, low: float, high: float) -> Metric:
    path = tmp_path / paths.MEMBERSHIP_SUMMARY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"song2019": {"natural": {
        "best_threshold_accuracy": best, "best_threshold_accuracy_low": low, "best_threshold_accuracy_high": high,
        "auroc": best + 0.1, "auroc_low": low, "auroc_high": high + 0.1}}}))
    return Metric("MEMBERSHIP_SUMMARY", "song2019/natural/best_threshold_accuracy")


def test_the_bootstrap_interval_of_a_maximum_never_passes_a_claim(tmp_path):
    ours = measure(_song_like(tmp_path, 0.52, 0.51, 0.60), [0], tmp_path)
    assert not ours.interval_valid
    rule = {"kind": "abs", "tol": 0.03}
    assert value_verdict(rule, ours, 0.5712) == NOT_REPRODUCED  # 0.5712 lies inside [0.51, 0.60]: not enough
    auroc = measure(Metric("MEMBERSHIP_SUMMARY", "song2019/natural/auroc"), [0], tmp_path)
    assert auroc.interval_valid and value_verdict(rule, auroc, 0.5712) == REPRODUCED


def test_the_percentile_bootstrap_of_best_threshold_accuracy_excludes_the_truth_under_the_null():
    """Why the rule above exists, measured: members and non-members from one distribution (no leakage, true
    best-threshold accuracy 0.5); the percentile bootstrap's lower bound lies above 0.5 in most draws."""
    from tempered.privacy.metrics import score_metrics

    rng = np.random.default_rng(0)
    draws = 40
    excluded = sum(score_metrics(rng.normal(size=500), rng.normal(size=500), n_boot=100, level=0.95,
                                 seed=i)["best_threshold_accuracy_low"] > 0.5 for i in range(draws))
    assert excluded / draws > 0.5


def test_the_t_interval_across_seeds_covers_the_truth_at_its_nominal_rate(tmp_path):
    """Synthetic seeds drawn around a known mean: the 95% t-interval of claims.measure covers it ~95% of the
    time for 3 seeds (the presets' count) and 5; a binomial 99.9% band around 0.95 for 2,000 trials is
    [0.934, 0.966]."""
    rng = np.random.default_rng(1)
    for n in (3, 5):
        trials, covered = 2000, 0
        for _ in range(trials):
            values = rng.normal(0.7, 0.05, size=n)
            mean, sd = values.mean(), values.std(ddof=1)
            half = t_975(n - 1) * sd / np.sqrt(n)
            covered += mean - half <= 0.7 <= mean + half
        assert 0.934 <= covered / trials <= 0.966, (n, covered / trials)
    # And measure() computes exactly that interval from per-seed files.
    for seed, error in enumerate([0.68, 0.71, 0.75]):
        write_eval(tmp_path, "cnn", seed, error)
    m = measure(Metric("EVAL_METRICS", "test/error_rate", model="cnn"), [0, 1, 2], tmp_path)
    values = np.array([0.68, 0.71, 0.75])
    assert m.high - m.value == pytest.approx(t_975(2) * values.std(ddof=1) / np.sqrt(3))


def test_a_value_published_on_another_dataset_is_not_comparable_but_a_direction_is_judged(repo_config, tmp_path):
    _song_like(tmp_path, 0.52, 0.51, 0.53)
    claim = {"id": "x", "paper": "p", "where": "w", "quantity": "q", "published": 0.5712, "dataset": "Fashion-MNIST",
             "source": "MEMBERSHIP_SUMMARY", "key": "song2019/natural/best_threshold_accuracy",
             "rule": {"kind": "abs", "tol": 0.03}}
    outcome = evaluate(claim, repo_config, tmp_path)
    assert outcome.verdict == NOT_COMPARABLE and "Fashion-MNIST" in outcome.reason and outcome.ours.value == 0.52
    # Measured on the same dataset the very same row is judged.
    assert evaluate({**claim, "measured_on": "Fashion-MNIST"}, repo_config, tmp_path).verdict == NOT_REPRODUCED
    direction = {**claim, "rule": {"kind": "direction"}, "key": "song2019/natural/auroc",
                 "versus": {"key": "song2019/natural/best_threshold_accuracy", "published": 0.5}}
    assert evaluate(direction, repo_config, tmp_path).verdict == REPRODUCED
    unmeasured = {**claim, "requires_stage": "CIFAR-10: not in this MNIST pipeline", "dataset": "CIFAR-10"}
    assert evaluate(unmeasured, repo_config, tmp_path).verdict == NOT_COMPARABLE


def test_a_missed_claim_carries_its_cause_with_the_runs_setting(repo_config, tmp_path):
    write_eval(tmp_path, "cnn", 0, 0.5)
    claim = {"id": "x", "paper": "p", "where": "w", "quantity": "q", "published": 0.01, "source": "EVAL_METRICS",
             "model": "cnn", "key": "test/error_rate", "rule": {"kind": "abs", "tol": 0.01},
             "cause": "budget: {models.cnn.epochs} epochs"}
    config = {**repo_config, "seeds": [0]}
    (missed,) = evaluate_all([claim], config, tmp_path)
    epochs = repo_config["models"]["cnn"]["epochs"]
    assert missed.verdict == NOT_REPRODUCED and missed.cause == f"budget: {epochs} epochs"
    (unexplained,) = evaluate_all([{**claim, "cause": None}], config, tmp_path)
    assert unexplained.cause == UNKNOWN_CAUSE
    (held,) = evaluate_all([{**claim, "published": 0.5}], config, tmp_path)
    assert held.verdict == REPRODUCED and held.cause == ""
    with pytest.raises(ConfigError, match=r"claim x: its cause names 'models.cnn.epoch'"):
        fill_cause({**claim, "cause": "{models.cnn.epoch}"}, repo_config)


def test_a_run_that_does_not_judge_keeps_every_measurement_and_hands_out_no_verdict(repo_config, tmp_path):
    """report.judge_claims false (the smoke preset): a tiny sample's wide interval must not let a claim 'pass', so
    no rule's verdict is shown; our values, and why a claim was not measured, stay."""
    write_eval(tmp_path, "cnn", 0, 0.5)
    held = {"id": "held", "paper": "p", "where": "w", "quantity": "q", "published": 0.5, "source": "EVAL_METRICS",
            "model": "cnn", "key": "test/error_rate", "rule": {"kind": "abs", "tol": 0.01}}
    inside = {**held, "id": "inside", "published": 0.9, "key": "test/auroc"}  # only inside the interval [0, 1]
    missed = {**held, "id": "missed", "published": 0.01, "cause": "budget: {models.cnn.epochs} epochs"}
    ordering = {**held, "id": "ordering", "published": [0.9, 0.1], "models": ["cnn", "cnn"],
                "rule": {"kind": "decreasing"}}
    unrun = {**held, "id": "unrun", "model": "student_T7"}
    claims = [held, inside, missed, ordering, unrun]
    config = {**repo_config, "seeds": [0]}
    judged = evaluate_all(claims, config, tmp_path)
    assert [o.verdict for o in judged] == [REPRODUCED, REPRODUCED, NOT_REPRODUCED, REPRODUCED, NOT_RUN]
    unjudged = evaluate_all(claims, config, tmp_path, judge=False)
    assert [o.verdict for o in unjudged] == [NOT_JUDGED] * 4 + [NOT_RUN]
    assert [(o.ours, o.series) for o in unjudged] == [(o.ours, o.series) for o in judged]
    assert all("report.judge_claims" in o.reason and o.cause == "" for o in unjudged[:4])
    assert unjudged[4].reason == judged[4].reason


@pytest.mark.parametrize(("preset", "judged"), [(None, True), ("quick", True), ("smoke", False)])
def test_only_the_smoke_preset_leaves_its_claims_unjudged(preset, judged):
    files = [REPO_ROOT / "config.yaml"] + ([REPO_ROOT / f"workflow/presets/{preset}.yaml"] if preset else [])
    assert load_config(files)["report"]["judge_claims"] is judged


def test_every_paper_is_cited_in_full():
    """The claims file is the project's list of sources: each paper with its authors, year, venue or arXiv id."""
    from tempered.config import read_yaml

    papers, questions = read_yaml(CLAIMS)["papers"], read_yaml(CLAIMS)["questions"]
    assert {c["paper"] for c in load_claims(CLAIMS)} <= set(papers) | set(questions)
    assert not set(papers) & set(questions)
    for key, citation in papers.items():
        year = key[-4:]
        assert year in citation and "arXiv:" in citation and len(citation) > 60, key


def test_each_published_value_is_judged_by_one_claim():
    """No two value claims read the same number (the weight-decay-only FC100-100-10 error was judged twice)."""
    seen: dict[tuple, str] = {}
    for claim in load_claims(CLAIMS):
        if claim["rule"]["kind"] not in VALUE_RULES or "requires_stage" in claim:
            continue
        where = (claim.get("source"), claim.get("model"), claim.get("attack"), claim.get("key"))
        assert where not in seen, f"{claim['id']} and {seen[where]} judge the same measurement"
        seen[where] = claim["id"]


@pytest.mark.parametrize("preset", [None, "quick", "smoke"])
def test_every_cause_names_settings_the_config_holds(preset):
    """A cause's {dotted.key} placeholders resolve under every preset (a typo fails here, not in the report)."""
    files = [REPO_ROOT / "config.yaml"] + ([REPO_ROOT / f"workflow/presets/{preset}.yaml"] if preset else [])
    config = load_config(files)
    causes = [fill_cause(c, config) for c in load_claims(CLAIMS) if c.get("cause")]
    assert causes and not any("{" in text for text in causes)


def test_a_statistic_the_step_could_not_measure_is_not_run_with_its_reason(repo_config, tmp_path):
    """An attack with no correctly classified sample has no robustness: the step records why, and the claim says
    so instead of failing the report on a missing key."""
    path = tmp_path / paths.ATTACK_METRICS.format(attack="jsma", model="cnn", seed=0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"success_rate": 0.0, "not_measured": {
        "robustness_features_fraction": "no attacked sample is classified correctly"}}))
    claim = {"id": "x", "paper": "p", "where": "w", "quantity": "q", "published": 0.0155, "source": "ATTACK_METRICS",
             "attack": "jsma", "model": "cnn", "key": "robustness_features_fraction",
             "rule": {"kind": "rel", "tol": 0.5}}
    outcome = evaluate(claim, {**repo_config, "seeds": [0]}, tmp_path)
    assert outcome.verdict == NOT_RUN and "no attacked sample is classified correctly" in outcome.reason
    # A key that is neither there nor declared unmeasured is still an error naming file and key.
    with pytest.raises(ArtifactError, match="no key 'distortion_mean'"):
        evaluate({**claim, "key": "distortion_mean"}, {**repo_config, "seeds": [0]}, tmp_path)
