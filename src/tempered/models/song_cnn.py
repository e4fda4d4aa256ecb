"""The Fashion-MNIST CNN of Song, Shokri & Mittal 2019 (ACM CCS), the model whose membership leakage they measure
before and after PGD adversarial training (inspire-group/privacy-vs-robustness, PGD-based adversarial training,
FMNIST: the model of Madry et al.'s MNIST challenge made wider).

Six 3x3 convolutions with 'same' padding and ReLU: 16w, 16w, 16w (stride 2), 32w, 32w, 32w (stride 2), then a
fully connected layer of 200 ReLU units and the 10 logits; w is `width` (the paper's width_num, 16). No pooling
and no dropout. Padding is one pixel on every side; TensorFlow's 'same' pads a stride-2 layer on the bottom and
right only, so our stride-2 layers sample the grid one pixel up and left of theirs (same output sizes).
The convolutions have no bias (the authors' `_conv` is a bare conv2d). Convolution weights start He-normal over the
fan-out (std sqrt(2 / (3 * 3 * out_channels))), as the authors' code draws them; fully connected weights start
uniform with unit scaling (the authors' uniform_unit_scaling_initializer: bound sqrt(3 / fan_in)); their biases
start at zero.

`weight_decay` is the authors' L2 term, lambda / 2 * sum(w^2) over the convolution and fully connected weights
(biases excluded), per sample of the mean loss this project minimises: the authors add 2e-4 times it to the
cross-entropy summed over a batch of 100, which is 2e-6 per sample (config.yaml says so beside the value).
"""

from __future__ import annotations

import math

import torch
from torch import nn

KERNEL = 3
HIDDEN = 200


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, std=math.sqrt(2.0 / (KERNEL * KERNEL * module.out_channels)))
    elif isinstance(module, nn.Linear):
        bound = math.sqrt(3.0 / module.in_features)
        nn.init.uniform_(module.weight, -bound, bound)
        nn.init.zeros_(module.bias)


class SongCNN(nn.Module):
    def __init__(self, dropout: float = 0.0, width: int = 16, weight_decay: float = 0.0, num_classes: int = 10):
        super().__init__()
        if dropout:
            raise ValueError(f"song_cnn has no dropout (the authors' model has none); got dropout={dropout}")
        if width < 1:
            raise ValueError(f"song_cnn width must be a positive integer; got {width}")
        narrow, wide = 16 * width, 32 * width
        layers: list[nn.Module] = []
        channels = 1
        for out, stride in ((narrow, 1), (narrow, 1), (narrow, 2), (wide, 1), (wide, 1), (wide, 2)):
            layers += [nn.Conv2d(channels, out, KERNEL, stride=stride, padding=1, bias=False), nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.penultimate = nn.Sequential(nn.Flatten(), nn.Linear(wide * 7 * 7, HIDDEN), nn.ReLU())
        self.logits = nn.Linear(HIDDEN, num_classes)
        self.weight_decay = weight_decay
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.penultimate(self.features(x)))

    def weight_penalty(self) -> torch.Tensor:
        weights = [m.weight for m in self.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        return self.weight_decay / 2 * sum(w.pow(2).sum() for w in weights)
