"""The attack stage: sample draw, targets, attack construction, gradient magnitudes, summaries, report."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from tempered.artifacts import read_arrays
from tempered.attacks.common import AttackResult
from tempered.config import ConfigError
from tempered.model_grid import attacked_models
from tempered.stages.attacks.distillation_report import markdown, paper_value, summary_table, tidy_results
from tempered.stages.attacks.steps import (
    attack_sample_indices,
    attack_step,
    attack_summary,
    attacked_sample_indices,
    build_attack,
    every_other_target,
    input_gradient_magnitudes,
)
from tempered.step_params import step_view
from tests.conftest import REPO_ROOT
from tests.unit.tiny_inputs import write_tiny_cnn_and_digits


def test_every_sample_gets_each_other_class_once():
    labels = torch.tensor([0, 7, 9])
    rows, targets = every_other_target(labels)
    assert rows.tolist() == [0] * 9 + [1] * 9 + [2] * 9
    for i, label in enumerate(labels.tolist()):
        assert sorted(targets[rows == i].tolist()) == [c for c in range(10) if c != label]


def test_sample_draw_is_seeded_sorted_and_bounded():
    a, b = attack_sample_indices(10_000, 100, 3), attack_sample_indices(10_000, 100, 3)
    assert np.array_equal(a, b) and np.all(np.diff(a) > 0) and a.max() < 10_000
    assert not np.array_equal(a, attack_sample_indices(10_000, 100, 4))
    with pytest.raises(ConfigError, match="more than the 10 test samples"):
        attack_sample_indices(10, 11, 0)


def test_one_attack_can_run_on_a_prefix_of_the_shared_draw(repo_config):
    cfg = {**repo_config["attacks"], "samples": 20}
    shared = attack_sample_indices(10_000, 20, cfg["seed"])
    assert np.array_equal(attacked_sample_indices(10_000, cfg, "jsma"), shared)
    cfg["cw_l2"] = {**cfg["cw_l2"], "samples": 5}
    assert np.array_equal(attacked_sample_indices(10_000, cfg, "cw_l2"), shared[:5])
    # The sample count selects samples; it is not a parameter of the attack itself.
    assert build_attack("cw_l2", cfg["cw_l2"], 1.0, 0).max_iterations == cfg["cw_l2"]["max_iterations"]
    cfg["cw_l2"]["samples"] = 21
    with pytest.raises(ConfigError, match=r"attacks.cw_l2.samples: 21 is more than attacks.samples \(20\)"):
        attacked_sample_indices(10_000, cfg, "cw_l2")


def test_known_temperature_jsma_differentiates_the_softmax_at_the_training_T(repo_config):
    cfg = repo_config["attacks"]
    assert build_attack("jsma", cfg["jsma"], 50.0, 0).temperature == 1.0
    assert build_attack("jsma_known_t", cfg["jsma_known_t"], 50.0, 0).temperature == 50.0
    with pytest.raises(ConfigError, match="unknown attack"):
        build_attack("deepfool", {}, 1.0, 0)


def test_attacked_models_are_the_base_and_every_student(repo_config):
    models = attacked_models(repo_config)
    assert models[0] == "cnn" and len(models) == 1 + len(repo_config["distillation"]["temperatures"])
    assert all(m.startswith("student_T") for m in models[1:])


def test_gradient_magnitudes_are_the_softmax_jacobian_and_shrink_when_logits_saturate():
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.rand(2, 1, 2, 2)
    ours = input_gradient_magnitudes(linear, x)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda v: torch.softmax(linear(v[None]).double(), 1)[0], x[i])
        torch.testing.assert_close(ours[i], jac.flatten(1).abs())

    # A distilled model's logits are ~T times larger at deployment: with a clear margin (a confident model)
    # its softmax saturates and the gradients vanish.
    with torch.no_grad():
        linear[1].weight.copy_(5 * torch.eye(3, 4))
        linear[1].bias.zero_()
    x = torch.eye(4)[:2].view(2, 1, 2, 2)
    ours = input_gradient_magnitudes(linear, x)

    class Scaled(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, v):
            return linear(v) * self.scale

    assert input_gradient_magnitudes(Scaled(100.0), x).mean() < 1e-3 * ours.mean()


def test_summary_averages_distortion_over_successes_only():
    x = torch.zeros(4, 1, 2, 2)
    result = AttackResult(x_adv=x, success=torch.tensor([True, False, True, False]),
                          distortion=torch.tensor([1.0, 100.0, 3.0, 100.0]), norm="l2")
    summary = attack_summary(result, x, clean_correct=torch.tensor([True, True, False, True]))
    assert summary["success_rate"] == 0.5 and summary["distortion_mean"] == 2.0
    assert summary["success_rate_on_correct"] == pytest.approx(1 / 3)
    failed = AttackResult(x_adv=x, success=torch.zeros(4, dtype=torch.bool), distortion=torch.ones(4), norm="l2")
    assert "distortion_mean" not in attack_summary(failed, x, torch.ones(4, dtype=torch.bool)), "no nulls"


def test_attack_step_end_to_end_on_a_tiny_checkpoint(tmp_path, repo_config):
    overlay = tmp_path / "tiny.yaml"
    overlay.write_text("attacks: {samples: 3, batch_size: 10}\n")
    write_tiny_cnn_and_digits(tmp_path, repo_config["models"]["cnn"])
    configs = [str(REPO_ROOT / "config.yaml"), str(overlay)]
    attack_step(configs, "fgsm", "cnn", 0, tmp_path / "model.pt", tmp_path / "mnist.npz", tmp_path / "adv.npz",
                tmp_path / "metrics.json")
    adv = read_arrays(tmp_path / "adv.npz")
    assert adv["x_adv"].shape == (3, 1, 28, 28) and adv["x_adv"].min() >= 0 and adv["x_adv"].max() <= 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["attempts"] == 3 and metrics["norm"] == "linf" and metrics["model_temperature"] == 1.0
    attack_step(configs, "jsma", "cnn", 0, tmp_path / "model.pt", tmp_path / "mnist.npz", tmp_path / "j.npz",
                tmp_path / "j.json")
    jsma = read_arrays(tmp_path / "j.npz")
    assert len(jsma["target"]) == 27 and np.all(jsma["target"] != jsma["label"])


def test_report_puts_the_papers_numbers_beside_ours(repo_config):
    evals = [{"model": "cnn", "seed": 0, "test": {"accuracy": 0.99}},
             {"model": "student_T100", "seed": 0, "test": {"accuracy": 0.98}}]
    attacks = [{"model": "cnn", "seed": 0, "attack": "jsma", "success_rate": 0.9, "distortion_mean": 30.0},
               {"model": "student_T100", "seed": 0, "attack": "jsma", "success_rate": 0.01,
                "distortion_mean": 50.0}]
    grads = {"cnn/seed0": {"mean_abs": np.array([1e-3, 2e-3])}}
    table = summary_table(tidy_results(step_view(repo_config, "distillation-report"), evals, attacks, grads))
    row = table[(table["model"] == "student_T100") & (table["quantity"] == "jsma.success_rate")].iloc[0]
    assert row["T"] == 100 and row["mean"] == 0.01 and row["paper"] == 0.005
    assert paper_value("base", None, "jsma.success_rate") == pytest.approx(0.9889)
    text = markdown(table, ["jsma"])
    assert "| cnn | - | 0.9900 (paper 0.9951)" in text and "0.010 (paper 0.005)" in text
    assert "JSMA success falls steeply with T — seen: 0.900 undistilled -> 0.010 at T=100" in text


def test_claims_say_not_seen_when_the_numbers_disagree(repo_config):
    from tempered.stages.attacks.distillation_report import claims

    evals = [{"model": m, "seed": 0, "test": {"accuracy": 0.99}} for m in ("cnn", "student_T100")]
    attacks = [{"model": "cnn", "seed": 0, "attack": "jsma", "success_rate": 0.9},
               {"model": "student_T100", "seed": 0, "attack": "jsma", "success_rate": 0.8},
               {"model": "cnn", "seed": 0, "attack": "cw_l2", "success_rate": 1.0, "distortion_mean": 1.0},
               {"model": "student_T100", "seed": 0, "attack": "cw_l2", "success_rate": 0.5, "distortion_mean": 9.0}]
    table = summary_table(tidy_results(step_view(repo_config, "distillation-report"), evals, attacks, {}))
    text = "\n".join(claims(table, ["jsma", "cw_l2"]))
    assert "falls steeply with T — NOT seen: 0.900 undistilled -> 0.800" in text
    assert "undistilled model's — NOT seen: success 0.500 to 0.500" in text
