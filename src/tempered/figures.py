"""Figures (seaborn). Each function takes tables and writes one PNG; no computation of results here."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tempered.artifacts import atomic_path  # noqa: E402

# PNG metadata without a timestamp or version string, so a rerun writes the same bytes.
PNG_METADATA = {"Software": None}


def apply_style() -> None:
    """The one look of every figure: white grid, the colour-blind-safe seaborn palette."""
    sns.set_theme(style="whitegrid", palette="colorblind")


# PDF metadata without a date or producer version, for the same reason.
PDF_METADATA = {"CreationDate": None, "Producer": None}


def pdf_path(png: Path | str) -> Path:
    """Where a figure's PDF goes: beside its PNG (rules declare it with the same pattern, .pdf)."""
    return Path(png).with_suffix(".pdf")


def save_figure(fig: plt.Figure, path: Path | str) -> None:
    """The figure as PNG at `path` and as PDF beside it (pdf_path), both byte-stable across reruns."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight", metadata=PNG_METADATA)
    with atomic_path(pdf_path(path)) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata=PDF_METADATA)
    plt.close(fig)


def training_curve(histories: pd.DataFrame, title: str) -> plt.Figure:
    """Loss and accuracy per epoch, one line per split (train / held-out), a band across seeds."""
    long = histories.melt(id_vars=["epoch", "seed"], var_name="series", value_name="value")
    long["metric"] = long["series"].str.rsplit("_", n=1).str[1].map({"loss": "loss", "nll": "loss",
                                                                     "accuracy": "accuracy"})
    long["split"] = long["series"].str.rsplit("_", n=1).str[0]
    apply_style()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ["loss", "accuracy"], strict=True):
        sns.lineplot(data=long[long["metric"] == metric], x="epoch", y="value", hue="split", marker="o",
                     errorbar=("pi", 100), ax=ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("cross-entropy" if metric == "loss" else "accuracy")
        ax.set_title(metric)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
