"""Adversarial training with a refreshed pool, Szegedy et al. 2014 ("Intriguing properties of neural networks"),
section 4.3: "a pool of adversarial examples, a random subset of which is continuously replaced by newly
generated adversarial examples and which is mixed into the original training set all the time".

The paper gives no sizes. Ours: every `refresh_every` minibatches, `refresh_size` random training samples are
attacked with box-constrained L-BFGS (tempered.attacks.lbfgs) towards random other classes against the current
model; the successful examples, with their true labels, enter the pool (appended until it holds `pool_size`,
then replacing random entries). Every minibatch of clean samples gets `mix_size` random pool entries appended.
The loss is the mean cross-entropy over the mixed batch plus the model's weight penalty, as tempered.training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tempered.attacks.lbfgs import lbfgs_attack, random_other_targets
from tempered.training import classification_metrics, make_optimizer, predict_logits

log = logging.getLogger(__name__)


class AdversarialPool:
    """A fixed-capacity store of (adversarial image, true label); full, a new entry replaces a random one."""

    def __init__(self, capacity: int, shape: tuple[int, ...], device: torch.device):
        self.x = torch.zeros((capacity, *shape), device=device)
        self.y = torch.zeros(capacity, dtype=torch.long, device=device)
        self.size = 0

    @property
    def capacity(self) -> int:
        return len(self.x)

    def add(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> None:
        start = self.size
        free = min(self.capacity - start, len(x))
        self.x[start:start + free], self.y[start:start + free] = x[:free], y[:free]
        self.size += free
        rest = len(x) - free
        if rest:
            # Only entries that were in the pool before this call are replaced, never one added just now.
            old = torch.cat([torch.arange(start), torch.arange(start + free, self.capacity)])
            slots = old[torch.randperm(len(old), generator=generator)[:rest]].to(self.x.device)
            self.x[slots], self.y[slots] = x[free:free + len(slots)], y[free:free + len(slots)]

    def sample(self, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """k entries drawn uniformly with replacement from the filled part (nothing while empty)."""
        if self.size == 0:
            return self.x[:0], self.y[:0]
        idx = torch.randint(0, self.size, (k,), generator=generator).to(self.x.device)
        return self.x[idx], self.y[idx]


def refresh_pool(pool: AdversarialPool, model: nn.Module, x: torch.Tensor, y: torch.Tensor, count: int,
                 attack: Mapping[str, Any], generator: torch.Generator) -> tuple[int, int]:
    """Attack `count` random training samples against the current model; add the successes. (attempts, added)"""
    was_training = model.training
    idx = torch.randint(0, len(x), (count,), generator=generator).to(x.device)
    targets = random_other_targets(y[idx].cpu(), 10, generator).to(x.device)
    result = lbfgs_attack(model, x[idx], targets, **attack)
    ok = result.success & (y[idx] != targets)
    pool.add(result.x_adv[ok].detach(), y[idx][ok], generator)
    model.train(was_training)
    return count, int(ok.sum())


def train_with_adversarial_pool(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    optimizer_cfg: Mapping[str, Any],
    generator: torch.Generator,
    device: torch.device,
    pool_size: int,
    refresh_every: int,
    refresh_size: int,
    mix_size: int,
    seed: int,
    attack: Mapping[str, Any],
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    monitor_name: str = "heldout",
) -> list[dict[str, float]]:
    """Minibatch SGD on clean batches with pool examples mixed in; one row of metrics per epoch.

    `generator` orders the training set (as tempered.training does); the pool's draws (samples to attack, their
    targets, replaced slots, mixed entries) come from a separate generator seeded with `seed`.
    """
    model.to(device)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], optimizer_cfg)
    penalty = getattr(model, "weight_penalty", None)
    pool_generator = torch.Generator().manual_seed(seed)
    x_dev, y_dev = x.to(device), y.to(device)
    pool = AdversarialPool(pool_size, tuple(x.shape[1:]), device)
    n = len(x_dev)
    step = 0
    history = []
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum, correct, attempts, added = 0.0, 0, 0, 0
        for start in tqdm(range(0, n, batch_size), desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False,
                          mininterval=2.0):
            if step % refresh_every == 0:
                tried, got = refresh_pool(pool, model, x_dev, y_dev, refresh_size, attack, pool_generator)
                attempts, added = attempts + tried, added + got
            step += 1
            model.train()
            idx = order[start:start + batch_size]
            pool_x, pool_y = pool.sample(mix_size, pool_generator)
            logits = model(torch.cat([x_dev[idx], pool_x]))
            loss = F.cross_entropy(logits, torch.cat([y_dev[idx], pool_y]))
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits[:len(idx)].detach().argmax(1) == y_dev[idx]).sum())
        row = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
               "pool_size": pool.size, "pool_attack_success": added / max(attempts, 1)}
        if not torch.isfinite(torch.tensor(row["train_loss"])):
            raise FloatingPointError(f"adversarial training diverged at epoch {epoch}: loss {row['train_loss']}"
                                     f" (lower models.<name>.optimizer.lr)")
        if monitor is not None:
            metrics = classification_metrics(predict_logits(model, monitor[0], 1000, device), monitor[1])
            row[f"{monitor_name}_nll"] = metrics["nll"]
            row[f"{monitor_name}_accuracy"] = metrics["accuracy"]
        history.append(row)
        log.info("epoch %d/%d: %s", epoch, epochs, ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"))
    model.eval()
    return history
