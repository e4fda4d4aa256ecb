"""Figures of membership inference (issue 8): ROC curves on log-log axes per target, leakage against the
distillation temperature, before vs after temperature scaling, and leakage against generalization gap and ECE.

Each function takes scores or the membership table and returns a figure; tempered.reporting.figures.save_figure
writes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from tempered.model_grid import ModelId  # noqa: E402
from tempered.ood.metrics import roc_points  # noqa: E402
from tempered.reporting.figures import apply_style, label_points, legend_beside, log_temperature_axis  # noqa: E402

# Log axes cannot show 0: rates are drawn from 1e-4 (below one sample in 1,000 non-members).
FLOOR = 1e-4
# The attack summarising leakage in the across-target figures: the strongest one where it runs.
HEADLINE_ATTACKS = ("lira_offline", "loss")


def roc_figure(scores: Mapping[str, Mapping[str, np.ndarray]], member: np.ndarray, title: str) -> plt.Figure:
    """One panel per variant, one curve per attack: TPR against FPR on log-log axes (Carlini et al. 2022), the
    chance line dashed. scores: {attack: {variant: per-sample scores}}; member: the true membership."""
    apply_style()
    variants = list(dict.fromkeys(v for by_variant in scores.values() for v in by_variant))
    # An attack keeps its colour in every panel (a panel may lack one), and one legend under the figure names
    # them all: in a panel's corner it covered the curves that drop to a TPR of 0.
    colours = {attack: f"C{i}" for i, attack in enumerate(scores)}
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 4), squeeze=False, sharey=True)
    for ax, variant in zip(axes[0], variants, strict=True):
        for attack, by_variant in scores.items():
            if variant not in by_variant:
                continue
            s = np.asarray(by_variant[variant], dtype=float)
            fpr, tpr = roc_points(s[member], s[~member])
            ax.plot(np.maximum(fpr, FLOOR), np.maximum(tpr, FLOOR), label=attack, linewidth=1.2,
                    color=colours[attack])
        ax.plot([FLOOR, 1], [FLOOR, 1], "k--", linewidth=0.8, label="chance")
        ax.set(xscale="log", yscale="log", xlim=(FLOOR, 1), ylim=(FLOOR, 1), xlabel="false positive rate",
               title=variant.replace("_", " "))
    axes[0, 0].set_ylabel("true positive rate")
    handles: dict[str, plt.Artist] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.suptitle(f"{title}: membership ROC")
    fig.tight_layout()
    fig.legend(list(handles.values()), list(handles), loc="upper center", bbox_to_anchor=(0.5, 0),
               ncols=min(len(handles), 7), fontsize=8)
    return fig


def _headline(frame: pd.DataFrame) -> pd.DataFrame:
    attack = next(a for a in (*HEADLINE_ATTACKS, frame.attack.iloc[0]) if a in set(frame.attack))
    return frame[frame.attack == attack].assign(headline=attack)


def leakage_vs_temperature(frame: pd.DataFrame, distilled: Mapping[str, ModelId],
                           base: Mapping[str, int]) -> plt.Figure:
    """AUROC and TPR at 1% FPR of every attack on the deployed students (and teachers) against their training T,
    the undistilled base model of each size as a horizontal line. distilled: {model: its ModelId}; base:
    {model: size}."""
    apply_style()
    rows = frame[(frame.variant == "deployed") & frame.model.isin(list(distilled))].copy()
    rows["T"] = rows.model.map(lambda m: distilled[m].temperature)
    rows["role"] = rows.model.map(lambda m: distilled[m].role)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "auroc", "AUROC"), (axes[1], "tpr_at_0.01_fpr", "TPR at 1% FPR")):
        if not rows.empty:
            sns.lineplot(data=rows, x="T", y=metric, hue="attack", style="role", markers=True, errorbar=None, ax=ax,
                         legend=ax is axes[0])
        for model in base:
            ref = frame[(frame.model == model) & (frame.variant == "deployed")]
            for attack, value in ref.groupby("attack")[metric].mean().items():
                if attack in HEADLINE_ATTACKS[:1]:
                    ax.axhline(value, color="gray", linestyle=":", linewidth=1)
                    # At the axes' left edge whatever the temperatures: at T=1 it fell outside a grid from T=10.
                    ax.annotate(f"{model} ({attack}, undistilled)", (0.01, value), xycoords=ax.get_yaxis_transform(),
                                fontsize=7, color="gray", xytext=(0, 2), textcoords="offset points",
                                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 0.5})
        log_temperature_axis(ax, [1.0, *rows["T"]], "distillation temperature T (training; deployed at T=1)")
        ax.set_ylabel(label)
    axes[0].axhline(0.5, color="black", linestyle="--", linewidth=0.8)
    # One legend for both panels, beside the figure: inside, seaborn's hue-and-style legend covered half a panel.
    handles, labels = axes[0].get_legend_handles_labels()
    if axes[0].get_legend() is not None:
        axes[0].get_legend().remove()
    if handles:
        axes[1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize=8)
    fig.suptitle("Membership leakage of distilled models against their training temperature")
    fig.tight_layout()
    return fig


def before_after_scaling(frame: pd.DataFrame) -> plt.Figure:
    """Per target and attack, AUROC as deployed against after temperature scaling (on the diagonal: unchanged).
    The correctness attack is argmax-only and must lie on it."""
    apply_style()
    pivot = (frame[frame.variant.isin(["deployed", "temperature_scaled"])]
             .pivot_table(index=["model", "attack"], columns="variant", values="auroc", aggfunc="mean")
             .reindex(columns=["deployed", "temperature_scaled"])  # a target without a fitted T has no scaled row
             .dropna().reset_index())
    fig, ax = plt.subplots(figsize=(7, 5))
    # Attacks that rank alike (confidence, loss, modified entropy) land on the same points: hollow markers, each
    # attack smaller than the one before, so coinciding points show as nested shapes instead of hiding each other.
    attacks = list(dict.fromkeys(pivot["attack"]))
    markers = ("o", "s", "D", "^", "v", "P", "X", "*")
    for i, attack in enumerate(attacks):
        points = pivot[pivot["attack"] == attack]
        ax.scatter(points["deployed"], points["temperature_scaled"], s=max(170 - 25 * i, 20),
                   marker=markers[i % len(markers)], facecolors="none", edgecolors=f"C{i}", linewidths=1.3,
                   label=attack)
    lo = min(0.45, float(pivot[["deployed", "temperature_scaled"]].min().min()) - 0.02) if len(pivot) else 0.45
    hi = max(0.6, float(pivot[["deployed", "temperature_scaled"]].max().max()) + 0.02) if len(pivot) else 1.0
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="AUROC as deployed (T=1)", ylabel="AUROC after temperature scaling",
           title="Does temperature scaling change membership leakage?")
    ax.set_aspect("equal")
    legend_beside(ax, fontsize=8, title="attack", title_fontsize=8)
    fig.tight_layout()
    return fig


def leakage_vs_generalization(frame: pd.DataFrame) -> plt.Figure:
    """The headline attack's AUROC of every deployed target against its train-test accuracy gap, its ECE and,
    where measured, its robust generalization gap (the same gap on PGD examples)."""
    apply_style()
    rows = _headline(frame[frame.variant == "deployed"])
    robust_gap = rows.get("robust_generalization_gap", pd.Series(np.nan, index=rows.index))
    per_model = rows.assign(robust_gap=robust_gap).groupby("model").agg(
        auroc=("auroc", "mean"), gap=("generalization_gap", "mean"), ece=("ece", "mean"),
        robust_gap=("robust_gap", "mean"), robust=("robust_training", "first"),
        T=("training_temperature", "first")).reset_index()
    per_model["training"] = np.where(per_model.robust, "robust", np.where(per_model["T"] > 1, "distilled", "standard"))
    panels = [("gap", "generalization gap (train - held-out accuracy)"), ("ece", "ECE on non-members (deployed)")]
    if per_model["robust_gap"].notna().any():  # records from before robustness was measured have none
        panels.append(("robust_gap", "robust generalization gap (on PGD examples)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), sharey=True)
    for ax, (x, label) in zip(axes, panels, strict=True):
        sns.scatterplot(data=per_model, x=x, y="auroc", hue="training", style="training", s=60, ax=ax,
                        legend=ax is axes[-1])
        ax.set(xlabel=label, ylabel=f"{rows.headline.iloc[0] if len(rows) else ''} AUROC")
        # Room inside the axes for the names beside the outermost points.
        ax.margins(x=0.15, y=0.12)
    legend_beside(axes[-1], fontsize=8, title="training", title_fontsize=8)
    fig.suptitle("Membership leakage against generalization, calibration"
                 + (" and robust generalization" if len(panels) > 2 else ""))
    fig.tight_layout()
    # Last, on the final layout: each name where it covers no other name and no point (coinciding models share one).
    for ax, (x, _) in zip(axes, panels, strict=True):
        shown = per_model[per_model[x].notna()]
        label_points(ax, shown[x], shown["auroc"], shown["model"])
    return fig
