"""Train a learned-confidence classifier (DeVries & Taylor 2018, section 2; arXiv 1802.04865).

The loop of tempered.training.train_classifier (whole training set in memory, batches are index slices), with
the loss of tempered.learned_confidence: hints on a Bernoulli(0.5) half of each batch, L = L_t + lambda L_c,
and lambda steered after every step toward the budget beta (uoguelph-mlrg/confidence_estimation, train.py).
The model returns (logits, c), e.g. tempered.models.confidence_cnn.ConfidenceCNN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from tempered.learned_confidence import BUDGET, LAMBDA_INIT, confidence_loss, hint_mask, update_lambda
from tempered.training import classification_metrics, make_optimizer, predict_logits

log = logging.getLogger(__name__)


def train_confidence_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    optimizer_cfg: Mapping[str, Any],
    generator: torch.Generator,
    device: torch.device,
    lambda_init: float = LAMBDA_INIT,
    budget: float = BUDGET,
    temperature: float = 1.0,
    channels_last: bool = False,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    monitor_name: str = "heldout",
) -> list[dict[str, float]]:
    """Minibatch SGD on L_t + lambda L_c; one row per epoch: losses, lambda after the epoch, mean c, accuracy.

    The hint mask is drawn from `generator` (like the batch order), so a run is repeatable. lambda is a Python
    float updated from each step's L_c, as in the reference code; that costs one device sync per step.
    """
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), optimizer_cfg)
    x_dev, y_dev = x.to(device), y.to(device)
    if channels_last:
        x_dev = x_dev.contiguous(memory_format=torch.channels_last)
    n = len(x_dev)
    lmbda = float(lambda_init)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        sums = {"total": 0.0, "task": 0.0, "confidence": 0.0, "c": 0.0}
        correct = torch.zeros((), device=device, dtype=torch.long)
        started = time.perf_counter()
        batches = tqdm(range(0, n, batch_size), desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                       mininterval=2.0)
        for start in batches:
            idx = order[start:start + batch_size]
            hints = hint_mask(len(idx), generator=generator, device=device)
            logits, c = model(x_dev[idx])
            loss = confidence_loss(logits / temperature, c, y_dev[idx], lmbda, hints)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            optimizer.step()
            l_c = loss.confidence.item()
            lmbda = update_lambda(lmbda, l_c, budget)
            sums["total"] += loss.total.item() * len(idx)
            sums["task"] += loss.task.item() * len(idx)
            sums["confidence"] += l_c * len(idx)
            sums["c"] += c.detach().sum().item()
            correct += (logits.detach().argmax(1) == y_dev[idx]).sum()
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": sums["total"] / n, "train_task_loss": sums["task"] / n,
               "train_confidence_loss": sums["confidence"] / n, "lambda": lmbda, "mean_confidence": sums["c"] / n,
               "train_accuracy": correct.item() / n}
        if not torch.isfinite(torch.tensor(row["train_loss"])):
            raise FloatingPointError(f"training diverged at epoch {epoch}: loss {row['train_loss']}"
                                     f" (lower models.<name>.optimizer.lr)")
        if monitor is not None:
            metrics = classification_metrics(predict_logits(model, monitor[0], 1000, device, channels_last),
                                             monitor[1])
            row[f"{monitor_name}_nll"] = metrics["nll"]
            row[f"{monitor_name}_accuracy"] = metrics["accuracy"]
        history.append(row)
        log.info("epoch %d/%d: %s (%.0f samples/s)", epoch, epochs,
                 ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"), n / seconds)
    model.eval()
    return history
