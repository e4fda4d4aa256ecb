"""The detection protocol: which detectors score a model, and which samples tune them and which report.

Tune/report rule (ODIN, Liang et al. 2018, section 4; DeVries & Taylor 2018, section 4): the hyper-parameters of
ODIN and of learned confidence with preprocessing are chosen on the first `tune_size` samples of each OOD set
and on `tune_size` in-distribution samples from the model's first held-out set (the validation set its
temperature was fitted on); every reported number uses the remaining OOD samples and the MNIST test set. A model
with only the test set held out (train_set "full") tunes on the first `tune_size` test samples and reports on the
rest. Tuning and report samples never overlap (tested).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tempered.config import ConfigError
from tempered.data.split import HELD_OUT

REPORT_SET = "test"

# Detectors every classifier gets; "_scaled" are the same scores at the temperature fitted on validation data.
LOGIT_DETECTORS = ("msp", "msp_scaled", "energy", "energy_scaled", "odin")
CONFIDENCE_DETECTORS = ("confidence", "confidence_preprocessed")
TUNED_DETECTORS = ("odin", "confidence_preprocessed")


def detectors_for(architecture: str, temperature_fitted: bool) -> list[str]:
    names = [d for d in LOGIT_DETECTORS if temperature_fitted or not d.endswith("_scaled")]
    return names + (list(CONFIDENCE_DETECTORS) if architecture == "confidence_cnn" else [])


def in_distribution_parts(train_set: str, split: Mapping[str, np.ndarray], tune_size: int,
                          limit_report: int | None) -> dict[str, tuple[str, np.ndarray]]:
    """{"tune": (set name, indexes), "report": (set name, indexes)} into the MNIST arrays (SOURCE_ARRAY)."""
    held = HELD_OUT[train_set]
    if len(held) > 1:
        tune = (held[0], split[held[0]][:tune_size])
        report_idx = split[REPORT_SET]
    else:
        tune = (REPORT_SET, split[REPORT_SET][:tune_size])
        report_idx = split[REPORT_SET][tune_size:]
    report = (REPORT_SET, report_idx[:limit_report] if limit_report else report_idx)
    if tune[0] == report[0] and np.intersect1d(tune[1], report[1]).size:
        raise AssertionError(f"in-distribution tuning and report samples overlap in set {tune[0]!r}")
    if len(tune[1]) == 0 or len(report[1]) == 0:
        raise ConfigError(f"ood.tune_size {tune_size} leaves {len(tune[1])} in-distribution tuning and "
                          f"{len(report[1])} report samples for a model trained on {train_set!r}")
    return {"tune": tune, "report": report}


def ood_parts(n: int, tune_size: int, limit_report: int | None, dataset: str) -> dict[str, np.ndarray]:
    """Indexes of an OOD set's tuning part (the first tune_size) and report part (the rest, first limit_report)."""
    if n <= tune_size:
        raise ConfigError(f"OOD set {dataset!r} has {n} samples, not more than ood.tune_size ({tune_size}): "
                          f"nothing would be left to report on")
    report = np.arange(tune_size, n)
    return {"tune": np.arange(tune_size), "report": report[:limit_report] if limit_report else report}
