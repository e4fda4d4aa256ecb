"""The learned-confidence training loss and its weight schedule (DeVries & Taylor 2018, section 2).

The network asks for "hints": its prediction p = softmax(z) is interpolated toward the one-hot label y by
1 - c, p' = c p + (1 - c) y, and the task loss L_t = -sum_k y_k log p'_k is taken on p'. Asking costs
L_c = -log c. The total is L = L_t + lambda L_c. Two implementation details from the paper and its code
(uoguelph-mlrg/confidence_estimation, train.py), both kept here:

- hints go to a random half of each batch only (Bernoulli(0.5) per sample, mask b = 1); the other half
  trains with c = 1, i.e. on p itself, so the classifier still learns from its misclassified samples;
- lambda is not fixed but steered so that L_c tracks a budget beta (0.3): after every step, lambda / 0.99
  (up) when L_c >= beta, else lambda / 1.01 (down), starting from 0.1.

pytorch-ood's ConfidenceLoss keeps neither (fixed lambda, hints on every sample); this module follows the paper.
Pure functions on tensors: the training loop owns the optimiser, the random generator and lambda.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

LAMBDA_INIT = 0.1  # train.py: "Start with a reasonable guess for lambda"
BUDGET = 0.3  # train.py --budget default, the paper's beta
CLAMP_EPS = 1e-12  # train.py clamps p and c to [eps, 1 - eps] before taking logs
HINT_PROBABILITY = 0.5


class ConfidenceLoss(NamedTuple):
    total: torch.Tensor  # L_t + lambda L_c, the quantity to backpropagate
    task: torch.Tensor  # L_t, NLL of the hinted prediction p'
    confidence: torch.Tensor  # L_c, mean -log c over the whole batch


def hint_mask(n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bernoulli(0.5) boolean mask: True where a sample may take hints (c as predicted), False where c = 1.

    The reference draws b ~ Bernoulli(u), u ~ U(0, 1), per sample: marginally the same Bernoulli(0.5).
    Drawn on the CPU from `generator` so that the mask, hence training, is reproducible across devices.
    """
    mask = torch.rand(n, generator=generator) < HINT_PROBABILITY
    return mask.to(device)


def confidence_loss(logits: torch.Tensor, confidence: torch.Tensor, labels: torch.Tensor, lmbda: float,
                    hints: torch.Tensor) -> ConfidenceLoss:
    """L = L_t + lambda L_c of DeVries & Taylor 2018, section 2, with hints only where `hints` is True.

    confidence is the sigmoid output c, shape (N,) or (N, 1). p and c are clamped to [1e-12, 1 - 1e-12] as in
    the reference code (clamping zeroes the gradient of saturated entries; float32 rounds the upper bound to 1).
    L_c is averaged over all samples, hinted or not, as in the reference code.
    """
    c = confidence.reshape(-1).clamp(CLAMP_EPS, 1.0 - CLAMP_EPS)
    p = torch.softmax(logits, dim=1).clamp(CLAMP_EPS, 1.0 - CLAMP_EPS)
    onehot = F.one_hot(labels, p.shape[1]).to(p.dtype)
    c_used = torch.where(hints.reshape(-1).to(torch.bool), c, torch.ones_like(c)).unsqueeze(1)
    p_hinted = c_used * p + (1.0 - c_used) * onehot
    task = F.nll_loss(torch.log(p_hinted), labels)
    conf = (-torch.log(c)).mean()
    return ConfidenceLoss(total=task + lmbda * conf, task=task, confidence=conf)


def update_lambda(lmbda: float, confidence_loss_value: float, budget: float = BUDGET) -> float:
    """lambda after one step: / 0.99 (grows 1%) if L_c >= budget, else / 1.01 (shrinks 1%).

    DeVries & Taylor 2018, section 2 ("budget"): too little confidence (L_c above beta) raises its price.
    Direction and tie from uoguelph-mlrg/confidence_estimation train.py:
    `if budget > L_c: lmbda /= 1.01; elif budget <= L_c: lmbda /= 0.99`. The loss of the step uses the lambda
    before the update.
    """
    return lmbda / 1.01 if confidence_loss_value < budget else lmbda / 0.99
