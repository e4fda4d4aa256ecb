"""Run every membership attack on one target, from logits alone: the metric attacks with per-class thresholds
from the shadow models, and the likelihood-ratio attack (offline and online) from the shadows' logits on the
target's candidates. Returns the metrics and the per-sample scores (so every number can be recomputed)."""

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


def likelihood_ratio(members: Logits, nonmembers: Logits, shadows_on_members: Sequence[torch.Tensor],
                     shadows_on_nonmembers: Sequence[torch.Tensor], candidate_in: np.ndarray | None,
                     boot: Bootstrap) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Carlini et al. 2022's likelihood-ratio attack, offline (each candidate against the shadows that never saw
    it) and, where candidate_in (shadows x candidates, members first) gives every candidate IN shadows as well,
    online (IN against OUT). candidate_in None: every shadow is OUT for every candidate, offline only.
    shadows_on_*: one logits tensor per shadow. Returns {attack: metrics} and {attack: per-candidate scores}."""
    phi = np.concatenate([lira.logit_confidence(members.logits, members.labels).numpy(),
                          lira.logit_confidence(nonmembers.logits, nonmembers.labels).numpy()])
    phis = np.stack([np.concatenate([lira.logit_confidence(on_m, members.labels).numpy(),
                                     lira.logit_confidence(on_n, nonmembers.labels).numpy()])
                     for on_m, on_n in zip(shadows_on_members, shadows_on_nonmembers, strict=True)])
    scores = {"lira_offline": lira.offline_scores(phi, phis, in_mask=candidate_in)}
    if candidate_in is not None:
        scores["lira_online"] = lira.online_scores(phi, phis, candidate_in)
    n = len(members.labels)
    return ({attack: score_metrics(s[:n], s[n:], boot.n_boot, boot.level, boot.seed) for attack, s in scores.items()},
            scores)


def attack_target(members: Logits, nonmembers: Logits, shadow_in: Logits, shadow_out: Logits,
                  shadows_on_members: Sequence[torch.Tensor], shadows_on_nonmembers: Sequence[torch.Tensor],
                  boot: Bootstrap, candidate_in: np.ndarray | None = None
                  ) -> tuple[dict[str, Mapping[str, float]], pd.DataFrame]:
    """Every attack on one target: {attack: metrics} and a per-sample table (member flag, label, scores)."""
    results, table = metric_attacks(members, nonmembers, shadow_in, shadow_out, boot)
    lira_results, lira_scores = likelihood_ratio(members, nonmembers, shadows_on_members, shadows_on_nonmembers,
                                                 candidate_in, boot)
    results.update(lira_results)
    for attack, scores in lira_scores.items():
        table[attack] = scores
    table.insert(0, "label", np.concatenate([members.labels.numpy(), nonmembers.labels.numpy()]))
    table.insert(0, "member", np.r_[np.ones(len(members.labels), bool), np.zeros(len(nonmembers.labels), bool)])
    return results, table
