"""Membership-inference stage (issues 8, 15): data roles per size and model seed (Carlini et al. 2022's pool:
each model seed trains on its half), what each membership model outputs on the candidates (read by an attack on
it and by an attack that uses it as a shadow), every attack on each target (as deployed, after temperature
scaling, and on PGD-perturbed inputs), and the report over targets.

Three variants of every target are attacked:
- deployed: the logits at T=1;
- temperature_scaled: the logits divided by the T fitted on the calibration digits (Guo et al. 2017); the
  attacker's shadows are scaled the same way, each by its own fitted T, as the attacker copies the deployment.
  Where the target's or a shadow's NLL has no finite optimum in T (a model near chance), there is no scaled
  deployment to attack: the variant is skipped with the reason, never run at an optimiser's runaway T;
- adversarial_input: Song et al. 2019, the metric attacks on the logits of PGD examples of each candidate.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from tempered.artifacts import (
    ArtifactError,
    checked_metrics,
    read_arrays,
    sha256_file,
    write_arrays,
    write_metrics,
    write_table,
)
from tempered.attacks.pgd import PGD
from tempered.calibration.temperature_scaling import NoFiniteOptimum, calibration_metrics, fit_temperature
from tempered.config import settings_dataset, shadow_models
from tempered.data.arrays import read_images, subset
from tempered.device import resolve_device
from tempered.models import ClassLogits
from tempered.models.checkpoints import load_model
from tempered.privacy.evaluation import Bootstrap, Logits, attack_target, metric_attacks
from tempered.privacy.paired import PAIRED_METRICS, best_threshold_accuracy, paired_difference, permutation_p_value
from tempered.privacy.roles import model_roles
from tempered.provenance import provenance
from tempered.step_params import step_config
from tempered.training.inference import predict_logits

log = logging.getLogger(__name__)

VARIANTS = ("deployed", "temperature_scaled", "adversarial_input")
# What membership-outputs writes: a model's logits on the candidates, plain and on their PGD examples, their
# labels, which candidates it trained on, its T fitted on the calibration digits (NaN with the reason beside it
# where the NLL has no finite optimum) and the candidates themselves (so an attack refuses another size's).
OUTPUT_ARRAYS = ("logits", "adv_logits", "labels", "candidates", "candidate_in", "temperature",
                 "temperature_not_fitted_reason", "provenance_json")


def roles_step(config_files: Sequence[str], split_path: Path, size: int, seed: int, out: Path) -> None:
    config = step_config(config_files, "membership-roles")
    cfg = config["membership"]
    split = read_arrays(split_path, required=("train", "test"))
    try:
        roles = model_roles(split, size, seed, cfg["n_eval"], cfg["seed"])
    except ValueError as err:
        raise ArtifactError(f"membership roles from {split_path}: {err}") from err
    record = provenance({"n_eval": cfg["n_eval"], "seed": cfg["seed"], "size": size, "model_seed": seed},
                        seed=cfg["seed"], device="cpu", data_digests={split_path.name: sha256_file(split_path)})
    log.info("membership roles, size %d, model seed %d: %s", size, seed,
             {name: len(idx) for name, idx in roles.items()})
    write_arrays(out, {**roles, "provenance_json": np.array(json.dumps(record))})


def _logits(model, x: torch.Tensor, config: dict, device: torch.device) -> torch.Tensor:
    return predict_logits(model, x, config["evaluation"]["batch_size"], device)


def _adversarial_logits(model, x: torch.Tensor, y: torch.Tensor, config: dict, dataset: str,
                        device: torch.device) -> torch.Tensor:
    """Song et al. 2019: logits of each candidate's PGD example (the attacker's eps for this dataset, untargeted,
    true label)."""
    cfg = config["membership"]["adversarial_input"][dataset]
    attack = PGD(eps=cfg["eps"], alpha=cfg["alpha"], steps=cfg["steps"], random_start=cfg["random_start"], seed=0,
                 progress=True)
    model = ClassLogits(model)  # a learned-confidence model is attacked through its class logits
    batch = config["evaluation"]["batch_size"]
    x_adv = torch.cat([attack.attack(model, x[i:i + batch].to(device), y[i:i + batch].to(device)).x_adv.cpu()
                       for i in range(0, len(x), batch)])
    return _logits(model, x_adv, config, device)


def _fitted_temperature(model_name: str, logits: torch.Tensor, labels: torch.Tensor,
                        config: dict) -> tuple[float, str]:
    """(T, "") or, where the NLL has no finite optimum in T, (NaN, the reason): nothing to scale by."""
    try:
        return fit_temperature(logits, labels, config["calibration"]["init_temperature"],
                               config["calibration"]["max_iter"]), ""
    except NoFiniteOptimum as err:
        log.warning("%s: temperature not fitted on the calibration digits: %s", model_name, err)
        return math.nan, f"{model_name}: {err} ({len(labels)} calibration digits)"
    except ValueError as err:
        raise ArtifactError(f"{model_name}: temperature scaling on the calibration digits failed: {err}") from err


def _check_checkpoint(meta: dict, checkpoint: Path, model_name: str, seed: int, roles_path: Path,
                      roles_digest: str) -> None:
    """A checkpoint of this model, trained at this seed on these roles (roles_digest: the file's sha256): else its
    outputs would carry another model's membership labels."""
    recorded = meta["provenance"]
    digest = recorded.get("data_digests", {}).get(roles_path.name)
    problems = ([f"it holds model {meta.get('model')!r}, not {model_name!r}"] if meta.get("model") != model_name
                else [])
    problems += [f"it was trained at seed {recorded['seed']}, not {seed}"] if recorded["seed"] != seed else []
    problems += ([f"it was trained on other roles than {roles_path} (recorded sha256 {digest}, the file's "
                  f"{roles_digest})"] if digest != roles_digest else [])
    if problems:
        raise ArtifactError(f"checkpoint {checkpoint}: " + "; ".join(problems))


def outputs_step(config_files: Sequence[str], model_name: str, seed: int, checkpoint: Path, images_path: Path,
                 roles_path: Path, out: Path) -> None:
    """Everything an attacker takes from one membership model at one model seed: its logits on the candidates
    (plain, and on each candidate's PGD example: Song et al. 2019), which candidates it trained on, and its T
    fitted on the calibration digits. The same file serves the attack on this model (as a target) and every
    attack that uses it as a shadow."""
    config = step_config(config_files, "membership-outputs", model=model_name)
    device = resolve_device(config["compute"]["device"])
    mcfg = config.model(model_name)
    model, meta = load_model(mcfg, model_name, checkpoint)
    digests = {p.name: sha256_file(p) for p in (checkpoint, roles_path)}
    _check_checkpoint(meta, checkpoint, model_name, seed, roles_path, digests[roles_path.name])
    model.to(device)
    images = read_images(images_path)
    roles = read_arrays(roles_path, required=("candidates", "candidate_in", "calibration"))
    x, y = subset(images, roles, "candidates")
    arrays = {"logits": _logits(model, x, config, device).numpy(), "labels": y.numpy(),
              "candidates": roles["candidates"], "candidate_in": roles["candidate_in"].astype(bool)}
    arrays["adv_logits"] = _adversarial_logits(model, x, y, config, settings_dataset(mcfg), device).numpy()
    x_cal, y_cal = subset(images, roles, "calibration")
    temperature, not_fitted = _fitted_temperature(model_name, _logits(model, x_cal, config, device), y_cal, config)
    arrays["temperature"] = np.float64(temperature)  # NaN: no finite optimum, the reason beside it
    arrays["temperature_not_fitted_reason"] = np.array(not_fitted)
    record = {**provenance(config.declared(), seed=seed, device=device, data_digests=digests),
              "model": model_name, "model_seed": seed}
    log.info("%s seed %d: T=%.3f on %d candidates (%d IN)", model_name, seed, temperature, len(y),
             int(arrays["candidate_in"].sum()))
    write_arrays(out, {**arrays, "provenance_json": np.array(json.dumps(record))})


def _read_outputs(path: Path) -> dict[str, Any]:
    arrays = read_arrays(path, required=OUTPUT_ARRAYS)
    try:
        record = json.loads(str(arrays["provenance_json"]))
        arrays["model"], arrays["model_seed"] = str(record["model"]), int(record["model_seed"])
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"membership outputs {path}: provenance_json lacks the model and its seed ({err})") from err
    return arrays


