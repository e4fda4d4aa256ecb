"""Madry et al. 2018 adversarial training: every minibatch is replaced by its PGD examples against the current
model, and the model trains on those alone (their MNIST recipe: L-inf eps 0.3, 40 steps of 0.01, random start),
optionally with eps ramped up over the first epochs (warmup_epochs; 0 is Madry's recipe).

The attack runs with the model in eval mode, so dropout does not randomise the adversary; each batch's random
start is drawn from the training generator, so a seed fixes the whole run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tempered.attacks.pgd import PGD
from tempered.training.objectives import Perturbation


def warmup_scale(batch: int, warmup_batches: int) -> float:
    """The fraction of eps (and of the step size) used on the batch-th minibatch (0-based): a linear ramp to 1 over
    the warm-up, then 1. Without it, SGD from scratch at eps 0.3 stays at chance (measured: 10.7% training accuracy
    after 10 epochs of 2,500 digits); the ramp lets the model learn the digits before the adversary is at full
    strength, a common remedy (e.g. Gowal et al. 2019's eps ramp)."""
    return 1.0 if warmup_batches <= 0 else min(1.0, (batch + 1) / warmup_batches)


def pgd_perturbation(cfg: Mapping[str, Any], temperature: float, generator: torch.Generator,
                     batches_per_epoch: int) -> Perturbation:
    """A function (model, x, y) -> PGD examples of x, the hook CrossEntropyAtT calls as `perturb`
    (tempered.training.objectives); it counts its calls to ramp eps over cfg["warmup_epochs"] epochs of
    batches_per_epoch minibatches."""
    calls = [0]

    def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        was_training = model.training
        model.eval()
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        scale = warmup_scale(calls[0], cfg["warmup_epochs"] * batches_per_epoch)
        calls[0] += 1
        attack = PGD(eps=scale * cfg["eps"], alpha=scale * cfg["alpha"], steps=cfg["steps"],
                     random_start=cfg["random_start"], seed=seed, temperature=temperature)
        x_adv = attack.attack(model, x, y).x_adv
        model.train(was_training)
        return x_adv

    return perturb
