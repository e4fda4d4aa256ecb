"""Carlini & Wagner's L2 attack (Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural
Networks", section V), the attack that broke defensive distillation (section VIII).

For each sample it minimises ||x' - x||_2^2 + c * f(x') over w, with x' = (tanh(w) + 1) / 2 scaled to the
box (the change of variables of section V-B: the box constraint holds by construction) and

    f(x') = max(max_{i != t} Z_i(x') - Z_t(x'), -kappa)        (targeted, f_6 of section IV-A)
    f(x') = max(Z_y(x') - max_{i != y} Z_i(x'), -kappa)        (untargeted)

on the LOGITS Z, never on the softmax, which is why distillation does not mask it. Adam optimises w; a
per-sample binary search over c (section V-A) keeps the smallest c that still succeeds, and the smallest-L2
successful x' met anywhere in the search is returned. Defaults follow the reference code (carlini/
nn_robust_attacks, l2_attack.py): Adam lr 1e-2, kappa 0, c from 1e-3, 9 binary-search steps, abort early when
the loss stalls; max_iterations is 1000 here (the reference has 10000, a cost ten times larger). The early
abort is per sample, as the reference's CarliniL2 does at its default batch_size of 1: a sample whose own loss
has stalled stops, and the batch goes on with the others only, so one sample's result does not depend on
which samples share its batch.

Random starting points (section V: "multiple starting-point gradient descent", which l2_attack.py leaves out):
gradient descent from x itself can stop in a local minimum of f inside the box (measured on the quick CNN:
test digit 1750 towards 6 stays 0.43 logits short at every c up to 1e7, even over 10,000 iterations). The paper
draws starts uniformly from the ball of radius r, "the closest adversarial example found so far"; a sample that
is stuck has none, so here a sample with no success after the search from x gets up to `random_starts` more
searches, each from a point drawn uniformly from the L2 ball of radius `start_radius` around x (clipped to the
box), until one succeeds. The distortion is always measured from x. A sample that succeeds from x is never
restarted, so with random_starts 0 (the reference code) or on an easy sample the result is unchanged.
"""

from __future__ import annotations

import math
import zlib

import torch
from torch import nn
from tqdm import tqdm

from tempered.attacks.common import Attack, AttackResult, check_inputs, finish

# The reference's bounds: an upper bound of 1e10 means "no success yet"; tanh's argument stays finite.
_NO_UPPER_BOUND = 1e10
_ATANH_SHRINK = 0.999999


