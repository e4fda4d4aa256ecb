"""Figures of OOD detection: ROC curves per detector, score histograms in vs out, AUROC against distillation T.

Each function takes a long table and returns a figure; tempered.figures.save_figure writes it. The curves are
computed by the step (tempered.ood.bootstrap.roc_curve); nothing is computed here.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tempered.figures import apply_style  # noqa: E402


def roc_curves(curves: pd.DataFrame, title: str) -> plt.Figure:
    """One panel per OOD dataset, one ROC curve per detector (columns dataset, detector, fpr, tpr, auroc)."""
    apply_style()
    datasets = list(dict.fromkeys(curves["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        rows = curves[curves["dataset"] == dataset]
        for i, (detector, curve) in enumerate(rows.groupby("detector", sort=False)):
            ax.plot(curve["fpr"], curve["tpr"], color=f"C{i}", linewidth=1.2,
                    label=f"{detector} ({100 * curve['auroc'].iloc[0]:.1f})")
        ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
        ax.axhline(0.95, color="gray", linewidth=0.6, linestyle="--")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="FPR (OOD kept)", ylabel="TPR (MNIST test kept)", title=dataset)
        ax.legend(fontsize=7, title="detector (AUROC %)", title_fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def score_histograms(scores: pd.DataFrame, title: str) -> plt.Figure:
    """Rows: detectors; columns: OOD datasets; in each panel the report scores of MNIST test vs the OOD set
    (columns dataset, detector, distribution, score)."""
    apply_style()
    detectors = list(dict.fromkeys(scores["detector"]))
    datasets = list(dict.fromkeys(scores["dataset"]))
    fig, axes = plt.subplots(len(detectors), len(datasets), figsize=(3.2 * len(datasets), 2.2 * len(detectors)),
                             squeeze=False)
    for r, detector in enumerate(detectors):
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            rows = scores[(scores["detector"] == detector) & (scores["dataset"] == dataset)]
            lo, hi = rows["score"].min(), rows["score"].max()
            bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 41)
            for distribution, color in (("in", "tab:blue"), ("out", "tab:orange")):
                # One filled step path per set (ax.stairs), not a patch per bin: far faster to draw and save.
                density, _ = np.histogram(rows.loc[rows["distribution"] == distribution, "score"], bins=bins,
                                          density=True)
                ax.stairs(density, bins, fill=True, color=color, alpha=0.55,
                          label="MNIST test" if distribution == "in" else dataset)
            ax.set_yscale("log")
            # ODIN at T=1000 spans ~0.100-0.102: few ticks, or their long labels run into each other.
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(dataset, fontsize=9)
            if c == 0:
                ax.set_ylabel(detector, fontsize=8)
            if r == 0 and c == len(datasets) - 1:
                ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def auroc_vs_temperature(table: pd.DataFrame) -> plt.Figure:
    """AUROC of each detector against the distillation temperature of the students, one panel per OOD dataset;
    the undistilled base model at T=1 as a dashed line per detector. Mean over seeds, bars span the seeds.
    (columns dataset, detector, model, distillation_temperature, auroc)."""
    apply_style()
    datasets = list(dict.fromkeys(table["dataset"]))
    detectors = list(dict.fromkeys(table["detector"]))
    palette = {d: f"C{i}" for i, d in enumerate(detectors)}
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        rows = table[table["dataset"] == dataset]
        students = rows[rows["distillation_temperature"].notna()]
        if len(students):
            sns.lineplot(data=students, x="distillation_temperature", y="auroc", hue="detector", palette=palette,
                         marker="o", errorbar=("pi", 100), ax=ax, legend=ax is axes[0, 0])
        base = rows[rows["distillation_temperature"].isna()]
        styles = {m: s for m, s in zip(dict.fromkeys(base["model"]), ("--", ":", "-.", (0, (1, 3))), strict=False)}
        for (model, detector), group in base.groupby(["model", "detector"], sort=False):
            ax.axhline(group["auroc"].mean(), color=palette[detector], linestyle=styles.get(model, "--"),
                       linewidth=0.8)
        ax.set(xscale="log", xlabel="distillation temperature (students)", ylabel="AUROC", title=dataset)
    fig.suptitle("OOD AUROC of distilled students vs T; horizontal lines: models outside the grid ("
                 + ", ".join(f"{m} {s if isinstance(s, str) else '..'}" for m, s in styles.items()) + ")")
    fig.tight_layout()
    return fig
