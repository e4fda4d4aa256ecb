"""The metric attacks' per-sample scores (Song & Mittal 2021; Yeom et al. 2018), from logits and true labels.

Each is oriented so that a higher score means 'more likely a training member': members are classified
correctly, with high confidence in their label, low entropy, low modified entropy and low loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Probabilities are clamped away from 0 and 1 before logs, as Song & Mittal's reference code does.
LOG_FLOOR = 1e-30


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.double(), dim=1)


def correctness(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """1 where the model predicts the true label, else 0."""
    return (logits.argmax(dim=1) == labels).double()


def confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The probability of the true label."""
    return _probabilities(logits).gather(1, labels[:, None]).squeeze(1)


def entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Negated prediction entropy (the label is not used)."""
    p = _probabilities(logits)
    return (p * torch.log(p.clamp_min(LOG_FLOOR))).sum(dim=1)


def modified_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Negated Mentr(p, y) = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i) (Song & Mittal 2021, eq. 4):
    unlike entropy it grows when the model is confidently wrong."""
    p = _probabilities(logits)
    p_y = p.gather(1, labels[:, None]).squeeze(1)
    wrong = torch.ones_like(p, dtype=torch.bool).scatter_(1, labels[:, None], False)
    others = (p * torch.log((1 - p).clamp_min(LOG_FLOOR)) * wrong).sum(dim=1)
    mentr = -(1 - p_y) * torch.log(p_y.clamp_min(LOG_FLOOR)) - others
    return -mentr


def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Negated cross-entropy of the true label (Yeom et al. 2018's loss attack)."""
    return -torch.nn.functional.cross_entropy(logits.double(), labels, reduction="none")


METRIC_SCORES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "correctness": correctness,
    "confidence": confidence,
    "entropy": entropy,
    "modified_entropy": modified_entropy,
    "loss": loss,
}
