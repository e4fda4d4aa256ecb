"""Hostile input and hostile timing against the real rules: a config file name built to run a command, kill -9
between a job's last write and Snakemake's record of it, Snakemake and DVC on one tree at once, a bad local
data directory. Each runs the engines' own commands in a fresh clone (or a copy of the built smoke tree)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.pipeline import SMOKE, clone, clone_env, digest, run

pytestmark = pytest.mark.e2e

SPLIT = Path("results/data/split.npz")
SPLIT_MANIFEST = Path("results/data/split.manifest.json")  # the split step writes it last


def snakemake(*args: str) -> list[str]:
    return ["snakemake", "--cores", "1", *args]


def fails(cmd: list[str], repo: Path) -> str:
    proc = subprocess.run(cmd, cwd=repo, env=clone_env(repo), capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def wait_for(predicate, what: str, timeout: float = 600, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@pytest.fixture
def fresh(origin, tmp_path) -> Path:
    return clone(origin, tmp_path / "repo")


@pytest.fixture
def built(snakemake_run, tmp_path) -> Path:
    repo = tmp_path / "built"
    shutil.copytree(snakemake_run, repo, symlinks=True)
    return repo


# Item 1: file names reach bash in every job's command line (and in dvc.yaml's).

def test_a_config_file_name_is_never_executed_by_either_engine(fresh):
    names = ["$(touch INJECTED).yaml", "my preset.yaml", "`touch INJECTED2`;.yaml"]
    for name in names:
        (fresh / name).write_text(yaml.safe_dump({"split": {"seed": 0}}))
    run(snakemake("--configfile", SMOKE, *names, "--", str(SPLIT)), fresh)
    assert (fresh / SPLIT).is_file()
    run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE,
         *(arg for name in names for arg in ("--config", name)), "--out", "dvc.yaml"], fresh)
    assert "'$(touch INJECTED).yaml'" in (fresh / "dvc.yaml").read_text()
    (fresh / SPLIT).unlink()
    run(["dvc", "repro", "--single-item", "split"], fresh)
    assert (fresh / SPLIT).is_file()
    assert not [p for p in fresh.rglob("INJECTED*")], "a config file name was executed"


@pytest.mark.parametrize("name", ["two  spaces.yaml", "new\nline.yaml"])
def test_a_config_file_name_that_cannot_be_passed_is_refused_by_name(fresh, name):
    (fresh / name).write_text(yaml.safe_dump({"split": {"seed": 0}}))
    err = fails(snakemake("--configfile", SMOKE, name, "--", str(SPLIT)), fresh)
    assert repr(name) in err, err[-2000:]
    assert not (fresh / "results").exists(), "a job ran"


# Item 7: kill -9 after a job's outputs are written, before Snakemake records the job as finished.

def test_kill_9_after_the_outputs_are_written_then_unlock_and_rerun(fresh):
    cmd = snakemake("--configfile", SMOKE, "--", str(SPLIT))
    proc = subprocess.Popen(cmd, cwd=fresh, env=clone_env(fresh), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (fresh / SPLIT_MANIFEST).exists(), "the split's outputs", every=0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job at once, as a lost machine would
        proc.wait()
    incomplete = fresh / ".snakemake" / "incomplete"
    assert incomplete.is_dir() and any(incomplete.iterdir()), "killed after Snakemake recorded the job: retry"
    # Without the default profile Snakemake would refuse to go on (the moment this test is about)...
    err = fails(["snakemake", "--workflow-profile", "none", "-n", "--cores", "1", "--configfile", SMOKE,
                 "--", str(SPLIT)], fresh)
    assert "--rerun-incomplete" in err, err[-2000:]
    # ... with it, the two commands docs/operations.md gives (interruption) finish the run; the split is redone.
    run([*cmd[:-2], "--unlock", *cmd[-2:]], fresh)
    out = run(cmd, fresh)
    assert "split" in out and not any(incomplete.iterdir())
    fresh_split = fresh / "uninterrupted.npz"
    run([sys.executable, "-m", "tempered", "split", "--config", "config.yaml", "--config", SMOKE,
         "--out", str(fresh_split), "--manifest", str(fresh / "uninterrupted.json")], fresh)
    assert digest(fresh / SPLIT) == digest(fresh_split)


# Item 10: Snakemake and DVC exclude each other through DVC's own lock.

def test_snakemake_refuses_to_start_while_dvc_holds_the_tree(fresh):
    # DVC's repo lock, taken by DVC's own code (as every dvc command takes it).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dvc.repo import Repo; r = Repo('.'); r.lock.lock(); "
         "print('locked', flush=True); time.sleep(600)"],
        cwd=fresh, env=clone_env(fresh), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        err = fails(snakemake("--configfile", SMOKE, "--", str(SPLIT)), fresh)
        assert f"pid {holder.pid}" in err and "dvc" in err, err[-2000:]
    finally:
        holder.kill()
        holder.wait()
    # DVC releases that lock while a stage's command runs; its stage lock (.dvc/tmp/rwlock) is read then.
    run(["dvc", "stage", "add", "-q", "-n", "hold", "-o", "held.txt", "sleep 60 && touch held.txt"], fresh)
    dvc = subprocess.Popen(["dvc", "repro", "--single-item", "hold"], cwd=fresh, env=clone_env(fresh),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rwlock = fresh / ".dvc" / "tmp" / "rwlock"
    try:
        wait_for(lambda: rwlock.exists() and json.loads(rwlock.read_text() or "{}").get("write"), "dvc's stage")
        err = fails(snakemake("--configfile", SMOKE, "--", str(SPLIT)), fresh)
        assert "dvc repro" in err and "rwlock" in err, err[-2000:]
    finally:
        os.killpg(dvc.pid, signal.SIGKILL)
        dvc.wait()
    assert not (fresh / SPLIT).exists(), "Snakemake ran a job beside DVC"
    # Once DVC is gone (even killed), Snakemake runs.
    run(snakemake("--configfile", SMOKE, "--", str(SPLIT)), fresh)


def test_dvc_refuses_to_start_while_snakemake_runs(origin, snakemake_run, tmp_path):
    repo = clone(origin, tmp_path / "repo")
    shutil.copytree(snakemake_run / "results" / "data", repo / "results" / "data")
    model = Path("results/models/cnn/seed0/model.pt")
    log = repo / "logs" / "train_model" / "cnn" / "seed0.log"
    proc = subprocess.Popen(snakemake("--configfile", SMOKE, "--", str(model)), cwd=repo, env=clone_env(repo),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: log.exists(), "the training job")
        assert proc.poll() is None, "the training job finished before DVC could be started beside it"
        for cmd in (["dvc", "repro"], ["dvc", "status"]):
            err = fails(cmd, repo)
            assert "Unable to acquire lock" in err, (cmd, err[-2000:])
        assert proc.wait(timeout=1800) == 0, "the Snakemake run failed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert (repo / model).is_file()
    run(["dvc", "status"], repo)  # released at exit


# Item 11: a rerun fetch would delete the verified data before failing on a bad directory.

@pytest.mark.parametrize("bad", ["missing", "garbage"])
def test_a_bad_local_directory_is_refused_before_the_verified_data_is_deleted(built, bad):
    directory = built / "my_mnist"
    if bad == "garbage":
        directory.mkdir()
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"):
            (directory / name).write_bytes(b"\0" * 100)
    (built / "mine.yaml").write_text(yaml.safe_dump(
        {"data": {"mnist": {"sources": ["local"], "local_dir": "my_mnist"}}}))
    data = built / "results" / "data"
    before = {p.name: digest(p) for p in data.iterdir()}
    err = fails(snakemake("--configfile", SMOKE, "mine.yaml", "--", "results/data/mnist.npz"), built)
    assert "data.mnist.local_dir my_mnist" in err, err[-2000:]
    assert {p.name: digest(p) for p in data.iterdir()} == before, "the verified data was touched"
