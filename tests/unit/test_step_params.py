"""Each step sees exactly the config keys it declares (tempered.step_params.StepConfig): the slice its rule records
as params and its dvc.yaml stage lists, so a key a step reads without declaring fails the step, naming the key."""

import ast
from pathlib import Path

import pytest

from tempered.config import REPO_ROOT, config_hash
from tempered.model_grid import model_config
from tempered.stages.data.steps import split_step
from tempered.step_params import STEP_CONFIG_KEYS, StepConfig, UndeclaredConfigRead, config_slice, step_view

# The wildcards each step's keys are formatted with (as the rules pass them).
STEP_ARGS = {"fetch": {"dataset": "mnist"}, "attack": {"attack": "cw_l2"}}
MODEL_STEPS = {step for step, keys in STEP_CONFIG_KEYS.items()
               if any("{model_key}" in k or "{model_dataset}" in k for k in keys)}


def args_for(step: str, model: str = "student_T20") -> dict:
    return {**STEP_ARGS.get(step, {}), **({"model": model} if step in MODEL_STEPS else {})}


def test_declared_keys_read_as_the_config_holds_them(repo_config):
    view = step_view(repo_config, "attack", attack="cw_l2")
    assert view["attacks"]["cw_l2"] == repo_config["attacks"]["cw_l2"]
    assert view["attacks"]["seed"] == repo_config["attacks"]["seed"]
    assert isinstance(view["attacks"], StepConfig)  # on the way to declared keys: still guarded
    assert not isinstance(view["attacks"]["cw_l2"], StepConfig)  # a declared value: as it is


def test_an_undeclared_key_fails_naming_the_step_the_key_and_where_to_declare_it(repo_config):
    view = step_view(repo_config, "attack", attack="cw_l2")
    with pytest.raises(UndeclaredConfigRead, match=r"step 'attack' read config key 'attacks\.jsma'.*"
                                                   r"STEP_CONFIG_KEYS\['attack'\] in tempered/step_params\.py"):
        view["attacks"]["jsma"]
    with pytest.raises(UndeclaredConfigRead, match="'models'"):
        view["models"]
    # No silent default either: get() and items() read values too.
    with pytest.raises(UndeclaredConfigRead, match="'attacks.enabled'"):
        view["attacks"].get("enabled", [])
    with pytest.raises(UndeclaredConfigRead):
        dict(view["attacks"].items())


def test_shape_and_compute_are_free(repo_config):
    view = step_view(repo_config, "attack", attack="cw_l2")
    assert "models" in view and "enabled" in view["attacks"]
    assert set(view) == set(repo_config) and set(view["attacks"]) == set(repo_config["attacks"])
    assert view["compute"]["threads"] == repo_config["compute"]["threads"]  # how, not what: no step declares it


def test_model_settings_come_resolved(repo_config):
    view = step_view(repo_config, "calibrate", model="student_T20")
    assert view.model("student_T20") == model_config(repo_config, "student_T20")
    assert view.model("student_T20")["teacher"] == "teacher_T20"
    assert view.model_key("student_T20") == f"models.{repo_config['distillation']['base_model']}"


@pytest.mark.parametrize("step", sorted(STEP_CONFIG_KEYS))
def test_what_a_step_sees_is_exactly_what_its_rule_records(repo_config, step):
    """StepConfig.declared (hashed into the artifacts' provenance) equals the params of the step's rule."""
    args = args_for(step)
    view = step_view(repo_config, step, **args)
    assert view.declared() == config_slice(repo_config, step, **args)
    assert config_hash(view.declared())  # serialisable as provenance


def test_a_real_step_fails_on_a_key_it_does_not_declare(tmp_path, monkeypatch):
    config = [str(REPO_ROOT / "config.yaml")]
    split_step(config, tmp_path / "split.npz", tmp_path / "split.json")  # declared: runs
    monkeypatch.setitem(STEP_CONFIG_KEYS, "split", ("split.seed",))
    with pytest.raises(UndeclaredConfigRead, match="step 'split' read config key 'split.validation_size'"):
        split_step(config, tmp_path / "again.npz", tmp_path / "again.json")
    assert not (tmp_path / "again.npz").exists()


def test_steps_read_the_config_only_through_their_slice():
    """No step module loads the config files itself (the report's reading of config.yaml's defaults aside)."""
    loads = []
    for module in sorted((REPO_ROOT / "src" / "tempered" / "stages").glob("*/*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_config":
                loads.append(str(Path(module).relative_to(REPO_ROOT)))
    assert loads == ["src/tempered/stages/report/steps.py"], loads
