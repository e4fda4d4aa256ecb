"""Hostile and corrupt input on the DVC side: a corrupted object in the remote is never pulled as current, and a
key a preset gains after dvc.yaml was exported reaches the stages that read it (dvc-params.json, the merged
config every stage's params name)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tempered.config import REPO_ROOT, ConfigError
from tempered.dvc_export import (
    PARAMS_FILE,
    RESOLVE_STAGE,
    export_dvc_yaml,
    outputs_not_matching_lock,
    render_params_file,
    resolved_stages,
)
from tempered.step_params import has_key
from tests.pipeline import SHARE, SMOKE, clone, clone_env, copy_published, run

CORRUPTED = "results/models/cnn/seed0/model.pt"
FGSM_STAGES = {"attack_model@fgsm-cnn-seed0", "attack_model@fgsm-student_T100-seed0"}


@pytest.fixture
def in_repo(monkeypatch):
    """The exporter works on the workflow in the current directory, as the CLI does."""
    monkeypatch.chdir(REPO_ROOT)


def test_every_stage_names_its_keys_in_the_merged_config(in_repo, tmp_path):
    """A preset that gains attacks.fgsm.eps (absent from it at export) changes the value every FGSM stage
    names, and only theirs among the attack stages."""
    stages = resolved_stages(["config.yaml", SMOKE])
    assert stages[RESOLVE_STAGE]["deps"][:2] == ["config.yaml", SMOKE]
    assert stages[RESOLVE_STAGE]["outs"] == [{PARAMS_FILE: {"cache": False}}]
    merged = yaml.safe_load(render_params_file(["config.yaml", SMOKE]))
    for name, stage in stages.items():
        for entry in stage.get("params", []):
            assert list(entry) == [PARAMS_FILE], name
            assert all(has_key(merged, k) for k in entry[PARAMS_FILE]), name

    preset = yaml.safe_load((REPO_ROOT / SMOKE).read_text())
    assert "fgsm" not in preset["attacks"]
    preset["attacks"]["fgsm"] = {"eps": 0.2}
    edited = tmp_path / "smoke.yaml"
    edited.write_text(yaml.safe_dump(preset))
    changed = yaml.safe_load(render_params_file(["config.yaml", str(edited)]))
    moved = {key for key in {k for s in stages.values() for e in s.get("params", []) for k in e[PARAMS_FILE]}
             if _lookup(changed, key) != _lookup(merged, key)}
    assert moved == {"attacks.fgsm", "attacks"}, moved
    readers = {name for name, s in stages.items() if moved & set(s.get("params", [{}])[0].get(PARAMS_FILE, []))}
    assert {r for r in readers if r.startswith("attack_model@")} == FGSM_STAGES


def _lookup(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


def test_check_fails_on_a_stale_params_file(in_repo, tmp_path):
    out = tmp_path / "dvc.yaml"
    export_dvc_yaml(["config.yaml"], out)
    export_dvc_yaml(["config.yaml"], out, check=True)
    params = tmp_path / PARAMS_FILE
    text = params.read_text()
    assert '"eps": 0.3,' in text
    params.write_text(text.replace('"eps": 0.3,', '"eps": 0.25,', 1))
    with pytest.raises(ConfigError, match=f"{PARAMS_FILE} is stale"):
        export_dvc_yaml(["config.yaml"], out, check=True)


def _dvc_repo_with_outputs(root: Path) -> None:
    """A DVC repository whose dvc.lock records one file output and one directory output, as after a pull."""
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root, check=True,
                   env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    (root / "model.pt").write_bytes(b"weights")
    (root / "scores").mkdir()
    (root / "scores" / "a.npy").write_bytes(b"scores a")
    listing = json.dumps([{"md5": hashlib.md5(b"scores a").hexdigest(), "relpath": "a.npy"}]).encode()
    dir_md5 = hashlib.md5(listing).hexdigest()
    cached = root / ".dvc" / "cache" / "files" / "md5" / dir_md5[:2] / f"{dir_md5[2:]}.dir"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(listing)
    lock = {"schema": "2.0", "stages": {"s": {"cmd": "true", "outs": [
        {"path": "model.pt", "hash": "md5", "md5": hashlib.md5(b"weights").hexdigest(), "size": 7},
        {"path": "scores", "hash": "md5", "md5": f"{dir_md5}.dir", "size": 8, "nfiles": 1}]}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))


def test_a_pulled_file_whose_bytes_are_not_its_digest_is_named(tmp_path):
    _dvc_repo_with_outputs(tmp_path)
    assert outputs_not_matching_lock(tmp_path) == []
    (tmp_path / "model.pt").write_bytes(b"weightz")
    (tmp_path / "scores" / "a.npy").write_bytes(b"scores b")
    problems = outputs_not_matching_lock(tmp_path)
    assert [p.split(":")[0] for p in problems] == ["model.pt", "scores/a.npy"], problems
    assert all("dvc.lock records" in p for p in problems)


def _corrupt_remote_object(published: Path, output: str) -> None:
    """Invert one byte of the remote's copy of `output`, keeping its read-only mode: DVC trusts a read-only
    object in a local remote without re-hashing it (a mode change alone would make it check)."""
    stages = yaml.safe_load((published / "dvc.lock").read_text())["stages"]
    md5 = next(o["md5"] for s in stages.values() for o in s.get("outs", []) if o["path"] == output)
    obj = published.parent / "tempered-dvc-store" / "files" / "md5" / md5[:2] / md5[2:]
    mode = obj.stat().st_mode
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    obj.chmod(mode & 0o7777)


def _pull(fresh: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", SHARE, "pull", "--configfile", SMOKE], cwd=fresh, env=clone_env(fresh),
                          capture_output=True, text=True, timeout=900)


@pytest.mark.e2e
def test_a_corrupted_remote_object_is_never_pulled_as_current(dvc_run, published, tmp_path):
    tree = copy_published(published("dvc"), tmp_path)
    _corrupt_remote_object(tree, CORRUPTED)

    # The store verifies downloads (.dvc/config): DVC refuses the object and the pull fails naming the output.
    fresh = clone(tree, tmp_path / "fresh")
    proc = _pull(fresh)
    assert proc.returncode != 0
    assert CORRUPTED in proc.stderr and "dvc pull failed" in proc.stderr, proc.stderr[-3000:]
    assert not (fresh / CORRUPTED).exists()
    assert not list((fresh / ".snakemake").glob("metadata/*"))

    # A remote without `verify` hands the object over and `dvc status` calls it current: share.sh's own digest
    # check names the file.
    unverified = clone(tree, tmp_path / "unverified")
    run(["dvc", "remote", "modify", "--local", "store", "verify", "false"], unverified)
    proc = _pull(unverified)
    assert proc.returncode != 0
    assert f"{CORRUPTED}: md5" in proc.stderr and "do not match dvc.lock" in proc.stderr, proc.stderr[-3000:]
    assert "Data and pipelines are up to date" in run(["dvc", "status"], unverified)  # what DVC alone says
    assert not list((unverified / ".snakemake").glob("metadata/*"))


def _dvc_status(repo: Path) -> set[str]:
    proc = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=clone_env(repo), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


@pytest.mark.e2e
def test_a_key_a_preset_gains_after_export_reruns_its_readers(dvc_run, tmp_path):
    """attacks.fgsm.eps, absent from the smoke preset when dvc.yaml was exported, then added to it."""
    repo = tmp_path / "edited"
    shutil.copytree(dvc_run, repo, symlinks=True)
    preset = repo / SMOKE
    settings = yaml.safe_load(preset.read_text())
    assert "fgsm" not in settings["attacks"]
    settings["attacks"]["fgsm"] = {"eps": 0.2}
    preset.write_text(yaml.safe_dump(settings))

    # Before any export DVC already sees the edit, through the stage that merges the config files.
    assert _dvc_status(repo) == {RESOLVE_STAGE}

    run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE], repo)
    changed = _dvc_status(repo)
    assert {s for s in changed if s.startswith("attack_model@")} == FGSM_STAGES, sorted(changed)
    assert changed - FGSM_STAGES == {RESOLVE_STAGE, "report"}, sorted(changed)
