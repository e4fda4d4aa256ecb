"""Threshold-free and fixed-TPR detection metrics (Hendrycks & Gimpel 2017, section 2; DeVries & Taylor 2018).

Convention throughout: a higher score means "more in-distribution", and the in-distribution samples are the
positive class; a sample is called in-distribution when its score is >= the threshold. So TPR is the fraction
of in-distribution samples kept and FPR the fraction of out-of-distribution samples wrongly kept. The metrics
are those of the ODIN / learned-confidence protocol:

- FPR at 95% TPR: FPR at the highest threshold whose TPR reaches 0.95 (the roc_curve reading
  `fpr[argmax(tpr >= 0.95)]`; ODIN's code instead averages FPR over a fine threshold grid with TPR within
  0.9495..0.9505, which needs no threshold to hit 0.95 exactly but depends on the grid);
- detection error: min over thresholds of 0.5 (1 - TPR) + 0.5 FPR, equal priors on the two sets;
- AUROC (ties count one half, the Mann-Whitney statistic);
- AUPR-in: average precision with in-distribution positive and the score as is;
- AUPR-out: average precision with out-of-distribution positive and the score negated.

Average precision is the step-wise sum of (R_n - R_{n-1}) P_n over distinct thresholds, the definition
scikit-learn's average_precision_score uses (no interpolation). All metrics are computed exactly from the
sorted scores, not on a threshold grid. Inputs are 1-D arrays or tensors; outputs are floats in [0, 1].

Misclassification detection (Hendrycks & Gimpel 2017, section 3) reuses the same machinery with the
in-distribution errors as the positive class: see misclassification_metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

TPR_LEVEL = 0.95

Metric = Callable[[np.ndarray, np.ndarray], float]


def _as_scores(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on an accelerator
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(array) == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds non-finite scores")
    return array


def _operating_points(scores_pos: Any, scores_neg: Any) -> tuple[np.ndarray, np.ndarray]:
    """True- and false-positive counts at every distinct threshold, highest threshold first.

    Point i counts the samples with score >= the i-th largest distinct score. Tied samples move together,
    which is what makes the curves (and so AUROC and average precision) agree with scikit-learn under ties.
    """
    pos = _as_scores(scores_pos, "positive scores")
    neg = _as_scores(scores_neg, "negative scores")
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(len(pos), dtype=np.int64), np.zeros(len(neg), dtype=np.int64)])
    order = np.argsort(-scores, kind="stable")
    scores, is_pos = scores[order], is_pos[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(is_pos)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return tp, fp


def _roc(scores_in: Any, scores_out: Any) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, starting from the all-rejecting point (0, 0)."""
    tp, fp = _operating_points(scores_in, scores_out)
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return fpr, tpr


