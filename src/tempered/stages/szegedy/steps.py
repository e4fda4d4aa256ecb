"""Szegedy et al. 2014 ("Intriguing properties of neural networks") section 4 stage: error on each model's own
training set (reported beside the held-out errors, never used to choose anything), one box-constrained L-BFGS
adversarial set per (model, seed), the error of every model on every set (Tables 2 and 4, with Gaussian-noise
and magnified rows), per-model example figures and the report (tempered.stages.szegedy.report).

Which digits are attacked (szegedy.attack.sample_set, per table group). Table 1's distortion is the one "that
drives the training-set accuracy to 0%", and Table 2's distortion column is "wrt. original training set": the
cross-model examples are made from training digits. For the cross-training-set tables the paper says "we were
distorting the elements of the test set rather than the training set": the models there trained on different
halves (P1, P2), and test digits are the ones no model has seen. Every model of a group is attacked on the same
seeded draw, so that the transfer tables compare models on the same digits."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tempered.artifacts import (
    ArtifactError,
    checked_metrics,
    read_arrays,
    read_json,
    sha256_file,
    write_arrays,
    write_metrics,
)
from tempered.attacks.common import concatenate, random_other_targets, rms_distortion
from tempered.attacks.registry import build_attack
from tempered.config import ConfigError
from tempered.data.arrays import read_images, subset
from tempered.data.split import source_array
from tempered.device import resolve_device, seed_everything
from tempered.models.checkpoints import load_model
from tempered.provenance import provenance
from tempered.stages.szegedy.groups import TRANSFER_GROUPS, group_members
from tempered.stages.szegedy.perturbations import gaussian_noise, magnify
from tempered.step_params import step_config
from tempered.training.inference import classification_metrics, predict_logits

log = logging.getLogger(__name__)

NUM_CLASSES = 10


def transfer_group(config: Mapping[str, Any], model_name: str) -> str:
    """The transfer-table group (szegedy.cross_model or szegedy.cross_training_set) a model is attacked for. The
    lists were checked against the models before any job ran (szegedy_groups, in rules/szegedy.smk)."""
    for group in TRANSFER_GROUPS:
        if model_name in config["szegedy"][group]:
            return group
    raise ConfigError(f"model {model_name!r} is in neither szegedy.cross_model nor szegedy.cross_training_set")


def sample_source(sample_set: str, settings: Mapping[str, Any]) -> tuple[str, int | None]:
    """(split set, limit) a group's attacked digits are drawn from: 'test', or, for sample_set 'train', the training
    set of the group's models (`settings`: any one's; szegedy_groups checks before any job runs that they share
    their train_set and limit_train)."""
    if sample_set == "test":
        return "test", None
    return settings["train_set"], settings["limit_train"]


def attack_samples(images: Mapping[str, np.ndarray], split: Mapping[str, np.ndarray], sample_set: str,
                   limit: int | None, cfg: Mapping[str, Any]) -> tuple[np.ndarray, torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
    """The seeded draw of `cfg['samples']` digits of one split set (its first `limit`) and their random other
    targets: the same for every model of a group and every seed. The index points into the MNIST array the set
    indexes (tempered.data.split.source_array)."""
    pool = split[sample_set][:limit] if limit else split[sample_set]
    if cfg["samples"] > len(pool):
        raise ConfigError(f"szegedy.attack.samples: {cfg['samples']} is more than the {len(pool)} samples of "
                          f"{sample_set!r}")
    index = pool[np.sort(np.random.default_rng(cfg["seed"]).choice(len(pool), size=cfg["samples"], replace=False))]
    source = source_array(sample_set)
    x = torch.from_numpy(images[f"x_{source}"][index].astype(np.float32) / 255.0).unsqueeze(1)
    labels = torch.from_numpy(images[f"y_{source}"][index].astype(np.int64))
    targets = random_other_targets(labels, NUM_CLASSES, torch.Generator().manual_seed(cfg["seed"]))
    return index, x, labels, targets


def _digests(*paths: Path) -> dict[str, str]:
    return {Path(p).name: sha256_file(p) for p in paths}


def training_set_error_step(config_files: Sequence[str], model_name: str, checkpoint: Path, images_path: Path,
                            split_path: Path, out: Path) -> None:
    """Error on the samples the model trained on: Table 1's "train" column and Table 3's own-half column.
    A reported number only; nothing is fitted or chosen on it."""
    config = step_config(config_files, "training-set-error", model=model_name)
    mcfg = config.model(model_name)
    device = resolve_device(config["compute"]["device"])
    model, meta = load_model(mcfg, model_name, checkpoint)
    x, y = subset(read_images(images_path), read_arrays(split_path), mcfg["train_set"], mcfg["limit_train"])
    metrics = classification_metrics(predict_logits(model.to(device), x, config["evaluation"]["batch_size"], device), y)
    log.info("%s on its training set %s: %s", model_name, mcfg["train_set"], metrics)
    seed = meta["provenance"]["seed"]
    write_metrics(out, {"model": model_name, "seed": seed, "training_set": mcfg["train_set"], **metrics,
                     "provenance": provenance(mcfg, seed=seed, device=device,
                                              data_digests=_digests(checkpoint, images_path, split_path))})


def lbfgs_attack_step(config_files: Sequence[str], model_name: str, seed: int, checkpoint: Path, images_path: Path,
                      split_path: Path, out: Path, metrics_path: Path) -> None:
    """Section 4.1: minimum-distortion targeted L-BFGS examples for the seeded samples of the model's group
    (training or test digits, szegedy.attack.sample_set); every one saved."""
    config = step_config(config_files, "lbfgs-attack")
    group = transfer_group(config, model_name)
    sample_set, limit = sample_source(config["szegedy"]["attack"]["sample_set"][group], config.model(model_name))
    cfg = config["szegedy"]["attack"]
    device = resolve_device(config["compute"]["device"])
    seed_everything(cfg["seed"])
    model, _ = load_model(config.model(model_name), model_name, checkpoint)
    model.to(device)
    images = read_images(images_path)
    index, x, labels, targets = attack_samples(images, read_arrays(split_path), sample_set, limit, cfg)
    attack = build_attack("lbfgs", cfg["lbfgs"], progress=True)
    parts = []
    for start in range(0, len(x), cfg["batch_size"]):
        end = start + cfg["batch_size"]
        parts.append(attack.attack(model, x[start:end].to(device), labels[start:end].to(device),
                                   targets[start:end].to(device)))
    result = concatenate(parts)
    success = result.success.cpu()
    # NaN where the attack failed, as the saved sets have always had it: no reader can average a failure in.
    dist = result.distortion.masked_fill(~result.success, float("nan")).cpu()
    x_adv = result.x_adv.cpu()
    with torch.no_grad():
        clean_correct = predict_logits(model, x, 1000, device).argmax(1) == labels
    summary = {"sample_set": sample_set, "success_rate": success.float().mean().item(), "attempts": len(success),
               "successes": int(success.sum()), "clean_accuracy": clean_correct.float().mean().item()}
    if success.any():
        summary |= {"distortion_mean": dist[success].mean().item(), "distortion_median": dist[success].median().item()}
    log.info("L-BFGS on %s (seed %d): %s", model_name, seed, summary)
    record = checked_metrics(metrics_path, {  # before the first write: a refused record leaves no output
        **summary, "model": model_name, "seed": seed,
        "provenance": provenance(cfg, seed=cfg["seed"], device=device,
                                 data_digests=_digests(checkpoint, images_path, split_path))})
    write_arrays(out, {"x_adv": x_adv.numpy(), "success": success.numpy(), "distortion": dist.numpy(),
                       "c": result.extras["c"].cpu().numpy(), "sample_index": index,
                       "sample_set": np.array(sample_set),
                       "label": labels.numpy(), "target": targets.numpy(), "model": np.array(model_name),
                       "seed": np.int64(seed)})
    write_metrics(metrics_path, record)


def errors(models: Mapping[str, torch.nn.Module], x: torch.Tensor, labels: torch.Tensor, device) -> dict[str, float]:
    """Each model's error (argmax != true label) on x."""
    return {name: 1.0 - classification_metrics(predict_logits(m, x, 1000, device), labels)["accuracy"]
            for name, m in models.items()}


