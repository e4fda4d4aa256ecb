"""Membership-inference stage (issue 8): data roles, what each shadow model gives the attacker, every attack on
each target (as deployed, after temperature scaling, and on PGD-perturbed inputs), and the report over targets.

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
from tempered.privacy.roles import shadow_roles, target_roles
from tempered.provenance import provenance
from tempered.step_params import step_config
from tempered.training.inference import predict_logits

log = logging.getLogger(__name__)

VARIANTS = ("deployed", "temperature_scaled", "adversarial_input")
SHADOW_ARRAYS = ("members_logits", "members_labels", "out_logits", "out_labels", "adv_members_logits",
                 "adv_out_logits", "candidate_members_logits", "candidate_nonmembers_logits", "candidate_in",
                 "temperature")


def roles_step(config_files: Sequence[str], split_path: Path, size: int, shadow: int | None, out: Path) -> None:
    config = step_config(config_files, "membership-roles")
    cfg = config["membership"]
    split = read_arrays(split_path, required=("p1", "p2", "test"))
    try:
        roles = (target_roles(split, size, cfg["n_eval"], cfg["seed"]) if shadow is None
                 else shadow_roles(split, size, shadow, cfg["n_eval"], cfg["seed"]))
    except ValueError as err:
        raise ArtifactError(f"membership roles from {split_path}: {err}") from err
    record = provenance({"n_eval": cfg["n_eval"], "seed": cfg["seed"], "size": size, "shadow": shadow},
                        seed=cfg["seed"], device="cpu", data_digests={split_path.name: sha256_file(split_path)})
    log.info("membership roles, size %d%s: %s", size, "" if shadow is None else f", shadow {shadow}",
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


def shadow_step(config_files: Sequence[str], model_name: str, checkpoint: Path, images_path: Path, roles_path: Path,
                target_roles_path: Path, out: Path) -> None:
    """Everything the attacker takes from one shadow: its logits on its members and on as many of its non-members
    (its IN and OUT candidates; plain and on PGD examples: per-class thresholds), its T fitted on the calibration
    images, and its logits on the targets' candidates with which of them it trained on (candidate_in: the IN and
    OUT distributions of the likelihood-ratio attack)."""
    config = step_config(config_files, "membership-shadow", model=model_name)
    device = resolve_device(config["compute"]["device"])
    mcfg = config.model(model_name)
    dataset = settings_dataset(mcfg)
    model, meta = load_model(mcfg, model_name, checkpoint)
    model.to(device)
    images = read_images(images_path)
    roles = read_arrays(roles_path, required=("shadow_members", "shadow_out", "calibration", "candidate_in"))
    candidates = read_arrays(target_roles_path, required=("members", "nonmembers"))
    arrays: dict[str, np.ndarray] = {}
    for name, role in tqdm((("members", "shadow_members"), ("out", "shadow_out")), desc=f"shadow {model_name}",
                           unit="set", mininterval=2.0):
        x, y = subset(images, roles, role)
        arrays[f"{name}_logits"] = _logits(model, x, config, device).numpy()
        arrays[f"{name}_labels"] = y.numpy()
        arrays[f"adv_{name}_logits"] = _adversarial_logits(model, x, y, config, dataset, device).numpy()
    for name in ("members", "nonmembers"):
        x, _ = subset(images, candidates, name)
        arrays[f"candidate_{name}_logits"] = _logits(model, x, config, device).numpy()
    arrays["candidate_in"] = roles["candidate_in"].astype(bool)
    if len(arrays["candidate_in"]) != len(candidates["members"]) + len(candidates["nonmembers"]):
        raise ArtifactError(f"{roles_path}: candidate_in covers {len(arrays['candidate_in'])} candidates, "
                            f"{target_roles_path} has {len(candidates['members']) + len(candidates['nonmembers'])}")
    x, y = subset(images, roles, "calibration")
    temperature, not_fitted = _fitted_temperature(model_name, _logits(model, x, config, device), y, config)
    arrays["temperature"] = np.float64(temperature)  # NaN: no finite optimum, the reason beside it
    arrays["temperature_not_fitted_reason"] = np.array(not_fitted)
    record = provenance(config.declared(),
                        seed=meta["provenance"]["seed"], device=device,
                        data_digests={p.name: sha256_file(p) for p in (checkpoint, roles_path, target_roles_path)})
    log.info("shadow %s: T=%.3f, %d members / %d non-members", model_name, float(arrays["temperature"]),
             len(arrays["members_labels"]), len(arrays["out_labels"]))
    write_arrays(out, {**arrays, "provenance_json": np.array(json.dumps(record))})


def _read_shadows(paths: Sequence[Path], n_members: int, n_nonmembers: int) -> list[dict[str, np.ndarray]]:
    shadows = [read_arrays(path, required=SHADOW_ARRAYS) for path in paths]
    for path, shadow in zip(paths, shadows, strict=True):
        got = (len(shadow["candidate_members_logits"]), len(shadow["candidate_nonmembers_logits"]))
        if got != (n_members, n_nonmembers) or len(shadow["candidate_in"]) != n_members + n_nonmembers:
            raise ArtifactError(f"shadow outputs {path} hold logits on {got[0]} members and {got[1]} non-members; "
                                f"this target's roles have {n_members} and {n_nonmembers} (another target size?)")
    return shadows


def _pooled(shadows: list[dict[str, np.ndarray]], prefix: str, scaled: bool) -> tuple[Logits, Logits]:
    """Every shadow's members and non-members, pooled: the per-class thresholds are fitted on all of them."""
    def pool(logits_key: str, labels_key: str) -> Logits:
        logits = [torch.from_numpy(s[logits_key]) / (float(s["temperature"]) if scaled else 1.0) for s in shadows]
        return Logits(torch.cat(logits), torch.from_numpy(np.concatenate([s[labels_key] for s in shadows])))

    return pool(f"{prefix}members_logits", "members_labels"), pool(f"{prefix}out_logits", "out_labels")


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


