"""What the minibatch methods minimise, one Objective (tempered.training.loop) each.

Each objective holds its training tensors on the device and keeps the epoch's sums in the arithmetic its method
always used: cross-entropy and the autoencoder sum on the device (no sync per step), learned confidence in Python
floats (lambda needs each step's L_c on the host anyway). Changing either changes the histories' last digits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tempered.models.szegedy import SparseAutoencoder
from tempered.training.learned_confidence import confidence_loss, hint_mask, update_lambda
from tempered.training.loop import on_device

Perturbation = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class CrossEntropyAtT:
    """Cross-entropy of softmax(z/T) plus the model's weight penalty, on hard labels or a teacher's soft targets.

    Papernot et al. 2016, section IV: training at temperature T minimises cross-entropy of softmax(z/T); the model
    is deployed at T=1. With soft_targets (a distillation student, section IV.B) the loss is the cross-entropy
    between the teacher's probabilities at T and softmax(z/T); y still gives train accuracy. With perturb (Madry
    PGD batches, tempered.training.madry_pgd) every minibatch is replaced by perturb(model, x, y) before the step;
    train_loss and train_accuracy are then measured on the perturbed inputs. Szegedy et al. 2014's per-layer
    decay (lambda / 2 * sum(p^2), tempered.models.szegedy) is added where the model defines `weight_penalty`.
    """

    loss_key = "train_loss"

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, temperature: float,
                 device: torch.device, channels_last: bool = False, soft_targets: torch.Tensor | None = None,
                 perturb: Perturbation | None = None):
        if soft_targets is not None and soft_targets.shape != (len(y), 10):
            raise ValueError(f"soft_targets has shape {tuple(soft_targets.shape)}, expected ({len(y)}, 10)")
        self.x, self.y = on_device(x, device, channels_last), y.to(device)
        self.targets = soft_targets.to(device) if soft_targets is not None else self.y
        self.temperature, self.perturb, self.device = temperature, perturb, device
        self.penalty = getattr(model, "weight_penalty", None)

    def start_epoch(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)

    def batch_loss(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        inputs = self.x[idx] if self.perturb is None else self.perturb(model, self.x[idx], self.y[idx])
        logits = model(inputs)
        loss = F.cross_entropy(logits / self.temperature, self.targets[idx])
        if self.penalty is not None:
            loss = loss + self.penalty()
        self.loss_sum += loss.detach() * len(idx)
        self.correct += (logits.detach().argmax(1) == self.y[idx]).sum()
        return loss

    def epoch_row(self, n: int) -> dict[str, float]:
        return {"train_loss": self.loss_sum.item() / n, "train_accuracy": self.correct.item() / n}


class LearnedConfidence:
    """DeVries & Taylor 2018, section 2 (arXiv 1802.04865): L = L_t + lambda L_c (tempered.training.learned_confidence),
    with hints on a Bernoulli(0.5) half of each batch and lambda steered after every step toward the budget beta
    (uoguelph-mlrg/confidence_estimation, train.py). The model returns (logits, c), e.g.
    tempered.models.confidence_cnn.ConfidenceCNN; logits are divided by T before the softmax.

    The hint mask is drawn from `generator` (the training generator, after the epoch's order), so a run is
    repeatable. lambda is a Python float updated from each step's L_c, as in the reference code; that costs one
    device sync per step. A row reports the losses, lambda after the epoch, the mean c and train accuracy.
    """

    loss_key = "train_loss"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, lambda_init: float, budget: float, temperature: float,
                 generator: torch.Generator, device: torch.device, channels_last: bool = False):
        self.x, self.y = on_device(x, device, channels_last), y.to(device)
        self.lmbda, self.budget, self.temperature = float(lambda_init), budget, temperature
        self.generator, self.device = generator, device

    def start_epoch(self) -> None:
        self.sums = {"total": 0.0, "task": 0.0, "confidence": 0.0, "c": 0.0}
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)

    def batch_loss(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        hints = hint_mask(len(idx), generator=self.generator, device=self.device)
        logits, c = model(self.x[idx])
        loss = confidence_loss(logits / self.temperature, c, self.y[idx], self.lmbda, hints)
        l_c = loss.confidence.item()
        self.lmbda = update_lambda(self.lmbda, l_c, self.budget)  # this step's loss keeps the lambda before it
        self.sums["total"] += loss.total.item() * len(idx)
        self.sums["task"] += loss.task.item() * len(idx)
        self.sums["confidence"] += l_c * len(idx)
        self.sums["c"] += c.detach().sum().item()
        self.correct += (logits.detach().argmax(1) == self.y[idx]).sum()
        return loss.total

    def epoch_row(self, n: int) -> dict[str, float]:
        return {"train_loss": self.sums["total"] / n, "train_task_loss": self.sums["task"] / n,
                "train_confidence_loss": self.sums["confidence"] / n, "lambda": self.lmbda,
                "mean_confidence": self.sums["c"] / n, "train_accuracy": self.correct.item() / n}


def sparse_autoencoder_loss(autoencoder: SparseAutoencoder, x: torch.Tensor, *, sparsity_target: float = 0.05,
                            sparsity_weight: float = 3.0, weight_decay: float = 3e-3) -> dict[str, torch.Tensor]:
    """The sparse-autoencoder objective J of Ng's CS294A notes on one batch, with its three terms ("loss" is
    their sum):

        J = 1/2 mean_batch sum_pixels (x_hat - x)^2 + beta * sum_j KL(rho || rho_hat_j) + lambda/2 (|W1|^2 + |W2|^2)

    squared reconstruction error, a KL penalty that pulls each hidden unit's mean activation over the batch
    towards a small target rho, and L2 decay on both weight matrices.
    """
    code, reconstruction = autoencoder(x)
    recon = 0.5 * (reconstruction - x.flatten(1)).pow(2).sum(1).mean()
    # Clamped so that a dead or saturated unit gives a large finite penalty rather than inf.
    rho_hat = code.mean(0).clamp(1e-6, 1 - 1e-6)
    rho = sparsity_target
    kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    decay = 0.5 * weight_decay * (autoencoder.encoder.weight.pow(2).sum() + autoencoder.decoder.weight.pow(2).sum())
    return {"loss": recon + sparsity_weight * kl + decay, "reconstruction": recon, "sparsity": kl, "decay": decay}


class SparseAutoencoderObjective:
    """J (sparse_autoencoder_loss) on minibatches of unlabelled images; a row holds the mean of each term."""

    loss_key = "loss"

    def __init__(self, x: torch.Tensor, *, device: torch.device, sparsity_target: float, sparsity_weight: float,
                 weight_decay: float):
        self.x, self.device = x.to(device), device
        self.settings = {"sparsity_target": sparsity_target, "sparsity_weight": sparsity_weight,
                         "weight_decay": weight_decay}

    def start_epoch(self) -> None:
        self.sums = {key: torch.zeros((), device=self.device)
                     for key in ("loss", "reconstruction", "sparsity", "decay")}

    def batch_loss(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        terms = sparse_autoencoder_loss(model, self.x[idx], **self.settings)
        for key, value in terms.items():
            self.sums[key] += value.detach() * len(idx)
        return terms["loss"]

    def epoch_row(self, n: int) -> dict[str, float]:
        return {key: value.item() / n for key, value in self.sums.items()}
