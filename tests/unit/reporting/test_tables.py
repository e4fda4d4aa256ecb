"""Every markdown table the reports write renders through tempered.reporting.tables.markdown_table. Each renderer's
output on a small input is pinned byte for byte: the strings below are what the hand-written renderers produced
before they shared it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tempered import costs
from tempered.reporting.tables import markdown_table
from tempered.stages.attacks import distillation_report
from tempered.stages.calibration import steps as calibration
from tempered.stages.membership import report as membership_report
from tempered.stages.ood import steps as ood
from tempered.stages.report import reproduction as reproduction_report
from tempered.stages.report.claims import NOT_REPRODUCED, REPRODUCED, Measurement, Outcome
from tempered.stages.szegedy import report as szegedy_report


def test_a_table_is_its_header_an_alignment_row_and_one_line_per_row():
    assert markdown_table(["a", "b"], [["x", 1], ["", 2.5]]) == ["| a | b |", "|---|---|", "| x | 1 |", "|  | 2.5 |"]
    assert markdown_table(["a", "b", "c", "d"], [], align="-lrc") == ["| a | b | c | d |", "|---|:---|---:|:---:|"]


@pytest.mark.parametrize("align", ["-", "-rx"])
def test_an_alignment_names_each_column(align):
    with pytest.raises(ValueError, match="per column"):
        markdown_table(["a", "b", "c"], [], align=align)


# --- small inputs ---


def costs_table():
    return pd.DataFrame({"rule": ["train_model", "plot"], "jobs": [3, 1], "wall_total_s": [9000.0, 42.25],
                         "wall_max_s": [3600.0, 42.25], "cpu_total_s": [250.0, 40.0], "peak_rss_mb": [1536.4, np.nan]})


def outcomes():
    claim = {"id": "a", "paper": "p", "where": "Table 1", "quantity": "test error", "published": 0.0092,
             "rule": {"kind": "abs", "tol": 0.002}}
    other = {**claim, "where": "Fig. 2", "quantity": "ECE", "dataset": "CIFAR-10", "rule": {"kind": "rel", "tol": 0.1}}
    return [Outcome(claim, REPRODUCED, Measurement(0.00931, 0.0081, 0.0105, 3)),
            Outcome(other, NOT_REPRODUCED, Measurement(0.05, None, None, 1), reason="far", cause="bins differ")]


def calibration_table():
    rows = [["cnn", 0, "cnn", np.nan, True, 1.2345, 0.991, 0.031, 0.029, 0.004, 0.0012, 0.25, 0.11, 0.014, 0.0139,
             10000, ""],
            ["cnn_T20", 1, "cnn", 20.0, False, np.nan, 0.98, 0.07, np.nan, 0.009, np.nan, 0.5, np.nan, 0.03, np.nan,
             10000, "no finite optimum"]]
    return pd.DataFrame(rows, columns=calibration.CALIBRATION_COLUMNS)


def ood_inputs():
    protocol = {"n_in_report": 500, "bootstrap": "200 resamples", "ood_tune": "first 100", "n_in_tune": 100,
                "in_tune_set": "validation", "selection": "best AUROC", "ood_report": "the rest"}
    records = [{"protocol": protocol, "skipped_datasets": {"notmnist": "no network"}}]
    manifest = {"datasets": {"fashion": {"status": "ok"}}}
    metric = {"auroc": 0.9876, "fpr_at_95_tpr": 0.05, "detection_error": 0.04, "aupr_in": 0.99, "aupr_out": 0.98,
              "aupr_err": 0.3, "aupr_succ": 0.995}
    rows = []
    for task, dataset, temperature, eps in (("ood", "fashion", 1000.0, 0.0014), ("ood", "noise", np.nan, np.nan),
                                            ("misclassification", "fashion", np.nan, np.nan)):
        row = {"model": "cnn", "seed": 0, "task": task, "dataset": dataset, "detector": "odin",
               "temperature": temperature, "eps": eps}
        for m, v in metric.items():
            row.update({m: v, f"{m}_low": v - 0.01, f"{m}_high": min(v + 0.01, 1.0)})
        rows.append(row)
    return pd.DataFrame(rows), records, manifest


def membership_records():
    target = {"train_size": 1000, "training_temperature": 1.0, "robust_training": False, "train_accuracy": 1.0,
              "test_accuracy": 0.95, "generalization_gap": 0.05, "fitted_temperature": 1.5, "ece": 0.02,
              "ece_scaled": 0.01, "pgd_train_accuracy": 0.4, "pgd_test_accuracy": 0.3125,
              "robust_generalization_gap": 0.0875}
    records = []
    for seed, shift in ((0, 0.0), (1, 0.013), (2, -0.021)):
        attacks = {}
        for variant in ("temperature_scaled", "deployed"):
            attacks[variant] = {}
            for attack, base in (("lira_offline", 0.61), ("confidence", 0.55)):
                m = {"accuracy": 0.52}
                for i, col in enumerate(("auroc", "advantage", "tpr_at_0.001_fpr", "tpr_at_0.01_fpr",
                                         "best_threshold_accuracy")):
                    v = base + shift + 0.001 * i
                    m.update({col: v, f"{col}_low": v - 0.02, f"{col}_high": v + 0.02})
                attacks[variant][attack] = m
        records.append({"model": "mi1000_cnn", "inner_model": "cnn", "seed": seed, "target": target,
                        "attacks": attacks})
    hot = dict(target, training_temperature=20.0, fitted_temperature=math.inf)
    for key in ("pgd_train_accuracy", "pgd_test_accuracy", "robust_generalization_gap"):
        del hot[key]  # a record from before robustness was measured
    records.append({"model": "mi1000_cnn_T20", "inner_model": "cnn_T20", "seed": 0, "target": hot,
                    "attacks": {"deployed": {"confidence": records[0]["attacks"]["deployed"]["confidence"]}}})
    return records


def distillation_table():
    rows = []
    for model, role, t in (("cnn", "base", np.nan), ("student_T20", "student", 20.0)):
        for quantity, mean in (("test_accuracy", 0.991), ("jsma.success_rate", 0.97), ("jsma.distortion_mean", 40.0),
                               ("gradient_log10_mean_abs_median", -3.25)):
            low, high = (mean - 0.01, mean + 0.01) if role == "base" else (np.nan, np.nan)
            rows.append({"model": model, "role": role, "T": t, "quantity": quantity, "mean": mean,
                         "ci95_low": low, "ci95_high": high, "n_seeds": 3, "paper": 0.95 if role == "base" else np.nan})
    return pd.DataFrame(rows)


def szegedy_rows():
    return ["paper row", "model", "test error"], [["FC10(1e-4)", "fc10", "0.017 (0.017)"], ["FC10(1)", "fc10_l1", "-"]]


# --- what the renderers wrote before they shared markdown_table ---

COSTS = (
    "# Costs of the `smoke` run, rule by rule\n"
    "\n"
    "Measured by Snakemake's `benchmark:` record of every job (results/cost_records/smoke/). Total "
    "wall time is the sum over\n"
    "jobs (one job at a time); runs with more cores or on a cluster overlap jobs and take less. Peak "
    "memory\n"
    "is the largest resident set of one job.\n"
    "\n"
    "| rule | jobs | wall time, total | longest job | CPU time | peak memory |\n"
    "|---|---:|---:|---:|---:|---:|\n"
    "| train_model | 3 | 2.50 h | 60.0 min | 4.2 min | 1,536 MB |\n"
    "| plot | 1 | 42.2 s | 42.2 s | 40.0 s | - |\n"
    "| **all** | 4 | 2.51 h | 60.0 min | 4.8 min | 1,536 MB |\n"
)

CLAIMS_TABLE = (
    "| claim | where | published | ours [95% interval] | rule | verdict | cause (measured) |\n"
    "|---|---|---|---|---|---|---|\n"
    "| test error | Table 1 | 0.0092 | 0.00931 [0.0081, 0.0105] | within 0.002 abs. | reproduced |  "
    "|\n"
    "| ECE | Fig. 2 (CIFAR-10) | 0.0092 | 0.05 | within 10% rel. | not reproduced: far | bins differ "
    "|"
)

CALIBRATION = (
    "| model | seed | distillation_temperature | fitted_temperature | accuracy | nll_before | "
    "nll_after | ece_before | ece_after | mce_before | mce_after | brier_before | brier_after | "
    "n_test | note |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    "| cnn | 0 |  | 1.234 | 99.10 | 0.031 | 0.029 | 0.40 | 0.12 | 25.00 | 11.00 | 0.014 | 0.0139 | "
    "10000 |  |\n"
    "| cnn_T20 | 1 | 20 | not fitted | 98.00 | 0.07 |  | 0.90 |  | 50.00 |  | 0.03 |  | 10000 | no "
    "finite optimum |\n"
    "\n"
    "Models not fitted (reason in `note`): cnn_T20.\n"
)

OOD = (
    "## OOD detection\n"
    "\n"
    "| model | seed | dataset | detector | setting | auroc | fpr_at_95_tpr | detection_error | "
    "aupr_in | aupr_out |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
    "| cnn | 0 | fashion | odin | temperature=1000, eps=0.0014 | 98.8 [97.8, 99.8] | 5.0 [4.0, 6.0] "
    "| 4.0 [3.0, 5.0] | 99.0 [98.0, 100.0] | 98.0 [97.0, 99.0] |\n"
    "| cnn | 0 | noise | odin |  | 98.8 [97.8, 99.8] | 5.0 [4.0, 6.0] | 4.0 [3.0, 5.0] | 99.0 [98.0, "
    "100.0] | 98.0 [97.0, 99.0] |\n"
    "\n"
    "## Misclassification detection (errors positive)\n"
    "\n"
    "| model | seed | tuned on | detector | setting | auroc | fpr_at_95_tpr | detection_error | "
    "aupr_err | aupr_succ |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
    "| cnn | 0 | fashion | odin |  | 98.8 [97.8, 99.8] | 5.0 [4.0, 6.0] | 4.0 [3.0, 5.0] | 30.0 "
    "[29.0, 31.0] | 99.5 [98.5, 100.0] |\n"
)

MEMBERSHIP = (
    "| target | dataset | size | T (training) | train acc. | held-out acc. | gap | fitted T | ECE -> scaled | "
    "PGD acc. train / held out (gap) |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
    "| mi1000_cnn | mnist | 1000 | 1 | 1.0000 | 0.9500 | +0.0500 | 1.5 | 0.0200 -> 0.0100 | "
    "0.4000 / 0.3125 (+0.0875) |\n"
    "| mi1000_cnn_T20 | mnist | 1000 | 20 | 1.0000 | 0.9500 | +0.0500 | not fitted: no finite optimum | "
    "0.0200 -> - | not measured |\n"
    "\n"
    "## deployed\n"
    "\n"
    "| target | lira_offline | confidence |\n"
    "|---|---|---|\n"
    "| mi1000_cnn | 0.607 [0.565, 0.650] / 0.610 | 0.547 [0.505, 0.590] / 0.550 |\n"
    "| mi1000_cnn_T20 |  | 0.550 [0.530, 0.570] / 0.553 |\n"
    "\n"
    "## temperature_scaled\n"
    "\n"
    "| target | lira_offline | confidence |\n"
    "|---|---|---|\n"
    "| mi1000_cnn | 0.607 [0.565, 0.650] / 0.610 | 0.547 [0.505, 0.590] / 0.550 |\n"
    "| mi1000_cnn_T20 |  |  |\n"
)

DISTILLATION = (
    "| model | T | test accuracy | jsma success | jsma distortion | JSMA robustness (features "
    "changed) | median log10 mean-abs input gradient |\n"
    "|---|---|---|---|---|---|---|\n"
    "| cnn | - | 0.9910 [0.9810, 1.0010] (paper 0.9500) | 0.970 [0.960, 0.980] (paper 0.950) | "
    "40.000 [39.990, 40.010] (paper 0.950) | - | -3.25 [-3.26, -3.24] (paper 0.95) |\n"
    "| student_T20 | 20 | 0.9910 | 0.970 | 40.000 | - | -3.25 |\n"
    "\n"
)

SZEGEDY = (
    "## Adversarial training (section 4.3): FC100-100-10 test error\n"
    "\n"
    "| regulariser | model | test error |\n"
    "|---|---|---|\n"
    "| weight decay | fc100_100_10 | 0.0167 (0.0160) |\n"
    "| adversarial | fc100_100_10_adv | - (0.0118) |"
)


def test_the_cost_table():
    assert costs.render_markdown(costs_table(), "smoke", Path("results/cost_records/smoke")) == COSTS


def test_the_claims_table():
    assert reproduction_report.claims_table(outcomes()) == CLAIMS_TABLE


def test_the_calibration_table():
    text = calibration._markdown(calibration_table())
    assert text[text.index("| model"):] == CALIBRATION


def test_the_ood_tables():
    text = ood._markdown(*ood_inputs())
    assert text[text.index("## OOD detection"):] == OOD


def test_the_membership_tables():
    text = membership_report.markdown(membership_report.membership_frame(membership_records()))
    assert text[text.index("| target"):] == MEMBERSHIP


def test_each_target_against_the_base_is_paired_over_seeds_and_said_in_words():
    """A PGD-trained target whose LiRA AUROC is the base's plus 0.02, 0.03, 0.04 on seeds 0-2 (same candidates):
    change 0.03, t-interval 0.03 -+ 4.303 * 0.01 / sqrt 3, detectable (4.303 + 1.061) * 0.01 / sqrt 3. A target
    measured on one seed gets its change alone, said to have no interval."""
    base = membership_records()[:3]
    robust = []
    for record, delta in zip(base, (0.02, 0.03, 0.04), strict=True):
        attacks = {variant: {attack: {k: (v + delta if k.startswith("auroc") and attack == "lira_offline" else v)
                                      for k, v in m.items()} for attack, m in by_attack.items()}
                   for variant, by_attack in record["attacks"].items()}
        robust.append(dict(record, model="mi1000_cnn_pgd", inner_model="cnn_pgd", attacks=attacks,
                           target=dict(record["target"], robust_training=True)))
    frame = membership_report.membership_frame(membership_records() + robust)
    summary = membership_report.summary(frame, "cnn", "cnn_pgd")
    versus = summary["versus_base"]
    assert (versus["base"], versus["train_size"]) == ("mi1000_cnn", 1000)
    change = versus["targets"]["mi1000_cnn_pgd"]["lira_offline"]["auroc"]
    half = 4.303 * 0.01 / math.sqrt(3)
    assert change["change"] == pytest.approx(0.03) and change["n_seeds"] == 3
    assert (change["low"], change["high"]) == (pytest.approx(0.03 - half), pytest.approx(0.03 + half))
    assert change["detectable"] == pytest.approx((4.303 + 1.061) * 0.01 / math.sqrt(3)) and change["excludes_zero"]
    unchanged = versus["targets"]["mi1000_cnn_pgd"]["confidence"]["best_threshold_accuracy"]
    assert unchanged["change"] == pytest.approx(0.0, abs=1e-12) and not unchanged["excludes_zero"]
    one_seed = versus["targets"]["mi1000_cnn_T20"]["confidence"]["best_threshold_accuracy"]
    assert one_seed == {"change": pytest.approx(0.0, abs=1e-12), "n_seeds": 1, "interval": "one seed: none"}
    assert "lira_offline" not in versus["targets"]["mi1000_cnn_T20"]  # it has no LiRA record: nothing to pair
    claim = summary["robust_claim"]  # workflow/claims.yaml's question.robust_leaks_more reads these
    assert (claim["model"], claim["base"], claim["n_seeds"]) == ("mi1000_cnn_pgd", "mi1000_cnn", 3)
    assert (claim["auroc_change"], claim["auroc_change_low"]) == (change["change"], change["low"])

    text = membership_report.markdown(frame, None, versus)
    assert "| mi1000_cnn_pgd | +0.0300* [+0.0052, +0.0548] (±0.0310) |" in text
    assert "| mi1000_cnn_T20 | not measured | +0.0000 (one seed: no interval) |" in text
    words = membership_report.findings(summary, "cnn", [(20.0, "cnn_T20")], "cnn_pgd")
    assert "The PGD-trained cnn_pgd minus the base cnn, paired the same way: LiRA AUROC +0.0300 [+0.0052, " \
           "+0.0548], distinguishable from zero" in words


def test_song_et_al_s_pair_is_compared_within_fashion_mnist_and_never_with_the_mnist_base():
    """Song et al.'s natural and PGD-trained Fashion-MNIST CNNs on seeds 0-2, the robust one's LiRA AUROC higher by
    0.02, 0.03, 0.04 and its scaled AUROC lower by 0.01 on each seed: their numbers and both questions read within
    Fashion-MNIST (robust minus natural: 0.03 across seeds; scaling: -0.01); the MNIST base is compared with
    MNIST targets only (different images behind the same candidate indices are not paired)."""
    def song(name, delta, scaled_delta, robust):
        out = []
        for record, d in zip(membership_records()[:3], delta, strict=True):
            attacks = {variant: {attack: {k: (v + d + (scaled_delta if variant == "temperature_scaled" else 0.0)
                                              if k.startswith("auroc") and attack == "lira_offline" else v)
                                          for k, v in m.items()} for attack, m in by_attack.items()}
                       for variant, by_attack in record["attacks"].items()}
            out.append(dict(record, model=f"mi1000_{name}", inner_model=name, attacks=attacks,
                            target=dict(record["target"], dataset="fashion_mnist", robust_training=robust)))
        return out

    records = (membership_records()[:3] + song("song_fmnist", (0.0, 0.0, 0.0), 0.0, False)
               + song("song_fmnist_pgd", (0.02, 0.03, 0.04), -0.01, True))
    frame = membership_report.membership_frame(records)
    paired = pd.DataFrame([{"model": "mi1000_song_fmnist_pgd", "inner_model": "song_fmnist_pgd", "seed": seed,
                            "train_size": 1000, "attack": "lira_offline", "metric": "auroc", "change": -0.01,
                            "change_low": -0.02, "change_high": 0.0, "change_detectable": 0.01,
                            "change_excludes_zero": False} for seed in (0, 1, 2)])
    summary = membership_report.summary(frame, "cnn", None, paired,
                                        {"natural": "song_fmnist", "robust": "song_fmnist_pgd"})
    assert "versus_base" not in summary  # the MNIST base has no MNIST target to pair with: none across datasets
    song_block = summary["song2019"]
    assert song_block["natural"]["model"] == "mi1000_song_fmnist" and song_block["robust"]["model"] == \
        "mi1000_song_fmnist_pgd"
    assert song_block["versus_natural"]["base"] == "mi1000_song_fmnist"
    robust = song_block["robust_claim"]  # question.fmnist.robust_leaks_more
    assert (robust["model"], robust["auroc_change"], robust["n_seeds"]) == ("mi1000_song_fmnist_pgd",
                                                                           pytest.approx(0.03), 3)
    seed_claim = song_block["seed_claim"]  # question.fmnist.scaling_reduces_robust_leakage
    assert seed_claim["auroc_change"] == pytest.approx(-0.01) and seed_claim["n_seeds"] == 3
    assert "robust_claim" not in summary and "seed_claim" not in summary  # no MNIST robust target here
    text = membership_report.markdown(frame)
    assert "| mi1000_song_fmnist_pgd | fashion_mnist | 1000 |" in text and "| mi1000_cnn | mnist | 1000 |" in text
    words = membership_report.findings(summary, "cnn", [], None)
    assert "Song et al. 2019's setting (Fashion-MNIST CNNs)" in words
    assert "the PGD-trained song_fmnist_pgd minus song_fmnist: offline LiRA AUROC +0.0300 [" in words
    assert "Temperature scaling changed song_fmnist_pgd's offline LiRA AUROC by -0.0100 [-0.0100, -0.0100]" in words


def test_the_distillation_table():
    text = distillation_report.markdown(distillation_table(), ["jsma"])
    assert text[text.index("| model"):text.index("Success:")] == DISTILLATION


def test_a_szegedy_table():
    t = pd.DataFrame({"regulariser": ["weight decay", "adversarial"], "model": ["fc100_100_10", "fc100_100_10_adv"],
                      "test_error": [0.0167, np.nan], "paper_test_error": [0.016, 0.0118]})
    assert szegedy_report.markdown_adversarial_training(t) == SZEGEDY


def test_the_paired_change_across_seeds_is_a_t_interval_with_its_detectable_change():
    """Three seeds change LiRA AUROC by 0.01, 0.02, 0.03: mean 0.02, sd 0.01, t(0.975, 2) = 4.303, so the
    interval is 0.02 -+ 4.303 * 0.01 / sqrt 3 and the change detectable with 80% power (4.303 + t(0.80, 2) =
    1.061) * 0.01 / sqrt 3."""
    records = membership_records()[:3]
    for record, change in zip(records, (0.01, 0.02, 0.03), strict=True):
        fields = {"auroc_change": change, "auroc_change_low": change - 0.01, "auroc_change_high": change + 0.01,
                  "auroc_change_detectable": 0.005, "auroc_change_excludes_zero": True}
        record["temperature_scaling_change"] = {"lira_offline": fields}
    paired = membership_report.paired_frame(records)
    summary = membership_report.paired_summary(paired)
    half = 4.303 * 0.01 / math.sqrt(3)
    assert summary["change"] == pytest.approx(0.02) and summary["n_seeds"] == 3
    assert (summary["low"], summary["high"]) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert summary["detectable"] == pytest.approx((4.303 + 1.061) * 0.01 / math.sqrt(3))
    assert not summary["excludes_zero"]
    text = membership_report.markdown(membership_report.membership_frame(records), paired)
    assert "| mi1000_cnn | +0.0200 [-0.0048, +0.0448] (±0.0310) | not scaled | not scaled | not scaled |" in text
    one = membership_report.paired_summary(paired[paired.seed == 0])  # one seed: its own paired bootstrap
    assert (one["low"], one["high"], one["excludes_zero"]) == (0.0, pytest.approx(0.02), True)
