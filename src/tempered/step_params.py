"""Which config keys each step reads. One table serves both engines: Snakemake rules record these values as
params (so a change reruns exactly the affected jobs) and dvc.yaml lists the same keys as DVC params.

compute.* is deliberately absent: device and thread count do not change what is computed, only how fast.

A step sees nothing else: step_config gives it the config as a StepConfig, which refuses every key its entry
does not declare, so what a step reads and what its rule records cannot drift apart.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tempered.config import load_config
from tempered.model_grid import (
    ModelId,
    derived_setting_keys,
    model_config,
    model_config_key,
    model_dataset,
    model_id,
    shadow_recipe,
)

# {model_key} is where the model's settings live: models.<model>, or the base model's for teacher_T<T> and
# student_T<T> (whose temperature is in the name, so the grid adds or removes jobs, never reruns others).
# {model_dataset}: the dataset the model trains on (models.<family>.dataset); {dataset}: the fetch job's.
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
    # Which table a model is attacked for (its group) sets the digits it is attacked on.
    "lbfgs-attack": ("szegedy.attack", "szegedy.cross_model", "szegedy.cross_training_set"),
    "szegedy-transfer": ("szegedy.cross_model", "szegedy.cross_training_set", "szegedy.attack", "szegedy.gaussian",
                         "szegedy.magnify_to", "szegedy.magnify_per"),
    "szegedy-examples": ("szegedy.example_images",),
    "szegedy-report": ("szegedy.cross_model", "szegedy.cross_training_set", "szegedy.adversarial_training",
                       "szegedy.paper_labels", "szegedy.attack.sample_set", "szegedy.gaussian.clip",
                       "szegedy.magnify_per"),
    "membership-roles": ("membership.n_eval", "membership.seed"),
    "membership-outputs": ("membership.adversarial_input.{model_dataset}", "evaluation.batch_size",
                          "calibration.init_temperature", "calibration.max_iter"),
    "membership-attack": ("membership.adversarial_input.{model_dataset}", "membership.bootstrap",
                          "membership.shadow_recipe", "membership.shadow_model", "membership.n_shadows",
                          "calibration.n_bins"),
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
        args["model_dataset"] = model_dataset(config, args["model"])
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


# How a step computes (device, threads, memory layout), never what: no step declares it, so switching it reruns
# nothing, and every step may read it.
HOW_NOT_WHAT = ("compute",)


class UndeclaredConfigRead(Exception):
    """A step read a config key its entry in STEP_CONFIG_KEYS does not name: a change to that key would not rerun
    the step under either engine. A bug in the step or in the table, never in the user's config."""


class StepConfig(Mapping[str, Any]):
    """The config as one step sees it: exactly the keys STEP_CONFIG_KEYS declares for it (the slice its rule
    records as params and its dvc.yaml stage lists), plus compute.*. Reading any other key raises
    UndeclaredConfigRead, naming the step and the key, so the declared slice and what the step reads cannot drift
    apart. A mapping on the way to a declared key is itself a StepConfig; a declared value comes back as it is.

    Key listing and `in` show the config's shape, not its values: they are free.

    A model's own settings (model()) are free too: they reach a step with that model's artifacts (its checkpoint,
    logits or metrics, the step's inputs), which the training rewrites when they change.
    """

    def __init__(self, config: Mapping[str, Any], step: str, declared: Sequence[str]) -> None:
        self._value: Mapping[str, Any] = config
        self._root: Mapping[str, Any] = config
        self._step = step
        self._keys = tuple(sorted(declared))
        self._declared = tuple(tuple(key.split(".")) for key in [*declared, *HOW_NOT_WHAT])
        self._path: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        path = (*self._path, key)
        if any(path[:len(d)] == d for d in self._declared):  # at or under a declared key
            return self._value[key]
        if not any(d[:len(path)] == path for d in self._declared):  # nor on the way to one
            raise UndeclaredConfigRead(
                f"step {self._step!r} read config key {'.'.join(path)!r}, which it does not declare: add it to "
                f"STEP_CONFIG_KEYS[{self._step!r}] in tempered/step_params.py (then Snakemake's params and "
                f"dvc.yaml's params record it, and a change to it reruns the step)")
        value = self._value[key]
        if not isinstance(value, Mapping):
            return value
        inner = copy.copy(self)
        inner._value, inner._path = value, path
        return inner

    def __iter__(self) -> Iterator[str]:
        return iter(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __contains__(self, key: object) -> bool:
        return key in self._value

    def declared(self) -> dict[str, Any]:
        """{key: value} of every key the step declares: what its rule records as params (config_slice), and what
        its artifacts' provenance hashes."""
        return {key: _canonical(lookup(self._root, key)) for key in self._keys}

    def model(self, name: str) -> dict[str, Any]:
        """The settings of model `name` (tempered.model_grid.model_config)."""
        return model_config(self._root, name)

    def model_id(self, name: str) -> ModelId:
        """Model `name`'s dimensions (family, role, T, membership size): tempered.model_grid.model_id."""
        return model_id(self._root, name)

    def shadow_recipe(self, name: str) -> ModelId:
        """The recipe whose other model seeds are target `name`'s shadows (tempered.model_grid.shadow_recipe). Free
        like model(): the step that asks declares membership.shadow_recipe and membership.shadow_model, and the
        recipe's settings reach it with the shadows' outputs."""
        return shadow_recipe(self._root, model_id(self._root, name))

    def model_key(self, name: str) -> str:
        """The config key model `name`'s settings live under (for messages that name what to change)."""
        return model_config_key(self._root, name)


def step_view(config: Mapping[str, Any], step: str, **args: Any) -> StepConfig:
    """A validated config as `step` sees it (its wildcards in `args`, as for step_config_keys)."""
    return StepConfig(config, step, step_config_keys(step, config, **args))


def step_config(config_files: Sequence[str], step: str, **args: Any) -> StepConfig:
    """The config files merged and validated (tempered.config.load_config), seen as `step` declares them."""
    return step_view(load_config(config_files), step, **args)
