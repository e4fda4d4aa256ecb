"""Run every membership attack on one target, from logits alone: the metric attacks with per-class thresholds
from a shadow model, and the offline likelihood-ratio attack from the shadows' logits on the target's
candidates. Returns the metrics and the per-sample scores (so every number can be recomputed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tempered.privacy import lira
from tempered.privacy.metrics import decision_accuracy, score_metrics
from tempered.privacy.scores import METRIC_SCORES
from tempered.privacy.thresholds import fit_class_thresholds, predict_members

NUM_CLASSES = 10


@dataclass(frozen=True)
class Logits:
    """A model's logits on a set of samples, with the samples' true labels."""

    logits: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class Bootstrap:
    n_boot: int
    level: float
    seed: int


def metric_attacks(members: Logits, nonmembers: Logits, shadow_in: Logits, shadow_out: Logits,
                   boot: Bootstrap) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
    """Each metric attack: thresholds per class fitted on the shadow's own members vs non-members, applied to
    the target's; balanced decision accuracy plus the threshold-free score metrics."""
    results, columns = {}, {}
    for name, score in METRIC_SCORES.items():
        s_in = score(shadow_in.logits, shadow_in.labels).numpy()
        s_out = score(shadow_out.logits, shadow_out.labels).numpy()
        thresholds = fit_class_thresholds(s_in, shadow_in.labels.numpy(), s_out, shadow_out.labels.numpy(), NUM_CLASSES)
        t_in = score(members.logits, members.labels).numpy()
        t_out = score(nonmembers.logits, nonmembers.labels).numpy()
        accuracy = decision_accuracy(predict_members(t_in, members.labels.numpy(), thresholds),
                                     predict_members(t_out, nonmembers.labels.numpy(), thresholds))
        results[name] = {"accuracy": accuracy, **score_metrics(t_in, t_out, boot.n_boot, boot.level, boot.seed)}
        columns[name] = np.concatenate([t_in, t_out])
    return results, pd.DataFrame(columns)


def lira_offline(members: Logits, nonmembers: Logits, shadows_on_members: Sequence[torch.Tensor],
                 shadows_on_nonmembers: Sequence[torch.Tensor], boot: Bootstrap) -> tuple[dict[str, float], np.ndarray]:
    """The offline likelihood-ratio attack: every shadow is OUT for every candidate (shadows train on P2, the
    candidates come from P1 and the test set). shadows_on_*: one logits tensor per shadow."""
    phi_in = lira.logit_confidence(members.logits, members.labels).numpy()
    phi_out = lira.logit_confidence(nonmembers.logits, nonmembers.labels).numpy()
    out_in = np.stack([lira.logit_confidence(z, members.labels).numpy() for z in shadows_on_members])
    out_out = np.stack([lira.logit_confidence(z, nonmembers.labels).numpy() for z in shadows_on_nonmembers])
    scores = lira.offline_scores(np.concatenate([phi_in, phi_out]), np.concatenate([out_in, out_out], axis=1))
    n = len(phi_in)
    return score_metrics(scores[:n], scores[n:], boot.n_boot, boot.level, boot.seed), scores


def attack_target(members: Logits, nonmembers: Logits, shadow_in: Logits, shadow_out: Logits,
                  shadows_on_members: Sequence[torch.Tensor], shadows_on_nonmembers: Sequence[torch.Tensor],
                  boot: Bootstrap) -> tuple[dict[str, Mapping[str, float]], pd.DataFrame]:
    """Every attack on one target: {attack: metrics} and a per-sample table (member flag, label, scores)."""
    results, table = metric_attacks(members, nonmembers, shadow_in, shadow_out, boot)
    results["lira_offline"], table["lira_offline"] = lira_offline(members, nonmembers, shadows_on_members,
                                                                  shadows_on_nonmembers, boot)
    table.insert(0, "label", np.concatenate([members.labels.numpy(), nonmembers.labels.numpy()]))
    table.insert(0, "member", np.r_[np.ones(len(members.labels), bool), np.zeros(len(nonmembers.labels), bool)])
    return results, table
