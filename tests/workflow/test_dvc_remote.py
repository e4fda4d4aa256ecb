"""Sharing through the DVC remote: whoever built the smoke tree (with `dvc repro` or with Snakemake) pushes it
with workflow/scripts/share.sh; a fresh clone pulls it, and then neither DVC nor Snakemake has anything to do,
and every artifact is byte-identical to the one pushed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline import SHARE, SMOKE, clone, clone_env, copy_published, digest, result_files, run

pytestmark = pytest.mark.e2e


def pull_into_fresh_clone(published: Path, place: Path) -> Path:
    fresh = clone(published, place)
    assert not (fresh / "results" / "models").exists()
    run(["bash", SHARE, "pull", "--configfile", SMOKE], fresh)
    return fresh


def assert_nothing_to_do(fresh: Path, published: Path) -> None:
    assert "Data and pipelines are up to date" in run(["dvc", "status"], fresh)
    assert "Nothing to be done" in run(["snakemake", "-n", "--configfile", SMOKE], fresh)
    pushed = result_files(published)
    assert result_files(fresh) == pushed
    assert [p for p in pushed if digest(fresh / p) != digest(published / p)] == []


@pytest.mark.parametrize("engine", ["dvc", "snakemake"])
def test_a_pushed_tree_pulls_into_a_fresh_clone_with_nothing_left_to_do(engine, dvc_run, snakemake_run,
                                                                          published, tmp_path):
    tree = copy_published(published(engine), tmp_path)
    assert (tmp_path / "tempered-dvc-store").is_dir()
    fresh = pull_into_fresh_clone(tree, tmp_path / "fresh")
    assert_nothing_to_do(fresh, tree)


def test_pull_refuses_artifacts_that_do_not_match_the_commit(dvc_run, published, tmp_path):
    """A commit whose config changed after the push (the lock names artifacts of other settings): the pull
    says which stages are stale and marks nothing current for Snakemake."""
    tree = copy_published(published("dvc"), tmp_path)
    preset = tree / SMOKE
    preset.write_text(preset.read_text().replace("max_iterations: 20", "max_iterations: 21"))
    run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE], tree)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "more C&W steps"], tree)
    fresh = clone(tree, tmp_path / "fresh")
    proc = subprocess.run(["bash", SHARE, "pull", "--configfile", SMOKE], cwd=fresh, env=clone_env(fresh),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "do not match" in proc.stderr and "attack_model@cw_l2-cnn-seed0" in proc.stderr, proc.stderr
    assert not list((fresh / ".snakemake").glob("metadata/*"))