def _read_shadows(paths: Sequence[Path], target: dict[str, Any], target_path: Path, recipe: str,
                  model_seeds: Sequence[int]) -> tuple[list[Path], list[dict[str, Any]]]:
    """The shadows' paths and outputs: the shadow recipe's at every model seed but the target's. Refused unless
    each given file is the recipe's, on the target's candidates, and together they hold every model seed once
    (the target's own seed among them, dropped here: the same model as the target, or, with a shared recipe,
    one trained on the target's own half)."""
    shadows = [_read_outputs(path) for path in paths]
    for path, shadow in zip(paths, shadows, strict=True):
        if not np.array_equal(shadow["candidates"], target["candidates"]):
            raise ArtifactError(f"shadow outputs {path} score other candidates than the target's {target_path} "
                                f"(another size or membership.seed?)")
        if shadow["model"] != recipe:
            raise ArtifactError(f"shadow outputs {path} are of model {shadow['model']!r}; this target's shadows are "
                                f"{recipe!r} (membership.shadow_recipe)")
    seeds = sorted(shadow["model_seed"] for shadow in shadows)
    if seeds != sorted(model_seeds):
        raise ArtifactError(f"shadow outputs {', '.join(map(str, paths))} are at model seeds {seeds}; the attack "
                            f"needs the recipe at each of {sorted(model_seeds)} once (0..membership.n_shadows; "
                            f"the target's own seed {target['model_seed']} is dropped)")
    kept = [(path, shadow) for path, shadow in zip(paths, shadows, strict=True)
            if shadow["model_seed"] != target["model_seed"]]
    return [path for path, _ in kept], [shadow for _, shadow in kept]


