"""Box-constrained L-BFGS adversarial examples, Szegedy et al. 2014 ("Intriguing properties of neural networks"), 4.1.

The paper's problem: for an image x and a target class l != f(x), minimise c|r| + loss_f(x + r, l) subject to
x + r in [0, 1]^m, where c is found by a line search as the value whose minimiser r just reaches f(x + r) = l.
Choices the paper leaves open, made as the public reimplementations do (cleverhans, foolbox, advertorch):

- |r| is the squared L2 norm. The plain norm is not differentiable at r = 0, which is where every solve starts.
- The constant multiplies the loss, not the norm: we minimise |r|^2 + c * CE(f(x + r), l). Dividing by c gives
  the paper's form with c_paper = 1 / c, so the paper's "minimum c > 0 for which f(x + r) = l" is, here, the
  smallest c that still succeeds, which is also the smallest perturbation (|r| grows with c).
- loss_f is the cross-entropy of the model's softmax to the target class.
- Each solve starts from x itself (not from the previous solve), so every c is an independent problem and the
  result matches per-image scipy L-BFGS-B on the same objective.

Distortion, the paper's measure in Tables 1-4, is sqrt(sum((x' - x)^2) / n) with n = 784 pixels in [0, 1]
(common.rms_distortion). `LBFGS` is the attack behind the common interface; `lbfgs_attack` is the search itself.

Batching. One L-BFGS over the sum of per-sample objectives would be a different algorithm: its curvature pairs
(s, y) and its line search would mix samples, so each sample's iterates would depend on the rest of the batch.
`box_lbfgs` instead keeps one history and one step length per sample and runs the two-loop recursion for all
samples at once; the samples share only the batched forward/backward pass, which is exact because the gradient
of a sum of per-sample objectives with respect to sample i is the gradient of objective i (the model must treat
samples independently: eval mode, no batch statistics).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tempered.attacks.common import Attack, AttackResult, check_inputs, finish

# An objective maps a (k, n) block of iterates and the (k,) batch rows they belong to onto (k,) values.
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BoxLBFGSResult:
    x: torch.Tensor  # (B, n) final iterate of each sample
    f: torch.Tensor  # (B,) objective there
    iterations: torch.Tensor  # (B,) L-BFGS iterations taken
    converged: torch.Tensor  # (B,) stopped by pgtol, ftol or f's rounding floor; not by max_iter or a failed search


@dataclass(frozen=True)
class LBFGSResult:
    x_adv: torch.Tensor  # like x: the least-distorted example classified as its target; x itself where failed
    success: torch.Tensor  # (N,) bool: argmax f(x_adv) == target for some c tried
    distortion: torch.Tensor  # (N,) sqrt(sum((x_adv - x)^2) / n); NaN where failed, so it cannot be averaged in
    c: torch.Tensor  # (N,) the constant on the loss that produced x_adv; NaN where failed
    targets: torch.Tensor  # (N,) the target classes attacked
    iterations: torch.Tensor  # (N,) L-BFGS iterations over the whole search


def _value_and_grad(objective: Objective, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = objective(x, rows)
        (g,) = torch.autograd.grad(f.sum(), x)
    return f.detach(), g


def _projected_gradient_norm(x: torch.Tensor, g: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    # L-BFGS-B's stopping measure: max |P(x - g) - x|, zero exactly at a KKT point of the box problem.
    return ((x - g).clamp(lower, upper) - x).abs().amax(1)


def _two_loop(q: torch.Tensor, s: torch.Tensor, y: torch.Tensor, rho: torch.Tensor, gamma: torch.Tensor,
              newest_first: list[int]) -> torch.Tensor:
    """H q per sample (Nocedal & Wright, Algorithm 7.4); history slots with rho == 0 are empty and do nothing."""
    q = q.clone()
    alphas = []
    for j in newest_first:
        a = rho[:, j] * torch.linalg.vecdot(s[:, j], q)
        q -= a[:, None] * y[:, j]
        alphas.append(a)
    r = gamma[:, None] * q
    for j, a in zip(reversed(newest_first), reversed(alphas), strict=True):
        b = rho[:, j] * torch.linalg.vecdot(y[:, j], r)
        r += (a - b)[:, None] * s[:, j]
    return r


def _projected_backtracking(objective: Objective, rows: torch.Tensor, x: torch.Tensor, f: torch.Tensor,
                            g: torch.Tensor, d: torch.Tensor, step: torch.Tensor, lower: float, upper: float,
                            armijo: float, max_backtracks: int):
    """Armijo backtracking along the projected arc P(x + t d), per sample.

    Returns the new points (the old ones where rejected), an accepted mask, and a mask of the samples whose
    predicted decrease fell below the rounding error of f: no step can show a decrease there, so the point is
    stationary to working precision (in float32 this, not ftol, is what usually ends a solve).
    """
    x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
    accepted = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    at_resolution = torch.zeros_like(accepted)
    noise = 4 * torch.finfo(f.dtype).eps * f.abs().clamp_min(1.0)
    step = step.clone()
    pending = torch.arange(len(x), device=x.device)
    for _ in range(max_backtracks):
        xp = x[pending]
        trial = (xp + step[pending, None] * d[pending]).clamp(lower, upper)
        f_trial, g_trial = _value_and_grad(objective, trial, rows[pending])
        predicted = (g[pending] * (trial - xp)).sum(1)
        # predicted < 0 as well: a projected step that is no longer a descent step is never taken.
        ok = (predicted < 0) & (f_trial <= f[pending] + armijo * predicted)
        done = pending[ok]
        x_new[done], f_new[done], g_new[done] = trial[ok], f_trial[ok], g_trial[ok]
        accepted[done] = True
        lost = ~ok & (predicted.abs() <= noise[pending])
        at_resolution[pending[lost]] = True
        pending = pending[~ok & ~lost]
        if len(pending) == 0:
            break
        step[pending] *= 0.5
    return x_new, f_new, g_new, accepted, at_resolution


def box_lbfgs(objective: Objective, x0: torch.Tensor, *, lower: float = 0.0, upper: float = 1.0,
              max_iter: int = 200, history: int = 10, pgtol: float = 1e-5, ftol: float = 2.2e-9,
              armijo: float = 1e-4, max_backtracks: int = 20) -> BoxLBFGSResult:
    """Minimise B independent objectives over the box [lower, upper]^n at once, one L-BFGS state per sample.

    A projected quasi-Newton method in the family of L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995) and of Kim, Sra &
    Dhillon 2010: variables at a bound whose gradient points out of the box are held fixed; the L-BFGS direction
    -H g is computed from the gradient of the free variables and kept only on them, and components that would
    leave the box from a bound are dropped (which only makes the direction steeper); the step is an Armijo
    backtracking along the projected path P(x + t d). With H positive definite (pairs with s'y <= eps y'y are
    skipped, as L-BFGS-B does) the direction is a descent direction whenever the projected gradient is nonzero,
    so every accepted step lowers the objective and a stationary point satisfies the box KKT conditions.

    Stopping, per sample, as scipy's L-BFGS-B: max |P(x - g) - x| <= pgtol, or a relative decrease
    (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol, or a predicted decrease below f's rounding error (all three
    reported as converged), or max_iter, or max_backtracks halvings without an Armijo decrease (not converged).
    Samples that stop leave the batch, so late iterations cost only the samples still running.

    objective(x_rows, rows) returns the (k,) values of the samples `rows` at the (k, n) points x_rows.
    """
    batch, n = x0.shape
    device = x0.device
    x_out = x0.detach().clamp(lower, upper).clone()
    f_all, g_all = _value_and_grad(objective, x_out, torch.arange(batch, device=device))
    f_out = f_all.clone()
    iterations = torch.zeros(batch, dtype=torch.long, device=device)
    converged = _projected_gradient_norm(x_out, g_all, lower, upper) <= pgtol

    live = (~converged).nonzero(as_tuple=True)[0]
    x, f, g = x_out[live], f_out[live], g_all[live]
    s_hist = x.new_zeros(len(live), history, n)
    y_hist = x.new_zeros(len(live), history, n)
    rho = x.new_zeros(len(live), history)
    gamma = x.new_ones(len(live))
    eps = torch.finfo(x.dtype).eps
    # A ring buffer with one write position for the whole batch, so storing a pair writes (k, n), not (k, m, n).
    slot = 0
    for _ in range(max_iter):
        if len(live) == 0:
            break
        at_lower, at_upper = x <= lower, x >= upper
        free = ~((at_lower & (g > 0)) | (at_upper & (g < 0)))
        g_free = g * free
        newest_first = [(slot - 1 - j) % history for j in range(history)]
        d = -_two_loop(g_free, s_hist, y_hist, rho, gamma, newest_first) * free
        d = d.masked_fill((at_lower & (d < 0)) | (at_upper & (d > 0)), 0.0)
        # Rounding can leave H g pointing uphill; fall back to projected steepest descent and forget the history.
        uphill = (g * d).sum(1) >= 0
        if uphill.any():
            d[uphill] = -g_free[uphill]
            s_hist[uphill], y_hist[uphill], rho[uphill], gamma[uphill] = 0.0, 0.0, 0.0, 1.0
        # Without curvature information the first step is scaled to unit length, as L-BFGS-B does.
        fresh = (rho == 0).all(1)
        step = torch.where(fresh, d.norm(dim=1).clamp_min(eps).reciprocal().clamp(max=1.0), 1.0)

        x_new, f_new, g_new, accepted, at_resolution = _projected_backtracking(
            objective, live, x, f, g, d, step, lower, upper, armijo, max_backtracks)
        s, y = x_new - x, g_new - g
        sy, yy = (s * y).sum(1), (y * y).sum(1)
        keep = accepted & (sy > eps * yy)
        skip = accepted & ~keep  # rejected samples stop below, whatever their history
        if skip.any():
            # A sample that stores no pair this time rolls its ring one slot, so that its order survives the
            # shared write position moving on; its newest pair lands on the slot the others overwrite.
            s_hist[skip], y_hist[skip] = s_hist[skip].roll(1, 1), y_hist[skip].roll(1, 1)
            rho[skip] = rho[skip].roll(1, 1)
        s_hist[keep, slot], y_hist[keep, slot], rho[keep, slot] = s[keep], y[keep], sy[keep].reciprocal()
        gamma = torch.where(keep, sy / yy, gamma)
        slot = (slot + 1) % history
        small_decrease = (f - f_new) <= ftol * torch.maximum(torch.maximum(f.abs(), f_new.abs()),
                                                              torch.ones_like(f))
        x, f, g = x_new, f_new, g_new  # rejected rows were returned unchanged
        iterations[live] += 1
        stationary = at_resolution | (accepted & (small_decrease
                                                  | (_projected_gradient_norm(x, g, lower, upper) <= pgtol)))
        stop = stationary | ~accepted
        if stop.any():
            gone = live[stop]
            x_out[gone], f_out[gone], converged[gone] = x[stop], f[stop], stationary[stop]
            stay = ~stop
            live, x, f, g = live[stay], x[stay], f[stay], g[stay]
            s_hist, y_hist, rho, gamma = s_hist[stay], y_hist[stay], rho[stay], gamma[stay]
    x_out[live], f_out[live] = x, f
    return BoxLBFGSResult(x=x_out, f=f_out, iterations=iterations, converged=converged)


def adversarial_objective(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, c: torch.Tensor) -> Objective:
    """|r|^2 + c * CE(f(x + r), target) per sample, as a function of the flattened x + r (see the module doc)."""
    x_flat = x.flatten(1)
    shape = x.shape[1:]

    def objective(z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        logits = model(z.view(-1, *shape))
        loss = F.cross_entropy(logits, targets[rows], reduction="none")
        return (z - x_flat[rows]).pow(2).sum(1) + c[rows] * loss

    return objective


@torch.no_grad()
def _predict(model: nn.Module, x_flat: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return model(x_flat.view(-1, *shape)).argmax(1)


def lbfgs_attack(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    initial_c: float = 0.1,
    search_steps: int = 10,
    c_factor: float = 10.0,
    max_iter: int = 200,
    history: int = 10,
    pgtol: float = 1e-5,
    ftol: float = 2.2e-9,
    progress: bool = False,
) -> LBFGSResult:
    """Minimum-distortion targeted adversarial examples by box-constrained L-BFGS and a search over c (section 4.1).

    Per sample, c starts at initial_c and moves by c_factor (up after a failure, down after a success) until a
    success and a failure bracket it, then bisects the bracket in log space (k bisections leave it a factor
    c_factor ** (1 / 2 ** k) wide); every search step solves the box problem from x with `box_lbfgs`. The
    least-distorted success over all steps is kept. A sample with no success in `search_steps` solves is
    reported as failed, with x_adv = x and NaN distortion and c.
    The model is put in eval mode: dropout would make the objective random.
    """
    model.eval()
    x = x.detach()
    shape = x.shape[1:]
    x_flat = x.flatten(1)
    batch = len(x)
    targets = targets.to(x.device)
    c = torch.full((batch,), float(initial_c), dtype=x.dtype, device=x.device)
    lo = torch.zeros_like(c)
    hi = torch.full_like(c, math.inf)
    best = x_flat.clone()
    best_sq = torch.full_like(c, math.inf)
    best_c = torch.full_like(c, math.nan)
    iterations = torch.zeros(batch, dtype=torch.long, device=x.device)
    for _ in tqdm(range(search_steps), desc="L-BFGS c search", unit="step", leave=False, mininterval=2.0,
                  disable=not progress):
        solved = box_lbfgs(adversarial_objective(model, x, targets, c), x_flat, max_iter=max_iter, history=history,
                           pgtol=pgtol, ftol=ftol)
        iterations += solved.iterations
        hit = _predict(model, solved.x, shape) == targets
        sq = (solved.x - x_flat).pow(2).sum(1)
        better = hit & (sq < best_sq)
        best[better], best_sq[better], best_c[better] = solved.x[better], sq[better], c[better]
        hi = torch.where(hit, torch.minimum(hi, c), hi)
        lo = torch.where(hit, lo, torch.maximum(lo, c))
        c = torch.where(torch.isinf(hi), c * c_factor, torch.where(lo == 0, c / c_factor, (lo * hi).sqrt()))
    success = torch.isfinite(best_sq)
    dist = torch.where(success, best_sq.div(x_flat.shape[1]).sqrt(), math.nan)
    return LBFGSResult(x_adv=best.view_as(x), success=success, distortion=dist, c=best_c, targets=targets,
                       iterations=iterations)


class LBFGS(Attack):
    """Szegedy et al. 2014, section 4.1, behind the common interface: `lbfgs_attack`'s search with these settings
    (its defaults), judged by the model like every attack. Targeted only. Distortion is Szegedy's (rms); a failed
    sample is x itself, at distortion 0 (average over `success`, as for every attack). extras: the constant "c"
    that produced x_adv (NaN where failed) and the "iterations" of L-BFGS over the whole search."""

    norm = "rms"

    def __init__(self, initial_c: float = 0.1, search_steps: int = 10, c_factor: float = 10.0, max_iter: int = 200,
                 history: int = 10, pgtol: float = 1e-5, ftol: float = 2.2e-9, progress: bool = False):
        self.initial_c = initial_c
        self.search_steps = search_steps
        self.c_factor = c_factor
        self.max_iter = max_iter
        self.history = history
        self.pgtol = pgtol
        self.ftol = ftol
        self.progress = progress

    def attack(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
               target: torch.Tensor | None = None) -> AttackResult:
        if target is None:
            raise ValueError("L-BFGS (Szegedy et al.) is a targeted attack: pass target")
        check_inputs(x, labels, target)
        searched = lbfgs_attack(model, x, target, initial_c=self.initial_c, search_steps=self.search_steps,
                                c_factor=self.c_factor, max_iter=self.max_iter, history=self.history,
                                pgtol=self.pgtol, ftol=self.ftol, progress=self.progress)
        return finish(model, x, searched.x_adv, labels, target, self.norm, found=searched.success,
                      extras={"c": searched.c, "iterations": searched.iterations})
