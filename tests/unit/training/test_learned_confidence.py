import math

import pytest
import torch
import torch.nn.functional as F

from tempered.models.confidence_cnn import ConfidenceCNN
from tempered.models.papernot_cnn import PapernotCNN
from tempered.training.learned_confidence import (
    BUDGET,
    LAMBDA_INIT,
    confidence_loss,
    hint_mask,
    update_lambda,
)


def test_confidence_cnn_outputs_logits_and_a_confidence_in_the_open_unit_interval():
    torch.manual_seed(0)
    model = ConfidenceCNN().eval()
    logits, c = model(torch.rand(5, 1, 28, 28))
    assert logits.shape == (5, 10)
    assert c.shape == (5,)
    assert ((c > 0) & (c < 1)).all()


def test_confidence_cnn_is_the_papernot_cnn_plus_one_linear_head():
    model, base = ConfidenceCNN(), PapernotCNN()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in base.parameters()) + 200 + 1
    # Same parameter names: a PapernotCNN checkpoint loads into the classifier part.
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert sorted(missing) == ["confidence.bias", "confidence.weight"] and not unexpected
    base.eval()
    model.eval()
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(model(x)[0], base(x))


def test_loss_matches_a_hand_checked_batch():
    # Three samples, three classes; logits = log p so that softmax(logits) = p exactly.
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5]], dtype=torch.float64)
    labels = torch.tensor([0, 2, 2])
    c = torch.tensor([0.8, 0.5, 0.9], dtype=torch.float64)
    hints = torch.tensor([True, True, False])
    loss = confidence_loss(torch.log(p), c, labels, lmbda=0.1, hints=hints)
    # p'_y = c p_y + (1 - c) on hinted samples, p_y on the other one:
    #   sample 0: 0.8 * 0.7 + 0.2 = 0.76;  sample 1: 0.5 * 0.3 + 0.5 = 0.65;  sample 2 (no hints): 0.5
    expected_task = -(math.log(0.76) + math.log(0.65) + math.log(0.5)) / 3
    # L_c averages -log c over all three samples, hinted or not.
    expected_conf = -(math.log(0.8) + math.log(0.5) + math.log(0.9)) / 3
    assert loss.task.item() == pytest.approx(expected_task, rel=1e-12)
    assert loss.confidence.item() == pytest.approx(expected_conf, rel=1e-12)
    assert loss.total.item() == pytest.approx(expected_task + 0.1 * expected_conf, rel=1e-12)
    # L_c = (0.2231 + 0.6931 + 0.1054) / 3 = 0.3405 > 0.3: confidence is too expensive to skip, lambda rises.
    assert expected_conf > BUDGET
    assert update_lambda(0.1, loss.confidence.item()) == pytest.approx(0.1 / 0.99, rel=1e-15)


def test_without_hints_the_task_loss_is_plain_cross_entropy():
    torch.manual_seed(1)
    logits, labels = torch.randn(8, 10, dtype=torch.float64), torch.randint(0, 10, (8,))
    c = torch.rand(8, dtype=torch.float64)
    none = confidence_loss(logits, c, labels, lmbda=LAMBDA_INIT, hints=torch.zeros(8, dtype=torch.bool))
    assert none.task.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-9)
    # c = 1 everywhere: hints change nothing, and asking for none costs nothing.
    ones = confidence_loss(logits, torch.ones(8, dtype=torch.float64), labels, lmbda=LAMBDA_INIT,
                           hints=torch.ones(8, dtype=torch.bool))
    assert ones.task.item() == pytest.approx(none.task.item(), rel=1e-9)
    assert ones.confidence.item() == pytest.approx(0.0, abs=1e-9)


def test_clamping_keeps_the_loss_finite_at_saturated_outputs():
    logits = torch.tensor([[100.0, -100.0], [-100.0, 100.0]])  # p saturates to exactly 0 and 1 in float32
    c = torch.tensor([0.0, 1.0])
    loss = confidence_loss(logits, c, torch.tensor([1, 1]), lmbda=0.1, hints=torch.tensor([False, True]))
    assert torch.isfinite(loss.total)
    assert loss.confidence.item() == pytest.approx(-math.log(1e-12) / 2, rel=1e-5)


@pytest.mark.parametrize(("lc", "direction"), [(0.5, "up"), (0.3, "up"), (0.2999, "down"), (0.0, "down")])
def test_lambda_moves_up_when_confidence_loss_exceeds_the_budget(lc, direction):
    new = update_lambda(0.1, lc)
    if direction == "up":  # L_c >= beta: lambda / 0.99
        assert new == 0.1 / 0.99 and new > 0.1
    else:  # L_c < beta: lambda / 1.01
        assert new == 0.1 / 1.01 and new < 0.1
    assert update_lambda(0.1, 0.35, budget=0.4) == 0.1 / 1.01


def test_hint_mask_is_a_seeded_fair_coin():
    a = hint_mask(10_000, torch.Generator().manual_seed(0))
    b = hint_mask(10_000, torch.Generator().manual_seed(0))
    assert a.dtype == torch.bool and torch.equal(a, b)
    assert abs(a.float().mean().item() - 0.5) < 0.02


def test_one_training_step_reaches_the_confidence_branch():
    torch.manual_seed(0)
    model = ConfidenceCNN(dropout=0.0)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    logits, c = model(x)
    loss = confidence_loss(logits, c, y, lmbda=LAMBDA_INIT, hints=hint_mask(16, torch.Generator().manual_seed(0)))
    loss.total.backward()
    assert model.confidence.weight.grad.abs().sum() > 0
    assert model.features[0].weight.grad.abs().sum() > 0
