"""Training steps (workflow/rules/train.smk): train a model for one seed by its configured method, reuse a
twin's training, and write a distillation teacher's soft labels."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tempered.artifacts import (
    ArtifactError,
    file_digests,
    read_arrays,
    read_checkpoint,
    write_arrays,
    write_bytes,
    write_checkpoint,
    write_table,
)
from tempered.config import ConfigError
from tempered.data.arrays import read_images, subset
from tempered.data.split import monitor_set
from tempered.device import resolve_device, seed_everything
from tempered.models import build_model
from tempered.models.checkpoints import load_model
from tempered.provenance import provenance
from tempered.step_params import step_config
from tempered.training.inference import soft_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRun:
    """One model's training as train_step reads it: its settings, data and where it runs."""

    mcfg: dict
    x: torch.Tensor
    y: torch.Tensor
    soft_targets: torch.Tensor | None
    generator: torch.Generator
    device: torch.device
    channels_last: bool
    monitor: tuple[torch.Tensor, torch.Tensor]
    monitor_name: str
    settings_key: str  # where the settings live in the config (models.<name>), for error messages

    def minibatch_args(self) -> dict:
        """What every minibatch method takes: the epochs, the SGD settings and the loop's monitor."""
        return {"epochs": self.mcfg["epochs"], "batch_size": self.mcfg["batch_size"],
                "optimizer_cfg": self.mcfg["optimizer"], "generator": self.generator, "device": self.device,
                "monitor": self.monitor, "monitor_name": self.monitor_name,
                "lr_key": f"{self.settings_key}.optimizer.lr"}


def _cross_entropy(model, run: TrainingRun, perturb=None) -> list[dict]:
    from tempered.training.methods import train_classifier

    return train_classifier(model, run.x, run.y, temperature=run.mcfg["temperature"],
                            channels_last=run.channels_last, soft_targets=run.soft_targets, perturb=perturb,
                            **run.minibatch_args())


def _learned_confidence(model, run: TrainingRun) -> list[dict]:
    from tempered.training.methods import train_confidence_classifier

    settings = run.mcfg["learned_confidence"]
    return train_confidence_classifier(model, run.x, run.y, lambda_init=settings["lambda_init"],
                                       budget=settings["budget"], temperature=run.mcfg["temperature"],
                                       channels_last=run.channels_last, **run.minibatch_args())


