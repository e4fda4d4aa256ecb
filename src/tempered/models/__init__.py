"""Model architectures by config name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from tempered.models.papernot_cnn import PapernotCNN

ARCHITECTURES = {"papernot_cnn": PapernotCNN}


def build_model(model_cfg: Mapping[str, Any]) -> nn.Module:
    name = model_cfg["architecture"]
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](dropout=model_cfg["dropout"])
