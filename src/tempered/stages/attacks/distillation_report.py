"""The distillation report: accuracy, attack success, distortion, robustness and gradient magnitudes per
distillation temperature, beside the published numbers (tempered.stages.report.reference), as a table and figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from tempered.artifacts import write_bytes, write_metrics, write_table  # noqa: E402
from tempered.reporting.figures import apply_style, legend_beside, log_temperature_axis, save_figure  # noqa: E402
from tempered.reporting.summary import across_seeds  # noqa: E402
from tempered.reporting.tables import markdown_table  # noqa: E402
from tempered.stages import distillation_temperature  # noqa: E402
from tempered.stages.report import reference  # noqa: E402

ATTACK_LABELS = {"jsma": "JSMA (softmax, T=1)", "jsma_known_t": "JSMA (softmax at the training T)",
                 "fgsm": "FGSM", "pgd": "PGD", "cw_l2": "C&W L2 (logits)"}


def role_of(config: Mapping[str, Any], model: str) -> str:
    """teacher or student on the distillation grid; base for the undistilled base model."""
    return config.model_id(model).role or "base"


def log10_mean_abs(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-sample log10 mean |dF/dx| (the gradients step's log-space value; -inf where an older file underflowed)."""
    if "log10_mean_abs" in arrays:
        return np.asarray(arrays["log10_mean_abs"], dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log10(np.asarray(arrays["mean_abs"], dtype=np.float64))


def tidy_results(config, eval_metrics: Sequence[dict], attack_metrics: Sequence[dict],
                 gradients: Mapping[str, Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """One row per (model, seed, quantity): the long table every summary and figure is drawn from."""
    rows = []
    for m in eval_metrics:
        rows.append({"model": m["model"], "seed": m["seed"], "quantity": "test_accuracy",
                     "value": m["test"]["accuracy"]})
    for m in attack_metrics:
        for key in ("success_rate", "distortion_mean", "distortion_median", "features_changed_fraction_mean",
                    "robustness_features_fraction"):
            if key in m:
                rows.append({"model": m["model"], "seed": m["seed"], "quantity": f"{m['attack']}.{key}",
                             "value": m[key]})
    for key, arrays in gradients.items():
        model, seed = key.split("/")
        rows.append({"model": model, "seed": int(seed.removeprefix("seed")),
                     "quantity": "gradient_mean_abs_median", "value": float(np.median(arrays["mean_abs"]))})
        # The log10 is what compares students: a hot student's gradients lie below float64's range.
        log10_median = float(np.median(log10_mean_abs(arrays)))
        if np.isfinite(log10_median):
            rows.append({"model": model, "seed": int(seed.removeprefix("seed")),
                         "quantity": "gradient_log10_mean_abs_median", "value": log10_median})
    frame = pd.DataFrame(rows)
    frame["role"] = frame["model"].map(lambda m: role_of(config, m))
    frame["T"] = frame["model"].map(lambda m: distillation_temperature(config, m))
    return frame


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% interval across seeds of every quantity per model, with the paper's value beside."""
    rows = []
    for (model, role, temperature, quantity), group in frame.groupby(["model", "role", "T", "quantity"],
                                                                    dropna=False, sort=True):
        stats = across_seeds(group["value"].tolist())
        rows.append({"model": model, "role": role, "T": temperature, "quantity": quantity,
                     "mean": stats["mean"], "ci95_low": stats.get("ci95_low", np.nan),
                     "ci95_high": stats.get("ci95_high", np.nan), "n_seeds": stats["n_seeds"],
                     "paper": paper_value(role, temperature, quantity)})
    return pd.DataFrame(rows)


def paper_value(role: str, temperature: float | None, quantity: str) -> float:
    paper = reference.published()
    if quantity == "jsma.success_rate":
        if role == "base":
            return paper.papernot_jsma_success_base
        if role == "student" and temperature in paper.papernot_jsma_success:
            return paper.papernot_jsma_success[temperature]
    if quantity == "jsma.robustness_features_fraction" and role == "base":
        return paper.papernot_robustness["base"]
    if quantity == "test_accuracy" and role == "base":
        return paper.papernot_accuracy["base"]
    if quantity == "test_accuracy" and role == "student" and temperature == 20:
        return paper.papernot_accuracy["distilled_T20"]
    if quantity == "cw_l2.success_rate" and role in ("base", "student"):
        return paper.cw_success
    if quantity == "cw_l2.distortion_mean" and role == "base":
        return paper.cw_l2_mean["base"]
    if quantity == "cw_l2.distortion_mean" and role == "student" and temperature == 100:
        return paper.cw_l2_mean["distilled_T100"]
    return np.nan


def markdown(table: pd.DataFrame, attacks: Sequence[str]) -> str:
    """Wide view: one row per deployed model, success and distortion per attack; '(paper x)' beside ours."""
    def cell(model: str, quantity: str, digits: int = 3) -> str:
        row = table[(table["model"] == model) & (table["quantity"] == quantity)]
        if row.empty:
            return "-"
        mean, paper = row["mean"].iloc[0], row["paper"].iloc[0]
        text = f"{mean:.{digits}f}"
        if not np.isnan(row["ci95_low"].iloc[0]):
            text += f" [{row['ci95_low'].iloc[0]:.{digits}f}, {row['ci95_high'].iloc[0]:.{digits}f}]"
        return text + (f" (paper {paper:.{digits}f})" if not np.isnan(paper) else "")

    deployed = table[table["role"].isin(["base", "student"])][["model", "role", "T"]].drop_duplicates()
    deployed = deployed.sort_values("T", na_position="first")
    header = ["model", "T", "test accuracy"]
    for attack in attacks:
        header += [f"{attack} success", f"{attack} distortion"]
    header += ["JSMA robustness (features changed)", "median log10 mean-abs input gradient"]
    rows = []
    for _, r in deployed.iterrows():
        cells = [r["model"], "-" if np.isnan(r["T"]) else f"{r['T']:g}", cell(r["model"], "test_accuracy", 4)]
        for attack in attacks:
            cells += [cell(r["model"], f"{attack}.success_rate"), cell(r["model"], f"{attack}.distortion_mean")]
        cells += [cell(r["model"], "jsma.robustness_features_fraction"),
                  cell(r["model"], "gradient_log10_mean_abs_median", 2)]
        rows.append(cells)
    notes = [
        "",
        "Success: fraction of all attempts (targeted attacks: every drawn test sample x its 9 other classes);",
        "distortion: mean over successful attempts (JSMA: L0 features, C&W: L2, FGSM/PGD: Linf).",
        "Input gradient: per sample, log10 of the mean over classes and pixels of |dF_j/dx_i| of the softmax at",
        "T=1, in float64 and log space (a T=100 student's lie below 1e-308); median over samples.",
        "Brackets: 95% t-interval across training seeds (absent with one seed). Paper values from",
        "Papernot et al. 2016 (S&P) and Carlini & Wagner 2016/2017, cited with each number in workflow/claims.yaml.",
    ]
    return "\n".join(["# Defensive distillation across the temperature grid", "", *markdown_table(header, rows),
                      *notes, *claims(table, attacks)]) + "\n"


def _mean(table: pd.DataFrame, model: str, quantity: str) -> float:
    row = table[(table["model"] == model) & (table["quantity"] == quantity)]
    return float(row["mean"].iloc[0]) if len(row) else np.nan


def claims(table: pd.DataFrame, attacks: Sequence[str]) -> list[str]:
    """Whether the papers' two findings are seen here, with the numbers behind each verdict.

    Papernot et al. 2016: JSMA success falls steeply with T (seen: success at the highest T is below half
    the undistilled model's). Carlini & Wagner 2016: C&W L2 on the logits still succeeds (seen: >= 95% at
    every T) with distortion close to the undistilled model's (within 1.5x).
    """
    base = table[table["role"] == "base"]["model"].iloc[0]
    students = table[table["role"] == "student"][["model", "T"]].drop_duplicates().sort_values("T")
    if students.empty:
        return []
    paper = reference.published()
    hottest = students.iloc[-1]
    lines = ["", "## Do we see what the papers report?", ""]
    if "jsma" in attacks:
        before, after = _mean(table, base, "jsma.success_rate"), _mean(table, hottest["model"], "jsma.success_rate")
        seen = after < 0.5 * before
        lines.append(f"- Papernot et al.: JSMA success falls steeply with T — {'seen' if seen else 'NOT seen'}: "
                     f"{before:.3f} undistilled -> {after:.3f} at T={hottest['T']:g} "
                     f"(paper: {paper.papernot_jsma_success_base:.3f} -> "
                     f"{paper.papernot_jsma_success[100]:.3f} at T=100).")
    if "jsma_known_t" in attacks:
        after = _mean(table, hottest["model"], "jsma_known_t.success_rate")
        lines.append(f"- Gradient masking: JSMA on softmax(z/T) with T known succeeds at {after:.3f} on "
                     f"T={hottest['T']:g} (JSMA at T=1: {_mean(table, hottest['model'], 'jsma.success_rate'):.3f}).")
    gradient = [(t, _mean(table, m, "gradient_log10_mean_abs_median")) for m, t in students.itertuples(index=False)]
    gradient = [(t, g) for t, g in gradient if np.isfinite(g)]
    if len(gradient) >= 2:
        (t_cold, cold), (t_hot, hot) = gradient[0], gradient[-1]
        falls = bool(np.all(np.diff([g for _, g in gradient]) < 0))
        lines.append(f"- Papernot et al.: input gradients of the softmax shrink as T grows (by up to 1e30) — "
                     f"{'seen' if falls else 'NOT seen'} across the students: median log10 mean |dF/dx| "
                     f"{cold:.1f} at T={t_cold:g} -> {hot:.1f} at T={t_hot:g}, {cold - hot:.1f} orders of "
                     f"magnitude (undistilled: {_mean(table, base, 'gradient_log10_mean_abs_median'):.1f}).")
    if "cw_l2" in attacks:
        rates = [_mean(table, m, "cw_l2.success_rate") for m in students["model"]]
        base_l2 = _mean(table, base, "cw_l2.distortion_mean")
        hot_l2 = _mean(table, hottest["model"], "cw_l2.distortion_mean")
        seen = min(rates) >= 0.95 and hot_l2 <= 1.5 * base_l2
        lines.append(f"- Carlini & Wagner: C&W L2 on the logits still succeeds with distortion close to the "
                     f"undistilled model's — {'seen' if seen else 'NOT seen'}: success {min(rates):.3f} to "
                     f"{max(rates):.3f} across T; mean L2 {base_l2:.3f} undistilled vs {hot_l2:.3f} at "
                     f"T={hottest['T']:g} (paper: 100%; {paper.cw_l2_mean['base']} vs "
                     f"{paper.cw_l2_mean['distilled_T100']} at T=100).")
    return lines


def _students(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["role"] == "student"]


def success_figure(frame: pd.DataFrame, attacks: Sequence[str]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    palette = dict(zip(attacks, sns.color_palette("colorblind", len(attacks)), strict=True))
    for attack in attacks:
        data = _students(frame)[_students(frame)["quantity"] == f"{attack}.success_rate"]
        sns.lineplot(data=data, x="T", y="value", marker="o", ax=ax, color=palette[attack],
                     label=ATTACK_LABELS[attack], errorbar=("pi", 100))
        base = frame[(frame["role"] == "base") & (frame["quantity"] == f"{attack}.success_rate")]["value"]
        if len(base):
            ax.axhline(base.mean(), color=palette[attack], linestyle=":", linewidth=1)
    papers = sorted(reference.published().papernot_jsma_success.items())
    ax.scatter([t for t, _ in papers], [v for _, v in papers], marker="X", s=80, color="black", zorder=5,
               label="Papernot et al. 2016, JSMA")
    log_temperature_axis(ax, [*frame["T"].dropna(), *(t for t, _ in papers)],
                         "distillation temperature T (students, deployed at T=1)")
    ax.set(ylabel="attack success rate", ylim=(-0.02, 1.02),
           title="Attack success vs distillation temperature (dotted: undistilled model)")
    legend_beside(ax, fontsize=8)  # inside, it covered the C&W and PGD curves between T=10 and T=100
    return fig


def robustness_figure(frame: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for attack in ("jsma", "jsma_known_t"):
        data = _students(frame)[_students(frame)["quantity"] == f"{attack}.robustness_features_fraction"]
        if len(data):
            sns.lineplot(data=data, x="T", y="value", marker="o", ax=ax, label=ATTACK_LABELS[attack])
    paper = reference.published().papernot_robustness
    ax.axhline(paper["base"], color="grey", linestyle=":", label="paper, undistilled")
    ax.axhline(paper["distilled"], color="black", linestyle="--", label="paper, distilled")
    measured = _students(frame)[_students(frame)["quantity"].str.endswith(".robustness_features_fraction")]
    if measured.empty:
        ax.text(0.5, 0.5, "no student's robustness measured\n(see not_measured in its attack metrics)",
                ha="center", va="center", fontsize=9, transform=ax.transAxes)
    log_temperature_axis(ax, [1.0, *_students(frame)["T"].dropna()], "distillation temperature T")
    ax.set(ylabel="fraction of features changed",
           title="Robustness: fewest features JSMA changes per sample (failures at the cap)")
    legend_beside(ax, fontsize=8)  # inside, it covered the paper's distilled line
    return fig


def accuracy_figure(frame: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    data = frame[(frame["quantity"] == "test_accuracy") & frame["role"].isin(["teacher", "student"])]
    sns.lineplot(data=data, x="T", y="value", hue="role", marker="o", ax=ax, errorbar=("pi", 100))
    base = frame[(frame["role"] == "base") & (frame["quantity"] == "test_accuracy")]["value"]
    if len(base):
        ax.axhline(base.mean(), color="grey", linestyle=":", label="undistilled")
    ax.scatter([20], [reference.published().papernot_accuracy["distilled_T20"]], marker="X", color="black",
               label="paper, distilled T=20")
    log_temperature_axis(ax, [20.0, *data["T"].dropna()], "distillation temperature T")
    ax.set(ylabel="test accuracy", title="Accuracy vs temperature")
    legend_beside(ax, fontsize=8)  # inside, it covered the paper's point at T=20
    return fig


def gradients_figure(config, gradients: Mapping[str, Mapping[str, np.ndarray]]) -> plt.Figure:
    """Histogram per model of the per-sample log10 mean |dF/dx| (float64, log space: no underflow clipping);
    a sample whose gradient is exactly 0 has no logarithm and is counted in the title instead."""
    rows, zeros = [], 0
    by_temperature = sorted(gradients.items(),
                            key=lambda kv: distillation_temperature(config, kv[0].split("/")[0]) or 0.0)
    for key, arrays in by_temperature:
        model = key.split("/")[0]
        temperature = distillation_temperature(config, model)
        label = "undistilled" if temperature is None else f"T={temperature:g}"
        values = log10_mean_abs(arrays)
        zeros += int((~np.isfinite(values)).sum())
        rows += [{"model": label, "log10 mean |dF/dx|": v} for v in values[np.isfinite(values)]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if rows:
        sns.histplot(pd.DataFrame(rows), x="log10 mean |dF/dx|", hue="model", element="step", fill=False, ax=ax,
                     bins=40)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)  # off the histograms
    ax.set_title("Input-gradient magnitudes of the deployed softmax, per sample"
                 + (f" ({zeros} exactly 0, not shown)" if zeros else ""))
    return fig


def example_caption(label: int, target: int) -> str:
    """What the model did to one successful adversarial example: true class -> class predicted on it. A targeted
    attack succeeds only where the model predicts its target; an untargeted one (target -1: FGSM, PGD) only where
    it predicts anything but the label, and the attack's arrays do not keep which class that was."""
    return f"{label} \u2192 {target}" if target >= 0 else f"{label} \u2192 not {label}"


def examples_figure(config, adversarial: Mapping[str, Mapping[str, np.ndarray]]) -> plt.Figure:
    """One row per attack, one column per model: the first attempt of the first seed that succeeded, captioned
    with its true class and the class the model predicts on it (example_caption)."""
    cells: dict[tuple[str, str], tuple[np.ndarray, str]] = {}
    for path, arrays in adversarial.items():
        attack, model = Path(path).parts[-3], Path(path).parts[-2]
        hits = np.flatnonzero(arrays["success"])
        if (attack, model) not in cells and len(hits):
            cells[(attack, model)] = (arrays["x_adv"][hits[0], 0],
                                      example_caption(int(arrays["label"][hits[0]]), int(arrays["target"][hits[0]])))
    attacks = sorted({a for a, _ in cells} | {Path(p).parts[-3] for p in adversarial})
    models = sorted({Path(p).parts[-2] for p in adversarial},
                    key=lambda m: (distillation_temperature(config, m) or 0.0))
    fig, axes = plt.subplots(len(attacks), len(models), figsize=(1.5 * len(models) + 1, 1.8 * len(attacks) + 0.6),
                             squeeze=False)
    for i, attack in enumerate(attacks):
        for j, model in enumerate(models):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if (attack, model) in cells:
                image, caption = cells[(attack, model)]
                ax.imshow(image, cmap="gray", vmin=0, vmax=1)
                ax.set_xlabel(caption, fontsize=9, labelpad=2)
            else:
                ax.text(0.5, 0.5, "no success", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            if i == 0:
                ax.set_title(model, fontsize=8)
            if j == 0:
                ax.set_ylabel(attack, fontsize=8)
    fig.suptitle("Adversarial examples (first success per attack and model)\n"
                 "under each: true class \u2192 class the model predicts on it", fontsize=10)
    fig.tight_layout()
    return fig


def write_distillation_report(config, eval_metrics, attack_metrics, gradients, adversarial, outputs) -> None:
    attacks = list(config["attacks"]["enabled"])
    frame = tidy_results(config, eval_metrics, attack_metrics, gradients)
    table = summary_table(frame)
    write_table(outputs["table"], table)
    write_bytes(outputs["markdown"], markdown(table, attacks).encode())
    metrics: dict[str, dict[str, float]] = {}
    for _, r in table.iterrows():
        metrics.setdefault(r["model"], {})[r["quantity"]] = float(r["mean"])
    write_metrics(outputs["metrics"], metrics)
    apply_style()
    success, robustness, accuracy, grads, examples = outputs["figures"]
    save_figure(success_figure(frame, attacks), success)
    save_figure(robustness_figure(frame), robustness)
    save_figure(accuracy_figure(frame), accuracy)
    save_figure(gradients_figure(config, gradients), grads)
    save_figure(examples_figure(config, adversarial), examples)