def transfer_tables(models: Mapping[str, torch.nn.Module], adversarial: Mapping[str, Mapping[str, np.ndarray]],
                    x_clean: torch.Tensor, labels: torch.Tensor, sigmas: Sequence[float], noise_seed: int,
                    magnify_to: float | None, device, clip_noise: bool = False,
                    magnify_per: str = "set") -> dict[str, Any]:
    """Tables 2 and 4 for one group: error of every model on every model's successful adversarial examples
    (the diagonal is 1 by construction of a success), on Gaussian noise of each sigma over the same clean
    samples (unclipped as in the paper unless clip_noise; each row's measured distortion and its sigma are
    recorded beside its errors), and, with magnify_to, on each set magnified to that distortion (one factor per
    set or per sample: perturbations.magnify's `per`). A set with no
    success has no row (an error over no samples is undefined)."""
    out: dict[str, Any] = {"adversarial": {}, "successes": {}, "gaussian": {}, "gaussian_distortion": {},
                           "gaussian_sigma": {}, "gaussian_clipped": clip_noise}
    if magnify_to is not None:
        out |= {"magnified": {}, "magnified_distortion": {}, "magnified_per": magnify_per}
    for made_for, arrays in adversarial.items():
        ok = torch.from_numpy(arrays["success"])
        out["successes"][made_for] = int(ok.sum())
        if not ok.any():
            continue
        x_adv = torch.from_numpy(arrays["x_adv"])[ok]
        out["adversarial"][made_for] = errors(models, x_adv, labels[ok], device)
        if magnify_to is not None:
            x_big = magnify(x_clean[ok], x_adv, magnify_to, per=magnify_per)
            out["magnified"][made_for] = errors(models, x_big, labels[ok], device)
            out["magnified_distortion"][made_for] = rms_distortion(x_clean[ok], x_big).mean().item()
    for i, sigma in enumerate(sigmas):
        noisy = gaussian_noise(x_clean, sigma, torch.Generator().manual_seed(noise_seed + i), clip=clip_noise)
        key = f"sigma_{sigma:g}"
        out["gaussian"][key] = errors(models, noisy, labels, device)
        out["gaussian_distortion"][key] = rms_distortion(x_clean, noisy).mean().item()
        out["gaussian_sigma"][key] = sigma
    return out


