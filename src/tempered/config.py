"""Load, overlay and validate the pipeline configuration.

config.yaml is the one source of truth; presets overlay it key by key. Every job validates the merged
config against workflow/schemas/config.schema.yaml, so a bad key fails before any work, naming the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import numbers
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tempered.nested import leaves

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
PRESETS_DIR = REPO_ROOT / "workflow" / "presets"
MNIST_TRAIN_SIZE = 60_000


def settings_dataset(settings: Mapping[str, Any]) -> str:
    """The dataset a model's settings train it on (models.<name>.dataset): mnist where the key is unset."""
    return settings.get("dataset", "mnist")


def shadow_models(config: Mapping[str, Any]) -> tuple[str, ...]:
    """membership.shadow_model as a tuple: one model name, or one per dataset."""
    names = config["membership"]["shadow_model"]
    return (names,) if isinstance(names, str) else tuple(names)

# The training methods a model names (models.<name>.method, an enum in the schema), each with the settings section
# it requires and no other method takes; convex_lbfgs's settings are its optimizer (name lbfgs).
METHOD_SECTIONS = {"cross_entropy": None, "learned_confidence": "learned_confidence", "madry_pgd": "pgd_training",
                   "szegedy_pools": "adversarial_training", "sparse_autoencoder": "autoencoder",
                   "convex_lbfgs": None}
# Architectures only one method can train, and that method trains no other: a confidence_cnn returns (logits, c),
# ae400_10's frozen autoencoder is pre-trained first.
METHOD_ARCHITECTURES = {"learned_confidence": "confidence_cnn", "sparse_autoencoder": "ae400_10"}


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
        data = read_yaml(path)
        _refuse_non_finite(data, str(path))  # named here, where the file that holds the value is known
        config = deep_merge(config, data)
    validate_config(config, source=" + ".join(str(p) for p in paths))
    return config


def preset_names(presets_dir: Path = PRESETS_DIR) -> list[str]:
    """The presets a run can name (workflow/presets/<name>.yaml)."""
    return sorted(p.stem for p in Path(presets_dir).glob("*.yaml"))


def refuse_overrides(overrides: Mapping[str, Any], presets_dir: Path = PRESETS_DIR) -> None:
    """Refuse Snakemake's `--config key=value` overrides, naming their keys and the presets. Jobs re-read the config
    files, so an override would reach the DAG but not the jobs. Called before validate_config: an override's value
    is a string to Snakemake (`seeds=[1]` gives ['1']), so the schema would otherwise report its type instead."""
    if overrides:
        keys = ", ".join(sorted(overrides))
        shown = presets_dir.relative_to(REPO_ROOT) if presets_dir.is_relative_to(REPO_ROOT) else presets_dir
        presets = ", ".join(f"{shown}/{name}.yaml" for name in preset_names(presets_dir))
        raise ConfigError(
            f"command-line --config overrides are not supported ({keys}): every job re-reads the config files, "
            f"so an override would not reach it. Use a preset (--configfile with one of {presets}), or put the "
            f"keys in a YAML file of your own and pass it with --configfile")


def _load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def non_finite_numbers(value: Any, key: str = "") -> dict[str, float]:
    """Every NaN or infinite number in nested mappings and lists, by dotted key ("models.cnn.optimizer.lr",
    "rows.0.x"). Config files: YAML's .nan and .inf load as floats, and JSON Schema's `number` admits them (an inf
    temperature trains a constant model, a NaN lr passes `exclusiveMinimum`). Metrics records (artifacts) may
    hold numpy floats, which are numbers.Real too."""
    return {name: float(leaf) for name, leaf in leaves(value, key, into_lists=True).items()
            if isinstance(leaf, numbers.Real) and not math.isfinite(leaf)}


def _refuse_non_finite(config: Mapping[str, Any], source: str) -> None:
    problems = [f"- {key}: {value} is not a finite number" for key, value in non_finite_numbers(config).items()]
    if problems:
        raise ConfigError(f"invalid configuration ({source}):\n" + "\n".join(problems))


# JSON Schema's `integer` admits 1000.0; a float seed or size would then name paths seed0.0 and mi1000.0_cnn.
_STRICT_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_STRICT_TYPES)


def validate_config(config: Mapping[str, Any], source: str = "config") -> None:
    """Raise ConfigError naming the key, the expectation and the actual value; else return None."""
    _refuse_non_finite(config, source)
    validator = _Validator(_load_schema())
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
    _check_methods(config, source)
    _check_membership(config, source)
    _check_model_names(config, source)
    val = config["split"]["validation_size"]
    if val >= MNIST_TRAIN_SIZE:
        raise ConfigError(
            f"invalid configuration ({source}):\n- split.validation_size: {val} must be smaller than "
            f"the MNIST training set ({MNIST_TRAIN_SIZE})"
        )