def roc_points(scores_pos: Any, scores_neg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of 'positive iff score >= t' at every distinct threshold t, from (0, 0) to (1, 1)."""
    return _roc(scores_pos, scores_neg)


def fpr_at_tpr(scores_in: Any, scores_out: Any, tpr: float = TPR_LEVEL) -> float:
    """FPR at the highest threshold keeping at least `tpr` of the in-distribution samples (lower is better)."""
    fpr_curve, tpr_curve = _roc(scores_in, scores_out)
    # The curve is monotone, so the first point reaching the TPR is also the one with the smallest FPR.
    return float(fpr_curve[np.argmax(tpr_curve >= tpr)])


def detection_error(scores_in: Any, scores_out: Any) -> float:
    """min over thresholds of 0.5 (1 - TPR) + 0.5 FPR; at most 0.5, which rejecting everything achieves."""
    fpr_curve, tpr_curve = _roc(scores_in, scores_out)
    return float(np.min(0.5 * (1.0 - tpr_curve) + 0.5 * fpr_curve))


def auroc(scores_in: Any, scores_out: Any) -> float:
    """Area under the ROC curve by the trapezoid rule: P(score_in > score_out) + 0.5 P(tie)."""
    fpr_curve, tpr_curve = _roc(scores_in, scores_out)
    return float(np.trapezoid(tpr_curve, fpr_curve))


def average_precision(scores_pos: Any, scores_neg: Any) -> float:
    """Step-wise area under the precision-recall curve with the first argument's samples as positives."""
    tp, fp = _operating_points(scores_pos, scores_neg)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def aupr_in(scores_in: Any, scores_out: Any) -> float:
    """Average precision with in-distribution as the positive class (higher score = in-distribution)."""
    return average_precision(scores_in, scores_out)


def aupr_out(scores_in: Any, scores_out: Any) -> float:
    """Average precision with out-of-distribution as the positive class, ranked by the negated score."""
    return average_precision(-_as_scores(scores_out, "scores_out"), -_as_scores(scores_in, "scores_in"))


OOD_METRICS: dict[str, Metric] = {
    "fpr_at_95_tpr": fpr_at_tpr,
    "detection_error": detection_error,
    "auroc": auroc,
    "aupr_in": aupr_in,
    "aupr_out": aupr_out,
}


def ood_metrics(scores_in: Any, scores_out: Any) -> dict[str, float]:
    """All five OOD metrics; in-distribution positive, higher score = more in-distribution."""
    return {name: metric(scores_in, scores_out) for name, metric in OOD_METRICS.items()}


def misclassification_metrics(scores: Any, correct: Any) -> dict[str, float]:
    """Detection of in-distribution errors from a confidence score (Hendrycks & Gimpel 2017, section 3).

    Here the misclassified samples are the positive class and the detector ranks by the NEGATED score (low
    confidence flags an error). So fpr_at_95_tpr is the fraction of correctly classified samples flagged when
    95% of the errors are caught, aupr_err is the average precision for finding errors (Hendrycks & Gimpel's
    "AUPR Err") and aupr_succ that for finding correct predictions with the score as is ("AUPR Succ"). AUROC
    is the same whichever class is positive.
    """
    s = _as_scores(scores, "scores")
    ok = np.asarray(correct.detach().cpu().numpy() if hasattr(correct, "detach") else correct, dtype=bool)
    ok = ok.reshape(-1)
    if ok.shape != s.shape:
        raise ValueError(f"scores {s.shape} and correct {ok.shape} differ in length")
    if ok.all() or not ok.any():
        raise ValueError("misclassification detection needs both correct and misclassified samples")
    errors, successes = -s[~ok], -s[ok]
    return {
        "fpr_at_95_tpr": fpr_at_tpr(errors, successes),
        "detection_error": detection_error(errors, successes),
        "auroc": auroc(errors, successes),
        "aupr_err": average_precision(errors, successes),
        "aupr_succ": average_precision(s[ok], s[~ok]),
    }


def bootstrap_interval(metric: Metric, scores_in: Any, scores_out: Any, n_boot: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float, float]:
    """(point, low, high): the metric on the data and a percentile bootstrap interval at `level`.

    The two sets are resampled separately, each with replacement at its own size, because they are separate
    samples (test digits and an OOD set) whose sizes the protocol fixes. For misclassification detection pass
    (-scores[errors], -scores[correct]), the positives first as in misclassification_metrics; the error rate
    is then held fixed. Seeded with
    numpy's default_rng(seed), so the interval is repeatable; a percentile interval is not guaranteed to
    contain the point estimate when the metric's bootstrap distribution is very skewed.
    """
    a = _as_scores(scores_in, "scores_in")
    b = _as_scores(scores_out, "scores_out")
    replicates = np.array([metric(a[i], b[j]) for i, j in bootstrap_resamples(len(a), len(b), n_boot, seed)])
    low, high = percentile_interval(replicates, level)
    return float(metric(a, b)), low, high


def bootstrap_resamples(n_in: int, n_out: int, n_boot: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The bootstrap's resamples of two separate samples: per draw, indices into each, with replacement at its
    own size (seeded with numpy's default_rng(seed): the same draws for the same arguments)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n_in, n_in), rng.integers(0, n_out, n_out)


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` interval of the bootstrap replicates."""
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(low), float(high)
