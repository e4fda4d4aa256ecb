"""Which models make up each of Szegedy et al.'s tables, checked against the config. Config only (no torch):
the Snakefile imports it, and `snakemake -n` should not pay for importing torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tempered.config import ConfigError

# Table groups and the training sets their models must use (Table 1-2: all 60k; Tables 3-4: one half each).
GROUP_TRAIN_SETS = {"cross_model": ("full",), "cross_training_set": ("p1", "p2"), "adversarial_training": ("full",)}
TRANSFER_GROUPS = ("cross_model", "cross_training_set")


def szegedy_groups(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The model names of each table group, checked against 'models'; raises ConfigError naming the key."""
    cfg = config["szegedy"]
    groups = {}
    for group, train_sets in GROUP_TRAIN_SETS.items():
        for name in cfg[group]:
            if name not in config["models"]:
                raise ConfigError(f"szegedy.{group}: {name!r} is not a model under 'models' "
                                  f"({', '.join(sorted(config['models']))})")
            if not config["models"][name].get("enabled", True):
                raise ConfigError(f"szegedy.{group}: models.{name} is disabled (enabled: false)")
            if group in TRANSFER_GROUPS and name not in cfg["paper_labels"]:
                raise ConfigError(f"szegedy.paper_labels: no label for {name!r} (listed in szegedy.{group})")
            actual = config["models"][name]["train_set"]
            if actual not in train_sets:
                raise ConfigError(f"szegedy.{group}: models.{name}.train_set must be one of {list(train_sets)}, "
                                  f"got {actual!r}")
        groups[group] = list(cfg[group])
        if group in TRANSFER_GROUPS and cfg["attack"]["sample_set"][group] == "train":
            _check_shared_training_set(config, group, groups[group])
    return groups


def _check_shared_training_set(config: Mapping[str, Any], group: str, names: list[str]) -> None:
    """Training digits as the attacked samples (sample_set 'train') need one training set shared by the group's
    models: their transfer table compares them on the same digits."""
    sources = {(config["models"][m]["train_set"], config["models"][m]["limit_train"]) for m in names}
    if len(sources) != 1:
        raise ConfigError(f"szegedy.attack.sample_set.{group}: 'train' needs one training set shared by the "
                          f"group's models (their transfer table compares them on the same digits); they use "
                          f"{sorted(sources, key=str)}: use 'test'")


def group_members(config: Mapping[str, Any], groups: Sequence[str] = tuple(GROUP_TRAIN_SETS)) -> dict[str, list[str]]:
    """The model names of each table group, as a step reads them: only szegedy.<group>, since the rules checked
    the names against 'models' (szegedy_groups) before any job ran."""
    return {group: list(config["szegedy"][group]) for group in groups}


def attacked_szegedy_models(config: Mapping[str, Any]) -> list[str]:
    """Every model whose adversarial set a transfer table needs (Tables 1-4), in table order."""
    groups = szegedy_groups(config)
    return list(dict.fromkeys(m for g in TRANSFER_GROUPS for m in groups[g]))
