"""Which digits the Szegedy et al. 2014 L-BFGS examples are made from (tempered.stages.szegedy.steps.sample_source,
attack_samples): training digits for Tables 1-2, test digits for Tables 3-4, the same draw for a whole group."""

import copy

import numpy as np
import pytest

from tempered.config import ConfigError
from tempered.data.split import make_split
from tempered.stages.szegedy.groups import szegedy_groups
from tempered.stages.szegedy.steps import attack_samples, sample_source, transfer_group


def test_default_sample_sets_follow_the_paper(repo_config):
    assert repo_config["szegedy"]["attack"]["sample_set"] == {"cross_model": "train", "cross_training_set": "test"}
    assert repo_config["szegedy"]["gaussian"]["clip"] is False
    sample_sets = repo_config["szegedy"]["attack"]["sample_set"]
    first = repo_config["models"][repo_config["szegedy"]["cross_model"][0]]
    assert sample_source(sample_sets["cross_model"], first) == ("full", None)
    assert sample_source(sample_sets["cross_training_set"], first) == ("test", None)
    assert transfer_group(repo_config, "fc10_1em4") == "cross_model"
    assert transfer_group(repo_config, "fc100_100_10_p2") == "cross_training_set"
    with pytest.raises(ConfigError, match="neither"):
        transfer_group(repo_config, "cnn")


def test_training_digits_of_models_on_different_halves_are_refused(repo_config):
    config = copy.deepcopy(repo_config)
    config["szegedy"]["attack"]["sample_set"]["cross_training_set"] = "train"
    with pytest.raises(ConfigError, match="one training set shared"):
        szegedy_groups(config)


def test_limited_training_sets_are_drawn_from_what_the_models_saw(repo_config):
    config = copy.deepcopy(repo_config)
    for name in config["szegedy"]["cross_model"]:
        config["models"][name]["limit_train"] = 300
    szegedy_groups(config)  # they share it
    first = config["models"][config["szegedy"]["cross_model"][0]]
    assert sample_source(config["szegedy"]["attack"]["sample_set"]["cross_model"], first) == ("full", 300)


def test_attack_samples_index_the_array_of_their_set():
    rng = np.random.default_rng(0)
    images = {"x_train": rng.integers(0, 256, (600, 28, 28), dtype=np.uint8), "y_train": np.arange(600) % 10,
              "x_test": rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), "y_test": np.arange(100) % 10}
    split = make_split(50, seed=0, n_train=600, n_test=100)
    cfg = {"samples": 20, "seed": 1}
    index, x, labels, targets = attack_samples(images, split, "p2", None, cfg)
    assert set(index) <= set(split["p2"]) and len(set(index)) == 20
    np.testing.assert_array_equal(x.squeeze(1).numpy(), images["x_train"][index] / np.float32(255))
    np.testing.assert_array_equal(labels.numpy(), images["y_train"][index])
    assert (targets != labels).all()
    again = attack_samples(images, split, "p2", None, cfg)
    np.testing.assert_array_equal(again[0], index)
    test_index, x_test, _, _ = attack_samples(images, split, "test", None, cfg)
    np.testing.assert_array_equal(x_test.squeeze(1).numpy(), images["x_test"][test_index] / np.float32(255))
    limited, _, _, _ = attack_samples(images, split, "full", 30, cfg)
    assert limited.max() < 30
    with pytest.raises(ConfigError, match="more than"):
        attack_samples(images, split, "full", 10, cfg)
