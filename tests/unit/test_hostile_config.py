"""Hostile configs and a hostile machine: non-finite numbers, seeds out of range, temperatures that cannot name a
model, a full disk, exhausted memory and a missing CUDA device each end in exit status 2 and one message naming
the key or file, never a traceback, and a step that fails leaves no output."""

from __future__ import annotations

import argparse
import copy
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tempered.artifacts import write_arrays, write_checkpoint, write_json
from tempered.cli import main, size_keys
from tempered.config import (
    REPO_ROOT,
    ConfigError,
    load_config,
    preset_names,
    refuse_overrides,
    validate_config,
)
from tempered.device import seed_everything

CONFIG = str(REPO_ROOT / "config.yaml")


def preset(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return str(path)


def refused(config: dict, mutate) -> str:
    config = copy.deepcopy(config)
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    return str(err.value)


# --- item 5: non-finite numbers, seeds, names ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key", "value"), [
    ("models: {cnn: {optimizer: {lr: .nan}}}", "models.cnn.optimizer.lr", "nan"),
    ("models: {cnn: {temperature: .inf}}", "models.cnn.temperature", "inf"),
    ("attacks: {fgsm: {eps: .nan}}", "attacks.fgsm.eps", "nan"),
    ("distillation: {temperatures: [1, .inf]}", "distillation.temperatures.1", "inf"),
    ("ood: {noise: {gaussian_noise_unclipped: {mean: -.inf, std: 1.0}}}",
     "ood.noise.gaussian_noise_unclipped.mean", "-inf"),
], ids=["nan-lr", "inf-temperature", "nan-eps", "inf-distillation-T", "minus-inf-mean"])
def test_a_non_finite_number_in_a_preset_is_refused_naming_its_key_and_file(tmp_path, text, key, value):
    bad = preset(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config([CONFIG, bad])
    assert f"- {key}: {value} is not a finite number" in str(err.value)
    assert bad in str(err.value)


def test_a_non_finite_number_is_refused_in_a_merged_config_too(repo_config):
    """Snakemake validates the merged dict it holds (rules/common.smk), not the files."""
    message = refused(repo_config, lambda c: c["calibration"].update(init_temperature=float("nan")))
    assert "calibration.init_temperature: nan is not a finite number" in message


def test_the_cli_refuses_a_nan_lr_with_exit_2(tmp_path, capsys):
    bad = preset(tmp_path, "models: {cnn: {optimizer: {lr: .nan}}}")
    assert main(["validate-config", "--config", CONFIG, "--config", bad]) == 2
    assert "models.cnn.optimizer.lr: nan is not a finite number" in capsys.readouterr().err


@pytest.mark.parametrize(("key", "mutate"), [
    ("seeds.0", lambda c: c.update(seeds=[2**32])),
    ("seeds.0", lambda c: c.update(seeds=[-1])),
    ("attacks.seed", lambda c: c["attacks"].update(seed=2**40)),
    ("membership.bootstrap.seed", lambda c: c["membership"]["bootstrap"].update(seed=2**32)),
    ("split.seed", lambda c: c["split"].update(seed=2**32)),
])
def test_seeds_outside_numpys_range_are_refused(repo_config, key, mutate):
    assert f"- {key}: " in refused(repo_config, mutate)


def test_the_largest_seed_numpy_takes_is_accepted(repo_config):
    validate_config({**repo_config, "seeds": [0, 2**32 - 1]})


def test_a_seed_outside_the_range_given_on_the_command_line_is_refused():
    with pytest.raises(ConfigError, match=r"seed 4294967296 is outside 0 \.\. 2\*\*32 - 1"):
        seed_everything(2**32)


@pytest.mark.parametrize(("key", "mutate"), [
    ("seeds.0", lambda c: c.update(seeds=[0.0])),
    ("membership.train_sizes.0", lambda c: c["membership"].update(train_sizes=[1000.0])),
])
def test_a_float_where_an_integer_names_a_path_is_refused(repo_config, key, mutate):
    """JSON Schema's integer admits 1000.0; the paths would read seed0.0 and mi1000.0_cnn."""
    assert f"- {key}: " in refused(repo_config, mutate)


def test_temperatures_that_collide_in_a_model_name_are_refused(repo_config):
    message = refused(repo_config, lambda c: c["distillation"].update(temperatures=[20, 100, 100.0000001]))
    assert "distillation.temperatures: 100, 100.0000001 all name the models teacher_T100 and student_T100" in message


@pytest.mark.parametrize("temperature", [1e-5, 1234567])
def test_a_temperature_that_cannot_be_named_is_refused(repo_config, temperature):
    message = refused(repo_config, lambda c: c["distillation"].update(temperatures=[1, temperature]))
    assert f"distillation.temperatures: {temperature!r} would name models teacher_T" in message


def test_temperatures_that_name_distinct_models_pass(repo_config):
    validate_config({**repo_config, "distillation": {**repo_config["distillation"],
                                                     "temperatures": [0.5, 1, 1.5, 100, 100.5, 0.0001, 999999]}})


# --- issue 18 item 3: a common mistake ends in one message that says what to do -----------------------------------


def make_dry_run(*args: str) -> subprocess.CompletedProcess:
    """`make -n` as a user types it: not a sub-make of the one running the tests (`make test`), whose
    MAKELEVEL would add 'Entering directory' lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("target", ["reproduce", "report", "push", "pull", "dvc.yaml", "lint", "test"])
def test_an_unknown_preset_stops_make_before_any_target_and_lists_the_presets(target):
    # -n: were the check gone, make would only print the commands (reproduce's included), not run them.
    proc = make_dry_run(target, "PRESET=nonexistent")
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert proc.stdout == "", "make got as far as a recipe"
    assert "PRESET=nonexistent is not a preset; choose one of: " + " ".join(preset_names()) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["smoke quick", "smoke.yaml", "%"])
def test_a_preset_value_that_is_not_exactly_one_name_is_refused_too(value):
    proc = make_dry_run("dvc.yaml", f"PRESET={value}")
    assert proc.returncode == 2 and proc.stdout == "" and "is not a preset" in proc.stderr, proc.stderr


def test_a_known_preset_passes_the_check():
    proc = make_dry_run("dvc.yaml", "PRESET=smoke")
    assert proc.returncode == 0, proc.stderr
    assert "export-dvc --config config.yaml --config workflow/presets/smoke.yaml --out dvc.yaml" in proc.stdout


def test_a_command_line_override_is_refused_naming_its_key_and_the_presets():
    refuse_overrides({})
    with pytest.raises(ConfigError) as err:
        refuse_overrides({"seeds": ["1"]})  # what Snakemake makes of `--config seeds=[1]`
    message = str(err.value)
    assert message.startswith("command-line --config overrides are not supported (seeds): ")
    assert all(f"workflow/presets/{name}.yaml" in message for name in preset_names())


def test_snakemake_refuses_a_config_override_before_the_schema_sees_its_value():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--config", "seeds=[1]"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "overrides are not supported (seeds)" in out, out[-2000:]
    assert "is not of type" not in out


# --- item 6: a full disk, exhausted memory, a missing device: exit 2, named --------------------------------------


def split_args(out: Path) -> list[str]:
    return ["split", "--config", CONFIG, "--out", str(out / "split.npz"), "--manifest", str(out / "split.json")]


def no_output(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_a_full_disk_names_the_artifact_being_written(tmp_path, monkeypatch, capsys):
    """The OS names the temporary file beside the artifact (or, after atomic_path names it, the artifact)."""
    import tempered.artifacts

    def full(path, data):
        path = Path(path)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path.with_name(f".{path.name}.k3j9x2.tmp")))

    monkeypatch.setattr(tempered.artifacts, "write_bytes", full)
    out = tmp_path / "out"
    assert main(split_args(out)) == 2
    assert f"split: disk full (no space left on device) writing {out / 'split.npz'}" in capsys.readouterr().err
    assert no_output(out)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs: a real ENOSPC from the kernel (needs the right to mount; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_really_full_disk_ends_in_exit_2_and_leaves_nothing(tiny_disk, capsys):
    out = tiny_disk / "out"
    assert main(split_args(out)) == 2
    assert "split: disk full (no space left on device)" in capsys.readouterr().err
    assert no_output(out)


def test_a_really_full_disk_names_the_artifact(tiny_disk, capsys):
    """The kernel names no file on a failed write or fsync: artifacts.atomic_path adds its target."""
    out = tiny_disk / "out"
    assert main(split_args(out)) == 2
    assert str(out / "split.npz") in capsys.readouterr().err


@pytest.mark.parametrize("exhaust", [
    lambda *a, **k: np.zeros(2**60, np.uint8),
    lambda *a, **k: torch.empty(2**60, dtype=torch.uint8),
], ids=["numpy-MemoryError", "torch-cpu-RuntimeError"])
def test_exhausted_memory_names_the_step_and_its_size_keys(tmp_path, monkeypatch, capsys, exhaust):
    import tempered.stages.data.steps

    monkeypatch.setattr(tempered.stages.data.steps, "make_split", exhaust)
    out = tmp_path / "out"
    assert main(split_args(out)) == 2
    err = capsys.readouterr().err
    assert "split: out of memory (" in err and "lower the sizes it uses (split.validation_size)" in err
    assert no_output(out)


def test_the_size_keys_of_a_training_step_are_its_models(repo_config):
    keys = size_keys(argparse.Namespace(step="train", config=[CONFIG], model="cnn"))
    assert {"models.cnn.batch_size", "models.cnn.limit_train", "evaluation.limit_eval"} <= set(keys)
    assert "models.cnn.epochs" not in keys


def test_an_error_that_is_not_memory_is_not_disguised_as_one(tmp_path, monkeypatch):
    import tempered.stages.data.steps

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tempered.stages.data.steps, "make_split", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(split_args(tmp_path / "out"))


def test_cuda_asked_for_where_there_is_none_names_compute_device(tmp_path):
    bad = preset(tmp_path, "compute: {device: cuda}")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tempered", "train", "--config", CONFIG, "--config", bad, "--model", "cnn",
           "--seed", "0", "--images", str(tmp_path / "absent.npz"), "--split", str(tmp_path / "absent_split.npz"),
           "--checkpoint", str(out / "model.pt"), "--history", str(out / "history.csv")]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "compute.device: 'cuda' but torch sees no CUDA device" in proc.stderr
    assert no_output(out)


# --- item 6: a step that fails leaves no output ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Random digits in MNIST's layout, a split into them, and an untrained CNN: enough to run a step."""
    from tempered.models.papernot_cnn import PapernotCNN

    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    write_arrays(root / "mnist.npz", {
        "x_train": rng.integers(0, 256, (400, 28, 28), dtype=np.uint8), "y_train": rng.integers(0, 10, 400),
        "x_test": rng.integers(0, 256, (200, 28, 28), dtype=np.uint8), "y_test": rng.integers(0, 10, 200)})
    write_arrays(root / "split.npz", {"val": np.arange(100), "train": np.arange(100, 400), "test": np.arange(200),
                                      "full": np.arange(400), "p1": np.arange(200), "p2": np.arange(200, 400)})
    write_arrays(root / "fashion.npz", {"x_test": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)})
    write_arrays(root / "downloaded.npz", {})
    write_json(root / "downloaded.json", {"datasets": {}})
    config = load_config([CONFIG])
    torch.manual_seed(0)
    write_checkpoint(root / "cnn.pt", PapernotCNN().state_dict(),
                     {"model": "cnn", "model_config": config["models"]["cnn"], "provenance": {"seed": 0}})
    write_json(root / "cnn.calibration.json", {"model": "cnn", "seed": 0, "fitted": True, "fitted_temperature": 2.0})
    return root


