"""Load, overlay and validate the pipeline configuration.

config.yaml is the one source of truth; presets overlay it key by key. Every job validates the merged
config against workflow/schemas/config.schema.yaml, so a bad key fails before any work, naming the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
MNIST_TRAIN_SIZE = 60_000


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file or key and what was expected."""


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay mapping onto base recursively, as Snakemake does with --configfile; lists are replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at top level, got {type(data).__name__}")
    return data


def load_config(paths: Iterable[Path | str]) -> dict[str, Any]:
    """Merge the config files in order (later files overlay earlier ones) and validate the result."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("no config file given (expected config.yaml, optionally followed by presets)")
    config: dict[str, Any] = {}
    for path in paths:
        config = deep_merge(config, read_yaml(path))
    validate_config(config, source=" + ".join(str(p) for p in paths))
    return config


def _load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def validate_config(config: Mapping[str, Any], source: str = "config") -> None:
    """Raise ConfigError naming the key, the expectation and the actual value; else return None."""
    validator = jsonschema.Draft202012Validator(_load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"- {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError(f"invalid configuration ({source}):\n" + "\n".join(lines))
    _check_semantics(config, source)


def _check_semantics(config: Mapping[str, Any], source: str) -> None:
    """Checks a JSON schema cannot express: sizes that depend on the data."""
    base = config["distillation"]["base_model"]
    if base not in config["models"]:
        raise ConfigError(f"invalid configuration ({source}):\n- distillation.base_model: {base!r} is not a model "
                          f"defined under 'models' ({', '.join(sorted(config['models']))})")
    val = config["split"]["validation_size"]
    if val >= MNIST_TRAIN_SIZE:
        raise ConfigError(
            f"invalid configuration ({source}):\n- split.validation_size: {val} must be smaller than "
            f"the MNIST training set ({MNIST_TRAIN_SIZE})"
        )


def config_hash(section: Any) -> str:
    """A stable short digest of a config value (key order does not matter), recorded as provenance."""
    canonical = json.dumps(section, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# Distillation models are named for their role and temperature: teacher_T20, student_T0p5 ('.' -> 'p').
DISTILLED_NAME = re.compile(r"^(?P<role>teacher|student)_T(?P<tag>[0-9]+(?:p[0-9]+)?)$")


def temperature_tag(temperature: float) -> str:
    return f"{temperature:g}".replace(".", "p")


def distilled_names(config: Mapping[str, Any], role: str) -> list[str]:
    return [f"{role}_T{temperature_tag(t)}" for t in config["distillation"]["temperatures"]]


def attacked_models(config: Mapping[str, Any]) -> list[str]:
    """Papernot et al. 2016 section V: the undistilled base model and every student, deployed at T=1."""
    return [config["distillation"]["base_model"], *distilled_names(config, "student")]


def all_model_names(config: Mapping[str, Any]) -> list[str]:
    """Every model the DAG trains: those under 'models', then teachers and students over the T grid."""
    enabled = sorted(name for name, cfg in config["models"].items() if cfg.get("enabled", True))
    return enabled + distilled_names(config, "teacher") + distilled_names(config, "student")


def model_config(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """A model's settings; teacher_T<T> / student_T<T> are distillation.base_model's at temperature T."""
    if model in config["models"]:
        return dict(config["models"][model])
    match = DISTILLED_NAME.match(model)
    temperatures = {temperature_tag(t): float(t) for t in config["distillation"]["temperatures"]}
    if match and match["tag"] in temperatures:
        derived = {**config["models"][config["distillation"]["base_model"]], "temperature": temperatures[match["tag"]]}
        if match["role"] == "student":
            derived["teacher"] = f"teacher_T{match['tag']}"
        return derived
    raise ConfigError(f"unknown model {model!r}: config defines {', '.join(all_model_names(config))}")


def model_config_key(config: Mapping[str, Any], model: str) -> str:
    """The config key a model's settings live under (a distilled model's are its base model's)."""
    model_config(config, model)  # raises for an unknown name
    return f"models.{model}" if model in config["models"] else f"models.{config['distillation']['base_model']}"
