"""Train a model whose training objective is convex to its optimum: full-batch L-BFGS, Szegedy et al. 2014 (4.1).

FC10(lambda) is softmax regression with an L2 penalty: a strictly convex problem with one optimum, which the
paper reached with L-BFGS. Minibatch SGD at a constant rate stalls short of it (its noise floor), and the
published train/test errors are those of the optimum, so the objective here is the exact full-batch one:
mean cross-entropy over every training sample plus the model's `weight_penalty()`. torch.optim.LBFGS with a
strong-Wolfe line search runs in float64 (so the gradient tolerance is not limited by float32 rounding); the
model is returned in float32 like every other trained model.

One history row per round of `iterations_per_round` L-BFGS iterations (the optimizer keeps its curvature pairs
across rounds, so rounds only set how often progress is recorded): the objective, the largest absolute
gradient component (the quantity `tolerance_grad` bounds, as in torch.optim.LBFGS), the train cross-entropy
and accuracy, and the monitor set's. Training stops when the gradient is within tolerance, when L-BFGS can make
no further progress, or after `max_iter` iterations; the last row says which (`converged`).
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from tempered.training.inference import classification_metrics, predict_logits

log = logging.getLogger(__name__)


def full_batch_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy + weight_penalty(), mean cross-entropy) over all of x; the model defines the penalty
    (tempered.models.szegedy), a model without one is trained on the cross-entropy alone."""
    logits = model(x)
    nll = F.cross_entropy(logits, y)
    penalty = getattr(model, "weight_penalty", None)
    return (nll + penalty() if penalty is not None else nll), nll


def train_full_batch_lbfgs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    max_iter: int = 2000,
    tolerance_grad: float = 1e-6,
    history_size: int = 20,
    iterations_per_round: int = 50,
    device: torch.device,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    monitor_name: str = "heldout",
) -> list[dict[str, float]]:
    """Minimise the full-batch objective of the trainable parameters (frozen ones stay out) with L-BFGS.

    The objective must be convex in the trainable parameters for the optimum to be the paper's (softmax
    regression, or a softmax layer on frozen features); for any other model this finds a stationary point.
    """
    if max_iter < 1 or iterations_per_round < 1:
        raise ValueError("max_iter and iterations_per_round must be positive")
    model.to(device=device, dtype=torch.float64).eval()  # eval: the objective must be deterministic
    params = [p for p in model.parameters() if p.requires_grad]
    x64, y_dev = x.to(device=device, dtype=torch.float64), y.to(device)
    # tolerance_change 0: stop on the gradient, on max_iter, or when a line search cannot move (step ~ 0).
    optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations_per_round, max_eval=4 * iterations_per_round,
                                  tolerance_grad=tolerance_grad, tolerance_change=0.0, history_size=history_size,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=False)
        objective, _ = full_batch_objective(model, x64, y_dev)
        objective.backward()
        return objective

    def gradient_inf_norm() -> float:
        return max(p.grad.abs().max().item() for p in params)

    history: list[dict[str, float]] = []
    done, previous = 0, math.inf
    for round_index in range(1, math.ceil(max_iter / iterations_per_round) + 1):
        optimizer.param_groups[0]["max_iter"] = min(iterations_per_round, max_iter - done)
        optimizer.step(closure)
        done = optimizer.state[params[0]]["n_iter"]
        objective = closure().item()  # fresh gradient at the current point
        grad = gradient_inf_norm()
        converged = grad <= tolerance_grad
        # A round that leaves the objective exactly where it was has met a line search that cannot move.
        stalled = objective >= previous
        previous = objective
        row = {"epoch": round_index, "iterations": done, "objective": objective, "gradient_inf_norm": grad}
        with torch.no_grad():
            logits = model(x64)
        train = classification_metrics(logits, y_dev)
        row |= {"train_nll": train["nll"], "train_accuracy": train["accuracy"]}
        if monitor is not None:
            metrics = classification_metrics(predict_logits(model, monitor[0].to(torch.float64), 1000, device),
                                              monitor[1])
            row |= {f"{monitor_name}_nll": metrics["nll"], f"{monitor_name}_accuracy": metrics["accuracy"]}
        if not math.isfinite(objective):
            raise FloatingPointError(f"L-BFGS diverged after {done} iterations: objective {objective}")
        stop = converged or stalled or done >= max_iter
        row["converged"] = converged
        history.append(row)
        log.info("L-BFGS round %d: %s", round_index, ", ".join(f"{k}={v:.6g}" for k, v in row.items()
                                                                  if k != "epoch"))
        if stop:
            break
    if not history[-1]["converged"]:
        log.warning("L-BFGS stopped after %d iterations with gradient %.3g above tolerance %.3g", done,
                    history[-1]["gradient_inf_norm"], tolerance_grad)
    model.to(torch.float32)
    return history
