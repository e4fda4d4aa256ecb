"""The models a config defines, as dimensions: names are built from them and looked up, never read apart."""

import copy

import pytest

from tempered.config import ConfigError, validate_config
from tempered.model_grid import (
    ModelId,
    family_dataset,
    membership_shadows,
    membership_target_ids,
    model_config,
    model_dataset,
    model_grid,
    model_id,
    shadows_of,
    trained_model_names,
    training_data,
    training_twins,
)


@pytest.fixture
def grid_config(repo_config):
    cfg = copy.deepcopy(repo_config)
    cfg["distillation"]["temperatures"] = [0.5, 1, 20]
    cfg["membership"].update(train_sizes=[1000, 5000], n_shadows=2, distilled=True)
    return cfg


def test_every_trained_model_is_in_the_grid_under_the_name_its_dimensions_build(grid_config):
    grid = model_grid(grid_config)
    names = trained_model_names(grid_config)
    assert len(set(names)) == len(names)
    for name in names:
        assert grid[name].name == name


def test_the_dimensions_of_each_kind_of_model(grid_config):
    base, shadow_family = grid_config["distillation"]["base_model"], grid_config["membership"]["shadow_model"]
    assert model_id(grid_config, "cnn") == ModelId("cnn")
    assert model_id(grid_config, "student_T0p5") == ModelId(base, "student", 0.5)
    assert model_id(grid_config, "mi5000_teacher_T20") == ModelId(base, "teacher", 20.0, size=5000)
    assert model_id(grid_config, "mi1000_cnn_pgd") == ModelId("cnn_pgd", size=1000)
    assert model_id(grid_config, "mi1000_cnn_pgd_shadow1") == ModelId("cnn_pgd", size=1000, shadow=1)
    assert model_id(grid_config, "mi1000_student_T20_shadow0") == ModelId(base, "student", 20.0, 1000, 0)
    grid_config["membership"]["shadow_recipe"] = "shadow_model"
    # A shared recipe's shadows are named by the recipe: the same models as that recipe's own shadows.
    assert model_id(grid_config, f"mi1000_{shadow_family}_shadow1") == ModelId(shadow_family, size=1000, shadow=1)


def test_shadows_trained_like_their_target(grid_config):
    """shadow_recipe target: each target's shadows have its family, role and T, on the shadows' own data; the
    teacher shadows its student shadows learn from are in the grid; recipes that are equal train once."""
    for target in membership_target_ids(grid_config):
        shadows = shadows_of(grid_config, target)
        assert [s.shadow for s in shadows] == [0, 1]
        for shadow in shadows:
            assert (shadow.family, shadow.role, shadow.temperature, shadow.size) == (
                target.family, target.role, target.temperature, target.size)
            settings = model_config(grid_config, shadow.name)
            assert settings == {**model_config(grid_config, target.name), "train_set": "shadow_in",
                                **({"teacher": shadow.teacher().name} if target.role == "student" else {})}
            assert training_data(grid_config, shadow.name) == ("shadow", str(target.size), str(shadow.shadow))
    twins = training_twins(grid_config)
    assert twins["mi1000_teacher_T1_shadow0"] == "mi1000_cnn_shadow0"  # the teacher at T=1 is the base CNN
    assert "mi1000_student_T1_shadow0" not in twins  # it learns from soft labels, not the labels


def test_one_shared_recipe_gives_every_target_the_same_shadows(grid_config):
    grid_config["membership"]["shadow_recipe"] = "shadow_model"
    mnist = [t for t in membership_target_ids(grid_config) if family_dataset(grid_config, t.family) == "mnist"]
    assert len(mnist) > 1
    for target in mnist:
        assert [s.name for s in shadows_of(grid_config, target)] == [f"mi{target.size}_cnn_shadow0",
                                                                      f"mi{target.size}_cnn_shadow1"]
    assert [s for s in membership_shadows(grid_config) if "song" not in s] == [
        "mi1000_cnn_shadow0", "mi1000_cnn_shadow1", "mi5000_cnn_shadow0", "mi5000_cnn_shadow1"]


def test_a_target_on_another_dataset_keeps_shadows_like_it_under_the_shared_recipe(grid_config):
    """shadow_model's shadows learn MNIST: an attacker of a Fashion-MNIST target trains shadows like it instead."""
    grid_config["membership"]["shadow_recipe"] = "shadow_model"
    grid_config["membership"]["models"] = ["cnn", "song_fmnist_pgd"]
    target = model_id(grid_config, "mi1000_song_fmnist_pgd")
    shadows = shadows_of(grid_config, target)
    assert [s.name for s in shadows] == ["mi1000_song_fmnist_pgd_shadow0", "mi1000_song_fmnist_pgd_shadow1"]
    assert {model_dataset(grid_config, s.name) for s in shadows} == {"fashion_mnist"}
    assert model_config(grid_config, shadows[0].name)["pgd_training"]["eps"] == 0.1
    assert model_dataset(grid_config, "mi1000_cnn_shadow0") == "mnist"  # the MNIST targets' shared shadows


def test_one_shared_recipe_per_dataset(grid_config):
    """shadow_model lists one model per dataset: each target's attacker uses the one on its dataset, so the
    PGD-trained Fashion-MNIST target is attacked with shadows of the natural Fashion-MNIST recipe."""
    grid_config["membership"].update(shadow_recipe="shadow_model", shadow_model=["cnn", "song_fmnist"],
                                     models=["cnn", "cnn_pgd", "song_fmnist", "song_fmnist_pgd"])
    validate_config(grid_config)
    natural = [s.name for s in shadows_of(grid_config, model_id(grid_config, "mi1000_song_fmnist"))]
    assert natural == ["mi1000_song_fmnist_shadow0", "mi1000_song_fmnist_shadow1"]
    assert [s.name for s in shadows_of(grid_config, model_id(grid_config, "mi1000_song_fmnist_pgd"))] == natural
    assert [s.name for s in shadows_of(grid_config, model_id(grid_config, "mi1000_cnn_pgd"))] == [
        "mi1000_cnn_shadow0", "mi1000_cnn_shadow1"]
    assert "pgd_training" not in model_config(grid_config, natural[0])
    assert not any("pgd_shadow" in name for name in membership_shadows(grid_config))


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
    assert training_data(grid_config, "mi5000_student_T20") == ("target", "5000")
    assert training_data(grid_config, "mi5000_student_T20_shadow1") == ("shadow", "5000", "1")
    grid_config["membership"]["shadow_recipe"] = "shadow_model"
    assert training_data(grid_config, "mi5000_cnn_shadow1") == ("shadow", "5000", "1")
    assert [s.name for s in shadows_of(grid_config, model_id(grid_config, "mi5000_student_T20"))][1] == (
        "mi5000_cnn_shadow1")


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
