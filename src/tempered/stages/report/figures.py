"""The report's summary figure, "temperature across the pipeline": one panel per quantity, temperature on a log
x-axis, our students across the distillation grid, the fitted temperature-scaling T and ODIN's tuned T, and the
published points where a paper gives one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tempered import paths
from tempered.model_grid import distilled_names
from tempered.reporting.figures import apply_style, legend_under, log_temperature_axis, plt
from tempered.stages.report import reference
from tempered.stages.report.claims import Metric, MissingKey, Unavailable, measure

PANELS = ("test accuracy", "ECE (15 bins)", "JSMA success rate", "C&W mean L2", "OOD AUROC (Fashion-MNIST)",
          "membership AUROC")


def published_points(claims_path: Path | str = paths.CLAIMS) -> dict[str, list[tuple[float, float]]]:
    """The published (temperature, value) points of each panel (the claims file, through
    tempered.stages.report.reference)."""
    paper = reference.published(claims_path)
    return {
        "JSMA success rate": sorted(paper.papernot_jsma_success.items()),
        "C&W mean L2": [(100.0, paper.cw_l2_mean["distilled_T100"])],
        "test accuracy": [(20.0, paper.papernot_accuracy["distilled_T20"])],
    }


def _mean_over_seeds(source: str, key: str, seeds: Sequence[int], root: Path, **fill: str) -> float | None:
    """The claims' own measurement (mean over seeds); None where this preset wrote no such file or key."""
    metric = Metric(source, key, **fill)
    if not all((root / f).exists() for f in metric.files(seeds)):
        return None
    try:
        return measure(metric, seeds, root).value
    except (MissingKey, Unavailable):
        return None


def temperature_table(config: Mapping[str, Any], root: Path, claims_path: Path | str = paths.CLAIMS) -> pd.DataFrame:
    """Long table (panel, series, temperature, value) of every point the figure draws, read from metrics, and the
    published points of the claims file."""
    seeds, rows = config["seeds"], []

    def add(panel: str, series: str, temperature: float | None, value: float | None) -> None:
        if temperature is not None and value is not None:
            rows.append({"panel": panel, "series": series, "temperature": float(temperature), "value": value})

    for t, student in zip(config["distillation"]["temperatures"], distilled_names(config, "student"), strict=True):
        add("test accuracy", "student at distillation T", t,
            _mean_over_seeds("EVAL_METRICS", "test/accuracy", seeds, root, model=student))
        add("ECE (15 bins)", "before temperature scaling", t,
            _mean_over_seeds("CALIBRATION_METRICS", "before/ece", seeds, root, model=student))
        add("ECE (15 bins)", "after temperature scaling", t,
            _mean_over_seeds("CALIBRATION_METRICS", "after/ece", seeds, root, model=student))
        add("ECE (15 bins)", "fitted scaling T of the student (x)",
            _mean_over_seeds("CALIBRATION_METRICS", "fitted_temperature", seeds, root, model=student),
            _mean_over_seeds("CALIBRATION_METRICS", "after/ece", seeds, root, model=student))
        for attack, panel, key in (("jsma", "JSMA success rate", "success_rate"),
                                   ("cw_l2", "C&W mean L2", "distortion_mean")):
            if attack in config["attacks"]["enabled"]:
                add(panel, "student at distillation T", t,
                    _mean_over_seeds("ATTACK_METRICS", key, seeds, root, attack=attack, model=student))
        add("OOD AUROC (Fashion-MNIST)", "MSP, student at distillation T", t,
            _mean_over_seeds("OOD_METRICS", "ood/fashion_mnist/msp/auroc", seeds, root, model=student))
    _membership_points(config, root, add)
    base = config["distillation"]["base_model"]
    add("OOD AUROC (Fashion-MNIST)", "ODIN on the base model, at its tuned T (x)",
        _mean_over_seeds("OOD_METRICS", "ood/fashion_mnist/odin/temperature", seeds, root, model=base),
        _mean_over_seeds("OOD_METRICS", "ood/fashion_mnist/odin/auroc", seeds, root, model=base))
    for panel, points in published_points(claims_path).items():
        for t, value in points:
            add(panel, "published", t, value)
    return pd.DataFrame(rows, columns=["panel", "series", "temperature", "value"])


def _membership_points(config: Mapping[str, Any], root: Path, add) -> None:
    """LiRA AUROC of the membership students of the largest size at their distillation T, deployed and after
    temperature scaling (at the fitted T, marked x)."""
    if not config["membership"]["distilled"]:
        return
    seeds, size = config["membership"]["seeds"], max(config["membership"]["train_sizes"])
    for t, student in zip(config["distillation"]["temperatures"], distilled_names(config, "student"), strict=True):
        target = f"targets/mi{size}_{student}"
        add("membership AUROC", f"LiRA, student at distillation T (size {size})", t,
            _mean_over_seeds("MEMBERSHIP_SUMMARY", f"{target}/deployed/lira_offline/auroc", seeds, root))
        add("membership AUROC", "LiRA after temperature scaling, at the fitted T (x)",
            _mean_over_seeds("MEMBERSHIP_SUMMARY", f"{target}/target/fitted_temperature", seeds, root),
            _mean_over_seeds("MEMBERSHIP_SUMMARY", f"{target}/temperature_scaled/lira_offline/auroc", seeds, root))


def temperature_summary(table: pd.DataFrame) -> plt.Figure:
    """Small multiples, one per quantity, on one temperature axis (decades from the coldest to the hottest point
    drawn); each panel's legend under it, where it covers no point; a panel with nothing measured says so."""
    apply_style()
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5))
    for ax, panel in zip(axes.flat, PANELS, strict=True):
        data = table[table["panel"] == panel]
        measured = data[data["series"] != "published"]
        if measured.empty:
            ax.text(0.5, 0.5, "not measured at this preset", ha="center", va="center", transform=ax.transAxes)
        for series, points in data.groupby("series", sort=True):
            points = points.sort_values("temperature")
            style = {"marker": "*", "markersize": 12, "linestyle": "none", "color": "black"} \
                if series == "published" else {"marker": "o"}
            if str(series).endswith("(x)"):
                style = {"marker": "x", "markersize": 9, "linestyle": "none"}
            ax.plot(points["temperature"], points["value"], label=series, **style)
        log_temperature_axis(ax, table["temperature"], "temperature (log scale)")
        ax.set_ylabel(panel)
        ax.set_title(panel)
    fig.tight_layout()  # first the panels' size, then each legend at its x-axis label
    for ax in axes.flat:
        legend_under(ax, fontsize=7)
    fig.suptitle("Temperature across the pipeline")
    fig.tight_layout()
    return fig
