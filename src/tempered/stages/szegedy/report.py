"""Szegedy et al. 2014 ("Intriguing properties of neural networks") section 4 report: Tables 1-4 and the
adversarial-training comparison beside the published numbers (tempered.stages.report.reference), as CSV, markdown, one
metrics file, a transfer-matrix heatmap and per-model Figure-5-style example grids.

Every number is a mean over training seeds. Errors are fractions. Transfer error = fraction of a set's
successful adversarial examples that a model misclassifies (argmax != true label), so the diagonal is 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from tempered.artifacts import write_bytes, write_metrics, write_table  # noqa: E402
from tempered.reporting.figures import save_figure  # noqa: E402
from tempered.reporting.tables import markdown_table  # noqa: E402
from tempered.stages.report import reference  # noqa: E402

TABLE_NAMES = ("table1", "table2", "table3", "table4", "adversarial_training")
PERTURBATION_GAIN = 10.0  # the paper's Figure 5 shows the difference magnified 10x


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(values)) if values else np.nan


def _by_model(records: Sequence[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for record in records:
        grouped.setdefault(record["model"], []).append(record)
    return grouped


def table1(config, models: Sequence[str], eval_metrics, training_set_error, attack_metrics) -> pd.DataFrame:
    labels = config["szegedy"]["paper_labels"]
    ev, tr, at = _by_model(eval_metrics), _by_model(training_set_error), _by_model(attack_metrics)
    rows = []
    for m in models:
        paper = reference.published().szegedy_table1.get(labels[m], {})
        rows.append({
            "model": m, "paper_label": labels[m], "n_seeds": len(ev.get(m, [])),
            "train_error": _mean([r["error_rate"] for r in tr.get(m, [])]),
            "test_error": _mean([r["test"]["error_rate"] for r in ev.get(m, [])]),
            "distortion_mean": _mean([r.get("distortion_mean", np.nan) for r in at.get(m, [])]),
            "distortion_median": _mean([r.get("distortion_median", np.nan) for r in at.get(m, [])]),
            "attack_success_rate": _mean([r["success_rate"] for r in at.get(m, [])]),
            "paper_train_error": paper.get("train_error", np.nan),
            "paper_test_error": paper.get("test_error", np.nan),
            "paper_distortion": paper.get("distortion", np.nan),
        })
    return pd.DataFrame(rows)


def table3(config, models: Sequence[str], eval_metrics, training_set_error, attack_metrics) -> pd.DataFrame:
    labels = config["szegedy"]["paper_labels"]
    ev, tr, at = _by_model(eval_metrics), _by_model(training_set_error), _by_model(attack_metrics)
    rows = []
    for m in models:
        own = config.model(m)["train_set"]
        paper = reference.published().szegedy_table3.get(labels[m], {})
        row = {"model": m, "paper_label": labels[m], "train_set": own, "n_seeds": len(ev.get(m, []))}
        for subset in ("p1", "p2", "test"):
            if subset == own:
                row[f"{subset}_error"] = _mean([r["error_rate"] for r in tr.get(m, [])])
            else:
                row[f"{subset}_error"] = _mean([r[subset]["error_rate"] for r in ev.get(m, []) if subset in r])
        row["distortion_mean"] = _mean([r.get("distortion_mean", np.nan) for r in at.get(m, [])])
        row["attack_success_rate"] = _mean([r["success_rate"] for r in at.get(m, [])])
        for key in ("p1", "p2", "test"):
            row[f"paper_{key}_error"] = paper.get(key, np.nan)
        row["paper_distortion"] = paper.get("distortion", np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def _paper_row_distortion(kind: str, row: str, row_label: str, group: str, transfer: Sequence[dict]) -> float:
    """The distortion the paper lists for a row: Table 1's (or 3's) for a model's examples, sigma for a Gaussian
    row (the paper adds unclipped noise, so sigma is what it measures); none for a magnified row."""
    if kind == "adversarial":
        paper = reference.published()
        table = paper.szegedy_table1 if group == "cross_model" else paper.szegedy_table3
        return table.get(row_label, {}).get("distortion", np.nan)
    if kind == "gaussian":
        return _mean([t[group]["gaussian_sigma"][row] for t in transfer if row in t[group].get("gaussian_sigma", {})])
    return np.nan


def transfer_table(config, group: str, transfer: Sequence[dict], attack_metrics, paper: Mapping) -> pd.DataFrame:
    """Long form: one row per (row kind, row, column model); error and row distortion averaged over seeds,
    the row's published distortion beside it."""
    labels = {m: config["szegedy"]["paper_labels"][m] for m in config["szegedy"][group]}
    at = _by_model(attack_metrics)
    kinds = [("adversarial", "adversarial", None), ("gaussian", "gaussian", "gaussian_distortion")]
    if group == "cross_training_set":
        kinds.insert(1, ("magnified", "magnified", "magnified_distortion"))
    rows = []
    for kind, key, dist_key in kinds:
        row_names = list(dict.fromkeys(r for t in transfer for r in t[group][key]))
        for row in row_names:
            if kind == "gaussian":
                row_label, paper_row = f"Gaussian sigma={row.removeprefix('sigma_')}", row
            else:
                row_label = labels[row] if kind == "adversarial" else f"magnified {labels[row]}"
                paper_row = row_label
            if dist_key is None:
                dist = _mean([r.get("distortion_mean", np.nan) for r in at.get(row, [])])
            else:
                dist = _mean([t[group][dist_key][row] for t in transfer if row in t[group][dist_key]])
            paper_dist = _paper_row_distortion(kind, row, row_label, group, transfer)
            for col in labels:
                rows.append({
                    "kind": kind, "row": row, "row_label": row_label, "model": col, "model_label": labels[col],
                    "error_rate": _mean([t[group][key][row][col] for t in transfer if row in t[group][key]]),
                    "row_distortion": dist,
                    "paper_row_distortion": paper_dist,
                    "n_seeds": sum(row in t[group][key] for t in transfer),
                    "paper": paper.get(paper_row, {}).get(labels[col], np.nan),
                })
    return pd.DataFrame(rows)


