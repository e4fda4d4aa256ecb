"""Model architectures by config name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from tempered.models.confidence_cnn import ConfidenceCNN
from tempered.models.gelu_mlp import GeluMLP
from tempered.models.papernot_cnn import PapernotCNN
from tempered.models.song_cnn import SongCNN
from tempered.models.szegedy import SZEGEDY_ARCHITECTURES

ARCHITECTURES = {"papernot_cnn": PapernotCNN, "confidence_cnn": ConfidenceCNN, "song_cnn": SongCNN,
                 "gelu_mlp": GeluMLP, **SZEGEDY_ARCHITECTURES}


def build_model(model_cfg: Mapping[str, Any]) -> nn.Module:
    name = model_cfg["architecture"]
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    # architecture_args: constructor arguments beyond dropout (FC10's weight-decay lambda, Szegedy et al. 2014; the
    # width and weight decay of Song et al. 2019's CNN).
    return ARCHITECTURES[name](dropout=model_cfg["dropout"], **model_cfg.get("architecture_args", {}))


class ClassLogits(nn.Module):
    """A model seen through its class logits only: a learned-confidence model returns (logits, confidence), and
    attacks that ascend a loss on the logits (PGD) take the first."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        output = self.model(x)
        return output[0] if isinstance(output, tuple) else output
