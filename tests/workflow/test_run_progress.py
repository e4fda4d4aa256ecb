"""tests.pipeline.run, which every long build of the end-to-end tests goes through: it shows a build's progress
while it runs (issue 18: `make test` printed nothing for half an hour) and fails with the tails of its output."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tempered.config import REPO_ROOT
from tests import pipeline
from tests.pipeline import run


@pytest.fixture
def shown(monkeypatch) -> list[str]:
    lines: list[str] = []
    monkeypatch.setattr(pipeline, "show", lines.append)
    return lines


def test_progress_lines_are_shown_while_the_build_runs(tmp_path, monkeypatch):
    """The fake build waits for its first progress line to be shown: relayed only at exit, it fails."""
    lines: list[str] = []

    def show(line: str) -> None:
        lines.append(line)
        if "1 of 3 steps (33%) done" in line:
            (tmp_path / "seen").touch()

    monkeypatch.setattr(pipeline, "show", show)
    script = ('echo "1 of 3 steps (33%) done" >&2; '
              'for i in $(seq 100); do [ -e seen ] && break; sleep 0.1; done; [ -e seen ] || exit 7; '
              "echo \"Running stage 'train@cnn-0':\"; echo 'a line nobody needs'; "
              'echo "3 of 3 steps (100%) done" >&2')
    out = run(["bash", "-c", script], tmp_path)

    assert "a line nobody needs" in out
    assert lines[0] == f"bash -c {shlex.quote(script)}: running in {tmp_path} (for {os.environ['PYTEST_CURRENT_TEST']})"
    relayed = [line.split("] ", 1)[1] for line in lines[1:-1]]
    assert relayed == ["1 of 3 steps (33%) done", "Running stage 'train@cnn-0':", "3 of 3 steps (100%) done"]
    assert lines[-1].startswith(f"bash -c {shlex.quote(script)}: done [0:0")


def test_a_quick_command_without_progress_is_not_announced(tmp_path, shown):
    assert run(["bash", "-c", "echo hello"], tmp_path) == "hello\n"
    assert shown == []


def test_a_failure_keeps_the_tails_of_both_streams(tmp_path, shown):
    script = 'for i in $(seq 5000); do echo "out $i"; echo "err $i" >&2; done; echo "Error in rule train:" >&2; exit 3'
    with pytest.raises(AssertionError) as failure:
        run(["bash", "-c", script], tmp_path)
    message = str(failure.value)
    assert "failed (3)" in message
    assert "out 5000" in message and "err 5000" in message and "Error in rule train:" in message
    assert "out 1\n" not in message and "err 1\n" not in message  # tails, not the whole output
    assert any("Error in rule train:" in line for line in shown)
    assert shown[-1].startswith(f"bash -c {shlex.quote(script)}: failed (3) [0:")


def test_a_build_past_its_timeout_is_killed_and_fails(tmp_path, shown):
    with pytest.raises(AssertionError, match=r"timed out after 1 s:\nstarted"):
        run(["bash", "-c", "echo started; echo '1 of 2 steps (50%) done' >&2; exec sleep 60"], tmp_path, timeout=1)
    assert shown[-1].startswith("bash -c ") and "timed out after 1 s [0:0" in shown[-1]


def test_under_pytest_the_progress_reaches_the_terminal_past_capture(tmp_path):
    """With tests/conftest.py loaded, a fixture's build is seen in `pytest -q`'s own output, not captured."""
    (tmp_path / "test_build.py").write_text(
        "import pytest\n"
        "from tests.pipeline import run\n\n"
        "@pytest.fixture(scope='session')\n"
        "def build(tmp_path_factory):\n"
        "    return run(['bash', '-c', 'echo \"1 of 2 steps (50%) done\" >&2'], tmp_path_factory.mktemp('b'))\n\n"
        "def test_uses_the_build(build):\n"
        "    assert build\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "--basetemp", str(tmp_path / "inner"), "--rootdir", str(tmp_path),
                           str(tmp_path / "test_build.py")],
                          cwd=REPO_ROOT, env={**pipeline.clone_env(REPO_ROOT), "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 of 2 steps (50%) done" in proc.stdout, proc.stdout
    assert "(for test_build.py::test_uses_the_build (setup))" in proc.stdout, proc.stdout


def test_clone_env_points_dvc_at_the_sessions_site_cache(tmp_path):
    """DVC's per-repository indexes go to the session's temporary folder, not /var/tmp/dvc (conftest)."""
    site = Path(pipeline.clone_env(tmp_path)["DVC_SITE_CACHE_DIR"])
    assert site.is_dir() and site.parent == tmp_path.parent, site
