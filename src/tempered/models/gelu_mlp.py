"""Hendrycks & Gimpel 2017's MNIST classifier ("A baseline for detecting misclassified and out-of-distribution
examples"), read in their released notebook (hendrycks/error-detection, Vision/MNIST_Softmax_Stats.ipynb): three
hidden layers of 256 GELU units (the tanh approximation, their gelu_fast) and a softmax layer; each weight matrix
drawn as a normal matrix whose columns (one per output unit) are scaled to unit norm, then divided by
sqrt(fan_in_gain + fan_out_gain) (gains 1 for the input, 0.425 for a GELU layer, 1 for the logits); biases zero;
L2 penalty 1e-5 * sum(w^2) / 2 (TensorFlow's l2_loss) on the three hidden weight matrices only, added to the mean
cross-entropy by the trainer through `weight_penalty()`. Inputs are (N, 1, 28, 28) in [0, 1], flattened."""

from __future__ import annotations

import math

import torch
from torch import nn

from tempered.models.szegedy import MNIST_PIXELS

# Their variance gains: 1 for the input and the logits, 0.425 for a GELU layer's output.
_INPUT_GAIN, _GELU_GAIN, _LOGIT_GAIN = 1.0, 0.425, 1.0


def _unit_columns(layer: nn.Linear, gain_in: float, gain_out: float) -> None:
    # torch stores (out, in): their column of an (in, out) matrix is our row.
    with torch.no_grad():
        w = torch.randn(layer.weight.shape)
        layer.weight.copy_(w / w.norm(dim=1, keepdim=True) / math.sqrt(gain_in + gain_out))
        layer.bias.zero_()


class GeluMLP(nn.Module):
    """784 -> 256 -> 256 -> 256 -> 10 with GELU; `weight_penalty()` is their 1e-5 * l2_loss of the hidden weights."""

    def __init__(self, hidden: tuple[int, ...] = (256, 256, 256), weight_decay: float = 1e-5,
                 num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        if dropout:
            raise ValueError("Hendrycks & Gimpel's MNIST network has no dropout")
        widths = (MNIST_PIXELS, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.logits = nn.Linear(widths[-1], num_classes)
        self.activation = nn.GELU(approximate="tanh")
        self.weight_decay = weight_decay
        for i, layer in enumerate(self.hidden):
            _unit_columns(layer, _INPUT_GAIN if i == 0 else _GELU_GAIN, _GELU_GAIN)
        _unit_columns(self.logits, _GELU_GAIN, _LOGIT_GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.hidden:
            h = self.activation(layer(h))
        return self.logits(h)

    def weight_penalty(self) -> torch.Tensor:
        return 0.5 * self.weight_decay * sum(layer.weight.pow(2).sum() for layer in self.hidden)
