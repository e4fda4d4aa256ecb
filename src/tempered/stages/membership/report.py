"""The membership-inference report over every target: one long table (target x seed x variant x attack), its
markdown, and the summary metrics DVC tracks and the reproduction report reads (Song et al. 2019's numbers on
the largest target size; what temperature scaling and distillation change)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tempered.artifacts import ArtifactError, read_json
from tempered.reporting.stats import mean_interval
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
        for variant, attacks in record["attacks"].items():
            for attack, m in attacks.items():
                row = {"model": record["model"], "inner_model": record["inner_model"], "seed": record["seed"],
                       **target, "variant": variant, "attack": attack, "accuracy": m.get("accuracy", math.nan)}
                for col in SCORE_COLUMNS:
                    row.update({col: m[col], f"{col}_low": m[f"{col}_low"], f"{col}_high": m[f"{col}_high"]})
                rows.append(row)
    return pd.DataFrame(rows)


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


def summary(frame: pd.DataFrame, base_model: str, robust_model: str | None) -> dict[str, Any]:
    """DVC metrics: every target's mean metrics over seeds; Song et al. 2019's three numbers on the largest size;
    the largest change temperature scaling makes to any attack's AUROC (correctness: zero by construction)."""
    per_target: dict[str, Any] = {}
    for (model, variant, attack), rows in frame.groupby(["model", "variant", "attack"], sort=True):
        entry = per_target.setdefault(model, {"target": {c: float(rows[c].mean()) for c in TARGET_COLUMNS}})
        metrics = {}
        for col in SCORE_COLUMNS:
            metrics.update(_mean_interval(rows, col))
        entry.setdefault(variant, {})[attack] = metrics
    largest = int(frame.train_size.max())
    song = {"train_size": largest, "attack": SONG_ATTACK}
    blocks = {"natural": (base_model, "deployed")}
    if robust_model is not None:
        blocks.update({"robust": (robust_model, "deployed"), "robust_adversarial_input": (robust_model,
                                                                                          "adversarial_input")})
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
    return {"targets": per_target, "song2019": song, "temperature_scaling": scaling}


def markdown(frame: pd.DataFrame) -> str:
    """Per variant: AUROC [95% interval] and TPR at 1% FPR of every attack, one row per target (seed means)."""
    lines = ["# Membership inference", "",
             "AUROC [95% bootstrap interval for one seed, t-interval across seeds] / TPR at 1% FPR; higher leaks "
             "more. Accuracy on the members (train) and on the non-members (held out: training digits no target "
             "saw); gap: train minus held out; ECE on the non-members, before -> after temperature scaling; "
             "PGD acc.: accuracy on the PGD examples (membership.adversarial_input) of the members and the "
             "non-members, and their gap (the robust generalization gap).",
             ""]
    targets = (frame.groupby("model", sort=False)[list(TARGET_COLUMNS)].mean()
               .sort_values(["train_size", "robust_training", "training_temperature"]))
    summary_rows = []
    for model, t in targets.iterrows():
        fitted = math.isfinite(t.fitted_temperature)
        summary_rows.append([model, int(t.train_size), f"{t.training_temperature:g}", f"{t.train_accuracy:.4f}",
                             f"{t.test_accuracy:.4f}", f"{t.generalization_gap:+.4f}",
                             f"{t.fitted_temperature:.3g}" if fitted else "not fitted: no finite optimum",
                             f"{t.ece:.4f} -> " + (f"{t.ece_scaled:.4f}" if fitted else "-"),
                             _robust_cell(t)])
    lines += markdown_table(["target", "size", "T (training)", "train acc.", "held-out acc.", "gap", "fitted T",
                             "ECE -> scaled", "PGD acc. train / held out (gap)"], summary_rows)
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
    return "\n".join(lines) + "\n"


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
    if students:
        series = "; ".join(f"T={t:g}: {auroc(name)} -> {auroc(name, 'temperature_scaled')}" for t, name in students)
        text.append(f"LiRA AUROC at training size {size} (deployed -> temperature-scaled): base {base} {auroc(base)} "
                    f"-> {auroc(base, 'temperature_scaled')}; distilled students {series}.")
    song = summary_metrics["song2019"]

    def robust_accuracy(model: str) -> str:
        t = targets.get(f"mi{size}_{model}", {}).get("target", {})
        if not math.isfinite(t.get("pgd_train_accuracy", math.nan)):
            return f"{model}'s PGD accuracy: not measured"
        return (f"{model}'s PGD accuracy {t['pgd_train_accuracy']:.3f} on its members, {t['pgd_test_accuracy']:.3f} "
                f"held out (robust gap {t['robust_generalization_gap']:+.3f})")

    if robust is not None and "robust" in song and "natural" in song:
        def acc(block: str) -> str:
            b = song[block]
            return (f"{100 * b['best_threshold_accuracy']:.2f}% [{100 * b['best_threshold_accuracy_low']:.2f}, "
                    f"{100 * b['best_threshold_accuracy_high']:.2f}]")
        text.append(f"Robust training: the confidence attack's best-threshold accuracy is {acc('robust')} on the "
                    f"PGD-trained {robust} against {acc('natural')} on {base}, and {acc('robust_adversarial_input')} "
                    f"with PGD-perturbed inputs (Song et al. 2019, Fashion-MNIST: 58.32%, 57.12%, 64.49%); LiRA "
                    f"AUROC {auroc(robust)} vs {auroc(base)}. {robust_accuracy(robust)}; {robust_accuracy(base)}.")
    return " ".join(text)
