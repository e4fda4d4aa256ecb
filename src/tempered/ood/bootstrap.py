"""All five OOD metrics of tempered.ood.metrics from one sort, and bootstrap intervals for all of them at once.

The pipeline reports FPR@95TPR, detection error, AUROC, AUPR-in and AUPR-out with percentile bootstrap intervals
for every (model, detector, dataset): about thirty score pairs per model, each with 1,000 replicates. Calling
tempered.ood.metrics.bootstrap_interval once per metric sorts every replicate five times. Here the pooled scores
are sorted once: a bootstrap replicate is a multiset of the original samples, described completely by how often
each was drawn, so its operating points are cumulative sums of those counts in the one sorted order.

The replicates are drawn with the same generator calls in the same order as bootstrap_interval (for each
replicate, in-distribution indices, then OOD indices), so the intervals are the same numbers it gives, metric by
metric (tested). Conventions are those of tempered.ood.metrics: higher score = more in-distribution, the
in-distribution samples are the positive class.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tempered.ood.metrics import TPR_LEVEL, _as_scores

METRIC_NAMES = ("fpr_at_95_tpr", "detection_error", "auroc", "aupr_in", "aupr_out")


class _Pooled(NamedTuple):
    is_pos: np.ndarray  # (n,) 1 for an in-distribution sample, in descending score order
    source: np.ndarray  # (n,) index of the sample in the concatenation [scores_in, scores_out], same order
    last_of_tie: np.ndarray  # position of the last sample of each group of equal scores


def _pool(scores_in: Any, scores_out: Any) -> tuple[_Pooled, int, int]:
    pos = _as_scores(scores_in, "scores_in")
    neg = _as_scores(scores_out, "scores_out")
    scores = np.concatenate([pos, neg])
    order = np.argsort(-scores, kind="stable")
    is_pos = np.r_[np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)][order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores[order])), len(scores) - 1]
    return _Pooled(is_pos, order, last_of_tie), len(pos), len(neg)


def _counts(pooled: _Pooled, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(tp, fp) at every distinct threshold present (weight > 0), highest first, as in metrics._operating_points."""
    if weights is None:
        tp = np.cumsum(pooled.is_pos)[pooled.last_of_tie]
        return tp, (pooled.last_of_tie + 1) - tp
    w = weights[pooled.source]
    tp = np.cumsum(w * pooled.is_pos)[pooled.last_of_tie]
    total = np.cumsum(w)[pooled.last_of_tie]
    # A group of tied scores none of whose samples was drawn is no threshold of this replicate.
    present = np.diff(np.r_[0, total]) > 0
    return tp[present], (total - tp)[present]


def _metrics_from_counts(tp: np.ndarray, fp: np.ndarray) -> dict[str, float]:
    n_pos, n_neg = tp[-1], fp[-1]
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    ap_in = float(np.sum(np.diff(np.r_[0.0, tp / n_pos]) * (tp / (tp + fp))))
    # AUPR-out ranks by the negated score: thresholds ascend, and "kept" means score <= s. Below the i-th distinct
    # score (descending) lie all samples except those above it, i.e. except the counts at point i - 1.
    out_kept = (n_neg - np.r_[0, fp[:-1]])[::-1]
    in_kept = (n_pos - np.r_[0, tp[:-1]])[::-1]
    ap_out = float(np.sum(np.diff(np.r_[0.0, out_kept / n_neg]) * (out_kept / (out_kept + in_kept))))
    return {
        "fpr_at_95_tpr": float(fpr[np.argmax(tpr >= TPR_LEVEL)]),
        "detection_error": float(np.min(0.5 * (1.0 - tpr) + 0.5 * fpr)),
        "auroc": float(np.trapezoid(tpr, fpr)),
        "aupr_in": ap_in,
        "aupr_out": ap_out,
    }


def all_metrics(scores_in: Any, scores_out: Any) -> dict[str, float]:
    """The five metrics of tempered.ood.metrics.ood_metrics from one sort (same values)."""
    pooled, _, _ = _pool(scores_in, scores_out)
    return _metrics_from_counts(*_counts(pooled, None))


def roc_curve(scores_in: Any, scores_out: Any) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, from the all-rejecting point (0, 0): the curve AUROC integrates."""
    pooled, _, _ = _pool(scores_in, scores_out)
    tp, fp = _counts(pooled, None)
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def bootstrap_metrics(scores_in: Any, scores_out: Any, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> dict[str, dict[str, float]]:
    """{metric: {"value", "low", "high"}}: each metric on the data and its percentile bootstrap interval.

    The two sets are resampled separately at their own sizes (see metrics.bootstrap_interval). For
    misclassification detection pass (-scores[errors], -scores[correct]): aupr_in is then "AUPR Err" and
    aupr_out "AUPR Succ" of Hendrycks & Gimpel 2017.
    """
    pooled, n_in, n_out = _pool(scores_in, scores_out)
    point = _metrics_from_counts(*_counts(pooled, None))
    rng = np.random.default_rng(seed)
    replicates = {name: np.empty(n_boot) for name in METRIC_NAMES}
    for i in range(n_boot):
        drawn_in = np.bincount(rng.integers(0, n_in, n_in), minlength=n_in)
        drawn_out = np.bincount(rng.integers(0, n_out, n_out), minlength=n_out)
        values = _metrics_from_counts(*_counts(pooled, np.concatenate([drawn_in, drawn_out])))
        for name in METRIC_NAMES:
            replicates[name][i] = values[name]
    alpha = (1.0 - level) / 2.0
    result = {}
    for name in METRIC_NAMES:
        low, high = np.quantile(replicates[name], [alpha, 1.0 - alpha]) if n_boot else (point[name], point[name])
        result[name] = {"value": point[name], "low": float(low), "high": float(high)}
    return result
