import copy

import pytest
import yaml

from tempered.config import ConfigError, config_hash, deep_merge, load_config, validate_config
from tests.conftest import PRESETS, REPO_ROOT


def test_repo_config_and_every_preset_validate():
    assert PRESETS, "workflow/presets/ holds no presets"
    for preset in PRESETS:
        load_config([REPO_ROOT / "config.yaml", preset])


def test_preset_overlays_keys_and_keeps_the_rest(repo_config):
    smoke = load_config([REPO_ROOT / "config.yaml", REPO_ROOT / "workflow/presets/smoke.yaml"])
    assert smoke["models"]["cnn"]["epochs"] < repo_config["models"]["cnn"]["epochs"]
    assert smoke["models"]["cnn"]["optimizer"] == repo_config["models"]["cnn"]["optimizer"]


def test_deep_merge_replaces_lists_and_merges_mappings():
    assert deep_merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}}


def invalid(config, mutate) -> str:
    config = copy.deepcopy(config)
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    return str(err.value)


def test_unknown_key_is_named(repo_config):
    message = invalid(repo_config, lambda c: c["models"]["cnn"].update(epoch=3))
    assert "models.cnn" in message and "'epoch' was unexpected" in message


def test_wrong_type_is_named(repo_config):
    message = invalid(repo_config, lambda c: c["models"]["cnn"].update(epochs="fifty"))
    assert "models.cnn.epochs" in message and "'fifty' is not of type 'integer'" in message


@pytest.mark.parametrize("temperature", [0, -1.5])
def test_non_positive_temperature_is_refused(repo_config, temperature):
    message = invalid(repo_config, lambda c: c["models"]["cnn"].update(temperature=temperature))
    assert "models.cnn.temperature" in message and "less than or equal to the minimum of 0" in message


def test_empty_seed_list_is_refused(repo_config):
    assert "seeds" in invalid(repo_config, lambda c: c.update(seeds=[]))


def test_unknown_architecture_is_refused(repo_config):
    message = invalid(repo_config, lambda c: c["models"]["cnn"].update(architecture="resnet"))
    assert "models.cnn.architecture" in message and "resnet" in message


def test_validation_set_larger_than_the_data_is_refused(repo_config):
    message = invalid(repo_config, lambda c: c["split"].update(validation_size=60_001))
    assert "split.validation_size: 60001 must be smaller than the MNIST training set (60000)" in message


def test_unreadable_and_non_mapping_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config([tmp_path / "missing.yaml"])
    bad = tmp_path / "list.yaml"
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match=r"list.yaml: expected a mapping"):
        load_config([bad])


def test_config_hash_ignores_key_order_but_not_values():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_cli_reports_a_bad_config_with_exit_code_2(tmp_path, capsys):
    from tempered.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0]\nmodels: {cnn: {temperature: 0}}\n")
    assert main(["validate-config", "--config", str(REPO_ROOT / "config.yaml"), "--config", str(bad)]) == 2
    assert "models.cnn.temperature" in capsys.readouterr().err


def test_step_params_do_not_depend_on_key_order(repo_config):
    """Snakemake compares params by repr: a config file rewritten in another key order must not rerun jobs."""
    from tempered.step_params import config_slice

    def reversed_order(value):
        if isinstance(value, dict):
            return {k: reversed_order(value[k]) for k in reversed(list(value))}
        return value

    shuffled = reversed_order(repo_config)
    for step, args in (("attack", {"attack": "pgd", "model": "cnn"}), ("train", {"model": "cnn"}),
                       ("lbfgs-attack", {"model": "fc100_100_10"})):
        assert repr(config_slice(shuffled, step, **args)) == repr(config_slice(repo_config, step, **args)), step
    attacks = repo_config["attacks"]
    changed = {**repo_config, "attacks": {**attacks, "pgd": {**attacks["pgd"], "steps": 7}}}
    pgd = {"attack": "pgd", "model": "cnn"}
    assert config_slice(changed, "attack", **pgd) != config_slice(repo_config, "attack", **pgd)


def test_membership_models_copy_their_model_on_their_own_training_set(repo_config):
    from tempered.model_grid import (
        membership_recipes,
        membership_targets,
        model_config,
        model_config_key,
        temperature_tag,
    )
    from tempered.step_params import step_config_keys

    cfg = copy.deepcopy(repo_config)
    cfg["membership"].update(train_sizes=[1000, 5000], epochs=7, n_shadows=3, shadow_recipe="shadow_model")
    t = temperature_tag(cfg["distillation"]["temperatures"][-1])
    targets = membership_targets(cfg)
    assert {"mi1000_cnn", "mi5000_cnn_pgd", f"mi1000_teacher_T{t}", f"mi5000_student_T{t}"} <= set(targets)
    assert set(membership_recipes(cfg)) == set(targets)  # the shared recipe (cnn) is a target too
    cnn = model_config(cfg, "mi1000_cnn")
    assert cnn == {**cfg["models"]["cnn"], "train_set": "pool_half", "limit_train": None, "epochs": 7}
    assert model_config(cfg, "mi1000_cnn_pgd")["pgd_training"] == cfg["models"]["cnn_pgd"]["pgd_training"]
    assert model_config(cfg, "mi1000_song_fmnist_pgd")["dataset"] == "fashion_mnist"
    student = model_config(cfg, f"mi1000_student_T{t}")
    assert student["teacher"] == f"mi1000_teacher_T{t}" and student["train_set"] == "pool_half"
    assert model_config_key(cfg, f"mi1000_student_T{t}") == f"models.{cfg['distillation']['base_model']}"
    # A membership model's settings are its family's entry, with membership.epochs: both in its training params.
    keys = step_config_keys("train", cfg, model="mi1000_cnn_pgd")
    assert keys == ["models.cnn_pgd", "evaluation.limit_eval", "membership.epochs"]
    assert "membership.epochs" not in step_config_keys("train", cfg, model="cnn")
    # An unknown name is refused with the settings that define the names (nothing reads a name apart to say which).
    for unknown in ("mi2000_cnn", "mi1000_cnn_shadow2", "mi1000_shadow0", "mi1000_nope", "student_T3"):
        with pytest.raises(ConfigError, match=f"unknown model '{unknown}'") as refused:
            model_config(cfg, unknown)
        for grid_key in ("membership.train_sizes (1000, 5000)", "membership.models (cnn, ",
                         "distillation.temperatures (", "'models' (ae400_10, cnn, "):
            assert grid_key in str(refused.value)


@pytest.mark.parametrize("change, named", [
    ({"models": ["cnn", "nope"]}, "membership.models: 'nope'"),
    ({"shadow_model": "nope"}, "membership.shadow_model: 'nope'"),
    ({"train_sizes": [29000]}, "membership.train_sizes: 29000 needs a pool of 58000"),
    ({"seeds": [0, 17]}, r"membership.seeds: 17 is no model seed of the membership recipes \(0..membership.n_shadows"),
])
def test_bad_membership_settings_are_named(repo_config, change, named):
    cfg = copy.deepcopy(repo_config)
    cfg["membership"].update(change)
    with pytest.raises(ConfigError, match=named):
        validate_config(cfg)