def test_an_ood_set_refused_after_another_was_scored_leaves_no_scores(synthetic, tmp_path, one_torch_thread):
    """uniform_noise is scored first; the 40 Fashion images are then too few for ood.tune_size 60. The noise
    set's per-sample score tables used to be written already."""
    bad = preset(tmp_path, yaml.safe_dump({"ood": {
        "datasets": ["uniform_noise", "fashion_mnist"], "tune_size": 60, "limit_report": 50,
        "noise": {"seed": 0, "size": 120}, "odin": {"temperatures": [1], "epsilons": [0.0]},
        "confidence_epsilons": [0.0], "bootstrap": {"n_boot": 2, "level": 0.9, "seed": 0}}}))
    out = tmp_path / "out"
    files = {"checkpoint": "cnn.pt", "images": "mnist.npz", "split": "split.npz", "fashion": "fashion.npz",
             "downloaded": "downloaded.npz", "downloaded-manifest": "downloaded.json",
             "calibration": "cnn.calibration.json"}
    args = ["ood", "--config", CONFIG, "--config", bad, "--model", "cnn", "--seed", "0"]
    args += [x for name, f in files.items() for x in (f"--{name}", str(synthetic / f))]
    args += ["--metrics", str(out / "m.json"), "--scores", str(out / "scores"), "--roc", str(out / "r.png"),
             "--histograms", str(out / "h.png")]
    assert main(args) == 2
    assert no_output(out)


def test_evaluate_with_a_checkpoint_that_lacks_its_seed_leaves_no_logits(synthetic, tmp_path, capsys,
                                                                          one_torch_thread):
    """evaluate used to write logits.npz before it read the checkpoint's seed for the metrics."""
    from tempered.models.papernot_cnn import PapernotCNN

    config = load_config([CONFIG])
    checkpoint = tmp_path / "no_seed.pt"
    write_checkpoint(checkpoint, PapernotCNN().state_dict(), {"model": "cnn", "model_config": config["models"]["cnn"]})
    out = tmp_path / "out"
    assert main(["evaluate", "--config", CONFIG, "--model", "cnn", "--checkpoint", str(checkpoint),
                 "--images", str(synthetic / "mnist.npz"), "--split", str(synthetic / "split.npz"),
                 "--logits", str(out / "logits.npz"), "--metrics", str(out / "metrics.json")]) == 2
    assert str(checkpoint) in capsys.readouterr().err
    assert no_output(out)
