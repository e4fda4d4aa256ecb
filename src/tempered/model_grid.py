"""The models a configuration defines, each as its place in the DAG's dimensions (issue 17).

A model is a family (the entry under `models:` whose settings it takes), and, where the DAG adds them, its role
and temperature on the distillation grid and its membership-inference training-set size. Its name (the `{model}`
wildcard, its result directory) is built from those dimensions here and never read back: code that needs a
model's T, role or size looks the name up in `model_grid(config)`.

Names: `cnn` (a family), `teacher_T20` / `student_T0p5` (the grid; '.' -> 'p'), `mi2500_cnn_pgd` /
`mi2500_student_T20` (a membership recipe of size 2500 copying that model). A membership recipe trains at model
seeds 0..membership.n_shadows, seed k on its half k of the size's pool (tempered.privacy.roles): the target is
the recipe at one of membership.seeds, its shadows are the same recipe's other seeds (membership.shadow_recipe
target: trained like it) or those of membership.shadow_model's recipe on its dataset (shadow_recipe
shadow_model). Shadows are a seed, not a name: there is no shadow model name to parse.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tempered.config import ConfigError, settings_dataset, shadow_models

# A temperature's part of a name: digits, with 'p' for the point. The check is on the names this module builds
# (a wildcard value and a path segment must not hold '-', '+' or 'e'), not a parser: nothing reads a name back.
_TAG = re.compile(r"^[0-9]+(?:p[0-9]+)?$")


def temperature_tag(temperature: float) -> str:
    return f"{temperature:g}".replace(".", "p")


@dataclass(frozen=True)
class ModelId:
    """One model's dimensions. `role` and `temperature` are set together (the distillation grid); `size` for a
    membership recipe (its model seed, the DAG's seed wildcard, picks its half of the pool)."""

    family: str
    role: str | None = None
    temperature: float | None = None
    size: int | None = None

    @property
    def name(self) -> str:
        if self.size is None:
            return self.inner
        return f"mi{self.size}_{self.inner}"

    @property
    def inner(self) -> str:
        """The name without the membership size: the model a membership recipe copies (`cnn_pgd`, `student_T20`)."""
        return self.family if self.role is None else f"{self.role}_T{temperature_tag(self.temperature)}"

    @property
    def is_membership(self) -> bool:
        return self.size is not None

    @property
    def is_distilled(self) -> bool:
        return self.role is not None

    def teacher(self) -> ModelId:
        """A student's teacher: the same place in the grid (and membership size) with role teacher."""
        if self.role != "student":
            raise ValueError(f"{self.name} is not a student")
        return dataclasses.replace(self, role="teacher")


def distilled_ids(config: Mapping[str, Any], role: str, size: int | None = None) -> list[ModelId]:
    base = config["distillation"]["base_model"]
    return [ModelId(base, role, float(t), size) for t in config["distillation"]["temperatures"]]


def distilled_names(config: Mapping[str, Any], role: str) -> list[str]:
    return [m.name for m in distilled_ids(config, role)]


def attacked_models(config: Mapping[str, Any]) -> list[str]:
    """Papernot et al. 2016 section V: the undistilled base model and every student, deployed at T=1."""
    return [config["distillation"]["base_model"], *distilled_names(config, "student")]


def _enabled(config: Mapping[str, Any]) -> list[str]:
    return sorted(name for name, cfg in config["models"].items() if cfg.get("enabled", True))


def all_model_names(config: Mapping[str, Any]) -> list[str]:
    """Every model the DAG trains outside membership: those under 'models', then teachers and students."""
    return _enabled(config) + distilled_names(config, "teacher") + distilled_names(config, "student")


def _membership_inner_ids(config: Mapping[str, Any], size: int) -> list[ModelId]:
    """The models each target size trains: membership.models, then every teacher and student if `distilled`."""
    cfg = config["membership"]
    ids = [ModelId(name, size=size) for name in cfg["models"]]
    if cfg["distilled"]:
        ids += distilled_ids(config, "teacher", size) + distilled_ids(config, "student", size)
    return ids


def membership_model_names(config: Mapping[str, Any]) -> list[str]:
    """The names, without size, of the models each target size trains (`cnn`, `cnn_pgd`, `teacher_T20`, ...)."""
    return [m.inner for m in _membership_inner_ids(config, 0)]


def robust_membership_model(config: Mapping[str, Any]) -> str | None:
    """The first of membership.models trained with PGD on the distillation base model's dataset (the robust model
    compared with the base on the same candidates), if any."""
    dataset = family_dataset(config, config["distillation"]["base_model"])
    return next((m for m in config["membership"]["models"] if config["models"][m]["method"] == "madry_pgd"
                 and family_dataset(config, m) == dataset), None)


def membership_target_ids(config: Mapping[str, Any]) -> list[ModelId]:
    return [m for size in config["membership"]["train_sizes"] for m in _membership_inner_ids(config, size)]


def family_dataset(config: Mapping[str, Any], family: str) -> str:
    """The dataset a family's models train and are evaluated on (models.<family>.dataset; mnist if unset)."""
    return settings_dataset(config["models"][family])


def shared_shadow_model(config: Mapping[str, Any], dataset: str) -> str | None:
    """The entry of membership.shadow_model that learns `dataset`, if any."""
    return next((name for name in shadow_models(config) if family_dataset(config, name) == dataset), None)


def shadow_recipe(config: Mapping[str, Any], target: ModelId) -> ModelId:
    """The recipe whose other model seeds are the shadows of `target`'s attacker: the target's own (same family,
    T, role and method; Carlini et al. 2022's likelihood-ratio attack assumes it) or, with membership.shadow_recipe
    shadow_model, the membership.shadow_model entry on the target's dataset, the same for every target there (an
    attacker who knows neither T nor PGD training). A target on a dataset no entry learns keeps its own recipe."""
    shared = shared_shadow_model(config, family_dataset(config, target.family))
    if config["membership"]["shadow_recipe"] == "shadow_model" and shared is not None:
        return ModelId(shared, size=target.size)
    return target


def membership_model_seeds(config: Mapping[str, Any]) -> list[int]:
    """The model seeds every membership recipe trains at: 0..n_shadows, seed k on half k of its size's pool, so
    each target (one of membership.seeds) has n_shadows shadows."""
    return list(range(config["membership"]["n_shadows"] + 1))


def membership_recipe_ids(config: Mapping[str, Any]) -> list[ModelId]:
    """Every membership recipe, each once: the targets, then shadow recipes that are no target."""
    targets = membership_target_ids(config)
    return list(dict.fromkeys(targets + [shadow_recipe(config, t) for t in targets]))


def membership_targets(config: Mapping[str, Any]) -> list[str]:
    return [m.name for m in membership_target_ids(config)]


def membership_recipes(config: Mapping[str, Any]) -> list[str]:
    return [m.name for m in membership_recipe_ids(config)]


def _grid_ids(config: Mapping[str, Any]) -> list[ModelId]:
    """Every model the DAG builds beside the families: teachers, students and membership recipes."""
    return distilled_ids(config, "teacher") + distilled_ids(config, "student") + membership_recipe_ids(config)


def _grid_key(config: Mapping[str, Any]) -> tuple:
    """The settings the grid is built from, hashable: equal keys, equal grids."""
    d, m = config["distillation"], config["membership"]
    families = tuple((name, family_dataset(config, name)) for name in config["models"])
    return (families, d["base_model"], tuple(d["temperatures"]), tuple(m["models"]),
            m["distilled"], tuple(m["train_sizes"]), m["shadow_recipe"], shadow_models(config))


@functools.lru_cache(maxsize=16)
def _grid_of(key: tuple) -> Mapping[str, ModelId]:
    families, base, temperatures, models, distilled, sizes, recipe, shadow_model = key
    config = {"models": {name: {"dataset": dataset} for name, dataset in families},
              "distillation": {"base_model": base, "temperatures": temperatures},
              "membership": {"models": models, "distilled": distilled, "train_sizes": sizes,
                             "shadow_recipe": recipe, "shadow_model": shadow_model}}
    grid = {name: ModelId(name) for name, _ in families}
    grid.update((m.name, m) for m in _grid_ids(config))
    return types.MappingProxyType(grid)


def model_grid(config: Mapping[str, Any]) -> Mapping[str, ModelId]:
    """{name: ModelId} of every model the config defines, disabled families included (a membership target may
    copy one, as mi<size>_cnn_pgd copies cnn_pgd). Built once per grid (a paper-scale DAG asks ~50,000 times)."""
    return _grid_of(_grid_key(config))


def trained_model_names(config: Mapping[str, Any]) -> list[str]:
    """Every model the DAG has a checkpoint of: the enabled models, teachers and students, and every membership
    recipe (including those that copy a disabled model, as mi<size>_cnn_pgd copies cnn_pgd)."""
    return all_model_names(config) + membership_recipes(config)


def describe_grid(config: Mapping[str, Any]) -> str:
    """The names this config defines, by the settings that make them (for a message about an unknown name)."""
    temperatures = ", ".join(temperature_tag(t) for t in config["distillation"]["temperatures"])
    cfg = config["membership"]
    return (f"the entries under 'models' ({', '.join(sorted(config['models']))}); teacher_T<T> and student_T<T> "
            f"for T in distillation.temperatures ({temperatures}); mi<size>_<model> for size in "
            f"membership.train_sizes ({', '.join(map(str, cfg['train_sizes']))}) and model in membership.models "
            f"({', '.join(membership_model_names(config))}) or, with membership.shadow_recipe shadow_model, in "
            f"membership.shadow_model ({', '.join(shadow_models(config))})")


def model_id(config: Mapping[str, Any], name: str) -> ModelId:
    grid = model_grid(config)
    if name not in grid:
        raise ConfigError(f"unknown model {name!r}: the config defines {describe_grid(config)}")
    return grid[name]


def model_settings(config: Mapping[str, Any], mid: ModelId) -> dict[str, Any]:
    """A model's settings: its family's, at its grid temperature (a student learns from its teacher), and for a
    membership model on its own training set (its size's roles) with membership.epochs if set."""
    settings = dict(config["models"][mid.family])
    if mid.is_distilled:
        settings["temperature"] = mid.temperature
        if mid.role == "student":
            settings["teacher"] = mid.teacher().name
    if mid.is_membership:
        settings["train_set"] = "pool_half"
        settings["limit_train"] = None
        if config["membership"]["epochs"] is not None:
            settings["epochs"] = config["membership"]["epochs"]
    return settings


def model_dataset(config: Mapping[str, Any], name: str) -> str:
    """The dataset the model named `name` trains on and is attacked on (its family's)."""
    return family_dataset(config, model_id(config, name).family)


def model_config(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The settings of the model named `name` (model_settings)."""
    return model_settings(config, model_id(config, name))


def model_config_key(config: Mapping[str, Any], name: str) -> str:
    """The config key a model's settings live under: its family's."""
    return f"models.{model_id(config, name).family}"


def derived_setting_keys(config: Mapping[str, Any], name: str) -> list[str]:
    """Config keys beyond model_config_key that a model's settings depend on: membership.epochs for a membership
    model. Which entry the settings are copied from (distillation.base_model, membership.shadow_model) is not one:
    the slice holds the entry's values, so switching to an entry with other values reruns the job, and switching
    to one with equal values computes the same model."""
    return ["membership.epochs"] if model_id(config, name).is_membership else []


def training_data(config: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """The index set a model trains on: the split's (its settings name which part), or, for a membership recipe,
    its model seed's half of its size's pool (the seed is the job's, equal for models that train alike)."""
    mid = model_id(config, name)
    if mid.is_membership:
        return ("pool", str(mid.size))
    return ("split",)


def training_twins(config: Mapping[str, Any]) -> dict[str, str]:
    """Models whose training would repeat another's exactly: the same settings on the same data (the seed is
    the job's, equal for both), e.g. the teacher at T=1, which is the base CNN trained at T=1, and each size's
    mi<size>_teacher_T1 and mi<size>_cnn. Each maps to the first of its kind in trained_model_names, which is
    trained once; the twin's checkpoint is a copy of it (rule reuse_training)."""
    first: dict[str, str] = {}
    twins: dict[str, str] = {}
    for model in trained_model_names(config):
        recipe = json.dumps([model_config(config, model), training_data(config, model)], sort_keys=True)
        if recipe in first:
            twins[model] = first[recipe]
        else:
            first[recipe] = model
    return twins


def name_problems(config: Mapping[str, Any]) -> list[str]:
    """Why the names this config's grid would build cannot stand as wildcards and paths, or collide."""
    by_tag: dict[str, list[Any]] = {}
    for t in config["distillation"]["temperatures"]:
        by_tag.setdefault(temperature_tag(t), []).append(t)
    problems = [f"distillation.temperatures: {t!r} would name models teacher_T{tag}, which a model name cannot "
                f"hold (names take digits and 'p' for the point, e.g. T0p5; at most 6 significant digits, "
                f"from 1e-4 to below 1e6)"
                for tag, values in by_tag.items() for t in values if not _TAG.match(tag)]
    problems += [f"distillation.temperatures: {', '.join(map(repr, values))} all name the models teacher_T{tag} "
                 f"and student_T{tag} (names keep 6 significant digits); keep one"
                 for tag, values in by_tag.items() if len(values) > 1]
    grid = {m.name for m in _grid_ids(config)}
    problems += [f"models.{name}: the DAG names one of its own models {name!r} (the distillation grid or a "
                 f"membership recipe); rename this entry"
                 for name in config["models"] if name in grid]
    return problems
