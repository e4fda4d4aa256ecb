"""A trained classifier at deployment: its logits at T=1 in eval mode, a teacher's soft labels, and the
classification metrics every history row and evaluation reports."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device,
                   channels_last: bool = False) -> torch.Tensor:
    """Deployment logits (T=1, eval mode) for every row of x, returned on the CPU.

    A learned-confidence model returns (logits, c); its logits are taken.
    """
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size].to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        output = model(batch)
        out.append((output[0] if isinstance(output, tuple) else output).float().cpu())
    return torch.cat(out) if out else torch.empty(0, 10)


@torch.no_grad()
def soft_labels(model: nn.Module, x: torch.Tensor, temperature: float, batch_size: int,
                device: torch.device) -> torch.Tensor:
    """A teacher's class probabilities softmax(z/T) at its training temperature, eval mode (no dropout)."""
    return torch.softmax(predict_logits(model, x, batch_size, device).double() / temperature, dim=1).float()


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy, error and mean negative log-likelihood of deployment logits (T=1)."""
    nll = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return {"accuracy": accuracy, "error_rate": 1.0 - accuracy, "nll": nll, "n": int(len(labels))}
