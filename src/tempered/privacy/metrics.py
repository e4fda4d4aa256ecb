"""How well an attack separates members from non-members: balanced accuracy of its decisions, AUROC, membership
advantage (max TPR - FPR over thresholds) and TPR at a fixed low FPR, each with a bootstrap interval."""

from __future__ import annotations

from typing import Any

import numpy as np

from tempered.ood.metrics import auroc, bootstrap_interval, roc_points

FPR_LEVELS = (0.001, 0.01)


def advantage(members: Any, nonmembers: Any) -> float:
    """max over thresholds of TPR - FPR (Yeom et al. 2018's membership advantage)."""
    fpr, tpr = roc_points(members, nonmembers)
    return float(np.max(tpr - fpr))


def tpr_at_fpr(members: Any, nonmembers: Any, fpr_level: float) -> float:
    """The highest TPR among thresholds whose FPR is at most fpr_level (0 if only 'no member' qualifies)."""
    fpr, tpr = roc_points(members, nonmembers)
    return float(tpr[fpr <= fpr_level + 1e-12].max())


def decision_accuracy(member_decisions: Any, nonmember_decisions: Any) -> float:
    """Balanced accuracy of yes/no membership decisions: 0.5 (TPR + TNR)."""
    return 0.5 * (float(np.mean(member_decisions)) + 1.0 - float(np.mean(nonmember_decisions)))


def score_metrics(members: Any, nonmembers: Any, n_boot: int, level: float, seed: int) -> dict[str, float]:
    """AUROC, advantage and TPR at each FPR level, with '<name>_low'/'<name>_high' bootstrap bounds."""
    metrics = {"auroc": auroc, "advantage": advantage}
    metrics.update({f"tpr_at_{level_:g}_fpr": (lambda a, b, x=level_: tpr_at_fpr(a, b, x)) for level_ in FPR_LEVELS})
    out: dict[str, float] = {}
    for name, metric in metrics.items():
        point, low, high = bootstrap_interval(metric, members, nonmembers, n_boot=n_boot, level=level, seed=seed)
        out.update({name: point, f"{name}_low": low, f"{name}_high": high})
    # The balanced accuracy of the best single threshold is 0.5 + advantage / 2: Song et al. 2019's number (they
    # pick the threshold on the evaluation data itself, an upper bound for a threshold attack).
    for suffix in ("", "_low", "_high"):
        out[f"best_threshold_accuracy{suffix}"] = 0.5 + 0.5 * out[f"advantage{suffix}"]
    return out
