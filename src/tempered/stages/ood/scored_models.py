"""Which models the OOD stage scores. Config only (no torch): the Snakemake rules import it (which models get a
job), and `snakemake -n` should not pay for importing torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tempered.config import ConfigError
from tempered.model_grid import distilled_names


def ood_model_names(config: Mapping[str, Any]) -> list[str]:
    """ood.models, then every distillation student, then the teachers when ood.teachers is true."""
    cfg = config["ood"]
    unknown = [m for m in cfg["models"] if m not in config["models"]]
    if unknown:
        raise ConfigError(f"ood.models names {unknown}, which are not defined under 'models' "
                          f"({', '.join(sorted(config['models']))})")
    names = list(cfg["models"]) + distilled_names(config, "student")
    return names + (distilled_names(config, "teacher") if cfg["teachers"] else [])