class CarliniWagnerL2(Attack):
    """Carlini & Wagner 2017, section V, batched: each sample has its own c, bounds and best result.

    confidence: kappa, the logit margin f demands beyond the decision boundary.
    learning_rate, max_iterations: Adam on w, per binary-search step (Adam restarts from w = atanh(x)). Keep
        max_iterations near 1000 or above on MNIST: a black pixel starts at w = atanh(-0.999999) = -7.3, where
        tanh is flat, and Adam moves w by about learning_rate per step, so the background only becomes
        changeable after several hundred steps (measured: a 7 -> 8 sample failed at every c with 300 steps
        and succeeded with 1000).
    binary_search_steps: the search over c; with 10 or more, the last step repeats at the upper bound, as in
        the reference code.
    abort_early: end a binary-search step for a sample when its loss has not fallen by 0.01% over a tenth of
        max_iterations (the reference's rule, per sample as at its default batch size of 1).
    initial_const: the first c, multiplied by 10 until a success bounds it, then bisected.
    random_starts, start_radius: the searches from random points around x a sample gets when the search from x
        found nothing (module docstring); each start is drawn from a generator seeded by `seed`, the restart's
        number and the sample's own pixels and target, so it does not depend on the sample's batch.
    progress: a bar over the search's iterations on stderr (a batch takes minutes at 9 x 1,000).
    """

    norm = "l2"

    def __init__(self, confidence: float = 0.0, learning_rate: float = 1e-2, binary_search_steps: int = 9,
                 max_iterations: int = 1000, abort_early: bool = True, initial_const: float = 1e-3,
                 random_starts: int = 0, start_radius: float = 4.0, seed: int = 0,
                 clip_min: float = 0.0, clip_max: float = 1.0, progress: bool = False):
        self.confidence = confidence
        self.learning_rate = learning_rate
        self.binary_search_steps = binary_search_steps
        self.max_iterations = max_iterations
        self.abort_early = abort_early
        self.initial_const = initial_const
        self.random_starts = random_starts
        self.start_radius = start_radius
        self.seed = seed
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.progress = progress

    def _to_box(self, w: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(w) + 1) / 2 * (self.clip_max - self.clip_min) + self.clip_min

    def _from_box(self, x: torch.Tensor) -> torch.Tensor:
        unit = (x - self.clip_min) / (self.clip_max - self.clip_min) * 2 - 1
        return torch.atanh(unit * _ATANH_SHRINK)

    def margin(self, logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """f before the -kappa floor: how far (in logits) the sample still is from the adversarial side."""
        own = target if target is not None else labels
        own_logit = logits.gather(1, own[:, None]).squeeze(1)
        best_other = logits.scatter(1, own[:, None], -math.inf).amax(1)
        return best_other - own_logit if target is not None else own_logit - best_other

    def attack(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
               target: torch.Tensor | None = None) -> AttackResult:
        """Untargeted when target is None, else towards target; distortion is L2. A sample with no success in
        the whole search is returned unchanged and reported failed."""
        check_inputs(x, labels, target)
        x = x.detach()
        best_l2sq = torch.full((len(x),), math.inf, dtype=x.dtype, device=x.device)
        best_x = x.clone()
        # One bar over every iteration of the search: a binary-search step can take minutes on its own.
        steps = self.binary_search_steps
        with tqdm(total=steps * self.max_iterations, desc=f"C&W c search 1/{steps}", unit="iter", leave=False,
                  mininterval=2.0, disable=not self.progress) as bar:
            self._search(model, x, self._from_box(x), labels, target, best_l2sq, best_x, bar, "")
            for restart in range(1, self.random_starts + 1):
                stuck = torch.nonzero(best_l2sq == math.inf).squeeze(1)
                if len(stuck) == 0:
                    break
                start = self._random_start(x[stuck], target[stuck] if target is not None else labels[stuck],
                                           restart)
                bar.total += self.binary_search_steps * self.max_iterations
                l2sq, found_x = best_l2sq[stuck].clone(), best_x[stuck].clone()
                self._search(model, x[stuck], self._from_box(start), labels[stuck],
                             None if target is None else target[stuck], l2sq, found_x, bar, f"start {restart}, ")
                best_l2sq[stuck], best_x[stuck] = l2sq, found_x
        return finish(model, x, best_x, labels, target, self.norm, found=best_l2sq < math.inf)

    def _random_start(self, x: torch.Tensor, aim: torch.Tensor, restart: int) -> torch.Tensor:
        """One point per row drawn uniformly from the L2 ball of radius start_radius around it, clipped to the box;
        each row's draw is seeded by (seed, restart, its pixels, its target or label)."""
        starts = []
        for row, label in zip(x.cpu(), aim.cpu(), strict=True):
            key = zlib.crc32(row.numpy().tobytes() + int(label).to_bytes(2, "little"), restart)
            generator = torch.Generator().manual_seed(self.seed * 2**32 + key)
            direction = torch.randn(row.shape, generator=generator, dtype=row.dtype)
            radius = self.start_radius * torch.rand((), generator=generator, dtype=row.dtype) ** (1 / row.numel())
            starts.append(row + radius * direction / direction.norm())
        return torch.stack(starts).to(x.device).clamp(self.clip_min, self.clip_max)

    def _search(self, model: nn.Module, x: torch.Tensor, w_start: torch.Tensor, labels: torch.Tensor,
                target: torch.Tensor | None, best_l2sq: torch.Tensor, best_x: torch.Tensor, bar: tqdm,
                phase: str) -> None:
        """The binary search over c from w_start, each sample with its own c and bounds; best_l2sq and best_x (the
        smallest-L2 success from x met anywhere) are updated in place; `phase` prefixes the bar's description."""
        const = torch.full((len(x),), self.initial_const, dtype=x.dtype, device=x.device)
        lower = torch.zeros_like(const)
        upper = torch.full_like(const, _NO_UPPER_BOUND)
        steps = self.binary_search_steps
        done = bar.n
        for search_step in range(steps):
            bar.set_description(f"C&W {phase}c search {search_step + 1}/{steps}", refresh=False)
            if self.binary_search_steps >= 10 and search_step == self.binary_search_steps - 1:
                const = upper.clone()
            succeeded = self._minimise(model, x, w_start, labels, target, const, best_l2sq, best_x, bar)
            bar.update(done + (search_step + 1) * self.max_iterations - bar.n)  # what an early abort skipped
            # Success: c can shrink towards the lower bound. Failure: raise c, tenfold while unbounded.
            upper = torch.where(succeeded, torch.minimum(upper, const), upper)
            lower = torch.where(succeeded, lower, torch.maximum(lower, const))
            bounded = upper < _NO_UPPER_BOUND
            const = torch.where(bounded, (lower + upper) / 2, const * 10)

    def _minimise(self, model: nn.Module, x: torch.Tensor, w_start: torch.Tensor, labels: torch.Tensor,
                  target: torch.Tensor | None, const: torch.Tensor, best_l2sq: torch.Tensor,
                  best_x: torch.Tensor, bar: tqdm) -> torch.Tensor:
        """One binary-search step at fixed c; updates best_l2sq and best_x in place and returns which samples
        met a success in this step; bar advances by one per iteration. Only the samples that have not stopped
        early are computed."""
        modifier = torch.zeros_like(x)
        optimizer = RowAdam(modifier, lr=self.learning_rate)
        succeeded = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        previous_loss = torch.full((len(x),), math.inf, dtype=x.dtype, device=x.device)
        active = torch.arange(len(x), device=x.device)
        check_every = max(1, self.max_iterations // 10)
        for iteration in range(self.max_iterations):
            if len(active) == 0:
                break
            step = modifier[active].requires_grad_(True)
            with torch.enable_grad():
                x_new = self._to_box(w_start[active] + step)
                logits = model(x_new)
                l2sq = (x_new - x[active]).flatten(1).pow(2).sum(1)
                margin = self.margin(logits, labels[active], None if target is None else target[active])
                loss = l2sq + const[active] * margin.clamp(min=-self.confidence)
                # autograd.grad, not backward(): nothing accumulates on the model's parameters.
                (gradient,) = torch.autograd.grad(loss.sum(), step)
            with torch.no_grad():
                # Judged on this iterate, before the step, as the reference does: kappa must be met too.
                adversarial = margin < -self.confidence
                succeeded[active] |= adversarial
                better = adversarial & (l2sq < best_l2sq[active])
                best_l2sq[active[better]] = l2sq[better]
                best_x[active[better]] = x_new[better]
                optimizer.step(active, gradient)
                bar.update()
                if self.abort_early and iteration % check_every == 0:
                    stalled = loss > previous_loss[active] * 0.9999
                    previous_loss[active] = loss
                    active = active[~stalled]
        return succeeded


class RowAdam:
    """torch.optim.Adam's update (its defaults: betas 0.9 and 0.999, eps 1e-8, no weight decay) on the rows of
    one tensor, stepping only the rows it is given: a row that has stopped keeps its value and its moments. The
    rows that still step have all taken the same number of steps (a stopped row never resumes), so one step count
    serves them all. The same operations as torch's single-tensor Adam, so that with every row stepping the
    result is torch.optim.Adam's to the bit (on the CPU, where torch takes that path; on CUDA its default is the
    foreach kernel)."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self.steps = 0

    @torch.no_grad()
    def step(self, rows: torch.Tensor, gradient: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        exp_avg = self.exp_avg[rows].lerp_(gradient, 1 - beta1)
        exp_avg_sq = self.exp_avg_sq[rows].mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        self.exp_avg[rows], self.exp_avg_sq[rows] = exp_avg, exp_avg_sq
        denom = (exp_avg_sq.sqrt() / (1 - beta2 ** self.steps) ** 0.5).add_(self.eps)
        self.param[rows] = self.param[rows].addcdiv_(exp_avg, denom, value=-self.lr / (1 - beta1 ** self.steps))
