"""Box-constrained L-BFGS attack (tempered.attacks.lbfgs) against closed forms and scipy's L-BFGS-B."""


import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from tempered.attacks.common import random_other_targets, rms_distortion
from tempered.attacks.lbfgs import adversarial_objective, box_lbfgs, lbfgs_attack
from tempered.models.szegedy import SigmoidMLP, SoftmaxRegression

TIGHT = {"pgtol": 1e-10, "ftol": 1e-15, "max_iter": 3000}


# One torch thread (tests/conftest.py): tiny batches, and bit-stable results beside a build.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scipy_lbfgsb(objective, x0: torch.Tensor, row: int) -> tuple[np.ndarray, float]:
    """Reference: scipy's L-BFGS-B (Fortran, Cauchy point + subspace minimisation) on one sample's objective."""

    def fun(z):
        zt = torch.tensor(z, requires_grad=True)
        f = objective(zt[None], torch.tensor([row]))[0]
        (g,) = torch.autograd.grad(f, zt)
        return f.item(), g.numpy()

    res = minimize(fun, x0[row].numpy(), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * x0.shape[1],
                   options={"maxiter": 15000, "ftol": 1e-15, "gtol": 1e-11})
    return res.x, res.fun


def linear_model(seed: int, scale: float = 1.0) -> SoftmaxRegression:
    torch.manual_seed(seed)
    model = SoftmaxRegression().double().eval()
    with torch.no_grad():
        model.logits.weight.mul_(scale)
    return model


def test_box_lbfgs_matches_scipy_where_the_box_is_inactive():
    model = linear_model(0)
    g = torch.Generator().manual_seed(0)
    x = 0.5 + 0.05 * torch.randn(4, 1, 28, 28, generator=g, dtype=torch.float64)
    targets = torch.tensor([1, 4, 7, 9])
    c = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    objective = adversarial_objective(model, x, targets, c)
    x0 = x.flatten(1)
    ours = box_lbfgs(objective, x0, **TIGHT)
    assert ours.converged.all()
    assert ((ours.x > 0) & (ours.x < 1)).all(), "the test meant the box to stay inactive"
    for row in range(4):
        ref_x, ref_f = scipy_lbfgsb(objective, x0, row)
        # Strictly convex objective (|r|^2 + convex CE of linear logits): one minimiser, so the points must agree.
        np.testing.assert_allclose(ours.x[row].numpy(), ref_x, atol=1e-6)
        assert ours.f[row].item() == pytest.approx(ref_f, rel=1e-10)


@pytest.mark.parametrize("architecture", ["linear", "sigmoid_mlp"])
def test_box_lbfgs_matches_scipy_with_active_bounds(architecture):
    if architecture == "linear":
        model = linear_model(1, scale=5.0)
    else:
        torch.manual_seed(2)
        model = SigmoidMLP().double().eval()
        with torch.no_grad():
            for layer in [*model.hidden, model.logits]:
                layer.weight.mul_(3.0)
    g = torch.Generator().manual_seed(3)
    # Binary images, like MNIST's mostly 0/1 pixels: a large c pushes many pixels onto a bound.
    x = (torch.rand(4, 1, 28, 28, generator=g, dtype=torch.float64) > 0.7).double()
    targets = torch.tensor([0, 2, 5, 8])
    c = torch.full((4,), 10.0, dtype=torch.float64)
    objective = adversarial_objective(model, x, targets, c)
    x0 = x.flatten(1)
    ours = box_lbfgs(objective, x0, **TIGHT)
    assert ((ours.x >= 0) & (ours.x <= 1)).all()
    assert ((ours.x > 0) & (ours.x < 1)).sum(1).min() > 50, "the test meant interior pixels to move"
    assert ((ours.x == 0) | (ours.x == 1)).sum(1).min() > 200, "the test meant many bounds to be active"
    for row in range(4):
        ref_x, ref_f = scipy_lbfgsb(objective, x0, row)
        # The MLP objective is not convex, but from the same start both methods reach the same minimum here.
        assert ours.f[row].item() == pytest.approx(ref_f, rel=1e-9)
        np.testing.assert_allclose(ours.x[row].numpy(), ref_x, atol=1e-5)


def test_box_lbfgs_samples_do_not_influence_each_other():
    torch.manual_seed(4)
    model = SigmoidMLP().double().eval()
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 3, 4])
    c = torch.tensor([0.1, 1.0, 10.0, 100.0, 3.0], dtype=torch.float64)
    objective = adversarial_objective(model, x, targets, c)
    batched = box_lbfgs(objective, x.flatten(1), max_iter=50)
    for row in range(5):
        def alone(z, rows, row=row):
            return objective(z, rows + row)

        single = box_lbfgs(alone, x.flatten(1)[row:row + 1], max_iter=50)
        assert single.iterations.item() == batched.iterations[row].item()
        torch.testing.assert_close(single.x[0], batched.x[row], rtol=0, atol=1e-9)