def _split_candidates(arrays: dict[str, Any], order: np.ndarray, n_members: int, key: str,
                      scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`key`'s logits on the target's members and on its non-members (the target's order), divided by scale."""
    logits = torch.from_numpy(arrays[key][order]) / scale
    return logits[:n_members], logits[n_members:]


def _pooled(shadows: list[dict[str, Any]], key: str, scaled: bool) -> tuple[Logits, Logits]:
    """Every shadow's own members (its IN candidates) and non-members (its OUT candidates), pooled: the
    per-class thresholds are fitted on all of them."""
    def pool(inside: bool) -> Logits:
        picks = [s["candidate_in"] == inside for s in shadows]
        logits = [torch.from_numpy(s[key][p]) / (float(s["temperature"]) if scaled else 1.0)
                  for s, p in zip(shadows, picks, strict=True)]
        labels = [s["labels"][p] for s, p in zip(shadows, picks, strict=True)]
        return Logits(torch.cat(logits), torch.from_numpy(np.concatenate(labels)))

    return pool(True), pool(False)


def _target_summary(members: Logits, nonmembers: Logits, temperature: float, mcfg: dict, size: int,
                    n_bins: int) -> dict[str, Any]:
    """What leakage is compared with: the generalization gap and calibration (on the non-members)."""
    train_acc = _accuracy(members)
    before = calibration_metrics(nonmembers.logits, nonmembers.labels, 1.0, n_bins)
    summary = {"dataset": settings_dataset(mcfg), "train_size": size, "training_temperature": mcfg["temperature"],
               "robust_training": mcfg["method"] in ("madry_pgd", "szegedy_pools"),
               "train_accuracy": train_acc, "test_accuracy": before["accuracy"],
               "generalization_gap": train_acc - before["accuracy"], "ece": before["ece"], "nll": before["nll"]}
    # Where T has no finite optimum there is nothing to scale by: the keys are omitted (not measured), not NaN.
    if math.isfinite(temperature):
        after = calibration_metrics(nonmembers.logits, nonmembers.labels, temperature, n_bins)
        summary.update(fitted_temperature=temperature, ece_scaled=after["ece"], nll_scaled=after["nll"])
    return summary


def _accuracy(scored: Logits) -> float:
    return float((scored.logits.argmax(1) == scored.labels).double().mean())


def _robustness(members: Logits, nonmembers: Logits) -> dict[str, float]:
    """How robust the target is (Song et al. 2019 report it beside leakage): its accuracy on the PGD examples of
    its members (training digits) and of its non-members (held out), and their difference, the robust
    generalization gap."""
    train, test = _accuracy(members), _accuracy(nonmembers)
    return {"pgd_train_accuracy": train, "pgd_test_accuracy": test, "robust_generalization_gap": train - test}


def _temperature_scaling_changes(columns: dict[str, dict[str, np.ndarray]], n_members: int,
                                 boot: Bootstrap) -> dict[str, dict[str, float | bool]]:
    """Per attack, what temperature scaling changes (scaled minus deployed) in each paired metric, on the same
    candidates: a paired bootstrap interval and the change this many candidates would detect (80% power)."""
    changes = {}
    for attack, by_variant in columns.items():
        if "temperature_scaled" not in by_variant:
            continue
        a, b = by_variant["deployed"], by_variant["temperature_scaled"]
        changes[attack] = {}
        for name, metric in PAIRED_METRICS.items():
            change = paired_difference(metric, a[:n_members], a[n_members:], b[:n_members], b[n_members:],
                                       boot.n_boot, boot.level, boot.seed)
            changes[attack].update(change.as_dict(name))
    return changes


def _permutation_nulls(columns: dict[str, dict[str, np.ndarray]], n_members: int,
                       boot: Bootstrap) -> dict[str, dict[str, float]]:
    """Per attack and variant, the permutation p-value of its best-threshold accuracy (as many relabellings as the
    bootstrap draws resamples): how often a blind attack on these scores does as well."""
    return {attack: {variant: permutation_p_value(best_threshold_accuracy, scores[:n_members], scores[n_members:],
                                                  boot.n_boot, boot.seed)
                     for variant, scores in by_variant.items()}
            for attack, by_variant in columns.items()}


def _unscalable(target: dict[str, Any], shadow_paths: Sequence[Path], shadows: list[dict[str, Any]]) -> str:
    """Why the temperature_scaled variant cannot be attacked ("" if it can): the target or a shadow has no T."""
    reasons = [str(target["temperature_not_fitted_reason"]) or "the target has no fitted temperature"
               ] if not math.isfinite(float(target["temperature"])) else []
    for path, shadow in zip(shadow_paths, shadows, strict=True):
        if not math.isfinite(float(shadow["temperature"])):
            reasons.append(f"shadow {path}: {str(shadow['temperature_not_fitted_reason']) or 'no fitted temperature'}")
    return "; ".join(reasons)


def attack_step(config_files: Sequence[str], model_name: str, seed: int, target_path: Path,
                shadow_paths: Sequence[Path], metrics_path: Path, scores_dir: Path, roc_path: Path) -> None:
    """Every attack on the target `model_name` at model seed `seed`, from membership outputs alone: the target's
    and the shadow recipe's at every model seed (its shadows: all but the target's seed). No checkpoint is read."""
    from tempered.model_grid import membership_model_seeds
    from tempered.reporting.figures import save_figure
    from tempered.stages.membership.figures import roc_figure

    config = step_config(config_files, "membership-attack", model=model_name)
    cfg = config["membership"]
    target_id = config.model_id(model_name)
    if not target_id.is_membership:
        raise ArtifactError(f"{model_name!r} is not a membership target (mi<size>_<model>)")
    mcfg = config.model(model_name)
    dataset = settings_dataset(mcfg)
    target = _read_outputs(target_path)
    if (target["model"], target["model_seed"]) != (model_name, seed):
        raise ArtifactError(f"{target_path} holds the outputs of {target['model']!r} at model seed "
                            f"{target['model_seed']}, not of {model_name!r} at seed {seed}")
    recipe = config.shadow_recipe(model_name).name
    shadow_paths, shadows = _read_shadows(shadow_paths, target, target_path, recipe, membership_model_seeds(config))
    # The target's order: its members (IN candidates), then its non-members; every shadow's arrays follow it.
    inside = target["candidate_in"].astype(bool)
    order = np.r_[np.flatnonzero(inside), np.flatnonzero(~inside)]
    n_members = int(inside.sum())
    labels = torch.from_numpy(target["labels"][order])
    candidate_in = np.stack([s["candidate_in"][order].astype(bool) for s in shadows])  # shadows x candidates
    temperature = float(target["temperature"])
    skipped = {"temperature_scaled": _unscalable(target, shadow_paths, shadows)}
    skipped = {variant: why for variant, why in skipped.items() if why}
    boot = Bootstrap(**cfg["bootstrap"])

    def target_logits(key: str, scale: float) -> tuple[Logits, Logits]:
        on_members, on_nonmembers = _split_candidates(target, order, n_members, key, scale)
        return Logits(on_members, labels[:n_members]), Logits(on_nonmembers, labels[n_members:])

    members, nonmembers = target_logits("logits", 1.0)
    results: dict[str, dict[str, Any]] = {}
    columns: dict[str, dict[str, np.ndarray]] = {}
    robustness: dict[str, float] = {}
    for variant in tqdm(VARIANTS, desc=f"membership attacks on {model_name}", unit="variant", mininterval=2.0):
        if variant in skipped:
            log.warning("%s: variant %s skipped: %s", model_name, variant, skipped[variant])
            continue
        scaled = variant == "temperature_scaled"
        key = "adv_logits" if variant == "adversarial_input" else "logits"
        t_in, t_out = target_logits(key, temperature if scaled else 1.0)
        if variant == "adversarial_input":
            robustness = _robustness(t_in, t_out)
        shadow_in, shadow_out = _pooled(shadows, key, scaled)
        if variant == "adversarial_input":
            results[variant], table = metric_attacks(t_in, t_out, shadow_in, shadow_out, boot)
        else:
            on = [_split_candidates(s, order, n_members, key, float(s["temperature"]) if scaled else 1.0)
                  for s in shadows]
            results[variant], table = attack_target(t_in, t_out, shadow_in, shadow_out, [m for m, _ in on],
                                                    [n for _, n in on], boot, candidate_in)
            table = table.drop(columns=["member", "label"])
        for attack in table.columns:
            columns.setdefault(attack, {})[variant] = table[attack].to_numpy()
        log.info("%s %s: %s", model_name, variant,
                 ", ".join(f"{a} AUROC {m['auroc']:.3f}" for a, m in results[variant].items()))

    record = checked_metrics(metrics_path, {  # before the first write: a refused record leaves no output
        "model": model_name, "inner_model": target_id.inner, "seed": seed,
        "target": {**_target_summary(members, nonmembers, temperature, mcfg, target_id.size,
                                     config["calibration"]["n_bins"]), **robustness},
        "robustness_attack": {"attack": "pgd", **cfg["adversarial_input"][dataset]},
        "attacks": results,
        "temperature_scaling_change": _temperature_scaling_changes(columns, n_members, boot),
        "best_threshold_accuracy_p_value": _permutation_nulls(columns, n_members, boot),
        "skipped_variants": skipped,
        "n_members": n_members, "n_nonmembers": len(order) - n_members, "n_shadows": len(shadows),
        "shadow_recipe": cfg["shadow_recipe"], "shadow_model": recipe,
        "shadow_seeds": ",".join(str(s["model_seed"]) for s in shadows),
        "provenance": provenance(config.declared(), seed=seed, device="cpu",
                                 data_digests={str(p): sha256_file(p) for p in (target_path, *shadow_paths)}),
    })
    scores_dir.mkdir(parents=True, exist_ok=True)
    member = np.r_[np.ones(n_members, bool), np.zeros(len(order) - n_members, bool)]
    candidate = target["candidates"][order]
    for attack, by_variant in columns.items():
        write_table(scores_dir / f"{attack}.csv", pd.DataFrame({"candidate": candidate, "member": member,
                                                                "label": labels.numpy(), **by_variant}))
    save_figure(roc_figure(columns, member, model_name), roc_path)
    write_metrics(metrics_path, record)


FIGURES = ("vs_temperature", "scaling", "vs_generalization")  # keys of tempered.paths.MEMBERSHIP_FIGURES


def report_step(config_files: Sequence[str], metrics_paths: Sequence[Path], table_path: Path,
                paired_table_path: Path, markdown_path: Path, summary_path: Path,
                figure_paths: dict[str, Path]) -> None:
    from tempered.artifacts import write_bytes
    from tempered.model_grid import ModelId, membership_target_ids, robust_membership_model
    from tempered.reporting.figures import save_figure
    from tempered.stages.membership import figures as figs
    from tempered.stages.membership.report import (
        markdown,
        membership_frame,
        paired_frame,
        read_records,
        shadows_sentence,
        summary,
    )

    config = step_config(config_files, "membership-report")
    cfg = config["membership"]
    records = read_records(metrics_paths)
    frame, paired = membership_frame(records), paired_frame(records)
    robust = robust_membership_model(config)
    # A target whose T had no finite optimum on any seed has no mean T or scaled ECE: not measured.
    record = checked_metrics(summary_path, summary(frame, config["distillation"]["base_model"], robust, paired,
                                                   cfg["song2019_models"]),
                             not_measured=("targets.*.target.fitted_temperature", "targets.*.target.ece_scaled"))
    write_table(table_path, frame)
    write_table(paired_table_path, paired)
    shadows = shadows_sentence(cfg["shadow_recipe"], shadow_models(config), cfg["n_shadows"])
    write_bytes(markdown_path, markdown(frame, paired, record.get("versus_base"), shadows).encode())
    write_metrics(summary_path, record)
    distilled = {m.name: m for m in membership_target_ids(config) if m.is_distilled}
    base = {ModelId(config["distillation"]["base_model"], size=size).name: size for size in cfg["train_sizes"]}
    save_figure(figs.leakage_vs_temperature(frame, distilled, base), figure_paths["vs_temperature"])
    save_figure(figs.before_after_scaling(frame), figure_paths["scaling"])
    save_figure(figs.leakage_vs_generalization(frame), figure_paths["vs_generalization"])


def register(add_step) -> None:
    """This stage's CLI steps: membership-roles, membership-outputs, membership-attack, membership-report."""
    p = add_step("membership-roles", lambda a: roles_step(a.config, Path(a.split), a.size, a.seed, Path(a.out)),
                 "index sets of one membership size and model seed (its half of the pool, the candidates)")
    p.add_argument("--split", required=True)
    p.add_argument("--size", required=True, type=int)
    p.add_argument("--seed", required=True, type=int, help="the model seed k (half k of the pool)")
    p.add_argument("--out", required=True)

    p = add_step("membership-outputs", lambda a: outputs_step(
        a.config, a.model, a.seed, Path(a.checkpoint), Path(a.images), Path(a.roles), Path(a.out)),
        "a membership model's logits and PGD logits on the candidates and its fitted T, for the attacks")
    p.add_argument("--model", required=True, help="mi<size>_<model>")
    p.add_argument("--seed", required=True, type=int, help="the model seed")
    for name in ("checkpoint", "images", "roles", "out"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("membership-attack", lambda a: attack_step(
        a.config, a.model, a.seed, Path(a.target), [Path(s) for s in a.shadows], Path(a.metrics), Path(a.scores),
        Path(a.figure)),
        "every membership attack on one target: deployed, temperature-scaled, adversarial inputs")
    p.add_argument("--model", required=True, help="mi<size>_<model>")
    p.add_argument("--seed", required=True, type=int, help="the target's model seed (one of membership.seeds)")
    p.add_argument("--target", required=True, help="the target's membership-outputs")
    p.add_argument("--shadows", required=True, nargs="+",
                   help="the shadow recipe's membership-outputs at every model seed (the target's own is dropped)")
    for name in ("metrics", "scores", "figure"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("membership-report", lambda a: report_step(
        a.config, [Path(m) for m in a.metrics], Path(a.table), Path(a.paired_table), Path(a.markdown),
        Path(a.summary), {name: Path(getattr(a, name)) for name in FIGURES}),
        "the membership table, summary metrics and figures over every target")
    p.add_argument("--metrics", required=True, nargs="+", help="every membership-attack JSON")
    for name in ("table", "paired_table", "markdown", "summary", *FIGURES):
        p.add_argument(f"--{name.replace('_', '-')}", required=True)
