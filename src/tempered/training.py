"""Train a classifier at softmax temperature T on in-memory tensors.

Papernot et al. 2016, section IV: training at temperature T minimises cross-entropy of softmax(z/T); the
model is deployed at T=1. The whole training set stays one tensor: batches are index slices, no loader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

log = logging.getLogger(__name__)


def make_optimizer(params, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    if cfg["name"] != "sgd":
        raise ValueError(f"unknown optimizer {cfg['name']!r}; known: sgd")
    return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                           weight_decay=cfg["weight_decay"])


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


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    optimizer_cfg: Mapping[str, Any],
    temperature: float,
    generator: torch.Generator,
    device: torch.device,
    channels_last: bool = False,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    monitor_name: str = "heldout",
    soft_targets: torch.Tensor | None = None,
    perturb: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> list[dict[str, float]]:
    """Minibatch SGD on softmax(z/T); returns one row of metrics per epoch (no wall-clock values in it).

    With soft_targets (a distillation student, Papernot et al. 2016 section IV.B) the loss is the
    cross-entropy between the teacher's probabilities at T and softmax(z/T); y still gives train accuracy.
    With perturb (adversarial training, tempered.pgd_training) every minibatch is replaced by perturb(model, x, y)
    before the step; train_loss and train_accuracy are then measured on the perturbed inputs.
    """
    if soft_targets is not None and soft_targets.shape != (len(y), 10):
        raise ValueError(f"soft_targets has shape {tuple(soft_targets.shape)}, expected ({len(y)}, 10)")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    # Frozen parameters (AE400-10's autoencoder) stay out of the optimizer.
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], optimizer_cfg)
    # Szegedy et al. 2014's per-layer decay (lambda / 2 * sum(p^2), models/szegedy.py), where the model defines it.
    penalty = getattr(model, "weight_penalty", None)
    x_dev, y_dev = x.to(device), y.to(device)
    targets = soft_targets.to(device) if soft_targets is not None else y_dev
    if channels_last:
        x_dev = x_dev.contiguous(memory_format=torch.channels_last)
    n = len(x_dev)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        started = time.perf_counter()
        batches = tqdm(range(0, n, batch_size), desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                       mininterval=2.0)
        for start in batches:
            idx = order[start:start + batch_size]
            inputs = x_dev[idx] if perturb is None else perturb(model, x_dev[idx], y_dev[idx])
            logits = model(inputs)
            loss = F.cross_entropy(logits / temperature, targets[idx])
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == y_dev[idx]).sum()
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": loss_sum.item() / n, "train_accuracy": correct.item() / n}
        if not torch.isfinite(torch.tensor(row["train_loss"])):
            raise FloatingPointError(f"training diverged at epoch {epoch}: loss {row['train_loss']}"
                                     f" (lower models.<name>.optimizer.lr)")
        if monitor is not None:
            logits = predict_logits(model, monitor[0], 1000, device, channels_last)
            metrics = classification_metrics(logits, monitor[1])
            row[f"{monitor_name}_nll"] = metrics["nll"]
            row[f"{monitor_name}_accuracy"] = metrics["accuracy"]
        history.append(row)
        log.info("epoch %d/%d: %s (%.0f samples/s)", epoch, epochs,
                 ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"), n / seconds)
    model.eval()
    return history