def reference_box_lbfgs(fun, x0: torch.Tensor, history: int = 10, max_iter: int = 200, pgtol: float = 1e-5,
                        ftol: float = 2.2e-9, armijo: float = 1e-4, max_backtracks: int = 20):
    """The same rules as box_lbfgs for one sample, written plainly: history in a list, no batching."""
    eps = torch.finfo(x0.dtype).eps
    x = x0.clamp(0, 1)
    f, g = fun(x)
    pairs = []  # (s, y, 1 / s'y), oldest first
    gamma = 1.0
    for iteration in range(1, max_iter + 1):
        free = ~(((x <= 0) & (g > 0)) | ((x >= 1) & (g < 0)))
        q = g * free
        alphas = []
        for s, y, rho in reversed(pairs):
            alphas.append(rho * (s @ q))
            q = q - alphas[-1] * y
        r = gamma * q
        for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
            r = r + (a - rho * (y @ r)) * s
        d = -r * free
        d[((x <= 0) & (d < 0)) | ((x >= 1) & (d > 0))] = 0.0
        if g @ d >= 0:
            d, pairs, gamma = -g * free, [], 1.0
        step = 1.0 if pairs else min(1.0, 1.0 / d.norm().item())
        noise = 4 * eps * max(abs(f), 1.0)
        for _ in range(max_backtracks):
            trial = (x + step * d).clamp(0, 1)
            f_trial, g_trial = fun(trial)
            predicted = (g @ (trial - x)).item()
            if predicted < 0 and f_trial <= f + armijo * predicted:
                break
            if abs(predicted) <= noise:
                return x, iteration, True
            step /= 2
        else:
            return x, iteration, False
        s, y = trial - x, g_trial - g
        if s @ y > eps * (y @ y):
            pairs = [*pairs[-(history - 1):], (s, y, 1 / (s @ y))]
            gamma = ((s @ y) / (y @ y)).item()
        decrease = f - f_trial
        x, f, g = trial, f_trial, g_trial
        if decrease <= ftol * max(abs(f), abs(f + decrease), 1.0):
            return x, iteration, True
        if ((x - g).clamp(0, 1) - x).abs().max() <= pgtol:
            return x, iteration, True
    return x, max_iter, False


def test_box_lbfgs_follows_the_plain_per_sample_algorithm_through_skipped_pairs():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 30, generator=g, dtype=torch.float64)

    def objective(z, rows):
        # Strongly non-convex (sin's curvature beats the quadratic's), so some steps give s'y <= 0 and their
        # pairs are skipped: the ring buffer must then keep that sample's pairs in order.
        return (z - a[rows]).pow(2).sum(1) + torch.sin(4 * z).sum(1)

    x0 = torch.rand(6, 30, generator=g, dtype=torch.float64)
    batched = box_lbfgs(objective, x0, history=3)
    for row in range(6):
        def fun(z, row=row):
            z = z.detach().requires_grad_(True)
            f = objective(z[None], torch.tensor([row]))[0]
            return f.item(), torch.autograd.grad(f, z)[0]

        x_ref, iterations, converged = reference_box_lbfgs(fun, x0[row], history=3)
        torch.testing.assert_close(batched.x[row], x_ref, rtol=0, atol=1e-12)
        assert batched.iterations[row].item() == iterations
        assert batched.converged[row].item() == converged


def two_class_linear_model(y: int, t: int, dtype: torch.dtype):
    """Only classes y and t have a chance; softmax over the two is a logistic model in (w_t - w_y) . x."""
    g = torch.Generator().manual_seed(5)
    model = SoftmaxRegression().to(dtype).eval()
    with torch.no_grad():
        model.logits.weight.zero_()
        model.logits.bias.fill_(-60.0)
        model.logits.weight[y] = 0.1 * torch.randn(784, generator=g, dtype=dtype)
        model.logits.weight[t] = 0.1 * torch.randn(784, generator=g, dtype=dtype)
        model.logits.bias[y] = model.logits.bias[t] = 0.0
    return model


