"""Adversarial training with refreshed pools, Szegedy et al. 2014 ("Intriguing properties of neural networks"),
section 4.3: "a pool of adversarial examples, a random subset of which is continuously replaced by newly
generated adversarial examples and which is mixed into the original training set all the time", and "A subtle,
but essential detail is that we only got improvements by generating adversarial examples for each layer outputs
which were used to train all the layers above. The network was trained in an alternating fashion, maintaining
and updating a pool of adversarial examples for each layer separately in addition to the original training set."

Layers are named "input" and, for a SigmoidMLP, "hidden1", "hidden2", ... (the sigmoid outputs h_l of its hidden
layers). Each named layer gets its own pool. Level l's examples are box-constrained L-BFGS examples
(tempered.attacks.lbfgs) of the part of the network above l, `LayerAbove`, started from the clean h_l of a
training sample: h_l lies in (0, 1), so the attack's [0, 1] box is the range of the sigmoid there, as it is the
pixel range at the input. They enter the loss through `LayerAbove` only, so they train the layers above l and
no layer at or below it ("used to train all the layers above").

The paper gives no sizes. Ours: every `refresh_every` minibatches, each pool gets `refresh_size` random training
samples attacked towards random other classes against the current model; the successful examples, with their
true labels, enter the pool (appended until it holds `pool_size`, then replacing random entries). Every minibatch
of clean samples gets `mix_size` random entries of every pool. The loss is the mean cross-entropy over the clean
samples and all pool entries, each pool's entries through the network above its layer, plus the model's weight
penalty, as cross-entropy training (tempered.training.objectives). With layers=("input",) this is input-level
adversarial training alone. `SzegedyPools` is the hook (refresh, then mix into every minibatch);
`PooledCrossEntropy` the objective the training loop (tempered.training.loop) minimises with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tempered.attacks.common import random_other_targets
from tempered.attacks.lbfgs import lbfgs_attack
from tempered.models.szegedy import SigmoidMLP

INPUT = "input"


def pool_layers(model: nn.Module) -> list[str]:
    """The layers whose outputs can hold a pool: the input, and each hidden layer of a SigmoidMLP."""
    if isinstance(model, SigmoidMLP):
        return [INPUT, *(f"hidden{k}" for k in range(1, len(model.hidden) + 1))]
    return [INPUT]


def _level(model: nn.Module, layer: str) -> int:
    """0 for the input, k for hidden layer k."""
    names = pool_layers(model)
    if layer not in names:
        raise ValueError(f"no layer {layer!r} to pool at in {type(model).__name__}; it has {names}")
    return names.index(layer)


class LayerAbove(nn.Module):
    """The part of a SigmoidMLP above hidden layer `level`: h_level -> logits, sharing the model's parameters.

    Dropout follows every sigmoid in the full network, so it applies to h_level here as it would there; with
    level 0 this is the whole network.
    """

    def __init__(self, model: SigmoidMLP, level: int):
        super().__init__()
        self.level = level
        self.blocks = model.hidden[level:]
        self.dropout = model.dropout
        self.logits = model.logits

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h.flatten(1)
        if self.level:
            h = self.dropout(h)
        for layer in self.blocks:
            h = self.dropout(torch.sigmoid(layer(h)))
        return self.logits(h)


def network_above(model: nn.Module, layer: str) -> nn.Module:
    level = _level(model, layer)
    return model if level == 0 else LayerAbove(model, level)


@torch.no_grad()
def layer_output(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The clean output of `layer` for inputs x: x itself, or the hidden sigmoid activations without dropout."""
    level = _level(model, layer)
    if level == 0:
        return x
    h = x.flatten(1)
    for hidden in model.hidden[:level]:
        h = torch.sigmoid(hidden(h))
    return h


class AdversarialPool:
    """A fixed-capacity store of (adversarial input, true label); full, a new entry replaces a random one."""

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
                 attack: Mapping[str, Any], generator: torch.Generator, layer: str = INPUT) -> tuple[int, int]:
    """Attack `count` random training samples at `layer` against the current model; add the successes.

    At a hidden layer the attack starts from the sample's clean output of that layer and perturbs it against the
    network above the layer. Returns (attempts, added).
    """
    was_training = model.training
    idx = torch.randint(0, len(x), (count,), generator=generator).to(x.device)
    targets = random_other_targets(y[idx].cpu(), 10, generator).to(x.device)
    model.eval()
    result = lbfgs_attack(network_above(model, layer), layer_output(model, x[idx], layer), targets, **attack)
    ok = result.success & (y[idx] != targets)
    pool.add(result.x_adv[ok].detach(), y[idx][ok], generator)
    model.train(was_training)
    return count, int(ok.sum())


