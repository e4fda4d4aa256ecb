"""What the report reads, as a function of the config: the report rule's inputs and DVC's deps come from
here, so they cannot drift from what the step opens. Config and paths only (no torch): the Snakefile imports it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tempered import paths
from tempered.model_grid import distilled_names
from tempered.stages.ood.scored_models import ood_model_names
from tempered.stages.report.claims import metric_files

DATA_MANIFESTS = {name: paths.DATASET_MANIFEST.format(dataset=name) for name in ("mnist", "fashion_mnist")}


def _hottest_student(config: Mapping[str, Any]) -> str | None:
    students = distilled_names(config, "student")
    return students[-1] if students else None


def report_figures(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The figures each report section shows (made by the stages' own rules), by section group."""
    seed, base = config["seeds"][0], config["distillation"]["base_model"]
    hottest = _hottest_student(config)
    calibration = [paths.FITTED_VS_DISTILLATION_T, paths.RELIABILITY_DIAGRAM.format(model=base, seed=seed)]
    if hottest:
        calibration.append(paths.RELIABILITY_DIAGRAM.format(model=hottest, seed=seed))
    ood = [paths.OOD_AUROC_VS_T]
    ood += [paths.OOD_ROC.format(model=m, seed=seed) for m in ood_model_names(config) if m in ("cnn", "confidence")]
    largest = max(config["membership"]["train_sizes"])
    membership = list(paths.MEMBERSHIP_FIGURES.values())
    membership.append(paths.MEMBERSHIP_ROC.format(model=f"mi{largest}_{base}", seed=config["membership"]["seeds"][0]))
    return {
        "szegedy": [paths.SZEGEDY_TRANSFER_HEATMAP],
        "distillation": list(paths.DISTILLATION_FIGURES.values()),
        "calibration": calibration,
        "ood": ood,
        "membership": membership,
    }


def summary_metric_files(config: Mapping[str, Any]) -> list[str]:
    """The per-student metrics the summary figure reads, and the membership summary (its leakage panel)."""
    files = [paths.MEMBERSHIP_SUMMARY]
    for seed in config["seeds"]:
        for student in distilled_names(config, "student"):
            files += [paths.EVAL_METRICS.format(model=student, seed=seed),
                      paths.CALIBRATION_METRICS.format(model=student, seed=seed)]
            files += [paths.ATTACK_METRICS.format(attack=a, model=student, seed=seed)
                      for a in ("jsma", "cw_l2") if a in config["attacks"]["enabled"]]
            if student in ood_model_names(config):
                files.append(paths.OOD_METRICS.format(model=student, seed=seed))
        base = config["distillation"]["base_model"]
        if base in ood_model_names(config):
            files.append(paths.OOD_METRICS.format(model=base, seed=seed))
    return files


def report_inputs(config: Mapping[str, Any], claims: Sequence[Mapping[str, Any]]) -> list[str]:
    """Everything the report reads: the rule's inputs (and DVC's deps) come from here, so they cannot drift."""
    files = metric_files(claims, config) + summary_metric_files(config)
    files += [f for group in report_figures(config).values() for f in group]
    return sorted(set(files) | set(DATA_MANIFESTS.values()) | {paths.SPLIT_INDEXES})
