"""Published claims as data (workflow/claims.yaml), our measurement of each, and a verdict computed by a rule.

A claim names a metrics file by its pattern in `tempered.paths` (e.g. EVAL_METRICS), the model and attack that
fill the pattern, and a '/'-separated key inside the JSON. Per-seed files are read for every configured seed:
the value is their mean, with a 95% t-interval across seeds (tempered.reporting.stats) when there are two or more, else
the bootstrap interval the file stores beside the key (`<key>_low`, `<key>_high`) where there is one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempered import paths
from tempered.artifacts import ArtifactError, read_json
from tempered.config import ConfigError, read_yaml
from tempered.model_grid import all_model_names
from tempered.reporting.stats import mean_interval

REPRODUCED = "reproduced"
DIRECTION_ONLY = "direction only"
NOT_REPRODUCED = "not reproduced"
NOT_RUN = "not run at this preset"
NOT_COMPARABLE = "not comparable"
# A run on budgets too small to mean anything (the smoke preset: report.judge_claims false) measures every claim
# it can but judges none: a tiny sample's wide interval would let a published value "pass" by holding nothing.
NOT_JUDGED = "not judged"
VERDICTS = (REPRODUCED, DIRECTION_ONLY, NOT_REPRODUCED, NOT_COMPARABLE, NOT_RUN, NOT_JUDGED)
# The verdicts a rule hands out: what a run that does not judge replaces with NOT_JUDGED.
JUDGED = (REPRODUCED, DIRECTION_ONLY, NOT_REPRODUCED)
# The dataset a claim's published number was measured on ('dataset', default MNIST) and the one our pipeline
# measures it on ('measured_on', default MNIST). A value (abs/rel/at_*) on one dataset says nothing of a value on
# another: such a claim is 'not comparable', never 'not reproduced'. A direction or ordering (an effect, not a
# number) is judged where we measure it, and the table says where it was published.
DEFAULT_DATASET = "MNIST"
VALUE_RULES = ("abs", "rel", "at_least", "at_most", "below", "above")
# Statistics that are a maximum over thresholds. The percentile bootstrap of a maximum is biased upward (on a
# model with no leakage at all it excluded the true 0.5 in 98% of draws of 1,000 vs 1,000 candidates,
# tests/unit/stages/report/test_claims.py measures it), so its interval never makes a published value "inside
# our interval".
MAXIMUM_STATISTICS = ("best_threshold_accuracy", "advantage")

# Metrics files a claim may read: the pattern names of tempered.paths that hold JSON metrics.
SOURCES = ("EVAL_METRICS", "TRAINING_SET_ERROR", "LBFGS_METRICS", "SZEGEDY_TRANSFER", "SZEGEDY_METRICS",
           "ATTACK_METRICS", "DISTILLATION_METRICS", "CALIBRATION_METRICS", "OOD_METRICS", "MEMBERSHIP_SUMMARY")
RULE_KINDS = ("abs", "rel", "at_least", "at_most", "below", "above", "direction", "decreasing", "increasing")
REQUIRED_FIELDS = ("id", "paper", "where", "quantity", "published", "rule")
# Floating-point slack so that a value exactly on a tolerance boundary counts as inside it.
EPS = 1e-9


@dataclass(frozen=True)
class Metric:
    """Where one number lives: a paths pattern, what fills it, and the key inside the JSON."""

    source: str
    key: str
    model: str | None = None
    attack: str | None = None

    def files(self, seeds: Sequence[int]) -> list[str]:
        pattern = getattr(paths, self.source)
        fill = {"model": self.model, "attack": self.attack}
        if "{seed}" in pattern:
            return [pattern.format(seed=s, **fill) for s in seeds]
        return [pattern.format(**fill)]


@dataclass(frozen=True)
class Measurement:
    value: float
    low: float | None
    high: float | None
    n_seeds: int
    # Whether [low, high] is an interval that holds for this statistic (the t-interval across seeds, or a
    # bootstrap of a statistic that is not a maximum); only then may a published value inside it pass a claim.
    interval_valid: bool = True


@dataclass
class Outcome:
    """A claim's verdict, our value and the reason, one row of the claims table."""

    claim: Mapping[str, Any]
    verdict: str
    ours: Measurement | None = None
    versus: Measurement | None = None
    series: list[tuple[str, float]] = field(default_factory=list)
    reason: str = ""
    # For a claim that missed (not reproduced, direction only): its measured cause from claims.yaml, with the
    # run's settings filled in; UNKNOWN_CAUSE where none has been measured yet.
    cause: str = ""


