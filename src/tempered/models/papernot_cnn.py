"""The MNIST CNN of Papernot et al. 2016 (S&P), as specified in Carlini & Wagner 2017, Tables I-II.

conv3x3-32, conv3x3-32, maxpool2, conv3x3-64, conv3x3-64, maxpool2, fc200, fc200, fc10; ReLU; valid
padding; dropout 0.5 after the first fully connected layer (C&W's train_models.py); Glorot-uniform weights
and zero biases, the Keras defaults both reference implementations trained with. Outputs logits z;
training at temperature T divides them by T, deployment uses z itself (T=1).
"""

from __future__ import annotations

import torch
from torch import nn


def _keras_init(module: nn.Module) -> None:
    # PyTorch's default (Kaiming-uniform with a=sqrt(5)) starts this ReLU stack so small that SGD sits at
    # chance for an epoch; the papers' Keras models started from Glorot-uniform.
    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


class PapernotCNN(nn.Module):
    def __init__(self, dropout: float = 0.5, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 32, 3), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.penultimate = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 200), nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(200, 200), nn.ReLU(),
        )
        self.logits = nn.Linear(200, num_classes)
        self.apply(_keras_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.penultimate(self.features(x)))
