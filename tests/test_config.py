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
