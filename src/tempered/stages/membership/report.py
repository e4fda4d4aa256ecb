"""The membership-inference report over every target: one long table (target x seed x variant x attack), its
markdown, and the summary metrics DVC tracks and the reproduction report reads (Song et al. 2019's numbers on
their Fashion-MNIST CNNs at the largest target size; what temperature scaling and distillation change)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tempered.artifacts import ArtifactError, read_json
from tempered.reporting.stats import detectable_difference, mean_interval
from tempered.reporting.tables import markdown_table

# Attack metrics copied into the table; LiRA has no thresholded 'accuracy' (its scores are not thresholded).
SCORE_COLUMNS = ("auroc", "advantage", "tpr_at_0.001_fpr", "tpr_at_0.01_fpr", "best_threshold_accuracy")
TARGET_COLUMNS = ("train_size", "training_temperature", "robust_training", "train_accuracy", "test_accuracy",
                  "generalization_gap", "fitted_temperature", "ece", "ece_scaled", "pgd_train_accuracy",
                  "pgd_test_accuracy", "robust_generalization_gap")
# Song et al. 2019 report the confidence attack's accuracy at the best threshold.
SONG_ATTACK = "confidence"
VARIANT_ORDER = ("deployed", "temperature_scaled", "adversarial_input")  # tempered.stages.membership.steps.VARIANTS


def read_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        record = read_json(path)
        missing = [k for k in ("model", "inner_model", "seed", "target", "attacks") if k not in record]
        if missing:
            raise ArtifactError(f"{path}: not a membership-attack record (lacks {missing})")
        records.append(record)
    return records


def membership_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (target, seed, variant, attack) with the attack's metrics, bounds and the target's summary."""
    rows = []
    for record in records:
        # No fitted_temperature / ece_scaled where T has no finite optimum (the attack step's record says why).
        target = {k: record["target"].get(k, math.nan) for k in TARGET_COLUMNS}
        p_values = record.get("best_threshold_accuracy_p_value", {})  # absent in records from before it
        for variant, attacks in record["attacks"].items():
            for attack, m in attacks.items():
                row = {"model": record["model"], "inner_model": record["inner_model"], "seed": record["seed"],
                       "dataset": record["target"].get("dataset", "mnist"), **target, "variant": variant,
                       "attack": attack, "accuracy": m.get("accuracy", math.nan),
                       "best_threshold_accuracy_p_value": p_values.get(attack, {}).get(variant, math.nan)}
                for col in SCORE_COLUMNS:
                    row.update({col: m[col], f"{col}_low": m[f"{col}_low"], f"{col}_high": m[f"{col}_high"]})
                rows.append(row)
    return pd.DataFrame(rows)


PAIRED_FIELDS = ("change", "change_low", "change_high", "change_detectable", "change_excludes_zero")
# The attacks and metrics the report's paired table shows (every one is in the summary and the CSV).
PAIRED_SHOWN = (("lira_offline", "auroc"), ("lira_offline", "tpr_at_0.01_fpr"), ("confidence", "auroc"),
                (SONG_ATTACK, "best_threshold_accuracy"), ("lira_online", "auroc"))


