"""The Szegedy et al. 2014 stage (tempered.stages.szegedy.steps, tempered.stages.szegedy.report) through its CLI
steps, on real MNIST with tiny models: training of every architecture kind, adversarial sets, transfer, tables and
figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tempered.artifacts import read_arrays, read_checkpoint, read_json, write_arrays
from tempered.attacks.common import rms_distortion
from tempered.cli import main
from tempered.config import REPO_ROOT, ConfigError, load_config
from tempered.data.split import make_split, source_array
from tempered.models import build_model
from tempered.stages.szegedy.groups import szegedy_groups
from tempered.stages.szegedy.perturbations import magnify
from tempered.training.methods import train_classifier

TINY = {"epochs": 4, "limit_train": 1000, "batch_size": 32}
PRESET = {
    "seeds": [0],
    "evaluation": {"limit_eval": 400},
    "models": {
        "fc10_1em4": TINY, "fc100_100_10": TINY, "fc100_100_10_p1": TINY, "fc100_100_10_p2": TINY,
        "ae400_10": {**TINY, "epochs": 1, "autoencoder": {"epochs": 1, "batch_size": 64, "lr": 1e-3,
                                                          "sparsity_target": 0.05, "sparsity_weight": 3.0,
                                                          "weight_decay": 3e-3}},
        "fc100_100_10_adv": {**TINY, "adversarial_training": {
            "pool_size": 32, "refresh_every": 8, "refresh_size": 8, "mix_size": 4, "seed": 0,
            "attack": {"initial_c": 0.1, "search_steps": 2, "c_factor": 10.0, "max_iter": 10}}},
        **{m: {"enabled": False} for m in ("fc10_1em2", "fc10_1", "fc200_200_10", "fc123_456_10_p1",
                                           "fc100_100_10_dropout")},
    },
    "szegedy": {
        "cross_model": ["fc10_1em4", "fc100_100_10", "ae400_10"],
        "cross_training_set": ["fc100_100_10_p1", "fc100_100_10_p2"],
        "adversarial_training": ["fc100_100_10", "fc100_100_10_adv"],
        "attack": {"samples": 12, "seed": 0, "batch_size": 5,
                   "lbfgs": {"initial_c": 0.1, "search_steps": 4, "c_factor": 10.0, "max_iter": 40}},
    },
}
TRAINED = ("fc10_1em4", "fc100_100_10", "ae400_10", "fc100_100_10_p1", "fc100_100_10_p2", "fc100_100_10_adv")
ATTACKED = ("fc10_1em4", "fc100_100_10", "ae400_10", "fc100_100_10_p1", "fc100_100_10_p2")


def cli(config: list[str], *args: str) -> None:
    argv = [args[0], *(a for c in config for a in ("--config", c)), *args[1:]]
    assert main(argv) == 0, argv


# One torch thread (tests/conftest.py): tiny batches, and bit-stable results beside a build.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stage(tmp_path_factory, mnist_arrays):
    """Every step of the stage run once, as the rules run them; returns (tmp dir, config file list)."""
    root = tmp_path_factory.mktemp("szegedy")
    preset = root / "preset.yaml"
    preset.write_text(yaml.safe_dump(PRESET))
    config = [str(REPO_ROOT / "config.yaml"), str(preset)]
    images = root / "mnist.npz"
    write_arrays(images, mnist_arrays)
    split = root / "split.npz"
    write_arrays(split, make_split(5000, 0))
    torch.set_num_threads(1)
    for m in TRAINED:
        cli(config, "train", "--model", m, "--seed", "0", "--images", str(images), "--split", str(split),
            "--checkpoint", str(root / m / "model.pt"), "--history", str(root / m / "history.csv"))
        cli(config, "evaluate", "--model", m, "--checkpoint", str(root / m / "model.pt"), "--images", str(images),
            "--split", str(split), "--logits", str(root / m / "logits.npz"), "--metrics", str(root / m / "eval.json"))
        cli(config, "training-set-error", "--model", m, "--checkpoint", str(root / m / "model.pt"),
            "--images", str(images), "--split", str(split), "--out", str(root / m / "train_error.json"))
    for m in ATTACKED:
        cli(config, "lbfgs-attack", "--model", m, "--seed", "0", "--checkpoint", str(root / m / "model.pt"),
            "--images", str(images), "--split", str(split), "--out", str(root / m / "adv.npz"),
            "--metrics", str(root / m / "attack.json"))
    transfer_args = ["--seed", "0", "--models", *ATTACKED,
                     "--checkpoints", *(str(root / m / "model.pt") for m in ATTACKED),
                     "--adversarial", *(str(root / m / "adv.npz") for m in ATTACKED), "--images", str(images),
                     "--split", str(split)]
    cli(config, "szegedy-transfer", *transfer_args, "--out", str(root / "transfer.json"))
    cli(config, "szegedy-transfer", *transfer_args, "--out", str(root / "transfer_again.json"))
    tables = [str(root / "tables" / f"{name}.{ext}")
              for name in ("t1", "t2", "t3", "t4", "adv") for ext in ("csv", "md")]
    cli(config, "szegedy-report", "--eval-metrics", *(str(root / m / "eval.json") for m in TRAINED),
        "--training-set-error", *(str(root / m / "train_error.json") for m in TRAINED),
        "--attack-metrics", *(str(root / m / "attack.json") for m in ATTACKED),
        "--transfer", str(root / "transfer.json"), "--tables", *tables, "--markdown", str(root / "szegedy.md"),
        "--metrics", str(root / "tables.json"), "--heatmap", str(root / "heatmap.png"))
    cli(config, "szegedy-examples", "--model", "fc10_1em4", "--adversarial", str(root / "fc10_1em4" / "adv.npz"),
        "--images", str(images), "--out", str(root / "examples.png"))
    return root, config, transfer_args, images


def test_every_architecture_trains_and_ae400_keeps_its_pretrained_frozen_encoder(stage):
    root, config, _, _ = stage
    state, meta = read_checkpoint(root / "ae400_10" / "model.pt")
    untrained = build_model(load_config(config)["models"]["ae400_10"]).state_dict()
    # Pre-training moved the autoencoder away from its initialisation (the classifier alone could not).
    assert not torch.allclose(state["autoencoder.encoder.weight"], untrained["autoencoder.encoder.weight"])
    adv_history = (root / "fc100_100_10_adv" / "history.csv").read_text()
    assert "pool_size" in adv_history.splitlines()[0]
    for m in TRAINED:
        assert read_json(root / m / "eval.json")["test"]["error_rate"] < 0.9, m


def test_weight_penalty_is_in_the_training_loss(mnist_arrays):
    x = torch.from_numpy(mnist_arrays["x_train"][:500].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(mnist_arrays["y_train"][:500].astype(np.int64))
    norms = {}
    for lam in (0.0, 1.0):
        torch.manual_seed(0)
        model = build_model({"architecture": "fc10", "dropout": 0.0, "architecture_args": {"weight_decay": lam}})
        train_classifier(model, x, y, epochs=3, batch_size=50, temperature=1.0, device=torch.device("cpu"),
                         optimizer_cfg={"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False,
                                        "weight_decay": 0.0}, generator=torch.Generator().manual_seed(0))
        norms[lam] = model.logits.weight.norm().item()
    assert norms[1.0] < 0.7 * norms[0.0]


def test_training_set_error_is_measured_on_exactly_the_trained_samples(stage, mnist_arrays):
    root, config, _, _ = stage
    record = read_json(root / "fc100_100_10_p1" / "train_error.json")
    assert record["training_set"] == "p1" and record["n"] == 1000
    cfg = load_config(config)["models"]["fc100_100_10_p1"]
    model = build_model(cfg)
    model.load_state_dict(read_checkpoint(root / "fc100_100_10_p1" / "model.pt")[0])
    idx = make_split(5000, 0)["p1"][:1000]
    x = torch.from_numpy(mnist_arrays["x_train"][idx].astype(np.float32) / 255.0).unsqueeze(1)
    with torch.no_grad():
        error = (model.eval()(x).argmax(1).numpy() != mnist_arrays["y_train"][idx]).mean()
    assert record["error_rate"] == pytest.approx(error, abs=1e-6)


def test_adversarial_sets_are_complete_and_consistent_with_their_metrics(stage):
    root, _, _, _ = stage
    for m in ATTACKED:
        arrays = read_arrays(root / m / "adv.npz")
        metrics = read_json(root / m / "attack.json")
        assert arrays["x_adv"].shape == (12, 1, 28, 28) and str(arrays["model"]) == m
        assert arrays["x_adv"].min() >= 0 and arrays["x_adv"].max() <= 1
        assert np.all(arrays["target"] != arrays["label"])
        assert metrics["successes"] == int(arrays["success"].sum())
        assert np.isnan(arrays["distortion"][~arrays["success"]]).all()
    # Same samples and targets for every model of a table group: the draw depends on szegedy.attack only.
    # Tables 1-2 attack training digits, Tables 3-4 test digits (the paper's "test set rather than training set").
    for group in (ATTACKED[:3], ATTACKED[3:]):
        first = read_arrays(root / group[0] / "adv.npz")
        for m in group[1:]:
            other = read_arrays(root / m / "adv.npz")
            assert np.array_equal(first["sample_index"], other["sample_index"])
            assert np.array_equal(first["target"], other["target"])
    assert str(read_arrays(root / ATTACKED[0] / "adv.npz")["sample_set"]) == "full"  # the models' training set
    assert str(read_arrays(root / ATTACKED[3] / "adv.npz")["sample_set"]) == "test"


def test_transfer_diagonal_is_the_attack_success_on_its_own_model(stage):
    root, _, _, _ = stage
    transfer = read_json(root / "transfer.json")
    checked = 0
    for group, models in (("cross_model", ATTACKED[:3]), ("cross_training_set", ATTACKED[3:])):
        table = transfer[group]
        for made_for in models:
            successes = read_json(root / made_for / "attack.json")["successes"]
            assert table["successes"][made_for] == successes
            if successes:
                assert set(table["adversarial"][made_for]) == set(models)
                assert table["adversarial"][made_for][made_for] == 1.0
                checked += 1
            else:
                assert made_for not in table["adversarial"]
    assert checked >= 2


def test_magnified_sets_have_the_requested_distortion_up_to_clipping(stage, mnist_arrays):
    root, config, _, _ = stage
    cfg = load_config(config)["szegedy"]
    target = cfg["magnify_to"]
    assert cfg["magnify_per"] == "set", "config.yaml's reading: one factor per set"
    arrays = read_arrays(root / "fc100_100_10_p1" / "adv.npz")
    ok = arrays["success"]
    assert ok.any()
    source = mnist_arrays[f"x_{source_array(str(arrays['sample_set']))}"]
    x = torch.from_numpy(source[arrays["sample_index"]].astype(np.float32) / 255.0).unsqueeze(1)[ok]
    x_adv = torch.from_numpy(arrays["x_adv"][ok])
    big = magnify(x, x_adv, target)
    before, achieved = rms_distortion(x, x_adv), rms_distortion(x, big)
    factor = target / before.mean()
    scaled = x + (x_adv - x) * factor
    exact = ((scaled >= 0) & (scaled <= 1)).flatten(1).all(1)  # samples the clip leaves alone
    assert torch.all(achieved <= factor * before + 1e-6)
    torch.testing.assert_close(achieved[exact], factor * before[exact], rtol=1e-4, atol=1e-6)
    assert achieved.mean() <= target + 1e-5
    transfer = read_json(root / "transfer.json")["cross_training_set"]
    assert transfer["magnified_per"] == "set"
    assert transfer["magnified_distortion"]["fc100_100_10_p1"] == pytest.approx(achieved.mean().item(), rel=1e-5)


def test_gaussian_rows_are_seeded(stage, tmp_path):
    root, config, transfer_args, _ = stage
    first, again = read_json(root / "transfer.json"), read_json(root / "transfer_again.json")
    assert first["cross_model"]["gaussian"] == again["cross_model"]["gaussian"]
    assert first == again
    reseeded = tmp_path / "reseeded.yaml"
    preset = yaml.safe_load(Path(config[1]).read_text())
    preset["szegedy"]["gaussian"] = {"seed": 7, "cross_model_sigmas": [0.3], "cross_training_set_sigmas": [0.3]}
    reseeded.write_text(yaml.safe_dump(preset))
    cli([config[0], str(reseeded)], "szegedy-transfer", *transfer_args, "--out", str(tmp_path / "t.json"))
    other = read_json(tmp_path / "t.json")["cross_model"]
    assert other["gaussian_distortion"]["sigma_0.3"] != first["cross_model"]["gaussian_distortion"]["sigma_0.3"]
    # Unclipped (the paper's rows): the distortion is sigma itself, up to the draw.
    assert other["gaussian_distortion"]["sigma_0.3"] == pytest.approx(0.3, rel=0.02)


def test_report_tables_match_their_inputs_and_metrics_have_no_nulls(stage):
    root, _, _, _ = stage
    text = (root / "tables.json").read_text()
    metrics = json.loads(text)
    assert "null" not in text and "NaN" not in text
    t1 = metrics["table1"]
    for m in ("fc10_1em4", "fc100_100_10", "ae400_10"):
        assert t1[m]["train_error"] == pytest.approx(read_json(root / m / "train_error.json")["error_rate"])
        assert t1[m]["test_error"] == pytest.approx(read_json(root / m / "eval.json")["test"]["error_rate"])
        assert t1[m]["paper_test_error"] > 0
    t3 = metrics["table3"]["fc100_100_10_p2"]
    assert t3["p2_error"] == pytest.approx(read_json(root / "fc100_100_10_p2" / "train_error.json")["error_rate"])
    assert t3["p1_error"] == pytest.approx(read_json(root / "fc100_100_10_p2" / "eval.json")["p1"]["error_rate"])
    assert metrics["table2"]["sigma_0.1"]["fc10_1em4"]["paper"] == pytest.approx(0.05)
    assert set(metrics["adversarial_training"]) == {"fc100_100_10", "fc100_100_10_adv"}
    markdown = (root / "szegedy.md").read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "Table 4", "Adversarial training"):
        assert heading in markdown
    assert "adversarial pool" in markdown and "(0.0164)" not in markdown  # 3 digits: 0.016
    for png in ("heatmap.png", "examples.png"):
        assert (root / png).read_bytes()[:4] == b"\x89PNG"


def test_groups_must_name_enabled_models_on_the_right_training_set(stage):
    _, config, _, _ = stage
    cfg = load_config(config)
    assert szegedy_groups(cfg)["cross_training_set"] == ["fc100_100_10_p1", "fc100_100_10_p2"]
    bad = {**cfg, "szegedy": {**cfg["szegedy"], "cross_model": ["fc100_100_10_p1"]}}
    with pytest.raises(ConfigError, match=r"models.fc100_100_10_p1.train_set must be one of \['full'\]"):
        szegedy_groups(bad)
    bad = {**cfg, "szegedy": {**cfg["szegedy"], "cross_model": ["fc200_200_10"]}}
    with pytest.raises(ConfigError, match="disabled"):
        szegedy_groups(bad)
    bad = {**cfg, "szegedy": {**cfg["szegedy"], "cross_model": ["nope"]}}
    with pytest.raises(ConfigError, match="'nope' is not a model"):
        szegedy_groups(bad)


def test_transfer_refuses_a_set_made_on_other_samples(stage, tmp_path):
    root, config, transfer_args, _ = stage
    preset = yaml.safe_load(Path(config[1]).read_text())
    preset["szegedy"]["attack"]["seed"] = 5
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(preset))
    argv = ["szegedy-transfer", "--config", config[0], "--config", str(other), *transfer_args,
            "--out", str(tmp_path / "t.json")]
    assert main(argv) == 2
    assert not (tmp_path / "t.json").exists()
    assert math.isfinite(read_json(root / "transfer.json")["cross_model"]["gaussian_distortion"]["sigma_0.1"])
