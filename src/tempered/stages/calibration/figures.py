"""Figures of temperature scaling (Guo et al. 2017): reliability diagrams and the fitted T across models.

Each function takes a table and returns a figure; tempered.reporting.figures.save_figure writes it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from tempered.reporting.figures import apply_style, legend_beside, log_temperature_axis  # noqa: E402


def reliability_diagram(bins: pd.DataFrame, title: str, ece: dict[str, float]) -> plt.Figure:
    """One column per state (before / after scaling): accuracy per confidence bin against the diagonal (top)
    and the number of samples per bin on a log scale (bottom), each bar labelled with its count. The gap between
    a bin's accuracy and its mean confidence is hatched red.

    bins: rows of reliability_bins.csv (state, lower, upper, count, mean_confidence, accuracy).
    """
    apply_style()
    states = list(dict.fromkeys(bins["state"]))
    fig, axes = plt.subplots(2, len(states), figsize=(4.2 * len(states), 6), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.4]}, sharex=True)
    for col, state in enumerate(states):
        rows = bins[bins["state"] == state]
        width = (rows["upper"] - rows["lower"]).to_numpy()
        centers = rows["lower"].to_numpy() + width / 2
        top, bottom = axes[0, col], axes[1, col]
        filled = rows["count"].to_numpy() > 0
        top.bar(centers[filled], rows["accuracy"].to_numpy()[filled], width=width[filled] * 0.95,
                color="tab:blue", edgecolor="black", linewidth=0.5, label="accuracy")
        accuracy, confidence = rows["accuracy"].to_numpy()[filled], rows["mean_confidence"].to_numpy()[filled]
        # The gap spans accuracy to mean confidence, above or below: hatched, so no colours mix where it overlaps.
        top.bar(centers[filled], np.abs(confidence - accuracy), bottom=np.minimum(confidence, accuracy),
                width=width[filled] * 0.95, facecolor="none", edgecolor="tab:red", hatch="///", linewidth=0.8,
                label="gap to mean confidence")
        top.plot([0, 1], [0, 1], "k--", linewidth=1)
        top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"{state}: ECE {100 * ece[state]:.2f}%")
        counts = rows["count"].to_numpy()
        bottom.bar(centers, np.maximum(counts, 0), width=width * 0.95, color="gray")
        bottom.set_yscale("symlog", linthresh=1)
        bottom.set_ylim(0, max(int(counts.max()), 1) * 20)  # room for the fullest bin's count above its bar
        for x, n in zip(centers[filled], counts[filled], strict=True):
            bottom.text(x, n, str(int(n)), ha="center", va="bottom", fontsize=6, rotation=90)
        bottom.set(xlabel="confidence (max softmax)", ylabel="samples")
    # One legend for every column, under the figure: in the top-left corner it hid confident, accurate bins.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(title)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncols=2, fontsize=8)
    return fig


def fitted_vs_distillation_temperature(table: pd.DataFrame) -> plt.Figure:
    """Fitted T against the training T of each distilled model (log-log), teachers and students, one point per
    seed; the dotted line is fitted T = training T. Models outside the grid appear as horizontal lines."""
    apply_style()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    fitted = table[table["fitted"]]
    grid = fitted[fitted["distillation_temperature"].notna()]
    if len(grid):
        sns.scatterplot(data=grid, x="distillation_temperature", y="fitted_temperature", hue="role", style="role",
                        s=60, ax=ax)
        lo = min(grid["distillation_temperature"].min(), grid["fitted_temperature"].min())
        hi = max(grid["distillation_temperature"].max(), grid["fitted_temperature"].max())
        ax.plot([lo, hi], [lo, hi], "k:", linewidth=1, label="fitted T = training T")
    for i, (model, rows) in enumerate(fitted[fitted["distillation_temperature"].isna()].groupby("model")):
        ax.axhline(rows["fitted_temperature"].mean(), color=f"C{i + 3}", linestyle="--", linewidth=1,
                   label=f"{model} (trained at T=1)")
    # T=1 always in view: the models trained at T=1 are its reference.
    log_temperature_axis(ax, [1.0, *grid["distillation_temperature"], *grid["fitted_temperature"]],
                         "distillation (training) temperature")
    ax.set(yscale="log", ylabel="fitted temperature on validation")
    ax.yaxis.set_minor_formatter(NullFormatter())
    legend_beside(ax, fontsize=8)  # inside, it covered the fitted = training line between T=2 and T=10
    ax.set_title("Temperature scaling after distillation")
    fig.tight_layout()
    return fig