def paired_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (target, seed, attack, metric): what temperature scaling changed (scaled minus deployed, on the
    same candidates) with its paired bootstrap interval and detectable change."""
    rows = []
    for record in records:
        for attack, changes in record.get("temperature_scaling_change", {}).items():
            for metric in dict.fromkeys(k.split("_change")[0] for k in changes):
                rows.append({"model": record["model"], "inner_model": record["inner_model"], "seed": record["seed"],
                             "train_size": record["target"]["train_size"], "attack": attack, "metric": metric,
                             **{field: changes[f"{metric}_{field}"] for field in PAIRED_FIELDS}})
    return pd.DataFrame(rows, columns=["model", "inner_model", "seed", "train_size", "attack", "metric",
                                       *PAIRED_FIELDS])


def paired_summary(rows: pd.DataFrame) -> dict[str, Any]:
    """One (target, attack, metric)'s change over seeds: for one seed its paired bootstrap interval; for more,
    the mean with a t-interval across seeds and the change detectable at 80% power from their spread."""
    if len(rows) == 1:
        row = rows.iloc[0]
        return {"change": float(row.change), "low": float(row.change_low), "high": float(row.change_high),
                "detectable": float(row.change_detectable), "excludes_zero": bool(row.change_excludes_zero),
                "n_seeds": 1, "interval": "paired bootstrap over candidates"}
    return across_seeds(rows["change"].astype(float).tolist())


def across_seeds(changes: Sequence[float]) -> dict[str, Any]:
    """Per-seed changes (two or more): their mean, t-interval, and the change detectable with 80% power."""
    seeds = mean_interval(changes)
    return {"change": seeds.mean, "low": seeds.low, "high": seeds.high,
            "detectable": detectable_difference(seeds.std / math.sqrt(seeds.n), df=seeds.n - 1),
            "excludes_zero": seeds.low > 0 or seeds.high < 0, "n_seeds": seeds.n,
            "interval": "t-interval across seeds"}


# What each target is compared with the base model on: LiRA's AUROC, and Song et al. 2019's number.
VERSUS_SHOWN = (("lira_offline", "auroc"), (SONG_ATTACK, "best_threshold_accuracy"), ("lira_online", "auroc"))


def versus_base(frame: pd.DataFrame, base_model: str) -> dict[str, Any]:
    """Each deployed target of the largest size on the base model's dataset against the base model of that size:
    its metric minus the base's, seed by seed (every target of a size shares its members' and non-members'
    indices, so on one dataset the two are paired on the same candidates), then across seeds (across_seeds). With
    one seed there is no interval: the change alone, said so. Keyed target -> attack -> metric, with the base's
    name under "base"."""
    largest = int(frame.train_size.max())
    deployed = frame[(frame.variant == "deployed") & (frame.train_size == largest)]
    base_rows = deployed[deployed.inner_model == base_model]
    if base_rows.empty:
        return {}
    deployed = deployed[deployed.dataset == base_rows.dataset.iloc[0]]
    out: dict[str, Any] = {}
    for attack, metric in VERSUS_SHOWN:
        base = base_rows[base_rows.attack == attack].set_index("seed")[metric]
        others = deployed[(deployed.attack == attack) & (deployed.inner_model != base_model)]
        for model, rows in others.groupby("model", sort=True):
            changes = (rows.set_index("seed")[metric] - base).dropna().astype(float).tolist()
            if not changes:
                continue
            entry = (across_seeds(changes) if len(changes) > 1 else
                     {"change": changes[0], "n_seeds": 1, "interval": "one seed: none"})
            out.setdefault(model, {}).setdefault(attack, {})[metric] = entry
    return {"base": f"mi{largest}_{base_model}", "train_size": largest, "targets": out} if out else {}


def _mean_interval(rows: pd.DataFrame, column: str) -> dict[str, float]:
    """Mean over seeds with a 95% t-interval; for one seed, the bootstrap interval the attack step stored."""
    seeds = mean_interval(rows[column].astype(float).tolist())
    if seeds.n == 1:
        return {column: seeds.mean, f"{column}_low": float(rows[f"{column}_low"].iloc[0]),
                f"{column}_high": float(rows[f"{column}_high"].iloc[0])}
    return {column: seeds.mean, f"{column}_low": seeds.low, f"{column}_high": seeds.high}


def _song_block(frame: pd.DataFrame, size: int, inner: str, variant: str) -> dict[str, float] | None:
    rows = frame[(frame.train_size == size) & (frame.inner_model == inner) & (frame.variant == variant)
                 & (frame.attack == SONG_ATTACK)]
    return None if rows.empty else {"model": f"mi{size}_{inner}", **_mean_interval(rows, "best_threshold_accuracy")}


def summary(frame: pd.DataFrame, base_model: str, robust_model: str | None,
            paired: pd.DataFrame | None = None, song_models: Mapping[str, str] | None = None) -> dict[str, Any]:
    """DVC metrics: every target's mean metrics over seeds; Song et al. 2019's three numbers on the largest size,
    on their models (song_models: natural and robust, membership.song2019_models);
    the largest change temperature scaling makes to any attack's AUROC (correctness: zero by construction);
    per target, attack and metric, that change with its paired interval (paired_summary); and each target of the
    largest size against the base model (versus_base): what distillation and robust training change."""
    per_target: dict[str, Any] = {}
    for (model, variant, attack), rows in frame.groupby(["model", "variant", "attack"], sort=True):
        entry = per_target.setdefault(model, {"target": {c: float(rows[c].mean()) for c in TARGET_COLUMNS}})
        metrics = {}
        for col in SCORE_COLUMNS:
            metrics.update(_mean_interval(rows, col))
        entry.setdefault(variant, {})[attack] = metrics
    largest = int(frame.train_size.max())
    song = {"train_size": largest, "attack": SONG_ATTACK}
    blocks = {}
    if song_models:
        natural, robust = song_models["natural"], song_models["robust"]
        blocks = {"natural": (natural, "deployed"), "robust": (robust, "deployed"),
                  "robust_adversarial_input": (robust, "adversarial_input")}
    for name, (inner, variant) in blocks.items():
        block = _song_block(frame, largest, inner, variant)
        if block is not None:
            song[name] = block
    deployed = frame[frame.variant == "deployed"].set_index(["model", "seed", "attack"]).auroc
    scaled = frame[frame.variant == "temperature_scaled"].set_index(["model", "seed", "attack"]).auroc
    change = (scaled - deployed).dropna()
    by_attack = change.groupby(level="attack")
    scaling = {attack: {"max_abs_auroc_change": float(values.abs().max()), "mean_auroc_change": float(values.mean())}
               for attack, values in by_attack}
    out = {"targets": per_target, "song2019": song, "temperature_scaling": scaling}
    scaling_paired = {}
    if paired is not None and not paired.empty:
        scaling_paired = {
            model: {attack: {metric: paired_summary(r) for metric, r in by_attack.groupby("metric", sort=True)}
                    for attack, by_attack in by_model.groupby("attack", sort=True)}
            for model, by_model in paired.groupby("model", sort=True)}
        out["temperature_scaling_paired"] = scaling_paired
    versus = versus_base(frame, base_model)
    if versus:
        out["versus_base"] = versus
    not_measured: dict[str, str] = {}
    if robust_model is not None:
        claims, not_measured = _question(versus, scaling_paired, f"mi{largest}_{robust_model}", "")
        out.update(claims)
    if song_models and f"mi{largest}_{song_models['robust']}" in per_target:
        # The same two questions on Song et al.'s Fashion-MNIST pair: the robust CNN against the natural one.
        song_versus = versus_base(frame, song_models["natural"])
        if song_versus:
            song["versus_natural"] = song_versus
        claims, unmeasured = _question(song_versus, scaling_paired, f"mi{largest}_{song_models['robust']}",
                                       "song2019/")
        song.update(claims)
        not_measured.update(unmeasured)
    if not_measured:
        out["not_measured"] = not_measured
    return out


def _question(versus: Mapping[str, Any], scaling_paired: Mapping[str, Any], robust: str,
              prefix: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The project's question on one robust target, as the claims read it (workflow/claims.yaml): how much more it
    leaks than the natural model it is paired with (robust_claim, from versus_base) and what temperature scaling
    changes in its LiRA AUROC (seed_claim, paired over candidates or across seeds). Returns the two and, keyed by
    `prefix` + key, why the seed claim was not measured."""
    out: dict[str, Any] = {}
    against = versus.get("targets", {}).get(robust) if versus else None
    if against is not None:
        out["robust_claim"] = {"model": robust, "base": versus["base"],
                               **_claim_fields(against, "lira_offline", "auroc"),
                               **_claim_fields(against, SONG_ATTACK, "best_threshold_accuracy")}
    change = scaling_paired.get(robust, {}).get("lira_offline", {}).get("auroc")
    if change is None:
        return out, {f"{prefix}seed_claim/auroc_change": (
            f"{robust} has no temperature-scaled variant on any seed (its NLL, or a shadow's, has no finite optimum "
            "in T), so there is no change to judge")}
    out["seed_claim"] = {"model": robust, "attack": "lira_offline", "auroc_change": change["change"],
                         "auroc_change_low": change["low"], "auroc_change_high": change["high"],
                         "auroc_change_detectable": change["detectable"], "n_seeds": change["n_seeds"]}
    return out, {}


