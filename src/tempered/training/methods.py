"""Each minibatch training method as one call: its objective, its optimiser and hooks, the one loop (loop.py).

The config names the method (models.<name>.method); tempered.stages.train.steps maps each name to one of these, or to
tempered.training.convex for full-batch L-BFGS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tempered.models.szegedy import SparseAutoencoder
from tempered.training.learned_confidence import BUDGET, LAMBDA_INIT
from tempered.training.loop import Objective, epoch_learning_rates, make_optimizer, train, trainable
from tempered.training.objectives import CrossEntropyAtT, LearnedConfidence, Perturbation, SparseAutoencoderObjective
from tempered.training.szegedy_pools import PooledCrossEntropy, SzegedyPools


def _place(model: nn.Module, device: torch.device, channels_last: bool) -> None:
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)


def _fit(model: nn.Module, objective: Objective, optimizer_cfg: Mapping[str, Any], *, epochs: int,
         **loop: Any) -> list[dict[str, float]]:
    """The one loop (loop.train) on `objective` with the configured optimiser over the model's trainable parameters,
    its rate set per epoch from the config's schedule (epoch_learning_rates)."""
    optimizer = make_optimizer(trainable(model), optimizer_cfg)
    return train(model, objective, optimizer, epochs=epochs, learning_rates=epoch_learning_rates(optimizer_cfg, epochs),
                 **loop)


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
    perturb: Perturbation | None = None,
    lr_key: str = "the learning rate",
) -> list[dict[str, float]]:
    """Minibatch SGD or Adam on softmax(z/T) (CrossEntropyAtT: hard labels, a teacher's soft_targets, Madry PGD batches
    through `perturb`); one row of metrics per epoch (no wall-clock values in it)."""
    _place(model, device, channels_last)
    objective = CrossEntropyAtT(model, x, y, temperature=temperature, device=device, channels_last=channels_last,
                                soft_targets=soft_targets, perturb=perturb)
    return _fit(model, objective, optimizer_cfg, n=len(x), epochs=epochs, batch_size=batch_size, generator=generator,
                device=device, channels_last=channels_last, monitor=monitor, monitor_name=monitor_name, lr_key=lr_key)


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
    lr_key: str = "the learning rate",
) -> list[dict[str, float]]:
    """Minibatch SGD on DeVries & Taylor's L_t + lambda L_c (LearnedConfidence); one row per epoch: losses,
    lambda after the epoch, mean c, accuracy."""
    _place(model, device, channels_last)
    objective = LearnedConfidence(x, y, lambda_init=lambda_init, budget=budget, temperature=temperature,
                                  generator=generator, device=device, channels_last=channels_last)
    return _fit(model, objective, optimizer_cfg, n=len(x), epochs=epochs, batch_size=batch_size, generator=generator,
                device=device, channels_last=channels_last, monitor=monitor, monitor_name=monitor_name, lr_key=lr_key)


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
    layers: Sequence[str] | None = None,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    monitor_name: str = "heldout",
    lr_key: str = "the learning rate",
) -> list[dict[str, float]]:
    """Minibatch SGD on clean batches with Szegedy et al. 2014's pool examples mixed in (szegedy_pools); one row
    of metrics per epoch.

    `layers` names the layers that keep a pool (szegedy_pools.pool_layers); None, the paper's setting, pools at
    every layer of the model. `pool_size`, `refresh_size` and `mix_size` are per pool. Each row has, per pooled
    layer, pool_size_<layer> (entries at the end of the epoch) and pool_attack_success_<layer> (the epoch's share
    of successful attacks), and pool_size and pool_attack_success over all pools together.

    `generator` orders the training set; the pools' draws come from a separate generator seeded with `seed`.
    """
    x_dev, y_dev = x.to(device), y.to(device)
    pools = SzegedyPools(model.to(device), x_dev, y_dev, layers=layers, pool_size=pool_size,
                         refresh_every=refresh_every, refresh_size=refresh_size, mix_size=mix_size, seed=seed,
                         attack=attack)
    objective = PooledCrossEntropy(model, x_dev, y_dev, pools)
    return _fit(model, objective, optimizer_cfg, n=len(x), epochs=epochs, batch_size=batch_size, generator=generator,
                device=device, monitor=monitor, monitor_name=monitor_name, lr_key=lr_key, phase="adversarial training")


def pretrain_autoencoder(
    autoencoder: SparseAutoencoder,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    device: torch.device,
    sparsity_target: float = 0.05,
    sparsity_weight: float = 3.0,
    weight_decay: float = 3e-3,
    lr_key: str = "the learning rate",
) -> list[dict[str, float]]:
    """Unsupervised pre-training of the sparse autoencoder under AE400-10 (Szegedy et al. 2014, section 4.3,
    Table 1): Adam on the sparse-autoencoder objective J (objectives.sparse_autoencoder_loss) over shuffled
    minibatches of x (N, 1, 28, 28); returns one row of mean terms per epoch.

    The paper says only "a single layer sparse autoencoder with sigmoid activations and 400 nodes"; J is the
    standard sparse autoencoder of Ng's CS294A notes. Adam on minibatches replaces the notes' full-batch L-BFGS:
    the same objective, minutes less on 60k images.

    Trains the autoencoder in place even when it sits frozen inside an AutoencoderClassifier: gradients are
    switched on for the duration and the requires_grad flags restored afterwards.
    """
    flags = [p.requires_grad for p in autoencoder.parameters()]
    autoencoder.requires_grad_(True)
    autoencoder.to(device)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr)
    objective = SparseAutoencoderObjective(x, device=device, sparsity_target=sparsity_target,
                                           sparsity_weight=sparsity_weight, weight_decay=weight_decay)
    try:
        return train(autoencoder, objective, optimizer, n=len(x), epochs=epochs, batch_size=batch_size,
                     generator=generator, device=device, phase="autoencoder pre-training", lr_key=lr_key)
    finally:
        for p, flag in zip(autoencoder.parameters(), flags, strict=True):
            p.requires_grad_(flag)
