"""Figures of membership inference (issue 8): ROC curves on log-log axes per target, leakage against the
distillation temperature, before vs after temperature scaling, and leakage against generalization gap and ECE.

Each function takes scores or the membership table and returns a figure; tempered.figures.save_figure writes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from tempered.figures import apply_style  # noqa: E402
from tempered.ood.metrics import roc_points  # noqa: E402

# Log axes cannot show 0: rates are drawn from 1e-4 (below one sample in 1,000 non-members).
FLOOR = 1e-4
# The attack summarising leakage in the across-target figures: the strongest one where it runs.
HEADLINE_ATTACKS = ("lira_offline", "loss")


def roc_figure(scores: Mapping[str, Mapping[str, np.ndarray]], member: np.ndarray, title: str) -> plt.Figure:
    """One panel per variant, one curve per attack: TPR against FPR on log-log axes (Carlini et al. 2022), the
    chance line dashed. scores: {attack: {variant: per-sample scores}}; member: the true membership."""
    apply_style()
    variants = list(dict.fromkeys(v for by_variant in scores.values() for v in by_variant))
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 4), squeeze=False, sharey=True)
    for ax, variant in zip(axes[0], variants, strict=True):
        for attack, by_variant in scores.items():
            if variant not in by_variant:
                continue
            s = np.asarray(by_variant[variant], dtype=float)
            fpr, tpr = roc_points(s[member], s[~member])
            ax.plot(np.maximum(fpr, FLOOR), np.maximum(tpr, FLOOR), label=attack, linewidth=1.2)
        ax.plot([FLOOR, 1], [FLOOR, 1], "k--", linewidth=0.8, label="chance")
        ax.set(xscale="log", yscale="log", xlim=(FLOOR, 1), ylim=(FLOOR, 1), xlabel="false positive rate",
               title=variant.replace("_", " "))
        ax.legend(fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("true positive rate")
    fig.suptitle(f"{title}: membership ROC")
    fig.tight_layout()
    return fig


def _headline(frame: pd.DataFrame) -> pd.DataFrame:
    attack = next(a for a in (*HEADLINE_ATTACKS, frame.attack.iloc[0]) if a in set(frame.attack))
    return frame[frame.attack == attack].assign(headline=attack)


def leakage_vs_temperature(frame: pd.DataFrame, distilled: Mapping[str, float], base: Mapping[str, str]) -> plt.Figure:
    """AUROC and TPR at 1% FPR of every attack on the deployed students (and teachers) against their training T,
    the undistilled base model of each size as a horizontal line. distilled: {model: T}; base: {model: size}."""
    apply_style()
    rows = frame[(frame.variant == "deployed") & frame.model.isin(list(distilled))].copy()
    rows["T"] = rows.model.map(distilled)
    rows["role"] = np.where(rows.inner_model.str.startswith("teacher"), "teacher", "student")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, label in ((axes[0], "auroc", "AUROC"), (axes[1], "tpr_at_0.01_fpr", "TPR at 1% FPR")):
        if not rows.empty:
            sns.lineplot(data=rows, x="T", y=metric, hue="attack", style="role", markers=True, errorbar=None, ax=ax)
        for model in base:
            ref = frame[(frame.model == model) & (frame.variant == "deployed")]
            for attack, value in ref.groupby("attack")[metric].mean().items():
                if attack in HEADLINE_ATTACKS[:1]:
                    ax.axhline(value, color="gray", linestyle=":", linewidth=1)
                    ax.annotate(f"{model} ({attack})", (1, value), fontsize=7, color="gray",
                                xytext=(2, 2), textcoords="offset points")
        ax.set(xscale="log", xlabel="distillation temperature T (training; deployed at T=1)", ylabel=label)
    axes[0].axhline(0.5, color="black", linestyle="--", linewidth=0.8)
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
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sns.scatterplot(data=pivot, x="deployed", y="temperature_scaled", hue="attack", style="attack", s=50, ax=ax)
    lo = min(0.45, float(pivot[["deployed", "temperature_scaled"]].min().min()) - 0.02) if len(pivot) else 0.45
    hi = max(0.6, float(pivot[["deployed", "temperature_scaled"]].max().max()) + 0.02) if len(pivot) else 1.0
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="AUROC as deployed (T=1)", ylabel="AUROC after temperature scaling",
           title="Does temperature scaling change membership leakage?")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def leakage_vs_generalization(frame: pd.DataFrame) -> plt.Figure:
    """The headline attack's AUROC of every deployed target against its train-test accuracy gap and its ECE."""
    apply_style()
    rows = _headline(frame[frame.variant == "deployed"])
    per_model = rows.groupby("model").agg(auroc=("auroc", "mean"), gap=("generalization_gap", "mean"),
                                          ece=("ece", "mean"), robust=("robust_training", "first"),
                                          T=("training_temperature", "first")).reset_index()
    per_model["training"] = np.where(per_model.robust, "robust", np.where(per_model["T"] > 1, "distilled", "standard"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, x, label in ((axes[0], "gap", "generalization gap (train - test accuracy)"),
                         (axes[1], "ece", "ECE on non-members (deployed)")):
        sns.scatterplot(data=per_model, x=x, y="auroc", hue="training", style="training", s=60, ax=ax)
        for _, r in per_model.iterrows():
            ax.annotate(r.model, (r[x], r.auroc), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel=label, ylabel=f"{rows.headline.iloc[0] if len(rows) else ''} AUROC")
    fig.suptitle("Membership leakage against generalization and calibration")
    fig.tight_layout()
    return fig