def mixed_batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     pooled: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over a clean batch and pool entries {layer: (examples, labels)}; also the clean logits.

    Input-level entries go through the whole network with the clean batch; a hidden layer's entries go through
    the network above that layer only, so their gradient reaches no parameter at or below it.
    """
    x_in, y_in = pooled.get(INPUT, (x[:0], y[:0]))
    logits = model(torch.cat([x, x_in]))
    total = F.cross_entropy(logits, torch.cat([y, y_in]), reduction="sum")
    count = len(logits)
    for layer, (h, labels) in pooled.items():
        if layer != INPUT and len(h):
            total = total + F.cross_entropy(network_above(model, layer)(h), labels, reduction="sum")
            count += len(h)
    return total / max(count, 1), logits[:len(x)]


class SzegedyPools:
    """The hook: one AdversarialPool per layer in `layers`, refreshed every `refresh_every` minibatches with
    `refresh_size` attacked training samples each, and `mix_size` entries of each drawn for every minibatch.

    Its draws (samples to attack, their targets, replaced slots, mixed entries) come from its own generator seeded
    with `seed`, apart from the training generator that orders the epochs.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, layers: Sequence[str] | None,
                 pool_size: int, refresh_every: int, refresh_size: int, mix_size: int, seed: int,
                 attack: Mapping[str, Any]):
        layers = list(pool_layers(model) if layers is None else layers)
        if not layers or len(set(layers)) != len(layers):
            raise ValueError(f"adversarial training needs distinct layers to pool at, got {layers}")
        for layer in layers:
            _level(model, layer)
        self.x, self.y, self.attack = x, y, attack
        self.refresh_every, self.refresh_size, self.mix_size = refresh_every, refresh_size, mix_size
        self.generator = torch.Generator().manual_seed(seed)
        shapes = {layer: tuple(layer_output(model, x[:1], layer).shape[1:]) for layer in layers}
        self.pools = {layer: AdversarialPool(pool_size, shapes[layer], x.device) for layer in layers}
        self.step = 0

    def start_epoch(self) -> None:
        self.attempts, self.added = dict.fromkeys(self.pools, 0), dict.fromkeys(self.pools, 0)

    def mix(self, model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Refresh the pools when due, then draw this minibatch's entries of each: {layer: (examples, labels)}."""
        if self.step % self.refresh_every == 0:
            for layer, pool in self.pools.items():
                tried, got = refresh_pool(pool, model, self.x, self.y, self.refresh_size, self.attack,
                                          self.generator, layer=layer)
                self.attempts[layer] += tried
                self.added[layer] += got
        self.step += 1
        return {layer: pool.sample(self.mix_size, self.generator) for layer, pool in self.pools.items()}

    def epoch_row(self) -> dict[str, float]:
        """pool_size and pool_attack_success over all pools (entries at the end of the epoch, the epoch's share of
        successful attacks), then both per pooled layer."""
        row = {"pool_size": sum(pool.size for pool in self.pools.values()),
               "pool_attack_success": sum(self.added.values()) / max(sum(self.attempts.values()), 1)}
        for layer, pool in self.pools.items():
            row[f"pool_size_{layer}"] = pool.size
            row[f"pool_attack_success_{layer}"] = self.added[layer] / max(self.attempts[layer], 1)
        return row


class PooledCrossEntropy:
    """mixed_batch_loss over each clean minibatch and the pools' entries, plus the model's weight penalty.

    The epoch's loss is summed in Python floats, as this method always has (cross-entropy alone sums on the
    device): the same history to the last digit.
    """

    loss_key = "train_loss"

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, pools: SzegedyPools):
        self.x, self.y, self.pools = x, y, pools
        self.penalty = getattr(model, "weight_penalty", None)

    def start_epoch(self) -> None:
        self.loss_sum, self.correct = 0.0, 0
        self.pools.start_epoch()

    def batch_loss(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        pooled = self.pools.mix(model)
        loss, logits = mixed_batch_loss(model, self.x[idx], self.y[idx], pooled)
        if self.penalty is not None:
            loss = loss + self.penalty()
        self.loss_sum += loss.item() * len(idx)
        self.correct += int((logits.detach().argmax(1) == self.y[idx]).sum())
        return loss

    def epoch_row(self, n: int) -> dict[str, float]:
        return {"train_loss": self.loss_sum / n, "train_accuracy": self.correct / n, **self.pools.epoch_row()}