def _claim_fields(changes: Mapping[str, Any], attack: str, metric: str) -> dict[str, Any]:
    """A change as flat <metric>_change(_low, _high, _detectable) fields: where a claim's key finds its interval
    (tempered.stages.report.claims reads <key>_low and <key>_high beside <key>). One seed: no interval (None)."""
    c = changes.get(attack, {}).get(metric)
    if c is None:
        return {}
    return {f"{metric}_change": c["change"], f"{metric}_change_low": c.get("low"),
            f"{metric}_change_high": c.get("high"), f"{metric}_change_detectable": c.get("detectable"),
            "n_seeds": c["n_seeds"]}


def _paired_markdown(paired: pd.DataFrame, frame: pd.DataFrame, order: Sequence[str]) -> list[str]:
    """What temperature scaling changes, per target: the paired change of the headline metrics."""
    rows = []
    for model in order:
        cells = []
        for attack, metric in PAIRED_SHOWN:
            sel = paired[(paired.model == model) & (paired.attack == attack) & (paired.metric == metric)]
            if sel.empty:
                cells.append("not scaled")
                continue
            cells.append(_change_cell(paired_summary(sel)))
        p_values = frame[(frame.model == model) & (frame.attack == SONG_ATTACK)
                         & (frame.variant == "deployed")]["best_threshold_accuracy_p_value"].dropna()
        cells.append(f"{p_values.max():.3f}" if len(p_values) else "not measured")
        rows.append([model, *cells])
    header = ["target", *(f"{a} {m}" for a, m in PAIRED_SHOWN), f"p ({SONG_ATTACK}, deployed)"]
    return ["", "## What temperature scaling changes (paired, on the same candidates)", "",
            "Scaled minus deployed [95% paired bootstrap interval over candidates for one seed, t-interval across "
            "seeds] (± the smallest change detectable with 80% power); * the interval excludes 0. p: permutation "
            "p-value of the deployed attack's best-threshold accuracy (largest over seeds): how often a blind "
            "attack on these scores does as well.", "", *markdown_table(header, rows)]


