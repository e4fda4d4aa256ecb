"""Defensive distillation (Papernot et al. 2016, section IV.B): names over the T grid, soft labels, students."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from tempered.artifacts import ArtifactError, write_arrays
from tempered.config import ConfigError, validate_config
from tempered.model_grid import all_model_names, model_config
from tempered.stages.train.steps import _read_soft_labels
from tempered.step_params import config_slice, step_config_keys
from tempered.training.inference import soft_labels
from tempered.training.methods import train_classifier


def test_student_trained_on_soft_labels_reproduces_the_teachers_probabilities():
    """A linear student of a linear teacher, trained at T on the teacher's softmax(z/T), converges to it."""
    torch.manual_seed(0)
    teacher = nn.Linear(20, 10)
    x = torch.randn(2000, 20)
    targets = soft_labels(teacher, x, temperature=5.0, batch_size=500, device=torch.device("cpu"))
    student = nn.Linear(20, 10)
    nn.init.zeros_(student.weight)
    nn.init.zeros_(student.bias)
    optimizer = {"name": "sgd", "lr": 2.0, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
    train_classifier(student, x, targets.argmax(1), epochs=60, batch_size=200, optimizer_cfg=optimizer,
                     temperature=5.0, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                     soft_targets=targets)
    reproduced = soft_labels(student, x, temperature=5.0, batch_size=500, device=torch.device("cpu"))
    assert (reproduced - targets).abs().max().item() < 0.02
    assert (reproduced.argmax(1) == targets.argmax(1)).float().mean().item() > 0.99


def test_soft_labels_are_probabilities_at_the_temperature():
    model = nn.Linear(3, 10)
    x = torch.randn(4, 3)
    probs = soft_labels(model, x, temperature=20.0, batch_size=2, device=torch.device("cpu"))
    torch.testing.assert_close(probs, torch.softmax(model(x) / 20.0, dim=1))
    assert probs.max() < torch.softmax(model(x), dim=1).max(), "T > 1 softens"


def test_models_over_the_grid_copy_the_base_at_their_temperature(repo_config):
    names = all_model_names(repo_config)
    assert "teacher_T20" in names and "student_T100" in names and "cnn" in names
    teacher = model_config(repo_config, "teacher_T20")
    assert teacher["temperature"] == 20.0 and teacher["epochs"] == repo_config["models"]["cnn"]["epochs"]
    assert model_config(repo_config, "student_T20")["teacher"] == "teacher_T20"


def test_fractional_temperatures_get_a_path_safe_tag(repo_config):
    config = copy.deepcopy(repo_config)
    config["distillation"]["temperatures"] = [0.5, 2]
    assert "student_T0p5" in all_model_names(config)
    assert model_config(config, "student_T0p5")["temperature"] == 0.5


def test_unknown_and_off_grid_models_are_named(repo_config):
    with pytest.raises(ConfigError, match="unknown model 'student_T3'"):
        model_config(repo_config, "student_T3")
    with pytest.raises(ConfigError, match="unknown model 'resnet'"):
        model_config(repo_config, "resnet")


def test_base_model_must_exist(repo_config):
    config = copy.deepcopy(repo_config)
    config["distillation"]["base_model"] = "vgg"
    with pytest.raises(ConfigError, match="distillation.base_model: 'vgg' is not a model"):
        validate_config(config)


def test_empty_grid_and_non_positive_temperature_are_refused(repo_config):
    for grid in ([], [0], [-1, 2]):
        config = copy.deepcopy(repo_config)
        config["distillation"]["temperatures"] = grid
        with pytest.raises(ConfigError, match="distillation.temperatures"):
            validate_config(config)


def test_distilled_models_are_rerun_by_the_base_settings_not_by_the_grid(repo_config):
    keys = step_config_keys("train", repo_config, model="student_T20")
    assert keys == [f"models.{repo_config['distillation']['base_model']}", "evaluation.limit_eval"]
    assert "distillation.temperatures" not in str(config_slice(repo_config, "train", model="teacher_T5"))


def test_soft_labels_for_other_samples_or_another_temperature_are_refused(tmp_path, repo_config):
    mcfg = model_config(repo_config, "student_T20")
    labels = torch.tensor([1, 2, 3])
    path = tmp_path / "soft.npz"
    probs = np.full((3, 10), 0.1, np.float32)
    write_arrays(path, {"probs": probs, "labels": labels.numpy(), "temperature": np.float64(20.0)})
    assert _read_soft_labels(path, mcfg, labels).shape == (3, 10)
    with pytest.raises(ArtifactError, match="other training samples"):
        _read_soft_labels(path, mcfg, torch.tensor([1, 2, 4]))
    write_arrays(path, {"probs": probs, "labels": labels.numpy(), "temperature": np.float64(5.0)})
    with pytest.raises(ArtifactError, match="at T=5, the student trains at T=20"):
        _read_soft_labels(path, mcfg, labels)
