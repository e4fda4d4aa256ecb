"""Papernot et al. 2016's adversarial robustness (fraction of features JSMA needs), on hand-made attempts."""

import math

import pytest
import torch

from tempered.attacks.common import AttackResult, adversarial_robustness
from tempered.attacks.jsma import JSMA
from tempered.stages.attacks.steps import attack_summary

CAP = 112 / 784  # JSMA at gamma=14.5% on MNIST changes at most 56 pairs


def test_the_cap_is_the_most_jsma_changes():
    assert JSMA(gamma=0.145).max_fraction(784) == CAP


def test_failures_count_at_the_cap_and_ineligible_attempts_are_left_out():
    # Four attempts, each its own sample: two successes (1% and 2% of the features), one failure that changed 10%
    # before it stopped, and one on a sample the model already got wrong (a "success" at 0 features, not measured).
    fraction = torch.tensor([0.01, 0.10, 0.0, 0.02])
    success = torch.tensor([True, False, True, True])
    eligible = torch.tensor([True, True, False, True])
    assert adversarial_robustness(fraction, success, eligible, CAP) == pytest.approx((0.01 + CAP + 0.02) / 3)


def test_each_sample_counts_once_at_its_easiest_target():
    # Sample 0: targets needing 3% and 1% and one failure -> 1%. Sample 1: every target fails -> the cap.
    # Sample 2: misclassified before the attack -> left out, whatever its attempts say.
    fraction = torch.tensor([0.03, 0.01, 0.10, 0.10, 0.05, 0.0, 0.0])
    success = torch.tensor([True, True, False, False, False, True, True])
    sample = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    eligible = sample != 2
    assert adversarial_robustness(fraction, success, eligible, CAP, sample) == pytest.approx((0.01 + CAP) / 2)


def test_one_zero_feature_success_cannot_make_a_defended_model_look_fragile():
    # A distilled model: 99 failures (stopped at 0 features, no gradient) and one sample it misclassified anyway.
    fraction = torch.zeros(100)
    success = torch.zeros(100, dtype=torch.bool)
    success[0] = True
    eligible = ~success
    assert adversarial_robustness(fraction, success, eligible, CAP) == pytest.approx(CAP)
    assert fraction[success].mean().item() == 0.0  # what the mean over successes alone would have said


def test_nothing_eligible_is_nan():
    assert math.isnan(adversarial_robustness(torch.ones(2), torch.ones(2, dtype=torch.bool),
                                             torch.zeros(2, dtype=torch.bool), CAP))


def test_attack_summary_reports_the_robustness_of_an_l0_attack():
    x = torch.zeros(4, 1, 2, 5)  # 10 features; attempts 0-1 on sample 0, 2-3 on sample 1
    x_adv = x.clone()
    x_adv.view(4, -1)[0, :1] = 1.0  # success, 10% of the features
    x_adv.view(4, -1)[1, :3] = 1.0  # failure: counts at the cap whatever it changed
    x_adv.view(4, -1)[3, :2] = 1.0  # failure
    result = AttackResult(x_adv=x_adv, success=torch.tensor([True, False, False, False]),
                          distortion=torch.tensor([1.0, 3.0, 0.0, 2.0]), norm="l0")
    clean_correct = torch.ones(4, dtype=torch.bool)
    sample = torch.tensor([0, 0, 1, 1])
    summary = attack_summary(result, x, clean_correct, robustness_cap=0.5, sample=sample)
    assert summary["robustness_features_fraction"] == pytest.approx((0.1 + 0.5) / 2)
    assert "robustness_features_fraction" not in attack_summary(result, x, clean_correct)
