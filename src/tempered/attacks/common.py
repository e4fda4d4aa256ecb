"""What every attack shares: the interface, the result record, the success check and the distortion norms.

Distortions follow Carlini & Wagner 2017, section II-D: L0 counts changed pixels (Papernot et al. 2016 report
it as a fraction of the 784 features), L2 is the Euclidean distance and Linf the largest change, all on
pixels scaled to [0, 1]; Szegedy et al. 2014 measure the root mean square change instead. One image is one
sample: its channel and spatial axes are flattened together.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn


def l0_distortion(x: torch.Tensor, x_adv: torch.Tensor, atol: float = 0.0) -> torch.Tensor:
    """Number of features of each sample that changed by more than atol (float, shape (N,))."""
    return ((x_adv - x).flatten(1).abs() > atol).sum(1).to(x.dtype)


def l0_fraction(x: torch.Tensor, x_adv: torch.Tensor, atol: float = 0.0) -> torch.Tensor:
    """L0 as a fraction of the features per sample: Papernot's "percentage of features modified"."""
    return l0_distortion(x, x_adv, atol) / x[0].numel()


def adversarial_robustness(features_fraction: torch.Tensor, success: torch.Tensor, eligible: torch.Tensor,
                           cap: float, sample: torch.Tensor | None = None) -> float:
    """Papernot et al. 2016 (S&P): adversarial robustness rho_adv(F) = E[Delta_adv(X, F)], with Delta_adv(X, F) the
    smallest perturbation that makes F misclassify X (into any class), measured with JSMA as the fraction of
    features changed (MNIST: 1.55% undistilled, 14.08% distilled).

    Per attempt (one target of one sample): features_fraction where success, else cap (the most the attack may
    change, 2 * max_iter / |X| for JSMA: a failed attempt needs more, so cap is a lower bound; Papernot's own
    reference, cleverhans' 2016 MNIST tutorial, averaged 2 * iterations / |X| over every attempt, failures
    included, which is this cap for a failure). Per sample (`sample`: its index for each attempt; None: every
    attempt its own sample), the smallest over its attempts, since misclassification into any class counts;
    then the mean over samples. Only `eligible` attempts enter (the caller's mask: a sample the model already
    misclassifies, or already assigns to the target, needs no perturbation and is not measured).

    Averaging over successes alone, as a distortion mean does, lets a model on which JSMA almost always fails
    score near 0: one easy success decides it. On a 3-epoch Papernot CNN (55k digits), 50 test digits x 9 targets:
    1.8% per sample (the paper: 1.55%) against 5.2% per attempt. NaN when nothing is eligible.
    """
    if not eligible.any():
        return float("nan")
    needed = torch.where(success, features_fraction, torch.full_like(features_fraction, cap))[eligible]
    if sample is None:
        return needed.double().mean().item()
    _, group = torch.unique(sample[eligible], return_inverse=True)
    smallest = torch.full((int(group.max()) + 1,), math.inf, dtype=needed.dtype, device=needed.device)
    return smallest.scatter_reduce(0, group, needed, "amin").double().mean().item()


def l2_distortion(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    return (x_adv - x).flatten(1).norm(p=2, dim=1)


def linf_distortion(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    return (x_adv - x).flatten(1).abs().amax(1)


def rms_distortion(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Szegedy et al. 2014's distortion (Tables 1-4): sqrt(sum((x' - x)^2) / n) per sample, n the number of pixels,
    which is the L2 distance over sqrt(n)."""
    diff = (x_adv - x).flatten(1)
    return diff.pow(2).sum(1).div(diff.shape[1]).sqrt()


DISTORTIONS = {"l0": l0_distortion, "l2": l2_distortion, "linf": linf_distortion, "rms": rms_distortion}


def random_other_targets(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A target class per sample, uniform over the classes other than its label."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator, device=generator.device)
    return (labels + shift.to(labels.device)) % num_classes


def attack_succeeded(logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Targeted: the model predicts the target. Untargeted: it predicts anything but the true label."""
    predicted = logits.argmax(1)
    return predicted == target if target is not None else predicted != labels


@dataclass(frozen=True)
class AttackResult:
    """One batch of adversarial examples.

    x_adv: (N, ...) in the input box; for a failed sample the attack's best effort (C&W: the original).
    success: bool (N,), judged by the model's own prediction on x_adv, never by the attack's bookkeeping.
    distortion: float (N,), x_adv against x in `norm`, for every sample (failed ones included: average it
    over `success` only, as the papers do).
    extras: further (N,) tensors an attack reports per sample, by name (L-BFGS: the constant c that produced
    x_adv and the iterations its search took); empty for most attacks. One mapping rather than a result type per
    attack, so that batching and saving treat every attack alike.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    distortion: torch.Tensor
    norm: str
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return self.success.float().mean().item() if len(self.success) else float("nan")

    @property
    def mean_distortion(self) -> float:
        """Mean distortion over the successful samples (NaN when none succeeded)."""
        return self.distortion[self.success].mean().item() if self.success.any() else float("nan")


def concatenate(parts: Sequence[AttackResult]) -> AttackResult:
    """The results of consecutive batches of one attack as one result."""
    return AttackResult(x_adv=torch.cat([p.x_adv for p in parts]), success=torch.cat([p.success for p in parts]),
                        distortion=torch.cat([p.distortion for p in parts]), norm=parts[0].norm,
                        extras={k: torch.cat([p.extras[k] for p in parts]) for k in parts[0].extras})


class Attack(ABC):
    """The interface every attack follows (after foolbox's attacks/base.py): the hyper-parameters are named
    constructor arguments with the paper's defaults, and one `attack` call runs a whole batch. `norm` names the
    DISTORTIONS entry its results are measured in; tempered.attacks.registry builds one by config name."""

    norm: ClassVar[str]

    @abstractmethod
    def attack(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
               target: torch.Tensor | None = None) -> AttackResult:
        """x: (N, ...) inputs in the attack's box; labels: their (N,) true classes; target: (N,) classes to reach,
        or None for an untargeted attack (a targeted-only attack refuses None). The result comes from `finish`."""


@torch.no_grad()
def finish(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor,
           target: torch.Tensor | None, norm: str, found: torch.Tensor | None = None,
           extras: Mapping[str, torch.Tensor] | None = None) -> AttackResult:
    """Judge x_adv by the model (and by the attack's own `found` mask, when it keeps one) and measure it."""
    x_adv = x_adv.detach()
    success = attack_succeeded(model(x_adv), labels, target)
    if found is not None:
        success &= found
    return AttackResult(x_adv=x_adv, success=success, distortion=DISTORTIONS[norm](x, x_adv), norm=norm,
                        extras=dict(extras or {}))


def check_inputs(x: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None) -> None:
    if labels.shape != (len(x),) or (target is not None and target.shape != (len(x),)):
        raise ValueError(f"labels {tuple(labels.shape)} and target "
                         f"{None if target is None else tuple(target.shape)} must both be ({len(x)},)")
