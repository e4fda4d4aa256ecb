"""Temperature scaling and calibration metrics (Guo et al. 2017, "On Calibration of Modern Neural Networks").

Section 2 defines the metrics: reliability diagrams, expected and maximum calibration error over M equal-width
confidence bins, and NLL; section 4.2 fits one scalar temperature T on held-out data by minimising the NLL of
softmax(z/T). T leaves the argmax, hence accuracy, unchanged. The Brier score (Brier 1950) is the multi-class
mean squared error of the probability vector. Everything here is a pure function of tensors; the reference
implementation is gpleiss/temperature_scaling.

Bin convention (as in that reference): with edges e_m = m/M, bin m holds confidences in (e_{m-1}, e_m]. So a
confidence of exactly 1.0 lands in the last bin (a naive [lo, hi) binning drops it, and a softmax in float32
saturates to exactly 1.0 on many MNIST digits) and a confidence of exactly 0 joins the first bin instead of
being dropped.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

N_BINS = 15  # the M of Guo et al. 2017 and of the reference code


# --- temperature scaling ---------------------------------------------------------------------------------------


class NoFiniteOptimum(ValueError):
    """The NLL of softmax(z / T) has no minimum at a finite T > 0: it falls all the way to T -> `limit`.

    `limit` is math.inf (the true-class logit is on average no higher than the mean logit: scaling towards the
    uniform prediction only helps) or 0.0 (every sample classified correctly: sharpening only helps). A T from
    an optimiser in either case is wherever it stopped, not a fit.
    """

    def __init__(self, reason: str, limit: float):
        super().__init__(reason)
        self.reason, self.limit = reason, limit


def nll_slopes_in_inverse_temperature(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """d NLL / du at u = 1/T -> 0+ and as u -> inf, in closed form (float64).

    NLL(u) = mean_n [logsumexp_k(u z_nk) - u z_ny] is convex in u, with derivative
    mean_n [sum_k softmax(u z_n)_k z_nk - z_ny]. At u = 0 the softmax is uniform: mean_n(mean_k z_nk - z_ny).
    As u -> inf it concentrates on the largest logits: mean_n(max_k z_nk - z_ny) >= 0. A minimum at a finite
    T > 0 exists iff the first is negative and the second positive.
    """
    z = logits.detach().to(torch.float64)
    true = z.gather(1, labels.detach().to(z.device).long().view(-1, 1)).squeeze(1)
    return float((z.mean(dim=1) - true).mean()), float((z.amax(dim=1) - true).mean())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, init: float = 1.5, max_iter: int = 100,
                    tolerance_grad: float = 1e-9) -> float:
    """The T > 0 minimising mean NLL of softmax(logits / T) against labels (Guo et al. 2017, section 4.2).

    Optimises u = log T, which keeps T positive without a constraint, with L-BFGS and a strong-Wolfe line search
    (lr 1, the step a quasi-Newton method expects). The reference code steps T itself with lr 0.01 and
    max_iter 50 from T = 1.5 and no line search, which can stop short of the optimum when T is far from 1.5
    (distilled models have T near 1/20 of their training temperature); the line search makes the result the
    optimum, not wherever 50 small steps ended. The problem is one-dimensional and the NLL is convex in 1/T,
    so the optimum is unique when it exists. Whether it exists is decided first, in closed form
    (nll_slopes_in_inverse_temperature), never by seeing a huge or tiny T: raises NoFiniteOptimum when every
    sample is classified correctly (the NLL falls as T -> 0) or when the true-class logit is on average no
    higher than the mean logit, as for a model near chance (the NLL falls as T -> inf; an optimiser then
    returns a T of 1e6 that means nothing).
    """
    if len(logits) == 0:
        raise ValueError("cannot fit a temperature on zero samples")
    # float64: the NLL near its optimum is flat in T, and float32 round-off stalls the line search early.
    z = logits.detach().to(torch.float64)
    y = labels.detach().to(z.device)
    slope_0, slope_inf = nll_slopes_in_inverse_temperature(z, y)
    # Round-off of the float64 means: a slope within it of zero is zero (the NLL is flat there to that precision).
    tol = 1e-12 * float((z - z.gather(1, y.long().view(-1, 1))).abs().mean())
    if slope_0 >= -tol:
        raise NoFiniteOptimum(
            f"no finite optimum (T -> inf): the true-class logit is on average no higher than the mean logit "
            f"(d NLL / d(1/T) at 1/T = 0 is mean(mean_k z_k - z_y) = {slope_0:.4g} >= 0), so the NLL falls as "
            f"T -> inf, towards the uniform prediction (NLL ln {z.shape[1]} = {math.log(z.shape[1]):.4f}); "
            f"accuracy {float((z.argmax(1) == y).double().mean()):.4f}", limit=math.inf)
    if slope_inf <= tol:
        raise NoFiniteOptimum("no finite optimum (T -> 0): every sample is classified correctly (each "
                              "true-class logit is a largest one), so the NLL has no minimum at T > 0", limit=0.0)
    log_t = torch.tensor(math.log(init), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, tolerance_grad=tolerance_grad,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    closure()
    if not torch.isfinite(log_t) or abs(log_t.grad.item()) > 1e-5:
        log.warning("temperature fit may not have converged: log T = %s, d NLL / d log T = %s",
                    log_t.item(), log_t.grad.item())
    return float(log_t.exp().item())


def scale_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits divided by T; softmax of the result is the temperature-scaled prediction."""
    return logits / temperature


