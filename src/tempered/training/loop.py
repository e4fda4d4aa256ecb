"""The one minibatch training loop (DomainBed's train.py pattern: one loop, each method's update plugged in).

The loop owns what every method shares: the epochs, the epoch's order (a permutation drawn from the training
generator, so a seed fixes the run), the optimiser step, the divergence check, the monitor set's metrics and one
history row per epoch. What is minimised, and what a row reports of it, is the Objective's (objectives.py,
szegedy_pools.py). The whole training set stays one in-memory tensor held by the objective: batches are index
slices, no loader.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from tempered.training.inference import classification_metrics, predict_logits

log = logging.getLogger(__name__)


class Objective(Protocol):
    """What one method minimises on a minibatch, and the epoch's sums it reports."""

    loss_key: str  # the history column that must stay finite

    def start_epoch(self) -> None:
        """Reset the epoch's sums."""

    def batch_loss(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        """The loss to back-propagate for the training rows idx; the batch's share goes into the epoch's sums."""

    def epoch_row(self, n: int) -> dict[str, float]:
        """The epoch's history columns after n samples."""


def make_optimizer(params, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    if cfg["name"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                               weight_decay=cfg["weight_decay"])
    if cfg["name"] == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    raise ValueError(f"unknown optimizer {cfg['name']!r}; known: sgd, adam")


def epoch_learning_rates(cfg: Mapping[str, Any], epochs: int) -> list[float]:
    """The learning rate of each epoch: cfg's lr, times lr_drop_factor once for each fraction in lr_drops that
    training has passed when the epoch starts (Song et al. 2019 drop Adam's 1e-4 tenfold at 62.5% and 81.25% of
    their steps). Epoch granularity: a drop takes effect at the first epoch starting at or after its fraction."""
    drops = cfg.get("lr_drops", [])
    factor = cfg.get("lr_drop_factor", 1.0)
    return [cfg["lr"] * factor ** sum(epoch >= fraction * epochs for fraction in drops) for epoch in range(epochs)]


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser may move: frozen ones (AE400-10's autoencoder) stay out."""
    return [p for p in model.parameters() if p.requires_grad]


def on_device(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train(
    model: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    *,
    n: int,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    channels_last: bool = False,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    monitor_name: str = "heldout",
    phase: str = "training",
    lr_key: str = "the learning rate",
    learning_rates: list[float] | None = None,
) -> list[dict[str, float]]:
    """Minimise the objective over `epochs` shuffled passes of n samples; one row of metrics per epoch.

    Each row is {"epoch", the objective's columns, then <monitor_name>_nll and _accuracy at T=1 on the monitor
    set}; no wall-clock value goes into it, so a seed fixes the history. A non-finite loss_key stops training
    with FloatingPointError naming `lr_key`, the setting to lower. `phase` names the training in progress bars,
    logs and errors ("training", "autoencoder pre-training"). `learning_rates`, one per epoch
    (epoch_learning_rates), set the optimiser's rate as each epoch starts; None keeps the rate it was made with.
    """
    if learning_rates is not None and len(learning_rates) != epochs:
        raise ValueError(f"{len(learning_rates)} learning rates for {epochs} epochs")
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        if learning_rates is not None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rates[epoch - 1]
        order = torch.randperm(n, generator=generator).to(device)
        objective.start_epoch()
        started = time.perf_counter()
        for start in tqdm(range(0, n, batch_size), desc=f"{phase} epoch {epoch}/{epochs}", unit="batch",
                          leave=False, mininterval=2.0):
            loss = objective.batch_loss(model, order[start:start + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, **objective.epoch_row(n)}
        if not math.isfinite(row[objective.loss_key]):
            raise FloatingPointError(f"{phase} diverged at epoch {epoch}: {objective.loss_key} "
                                     f"{row[objective.loss_key]} (lower {lr_key})")
        if monitor is not None:
            metrics = classification_metrics(predict_logits(model, monitor[0], 1000, device, channels_last),
                                             monitor[1])
            row[f"{monitor_name}_nll"] = metrics["nll"]
            row[f"{monitor_name}_accuracy"] = metrics["accuracy"]
        history.append(row)
        log.info("%s epoch %d/%d: %s (%.0f samples/s)", phase, epoch, epochs,
                 ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"), n / seconds)
    model.eval()
    return history
