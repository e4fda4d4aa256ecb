"""Figure steps (workflow/rules/figures.smk): a model's training curve across seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def plot_training_step(model_name: str, history_paths: Sequence[Path], out: Path) -> None:
    from tempered.reporting.figures import save_figure
    from tempered.stages.figures.training_curves import training_curve

    frames = [pd.read_csv(path) for path in history_paths]
    save_figure(training_curve(pd.concat(frames, ignore_index=True), f"{model_name}: training curve"), out)


def register(add_step) -> None:
    """This stage's CLI steps: training curves."""
    p = add_step("plot-training", lambda a: plot_training_step(a.model, [Path(h) for h in a.histories], Path(a.out)),
                 "training-curve figure of a model across seeds")
    p.add_argument("--model", required=True)
    p.add_argument("--histories", required=True, nargs="+")
    p.add_argument("--out", required=True)
