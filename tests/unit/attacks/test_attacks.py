"""Attacks against known answers (linear models, where the optimum is closed-form) and invariants (on a small
MLP trained on synthetic digit-like data, so that no test depends on a download)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tempered.attacks.common import l0_distortion, l0_fraction, l2_distortion, linf_distortion
from tempered.attacks.cw_l2 import CarliniWagnerL2, RowAdam
from tempered.attacks.fgsm import FGSM
from tempered.attacks.jsma import JSMA
from tempered.attacks.pgd import PGD

D = 784


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a second intra-op thread only adds contention on a shared 2-core machine
    (measured: the file ran 4x slower with 2 threads under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_model(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    layer = nn.Linear(weight.shape[1], weight.shape[0]).to(weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return nn.Sequential(nn.Flatten(), layer).eval()


class Scaled(nn.Module):
    """Logits times k: what training at temperature k does to the deployed logits (C&W 2017, section VIII)."""

    def __init__(self, model: nn.Module, k: float):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return self.model(x) * self.k


def synthetic_digits(n: int, generator: torch.Generator, prototypes: torch.Tensor):
    """Ten random sparse 'strokes' patterns, brightness-jittered, on a faint noisy background."""
    labels = torch.randint(0, 10, (n,), generator=generator)
    x = prototypes[labels] * (0.6 + 0.4 * torch.rand(n, D, generator=generator))
    x = x + 0.15 * torch.rand(n, D, generator=generator)
    return x.clamp(0, 1).view(n, 1, 28, 28), labels


def train_synthetic_mlp(n_train: int, steps: int, generator: torch.Generator) -> tuple[nn.Module, torch.Tensor]:
    """A 784-32-10 ReLU MLP trained by Adam on synthetic digits; returns it (eval mode, no grads) and the
    prototypes, so that held-out samples come from the same classes."""
    prototypes = (torch.rand(10, D, generator=generator) < 0.15).float()
    x, y = synthetic_digits(n_train, generator, prototypes)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=generator)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    return model, prototypes


@pytest.fixture(scope="module")
def trained():
    """A 784-32-10 ReLU MLP trained to ~100% on synthetic data, with 8 held-out samples and their targets."""
    generator = torch.Generator().manual_seed(0)
    model, prototypes = train_synthetic_mlp(2000, 150, generator)
    x_test, y_test = synthetic_digits(8, generator, prototypes)
    with torch.no_grad():
        assert (model(x_test).argmax(1) == y_test).all(), "the fixture model must classify its test samples"
    return model, x_test, y_test, (y_test + 1) % 10


def test_distortion_norms_on_known_values():
    x = torch.zeros(2, 1, 2, 2)
    x_adv = torch.tensor([[0.0, 0.3, 0.0, -0.4], [0.0, 0.0, 0.0, 0.0]]).view(2, 1, 2, 2)
    torch.testing.assert_close(l0_distortion(x, x_adv), torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(l0_fraction(x, x_adv), torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(l2_distortion(x, x_adv), torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(linf_distortion(x, x_adv), torch.tensor([0.4, 0.0]))


# ---- FGSM and PGD --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_equals_its_closed_form_on_a_linear_softmax_model(targeted):
    # For z = Wx + b, d CE(z, y) / dx = W^T (softmax(z) - onehot(y)); float64 keeps every sign exact.
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(10, D, generator=generator, dtype=torch.float64)
    bias = torch.randn(10, generator=generator, dtype=torch.float64)
    model = linear_model(weight, bias)
    x = torch.rand(6, 1, 28, 28, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 10, (6,), generator=generator)
    target = (labels + 3) % 10 if targeted else None
    eps = 0.1

    probs = torch.softmax(x.flatten(1) @ weight.T + bias, 1)
    aimed = target if targeted else labels
    grad = (probs - F.one_hot(aimed, 10).double()) @ weight
    direction = -grad.sign() if targeted else grad.sign()
    expected = (x.flatten(1) + eps * direction).clamp(0, 1).view_as(x)

    result = FGSM(eps=eps).attack(model, x, labels, target)
    torch.testing.assert_close(result.x_adv, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(result.distortion, linf_distortion(x, expected))
    predicted = model(expected).argmax(1)
    assert torch.equal(result.success, predicted == target if targeted else predicted != labels)


def test_pgd_with_one_full_step_and_no_random_start_is_fgsm(trained):
    model, x, labels, target = trained
    for aim in (None, target):
        fgsm = FGSM(eps=0.2).attack(model, x, labels, aim)
        pgd = PGD(eps=0.2, alpha=0.2, steps=1, random_start=False).attack(model, x, labels, aim)
        torch.testing.assert_close(pgd.x_adv, fgsm.x_adv)
        assert torch.equal(pgd.success, fgsm.success)


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_stays_in_the_eps_ball_and_the_box(trained, targeted):
    model, x, labels, target = trained
    eps = 0.15
    result = PGD(eps=eps, alpha=0.05, steps=10).attack(model, x, labels, target if targeted else None)
    assert (result.x_adv - x).abs().max() <= eps + 1e-6
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    assert (result.distortion <= eps + 1e-6).all()
    # The random start and the steps do move the input: not a no-op that trivially satisfies the bound.
    assert result.distortion.min() > eps / 2


def test_pgd_is_at_least_as_successful_as_fgsm(trained):
    model, x, labels, _ = trained
    eps = 0.2
    fgsm = FGSM(eps=eps).attack(model, x, labels)
    pgd = PGD(eps=eps, alpha=eps / 10, steps=40).attack(model, x, labels)
    assert 0 < fgsm.success_rate < 1, "eps must leave FGSM room to be beaten on this model"
    assert pgd.success_rate >= fgsm.success_rate


def test_pgd_random_start_is_repeatable_by_seed(trained):
    model, x, labels, _ = trained
    first = PGD(eps=0.1, steps=3, seed=7).attack(model, x, labels)
    again = PGD(eps=0.1, steps=3, seed=7).attack(model, x, labels)
    other = PGD(eps=0.1, steps=3, seed=8).attack(model, x, labels)
    assert torch.equal(first.x_adv, again.x_adv)
    assert not torch.equal(first.x_adv, other.x_adv)


# ---- JSMA ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("theta", "saturated", "expected"), [
    (1.0, None, [10, 20]),
    (1.0, 10, [20, 30]),  # feature 10 already at the maximum: out of the search domain
    (-1.0, None, [10, 20]),  # the mirror image: derivatives negated, features decreased from 1 to 0
])
def test_jsma_picks_the_best_pair_where_no_single_feature_qualifies(theta, saturated, expected):
    # F = logits of a linear model: dF_t/dx_i = W[t, i] = a_i and sum_{j != t} dF_j/dx_i = W[0, i] = b_i.
    # Features 10, 20, 30 carry (a, b) = (5, 1), (-1, -5), (2.5, -2.5); every other feature has (0, 0).
    # Paired with a zero feature, 10 fails beta < 0, 20 fails alpha > 0, 30 scores 2.5 * 2.5 = 6.25.
    # Pairs: (10, 20) alpha 4, beta -4, score 16; (10, 30) 7.5 * 1.5 = 11.25; (20, 30) 1.5 * 7.5 = 11.25.
    # Best: (10, 20), two features a per-feature saliency map would never choose. (30, 30) would score 25:
    # a pair is two distinct features. Without feature 10, the best is (20, 30).
    weight = torch.zeros(10, D)
    weight[1, [10, 20, 30]] = torch.tensor([5.0, -1.0, 2.5]) * theta
    weight[0, [10, 20, 30]] = torch.tensor([1.0, -5.0, -2.5]) * theta
    bias = torch.zeros(10)
    bias[0] = 1000.0  # class 0 wins throughout, so the attack never stops early
    model = linear_model(weight, bias)
    start, end = (0.0, 1.0) if theta > 0 else (1.0, 0.0)
    x = torch.full((1, 1, 28, 28), start)
    if saturated is not None:
        x.view(-1)[saturated] = end
    attack = JSMA(theta=theta, score="logits", gamma=3 / D)  # floor(3 / 2) = 1 iteration
    assert attack.max_iterations(D) == 1
    result = attack.attack(model, x, torch.tensor([0]), torch.tensor([1]))
    changed = (result.x_adv != x).flatten().nonzero().flatten().tolist()
    assert changed == expected
    assert result.x_adv.flatten()[changed].tolist() == [end, end]  # |theta| = 1 moves to the box's edge
    assert result.distortion.tolist() == [2.0]
    assert not result.success.item()  # the budget ran out before the target was reached


def test_jsma_budget_is_gamma_of_the_features():
    # 784 * 0.145 = 113.7 features: 56 pairs, 112 features (Papernot et al. 2016, S&P).
    assert JSMA().max_iterations(D) == 56
    for gamma in (0.01, 0.05, 0.145, 0.5, 1.0):
        assert 2 * JSMA(gamma=gamma).max_iterations(D) <= gamma * D


def test_jsma_invariants_on_a_trained_model(trained):
    model, x, labels, target = trained
    attack = JSMA()
    result = attack.attack(model, x, labels, target)
    assert (result.x_adv >= x).all(), "theta = +1 only increases features"
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    changed = l0_distortion(x, result.x_adv)
    assert torch.equal(result.distortion, changed)
    assert (changed <= math.floor(attack.gamma * D)).all()
    with torch.no_grad():
        predicted = model(result.x_adv).argmax(1)
    assert torch.equal(result.success, predicted == target)
    assert result.success.float().mean() >= 0.5, result.distortion
    # A success stops early: fewer than the full budget of 112 features.
    assert (result.distortion[result.success] < 112).all()


def test_jsma_on_a_saturated_softmax_finds_no_gradient_unless_told_the_temperature(trained):
    # Logits x100 (a model distilled at T=100, deployed at T=1): softmax saturates, float32 derivatives of F
    # vanish, no pair is admissible and every sample stops unchanged (C&W 2017, section VIII). The attacker
    # who divides by T=100, or who uses the logits, sees the gradients again.
    model, x, labels, target = trained
    masked = Scaled(model, 100.0).eval()
    blind = JSMA().attack(masked, x, labels, target)
    assert not blind.success.any()
    assert (blind.distortion == 0).all()
    informed = JSMA(temperature=100.0).attack(masked, x, labels, target)
    on_logits = JSMA(score="logits").attack(masked, x, labels, target)
    assert informed.success_rate >= 0.5 and on_logits.success_rate >= 0.5


def test_jsma_requires_a_target(trained):
    model, x, labels, _ = trained
    with pytest.raises(ValueError, match="targeted"):
        JSMA().attack(model, x, labels)


# ---- Carlini & Wagner L2 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("targeted", [True, False])
def test_cw_l2_finds_the_closed_form_minimal_perturbation_on_a_linear_model(targeted):
    # Only classes 0 and 1 matter (the rest sit at -1000), so the minimal L2 change that makes 1 beat 0 is the
    # distance to the hyperplane z_1 = z_0: (z_0 - z_1) / ||w_1 - w_0||. Inputs near 0.5 and a distance of 1
    # keep every pixel far from the box, where the closed form ignores it.
    generator = torch.Generator().manual_seed(2)
    weight = torch.zeros(10, D)
    weight[:2] = 0.1 * torch.randn(2, D, generator=generator)
    bias = torch.full((10,), -1000.0)
    bias[:2] = 0.0
    normal = weight[1] - weight[0]
    wanted = torch.tensor([0.6, 0.8, 1.0, 1.2])
    x = 0.5 + 0.1 * (2 * torch.rand(4, D, generator=generator) - 1)
    # Slide each x along the normal until its distance to the hyperplane is the wanted one.
    distance_now = -(x @ normal) / normal.norm()
    x = x + ((distance_now - wanted) / normal.norm())[:, None] * normal
    assert x.min() > 0.2 and x.max() < 0.8
    model = linear_model(weight, bias)
    x = x.view(4, 1, 28, 28)
    labels, target = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    logits = model(x).detach()
    distance = (logits[:, 0] - logits[:, 1]) / normal.norm()
    torch.testing.assert_close(distance, wanted)

    # 200 Adam steps per c suffice on a linear model (the default 1000 only costs test time).
    result = CarliniWagnerL2(max_iterations=200).attack(model, x, labels, target if targeted else None)
    assert result.success.all()
    assert (result.distortion >= distance * (1 - 1e-4)).all(), "below the closed-form minimum: L2 is mis-measured"
    assert (result.distortion <= 1.01 * distance).all(), (result.distortion, distance)
    assert (result.x_adv - x).abs().max() < 0.35  # box inactive, as assumed


def test_cw_l2_reports_failure_as_failure_and_returns_the_original(trained):
    model, x, labels, target = trained
    hopeless = CarliniWagnerL2(binary_search_steps=1, max_iterations=20, initial_const=1e-6)
    result = hopeless.attack(model, x, labels, target)
    assert not result.success.any()
    assert torch.equal(result.x_adv, x)
    assert (result.distortion == 0).all()


def test_cw_l2_successes_are_real_and_in_the_box(trained):
    model, x, labels, target = trained
    result = CarliniWagnerL2(binary_search_steps=5, max_iterations=100).attack(model, x, labels, target)
    assert result.success_rate >= 0.5
    with torch.no_grad():
        predicted = model(result.x_adv).argmax(1)
    assert torch.equal(result.success, predicted == target)
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    torch.testing.assert_close(result.distortion, l2_distortion(x, result.x_adv))


class DeadBelowMeanBrightness(nn.Module):
    """Class 1's logit is 10 * relu(mean pixel - 0.03) - 1, class 0's is 0, the rest -1000: from a black image the
    relu is dead, so neither the margin nor the L2 term has a gradient and descent from x never moves (a local
    minimum of f in the box, the kind C&W's random starting points are for); from a point with mean brightness
    above 0.03 the gradient leads to class 1 (mean 0.13, L2 = 0.13 * 28 at the least)."""

    def forward(self, x):
        alive = 10 * torch.relu(x.flatten(1).mean(1) - 0.03) - 1
        return torch.cat([torch.zeros_like(alive)[:, None], alive[:, None],
                          torch.full((len(x), 8), -1000.0, dtype=x.dtype)], 1)


def test_cw_l2_random_starts_free_a_sample_stuck_at_its_start():
    model = DeadBelowMeanBrightness()
    x = torch.zeros(2, 1, 28, 28)
    labels, target = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    settings = {"binary_search_steps": 3, "max_iterations": 300, "initial_const": 1.0}
    stuck = CarliniWagnerL2(**settings).attack(model, x, labels, target)
    assert not stuck.success.any() and torch.equal(stuck.x_adv, x)
    freed = CarliniWagnerL2(**settings, random_starts=2, start_radius=4.0).attack(model, x, labels, target)
    assert freed.success.all()
    # The distortion is measured from x, not from the random start, and cannot beat the closed-form minimum.
    torch.testing.assert_close(freed.distortion, l2_distortion(x, freed.x_adv))
    assert (freed.distortion >= 0.13 * 28 * (1 - 1e-3)).all()
    # Each sample's start is its own draw: alone it gets the same result as in the batch.
    alone = CarliniWagnerL2(**settings, random_starts=2, start_radius=4.0).attack(model, x[1:], labels[1:], target[1:])
    torch.testing.assert_close(alone.x_adv[0], freed.x_adv[1])


def test_cw_l2_random_starts_leave_a_sample_that_succeeds_from_x_alone(trained):
    model, x, labels, target = trained
    plain = CarliniWagnerL2(binary_search_steps=5, max_iterations=100).attack(model, x, labels, target)
    restarted = CarliniWagnerL2(binary_search_steps=5, max_iterations=100, random_starts=2).attack(
        model, x, labels, target)
    assert plain.success.any()
    assert torch.equal(restarted.x_adv[plain.success], plain.x_adv[plain.success])
    assert (restarted.success >= plain.success).all()


def test_row_adam_is_torch_adam_on_the_rows_it_steps():
    """Every row stepping: torch.optim.Adam to the bit. Some rows only: those rows follow torch.optim.Adam run on
    them alone, and the others keep their values."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(5, 7, generator=generator)
    gradients = [torch.randn(5, 7, generator=generator) for _ in range(6)]
    ours, theirs = start.clone(), start.clone().requires_grad_(True)
    row_adam, adam = RowAdam(ours, lr=1e-2), torch.optim.Adam([theirs], lr=1e-2)
    for gradient in gradients:
        row_adam.step(torch.arange(5), gradient)
        theirs.grad = gradient.clone()
        adam.step()
    assert torch.equal(ours, theirs.detach())

    rows = torch.tensor([1, 3])
    ours, theirs = start.clone(), start[rows].clone().requires_grad_(True)
    row_adam, adam = RowAdam(ours, lr=1e-2), torch.optim.Adam([theirs], lr=1e-2)
    for gradient in gradients:
        row_adam.step(rows, gradient[rows])
        theirs.grad = gradient[rows].clone()
        adam.step()
    assert torch.equal(ours[rows], theirs.detach())
    assert torch.equal(ours[[0, 2, 4]], start[[0, 2, 4]])


class RowCounter(nn.Module):
    """The model, counting the rows it is asked to compute."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x):
        self.rows += len(x)
        return self.model(x)


def test_cw_l2_early_abort_is_per_sample(trained):
    """A sample's result does not depend on its batch-mates (each stops when its own loss stalls, as the
    reference's CarliniL2 at batch size 1), and stopped samples are not computed any more. In float64: float32
    sums can differ in their last bit between batch sizes, enough to move a stall check by a step."""
    model, x, labels, target = trained
    model, x = copy.deepcopy(model).double(), x.double()
    attack = CarliniWagnerL2(binary_search_steps=3, max_iterations=100)
    counted = RowCounter(model)
    together = attack.attack(counted, x, labels, target)
    assert counted.rows < len(x) * 3 * 100, "no sample stopped early"
    for i in range(len(x)):
        alone = attack.attack(model, x[i:i + 1], labels[i:i + 1], target[i:i + 1])
        assert bool(alone.success[0]) == bool(together.success[i])
        torch.testing.assert_close(alone.x_adv[0], together.x_adv[i], rtol=1e-9, atol=1e-10)


# ---- all attacks ---------------------------------------------------------------------------------------------

def test_attacks_leave_the_model_untouched(trained):
    model, x, labels, target = trained
    before = [p.detach().clone() for p in model.parameters()]
    FGSM().attack(model, x[:2], labels[:2])
    PGD(steps=2).attack(model, x[:2], labels[:2], target[:2])
    JSMA(gamma=0.02).attack(model, x[:2], labels[:2], target[:2])
    CarliniWagnerL2(binary_search_steps=1, max_iterations=5).attack(model, x[:2], labels[:2], target[:2])
    assert all(p.grad is None for p in model.parameters()), "an attack accumulated gradients on the weights"
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert not model.training
