"""Per-class thresholds of the metric attacks, learned on a shadow model's members and non-members (Song &
Mittal 2021): for each class, the threshold that best separates the shadow's own training samples of that
class from its held-out ones, then applied to the target's samples of the same class."""

from __future__ import annotations

import numpy as np


def best_threshold(member: np.ndarray, nonmember: np.ndarray) -> float:
    """The threshold t maximising balanced accuracy of 'member iff score >= t' on these two sets.

    Candidates are every distinct score plus +inf (predict no member); ties go to the highest t, so a
    threshold is never lower than the data supports.
    """
    member, nonmember = np.asarray(member, dtype=np.float64), np.asarray(nonmember, dtype=np.float64)
    if len(member) == 0 or len(nonmember) == 0:
        raise ValueError("threshold fitting needs members and non-members")
    candidates = np.unique(np.concatenate([member, nonmember, [np.inf]]))
    tpr = 1.0 - np.searchsorted(np.sort(member), candidates, side="left") / len(member)
    tnr = np.searchsorted(np.sort(nonmember), candidates, side="left") / len(nonmember)
    accuracy = 0.5 * (tpr + tnr)
    best = np.flatnonzero(accuracy >= accuracy.max() - 1e-12)[-1]
    return float(candidates[best])


def fit_class_thresholds(member_scores: np.ndarray, member_labels: np.ndarray, nonmember_scores: np.ndarray,
                         nonmember_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """One threshold per class; a class the shadow sets lack gets the threshold fitted on all classes."""
    overall = best_threshold(member_scores, nonmember_scores)
    thresholds = np.full(n_classes, overall)
    for c in range(n_classes):
        m, n = member_scores[member_labels == c], nonmember_scores[nonmember_labels == c]
        if len(m) and len(n):
            thresholds[c] = best_threshold(m, n)
    return thresholds


def predict_members(scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """True where a sample's score reaches its class's threshold."""
    return np.asarray(scores) >= thresholds[np.asarray(labels)]