def _madry_pgd(model, run: TrainingRun) -> list[dict]:
    from tempered.training.madry_pgd import pgd_perturbation

    batches = -(-len(run.x) // run.mcfg["batch_size"])
    return _cross_entropy(model, run, pgd_perturbation(run.mcfg["pgd_training"], run.mcfg["temperature"],
                                                       run.generator, batches))


def _szegedy_pools(model, run: TrainingRun) -> list[dict]:
    from tempered.training.methods import train_with_adversarial_pool

    return train_with_adversarial_pool(model, run.x, run.y, **run.minibatch_args(),
                                       **run.mcfg["adversarial_training"])


def _sparse_autoencoder(model, run: TrainingRun) -> list[dict]:
    """Szegedy et al. 2014, Table 1: the sparse autoencoder learns without labels first, then stays frozen under
    the softmax layer, which trains by cross-entropy. The history is the softmax layer's."""
    from tempered.training.methods import pretrain_autoencoder

    pretrain_autoencoder(model.autoencoder, run.x, generator=run.generator, device=run.device,
                         lr_key=f"{run.settings_key}.autoencoder.lr", **run.mcfg["autoencoder"])
    return _cross_entropy(model, run)


def _convex_lbfgs(model, run: TrainingRun) -> list[dict]:
    """Szegedy et al. 2014 trained with L-BFGS; for a convex objective (FC10) that reaches the optimum."""
    from tempered.training.convex import train_full_batch_lbfgs

    opt = run.mcfg["optimizer"]
    return train_full_batch_lbfgs(model, run.x, run.y, max_iter=opt["max_iter"], tolerance_grad=opt["tolerance_grad"],
                                  history_size=opt["history_size"], device=run.device, monitor=run.monitor,
                                  monitor_name=run.monitor_name)


def training_method(method: str):
    """models.<name>.method -> the function that trains by it (tempered.config.METHOD_SECTIONS: the settings each
    takes). The table is built on call: at module level it would make every step of this stage, soft-labels and
    reuse-training included, depend on the training code (tempered.code_deps follows what module-level statements
    name)."""
    return {"cross_entropy": _cross_entropy, "learned_confidence": _learned_confidence, "madry_pgd": _madry_pgd,
            "szegedy_pools": _szegedy_pools, "sparse_autoencoder": _sparse_autoencoder,
            "convex_lbfgs": _convex_lbfgs}[method]


def train_step(config_files: Sequence[str], model_name: str, seed: int, images_path: Path, split_path: Path,
               checkpoint: Path, history_path: Path, soft_labels_path: Path | None = None) -> None:
    config = step_config(config_files, "train", model=model_name)
    mcfg = config.model(model_name)
    if ("teacher" in mcfg) != (soft_labels_path is not None):
        raise ConfigError(f"model {model_name!r}: a distillation student needs --soft-labels from its teacher, "
                          f"and only a student takes them")
    compute = config["compute"]
    device = resolve_device(compute["device"])
    generator = seed_everything(seed)
    images, split = read_images(images_path), read_arrays(split_path)
    x, y = subset(images, split, mcfg["train_set"], mcfg["limit_train"])
    targets = None
    if soft_labels_path is not None:
        targets = _read_soft_labels(soft_labels_path, mcfg, y)
    monitor_name, monitor_limit = monitor_set(mcfg["train_set"], config["evaluation"]["limit_eval"])
    monitor = subset(images, split, monitor_name, monitor_limit)
    log.info("training %s (seed %d) by %s on %s: %d samples, %d epochs, T=%g, device %s", model_name, seed,
             mcfg["method"], mcfg["train_set"], len(x), mcfg["epochs"], mcfg["temperature"], device)
    model = build_model(mcfg)
    run = TrainingRun(mcfg=mcfg, x=x, y=y, soft_targets=targets, generator=generator, device=device,
                      channels_last=compute["channels_last"], monitor=monitor, monitor_name=monitor_name,
                      settings_key=config.model_key(model_name))
    history = training_method(mcfg["method"])(model, run)
    inputs = [images_path, split_path] + ([soft_labels_path] if soft_labels_path else [])
    meta = {"model": model_name, "model_config": mcfg, "train_size": len(x),
            "provenance": provenance(mcfg, seed=seed, device=device, data_digests=file_digests(*inputs))}
    write_checkpoint(checkpoint, model.state_dict(), meta)
    frame = pd.DataFrame(history)
    frame.insert(0, "seed", seed)
    write_table(history_path, frame)


def reuse_training_step(config_files: Sequence[str], model_name: str, twin_checkpoint: Path, twin_history: Path,
                        checkpoint: Path, history_path: Path) -> None:
    """A model whose training would repeat another's exactly (model_grid.training_twins: the teacher at T=1 is the
    base CNN) gets that model's weights and history instead of a second training: the same tensors, its own name
    in the metadata, and `trained_as` naming the model that was trained."""
    config = step_config(config_files, "reuse-training", model=model_name)
    state_dict, meta = read_checkpoint(twin_checkpoint)
    twin = meta.get("model")
    # Which model is the twin is the DAG's knowledge (tempered.model_grid.training_twins, which reads every model's
    # settings); the step checks what it can see: the checkpoint was trained with exactly this model's settings.
    if twin == model_name:
        raise ArtifactError(f"checkpoint {twin_checkpoint} is {model_name!r}'s own: a model reuses another's training")
    if meta.get("model_config") != config.model(model_name):
        raise ArtifactError(f"checkpoint {twin_checkpoint} is of {twin!r}, trained with other settings than "
                            f"{model_name!r} ({config.model_key(model_name)}): there is no training to reuse")
    log.info("%s trains exactly as %s (same settings, data and seed): reusing its weights", model_name, twin)
    write_checkpoint(checkpoint, state_dict, {**meta, "model": model_name, "trained_as": twin})
    write_bytes(history_path, twin_history.read_bytes())


def _read_soft_labels(path: Path, mcfg: dict, labels) -> torch.Tensor:
    """The teacher's probabilities, checked to belong to these training samples and this temperature."""
    arrays = read_arrays(path, required=("probs", "labels", "temperature"))
    if not np.array_equal(arrays["labels"], labels.numpy()):
        raise ArtifactError(f"soft labels {path} were made for other training samples than {mcfg['train_set']} "
                            f"(limit {mcfg['limit_train']}): {len(arrays['labels'])} vs {len(labels)} samples")
    if float(arrays["temperature"]) != mcfg["temperature"]:
        raise ArtifactError(f"soft labels {path} are at T={float(arrays['temperature']):g}, "
                            f"the student trains at T={mcfg['temperature']:g}")
    probs = arrays["probs"]
    if (probs.ndim != 2 or len(probs) != len(labels) or not np.isfinite(probs).all()
            or probs.min(initial=0) < 0 or probs.max(initial=0) > 1):
        raise ArtifactError(f"soft labels {path}: 'probs' must be finite probabilities, one row per sample "
                            f"({len(labels)}); got shape {probs.shape}, {int((~np.isfinite(probs)).sum())} "
                            f"non-finite values")
    return torch.from_numpy(probs)


def soft_labels_step(config_files: Sequence[str], teacher: str, checkpoint: Path, images_path: Path,
                     split_path: Path, out: Path) -> None:
    """Papernot et al. 2016 section IV.B: the teacher's softmax at T on every training sample."""
    config = step_config(config_files, "soft-labels", model=teacher)
    mcfg = config.model(teacher)
    device = resolve_device(config["compute"]["device"])
    model, meta = load_model(mcfg, teacher, checkpoint)
    x, y = subset(read_images(images_path), read_arrays(split_path), mcfg["train_set"], mcfg["limit_train"])
    probs = soft_labels(model.to(device), x, mcfg["temperature"], config["evaluation"]["batch_size"], device)
    agreement = (probs.argmax(1) == y).float().mean().item()
    log.info("%s soft labels at T=%g: %d samples, argmax agrees with the label on %.4f", teacher,
             mcfg["temperature"], len(y), agreement)
    write_arrays(out, {"probs": probs.numpy(), "labels": y.numpy(), "temperature": np.float64(mcfg["temperature"]),
                       "provenance_json": np.array(json.dumps(meta["provenance"]))})


def register(add_step) -> None:
    """This stage's CLI steps: training (base, teachers, students), reused training, soft labels."""
    p = add_step("train", lambda a: train_step(a.config, a.model, a.seed, Path(a.images), Path(a.split),
                                               Path(a.checkpoint), Path(a.history),
                                               Path(a.soft_labels) if a.soft_labels else None),
                 "train one model for one seed")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", required=True, type=int)
    for name in ("images", "split", "checkpoint", "history"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--soft-labels", help="a distillation student's targets: its teacher's soft labels (.npz)")

    p = add_step("reuse-training", lambda a: reuse_training_step(a.config, a.model, Path(a.twin_checkpoint),
                                                                 Path(a.twin_history), Path(a.checkpoint),
                                                                 Path(a.history)),
                 "give a model whose training would repeat another's (the teacher at T=1) that model's weights")
    p.add_argument("--model", required=True)
    for name in ("twin-checkpoint", "twin-history", "checkpoint", "history"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("soft-labels", lambda a: soft_labels_step(a.config, a.model, Path(a.checkpoint), Path(a.images),
                                                           Path(a.split), Path(a.out)),
                 "a distillation teacher's softmax at its temperature on its training set")
    p.add_argument("--model", required=True, help="the teacher, e.g. teacher_T20")
    for name in ("checkpoint", "images", "split", "out"):
        p.add_argument(f"--{name}", required=True)