def _method_problems(name: str, mcfg: Mapping[str, Any]) -> list[str]:
    """What is wrong with model `name`'s settings for its method: a missing or foreign settings section, an
    optimizer, temperature or architecture the method cannot train."""
    method = mcfg["method"]
    problems = []
    section = METHOD_SECTIONS[method]
    if section is not None and section not in mcfg:
        problems.append(f"models.{name}: method {method} needs its settings section '{section}'")
    problems += [f"models.{name}.{other}: settings of method {owner}, but the model's method is {method} (remove "
                 f"'{other}', or set method: {owner})"
                 for owner, other in METHOD_SECTIONS.items() if other is not None and owner != method and other in mcfg]
    optimizer = mcfg["optimizer"]["name"]
    if (method == "convex_lbfgs") != (optimizer == "lbfgs"):
        problems.append(f"models.{name}.optimizer.name: method {method} needs optimizer "
                        f"{'lbfgs (full-batch L-BFGS)' if method == 'convex_lbfgs' else 'sgd or adam (minibatch)'}, "
                        f"got {optimizer}")
    if method == "convex_lbfgs" and mcfg["temperature"] != 1.0:
        problems.append(f"models.{name}.temperature: method convex_lbfgs trains on the cross-entropy at T=1, got "
                        f"{mcfg['temperature']:g}")
    if mcfg["architecture"] == "song_cnn" and mcfg["dropout"] != 0:
        problems.append(f"models.{name}.dropout: song_cnn has no dropout (Song et al. 2019's model), got "
                        f"{mcfg['dropout']:g}")
    if settings_dataset(mcfg) != "mnist" and mcfg.get("enabled", True):
        problems.append(f"models.{name}.dataset: {mcfg['dataset']} models train only as membership-inference "
                        "targets (the other stages evaluate on MNIST); set enabled: false and list it under "
                        "membership.models")
    for owner, architecture in METHOD_ARCHITECTURES.items():
        if (method == owner) != (mcfg["architecture"] == architecture):
            problems.append(f"models.{name}.method: architecture {architecture} trains by method {owner} only, and "
                            f"that method trains no other architecture; got architecture {mcfg['architecture']} "
                            f"with method {method}")
    return problems


def _check_methods(config: Mapping[str, Any], source: str) -> None:
    """Each model's settings fit its method; the distillation base model's students train on soft labels, which
    only cross_entropy takes."""
    problems = [p for name, mcfg in config["models"].items() for p in _method_problems(name, mcfg)]
    base = config["distillation"]["base_model"]
    if config["models"][base]["method"] != "cross_entropy":
        problems.append(f"distillation.base_model: {base!r} trains by method {config['models'][base]['method']}; "
                        f"its students train on their teacher's soft labels, which only method cross_entropy takes")
    if problems:
        raise ConfigError(f"invalid configuration ({source}):\n" + "\n".join(f"- {p}" for p in problems))


def _check_membership(config: Mapping[str, Any], source: str) -> None:
    cfg = config["membership"]
    problems = [f"membership.models: {name!r} is not a model defined under 'models'"
                for name in cfg["models"] if name not in config["models"]]
    problems += [f"membership.shadow_model: {name!r} is not a model defined under 'models'"
                 for name in shadow_models(config) if name not in config["models"]]
    by_dataset: dict[str, list[str]] = {}
    for name in shadow_models(config):
        if name in config["models"]:
            by_dataset.setdefault(settings_dataset(config["models"][name]), []).append(name)
    problems += [f"membership.shadow_model: {', '.join(names)} all learn {dataset}; give at most one model per "
                 "dataset (a target's attacker uses the one on its dataset)"
                 for dataset, names in by_dataset.items() if len(names) > 1]
    problems += [f"membership.song2019_models.{kind}: {name!r} is not a model defined under 'models'"
                 for kind, name in cfg["song2019_models"].items() if name not in config["models"]]
    # Carlini et al. 2022's pool (tempered.privacy.roles): a size's pool holds 2 x size of the split's 'train'
    # images, and its recipes train at model seeds 0..n_shadows, of which the targets are membership.seeds.
    n_train = MNIST_TRAIN_SIZE - config["split"]["validation_size"]  # a validation_size too large is named first
    problems += [f"membership.train_sizes: {size} needs a pool of {2 * size} training images; the split's 'train' "
                 f"set holds {n_train} (split.validation_size {config['split']['validation_size']} held out): at "
                 f"most {n_train // 2}"
                 for size in cfg["train_sizes"] if 0 < n_train < 2 * size]
    problems += [f"membership.seeds: {seed} is no model seed of the membership recipes (0..membership.n_shadows = "
                 f"{cfg['n_shadows']}): a target is one of them, its shadows the others"
                 for seed in cfg["seeds"] if seed > cfg["n_shadows"]]
    if problems:
        raise ConfigError(f"invalid configuration ({source}):\n" + "\n".join(f"- {p}" for p in problems))


def _check_model_names(config: Mapping[str, Any], source: str) -> None:
    # Imported here: model_grid builds on this module (ConfigError), and names are checked only once the
    # sections they are built from are known to be sound.
    from tempered.model_grid import name_problems

    problems = name_problems(config)
    if problems:
        raise ConfigError(f"invalid configuration ({source}):\n" + "\n".join(f"- {p}" for p in problems))


def config_hash(section: Any) -> str:
    """A stable short digest of a config value (key order does not matter), recorded as provenance."""
    canonical = json.dumps(section, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
