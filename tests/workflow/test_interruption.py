"""kill -9 in the middle of a training job, Snakemake and all: nothing partial is left under an output's
name, the rerun completes, and its bytes equal those of a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.pipeline import SMOKE, clone, clone_env, digest, run

pytestmark = pytest.mark.e2e

MODEL_DIR = Path("results/models/cnn/seed0")
OUTPUTS = [MODEL_DIR / "model.pt", MODEL_DIR / "history.csv"]
LOG = Path("logs/train_model/cnn/seed0.log")
# Four epochs instead of smoke's two, so that there is a "middle" to kill in: after the first epoch's log line.
LONGER = {"models": {"cnn": {"epochs": 4, "limit_train": 3000}}}


def snakemake(repo: Path, *extra: str) -> list[str]:
    return ["snakemake", "--cores", "1", "--configfile", SMOKE, "longer.yaml", *extra, "--", str(OUTPUTS[0])]


def wait_for(predicate, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def repo(origin, snakemake_run, tmp_path) -> Path:
    """A fresh clone with the smoke run's data copied in (fetching it again is not what is tested here)."""
    repo = clone(origin, tmp_path / "repo")
    (repo / "results" / "data").mkdir(parents=True)
    for f in (snakemake_run / "results" / "data").iterdir():
        (repo / "results" / "data" / f.name).write_bytes(f.read_bytes())
    (repo / "longer.yaml").write_text(yaml.safe_dump(LONGER))
    return repo


def test_kill_9_mid_training_then_rerun_equals_an_uninterrupted_run(repo, tmp_path):
    proc = subprocess.Popen(snakemake(repo), cwd=repo, env=clone_env(repo), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (repo / LOG).exists() and "epoch 1/4" in (repo / LOG).read_text(), "the first epoch")
        assert proc.poll() is None, "the job finished before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, at once, as a node failure would
        proc.wait()
    assert "epoch 4/4" not in (repo / LOG).read_text()
    # Nothing under an output's name; at most a temp file, named so that no engine can take it for one.
    for output in OUTPUTS:
        assert not (repo / output).exists(), output
    leftovers = [p.name for p in (repo / MODEL_DIR).iterdir()] if (repo / MODEL_DIR).exists() else []
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers

    # The killed Snakemake left its lock behind: unlock, and the rerun builds the outputs.
    run(snakemake(repo, "--unlock"), repo)
    run(snakemake(repo), repo)
    assert "epoch 4/4" in (repo / LOG).read_text()

    # The same step, never interrupted, into another place.
    fresh = tmp_path / "uninterrupted"
    run([sys.executable, "-m", "tempered", "train", "--config", "config.yaml", "--config", SMOKE,
         "--config", "longer.yaml", "--model", "cnn", "--seed", "0", "--images", "results/data/mnist.npz",
         "--split", "results/data/split.npz", "--checkpoint", str(fresh / "model.pt"),
         "--history", str(fresh / "history.csv")], repo)
    assert digest(repo / OUTPUTS[0]) == digest(fresh / "model.pt")
    assert digest(repo / OUTPUTS[1]) == digest(fresh / "history.csv")
