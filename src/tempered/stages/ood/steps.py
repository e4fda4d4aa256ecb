"""OOD and misclassification detection steps: the OOD test sets, scoring per (model, seed), and the report.

Detectors (tempered.ood.protocol): max softmax probability (Hendrycks & Gimpel 2017) and the energy score
(Liu et al. 2020), each at T=1 and at the temperature fitted on validation data ("_scaled"); ODIN (Liang et al.
2018) with T and eps tuned per OOD set; for a learned-confidence model, c without and with input preprocessing
(DeVries & Taylor 2018), eps tuned per OOD set. Tuning uses only the tuning samples (protocol module); metrics with
bootstrap intervals use only the report samples; every per-sample score is saved.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from tempered.artifacts import (
    ArtifactError,
    checked_metrics,
    read_arrays,
    read_json,
    read_records,
    sha256_file,
    write_arrays,
    write_bytes,
    write_json,
    write_metrics,
    write_table,
)
from tempered.config import ConfigError
from tempered.data.arrays import read_images
from tempered.data.ood_sets import (
    DOWNLOADED_SETS,
    NOISE_SETS,
    as_unit_images,
    fetch_downloaded_sets,
    noise_images,
)
from tempered.data.split import SOURCE_ARRAY
from tempered.device import resolve_device
from tempered.ood import scores
from tempered.ood.bootstrap import bootstrap_metrics, roc_curve
from tempered.ood.protocol import (
    TUNED_DETECTORS,
    detectors_for,
    in_distribution_parts,
    ood_parts,
)
from tempered.ood.tuning import best_grid_point, confidence_grid, odin_grid
from tempered.provenance import provenance
from tempered.reporting.tables import markdown_table
from tempered.stages import distillation_temperature
from tempered.stages.report import reference
from tempered.step_params import step_config
from tempered.training.inference import predict_logits

log = logging.getLogger(__name__)

SELECTION = "lowest FPR at 95% TPR on the tuning samples (ties: higher AUROC, then grid order)"


# --- the OOD test sets ------------------------------------------------------------------------------------------


def fetch_ood_sets_step(config_files: Sequence[str], out: Path, manifest: Path) -> None:
    """Try torchvision for the downloadable OOD sets named in ood.datasets; record each one's fate."""
    config = step_config(config_files, "fetch-ood-sets")
    names = [d for d in config["ood"]["datasets"] if d in DOWNLOADED_SETS]
    with tempfile.TemporaryDirectory(prefix="tempered-ood-") as workdir:
        arrays, status = fetch_downloaded_sets(names, Path(workdir))
    write_arrays(out, arrays)
    write_json(manifest, {"datasets": status, "provenance": provenance({"datasets": names}, seed=None, device="cpu")})


