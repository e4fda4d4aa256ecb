"""Which config keys each step reads. One table serves both engines: Snakemake rules record these values as
params (so a change reruns exactly the affected jobs) and dvc.yaml lists the same keys as DVC params.

compute.* is deliberately absent: device and thread count do not change what is computed, only how fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tempered.config import derived_setting_keys, model_config_key

# {model_key} is where the model's settings live: models.<model>, or the base model's for teacher_T<T> and
# student_T<T> (whose temperature is in the name, so the grid adds or removes jobs, never reruns others).
STEP_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "fetch": ("data.{dataset}",),
    "split": ("split",),
    "train": ("{model_key}", "evaluation.limit_eval"),
    "reuse-training": ("{model_key}", "evaluation.limit_eval"),  # what its twin's training read
    "soft-labels": ("{model_key}.train_set", "{model_key}.limit_train", "evaluation.batch_size"),
    "evaluate": ("{model_key}.train_set", "evaluation"),
    "attack": ("attacks.samples", "attacks.seed", "attacks.batch_size", "attacks.{attack}"),
    "gradients": ("attacks.gradient_samples", "attacks.seed"),
    "distillation-report": ("distillation", "attacks.enabled"),
    "calibrate": ("{model_key}.train_set", "calibration"),
    "calibration-report": (),
    "fetch-ood-sets": ("ood.datasets",),
    "ood": ("{model_key}.train_set", "ood.datasets", "ood.noise", "ood.tune_size", "ood.limit_report", "ood.odin",
            "ood.confidence_epsilons", "ood.bootstrap", "evaluation.batch_size"),
    "ood-report": (),
    "training-set-error": ("{model_key}.train_set", "{model_key}.limit_train", "evaluation.batch_size"),
    "lbfgs-attack": ("szegedy.attack",),
    "szegedy-transfer": ("szegedy.cross_model", "szegedy.cross_training_set", "szegedy.attack", "szegedy.gaussian",
                         "szegedy.magnify_to"),
    "szegedy-examples": ("szegedy.example_images",),
    "szegedy-report": ("szegedy.cross_model", "szegedy.cross_training_set", "szegedy.adversarial_training",
                       "szegedy.paper_labels", "szegedy.attack.sample_set", "szegedy.gaussian.clip"),
    "membership-roles": ("membership.n_eval", "membership.seed"),
    "membership-shadow": ("membership.adversarial_input", "evaluation.batch_size", "calibration.init_temperature",
                          "calibration.max_iter"),
    "membership-attack": ("membership.adversarial_input", "membership.bootstrap", "evaluation.batch_size",
                          "calibration"),
    "membership-report": ("membership", "distillation", "models"),
    "summarize": (),
    "plot-training": (),
    # The report lists every result-affecting setting that departs from config.yaml (not compute or data sources).
    "report": ("seeds", "split", "models", "distillation", "attacks", "calibration", "ood", "szegedy", "evaluation",
               "membership", "report.judge_claims"),
}


def step_config_keys(step: str, config: Mapping[str, Any], **args: Any) -> list[str]:
    if step not in STEP_CONFIG_KEYS:
        raise KeyError(f"step {step!r} declares no config keys; known steps: {sorted(STEP_CONFIG_KEYS)}")
    if "model" in args:
        args["model_key"] = model_config_key(config, args["model"])
    keys = [key.format(**args) for key in STEP_CONFIG_KEYS[step]]
    if "model" in args:
        keys += derived_setting_keys(config, args["model"])
    return keys


def lookup(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value[part]
    return value


def has_key(config: Mapping[str, Any], dotted: str) -> bool:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return True


def _canonical(value: Any) -> Any:
    """Mappings with their keys sorted, all the way down: Snakemake compares params by their repr, so without
    this, reordering or reformatting a config file would rerun jobs whose settings did not change."""
    if isinstance(value, Mapping):
        return {key: _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def config_slice(config: Mapping[str, Any], step: str, **args: Any) -> dict[str, Any]:
    """{key: value} of everything `step` reads from config, for Snakemake's params (canonical key order)."""
    return {key: _canonical(lookup(config, key)) for key in sorted(step_config_keys(step, config, **args))}