def transfer_step(config_files: Sequence[str], seed: int, model_names: Sequence[str], checkpoints: Sequence[Path],
                  adversarial_paths: Sequence[Path], images_path: Path, split_path: Path, out: Path) -> None:
    config = step_config(config_files, "szegedy-transfer")
    cfg = config["szegedy"]
    groups = group_members(config, TRANSFER_GROUPS)
    if len(model_names) != len(checkpoints):
        raise ConfigError(f"--models ({len(model_names)}) and --checkpoints ({len(checkpoints)}) must pair up")
    device = resolve_device(config["compute"]["device"])
    models = {name: load_model(config.model(name), name, path)[0].to(device)
              for name, path in zip(model_names, checkpoints, strict=True)}
    adversarial = {}
    for path in adversarial_paths:
        arrays = read_arrays(path, required=("x_adv", "success", "label", "sample_index", "sample_set", "model",
                                             "seed"))
        if int(arrays["seed"]) != seed:
            raise ArtifactError(f"{path} was made for seed {int(arrays['seed'])}, this transfer is for seed {seed}")
        adversarial[str(arrays["model"])] = arrays
    images, split = read_images(images_path), read_arrays(split_path)
    record: dict[str, Any] = {"seed": seed}
    for group in TRANSFER_GROUPS:
        missing = [m for m in groups[group] if m not in models or m not in adversarial]
        if missing:
            raise ArtifactError(f"transfer for szegedy.{group} lacks the checkpoint or adversarial set of {missing}")
        sample_set, limit = sample_source(cfg["attack"]["sample_set"][group], config.model(groups[group][0]))
        index, x_clean, labels, _ = attack_samples(images, split, sample_set, limit, cfg["attack"])
        for name in groups[group]:
            if str(adversarial[name]["sample_set"]) != sample_set \
                    or not np.array_equal(adversarial[name]["sample_index"], index):
                raise ArtifactError(f"the adversarial set of {name} was made on other samples than szegedy.attack "
                                    f"now draws from {sample_set!r} (sample_set/samples/seed changed?)")
        sigmas = cfg["gaussian"][f"{group}_sigmas"]
        record[group] = transfer_tables(
            {m: models[m] for m in groups[group]}, {m: adversarial[m] for m in groups[group]}, x_clean, labels,
            sigmas, cfg["gaussian"]["seed"], cfg["magnify_to"] if group == "cross_training_set" else None, device,
            clip_noise=cfg["gaussian"]["clip"], magnify_per=cfg["magnify_per"])
        record[group]["sample_set"] = sample_set
        log.info("seed %d, %s: %s", seed, group, json.dumps(record[group]["adversarial"]))
    record["provenance"] = provenance(config.declared(), seed=seed, device=device,
                                      data_digests={str(p): sha256_file(p) for p in [*checkpoints,
                                                                                      *adversarial_paths]})
    write_metrics(out, record)


