"""Figures of OOD detection: ROC curves per detector, score histograms in vs out, AUROC against distillation T.

Each function takes a long table and returns a figure; tempered.reporting.figures.save_figure writes it. The curves are
computed by the step (tempered.ood.bootstrap.roc_curve); nothing is computed here.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

from tempered.reporting.figures import apply_style, legend_under, log_temperature_axis  # noqa: E402


def roc_curves(curves: pd.DataFrame, title: str) -> plt.Figure:
    """One panel per OOD dataset, one ROC curve per detector (columns dataset, detector, fpr, tpr, auroc)."""
    apply_style()
    datasets = list(dict.fromkeys(curves["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 5.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        rows = curves[curves["dataset"] == dataset]
        for i, (detector, curve) in enumerate(rows.groupby("detector", sort=False)):
            ax.plot(curve["fpr"], curve["tpr"], color=f"C{i}", linewidth=1.2,
                    label=f"{detector} ({100 * curve['auroc'].iloc[0]:.1f})")
        ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
        ax.axhline(0.95, color="gray", linewidth=0.6, linestyle="--")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="FPR (OOD kept)", ylabel="TPR (MNIST test kept)", title=dataset)
    fig.tight_layout()
    # Under each panel (its AUROCs are its own): in the lower-right corner it covered weak detectors' curves.
    for ax in axes[0]:
        legend_under(ax, ncols=2, fontsize=7, title="detector (AUROC %)", title_fontsize=7)
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
            drawn = []
            for distribution, color in (("in", "tab:blue"), ("out", "tab:orange")):
                # One filled step path per set (ax.stairs), not a patch per bin: far faster to draw and save.
                density, _ = np.histogram(rows.loc[rows["distribution"] == distribution, "score"], bins=bins,
                                          density=True)
                ax.stairs(density, bins, fill=True, color=color, alpha=0.55)
                drawn.append(density[density > 0])
            ax.set_yscale("log")
            # Whole decades: a panel within one decade (ODIN's densities, ~200-6000) had its minor ticks labelled,
            # 2x10^2 to 6x10^3 in large type running into each other.
            positive = np.concatenate(drawn)
            if positive.size:
                ax.set_ylim(10.0 ** np.floor(np.log10(positive.min())), 10.0 ** np.ceil(np.log10(positive.max())))
            ax.yaxis.set_minor_formatter(NullFormatter())
            # ODIN at T=1000 spans ~0.100-0.102: few ticks, or their long labels run into each other.
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(dataset, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{detector}\ndensity (log)", fontsize=8)
    handles = [Patch(color="tab:blue", alpha=0.55, label="MNIST test (in)"),
               Patch(color="tab:orange", alpha=0.55, label="OOD set named above the column (out)")]
    fig.suptitle(title)
    fig.tight_layout()
    # Under the figure: inside the top-right panel it covered that panel's bars.
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0), ncols=2, fontsize=8)
    return fig


def auroc_vs_temperature(table: pd.DataFrame) -> plt.Figure:
    """AUROC of each detector against the distillation temperature of the students, one panel per OOD dataset;
    the undistilled base model at T=1 as a dashed line per detector. Mean over seeds, bars span the seeds.
    (columns dataset, detector, model, distillation_temperature, auroc)."""
    apply_style()
    datasets = list(dict.fromkeys(table["dataset"]))
    detectors = list(dict.fromkeys(table["detector"]))
    palette = {d: f"C{i}" for i, d in enumerate(detectors)}
    base_models = list(dict.fromkeys(table.loc[table["distillation_temperature"].isna(), "model"]))
    styles = dict(zip(base_models, ("--", ":", "-.", (0, (1, 3))), strict=False))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        rows = table[table["dataset"] == dataset]
        students = rows[rows["distillation_temperature"].notna()]
        if len(students):
            sns.lineplot(data=students, x="distillation_temperature", y="auroc", hue="detector", palette=palette,
                         marker="o", errorbar=("pi", 100), ax=ax, legend=False)
        base = rows[rows["distillation_temperature"].isna()]
        for (model, detector), group in base.groupby(["model", "detector"], sort=False):
            ax.axhline(group["auroc"].mean(), color=palette[detector], linestyle=styles.get(model, "--"),
                       linewidth=0.8)
        log_temperature_axis(ax, [1.0, *table["distillation_temperature"].dropna()],
                             "distillation temperature (students)")
        ax.set(ylabel="AUROC", title=dataset)
    # One key beside the figure, colours (detectors) and line styles (models outside the grid) apart: inside the
    # first panel it covered the base models' lines.
    handles = [Line2D([], [], color=palette[d], marker="o", label=d) for d in detectors]
    handles += [Line2D([], [], color="gray", linestyle=styles.get(m, "--"), linewidth=0.8, label=f"{m} (not distilled)")
                for m in base_models]
    fig.suptitle("OOD AUROC of distilled students against their distillation temperature")
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.9), fontsize=8,
               title="detector / model", title_fontsize=8)
    return fig