def shadows_sentence(shadow_recipe: str, shadow_models: Sequence[str], n_shadows: int) -> str:
    """Whom the attacker's shadows imitate (membership.shadow_recipe), said once above the tables."""
    pool = ("Every membership model trains on a random half of its size's pool (Carlini et al. 2022): a target is "
            "one model seed, its members the candidates it trained on, its non-members the others")
    if shadow_recipe == "target":
        return (f"{pool}; its attacker's {n_shadows} shadows are the same recipe at the other model seeds (same "
                "family, T, distillation and PGD training; membership.shadow_recipe: target).")
    return (f"{pool}; the attacker of every target on one dataset has {n_shadows} shadows trained like "
            f"{' or '.join(shadow_models)} (membership.shadow_recipe: shadow_model, the one on the target's dataset): "
            "it knows neither the target's T nor its PGD training, so offline LiRA is mis-calibrated against targets "
            "whose logits are scaled otherwise. Targets on a dataset none of these learns have "
            f"{n_shadows} shadows trained like each of them.")


def markdown(frame: pd.DataFrame, paired: pd.DataFrame | None = None, versus: Mapping[str, Any] | None = None,
             shadows: str | None = None) -> str:
    """Per variant: AUROC [95% interval] and TPR at 1% FPR of every attack, one row per target (seed means); then
    what temperature scaling changes (paired) and each target against the base model (versus_base). `shadows`:
    shadows_sentence, said first."""
    lines = ["# Membership inference", "",
             *([shadows, ""] if shadows else []),
             "AUROC [95% bootstrap interval for one seed, t-interval across seeds] / TPR at 1% FPR; higher leaks "
             "more. Accuracy on the members (train) and on the non-members (held out: the candidates of the "
             "size's pool, training images of the target's dataset, that this target did not train on); gap: "
             "train minus held out; ECE on the non-members, before -> after temperature scaling; PGD acc.: "
             "accuracy on the PGD examples (membership.adversarial_input, "
             "the target's dataset's) of the members and the non-members, and their gap (the robust "
             "generalization gap).",
             ""]
    targets = (frame.groupby(["model", "dataset"], sort=False)[list(TARGET_COLUMNS)].mean().reset_index("dataset")
               .sort_values(["dataset", "train_size", "robust_training", "training_temperature"]))
    summary_rows = []
    for model, t in targets.iterrows():
        fitted = math.isfinite(t.fitted_temperature)
        summary_rows.append([model, t.dataset, int(t.train_size), f"{t.training_temperature:g}",
                             f"{t.train_accuracy:.4f}", f"{t.test_accuracy:.4f}", f"{t.generalization_gap:+.4f}",
                             f"{t.fitted_temperature:.3g}" if fitted else "not fitted: no finite optimum",
                             f"{t.ece:.4f} -> " + (f"{t.ece_scaled:.4f}" if fitted else "-"),
                             _robust_cell(t)])
    lines += markdown_table(["target", "dataset", "size", "T (training)", "train acc.", "held-out acc.", "gap",
                             "fitted T", "ECE -> scaled", "PGD acc. train / held out (gap)"], summary_rows)
    for variant in sorted(set(frame.variant), key=VARIANT_ORDER.index):
        rows = frame[frame.variant == variant]
        attacks = list(dict.fromkeys(rows.attack))
        variant_rows = []
        for model in targets.index:
            cells = []
            for attack in attacks:
                sel = rows[(rows.model == model) & (rows.attack == attack)]
                if sel.empty:
                    cells.append("")
                    continue
                m = _mean_interval(sel, "auroc")
                tpr = float(sel["tpr_at_0.01_fpr"].mean())
                cells.append(f"{m['auroc']:.3f} [{m['auroc_low']:.3f}, {m['auroc_high']:.3f}] / {tpr:.3f}")
            variant_rows.append([model, *cells])
        lines += ["", f"## {variant}", "", *markdown_table(["target", *attacks], variant_rows)]
    if paired is not None and not paired.empty:
        lines += _paired_markdown(paired, frame, list(targets.index))
    if versus:
        lines += _versus_markdown(versus)
    return "\n".join(lines) + "\n"


