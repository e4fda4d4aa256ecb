"""The Papernot CNN with a learned-confidence branch (DeVries & Taylor 2018, section 2; arXiv 1802.04865).

The classifier is PapernotCNN unchanged; a second head Linear(200, 1) on the same penultimate activations,
squashed by a sigmoid, outputs the confidence c in (0, 1), as in the reference models of
uoguelph-mlrg/confidence_estimation (its heads branch off the last hidden layer too). forward returns
(logits, c) with c of shape (N,).

The blocks are taken from a PapernotCNN instance rather than subclassed: parameter names stay those of
PapernotCNN (features.*, penultimate.*, logits.*, plus confidence.*), while the type does not claim to be a
PapernotCNN whose forward returns one tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from tempered.models.papernot_cnn import PapernotCNN


class ConfidenceCNN(nn.Module):
    def __init__(self, dropout: float = 0.5, num_classes: int = 10):
        super().__init__()
        base = PapernotCNN(dropout=dropout, num_classes=num_classes)
        self.features = base.features
        self.penultimate = base.penultimate
        self.logits = base.logits
        self.confidence = nn.Linear(200, 1)
        # Same Glorot-uniform / zero-bias start as the classifier head; c then starts near 0.5.
        nn.init.xavier_uniform_(self.confidence.weight)
        nn.init.zeros_(self.confidence.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.penultimate(self.features(x))
        return self.logits(h), torch.sigmoid(self.confidence(h)).squeeze(1)
