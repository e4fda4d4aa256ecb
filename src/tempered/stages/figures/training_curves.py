"""A model's training curve across seeds (workflow/rules/figures.smk): loss and accuracy per epoch."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tempered.reporting.figures import apply_style, legend_beside  # noqa: E402


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
    legend_beside(axes[1], title="split")  # both panels share it; inside, it sat on the curves
    if axes[0].get_legend() is not None:
        axes[0].get_legend().remove()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