def regulariser(mcfg: Mapping[str, Any]) -> str:
    """Section 4.3's comparison: the weight decay every Szegedy net has, plus dropout or the adversarial pool."""
    if mcfg["method"] == "szegedy_pools":
        return "adversarial pool"
    return "dropout" if mcfg["dropout"] > 0 else "weight decay"


def adversarial_training_table(config, eval_metrics) -> pd.DataFrame:
    labels = {m: regulariser(config.model(m)) for m in config["szegedy"]["adversarial_training"]}
    ev = _by_model(eval_metrics)
    return pd.DataFrame([{
        "model": m, "regulariser": labels[m], "n_seeds": len(ev.get(m, [])),
        "test_error": _mean([r["test"]["error_rate"] for r in ev.get(m, [])]),
        "paper_test_error": reference.published().szegedy_adversarial_training.get(labels[m], np.nan),
    } for m in labels])


def _fmt(value: float, paper: float = np.nan, digits: int = 3) -> str:
    text = "-" if np.isnan(value) else f"{value:.{digits}f}"
    return text + ("" if np.isnan(paper) else f" ({paper:.{digits}f})")


def markdown_table1(t: pd.DataFrame) -> str:
    rows = [[r.paper_label, r.model, _fmt(r.train_error, r.paper_train_error), _fmt(r.test_error, r.paper_test_error),
             _fmt(r.distortion_mean, r.paper_distortion), _fmt(r.attack_success_rate)] for r in t.itertuples()]
    return "\n".join(["## Table 1: models trained on all 60k", "",
                      *markdown_table(["paper row", "model", "train error", "test error", "av. min. distortion",
                                       "L-BFGS success"], rows)])


def markdown_table3(t: pd.DataFrame) -> str:
    rows = [[r.paper_label, r.model, r.train_set, _fmt(r.p1_error, r.paper_p1_error),
             _fmt(r.p2_error, r.paper_p2_error), _fmt(r.test_error, r.paper_test_error),
             _fmt(r.distortion_mean, r.paper_distortion), _fmt(r.attack_success_rate)] for r in t.itertuples()]
    return "\n".join(["## Table 3: models trained on one half (P1 or P2)", "",
                      *markdown_table(["paper row", "model", "trained on", "error on P1", "error on P2", "test error",
                                       "av. min. distortion", "L-BFGS success"], rows)])


def markdown_transfer(t: pd.DataFrame, title: str) -> str:
    columns = list(dict.fromkeys(t["model_label"]))
    rows = []
    for (row_label, _kind), group in t.groupby(["row_label", "kind"], sort=False):
        cells = {r.model_label: _fmt(r.error_rate, r.paper) for r in group.itertuples()}
        rows.append([row_label, *(cells.get(c, "-") for c in columns),
                     _fmt(group["row_distortion"].iloc[0], group["paper_row_distortion"].iloc[0])])
    return "\n".join([title, "", *markdown_table(["examples / noise", *columns, "distortion"], rows)])