# --- metrics ---------------------------------------------------------------------------------------------------


def confidence_and_correct(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence max_k p_k and whether the argmax equals the label: the inputs of every binned metric."""
    confidence, prediction = probs.max(dim=1)
    return confidence, prediction == labels


class ReliabilityBins(NamedTuple):
    """Per-bin statistics of a reliability diagram; empty bins have count 0 and NaN means."""

    edges: torch.Tensor  # (n_bins + 1,) float64; bin m is (edges[m], edges[m + 1]], bin 0 also takes 0
    count: torch.Tensor  # (n_bins,) int64
    mean_confidence: torch.Tensor  # (n_bins,) float64
    accuracy: torch.Tensor  # (n_bins,) float64


def bin_index(confidences: torch.Tensor, n_bins: int = N_BINS) -> torch.Tensor:
    """Bin of each confidence under the (lo, hi] convention; 0 goes to the first bin, 1.0 to the last."""
    c = confidences.detach().cpu()
    if not c.is_floating_point():
        c = c.to(torch.float64)
    # Edges rounded to the confidences' own precision, so a float32 0.3 sits on the edge 3/10 as written (and as
    # the reference code compares), not just above the float64 value of 3/10.
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64).to(c.dtype)
    # bucketize with right=False returns i with edges[i-1] < c <= edges[i]: against the inner edges that is the
    # (lo, hi] bin; c <= 0 gives 0 and c > the last inner edge (1.0 included) gives n_bins - 1.
    return torch.bucketize(c, edges[1:-1], right=False)


def reliability_bins(confidences: torch.Tensor, correct: torch.Tensor, n_bins: int = N_BINS) -> ReliabilityBins:
    """Count, mean confidence and accuracy per equal-width bin (Guo et al. 2017, section 2, reliability diagrams)."""
    if confidences.shape != correct.shape or confidences.dim() != 1:
        raise ValueError(f"confidences {tuple(confidences.shape)} and correct {tuple(correct.shape)} must be"
                         " equal-length vectors")
    idx = bin_index(confidences, n_bins)
    c = confidences.detach().to(torch.float64).cpu()
    a = correct.detach().to(torch.float64).cpu()
    count = torch.bincount(idx, minlength=n_bins)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, c)
    correct_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, a)
    denominator = count.to(torch.float64)
    return ReliabilityBins(
        edges=torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64),
        count=count,
        mean_confidence=conf_sum / denominator,  # 0/0 = NaN marks an empty bin
        accuracy=correct_sum / denominator,
    )


def ece(confidences: torch.Tensor, correct: torch.Tensor, n_bins: int = N_BINS) -> float:
    """Expected calibration error: sum over bins of (n_m / n) |acc_m - conf_m| (Guo et al. 2017, section 2)."""
    bins = reliability_bins(confidences, correct, n_bins)
    filled = bins.count > 0
    gaps = (bins.accuracy[filled] - bins.mean_confidence[filled]).abs()
    return float((gaps * bins.count[filled]).sum() / bins.count.sum())


def mce(confidences: torch.Tensor, correct: torch.Tensor, n_bins: int = N_BINS) -> float:
    """Maximum calibration error: the largest |acc_m - conf_m| over non-empty bins (Guo et al. 2017, section 2)."""
    bins = reliability_bins(confidences, correct, n_bins)
    filled = bins.count > 0
    return float((bins.accuracy[filled] - bins.mean_confidence[filled]).abs().max())


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Multi-class Brier score: mean over samples of sum_k (p_k - 1[k = y])^2, in [0, 2]."""
    p = probs.detach().to(torch.float64)
    onehot = F.one_hot(labels.to(p.device), p.shape[1]).to(torch.float64)
    return float(((p - onehot) ** 2).sum(dim=1).mean())


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of softmax(logits / T); from logits, so saturated samples stay finite."""
    return float(F.cross_entropy(logits.detach().to(torch.float64) / temperature, labels.to(logits.device)))


def calibration_metrics(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                        n_bins: int = N_BINS) -> dict[str, float]:
    """Accuracy, ECE, MCE, Brier and NLL of softmax(logits / T): one row of the calibration table."""
    probs = torch.softmax(logits.detach().to(torch.float64) / temperature, dim=1)
    confidence, correct = confidence_and_correct(probs, labels.to(probs.device))
    return {
        "temperature": float(temperature),
        "accuracy": float(correct.to(torch.float64).mean()),
        "ece": ece(confidence, correct, n_bins),
        "mce": mce(confidence, correct, n_bins),
        "brier": brier_score(probs, labels),
        "nll": nll(logits, labels, temperature),
        "n": int(len(labels)),
    }
