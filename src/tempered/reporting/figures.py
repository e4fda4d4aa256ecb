"""What every figure shares (seaborn): the style, saving a PNG (and PDF) byte-stable, legends, the temperature
axis, labelled points. The figures themselves live with the stages that draw them (tempered.stages.<stage>)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
from matplotlib.transforms import Bbox, ScaledTranslation  # noqa: E402

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


def legend_beside(ax: plt.Axes, **kwargs) -> Legend | None:
    """The axes' legend outside it, to its right: a legend inside the axes covers whatever data falls there."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, **kwargs)


def legend_under(ax: plt.Axes, ncols: int = 1, **kwargs) -> Legend | None:
    """The axes' legend under its x-axis label, outside the axes. Placed from the axes' bottom edge by the height
    of the tick labels and axis label, which are sized in points: a later tight_layout moves it with the axes."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if not handles:
        return None
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    drop = (ax.get_window_extent(renderer).y0 - ax.xaxis.get_tightbbox(renderer).y0) / fig.dpi + 0.05
    anchor = ax.transAxes + ScaledTranslation(0, -drop, fig.dpi_scale_trans)
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=anchor,
                     borderaxespad=0, ncols=ncols, **kwargs)


def decade_limits(values: Iterable[float]) -> tuple[float, float] | None:
    """Log-axis limits around the values with at least two powers of ten inside, so the axis is labelled at its
    decades (1, 10, 100) and never at crowded minor ticks (2x10^1 3x10^1 4x10^1 over 20-100); None without a
    positive value."""
    finite = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    if not finite:
        return None
    lo, hi = min(finite) / 1.5, max(finite) * 1.5
    if math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) >= 1:
        return lo, hi
    first = math.floor(math.log10(min(finite)))
    last = max(math.ceil(math.log10(max(finite))), first + 1)
    return min(lo, 10.0 ** first / 1.4), max(hi, 10.0 ** last * 1.4)


def log_temperature_axis(ax: plt.Axes, temperatures: Iterable[float], label: str | None = None) -> None:
    """A log x-axis for temperatures: decade limits (decade_limits), labels only at the decades."""
    ax.set_xscale("log")
    limits = decade_limits(temperatures)
    if limits is not None:
        ax.set_xlim(*limits)
    ax.xaxis.set_minor_formatter(NullFormatter())
    if label is not None:
        ax.set_xlabel(label)


# Where a point's label may go, in points from the point: beside it first, then further up or down with a leader.
_LABEL_OFFSETS = ([(6, 3, "left", "bottom"), (6, -3, "left", "top"), (-6, 3, "right", "bottom"),
                   (-6, -3, "right", "top")]
                  + [(dx, sign * 9 * k, ha, "center") for k in range(1, 7) for sign in (1, -1)
                     for dx, ha in ((8, "left"), (-8, "right"))])


def _words_extent(text: plt.Annotation, renderer) -> Bbox:
    """An annotation's text on screen without its leader line (Annotation.get_window_extent includes the line,
    which always touches the point)."""
    text.update_positions(renderer)
    return Text.get_window_extent(text, renderer)


def label_points(ax: plt.Axes, x: Sequence[float], y: Sequence[float], labels: Sequence[str],
                 fontsize: float = 6, marker_pt: float = 4) -> list[plt.Annotation]:
    """Name each point beside it so that no name covers another or any point of the axes.

    Points that coincide on screen share one label ("a = b"). Each label takes the first free place among
    _LABEL_OFFSETS (a thin leader line when it is moved away from its point), in a fixed order of points: the
    same inputs place the same labels. Call it last, after the figure's layout: it measures text on screen."""
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    to_screen = ax.transData.transform
    screen = [tuple(to_screen((float(a), float(b)))) for a, b in zip(x, y, strict=True)]
    groups: dict[tuple[int, int], list[str]] = {}
    for (sx, sy), label in sorted(zip(screen, labels, strict=True), key=lambda p: (-p[0][1], p[0][0], p[1])):
        groups.setdefault((round(sx), round(sy)), []).append(str(label))
    radius = marker_pt * fig.dpi / 72
    markers = [Bbox.from_extents(sx - radius, sy - radius, sx + radius, sy + radius)
               for coll in ax.collections for sx, sy in coll.get_transform().transform(coll.get_offsets())]
    markers += [Bbox.from_extents(sx - radius, sy - radius, sx + radius, sy + radius) for sx, sy in screen]
    frame = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    texts = []
    for (sx, sy), names in groups.items():
        xy = tuple(ax.transData.inverted().transform((sx, sy)))
        chosen = None
        for dx, dy, ha, va in _LABEL_OFFSETS:
            leader = {"arrowprops": {"arrowstyle": "-", "color": "0.5", "linewidth": 0.5,
                                     "shrinkA": 0, "shrinkB": radius * 72 / fig.dpi}} if abs(dy) > 3 else {}
            text = ax.annotate(" = ".join(names), xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=fontsize, **leader)
            box = _words_extent(text, renderer).padded(1)
            free = (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                    and not any(box.overlaps(other) for other in (*placed, *markers)))
            if free:
                chosen = (text, box)
                break
            text.remove()
        if chosen is None:  # nowhere free: beside the point all the same, never silently dropped
            dx, dy, ha, va = _LABEL_OFFSETS[0]
            text = ax.annotate(" = ".join(names), xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=fontsize)
            chosen = (text, _words_extent(text, renderer))
        texts.append(chosen[0])
        placed.append(chosen[1])
    return texts