def examples_step(config_files: Sequence[str], model_name: str, adversarial_path: Path, images_path: Path,
                  out: Path) -> None:
    from tempered.reporting.figures import save_figure
    from tempered.stages.szegedy.report import examples_figure

    config = step_config(config_files, "szegedy-examples")
    arrays = read_arrays(adversarial_path, required=("x_adv", "success", "label", "target", "sample_index",
                                                     "sample_set"))
    images = read_images(images_path)
    x = images[f"x_{source_array(str(arrays['sample_set']))}"][arrays["sample_index"]].astype(np.float32) / 255.0
    save_figure(examples_figure(model_name, x, arrays, config["szegedy"]["example_images"]), out)


def report_step(args) -> None:
    from tempered.stages.szegedy.report import write_szegedy_report

    config = step_config(args.config, "szegedy-report")
    write_szegedy_report(
        config, group_members(config),
        eval_metrics=[read_json(p) for p in args.eval_metrics],
        training_set_error=[read_json(p) for p in args.training_set_error],
        attack_metrics=[read_json(p) for p in args.attack_metrics],
        transfer=[read_json(p) for p in args.transfer],
        tables=[Path(p) for p in args.tables], markdown=Path(args.markdown), metrics=Path(args.metrics),
        heatmap=Path(args.heatmap),
    )


def register(add_step) -> None:
    """This stage's CLI steps."""
    p = add_step("training-set-error", lambda a: training_set_error_step(
        a.config, a.model, Path(a.checkpoint), Path(a.images), Path(a.split), Path(a.out)),
        "error of a model on the samples it trained on (reported as train error, never tuned on)")
    p.add_argument("--model", required=True)
    for name in ("checkpoint", "images", "split", "out"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("lbfgs-attack", lambda a: lbfgs_attack_step(
        a.config, a.model, a.seed, Path(a.checkpoint), Path(a.images), Path(a.split), Path(a.out), Path(a.metrics)),
        "Szegedy et al. 2014 box-constrained L-BFGS adversarial set of one model")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", required=True, type=int)
    for name in ("checkpoint", "images", "split", "out", "metrics"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("szegedy-transfer", lambda a: transfer_step(
        a.config, a.seed, a.models, [Path(c) for c in a.checkpoints], [Path(s) for s in a.adversarial],
        Path(a.images), Path(a.split), Path(a.out)),
        "error of every model on every adversarial set, Gaussian noise and magnified sets (Tables 2 and 4)")
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--models", required=True, nargs="+")
    p.add_argument("--checkpoints", required=True, nargs="+", help="one per --models entry, same order")
    p.add_argument("--adversarial", required=True, nargs="+")
    p.add_argument("--images", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True)

    p = add_step("szegedy-examples", lambda a: examples_step(
        a.config, a.model, Path(a.adversarial), Path(a.images), Path(a.out)),
        "original / magnified perturbation / adversarial grid of one model (the paper's Figure 5)")
    p.add_argument("--model", required=True)
    for name in ("adversarial", "images", "out"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("szegedy-report", report_step, "Szegedy et al. 2014 Tables 1-4, adversarial training, heatmap")
    for name in ("eval-metrics", "training-set-error", "attack-metrics", "transfer"):
        p.add_argument(f"--{name}", required=True, nargs="+")
    p.add_argument("--tables", required=True, nargs=10, help="CSV and markdown of table1..4, adversarial_training")
    p.add_argument("--markdown", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--heatmap", required=True)