def markdown_adversarial_training(t: pd.DataFrame) -> str:
    rows = [[r.regulariser, r.model, _fmt(r.test_error, r.paper_test_error, 4)] for r in t.itertuples()]
    return "\n".join(["## Adversarial training (section 4.3): FC100-100-10 test error", "",
                      *markdown_table(["regulariser", "model", "test error"], rows)])


_DIGITS = {"train": "training digits (of the group's own training set)", "test": "MNIST test digits"}


def notes(config) -> str:
    """The method notes under every table, naming the settings that made it."""
    cfg = config["szegedy"]
    sample_set = cfg["attack"]["sample_set"]
    noise = ("clipped to [0, 1], unlike the paper (the distortion column measures what clipping leaves)"
             if cfg["gaussian"]["clip"] else "not clipped, as in the paper (its distortion column is sigma)")
    magnified = ("every perturbation of a set scaled by one factor, so that the set's mean distortion is "
                 "`szegedy.magnify_to` (no example shrinks while others grow: the paper's own-model column is 100%)"
                 if cfg["magnify_per"] == "set" else "each perturbation scaled to `szegedy.magnify_to` on its own "
                 "(`szegedy.magnify_per: sample`; those above it shrink)")
    models = list(dict.fromkeys(m for g in ("cross_model", "cross_training_set", "adversarial_training")
                                for m in cfg[g]))
    lbfgs = [m for m in models if config.model(m)["method"] == "convex_lbfgs"]
    training = (f"{', '.join(lbfgs)} trained as the paper did, by full-batch L-BFGS to the optimum of their convex "
                f"objective (max |gradient| <= models.<name>.optimizer.tolerance_grad; each history.csv ends with the "
                f"objective and gradient reached); the others by minibatch SGD." if lbfgs else
                "Every model trained by minibatch SGD (the paper: L-BFGS).")
    return f"""
Ours (paper) for every cell; errors are fractions, means over training seeds. Paper: Szegedy et al. 2014
Tables 1-4 and section 4.3 (cited in workflow/claims.yaml); "adversarial pool" is the paper's "below 1.2%".
Distortion sqrt(sum((x'-x)^2)/784) averaged over successful L-BFGS examples on `szegedy.attack.samples`
seeded digits with a random other target each (`szegedy.attack.sample_set`): Tables 1-2 on
{_DIGITS[sample_set["cross_model"]]}, Tables 3-4 on {_DIGITS[sample_set["cross_training_set"]]} (the paper:
training digits for Tables 1-2, test digits for Tables 3-4). Transfer error: fraction of a set's successful
examples the column model misclassifies (diagonal = 1). Gaussian rows: the same clean digits plus N(0, sigma^2)
noise, {noise}.
Magnified rows: {magnified}, then clipped.
Train error (Table 1) and own-half error (Table 3) are measured on the samples each model trained on, for
reporting only (rule training_set_error); every other error is on held-out data.
{training}
Weight decay lambda is read as the penalty lambda / 2 * sum(p^2) over each layer's weights and biases
(tempered.models.szegedy): of the readings the paper's "lambda * sum(w_i^2) / k" allows (per-layer sum, half of
it, /k by output or input units, mean over weights; biases decayed or not), measured at FC10's optimum, it is the
one that fits all three FC10 rows of Table 1.
"""


def _matrix(t: pd.DataFrame, column: str) -> pd.DataFrame:
    m = t.pivot_table(index="row_label", columns="model_label", values=column, sort=False, dropna=False)
    return m.reindex(index=list(dict.fromkeys(t["row_label"])), columns=list(dict.fromkeys(t["model_label"])))


def transfer_heatmap(t2: pd.DataFrame, t4: pd.DataFrame) -> plt.Figure:
    """Ours beside the paper's, for Table 2 (top) and Table 4 (bottom); error in %."""
    sns.set_theme(style="white")
    heights = [len(_matrix(t2, "error_rate")) + 1, len(_matrix(t4, "error_rate")) + 1]
    fig, axes = plt.subplots(2, 2, figsize=(15, 11), gridspec_kw={"height_ratios": heights})
    for i, (t, name) in enumerate(((t2, "Table 2 (cross-model)"), (t4, "Table 4 (cross-training-set)"))):
        for j, (column, who) in enumerate((("error_rate", "ours"), ("paper", "Szegedy et al. 2014"))):
            ax = axes[i][j]
            sns.heatmap(100 * _matrix(t, column), annot=True, fmt=".1f", vmin=0, vmax=100, cmap="rocket_r",
                        cbar=j == 1, ax=ax, annot_kws={"fontsize": 8})
            ax.set(title=f"{name}: {who}, error %", xlabel="evaluated on", ylabel="examples made for / noise")
            ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