@pytest.mark.parametrize(("dtype", "options"), [(torch.float64, TIGHT), (torch.float32, {})])
def test_attack_finds_the_closed_form_minimal_perturbation(dtype, options):
    y, t = 3, 7
    model = two_class_linear_model(y, t, dtype)
    g = torch.Generator().manual_seed(6)
    x = (0.5 + 0.05 * torch.randn(4, 1, 28, 28, generator=g, dtype=dtype)).clamp(0, 1)
    with torch.no_grad():
        logits = model(x)
    margin = logits[:, y] - logits[:, t]
    assert (margin > 0).all() and (logits.argmax(1) == y).all()
    w = model.logits.weight[t] - model.logits.weight[y]
    # Closed form: the least L2 step onto the boundary is r* = margin / |w|^2 * w, so the distortion is
    # margin / (|w| sqrt(784)); with CE = softplus(margin - w.r) the minimiser reaches the boundary at
    # c* = 4 margin / |w|^2 (stationarity 2 r = c sigmoid(margin - w.r) w with w.r = margin).
    exact = (margin / w.norm() / 28).detach()
    c_star = (4 * margin / w.norm() ** 2).detach()
    result = lbfgs_attack(model, x, torch.full((4,), t), search_steps=10, **options)
    assert result.success.all()
    # 10 steps bracket c within a factor 10 ** (1 / 2 ** 8); the distortion moves less than c does.
    assert (result.distortion >= exact * (1 - 1e-6)).all(), "no success can beat the exact minimum"
    assert (result.distortion <= exact * 1.01).all()
    assert (result.c > c_star).all() and (result.c <= c_star * 1.01).all()
    assert (model(result.x_adv).argmax(1) == t).all()
    assert (result.x_adv - x).abs().max() < 0.1, "the box stayed inactive, as the closed form assumes"


def test_attack_results_are_in_the_box_and_success_means_the_target():
    torch.manual_seed(7)
    model = SigmoidMLP(hidden=(32, 32), penalties=(0.0, 0.0, 0.0))
    with torch.no_grad():  # sharper than at initialisation, like a trained net
        for layer in [*model.hidden, model.logits]:
            layer.weight.mul_(4.0)
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(16, 1, 28, 28, generator=g) > 0.8).float()
    labels = model(x).argmax(1)
    targets = random_other_targets(labels, 10, g)
    # One solve at a c that fools only some samples, then the search proper.
    partial = lbfgs_attack(model, x, targets, initial_c=3.0, search_steps=1, max_iter=50)
    assert partial.success.any() and not partial.success.all()
    result = lbfgs_attack(model, x, targets, initial_c=3.0, search_steps=4, max_iter=50)
    assert result.success.sum() > partial.success.sum()
    assert ((result.x_adv >= 0) & (result.x_adv <= 1)).all()
    with torch.no_grad():
        predicted = model(result.x_adv).argmax(1)
    assert (predicted[result.success] == targets[result.success]).all()
    assert (rms_distortion(x, result.x_adv)[result.success] <= partial.distortion.nan_to_num(1.0)[result.success]).all()
    failed = ~partial.success
    assert torch.equal(partial.x_adv[failed], x[failed])
    assert partial.distortion[failed].isnan().all() and partial.c[failed].isnan().all()
    failed = ~result.success
    assert torch.equal(result.x_adv[failed], x[failed])
    assert result.distortion[failed].isnan().all() and result.c[failed].isnan().all()
    torch.testing.assert_close(result.distortion[result.success],
                               rms_distortion(x, result.x_adv)[result.success])
    torch.testing.assert_close(rms_distortion(x, result.x_adv)[result.success],
                               ((result.x_adv - x) ** 2).flatten(1).sum(1)[result.success].div(784).sqrt())


def test_a_model_that_cannot_be_fooled_yields_failure():
    model = SoftmaxRegression()
    with torch.no_grad():
        model.logits.weight.zero_()  # logits ignore the input: class 0 always wins
        model.logits.bias.copy_(torch.linspace(1.0, 0.0, 10))
    x = torch.rand(6, 1, 28, 28)
    result = lbfgs_attack(model, x, torch.arange(1, 7), search_steps=6)
    assert not result.success.any()
    assert torch.equal(result.x_adv, x)
    assert result.distortion.isnan().all()


def test_random_other_targets_are_uniform_over_the_other_classes():
    labels = torch.arange(10).repeat(2000)
    targets = random_other_targets(labels, 10, torch.Generator().manual_seed(0))
    assert (targets != labels).all() and targets.min() >= 0 and targets.max() <= 9
    pairs = torch.bincount(labels * 10 + targets, minlength=100).view(10, 10)
    off_diagonal = pairs[~torch.eye(10, dtype=torch.bool)].float()
    assert off_diagonal.min() > 2000 / 9 * 0.6 and off_diagonal.max() < 2000 / 9 * 1.4
    again = random_other_targets(labels, 10, torch.Generator().manual_seed(0))
    assert torch.equal(targets, again)
