"""Madry et al. 2018 adversarial training: every minibatch is replaced by its PGD examples against the current
model, and the model trains on those alone (their MNIST recipe: L-inf eps 0.3, 40 steps of 0.01, random start).

The attack runs with the model in eval mode, so dropout does not randomise the adversary; each batch's random
start is drawn from the training generator, so a seed fixes the whole run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from tempered.attacks.pgd import PGD

Perturbation = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def pgd_perturbation(cfg: Mapping[str, Any], temperature: float, generator: torch.Generator) -> Perturbation:
    """A function (model, x, y) -> PGD examples of x, for train_classifier's `perturb`."""

    def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        was_training = model.training
        model.eval()
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        attack = PGD(eps=cfg["eps"], alpha=cfg["alpha"], steps=cfg["steps"], random_start=cfg["random_start"],
                     seed=seed, temperature=temperature)
        x_adv = attack.attack(model, x, y).x_adv
        model.train(was_training)
        return x_adv

    return perturb
