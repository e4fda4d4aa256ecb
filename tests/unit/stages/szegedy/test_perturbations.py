"""Szegedy et al. 2014's non-adversarial rows (tempered.stages.szegedy.perturbations): magnified perturbations and
Gaussian noise, measured in their distortion."""

import math

import pytest
import torch

from tempered.attacks.common import rms_distortion
from tempered.stages.szegedy.perturbations import gaussian_noise, magnify


def test_magnify_scales_to_the_distortion_and_clips():
    g = torch.Generator().manual_seed(8)
    x = torch.full((3, 1, 28, 28), 0.5)
    x_adv = x + 0.001 * torch.randn(x.shape, generator=g)
    x_adv[2] = x[2]
    scaled = magnify(x, x_adv, 0.1)
    torch.testing.assert_close(rms_distortion(x, scaled)[:2], torch.full((2,), 0.1))
    assert torch.equal(scaled[2], x[2]), "no perturbation, nothing to scale"
    # Direction kept: the scaled perturbation is a positive multiple of the original.
    cos = torch.nn.functional.cosine_similarity((scaled - x).flatten(1)[:2], (x_adv - x).flatten(1)[:2])
    torch.testing.assert_close(cos, torch.ones(2))
    clipped = magnify(x, x_adv, 2.0)
    assert ((clipped >= 0) & (clipped <= 1)).all()
    assert (rms_distortion(x, clipped)[:2] < 2.0).all()


def test_gaussian_noise_is_seeded_and_of_the_right_scale():
    x = torch.full((64, 1, 28, 28), 0.5)
    noisy = gaussian_noise(x, 0.1, torch.Generator().manual_seed(9))
    assert torch.equal(noisy, gaussian_noise(x, 0.1, torch.Generator().manual_seed(9)))
    assert math.isclose((noisy - x).std().item(), 0.1, rel_tol=0.02)


@pytest.mark.parametrize("sigma", [0.06, 0.1, 0.3])
def test_unclipped_gaussian_noise_has_distortion_sigma_as_the_paper_lists(sigma):
    # Tables 2 and 4 give a Gaussian row's distortion as sigma, on MNIST's mostly black digits.
    x = torch.zeros(256, 1, 28, 28)
    x[:, :, 8:20, 10:18] = 1.0
    noisy = gaussian_noise(x, sigma, torch.Generator().manual_seed(9))
    assert math.isclose(rms_distortion(x, noisy).mean().item(), sigma, rel_tol=0.01)


def test_clipped_gaussian_noise_stays_in_the_box_and_measures_less_than_sigma():
    x = torch.zeros(64, 1, 28, 28)
    clipped = gaussian_noise(x, 0.3, torch.Generator().manual_seed(9), clip=True)
    assert clipped.min() == 0 and clipped.max() <= 1
    # On black pixels only the positive half of N(0, sigma^2) survives: distortion sigma / sqrt(2).
    assert math.isclose(rms_distortion(x, clipped).mean().item(), 0.3 / math.sqrt(2), rel_tol=0.02)
