import math

import pytest
import torch
import torch.nn.functional as F

from tempered.calibration.temperature_scaling import (
    bin_index,
    brier_score,
    calibration_metrics,
    confidence_and_correct,
    ece,
    fit_temperature,
    mce,
    nll,
    reliability_bins,
    scale_logits,
)


def logits_drawn_at(temperature: float, n: int = 20000, k: int = 10, seed: int = 0):
    """Logits z and labels y ~ softmax(z / T): the model is calibrated exactly at T."""
    g = torch.Generator().manual_seed(seed)
    z = 4.0 * torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z / temperature, dim=1), 1, generator=g).squeeze(1)
    return z, y


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_at(t_true):
    z, y = logits_drawn_at(t_true)
    assert fit_temperature(z, y) == pytest.approx(t_true, rel=0.03)


def test_fit_temperature_does_not_depend_on_the_starting_point_and_takes_float32():
    z, y = logits_drawn_at(2.5)
    a = fit_temperature(z.float(), y, init=1.5)
    b = fit_temperature(z, y, init=20.0)
    assert a == pytest.approx(b, rel=1e-4)


def test_temperature_scaling_leaves_the_argmax_and_accuracy_unchanged_and_lowers_nll_and_ece():
    z, y = logits_drawn_at(2.5)  # at T = 1 these logits are overconfident
    t = fit_temperature(z, y)
    assert torch.equal(torch.softmax(scale_logits(z, t), 1).argmax(1), z.argmax(1))
    before, after = calibration_metrics(z, y), calibration_metrics(z, y, temperature=t)
    assert after["accuracy"] == before["accuracy"]
    assert after["nll"] < before["nll"]
    assert after["ece"] < 0.02 < before["ece"]


def test_fit_temperature_refuses_data_without_errors():
    z = torch.eye(3) * 5.0
    with pytest.raises(ValueError, match="classified correctly"):
        fit_temperature(z, torch.arange(3))


def test_ece_of_a_perfectly_calibrated_sample_is_near_zero():
    g = torch.Generator().manual_seed(1)
    confidence = 0.1 + 0.9 * torch.rand(200_000, generator=g, dtype=torch.float64)
    correct = torch.rand(200_000, generator=g, dtype=torch.float64) < confidence
    assert ece(confidence, correct) < 0.005


def test_ece_and_mce_match_a_hand_computed_miscalibrated_example():
    # 15 bins of width 1/15. Dyadic values, so every step below is exact in float64.
    #   bin 11 (11/15, 12/15]: confidences 0.75, 0.78125 -> mean 0.765625; 1 of 2 correct -> gap 0.265625
    #   bin  3 ( 3/15,  4/15]: confidence 0.25 four times; 3 of 4 correct -> gap 0.5
    #   bin 14 (14/15, 1]:     confidence 1.0 twice; both correct -> gap 0
    confidence = torch.tensor([0.75, 0.78125, 0.25, 0.25, 0.25, 0.25, 1.0, 1.0])
    correct = torch.tensor([True, False, True, True, True, False, True, True])
    expected_ece = (2 * 0.265625 + 4 * 0.5 + 2 * 0.0) / 8
    assert ece(confidence, correct) == expected_ece == 0.31640625
    assert mce(confidence, correct) == 0.5
    bins = reliability_bins(confidence, correct)
    assert bins.count.tolist() == [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 2]
    assert bins.mean_confidence[11].item() == 0.765625
    assert bins.accuracy[3].item() == 0.75
    assert torch.isnan(bins.accuracy[0])


def naive_ece(confidence, correct, n_bins=15):
    """The [lo, hi) binning this module must not reproduce: it loses confidences of exactly 1.0."""
    total = torch.zeros((), dtype=torch.float64)
    for m in range(n_bins):
        in_bin = (confidence >= m / n_bins) & (confidence < (m + 1) / n_bins)
        if in_bin.any():
            gap = (correct[in_bin].double().mean() - confidence[in_bin].double().mean()).abs()
            total += gap * in_bin.double().mean()
    return total.item()


def test_a_confidence_of_exactly_one_is_counted_in_the_last_bin():
    # Softmax in float32 saturates to exactly 1.0; an overconfident wrong answer there must cost ECE 1.
    confidence, correct = torch.tensor([1.0]), torch.tensor([False])
    assert reliability_bins(confidence, correct).count[-1].item() == 1
    assert ece(confidence, correct) == 1.0
    assert mce(confidence, correct) == 1.0
    assert naive_ece(confidence, correct) == 0.0  # the trap: the sample vanished


def test_bin_edges_are_half_open_on_the_left_and_zero_joins_the_first_bin():
    edges = torch.linspace(0.0, 1.0, 16, dtype=torch.float64)
    assert bin_index(edges).tolist() == [0] + list(range(15))
    assert bin_index(torch.tensor([0.0, 1e-9, 0.5, 0.999999, 1.0])).tolist() == [0, 0, 7, 14, 14]
    # 0.3 is the edge 3/10 in either precision, though float32(0.3) > float64(0.3).
    assert bin_index(torch.tensor([0.3], dtype=torch.float32), n_bins=10).tolist() == [2]
    assert bin_index(torch.tensor([0.3], dtype=torch.float64), n_bins=10).tolist() == [2]


def test_brier_score_and_nll_by_hand():
    probs = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1])
    # (0.5^2 + 0.5^2 + 0) + (1^2 + 1^2 + 0) over 2 samples
    assert brier_score(probs, labels) == pytest.approx((0.5 + 2.0) / 2, abs=1e-12)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    expected = -(math.log(math.exp(1.0) / (math.exp(1.0) + 1.0)) + math.log(math.exp(0.5) / (1.0 + math.exp(0.5))))
    assert nll(logits, torch.tensor([0, 1]), temperature=2.0) == pytest.approx(expected / 2, rel=1e-12)
    assert nll(logits, torch.tensor([0, 1])) == pytest.approx(F.cross_entropy(logits, torch.tensor([0, 1])).item())


def test_confidence_and_correct_and_the_metrics_row():
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    confidence, correct = confidence_and_correct(torch.softmax(logits, 1), labels)
    assert correct.tolist() == [True, True, False]
    assert confidence[0].item() == pytest.approx(1 / (1 + math.exp(-3.0)))
    row = calibration_metrics(logits, labels)
    assert row["accuracy"] == pytest.approx(2 / 3)
    assert row["n"] == 3 and row["temperature"] == 1.0
    assert set(row) == {"temperature", "accuracy", "ece", "mce", "brier", "nll", "n"}