UNKNOWN_CAUSE = "cause not measured yet"
NOT_JUDGED_REASON = "budgets too small for a verdict (report.judge_claims false)"
MISSED = (NOT_REPRODUCED, DIRECTION_ONLY)
_SETTING = re.compile(r"\{([A-Za-z0-9_.]+)\}")


def fill_cause(claim: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The claim's 'cause' text with each {dotted.config.key} replaced by this run's value, so that a budget
    cause names the setting the run used (e.g. "{models.cnn.epochs} epochs")."""
    text = claim.get("cause")
    if not text:
        return UNKNOWN_CAUSE

    def setting(match: re.Match) -> str:
        value: Any = config
        for part in match.group(1).split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise ConfigError(f"claim {claim['id']}: its cause names {match.group(1)!r}, which the config "
                                  f"does not hold (missing at {part!r})")
            value = value[part]
        return str(value)

    return _SETTING.sub(setting, str(text))


def load_claims(path: Path | str) -> list[dict[str, Any]]:
    """Read and check claims.yaml; every problem names the file, the claim and the field."""
    path = Path(path)
    data = read_yaml(path)
    claims = data.get("claims") if isinstance(data, Mapping) else None
    if not isinstance(claims, list) or not claims:
        raise ConfigError(f"{path}: expected a top-level 'claims' list, found {type(claims).__name__}")
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        where = f"{path}: claim {i} ({claim.get('id', '?') if isinstance(claim, Mapping) else '?'})"
        if not isinstance(claim, Mapping):
            raise ConfigError(f"{where}: expected a mapping, found {type(claim).__name__}")
        missing = [f for f in REQUIRED_FIELDS if f not in claim]
        if missing:
            raise ConfigError(f"{where}: missing field(s) {missing}")
        if claim["id"] in seen:
            raise ConfigError(f"{where}: duplicate id")
        seen.add(claim["id"])
        _check_rule(where, claim)
        if "requires_stage" not in claim:
            for m in _metrics_of(claim):
                if m.source not in SOURCES:
                    raise ConfigError(f"{where}: source {m.source!r} is not one of {list(SOURCES)}")
    return claims


def _check_rule(where: str, claim: Mapping[str, Any]) -> None:
    rule = claim["rule"]
    if not isinstance(rule, Mapping) or rule.get("kind") not in RULE_KINDS:
        raise ConfigError(f"{where}: rule.kind must be one of {list(RULE_KINDS)}, found {rule!r}")
    kind = rule["kind"]
    if kind in ("abs", "rel") and not isinstance(rule.get("tol"), (int, float)):
        raise ConfigError(f"{where}: rule kind {kind!r} needs a numeric 'tol'")
    if kind == "direction" and "versus" not in claim:
        raise ConfigError(f"{where}: rule kind 'direction' needs a 'versus' block")
    if kind in ("decreasing", "increasing"):
        if not isinstance(claim.get("models"), list) or not isinstance(claim["published"], list):
            raise ConfigError(f"{where}: rule kind {kind!r} needs 'models' and 'published' lists")
        if len(claim["models"]) != len(claim["published"]):
            raise ConfigError(f"{where}: 'models' and 'published' differ in length")


def _metric(claim: Mapping[str, Any], **override: Any) -> Metric:
    fields = {k: claim.get(k) for k in ("source", "key", "model", "attack")}
    fields.update({k: v for k, v in override.items() if v is not None})
    if fields["key"] and fields["model"]:
        fields["key"] = fields["key"].replace("{model}", fields["model"])  # an ordering reads one key per model
    return Metric(**fields)


def _metrics_of(claim: Mapping[str, Any]) -> list[Metric]:
    """Every metric a claim reads: itself, its 'versus' comparison, or one per model of an ordering."""
    if claim["rule"]["kind"] in ("decreasing", "increasing"):
        return [_metric(claim, model=m) for m in claim["models"]]
    metrics = [_metric(claim)]
    if "versus" in claim:
        metrics.append(_metric(claim, **{k: claim["versus"].get(k) for k in ("source", "key", "model", "attack")}))
    return metrics


def unmet_requirements(claim: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """Why this preset cannot measure the claim ('' when it can): a stage that does not exist yet, a model it
    does not train, an attack it does not run, or a config list that leaves the claim's model out."""
    if "requires_stage" in claim:
        return str(claim["requires_stage"])
    attacks = [m.attack for m in _metrics_of(claim) if m.attack]
    missing_attacks = [a for a in dict.fromkeys(attacks) if a not in config["attacks"]["enabled"]]
    if missing_attacks:
        return f"attack(s) {missing_attacks} not enabled"
    trained = set(all_model_names(config))
    if claim["rule"]["kind"] in ("decreasing", "increasing"):
        present = [m for m in claim["models"] if m in trained]
        return "" if len(present) >= 2 else f"fewer than two of {claim['models']} are trained"
    models = [m.model for m in _metrics_of(claim) if m.model] + list(claim.get("requires_models", []))
    absent = [m for m in dict.fromkeys(models) if m not in trained]
    if absent:
        return f"model(s) {absent} not trained at this preset"
    for dotted, wanted in claim.get("requires_config", {}).items():
        value: Any = config
        for part in dotted.split("."):
            value = value[part]
        lacking = [w for w in wanted if w not in value]
        if lacking:
            return f"{dotted} does not list {lacking}"
    return ""


def metric_files(claims: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> list[str]:
    """The metrics files the report reads for this config: the report rule's inputs, so that a claim whose file
    no rule writes fails when Snakemake builds the DAG, not in the middle of a run."""
    seeds = config["seeds"]
    files: dict[str, None] = {}
    trained = set(all_model_names(config))
    for claim in claims:
        if unmet_requirements(claim, config):
            continue
        for metric in _metrics_of(claim):
            if metric.model is None or metric.model in trained:
                files.update(dict.fromkeys(metric.files(seeds)))
    return sorted(files)


class MissingKey(ArtifactError):
    """A metrics file exists but does not hold the key a claim (or a figure) reads."""


def _lookup(record: Mapping[str, Any], key: str, file: str) -> Any:
    value: Any = record
    for part in key.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            raise MissingKey(f"{file}: no key {key!r} (missing at {part!r}); the claim names a metric that "
                                f"this file does not hold")
        value = value[part]
    return value


def _not_measured(record: Mapping[str, Any], key: str) -> str:
    """A statistic the step could not compute (nothing to average over) is left out of its file, with the reason
    under 'not_measured', keyed by its '/'-separated key."""
    return str((record.get("not_measured") or {}).get(key, ""))


def _skipped_dataset(record: Mapping[str, Any], key: str) -> str:
    """An OOD set that could not be fetched is recorded under 'skipped_datasets' with the reason."""
    skipped = record.get("skipped_datasets") or {}
    return next((f"{name}: {why}" for name, why in skipped.items() if f"/{name}/" in f"/{key}/"), "")


class Unavailable(Exception):
    """The metric's file exists but the preset could not measure it (an OOD set that could not be fetched, a
    statistic with nothing to average over)."""


def measure(metric: Metric, seeds: Sequence[int], root: Path) -> Measurement:
    """Mean over seeds, with a 95% interval (across seeds, or the file's own bootstrap interval for one seed)."""
    values, lows, highs = [], [], []
    for file in metric.files(seeds):
        path = root / file
        if not path.exists():
            raise ArtifactError(f"{path}: missing; the report needs it for {metric.source}:{metric.key}")
        record = read_json(path)
        reason = _skipped_dataset(record, metric.key)
        if reason:
            raise Unavailable(reason)
        unmeasured = _not_measured(record, metric.key)
        if unmeasured:
            raise Unavailable(f"{metric.key} not measured in {file}: {unmeasured}")
        values.append(float(_lookup(record, metric.key, str(path))))
        parent, _, leaf = metric.key.rpartition("/")
        siblings = _lookup(record, parent, str(path)) if parent else record
        lows.append(siblings.get(f"{leaf}_low"))
        highs.append(siblings.get(f"{leaf}_high"))
    across = mean_interval(values)
    if across.n >= 2:
        return Measurement(across.mean, across.low, across.high, across.n)
    low, high = lows[0], highs[0]
    valid = metric.key.rpartition("/")[2] not in MAXIMUM_STATISTICS
    return Measurement(across.mean, None if low is None else float(low), None if high is None else float(high), 1,
                       valid)


def _within(rule: Mapping[str, Any], ours: Measurement, published: float) -> bool:
    kind, tol = rule["kind"], rule.get("tol", 0.0)
    in_interval = (ours.interval_valid and ours.low is not None and ours.high is not None
                   and ours.low - EPS <= published <= ours.high + EPS)
    if kind == "abs":
        return abs(ours.value - published) <= tol + EPS or in_interval
    if kind == "rel":
        return abs(ours.value - published) <= tol * abs(published) + EPS or in_interval
    bound = rule.get("value", published)
    if kind == "at_least":
        return ours.value >= bound - EPS
    if kind == "at_most":
        return ours.value <= bound + EPS
    if kind == "below":  # an effect, not a value: our whole 95% interval lies below the bound
        return ours.interval_valid and ours.high is not None and ours.high < bound - EPS
    if kind == "above":  # likewise: our whole 95% interval lies above the bound
        return ours.interval_valid and ours.low is not None and ours.low > bound + EPS
    raise ValueError(f"rule kind {kind!r} compares no single value")


def _sign(x: float) -> int:
    return 0 if abs(x) <= EPS else (1 if x > 0 else -1)


def value_verdict(rule: Mapping[str, Any], ours: Measurement, published: float,
                  versus: Measurement | None = None, published_versus: float | None = None) -> str:
    """reproduced when the rule holds; else 'direction only' when our value moves from the comparison the
    same way the published one does; else not reproduced. A 'direction' rule is the direction test alone."""
    same_direction = (versus is not None and published_versus is not None
                      and _sign(published - published_versus) != 0
                      and _sign(ours.value - versus.value) == _sign(published - published_versus))
    if rule["kind"] == "direction":
        return REPRODUCED if same_direction else NOT_REPRODUCED
    if _within(rule, ours, published):
        return REPRODUCED
    return DIRECTION_ONLY if same_direction else NOT_REPRODUCED


def ordering_verdict(kind: str, values: Sequence[float]) -> str:
    """'decreasing': each value at most the one before it (ties allowed); 'increasing' the mirror image."""
    pairs = list(zip(values, values[1:], strict=False))
    holds = all(b <= a + EPS for a, b in pairs) if kind == "decreasing" else all(b >= a - EPS for a, b in pairs)
    if holds:
        return REPRODUCED
    # Direction only: the last value still lies beyond the first in the claimed direction.
    ends = values[-1] < values[0] if kind == "decreasing" else values[-1] > values[0]
    return DIRECTION_ONLY if ends else NOT_REPRODUCED


def incomparable_dataset(claim: Mapping[str, Any]) -> str:
    """Why the claim's published value cannot be set beside ours ('' when it can): a value published on another
    dataset than the one we measure it on."""
    published_on = claim.get("dataset", DEFAULT_DATASET)
    measured_on = claim.get("measured_on", DEFAULT_DATASET)
    if published_on == measured_on:
        return ""
    if "requires_stage" in claim:  # nothing here measures it: neither a value nor a direction to set beside it
        return f"published on {published_on}, which this pipeline does not measure"
    if claim["rule"]["kind"] in VALUE_RULES:
        return f"published on {published_on}, measured here on {measured_on}"
    return ""


def evaluate(claim: Mapping[str, Any], config: Mapping[str, Any], root: Path) -> Outcome:
    """One claim's verdict at this config, from the metrics under root."""
    reason = unmet_requirements(claim, config)
    incomparable = incomparable_dataset(claim)
    if incomparable and "requires_stage" in claim:
        return Outcome(claim, NOT_COMPARABLE, reason=incomparable)
    if reason:
        return Outcome(claim, NOT_RUN, reason=reason)
    seeds, rule = config["seeds"], claim["rule"]
    try:
        if rule["kind"] in ("decreasing", "increasing"):
            trained = set(all_model_names(config))
            series = [(m, measure(_metric(claim, model=m), seeds, root).value)
                      for m in claim["models"] if m in trained]
            return Outcome(claim, ordering_verdict(rule["kind"], [v for _, v in series]), series=series)
        ours = measure(_metric(claim), seeds, root)
        versus = None
        if "versus" in claim:
            block = claim["versus"]
            versus = measure(_metric(claim, **{k: block.get(k) for k in ("source", "key", "model", "attack")}),
                             seeds, root)
        published_versus = claim.get("versus", {}).get("published")
        if incomparable:
            return Outcome(claim, NOT_COMPARABLE, ours, versus, reason=incomparable)
        return Outcome(claim, value_verdict(rule, ours, claim["published"], versus, published_versus), ours, versus)
    except Unavailable as why:
        return Outcome(claim, NOT_RUN, reason=f"data unavailable ({why})")


def evaluate_all(claims: Sequence[Mapping[str, Any]], config: Mapping[str, Any], root: Path,
                 judge: bool = True) -> list[Outcome]:
    """Every claim's outcome. judge=False (report.judge_claims) keeps each measurement, interval and series
    but replaces each rule's verdict with NOT_JUDGED; 'not run' and 'not comparable' say what was not measured
    or cannot be compared, which holds at any budget, so they stay."""
    outcomes = [evaluate(c, config, root) for c in claims]
    for o in outcomes:
        if not judge and o.verdict in JUDGED:
            o.verdict, o.reason = NOT_JUDGED, NOT_JUDGED_REASON
        elif o.verdict in MISSED:
            o.cause = fill_cause(o.claim, config)
    return outcomes