def _change_cell(c: Mapping[str, Any] | None) -> str:
    """A change in a table: with its interval, * when that excludes 0, and ± the detectable change."""
    if c is None:
        return "not measured"
    if c.get("low") is None:  # versus_base on one seed: no interval (a paired bootstrap always has one)
        return f"{c['change']:+.4f} (one seed: no interval)"
    mark = "*" if c["excludes_zero"] else ""
    return f"{c['change']:+.4f}{mark} [{c['low']:+.4f}, {c['high']:+.4f}] (±{c['detectable']:.4f})"


def _versus_markdown(versus: Mapping[str, Any]) -> list[str]:
    """What distillation and robust training change: each target minus the base model, deployed."""
    rows = [[model, *(_change_cell(by_attack.get(attack, {}).get(metric)) for attack, metric in VERSUS_SHOWN)]
            for model, by_attack in versus["targets"].items()]
    return ["", f"## Each target against {versus['base']} (deployed, paired over seeds on the same candidates)", "",
            "Target minus base [95% t-interval across seeds] (± the smallest change detectable with 80% power); * "
            "the interval excludes 0. Every target of a size on the base's dataset has the same members and "
            "non-members (targets on another dataset are not compared with it).", "",
            *markdown_table(["target", *(f"{a} {m}" for a, m in VERSUS_SHOWN)], rows)]


def _robust_cell(t: pd.Series) -> str:
    if not math.isfinite(t.pgd_train_accuracy):  # a record from before robustness was measured
        return "not measured"
    return f"{t.pgd_train_accuracy:.4f} / {t.pgd_test_accuracy:.4f} ({t.robust_generalization_gap:+.4f})"


