"""No training done twice: a model whose training would repeat another's (model_grid.training_twins) reuses it."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tempered.artifacts import ArtifactError, read_checkpoint
from tempered.config import REPO_ROOT, load_config
from tempered.model_grid import model_config, training_twins
from tempered.models.checkpoints import load_model
from tempered.stages.train.steps import reuse_training_step, train_step
from tests.unit.tiny_inputs import write_digits_and_split


def test_the_teacher_at_t1_is_the_base_cnn_and_each_sizes_membership_copy_too(repo_config):
    twins = training_twins(repo_config)
    sizes = repo_config["membership"]["train_sizes"]
    # Each membership recipe trains at every model seed on that seed's half: the T=1 teacher is the CNN at each.
    assert twins == {"teacher_T1": "cnn", **{f"mi{s}_teacher_T1": f"mi{s}_cnn" for s in sizes}}


def test_a_setting_that_tells_them_apart_ends_the_twinship(repo_config):
    config = copy.deepcopy(repo_config)
    config["models"]["cnn"]["temperature"] = 2.0  # the base then trains at T=2, the teacher at T=1
    assert "teacher_T1" not in training_twins(config)
    config = copy.deepcopy(repo_config)
    config["distillation"]["temperatures"] = [t for t in config["distillation"]["temperatures"] if t != 1]
    assert training_twins(config) == {}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_arrays):
    """cnn and teacher_T1 each trained for real, one short epoch on 256 digits."""
    place = tmp_path_factory.mktemp("twins")
    images, split = write_digits_and_split(place, mnist_arrays)
    preset = place / "tiny.yaml"
    preset.write_text(yaml.safe_dump({"models": {"cnn": {"epochs": 1, "limit_train": 256}},
                                      "evaluation": {"limit_eval": 100}}))
    configs = [str(REPO_ROOT / "config.yaml"), str(preset)]
    for model in ("cnn", "teacher_T1"):
        train_step(configs, model, 0, images, split, place / f"{model}.pt", place / f"{model}.csv")
    return place, configs


def test_training_both_gives_the_same_weights_so_training_one_is_enough(tiny_run):
    place, _ = tiny_run
    base, _ = read_checkpoint(place / "cnn.pt")
    teacher, _ = read_checkpoint(place / "teacher_T1.pt")
    assert base.keys() == teacher.keys() and all(torch.equal(base[k], teacher[k]) for k in base)
    assert pd.read_csv(place / "cnn.csv").equals(pd.read_csv(place / "teacher_T1.csv"))


def test_the_twin_gets_the_trained_weights_under_its_own_name(tiny_run):
    place, configs = tiny_run
    reuse_training_step(configs, "teacher_T1", place / "cnn.pt", place / "cnn.csv", place / "reused.pt",
                        place / "reused.csv")
    trained, _ = read_checkpoint(place / "teacher_T1.pt")
    reused, meta = read_checkpoint(place / "reused.pt")
    assert all(torch.equal(trained[k], reused[k]) for k in trained)
    assert meta["model"] == "teacher_T1" and meta["trained_as"] == "cnn"
    assert (place / "reused.csv").read_bytes() == (place / "cnn.csv").read_bytes()
    model, _ = load_model(model_config(load_config(configs), "teacher_T1"), "teacher_T1", place / "reused.pt")
    assert np.isfinite(model(torch.zeros(1, 1, 28, 28)).detach().numpy()).all()


def test_reuse_is_refused_from_a_checkpoint_trained_otherwise_or_the_models_own(tiny_run):
    place, configs = tiny_run
    with pytest.raises(ArtifactError, match="is of 'cnn', trained with other settings than 'teacher_T20'"):
        reuse_training_step(configs, "teacher_T20", place / "cnn.pt", place / "cnn.csv", place / "x.pt",
                            place / "x.csv")
    with pytest.raises(ArtifactError, match="is 'teacher_T1''s own"):
        reuse_training_step(configs, "teacher_T1", place / "teacher_T1.pt", place / "cnn.csv", place / "x.pt",
                            place / "x.csv")
    assert not (place / "x.pt").exists()
