"""Evaluation steps (workflow/rules/evaluate.smk): a trained model's logits and metrics on its held-out sets,
and their summary across seeds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tempered.artifacts import (
    ArtifactError,
    checked_metrics,
    file_digests,
    read_arrays,
    read_json,
    write_arrays,
    write_metrics,
)
from tempered.data.arrays import read_images, subset
from tempered.data.split import HELD_OUT
from tempered.device import resolve_device
from tempered.models.checkpoints import load_model
from tempered.provenance import provenance
from tempered.step_params import step_config
from tempered.training.inference import classification_metrics, predict_logits

log = logging.getLogger(__name__)


def evaluate_step(config_files: Sequence[str], model_name: str, checkpoint: Path, images_path: Path,
                  split_path: Path, logits_path: Path, metrics_path: Path) -> None:
    config = step_config(config_files, "evaluate", model=model_name)
    mcfg = config.model(model_name)
    device = resolve_device(config["compute"]["device"])
    model, meta = load_model(mcfg, model_name, checkpoint)
    model.to(device)
    images, split = read_images(images_path), read_arrays(split_path)
    arrays, metrics = {}, {}
    # Only sets held out from this model's training set: never evaluate on data it trained on.
    for set_name in HELD_OUT[mcfg["train_set"]]:
        x, y = subset(images, split, set_name, config["evaluation"]["limit_eval"])
        logits = predict_logits(model, x, config["evaluation"]["batch_size"], device)
        arrays[f"{set_name}_logits"] = logits.numpy()
        arrays[f"{set_name}_labels"] = y.numpy()
        metrics[set_name] = classification_metrics(logits, y)
        log.info("%s on %s: %s", model_name, set_name, metrics[set_name])
    seed = meta["provenance"]["seed"]
    record = checked_metrics(metrics_path, {
        **metrics, "model": model_name, "seed": seed,
        "provenance": provenance(mcfg, seed=seed, device=device, data_digests=file_digests(checkpoint, images_path)),
    })  # before the first write: a refused record leaves no logits behind
    write_arrays(logits_path, arrays)
    write_metrics(metrics_path, record)


def summarize_step(model_name: str, metrics_paths: Sequence[Path], out: Path) -> None:
    from tempered.reporting.summary import summarise_metrics

    per_seed, first = {}, None
    for path in metrics_paths:
        record = read_json(path)
        if not isinstance(record, dict) or record.get("model") != model_name:
            model = record.get("model") if isinstance(record, dict) else None
            raise ArtifactError(f"{path} holds metrics of model {model!r}, not {model_name!r}")
        if not isinstance(record.get("seed"), int):
            raise ArtifactError(f"{path}: metrics of model {model_name!r} lack an integer 'seed'")
        sets = {k: v for k, v in record.items() if isinstance(v, dict) and k != "provenance"}
        first = first or (path, sets)
        # Every seed must carry the metrics the first one does: a missing one would be a bare KeyError later.
        missing = [f"{name}.{metric}" for name, metrics in first[1].items() for metric in metrics
                   if metric not in sets.get(name, {})]
        if missing:
            raise ArtifactError(f"{path}: metrics of model {model_name!r} lack {missing}, which {first[0]} has")
        per_seed[record["seed"]] = sets
    write_metrics(out, {"model": model_name, "seeds": sorted(per_seed), **summarise_metrics(per_seed)})


def register(add_step) -> None:
    """This stage's CLI steps: evaluation and its summary across seeds."""
    p = add_step("evaluate", lambda a: evaluate_step(a.config, a.model, Path(a.checkpoint), Path(a.images),
                                                     Path(a.split), Path(a.logits), Path(a.metrics)),
                 "logits and metrics of a trained model on its held-out sets")
    p.add_argument("--model", required=True)
    for name in ("checkpoint", "images", "split", "logits", "metrics"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("summarize", lambda a: summarize_step(a.model, [Path(m) for m in a.metrics], Path(a.out)),
                 "aggregate a model's metrics across seeds")
    p.add_argument("--model", required=True)
    p.add_argument("--metrics", required=True, nargs="+")
    p.add_argument("--out", required=True)