def _unscalable(target_reason: str, shadow_paths: Sequence[Path], shadows: list[dict[str, np.ndarray]]) -> str:
    """Why the temperature_scaled variant cannot be attacked ("" if it can): the target or a shadow has no T."""
    reasons = [target_reason] if target_reason else []
    for path, shadow in zip(shadow_paths, shadows, strict=True):
        if not math.isfinite(float(shadow["temperature"])):
            why = str(shadow["temperature_not_fitted_reason"]) if "temperature_not_fitted_reason" in shadow else ""
            reasons.append(f"shadow {path}: {why or 'no fitted temperature'}")
    return "; ".join(reasons)


def attack_step(config_files: Sequence[str], model_name: str, checkpoint: Path, images_path: Path, roles_path: Path,
                shadow_paths: Sequence[Path], metrics_path: Path, scores_dir: Path, roc_path: Path) -> None:
    from tempered.reporting.figures import save_figure
    from tempered.stages.membership.figures import roc_figure

    config = step_config(config_files, "membership-attack", model=model_name)
    cfg = config["membership"]
    target = config.model_id(model_name)
    if not target.is_target:
        raise ArtifactError(f"{model_name!r} is not a membership target (mi<size>_<model>)")
    mcfg = config.model(model_name)
    dataset = settings_dataset(mcfg)
    device = resolve_device(config["compute"]["device"])
    model, meta = load_model(mcfg, model_name, checkpoint)
    model.to(device)
    images = read_images(images_path)
    roles = read_arrays(roles_path, required=("members", "nonmembers", "calibration"))
    sets = {name: subset(images, roles, name) for name in ("members", "nonmembers", "calibration")}
    logits = {name: _logits(model, x, config, device) for name, (x, _) in sets.items()}
    temperature, not_fitted = _fitted_temperature(model_name, logits["calibration"], sets["calibration"][1], config)
    members, nonmembers = (Logits(logits[n], sets[n][1]) for n in ("members", "nonmembers"))
    shadows = _read_shadows(shadow_paths, len(members.labels), len(nonmembers.labels))
    candidate_in = np.stack([s["candidate_in"].astype(bool) for s in shadows])  # shadows x candidates
    skipped = {"temperature_scaled": _unscalable(not_fitted, shadow_paths, shadows)}
    skipped = {variant: why for variant, why in skipped.items() if why}
    boot = Bootstrap(**cfg["bootstrap"])

    results: dict[str, dict[str, Any]] = {}
    columns: dict[str, dict[str, np.ndarray]] = {}
    robustness: dict[str, float] = {}
    for variant in tqdm(VARIANTS, desc=f"membership attacks on {model_name}", unit="variant", mininterval=2.0):
        if variant in skipped:
            log.warning("%s: variant %s skipped: %s", model_name, variant, skipped[variant])
            continue
        if variant == "adversarial_input":
            t_in, t_out = (Logits(_adversarial_logits(model, *sets[n], config, dataset, device), sets[n][1])
                           for n in ("members", "nonmembers"))
            robustness = _robustness(t_in, t_out)
        else:
            scale = temperature if variant == "temperature_scaled" else 1.0
            t_in, t_out = Logits(members.logits / scale, members.labels), Logits(nonmembers.logits / scale,
                                                                                 nonmembers.labels)
        scaled = variant == "temperature_scaled"
        shadow_in, shadow_out = _pooled(shadows, "adv_" if variant == "adversarial_input" else "", scaled)
        if variant == "adversarial_input":
            results[variant], table = metric_attacks(t_in, t_out, shadow_in, shadow_out, boot)
        else:
            on = {n: [torch.from_numpy(s[f"candidate_{n}_logits"]) / (float(s["temperature"]) if scaled else 1.0)
                      for s in shadows] for n in ("members", "nonmembers")}
            results[variant], table = attack_target(t_in, t_out, shadow_in, shadow_out, on["members"],
                                                    on["nonmembers"], boot, candidate_in)
            table = table.drop(columns=["member", "label"])
        for attack in table.columns:
            columns.setdefault(attack, {})[variant] = table[attack].to_numpy()
        log.info("%s %s: %s", model_name, variant,
                 ", ".join(f"{a} AUROC {m['auroc']:.3f}" for a, m in results[variant].items()))

    record = checked_metrics(metrics_path, {  # before the first write: a refused record leaves no output
        "model": model_name, "inner_model": target.inner, "seed": meta["provenance"]["seed"],
        "target": {**_target_summary(members, nonmembers, temperature, mcfg, target.size,
                                     config["calibration"]["n_bins"]), **robustness},
        "robustness_attack": {"attack": "pgd", **cfg["adversarial_input"][dataset]},
        "attacks": results,
        "temperature_scaling_change": _temperature_scaling_changes(columns, len(members.labels), boot),
        "best_threshold_accuracy_p_value": _permutation_nulls(columns, len(members.labels), boot),
        "skipped_variants": skipped,
        "n_members": len(members.labels), "n_nonmembers": len(nonmembers.labels), "n_shadows": len(shadows),
        "shadow_recipe": cfg["shadow_recipe"],
        "provenance": provenance(config.declared(),
                                 seed=meta["provenance"]["seed"], device=device,
                                 data_digests={p.name: sha256_file(p) for p in (checkpoint, roles_path)}),
    })
    scores_dir.mkdir(parents=True, exist_ok=True)
    member = np.r_[np.ones(len(members.labels), bool), np.zeros(len(nonmembers.labels), bool)]
    label = np.concatenate([members.labels.numpy(), nonmembers.labels.numpy()])
    for attack, by_variant in columns.items():
        write_table(scores_dir / f"{attack}.csv", pd.DataFrame({"member": member, "label": label, **by_variant}))
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
    """This stage's CLI steps: membership-roles, membership-shadow, membership-attack, membership-report."""
    p = add_step("membership-roles", lambda a: roles_step(a.config, Path(a.split), a.size, a.shadow, Path(a.out)),
                 "index sets of one target size (or of one of its shadows)")
    p.add_argument("--split", required=True)
    p.add_argument("--size", required=True, type=int)
    p.add_argument("--shadow", type=int, help="the shadow's number k; without it, the target's roles")
    p.add_argument("--out", required=True)

    p = add_step("membership-shadow", lambda a: shadow_step(a.config, a.model, Path(a.checkpoint), Path(a.images),
                                                            Path(a.roles), Path(a.target_roles), Path(a.out)),
                 "a shadow model's logits, PGD logits and fitted T, for the attacker")
    p.add_argument("--model", required=True, help="mi<size>_<recipe>_shadow<k>")
    for name in ("checkpoint", "images", "roles", "target-roles", "out"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("membership-attack", lambda a: attack_step(
        a.config, a.model, Path(a.checkpoint), Path(a.images), Path(a.roles), [Path(s) for s in a.shadows],
        Path(a.metrics), Path(a.scores), Path(a.figure)),
        "every membership attack on one target: deployed, temperature-scaled, adversarial inputs")
    p.add_argument("--model", required=True, help="mi<size>_<model>")
    for name in ("checkpoint", "images", "roles", "metrics", "scores", "figure"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--shadows", required=True, nargs="+", help="the membership-shadow outputs of this size")

    p = add_step("membership-report", lambda a: report_step(
        a.config, [Path(m) for m in a.metrics], Path(a.table), Path(a.paired_table), Path(a.markdown),
        Path(a.summary), {name: Path(getattr(a, name)) for name in FIGURES}),
        "the membership table, summary metrics and figures over every target")
    p.add_argument("--metrics", required=True, nargs="+", help="every membership-attack JSON")
    for name in ("table", "paired_table", "markdown", "summary", *FIGURES):
        p.add_argument(f"--{name.replace('_', '-')}", required=True)
