"""Temperature-scaling steps (Guo et al. 2017): fit T per (model, seed) on validation logits, report on test,
then one table and figure over every model. Reads the logits the evaluate step wrote; never touches the model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tempered.artifacts import (
    checked_metrics,
    read_arrays,
    read_records,
    sha256_file,
    write_bytes,
    write_metrics,
    write_table,
)
from tempered.calibration.temperature_scaling import (
    NoFiniteOptimum,
    calibration_metrics,
    confidence_and_correct,
    fit_temperature,
    nll,
    nll_slopes_in_inverse_temperature,
    reliability_bins,
)
from tempered.data.split import HELD_OUT
from tempered.ood.protocol import REPORT_SET
from tempered.provenance import provenance
from tempered.reporting.tables import markdown_table
from tempered.step_params import step_config

log = logging.getLogger(__name__)


def calibration_sets(train_set: str) -> tuple[str | None, str]:
    """(set T is fitted on, set metrics are reported on): the first held-out set, and test. A model trained on
    "full" has only test held out, so nothing may be fitted on (fitting and reporting on test would be circular)."""
    held = HELD_OUT[train_set]
    return (held[0] if len(held) > 1 else None), REPORT_SET


def _bins_frame(logits: torch.Tensor, labels: torch.Tensor, temperature: float, state: str,
                n_bins: int) -> pd.DataFrame:
    probs = torch.softmax(logits.to(torch.float64) / temperature, dim=1)
    bins = reliability_bins(*confidence_and_correct(probs, labels), n_bins)
    return pd.DataFrame({
        "state": state, "temperature": temperature, "bin": np.arange(n_bins),
        "lower": bins.edges[:-1].numpy(), "upper": bins.edges[1:].numpy(), "count": bins.count.numpy(),
        "mean_confidence": bins.mean_confidence.numpy(), "accuracy": bins.accuracy.numpy(),
    })


def calibrate_step(config_files: Sequence[str], model_name: str, seed: int, logits_path: Path, metrics_path: Path,
                   bins_path: Path, figure_path: Path) -> None:
    from tempered.reporting.figures import save_figure
    from tempered.stages.calibration.figures import reliability_diagram

    config = step_config(config_files, "calibrate", model=model_name)
    mcfg, cfg = config.model(model_name), config["calibration"]
    fit_set, report_set = calibration_sets(mcfg["train_set"])
    required = (f"{report_set}_logits", f"{report_set}_labels") + (
        (f"{fit_set}_logits", f"{fit_set}_labels") if fit_set else ())
    arrays = read_arrays(logits_path, required=required)
    report_logits = torch.from_numpy(arrays[f"{report_set}_logits"])
    report_labels = torch.from_numpy(arrays[f"{report_set}_labels"])
    record: dict[str, Any] = {"model": model_name, "seed": seed, "architecture": mcfg["architecture"],
                              "train_set": mcfg["train_set"], "fit_set": fit_set or "none", "report_set": report_set}
    grid_point = config.model_id(model_name)
    if grid_point.is_distilled:  # its place on the distillation grid, read by the report (calibration_table)
        record.update(distillation_role=grid_point.role, distillation_temperature=grid_point.temperature)
    before = calibration_metrics(report_logits, report_labels, 1.0, cfg["n_bins"])
    record["before"] = before
    frames = [_bins_frame(report_logits, report_labels, 1.0, "before (T=1)", cfg["n_bins"])]
    ece = {"before (T=1)": before["ece"]}
    reason = None
    if fit_set is None:
        reason = (f"only the report set '{report_set}' is held out from training set '{mcfg['train_set']}'; "
                  f"T is not fitted on the data it would be judged on")
    else:
        fit_logits = torch.from_numpy(arrays[f"{fit_set}_logits"])
        fit_labels = torch.from_numpy(arrays[f"{fit_set}_labels"])
        # The closed-form slopes of the NLL in 1/T decide whether a finite optimum exists; kept for every model.
        slope_0, slope_inf = nll_slopes_in_inverse_temperature(fit_logits, fit_labels)
        record["nll_slope_in_inverse_t"] = {"at_0": slope_0, "at_inf": slope_inf}
        try:
            temperature = fit_temperature(fit_logits, fit_labels, init=cfg["init_temperature"],
                                          max_iter=cfg["max_iter"])
        except NoFiniteOptimum as err:  # the NLL falls forever as T -> 0 or T -> inf: there is no T to record
            record["no_finite_optimum"] = "T -> inf" if err.limit == math.inf else "T -> 0"
            reason = f"{err} ({len(fit_labels)} '{fit_set}' samples)"
        except ValueError as err:  # no samples to fit on
            reason = f"{err} ({len(fit_labels)} '{fit_set}' samples)"
    if reason is None:
        after = calibration_metrics(report_logits, report_labels, temperature, cfg["n_bins"])
        if after["accuracy"] != before["accuracy"]:
            raise ArithmeticError(f"{model_name}: temperature scaling changed the accuracy "
                                  f"({before['accuracy']} -> {after['accuracy']})")
        record.update(fitted=True, fitted_temperature=temperature, after=after,
                      fit={"set": fit_set, "n": int(len(fit_labels)), "nll_before": nll(fit_logits, fit_labels),
                           "nll_after": nll(fit_logits, fit_labels, temperature)})
        state = f"after (T={temperature:.3g})"
        frames.append(_bins_frame(report_logits, report_labels, temperature, state, cfg["n_bins"]))
        ece[state] = after["ece"]
        log.info("%s seed %d: T=%.4g fitted on %s; test ECE %.4f -> %.4f, NLL %.4f -> %.4f", model_name, seed,
                 temperature, fit_set, before["ece"], after["ece"], before["nll"], after["nll"])
    else:
        record.update(fitted=False, not_fitted_reason=reason)
        log.warning("%s seed %d: temperature not fitted: %s", model_name, seed, reason)
    record["provenance"] = provenance({"calibration": cfg, "train_set": mcfg["train_set"]}, seed=seed,
                                      device="cpu", data_digests={logits_path.name: sha256_file(logits_path)})
    bins = pd.concat(frames, ignore_index=True)
    checked = checked_metrics(metrics_path, record)  # before the first write: a refused record leaves no output
    write_table(bins_path, bins)
    write_metrics(metrics_path, checked)
    title = f"{model_name} seed {seed}: reliability on {report_set} ({len(report_labels)} samples)"
    save_figure(reliability_diagram(bins, title, ece), figure_path)


CALIBRATION_COLUMNS = ["model", "seed", "role", "distillation_temperature", "fitted", "fitted_temperature",
                       "accuracy", "nll_before", "nll_after", "ece_before", "ece_after", "mce_before", "mce_after",
                       "brier_before", "brier_after", "n_test", "note"]


def calibration_table(records: Sequence[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        role = r.get("distillation_role", r["model"])  # teacher / student, or the model itself off the grid
        row = {"model": r["model"], "seed": r["seed"], "role": role,
               "distillation_temperature": r.get("distillation_temperature", np.nan), "fitted": r["fitted"],
               "fitted_temperature": r.get("fitted_temperature", np.nan), "accuracy": r["before"]["accuracy"],
               "n_test": r["before"]["n"], "note": r.get("not_fitted_reason", "")}
        for metric in ("nll", "ece", "mce", "brier"):
            row[f"{metric}_before"] = r["before"][metric]
            row[f"{metric}_after"] = r["after"][metric] if r["fitted"] else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def _markdown(table: pd.DataFrame) -> str:
    shown = table.copy()
    for col in ("ece_before", "ece_after", "mce_before", "mce_after"):
        shown[col] = (100 * shown[col]).map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    for col in ("nll_before", "nll_after", "brier_before", "brier_after"):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    shown["fitted_temperature"] = [f"{t:.4g}" if fitted else "not fitted"
                                   for t, fitted in zip(shown["fitted_temperature"], shown["fitted"], strict=True)]
    shown["distillation_temperature"] = shown["distillation_temperature"].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    shown["accuracy"] = (100 * shown["accuracy"]).map(lambda v: f"{v:.2f}")
    shown = shown.drop(columns=["role", "fitted"])
    table_text = "\n".join(markdown_table(list(shown.columns), shown.itertuples(index=False))) + "\n"
    return (
        "# Temperature scaling (Guo et al. 2017)\n\n"
        "Made by rules `calibrate_model` and `calibration_report` (`python -m tempered calibrate` / "
        "`calibration-report`), settings `calibration.*` in config.yaml. One T per model and seed, fitted by NLL "
        "on the validation set (held out of training), all metrics on the MNIST test set; accuracy is unchanged "
        "by construction (checked). ECE and MCE in %, 15 equal-width confidence bins. "
        "Guo et al. report ECE 3.02 -> 0.93 (CIFAR-10 LeNet-5) and no MNIST numbers.\n\n"
        + table_text
        + ("\nModels not fitted (reason in `note`): "
           + ", ".join(sorted(set(table.loc[~table["fitted"], "model"]))) + ".\n"
           if (~table["fitted"]).any() else "")
    )


def calibration_report_step(metrics_paths: Sequence[Path], table_path: Path, markdown_path: Path,
                            figure_path: Path) -> None:
    from tempered.reporting.figures import save_figure
    from tempered.stages.calibration.figures import fitted_vs_distillation_temperature

    records = read_records(metrics_paths, "a calibration metrics", ("fitted", "before"))
    table = calibration_table(records)
    write_table(table_path, table)
    write_bytes(markdown_path, _markdown(table).encode())
    save_figure(fitted_vs_distillation_temperature(table), figure_path)


def register(add_step) -> None:
    """This stage's CLI steps: calibrate (per model and seed) and calibration-report (over all models)."""
    p = add_step("calibrate", lambda a: calibrate_step(a.config, a.model, a.seed, Path(a.logits), Path(a.metrics),
                                                       Path(a.bins), Path(a.figure)),
                 "fit a temperature on validation logits; calibration metrics before/after on test")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--logits", required=True, help="the evaluate step's logits.npz")
    p.add_argument("--metrics", required=True, help="JSON: fitted T, NLL/ECE/MCE/Brier/accuracy before and after")
    p.add_argument("--bins", required=True, help="CSV: reliability bins with counts, before and after")
    p.add_argument("--figure", required=True, help="PNG reliability diagram")

    p = add_step("calibration-report", lambda a: calibration_report_step([Path(m) for m in a.metrics], Path(a.table),
                                                                         Path(a.markdown), Path(a.figure)),
                 "table of every model's calibration and the fitted-vs-distillation-T figure")
    p.add_argument("--metrics", required=True, nargs="+")
    p.add_argument("--table", required=True)
    p.add_argument("--markdown", required=True)
    p.add_argument("--figure", required=True)