def load_ood_sets(cfg: Mapping[str, Any], fashion_path: Path, downloaded_path: Path, manifest_path: Path,
                  ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: (N, 1, 28, 28) float32 images}, {skipped name: reason}) in the order of ood.datasets."""
    manifest = read_json(manifest_path)["datasets"]
    downloaded = read_arrays(downloaded_path)
    sets, skipped = {}, {}
    for name in cfg["datasets"]:
        if name == "fashion_mnist":
            sets[name] = as_unit_images(read_arrays(fashion_path, required=("x_test",))["x_test"])
        elif name in NOISE_SETS:
            sets[name] = noise_images(name, cfg["noise"])
        elif name in downloaded:
            sets[name] = as_unit_images(downloaded[name])
        else:
            reason = manifest.get(name, {}).get("reason", f"not in {downloaded_path} (not attempted)")
            skipped[name] = reason
            log.warning("OOD set %s skipped: %s", name, reason)
    return sets, skipped


# --- scoring one model ------------------------------------------------------------------------------------------


def _mnist(images: Mapping[str, np.ndarray], set_name: str, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    source = SOURCE_ARRAY[set_name]
    x = torch.from_numpy(images[f"x_{source}"][idx].astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(images[f"y_{source}"][idx].astype(np.int64))


def _flat(metrics: Mapping[str, Mapping[str, float]], rename: Mapping[str, str] | None = None) -> dict[str, float]:
    out = {}
    for name, v in metrics.items():
        key = (rename or {}).get(name, name)
        out.update({key: v["value"], f"{key}_low": v["low"], f"{key}_high": v["high"]})
    return out


class _Scorer:
    """Scores of one model on image tensors, with logits and preprocessed scores cached by input and setting."""

    def __init__(self, model: nn.Module, batch_size: int, device: torch.device):
        self.model, self.batch_size, self.device = model, batch_size, device
        self._logits: dict[str, torch.Tensor] = {}
        self._cache: dict[tuple, np.ndarray] = {}

    def logits(self, key: str, x: torch.Tensor) -> torch.Tensor:
        if key not in self._logits:
            self._logits[key] = predict_logits(self.model, x, self.batch_size, self.device)
        return self._logits[key]

    def score(self, detector: str, key: str, x: torch.Tensor, temperature: float = 1.0,
              eps: float = 0.0) -> np.ndarray:
        cache_key = (detector, key, temperature, eps)
        if cache_key not in self._cache:
            if detector in ("msp", "energy"):
                # Both are functions of the logits: score the cached logits through an identity "model".
                fn = scores.msp if detector == "msp" else scores.energy
                values = scores.score_batches(fn, nn.Identity(), self.logits(key, x), self.batch_size,
                                              torch.device("cpu"), temperature=temperature)
            elif detector == "odin":
                values = scores.score_batches(scores.odin, self.model, x, self.batch_size, self.device,
                                              temperature=temperature, eps=eps)
            elif detector == "confidence":
                values = scores.score_batches(scores.learned_confidence, self.model, x, self.batch_size,
                                              self.device)
            elif detector == "confidence_preprocessed":
                values = scores.score_batches(scores.learned_confidence_odin, self.model, x, self.batch_size,
                                              self.device, eps=eps)
            else:
                raise ValueError(f"unknown detector {detector!r}")
            self._cache[cache_key] = values.numpy().astype(np.float64)
        return self._cache[cache_key]


def _score_table(parts: Sequence[tuple[str, str, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
                 ) -> pd.DataFrame:
    """Rows (distribution, part, set, index, label, correct, score); label and correct are -1 for OOD samples."""
    frames = [pd.DataFrame({"distribution": dist, "part": part, "set": set_name, "index": index, "label": label,
                            "correct": correct, "score": score})
              for dist, part, set_name, index, label, correct, score in parts]
    return pd.concat(frames, ignore_index=True)


def ood_step(config_files: Sequence[str], model_name: str, seed: int, checkpoint: Path, images_path: Path,
             split_path: Path, fashion_path: Path, downloaded_path: Path, downloaded_manifest: Path,
             calibration_path: Path, metrics_path: Path, scores_dir: Path, roc_path: Path,
             histograms_path: Path) -> None:
    from tempered.models.checkpoints import load_model
    from tempered.reporting.figures import save_figure
    from tempered.stages.ood.figures import roc_curves, score_histograms

    config = step_config(config_files, "ood", model=model_name)
    mcfg, cfg = config.model(model_name), config["ood"]
    device = resolve_device(config["compute"]["device"])
    batch_size = config["evaluation"]["batch_size"]
    boot = cfg["bootstrap"]
    model, _ = load_model(mcfg, model_name, checkpoint)
    model.to(device)
    calibration = read_json(calibration_path)
    if calibration.get("model") != model_name or calibration.get("seed") != seed:
        raise ArtifactError(f"{calibration_path} calibrates {calibration.get('model')!r} seed "
                            f"{calibration.get('seed')}, not {model_name!r} seed {seed}")
    fitted_t = calibration["fitted_temperature"] if calibration["fitted"] else None

    images, split = read_images(images_path), read_arrays(split_path)
    parts = in_distribution_parts(mcfg["train_set"], split, cfg["tune_size"], cfg["limit_report"])
    (tune_set, tune_idx), (report_set, report_idx) = parts["tune"], parts["report"]
    x_in_tune, y_in_tune = _mnist(images, tune_set, tune_idx)
    x_in, y_in = _mnist(images, report_set, report_idx)
    ood_sets, skipped = load_ood_sets(cfg, fashion_path, downloaded_path, downloaded_manifest)
    if not ood_sets:
        raise ConfigError(f"no OOD set of ood.datasets {cfg['datasets']} is available: {skipped}")
    detectors = detectors_for(mcfg["architecture"], fitted_t is not None)
    log.info("%s seed %d: detectors %s; in-distribution tune %d (%s), report %d (%s); OOD sets %s; skipped %s",
             model_name, seed, detectors, len(tune_idx), tune_set, len(report_idx), report_set,
             list(ood_sets), list(skipped) or "none")

    scorer = _Scorer(model, batch_size, device)
    correct_in = (scorer.logits("in", x_in).argmax(1) == y_in).numpy()
    correct_in_tune = (scorer.logits("in_tune", x_in_tune).argmax(1) == y_in_tune).numpy()
    temperatures, epsilons = cfg["odin"]["temperatures"], cfg["odin"]["epsilons"]
    conf_epsilons = cfg["confidence_epsilons"]
    grids_in = {"odin": odin_grid(model, x_in_tune, temperatures, epsilons, batch_size, device)}
    if "confidence_preprocessed" in detectors:
        grids_in["confidence_preprocessed"] = confidence_grid(model, x_in_tune, conf_epsilons, batch_size, device)

    ood_results: dict[str, dict[str, Any]] = {}
    misclassification: dict[str, Any] = {}
    misclassification_skipped: dict[str, str] = {}
    curves, histograms = [], []
    score_tables: dict[str, pd.DataFrame] = {}  # written after the last check: a failed step leaves no output
    for dataset, x_all in ood_sets.items():
        idx = ood_parts(len(x_all), cfg["tune_size"], cfg["limit_report"], dataset)
        x_tune, x_out = torch.from_numpy(x_all[idx["tune"]]), torch.from_numpy(x_all[idx["report"]])
        ood_results[dataset] = {}
        for detector in detectors:
            setting: dict[str, Any] = {}
            base = detector.removesuffix("_scaled")
            temperature = fitted_t if detector.endswith("_scaled") else 1.0
            eps = 0.0
            if detector in TUNED_DETECTORS:
                if detector == "odin":
                    grid_out = odin_grid(model, x_tune, temperatures, epsilons, batch_size, device)
                    (i, j), tuned = best_grid_point(grids_in["odin"], grid_out)
                    temperature, eps = float(temperatures[i]), float(epsilons[j])
                    tune_in, tune_out = grids_in["odin"][i, j], grid_out[i, j]
                else:
                    grid_out = confidence_grid(model, x_tune, conf_epsilons, batch_size, device)
                    (j,), tuned = best_grid_point(grids_in[detector], grid_out)
                    eps = float(conf_epsilons[j])
                    tune_in, tune_out = grids_in[detector][j], grid_out[j]
                setting = {"eps": eps, "tune_fpr_at_95_tpr": tuned["fpr_at_95_tpr"], "tune_auroc": tuned["auroc"]}
                if detector == "odin":
                    setting["temperature"] = temperature
            else:
                tune_in = scorer.score(base, "in_tune", x_in_tune, temperature)
                tune_out = scorer.score(base, f"{dataset}_tune", x_tune, temperature)
                if base != "confidence":
                    setting["temperature"] = temperature
            s_in = scorer.score(base, "in", x_in, temperature, eps)
            s_out = scorer.score(base, f"{dataset}_report", x_out, temperature, eps)
            metrics = bootstrap_metrics(s_in, s_out, boot["n_boot"], boot["level"], boot["seed"])
            ood_results[dataset][detector] = {**_flat(metrics), **setting}
            table = _score_table([
                ("in", "tune", tune_set, tune_idx, y_in_tune.numpy(), correct_in_tune.astype(int), tune_in),
                ("in", "report", report_set, report_idx, y_in.numpy(), correct_in.astype(int), s_in),
                ("out", "tune", dataset, idx["tune"], np.full(len(idx["tune"]), -1), np.full(len(idx["tune"]), -1),
                 tune_out),
                ("out", "report", dataset, idx["report"], np.full(len(idx["report"]), -1),
                 np.full(len(idx["report"]), -1), s_out),
            ])
            score_tables[f"{detector}__{dataset}.csv"] = table
            fpr, tpr = roc_curve(s_in, s_out)
            curves.append(pd.DataFrame({"dataset": dataset, "detector": detector, "fpr": fpr, "tpr": tpr,
                                        "auroc": metrics["auroc"]["value"]}))
            histograms.append(pd.DataFrame({"dataset": dataset, "detector": detector,
                                            "distribution": ["in"] * len(s_in) + ["out"] * len(s_out),
                                            "score": np.r_[s_in, s_out]}))
            key = detector if detector not in TUNED_DETECTORS else f"{detector}@{dataset}"
            if key in misclassification or key in misclassification_skipped:
                continue
            if correct_in.all() or not correct_in.any():
                misclassification_skipped[key] = (f"{int((~correct_in).sum())} of {len(correct_in)} test samples "
                                                  f"misclassified: both kinds are needed")
                continue
            mis = bootstrap_metrics(-s_in[~correct_in], -s_in[correct_in], boot["n_boot"], boot["level"],
                                    boot["seed"])
            misclassification[key] = {**_flat(mis, {"aupr_in": "aupr_err", "aupr_out": "aupr_succ"}), **setting}
        log.info("%s on %s: AUROC %s", model_name, dataset,
                 {d: round(r["auroc"], 4) for d, r in ood_results[dataset].items()})

    record: dict[str, Any] = {
        "model": model_name, "seed": seed, "architecture": mcfg["architecture"],
        "temperature_scaling": ({"fitted": True, "temperature": fitted_t} if fitted_t is not None else
                                {"fitted": False, "reason": calibration["not_fitted_reason"]}),
        "protocol": {
            "in_tune_set": tune_set, "n_in_tune": int(len(tune_idx)), "in_report_set": report_set,
            "n_in_report": int(len(report_idx)), "ood_tune": f"first {cfg['tune_size']} samples of each OOD set",
            "ood_report": "the remaining samples" + (f" (first {cfg['limit_report']})" if cfg["limit_report"] else ""),
            "tuned": "odin: T and eps; confidence_preprocessed: eps", "selection": SELECTION,
            "bootstrap": f"{boot['n_boot']} percentile replicates, level {boot['level']}, seed {boot['seed']}",
            "test_errors": int((~correct_in).sum()),
        },
        "datasets": {d: {"n_tune": min(cfg["tune_size"], len(x)),
                         "n_report": len(ood_parts(len(x), cfg["tune_size"], cfg["limit_report"], d)["report"])}
                     for d, x in ood_sets.items()},
        "skipped_datasets": skipped,
        "ood": ood_results,
        "misclassification": misclassification,
        "misclassification_skipped": misclassification_skipped,
    }
    t_train = distillation_temperature(config, model_name)
    if t_train is not None:
        record["distillation_temperature"] = t_train
    inputs = (checkpoint, images_path, fashion_path, downloaded_path, calibration_path)
    record["provenance"] = provenance({**config.declared(), "train_set": mcfg["train_set"]}, seed=seed, device=device,
                                      data_digests={p.name: sha256_file(p) for p in inputs})
    checked = checked_metrics(metrics_path, record)
    scores_dir.mkdir(parents=True, exist_ok=True)
    for name, table in score_tables.items():
        write_table(scores_dir / name, table)
    write_metrics(metrics_path, checked)
    title = f"{model_name} seed {seed}: MNIST test vs OOD report samples"
    save_figure(roc_curves(pd.concat(curves, ignore_index=True), title), roc_path)
    save_figure(score_histograms(pd.concat(histograms, ignore_index=True), title), histograms_path)


# --- the report over every model ---------------------------------------------------------------------------------

METRICS = ("auroc", "fpr_at_95_tpr", "detection_error", "aupr_in", "aupr_out")
MISCLASSIFICATION_METRICS = ("auroc", "fpr_at_95_tpr", "detection_error", "aupr_err", "aupr_succ")


def ood_table(records: Sequence[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        common = {"model": r["model"], "seed": r["seed"],
                  "distillation_temperature": r.get("distillation_temperature", np.nan),
                  "fitted_temperature": r["temperature_scaling"].get("temperature", np.nan)}
        for dataset, per_detector in r["ood"].items():
            for detector, m in per_detector.items():
                rows.append({**common, "task": "ood", "dataset": dataset, "detector": detector,
                             "n_in": r["protocol"]["n_in_report"], "n_out": r["datasets"][dataset]["n_report"],
                             **{k: v for k, v in m.items()}})
        for key, m in r["misclassification"].items():
            detector, _, tuned_on = key.partition("@")
            rows.append({**common, "task": "misclassification", "dataset": tuned_on or "", "detector": detector,
                         "n_in": r["protocol"]["n_in_report"], "n_out": r["protocol"]["test_errors"],
                         **{k: v for k, v in m.items()}})
    return pd.DataFrame(rows)


def _pct(value: float, low: float, high: float) -> str:
    return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _markdown(table: pd.DataFrame, records: Sequence[dict], manifest: Mapping[str, Any]) -> str:
    protocol = records[0]["protocol"]
    skipped = {name: s["reason"] for name, s in manifest["datasets"].items() if s["status"] == "skipped"}
    for r in records:
        skipped.update(r["skipped_datasets"])
    lines = [
        "# OOD and misclassification detection", "",
        "Made by rules `fetch_ood_sets`, `detect_ood` and `ood_report` (`python -m tempered fetch-ood-sets` / `ood` "
        "/ `ood-report`), settings `ood.*` in config.yaml. In-distribution: MNIST test "
        f"({protocol['n_in_report']} samples). Metrics in %, with {protocol['bootstrap']} (bootstrap 95% "
        "intervals in brackets); higher score = more in-distribution.", "",
        f"**Tuning vs report.** ODIN's T and eps and the learned-confidence eps are tuned per OOD set on the "
        f"{protocol['ood_tune']} plus {protocol['n_in_tune']} in-distribution samples of `{protocol['in_tune_set']}` "
        f"(never trained on), by {protocol['selection']}; every number below uses only {protocol['ood_report']} "
        "of each OOD set and the MNIST test set. `_scaled` detectors use the temperature fitted on validation data "
        "(rule `calibrate_model`).", "",
    ]
    if skipped:
        lines += ["**Skipped OOD sets** (not available to this run, so not in any table):", ""]
        lines += [f"- {name}: {reason}" for name, reason in sorted(skipped.items())] + [""]
    else:
        lines += ["Skipped OOD sets: none.", ""]
    # Hendrycks & Gimpel 2017 (MNIST, MSP), from workflow/claims.yaml. Their Gaussian noise is N(0, 1) unclipped:
    # our gaussian_noise_unclipped (tempered.data.ood_sets).
    paper = reference.published()
    lines += ["Hendrycks & Gimpel 2017 (MNIST, MSP; AUROC / AUPR-in / AUPR-out %): "
              + "; ".join(f"{k} {a}/{b}/{c}" for k, (a, b, c) in paper.hendrycks_msp_mnist.items())
              + f"; misclassification AUROC {paper.hendrycks_misclassification}. They used no Fashion-MNIST. "
              f"Their claims read the `msp` rows of `{paper.hendrycks_model}` (config.yaml's models."
              f"{paper.hendrycks_model}).", "",
              "Gaussian noise, one set per paper's definition (mean and std of each: `ood.noise`): "
              "`gaussian_noise_unclipped` is Hendrycks & Gimpel's, fed as drawn (pixels outside [0, 1]); "
              "`gaussian_noise_clipped` is DeVries & Taylor's, clipped to [0, 1].", "",
              "DeVries & Taylor's baseline is the MSP of a separately trained standard model (their budget-0 "
              f"checkpoint): here the `msp` rows of `{paper.devries_baseline_model}`, which sees the same samples. "
              "The `msp` rows of `confidence` are the learned-confidence model's own max-softmax, not that "
              "baseline.", ""]
    for task, metrics in (("ood", METRICS), ("misclassification", MISCLASSIFICATION_METRICS)):
        rows = table[table["task"] == task]
        if rows.empty:
            continue
        lines += [f"## {'OOD detection' if task == 'ood' else 'Misclassification detection (errors positive)'}", ""]
        head = ["model", "seed", "dataset" if task == "ood" else "tuned on", "detector", "setting",
                *metrics]
        body = []
        for row in rows.itertuples(index=False):
            r = row._asdict()
            setting = ", ".join(f"{k}={r[k]:g}" for k in ("temperature", "eps")
                                if k in r and not pd.isna(r[k]))
            body.append([r["model"], r["seed"], r["dataset"], r["detector"], setting,
                         *(_pct(r[m], r[f"{m}_low"], r[f"{m}_high"]) for m in metrics)])
        lines += [*markdown_table(head, body), ""]
    return "\n".join(lines)


def ood_report_step(metrics_paths: Sequence[Path], manifest_path: Path, table_path: Path, markdown_path: Path,
                    figure_path: Path) -> None:
    from tempered.reporting.figures import save_figure
    from tempered.stages.ood.figures import auroc_vs_temperature

    records = read_records(metrics_paths, "an OOD metrics", ("ood", "protocol"))
    table = ood_table(records)
    write_table(table_path, table)
    write_bytes(markdown_path, _markdown(table, records, read_json(manifest_path)).encode())
    save_figure(auroc_vs_temperature(table[table["task"] == "ood"]), figure_path)


def register(add_step) -> None:
    """This stage's CLI steps: fetch-ood-sets, ood (per model and seed) and ood-report."""
    p = add_step("fetch-ood-sets", lambda a: fetch_ood_sets_step(a.config, Path(a.out), Path(a.manifest)),
                 "try torchvision for the downloadable OOD sets (KMNIST, EMNIST letters, Omniglot)")
    p.add_argument("--out", required=True, help=".npz of the sets fetched (may hold none)")
    p.add_argument("--manifest", required=True, help="JSON: each set fetched, or skipped with the reason")

    p = add_step("ood", lambda a: ood_step(a.config, a.model, a.seed, Path(a.checkpoint), Path(a.images),
                                           Path(a.split), Path(a.fashion), Path(a.downloaded),
                                           Path(a.downloaded_manifest), Path(a.calibration), Path(a.metrics),
                                           Path(a.scores), Path(a.roc), Path(a.histograms)),
                 "OOD and misclassification detection scores and metrics of one model")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", required=True, type=int)
    for name in ("checkpoint", "images", "split", "fashion", "downloaded", "downloaded-manifest", "calibration",
                 "metrics", "scores", "roc", "histograms"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("ood-report", lambda a: ood_report_step([Path(m) for m in a.metrics], Path(a.manifest),
                                                         Path(a.table), Path(a.markdown), Path(a.figure)),
                 "table of every model's detection metrics and the AUROC-vs-distillation-T figure")
    p.add_argument("--metrics", required=True, nargs="+")
    for name in ("manifest", "table", "markdown", "figure"):
        p.add_argument(f"--{name}", required=True)
