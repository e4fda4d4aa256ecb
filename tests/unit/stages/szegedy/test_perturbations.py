"""Szegedy et al. 2014's non-adversarial rows (tempered.stages.szegedy.perturbations): magnified perturbations and
Gaussian noise, measured in their distortion."""

import math

import pytest
import torch

from tempered.attacks.common import rms_distortion
from tempered.stages.szegedy.perturbations import gaussian_noise, magnify


def test_magnify_per_sample_scales_each_to_the_distortion_and_clips():
    g = torch.Generator().manual_seed(8)
    x = torch.full((3, 1, 28, 28), 0.5)
    x_adv = x + 0.001 * torch.randn(x.shape, generator=g)
    x_adv[2] = x[2]
    scaled = magnify(x, x_adv, 0.1, per="sample")
    torch.testing.assert_close(rms_distortion(x, scaled)[:2], torch.full((2,), 0.1))
    assert torch.equal(scaled[2], x[2]), "no perturbation, nothing to scale"
    # Direction kept: the scaled perturbation is a positive multiple of the original.
    cos = torch.nn.functional.cosine_similarity((scaled - x).flatten(1)[:2], (x_adv - x).flatten(1)[:2])
    torch.testing.assert_close(cos, torch.ones(2))
    clipped = magnify(x, x_adv, 2.0, per="sample")
    assert ((clipped >= 0) & (clipped <= 1)).all()
    assert (rms_distortion(x, clipped)[:2] < 2.0).all()


def test_magnify_per_set_grows_every_perturbation_by_one_factor():
    # Perturbations of distortion 0.002, 0.004 and 0.009 (mean 0.005), magnified to a set mean of 0.01: each
    # doubles, the largest to 0.018 instead of shrinking to 0.01 as per-sample scaling would (no pixel clipped).
    g = torch.Generator().manual_seed(3)
    x = torch.full((3, 1, 28, 28), 0.5)
    direction = torch.randn(x.shape, generator=g)
    direction /= rms_distortion(x, x + direction).view(-1, 1, 1, 1)
    sizes = torch.tensor([0.002, 0.004, 0.009])
    x_adv = x + sizes.view(-1, 1, 1, 1) * direction
    big = magnify(x, x_adv, 0.01)
    torch.testing.assert_close(rms_distortion(x, big), 2 * sizes)
    torch.testing.assert_close(rms_distortion(x, big).mean(), torch.tensor(0.01))
    assert torch.equal(magnify(x, x, 0.01), x), "no perturbation in the set, nothing to scale"
    with pytest.raises(ValueError, match="per must be one of"):
        magnify(x, x_adv, 0.1, per="pixel")


def test_magnify_per_set_keeps_a_linear_models_own_examples_adversarial():
    # A linear model that says "fooled" when pixel 0 exceeds 0.505. Two digits at 0.5 and 0.3, each pushed just
    # across (minimal perturbations of 0.006 and 0.21 in that pixel). Magnified to 1.5x their mean distortion:
    # one factor grows both and both stay across; scaled each to that distortion on its own, the far digit's
    # perturbation shrinks below its minimum and it is back on the clean side (the paper's own-model column: 100%).
    x = torch.zeros(2, 1, 28, 28)
    x.view(2, -1)[:, 0] = torch.tensor([0.5, 0.3])
    x_adv = x.clone()
    x_adv.view(2, -1)[:, 0] += torch.tensor([0.006, 0.21])

    def fooled(images):
        return images.view(2, -1)[:, 0] > 0.505

    assert fooled(x_adv).all()
    target = 1.5 * rms_distortion(x, x_adv).mean().item()
    assert fooled(magnify(x, x_adv, target, per="set")).all()
    assert fooled(magnify(x, x_adv, target, per="sample")).tolist() == [True, False]


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
