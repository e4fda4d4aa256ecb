"""Fast gradient sign method (Goodfellow, Shlens & Szegedy 2015, section 4), an L-inf attack.

x' = clip(x + eps * sign(grad_x J), 0, 1) with J the cross-entropy on the true label (untargeted), or
x' = clip(x - eps * sign(grad_x J_t), 0, 1) with J_t the cross-entropy on the target (targeted).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tempered.attacks.common import Attack, AttackResult, check_inputs, finish


def loss_sign_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None,
                       temperature: float) -> torch.Tensor:
    """sign of the gradient of the loss the attacker ascends: CE on labels, or minus CE on the target.

    A zero gradient (a saturated softmax, as under defensive distillation) gives sign 0: the pixel stays.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logits = model(x) / temperature
        # Summed, not averaged: the per-sample gradients stay independent of the batch size.
        loss = (-F.cross_entropy(logits, target, reduction="sum") if target is not None
                else F.cross_entropy(logits, labels, reduction="sum"))
        # autograd.grad, not backward(): the attack must not leave gradients on the model's parameters.
        (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


class FGSM(Attack):
    """Goodfellow et al. 2015: one signed-gradient step of size eps.

    eps=0.25 is the paper's MNIST value. temperature divides the logits inside the loss: 1 attacks the
    deployed model as is; a distilled model's training T is the attacker who knows it.
    """

    norm = "linf"

    def __init__(self, eps: float = 0.25, temperature: float = 1.0, clip_min: float = 0.0, clip_max: float = 1.0):
        self.eps = eps
        self.temperature = temperature
        self.clip_min = clip_min
        self.clip_max = clip_max

    def attack(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
               target: torch.Tensor | None = None) -> AttackResult:
        """Untargeted when target is None, else towards target; distortion is Linf."""
        check_inputs(x, labels, target)
        step = loss_sign_gradient(model, x, labels, target, self.temperature)
        x_adv = (x + self.eps * step).clamp(self.clip_min, self.clip_max)
        return finish(model, x, x_adv, labels, target, self.norm)
