"""The attack registry (tempered.attacks.registry): one parametrized table over every registered attack, built from
config.yaml's own parameters, in the spirit of foolbox's tests/test_attacks.py."""

import pytest
import torch
from torch import nn

from tempered.attacks.common import DISTORTIONS, Attack, AttackResult, attack_succeeded
from tempered.attacks.registry import ATTACKS, accepted_parameters, build_attack
from tempered.config import ConfigError
from tempered.stages.attacks.steps import REGISTERED
from tempered.stages.attacks.steps import build_attack as build_stage_attack

# Where config.yaml keeps each registered attack's parameters.
CONFIG_SECTIONS = {"fgsm": ("attacks", "fgsm"), "pgd": ("attacks", "pgd"), "jsma": ("attacks", "jsma"),
                   "cw_l2": ("attacks", "cw_l2"), "lbfgs": ("szegedy", "attack", "lbfgs")}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config_params(config: dict, name: str) -> dict:
    section = config
    for key in CONFIG_SECTIONS[name]:
        section = section[key]
    return section


@pytest.fixture(scope="module")
def linear_digits() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A steep linear softmax on 10x10 images (100 features: JSMA's budget is 7 pairs), 3 samples, targets
    label + 1: small enough for C&W's full 9 x 1,000 search, steep enough for every attack to succeed."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(100, 10)).eval()
    with torch.no_grad():
        model[1].weight.mul_(10)
    x = torch.rand(3, 1, 10, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        labels = model(x).argmax(1)
    return model, x, labels, (labels + 1) % 10


def test_the_table_covers_every_registered_attack():
    assert set(CONFIG_SECTIONS) == set(ATTACKS)
    assert set(REGISTERED.values()) <= set(ATTACKS), "every attack the stage runs is registered"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_builds_from_the_config_and_returns_the_common_result(name, repo_config, linear_digits):
    model, x, labels, target = linear_digits
    attack = build_attack(name, config_params(repo_config, name))
    assert isinstance(attack, Attack)
    for key, value in config_params(repo_config, name).items():
        assert getattr(attack, key) == value, f"{name}.{key} reached the attack"
    result = attack.attack(model, x, labels, target)
    assert isinstance(result, AttackResult) and result.norm == attack.norm
    assert result.x_adv.shape == x.shape and result.success.shape == result.distortion.shape == (len(x),)
    assert all(value.shape == (len(x),) for value in result.extras.values())
    # Success is the model's verdict (an attack may only be stricter, by its own record of what it found).
    with torch.no_grad():
        judged = attack_succeeded(model(result.x_adv), labels, target)
    assert result.success.any() and not (result.success & ~judged).any()
    assert ((result.x_adv >= 0) & (result.x_adv <= 1)).all(), "the [0, 1] box holds"
    torch.testing.assert_close(result.distortion, DISTORTIONS[attack.norm](x, result.x_adv), rtol=0, atol=0)


def test_lbfgs_reports_its_constant_and_iterations(repo_config, linear_digits):
    model, x, labels, target = linear_digits
    result = build_attack("lbfgs", config_params(repo_config, "lbfgs")).attack(model, x, labels, target)
    assert set(result.extras) == {"c", "iterations"}
    assert (result.extras["c"][result.success] > 0).all() and (result.extras["iterations"] > 0).all()
    with pytest.raises(ValueError, match="targeted attack"):
        build_attack("lbfgs", {}).attack(model, x, labels)


def test_an_unknown_attack_is_refused_with_the_known_names():
    with pytest.raises(ConfigError, match=r"unknown attack 'deepfool'; known: fgsm, pgd, jsma, cw_l2, lbfgs"):
        build_attack("deepfool", {})


def test_a_key_the_attack_does_not_take_is_refused_with_what_it_takes():
    accepted = ", ".join(accepted_parameters("pgd"))
    with pytest.raises(ConfigError, match=rf"attack 'pgd' takes no parameter 'epsilon'; it takes: {accepted}$"):
        build_attack("pgd", {"eps": 0.3, "epsilon": 0.1})
    with pytest.raises(ConfigError, match="attack 'lbfgs' takes no parameter 'seed'"):
        build_attack("lbfgs", {}, seed=0)
    with pytest.raises(ConfigError, match="attack 'jsma': temperature given both"):
        build_attack("jsma", {"temperature": 1.0}, temperature=20.0)


def test_progress_reaches_only_the_attacks_that_iterate():
    assert build_attack("pgd", {}, progress=True).progress
    assert not hasattr(build_attack("fgsm", {}, progress=True), "progress")


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_every_stage_attack_builds_from_its_config_section(name, repo_config):
    attack = build_stage_attack(name, repo_config["attacks"][name], 20.0, 0)
    assert isinstance(attack, ATTACKS[REGISTERED[name]])
