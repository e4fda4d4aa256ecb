"""Unsupervised pre-training of the sparse autoencoder under AE400-10 (Szegedy et al. 2014, section 4.3, Table 1).

The paper says only "a single layer sparse autoencoder with sigmoid activations and 400 nodes". We use the
standard sparse autoencoder of Ng's CS294A notes: squared reconstruction error, a KL penalty that pulls each
hidden unit's mean activation over a batch towards a small target rho, and L2 decay on both weight matrices:

    J = 1/2 mean_batch sum_pixels (x_hat - x)^2 + beta * sum_j KL(rho || rho_hat_j) + lambda/2 (|W1|^2 + |W2|^2)

Adam on minibatches replaces the notes' full-batch L-BFGS: the same objective, minutes less on 60k images.
Like tempered.training, the whole image set is one in-memory tensor and batches are index slices.
"""

from __future__ import annotations

import logging

import torch
from tqdm import tqdm

from tempered.models.szegedy import SparseAutoencoder

log = logging.getLogger(__name__)


def sparse_autoencoder_loss(autoencoder: SparseAutoencoder, x: torch.Tensor, *, sparsity_target: float = 0.05,
                            sparsity_weight: float = 3.0, weight_decay: float = 3e-3) -> dict[str, torch.Tensor]:
    """The objective J above on one batch, with its three terms ("loss" is their sum)."""
    code, reconstruction = autoencoder(x)
    recon = 0.5 * (reconstruction - x.flatten(1)).pow(2).sum(1).mean()
    # Clamped so that a dead or saturated unit gives a large finite penalty rather than inf.
    rho_hat = code.mean(0).clamp(1e-6, 1 - 1e-6)
    rho = sparsity_target
    kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    decay = 0.5 * weight_decay * (autoencoder.encoder.weight.pow(2).sum() + autoencoder.decoder.weight.pow(2).sum())
    return {"loss": recon + sparsity_weight * kl + decay, "reconstruction": recon, "sparsity": kl, "decay": decay}


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
) -> list[dict[str, float]]:
    """Adam on J over shuffled minibatches of x (N, 1, 28, 28); returns one row of mean terms per epoch.

    Trains the autoencoder in place even when it sits frozen inside an AutoencoderClassifier: gradients are
    switched on for the duration and the requires_grad flags restored afterwards.
    """
    flags = [p.requires_grad for p in autoencoder.parameters()]
    autoencoder.requires_grad_(True)
    autoencoder.to(device).train()
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr)
    x_dev = x.to(device)
    n = len(x_dev)
    history = []
    try:
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=generator).to(device)
            sums = {key: torch.zeros((), device=device) for key in ("loss", "reconstruction", "sparsity", "decay")}
            batches = tqdm(range(0, n, batch_size), desc=f"autoencoder epoch {epoch}/{epochs}", unit="batch",
                           leave=False, mininterval=2.0)
            for start in batches:
                idx = order[start:start + batch_size]
                terms = sparse_autoencoder_loss(autoencoder, x_dev[idx], sparsity_target=sparsity_target,
                                                sparsity_weight=sparsity_weight, weight_decay=weight_decay)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                for key, value in terms.items():
                    sums[key] += value.detach() * len(idx)
            row = {"epoch": epoch, **{key: value.item() / n for key, value in sums.items()}}
            if not torch.isfinite(torch.tensor(row["loss"])):
                raise FloatingPointError(f"autoencoder pre-training diverged at epoch {epoch}: {row}")
            history.append(row)
            log.info("autoencoder epoch %d/%d: %s", epoch, epochs,
                     ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"))
    finally:
        for p, flag in zip(autoencoder.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    autoencoder.eval()
    return history

