"""Projected gradient descent in the L-inf ball (Madry et al. 2018, "Towards deep learning models resistant to
adversarial attacks", section 2.1), an iterated FGSM with an optional random start.

Every step: x <- Proj(x + alpha * sign(grad_x J)), the projection being onto the eps-ball around the clean
input intersected with the [0, 1] box. Defaults are the paper's MNIST adversary: eps 0.3, step 0.01, 40 steps,
start uniform in the eps-ball.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from tempered.attacks.common import Attack, AttackResult, check_inputs, finish
from tempered.attacks.fgsm import loss_sign_gradient


class PGD(Attack):
    """Madry et al. 2018. seed fixes the random start (None: draw from torch's global generator).

    The returned x is the last iterate, as in the paper; temperature divides the logits inside the loss
    (see FGSM). progress: a bar over the steps on stderr (off inside training loops, where it would be one
    bar per minibatch).
    """

    norm = "linf"

    def __init__(self, eps: float = 0.3, alpha: float = 0.01, steps: int = 40, random_start: bool = True,
                 seed: int | None = 0, temperature: float = 1.0, clip_min: float = 0.0, clip_max: float = 1.0,
                 progress: bool = False):
        self.eps = eps
        self.alpha = alpha
        self.steps = steps
        self.random_start = random_start
        self.seed = seed
        self.temperature = temperature
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.progress = progress

    def _project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # The box after the ball: x lies in the box, so the result stays in both.
        return torch.min(torch.max(x_adv, x - self.eps), x + self.eps).clamp(self.clip_min, self.clip_max)

    def attack(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
               target: torch.Tensor | None = None) -> AttackResult:
        """Untargeted when target is None, else towards target; distortion is Linf."""
        check_inputs(x, labels, target)
        x = x.detach()
        x_adv = x.clone()
        if self.random_start:
            # Drawn on the CPU and moved: the same seed gives the same start on every device.
            generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
            noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
            x_adv = self._project(x + self.eps * noise.to(x.device), x)
        for _ in tqdm(range(self.steps), desc="PGD", unit="step", leave=False, mininterval=2.0,
                      disable=not self.progress):
            step = loss_sign_gradient(model, x_adv, labels, target, self.temperature)
            x_adv = self._project(x_adv + self.alpha * step, x)
        return finish(model, x, x_adv, labels, target, self.norm)
