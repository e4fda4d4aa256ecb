"""Claims as data: verdict rules at their boundaries, measurement across seeds, requirement checks, and the
claims file itself (every row well-formed, the Szegedy numbers equal to the tables the stage prints beside ours)."""

from __future__ import annotations

import json

import pytest

from tempered import paths, reference
from tempered.artifacts import ArtifactError
from tempered.claims import (
    DIRECTION_ONLY,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    Measurement,
    Metric,
    evaluate,
    load_claims,
    measure,
    metric_files,
    ordering_verdict,
    unmet_requirements,
    value_verdict,
)
from tempered.config import REPO_ROOT, ConfigError, load_config

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


def test_szegedy_claims_carry_the_published_tables():
    """The stage's own tables print reference.SZEGEDY_* beside our numbers; the claims must quote the same."""
    by_id = {c["id"]: c for c in load_claims(CLAIMS)}
    names = {"FC10(1e-4)": "fc10_1em4", "FC10(1e-2)": "fc10_1em2", "FC10(1)": "fc10_1",
             "FC100-100-10": "fc100_100_10", "FC200-200-10": "fc200_200_10", "AE400-10": "ae400_10"}
    for label, row in reference.SZEGEDY_TABLE1.items():
        for quantity in ("train_error", "test_error", "distortion"):
            assert by_id[f"szegedy.t1.{names[label]}.{quantity}"]["published"] == row[quantity]
    for label, row in reference.SZEGEDY_TABLE2.items():
        for column, value in row.items():
            key = f"szegedy.t2.{label if label.startswith('sigma') else names[label]}.{names[column]}"
            if column != label:
                assert by_id[key]["published"] == pytest.approx(value), key


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
