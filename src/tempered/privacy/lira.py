"""The likelihood-ratio attack (Carlini et al. 2022, "Membership inference attacks from first principles").

Each sample's logit-scaled true-class confidence phi = log(p_y / (1 - p_y)) is close to Gaussian across
models trained with or without it. Shadow models give, per sample, the OUT distribution (models that never
saw it) and, online, the IN one. Offline score: how far the target's phi lies above the OUT Gaussian (the
one-sided test of the paper's offline variant); online: the log likelihood ratio IN vs OUT.
"""

from __future__ import annotations

import numpy as np
import torch

# With few shadow models a per-sample variance is noisy; the paper then uses one variance for all samples.
MIN_SHADOWS_FOR_PER_SAMPLE_VARIANCE = 64


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """phi = log p_y - log(1 - p_y), computed as z_y - logsumexp_{j != y} z_j (stable where p_y -> 1)."""
    z = logits.double()
    z_y = z.gather(1, labels[:, None]).squeeze(1)
    others = z.scatter(1, labels[:, None], float("-inf"))
    return z_y - torch.logsumexp(others, dim=1)


def _gaussian(phis: np.ndarray, global_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample mean and standard deviation over shadow models (axis 0 = shadows)."""
    mean = phis.mean(axis=0)
    if global_variance or phis.shape[0] < 2:
        std = np.full_like(mean, phis.std() if phis.size > 1 else 1.0)
    else:
        std = phis.std(axis=0, ddof=1)
    return mean, np.maximum(std, 1e-6)


def _use_global(n_shadows: int, global_variance: bool | None) -> bool:
    return n_shadows < MIN_SHADOWS_FOR_PER_SAMPLE_VARIANCE if global_variance is None else global_variance


def offline_scores(target_phi: np.ndarray, out_phis: np.ndarray, global_variance: bool | None = None) -> np.ndarray:
    """(phi - mu_out) / sigma_out per sample: monotone in the one-sided p-value, higher = more likely member.
    out_phis: (shadows, samples), every shadow OUT for every sample."""
    mean, std = _gaussian(np.asarray(out_phis, dtype=np.float64), _use_global(len(out_phis), global_variance))
    return (np.asarray(target_phi, dtype=np.float64) - mean) / std


def _log_normal(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


def online_scores(target_phi: np.ndarray, in_phis: np.ndarray, out_phis: np.ndarray,
                  global_variance: bool | None = None) -> np.ndarray:
    """log N(phi; mu_in, sigma_in) - log N(phi; mu_out, sigma_out) per sample."""
    use_global = _use_global(min(len(in_phis), len(out_phis)), global_variance)
    mu_in, sd_in = _gaussian(np.asarray(in_phis, dtype=np.float64), use_global)
    mu_out, sd_out = _gaussian(np.asarray(out_phis, dtype=np.float64), use_global)
    x = np.asarray(target_phi, dtype=np.float64)
    return _log_normal(x, mu_in, sd_in) - _log_normal(x, mu_out, sd_out)