def findings(summary_metrics: Mapping[str, Any], base: str, students: Sequence[tuple[float, str]],
             robust: str | None) -> str:
    """The report's answer in plain words, with the numbers: what temperature scaling, distillation and robust
    training do to leakage, on the targets of the largest size."""
    size = summary_metrics["song2019"]["train_size"]
    targets = summary_metrics["targets"]

    def auroc(model: str, variant: str = "deployed", attack: str = "lira_offline") -> str:
        m = targets.get(f"mi{size}_{model}", {}).get(variant, {}).get(attack)
        return "—" if m is None else f"{m['auroc']:.3f} [{m['auroc_low']:.3f}, {m['auroc_high']:.3f}]"

    scaling = summary_metrics["temperature_scaling"]
    others = {a: v for a, v in scaling.items() if a != "correctness"}
    text = []
    if scaling:
        worst = max(others, key=lambda a: others[a]["max_abs_auroc_change"]) if others else None
        text.append(
            "Temperature scaling preserves the argmax, so the correctness attack cannot move (largest AUROC change "
            f"{scaling.get('correctness', {}).get('max_abs_auroc_change', float('nan')):.2g})"
            + (f"; over every target it moved the other attacks' AUROC by at most "
               f"{others[worst]['max_abs_auroc_change']:.3f} ({worst}; mean change "
               f"{others[worst]['mean_auroc_change']:+.3f})." if worst else "."))
    paired = summary_metrics.get("temperature_scaling_paired", {})

    def change(model: str, attack: str = "lira_offline", metric: str = "auroc") -> str | None:
        c = paired.get(f"mi{size}_{model}", {}).get(attack, {}).get(metric)
        if c is None:
            return None
        verdict = "distinguishable from zero" if c["excludes_zero"] else "not distinguishable from zero"
        return (f"{c['change']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}], {verdict} (the smallest change "
                f"detectable with 80% power: {c['detectable']:.4f}; {c['interval']}, {c['n_seeds']} seed(s))")

    measured = {name: change(name) for name in dict.fromkeys([base, robust]) if name}
    measured = {name: said for name, said in measured.items() if said}
    if measured:
        text.append("Paired on the same candidates, temperature scaling changed LiRA AUROC by "
                    + "; ".join(f"{said} on {name}" for name, said in measured.items()) + ".")
    if students:
        series = "; ".join(f"T={t:g}: {auroc(name)} -> {auroc(name, 'temperature_scaled')}" for t, name in students)
        text.append(f"LiRA AUROC at training size {size} (deployed -> temperature-scaled): base {base} {auroc(base)} "
                    f"-> {auroc(base, 'temperature_scaled')}; distilled students {series}.")
    base_versus = summary_metrics.get("versus_base", {}).get("targets", {})

    def against_base(model: str, attack: str = "lira_offline", metric: str = "auroc",
                     versus: Mapping[str, Any] = base_versus) -> str | None:
        c = versus.get(f"mi{size}_{model}", {}).get(attack, {}).get(metric)
        if c is None:
            return None
        if c["n_seeds"] == 1:
            return f"{c['change']:+.4f} (one seed: no interval)"
        verdict = "distinguishable from zero" if c["excludes_zero"] else "not distinguishable from zero"
        return (f"{c['change']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}], {verdict} (detectable with 80% power: "
                f"{c['detectable']:.4f}; {c['n_seeds']} seeds)")

    distilled = [(t, said) for t, name in students if (said := against_base(name))]
    if distilled:
        text.append(f"Distillation, paired with the base {base} on the same candidates: the students' LiRA AUROC "
                    "minus the base's is " + "; ".join(f"{said} at T={t:g}" for t, said in distilled) + ".")
    if robust is not None and (said := against_base(robust)):
        song_change = against_base(robust, SONG_ATTACK, "best_threshold_accuracy")
        text.append(f"The PGD-trained {robust} minus the base {base}, paired the same way: LiRA AUROC {said}"
                    + (f"; the confidence attack's best-threshold accuracy {song_change}" if song_change else "")
                    + ".")
    song = summary_metrics["song2019"]

    def robust_accuracy(model: str) -> str:
        t = targets.get(f"mi{size}_{model}", {}).get("target", {})
        if not math.isfinite(t.get("pgd_train_accuracy", math.nan)):
            return f"{model}'s PGD accuracy: not measured"
        return (f"{model}'s PGD accuracy {t['pgd_train_accuracy']:.3f} on its members, {t['pgd_test_accuracy']:.3f} "
                f"held out (robust gap {t['robust_generalization_gap']:+.3f})")

    if "robust" in song and "natural" in song:
        natural_target, robust_target = (song[block]["model"] for block in ("natural", "robust"))

        def acc(block: str) -> str:
            b = song.get(block)
            if b is None:  # e.g. no adversarial-input variant was run
                return "not measured"
            return (f"{100 * b['best_threshold_accuracy']:.2f}% [{100 * b['best_threshold_accuracy_low']:.2f}, "
                    f"{100 * b['best_threshold_accuracy_high']:.2f}]")
        natural_model, robust_model = (name.removeprefix(f"mi{size}_") for name in (natural_target, robust_target))
        text.append(f"Song et al. 2019's setting (Fashion-MNIST CNNs): the confidence attack's best-threshold "
                    f"accuracy is {acc('robust')} on the PGD-trained {robust_model} against {acc('natural')} on "
                    f"{natural_model}, and {acc('robust_adversarial_input')} with PGD-perturbed inputs (published: "
                    f"58.32%, 57.12%, 64.49%); offline LiRA AUROC {auroc(robust_model)} vs {auroc(natural_model)}, "
                    f"online {auroc(robust_model, attack='lira_online')} vs "
                    f"{auroc(natural_model, attack='lira_online')}. {robust_accuracy(robust_model)}; "
                    f"{robust_accuracy(natural_model)}.")
        robust_more = song.get("robust_claim", {})
        if "auroc_change" in robust_more:
            said = against_base(robust_model, versus=song.get("versus_natural", {}).get("targets", {}))
            text.append(f"Paired on the same candidates, the PGD-trained {robust_model} minus {natural_model}: "
                        f"offline LiRA AUROC {said}.")
        if (scaled := change(robust_model)) is not None:
            text.append(f"Temperature scaling changed {robust_model}'s offline LiRA AUROC by {scaled}.")
    return " ".join(text)