def examples_figure(model: str, x: np.ndarray, arrays: Mapping[str, np.ndarray], rows: int) -> plt.Figure:
    """The paper's Figure 5: original, the perturbation magnified (x10, grey = 0), the adversarial image."""
    sns.set_theme(style="white")
    hits = np.flatnonzero(arrays["success"])[:rows]
    n = max(len(hits), 1)
    fig, axes = plt.subplots(n, 3, figsize=(5, 1.7 * n + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, title in zip(axes[0], ("original", f"perturbation x{PERTURBATION_GAIN:g}", "adversarial"), strict=True):
        ax.set_title(title, fontsize=9)
    if not len(hits):
        axes[0][1].text(0.5, 0.5, "no successful example", ha="center", va="center", transform=axes[0][1].transAxes)
    for ax_row, i in zip(axes, hits, strict=False):
        original, adv = x[i].reshape(28, 28), arrays["x_adv"][i].reshape(28, 28)
        ax_row[0].imshow(original, cmap="gray", vmin=0, vmax=1)
        ax_row[1].imshow(np.clip(0.5 + PERTURBATION_GAIN * (adv - original), 0, 1), cmap="gray", vmin=0, vmax=1)
        ax_row[2].imshow(adv, cmap="gray", vmin=0, vmax=1)
        ax_row[0].set_ylabel(f"{int(arrays['label'][i])} -> {int(arrays['target'][i])}", fontsize=8)
        ax_row[2].set_xlabel(f"distortion {float(arrays['distortion'][i]):.3f}", fontsize=7)
    fig.suptitle(f"{model}: L-BFGS adversarial examples", fontsize=10)
    fig.tight_layout()
    return fig


def _records(t: pd.DataFrame, keys: Sequence[str]) -> dict:
    out: dict = {}
    for r in t.to_dict("records"):
        node = out
        for key in keys[:-1]:
            node = node.setdefault(str(r.pop(key)), {})
        node[str(r.pop(keys[-1]))] = r
    return out


def write_szegedy_report(config, groups: Mapping[str, Sequence[str]], *, eval_metrics, training_set_error,
                         attack_metrics, transfer, tables: Sequence[Path], markdown: Path, metrics: Path,
                         heatmap: Path) -> None:
    t1 = table1(config, groups["cross_model"], eval_metrics, training_set_error, attack_metrics)
    paper = reference.published()
    t2 = transfer_table(config, "cross_model", transfer, attack_metrics, paper.szegedy_table2)
    t3 = table3(config, groups["cross_training_set"], eval_metrics, training_set_error, attack_metrics)
    t4 = transfer_table(config, "cross_training_set", transfer, attack_metrics, paper.szegedy_table4)
    ta = adversarial_training_table(config, eval_metrics)
    sections = {
        "table1": (t1, markdown_table1(t1)),
        "table2": (t2, markdown_transfer(t2, "## Table 2: cross-model transfer (error of each column model)")),
        "table3": (t3, markdown_table3(t3)),
        "table4": (t4, markdown_transfer(t4, "## Table 4: cross-training-set transfer")),
        "adversarial_training": (ta, markdown_adversarial_training(ta)),
    }
    for (frame, text), csv_path, md_path in zip(sections.values(), tables[0::2], tables[1::2], strict=True):
        write_table(csv_path, frame)
        write_bytes(md_path, (text + "\n" + notes(config)).encode())
    write_bytes(markdown, ("# Szegedy et al. 2014, section 4: minimal adversarial examples\n\n"
                           + "\n\n".join(text for _, text in sections.values()) + "\n" + notes(config)).encode())
    # Empty cells: a row the paper gives no number for, a distortion with no successful example to measure.
    write_metrics(metrics, {
        "table1": _records(t1.drop(columns=["paper_label"]), ["model"]),
        "table2": _records(t2[["row", "model", "error_rate", "paper", "row_distortion", "paper_row_distortion"]],
                           ["row", "model"]),
        "table3": _records(t3.drop(columns=["paper_label", "train_set"]), ["model"]),
        "table4": _records(t4[["kind", "row", "model", "error_rate", "paper", "row_distortion",
                               "paper_row_distortion"]], ["kind", "row", "model"]),
        "adversarial_training": _records(ta.drop(columns=["regulariser"]), ["model"]),
    }, not_measured=("*.paper*", "*distortion*"))
    save_figure(transfer_heatmap(t2, t4), heatmap)
