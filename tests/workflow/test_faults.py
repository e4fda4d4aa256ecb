"""Bad input against a built smoke tree: each step fails fast with exit status 2 and a message naming the
problem, and nothing already built is deleted or changed. (The unit tests cover each check; these run the
real commands the rules run.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import damage
from tests.pipeline import SMOKE, clone_env, digest, result_files

pytestmark = pytest.mark.e2e

TRAIN = ["-m", "tempered", "train", "--config", "config.yaml", "--config", SMOKE, "--model", "cnn",
         "--seed", "0", "--images", "results/data/mnist.npz", "--split", "results/data/split.npz",
         "--checkpoint", "out/model.pt", "--history", "out/history.csv"]
EVALUATE = ["-m", "tempered", "evaluate", "--config", "config.yaml", "--config", SMOKE, "--model", "cnn",
            "--checkpoint", "results/models/cnn/seed0/model.pt",
            "--images", "results/data/mnist.npz", "--split", "results/data/split.npz",
            "--logits", "out/logits.npz", "--metrics", "out/metrics.json"]


@pytest.fixture
def built(snakemake_run, tmp_path) -> Path:
    """A private copy of the built smoke tree, and the digest of every artifact in it."""
    repo = tmp_path / "repo"
    shutil.copytree(snakemake_run, repo, symlinks=True)
    return repo


def fails(cmd: list[str], repo: Path) -> str:
    before = {p: digest(repo / p) for p in result_files(repo)}
    proc = subprocess.run(cmd, cwd=repo, env=clone_env(repo), capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    after = {p: digest(repo / p) for p in result_files(repo)}
    assert after == before, "a failing command changed or deleted built artifacts"
    assert not (repo / "out").exists() or not any((repo / "out").iterdir()), "a failed step left output"
    return proc.stderr


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_data_file_is_named(built, how):
    images = built / "results" / "data" / "mnist.npz"
    damage(images, how)
    err = fails([sys.executable, *TRAIN], built)
    assert "results/data/mnist.npz is not a readable .npz file" in err, err


def test_a_damaged_checkpoint_is_named(built):
    damage(built / "results" / "models" / "cnn" / "seed0" / "model.pt", "truncate")
    err = fails([sys.executable, *EVALUATE], built)
    assert "checkpoint results/models/cnn/seed0/model.pt refused" in err, err


def test_a_checkpoint_of_another_architecture_is_named(built):
    theirs = built / "results" / "models" / "fc100_100_10" / "seed0" / "model.pt"
    shutil.copy(theirs, built / "results" / "models" / "cnn" / "seed0" / "model.pt")
    err = fails([sys.executable, *EVALUATE], built)
    assert "results/models/cnn/seed0/model.pt" in err and "fc100_100_10" in err, err


@pytest.mark.parametrize(("settings", "named"), [
    ({"distillation": {"temperatures": [0]}}, "distillation.temperatures"),
    ({"distillation": {"temperatures": []}}, "distillation.temperatures"),
    ({"attacks": {"enabled": ["jsma", "deepfool"]}}, "deepfool"),
    ({"split": {"validation_size": 60000}}, "validation_size"),
])
def test_a_bad_config_stops_both_engines_before_any_job(built, settings, named):
    (built / "bad.yaml").write_text(yaml.safe_dump(settings))
    for cmd in (["snakemake", "--cores", "1", "--configfile", SMOKE, "bad.yaml"],
                [sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE,
                 "--config", "bad.yaml", "--out", "out/dvc.yaml"]):
        err = fails(cmd, built)
        assert named in err, (cmd, err[-2000:])
