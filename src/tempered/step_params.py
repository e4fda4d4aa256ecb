"""Which config keys each step reads. One table serves both engines: Snakemake rules record these values as
params (so a change reruns exactly the affected jobs) and dvc.yaml lists the same keys as DVC params.

compute.* is deliberately absent: device and thread count do not change what is computed, only how fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STEP_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "fetch": ("data.{dataset}",),
    "split": ("split",),
    "train": ("models.{model}", "evaluation.limit_eval"),
    "evaluate": ("models.{model}.train_set", "evaluation"),
    "summarize": (),
    "plot-training": (),
}


def step_config_keys(step: str, **args: Any) -> list[str]:
    if step not in STEP_CONFIG_KEYS:
        raise KeyError(f"step {step!r} declares no config keys; known steps: {sorted(STEP_CONFIG_KEYS)}")
    return [key.format(**args) for key in STEP_CONFIG_KEYS[step]]


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


def config_slice(config: Mapping[str, Any], step: str, **args: Any) -> dict[str, Any]:
    """{key: value} of everything `step` reads from config, for Snakemake's params."""
    return {key: lookup(config, key) for key in step_config_keys(step, **args)}
