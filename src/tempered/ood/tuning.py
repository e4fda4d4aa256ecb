"""Grid scores for the detectors with hyper-parameters, and the choice of the best grid point.

ODIN (Liang et al. 2018, section 4) and learned confidence with input preprocessing (DeVries & Taylor 2018,
section 3.2) each have a perturbation size eps, ODIN also a temperature T; both papers pick them on 1,000 held-out
samples of each OOD set (plus in-distribution validation samples), by FPR at 95% TPR, and report on the rest.

The perturbation's direction sign(grad) depends on T but not on eps, so a grid of |T| x |eps| points costs |T|
backward passes and |T| x |eps| forward passes, not |T| x |eps| of each. The scores are exactly those of
tempered.ood.scores.odin and learned_confidence_odin at each grid point (same arithmetic; tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tempered.ood.bootstrap import all_metrics
from tempered.ood.scores import _confidence, _logits, learned_confidence, msp


def _direction(loss: torch.Tensor, x_leaf: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(loss, x_leaf)
    return grad.sign()


def _perturbed(x: torch.Tensor, direction: torch.Tensor, eps: float, clamp: bool) -> torch.Tensor:
    stepped = x - eps * direction
    return stepped.clamp(0.0, 1.0) if clamp else stepped


def odin_grid(model: nn.Module, x: torch.Tensor, temperatures: Sequence[float], epsilons: Sequence[float],
              batch_size: int, device: torch.device, clamp: bool = False) -> np.ndarray:
    """ODIN scores at every (T, eps): an array (len(temperatures), len(epsilons), len(x)), float32."""
    model.eval()
    out = np.empty((len(temperatures), len(epsilons), len(x)), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size].to(device)
        stop = start + len(batch)
        for i, temperature in enumerate(temperatures):
            with torch.enable_grad():
                x_leaf = batch.detach().requires_grad_(True)
                logits = _logits(model, x_leaf).float() / temperature
                loss = F.cross_entropy(logits, logits.argmax(dim=1), reduction="sum")
                direction = _direction(loss, x_leaf)
            for j, eps in enumerate(epsilons):
                # eps = 0 is plain MSP at T, as in scores.odin (which then skips the backward pass).
                x_eps = batch if eps == 0.0 else _perturbed(batch.detach(), direction, eps, clamp)
                out[i, j, start:stop] = msp(model, x_eps, temperature).float().cpu().numpy()
    return out


def confidence_grid(model: nn.Module, x: torch.Tensor, epsilons: Sequence[float], batch_size: int,
                    device: torch.device, clamp: bool = False) -> np.ndarray:
    """Learned-confidence scores c(x - eps sign(grad_x(-log c))) at every eps: (len(epsilons), len(x)), float32."""
    model.eval()
    out = np.empty((len(epsilons), len(x)), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size].to(device)
        stop = start + len(batch)
        with torch.enable_grad():
            x_leaf = batch.detach().requires_grad_(True)
            c = _confidence(model, x_leaf).float().clamp(1e-12, 1.0 - 1e-12)
            direction = _direction(-torch.log(c).sum(), x_leaf)
        for j, eps in enumerate(epsilons):
            x_eps = batch if eps == 0.0 else _perturbed(batch.detach(), direction, eps, clamp)
            out[j, start:stop] = learned_confidence(model, x_eps).float().cpu().numpy()
    return out


def best_grid_point(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[tuple[int, ...], dict[str, float]]:
    """The grid index with the lowest FPR at 95% TPR on the tuning samples (ties: higher AUROC, then grid order).

    scores_in and scores_out share the leading grid axes; the last axis runs over samples. Returns the index and
    that point's tuning metrics.
    """
    if scores_in.shape[:-1] != scores_out.shape[:-1]:
        raise ValueError(f"grids differ: {scores_in.shape[:-1]} vs {scores_out.shape[:-1]}")
    best, best_key, best_metrics = None, None, None
    for index in np.ndindex(*scores_in.shape[:-1]):
        metrics = all_metrics(scores_in[index], scores_out[index])
        key = (metrics["fpr_at_95_tpr"], -metrics["auroc"])
        if best_key is None or key < best_key:
            best, best_key, best_metrics = index, key, metrics
    return tuple(int(i) for i in best), best_metrics
