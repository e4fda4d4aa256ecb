"""The models a config defines, as dimensions: names are built from them and looked up, never read apart."""

import copy

import pytest

from tempered.config import ConfigError, validate_config
from tempered.model_grid import (
    ModelId,
    family_dataset,
    membership_model_seeds,
    membership_recipes,
    membership_target_ids,
    model_config,
    model_dataset,
    model_grid,
    model_id,
    shadow_recipe,
    trained_model_names,
    training_data,
    training_twins,
)


@pytest.fixture
def grid_config(repo_config):
    cfg = copy.deepcopy(repo_config)
    cfg["distillation"]["temperatures"] = [0.5, 1, 20]
    cfg["membership"].update(train_sizes=[1000, 5000], n_shadows=3, distilled=True)
    return cfg


def test_every_trained_model_is_in_the_grid_under_the_name_its_dimensions_build(grid_config):
    grid = model_grid(grid_config)
    names = trained_model_names(grid_config)
    assert len(set(names)) == len(names)
    for name in names:
        assert grid[name].name == name


def test_the_dimensions_of_each_kind_of_model(grid_config):
    base = grid_config["distillation"]["base_model"]
    assert model_id(grid_config, "cnn") == ModelId("cnn")
    assert model_id(grid_config, "student_T0p5") == ModelId(base, "student", 0.5)
    assert model_id(grid_config, "mi5000_teacher_T20") == ModelId(base, "teacher", 20.0, size=5000)
    assert model_id(grid_config, "mi1000_cnn_pgd") == ModelId("cnn_pgd", size=1000)
    assert not any("shadow" in name for name in model_grid(grid_config))  # shadows are model seeds, not names


def test_shadows_are_the_target_recipes_other_model_seeds(grid_config):
    """shadow_recipe target: each target's shadows are its own recipe (family, role, T, method) at every other
    model seed; every recipe trains on its half of the pool, so equal recipes (the teacher at T=1 and the base CNN)
    train once."""
    assert membership_model_seeds(grid_config) == [0, 1, 2, 3]
    for target in membership_target_ids(grid_config):
        assert shadow_recipe(grid_config, target) == target
        assert model_config(grid_config, target.name)["train_set"] == "pool_half"
        assert training_data(grid_config, target.name) == ("pool", str(target.size))
    assert sorted(membership_recipes(grid_config)) == sorted(t.name for t in membership_target_ids(grid_config))
    twins = training_twins(grid_config)
    assert twins["mi1000_teacher_T1"] == "mi1000_cnn"  # the teacher at T=1 is the base CNN
    assert "mi1000_student_T1" not in twins  # it learns from soft labels, not the labels


def test_one_shared_recipe_gives_every_target_the_same_shadows(grid_config):
    grid_config["membership"]["shadow_recipe"] = "shadow_model"
    mnist = [t for t in membership_target_ids(grid_config) if family_dataset(grid_config, t.family) == "mnist"]
    assert len(mnist) > 1
    for target in mnist:
        assert shadow_recipe(grid_config, target).name == f"mi{target.size}_cnn"


def test_a_shared_recipe_that_is_no_target_trains_as_a_recipe(grid_config):
    grid_config["membership"].update(shadow_recipe="shadow_model", models=["cnn_pgd"], distilled=False)
    assert membership_recipes(grid_config) == ["mi1000_cnn_pgd", "mi5000_cnn_pgd", "mi1000_cnn", "mi5000_cnn"]
    assert "mi1000_cnn" in trained_model_names(grid_config)


def test_a_target_on_another_dataset_keeps_its_own_recipe_under_the_shared_recipe(grid_config):
    """shadow_model's shadows learn MNIST: an attacker of a Fashion-MNIST target uses shadows like it instead."""
    grid_config["membership"]["shadow_recipe"] = "shadow_model"
    grid_config["membership"]["models"] = ["cnn", "song_fmnist_pgd"]
    target = model_id(grid_config, "mi1000_song_fmnist_pgd")
    assert shadow_recipe(grid_config, target) == target
    assert model_dataset(grid_config, target.name) == "fashion_mnist"
    assert model_config(grid_config, target.name)["pgd_training"]["eps"] == 0.1


def test_one_shared_recipe_per_dataset(grid_config):
    """shadow_model lists one model per dataset: each target's attacker uses the one on its dataset, so the
    PGD-trained Fashion-MNIST target is attacked with shadows of the natural Fashion-MNIST recipe."""
    grid_config["membership"].update(shadow_recipe="shadow_model", shadow_model=["cnn", "song_fmnist"],
                                     models=["cnn", "cnn_pgd", "song_fmnist", "song_fmnist_pgd"])
    validate_config(grid_config)
    natural = shadow_recipe(grid_config, model_id(grid_config, "mi1000_song_fmnist"))
    assert natural.name == "mi1000_song_fmnist"
    assert shadow_recipe(grid_config, model_id(grid_config, "mi1000_song_fmnist_pgd")) == natural
    assert shadow_recipe(grid_config, model_id(grid_config, "mi1000_cnn_pgd")).name == "mi1000_cnn"
    assert "pgd_training" not in model_config(grid_config, natural.name)


def test_two_shared_recipes_on_one_dataset_are_refused(grid_config):
    grid_config["membership"]["shadow_model"] = ["cnn", "cnn_pgd"]
    with pytest.raises(ConfigError, match=r"membership.shadow_model: cnn, cnn_pgd all learn mnist"):
        validate_config(grid_config)


def test_a_student_learns_from_the_teacher_at_its_own_place_in_the_grid(grid_config):
    student = model_id(grid_config, "mi1000_student_T0p5")
    assert student.teacher() == model_id(grid_config, "mi1000_teacher_T0p5")
    with pytest.raises(ValueError, match="not a student"):
        model_id(grid_config, "teacher_T1").teacher()


def test_what_each_model_trains_on_follows_from_its_dimensions(grid_config):
    assert training_data(grid_config, "student_T20") == ("split",)
    assert training_data(grid_config, "mi5000_student_T20") == ("pool", "5000")
    assert training_data(grid_config, "mi1000_cnn_pgd") == ("pool", "1000")


def test_an_entry_under_models_that_takes_a_grid_name_is_refused(grid_config):
    # (The schema already keeps entries lower-case, so teacher_T20 cannot be one.)
    grid_config["models"]["mi1000_cnn"] = copy.deepcopy(grid_config["models"]["cnn"])
    with pytest.raises(ConfigError, match="models.mi1000_cnn: the DAG names one of its own models 'mi1000_cnn'"):
        validate_config(grid_config)


def test_a_name_off_the_grid_is_not_a_model(grid_config):
    # mi<size>_... with a size the config does not train is an ordinary name, free for an entry under models.
    grid_config["models"]["mi999_cnn"] = copy.deepcopy(grid_config["models"]["cnn"])
    validate_config(grid_config)
    assert model_id(grid_config, "mi999_cnn") == ModelId("mi999_cnn")
