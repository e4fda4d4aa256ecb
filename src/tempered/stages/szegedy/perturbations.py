"""The non-adversarial rows of Szegedy et al. 2014's Tables 2 and 4: Gaussian noise of a given sigma, and
adversarial perturbations magnified to a given distortion. Distortion is theirs (attacks.common.rms_distortion)."""

from __future__ import annotations

import torch

from tempered.attacks.common import rms_distortion

MAGNIFY_SCALINGS = ("set", "sample")


def magnify(x: torch.Tensor, x_adv: torch.Tensor, target_distortion: float, per: str = "set") -> torch.Tensor:
    """Scale the perturbations x_adv - x so their distortion is target_distortion (Table 4, "magnified to 0.1"),
    then clip to [0, 1].

    per="set" (the paper's, by its own diagonal): one factor for the whole set, so the set's mean distortion is the
    target and every perturbation is scaled by the same factor; magnifying (a factor above 1), each model's own
    examples stay adversarial, as Table 4's 100% for all three says. per="sample": each perturbation scaled to
    the target on its own, which shrinks those above it below the minimal distortion the attack found (measured at
    quick: own error 0.93 / 0.95 / 0.915 instead of 1). The clip can only shorten a perturbation, so the result's
    distortion is at most what was asked; measure it with `rms_distortion` when reporting. Unperturbed samples stay
    as they are.
    """
    if per not in MAGNIFY_SCALINGS:
        raise ValueError(f"magnify: per must be one of {MAGNIFY_SCALINGS}, got {per!r}")
    current = rms_distortion(x, x_adv)
    tiny = torch.finfo(current.dtype).tiny
    if per == "set":
        mean = current.mean()
        scale = torch.where(mean > 0, target_distortion / mean.clamp_min(tiny), 0.0).expand_as(current)
    else:
        scale = torch.where(current > 0, target_distortion / current.clamp_min(tiny), 0.0)
    scale = scale.view(-1, *([1] * (x.dim() - 1)))
    return (x + scale * (x_adv - x)).clamp(0.0, 1.0)


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator, clip: bool = False) -> torch.Tensor:
    """x plus N(0, sigma^2) noise per pixel: the Gaussian rows of Tables 2 and 4.

    The paper does not clip: its tables give each row's distortion as exactly sigma, which only unclipped noise
    has (its expected distortion is sigma). Clipping to [0, 1] halves the noise on MNIST's black background
    (~80% of the pixels are 0, and only their positive draws survive), so a clipped row is a different,
    weaker and brighter, perturbation: clip=True gives it, for comparison.
    """
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    noisy = x + sigma * noise
    return noisy.clamp(0.0, 1.0) if clip else noisy
