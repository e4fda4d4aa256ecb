"""The likelihood-ratio attack (Carlini et al. 2022, "Membership inference attacks from first principles").

Each sample's logit-scaled true-class confidence phi = log(p_y / (1 - p_y)) is close to Gaussian across
models trained with or without it. Shadow models give, per sample, the OUT distribution (models that never
saw it) and, online, the IN one (models that trained on it). Offline score: how far the target's phi lies above
the OUT Gaussian (the one-sided test of the paper's offline variant); online: the log likelihood ratio IN vs OUT.

Which shadows are IN for which sample is a mask (shadows x samples): each shadow trains on its own share of the
candidates (tempered.privacy.roles), so every sample has its own IN and OUT shadows.
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


def _gaussian(phis: np.ndarray, mask: np.ndarray, global_variance: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample mean and standard deviation over the shadows `mask` selects for each sample (axis 0 = shadows).
    One deviation for all samples (over every selected value, the paper's fixed variance) with global_variance,
    or by default when a sample has fewer than MIN_SHADOWS_FOR_PER_SAMPLE_VARIANCE shadows (or only one)."""
    counts = mask.sum(axis=0)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} of {len(counts)} samples have no shadow model on this side "
                         "of the test (IN or OUT): more shadows are needed")
    mean = np.where(mask, phis, 0.0).sum(axis=0) / counts
    if global_variance is None:
        global_variance = counts.min() < MIN_SHADOWS_FOR_PER_SAMPLE_VARIANCE
    if global_variance or counts.min() < 2:
        selected = phis[mask]
        std = np.full_like(mean, selected.std() if selected.size > 1 else 1.0)
    else:
        std = np.sqrt(np.where(mask, (phis - mean) ** 2, 0.0).sum(axis=0) / (counts - 1))
    return mean, np.maximum(std, 1e-6)


def _mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"IN mask of shape {mask.shape} for shadow confidences of shape {shape}")
    return mask


def offline_scores(target_phi: np.ndarray, phis: np.ndarray, global_variance: bool | None = None,
                   in_mask: np.ndarray | None = None) -> np.ndarray:
    """(phi - mu_out) / sigma_out per sample: monotone in the one-sided p-value, higher = more likely member.
    phis: (shadows, samples); a sample's OUT shadows are those in_mask leaves out (every shadow when None)."""
    phis = np.asarray(phis, dtype=np.float64)
    out_mask = np.ones(phis.shape, dtype=bool) if in_mask is None else ~_mask(in_mask, phis.shape)
    mean, std = _gaussian(phis, out_mask, global_variance)
    return (np.asarray(target_phi, dtype=np.float64) - mean) / std


def _log_normal(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


def online_scores(target_phi: np.ndarray, phis: np.ndarray, in_mask: np.ndarray,
                  global_variance: bool | None = None) -> np.ndarray:
    """log N(phi; mu_in, sigma_in) - log N(phi; mu_out, sigma_out) per sample; phis: (shadows, samples), in_mask
    True where the shadow trained on the sample. Where either side has fewer than
    MIN_SHADOWS_FOR_PER_SAMPLE_VARIANCE shadows, both use one variance (unless global_variance says otherwise)."""
    phis = np.asarray(phis, dtype=np.float64)
    in_mask = _mask(in_mask, phis.shape)
    if global_variance is None:
        fewest = min(in_mask.sum(axis=0).min(), (~in_mask).sum(axis=0).min())
        global_variance = fewest < MIN_SHADOWS_FOR_PER_SAMPLE_VARIANCE
    mu_in, sd_in = _gaussian(phis, in_mask, global_variance)
    mu_out, sd_out = _gaussian(phis, ~in_mask, global_variance)
    x = np.asarray(target_phi, dtype=np.float64)
    return _log_normal(x, mu_in, sd_in) - _log_normal(x, mu_out, sd_out)
