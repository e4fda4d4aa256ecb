"""Running the pipeline in throwaway clones of the working tree: the helpers the end-to-end tests share.
The clones' runs themselves are session fixtures in tests/conftest.py, built once and shared by every test
module (each is a full smoke run: minutes)."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tempered.dvc_export import committed_stages
from tempered.reproduction_report import TIMESTAMP_PREFIX

SMOKE = "workflow/presets/smoke.yaml"


def clone_env(cwd: Path) -> dict[str, str]:
    """The venv's tools, importing the clone's own package (not the editable install's)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(cwd / "src")}


# While a command runs, these lines of its output are shown on the terminal: Snakemake's step count, each stage
# DVC starts, and a rule that failed. A smoke build takes many minutes, and pytest hides what a fixture prints.
PROGRESS = re.compile(r"\d+ of \d+ steps \(\d+%\) done|^Running stage |^Error in rule ")
ANNOUNCE_AFTER_S = 10.0  # a command that runs longer, or shows progress, is named when it starts and ends
POLL_S = 1.0


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# Where run() reports; tests/conftest.py points it at pytest's terminal.
show: Callable[[str], None] = _to_stderr


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> str:
    """Run cmd in cwd with the clone's environment; assert it exits 0 within timeout seconds (the message holds
    the tails of its stdout and stderr) and return both. A command that runs past ANNOUNCE_AFTER_S, or prints
    a PROGRESS line, is named through `show` with where it runs and for which test, then its PROGRESS lines as
    they come (after the time since it started), then how it ended and when."""
    name = shlex.join(["python" if part == sys.executable else part for part in cmd])
    started = time.monotonic()
    output = {"stdout": bytearray(), "stderr": bytearray()}
    unfinished = {"stdout": b"", "stderr": b""}
    announced = timed_out = False

    def relay(readers: dict) -> None:
        nonlocal announced
        lines = []
        for stream, reader in readers.items():
            data = reader.read()
            output[stream] += data
            *complete, unfinished[stream] = (unfinished[stream] + data).split(b"\n")
            lines += [line.strip() for raw in complete for line in raw.decode(errors="replace").splitlines()
                      if PROGRESS.search(line)]
        elapsed = time.monotonic() - started
        if not announced and (lines or elapsed > ANNOUNCE_AFTER_S):
            announced = True
            test = os.environ.get("PYTEST_CURRENT_TEST")
            show(f"{name}: running in {cwd}" + (f" (for {test})" if test else ""))
        for line in lines:
            show(f"  [{_clock(elapsed)}] {line}")

    with tempfile.TemporaryDirectory(prefix="run-") as logs:
        files = {stream: Path(logs, stream) for stream in output}
        with files["stdout"].open("wb") as out, files["stderr"].open("wb") as err:
            # Unbuffered: DVC's "Running stage" lines reach the file as they are printed, not at exit.
            proc = subprocess.Popen(cmd, cwd=cwd, env={**clone_env(cwd), "PYTHONUNBUFFERED": "1"},
                                    stdout=out, stderr=err)
        with files["stdout"].open("rb") as out, files["stderr"].open("rb") as err:
            try:
                while proc.poll() is None:
                    try:
                        proc.wait(timeout=POLL_S)
                    except subprocess.TimeoutExpired:
                        timed_out = time.monotonic() - started > timeout
                        if timed_out:
                            proc.kill()
                    relay({"stdout": out, "stderr": err})
                relay({"stdout": out, "stderr": err})
            finally:
                if proc.poll() is None:  # interrupted (Ctrl-C): leave no build running
                    proc.kill()
                proc.wait()
    stdout, stderr = output["stdout"].decode(errors="replace"), output["stderr"].decode(errors="replace")
    outcome = (f"timed out after {timeout} s" if timed_out else
               "done" if proc.returncode == 0 else f"failed ({proc.returncode})")
    if announced:
        show(f"{name}: {outcome} [{_clock(time.monotonic() - started)}]")
    assert proc.returncode == 0 and not timed_out, f"{name} {outcome}:\n{stdout[-3000:]}\n{stderr[-6000:]}"
    return stdout + stderr


def digest(path: Path) -> str:
    """sha256 of a file (REPORT.md without its timestamp line); of a directory output (per-sample OOD scores),
    over its files' names and bytes. Snakemake's empty .snakemake_timestamp marker in directory outputs is
    the engine's, not an artifact."""
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp"):
            h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
        return h.hexdigest()
    data = path.read_bytes()
    if path.name == "REPORT.md":  # the one line that may differ between two builds of the same results
        stamp = TIMESTAMP_PREFIX.encode()
        data = b"\n".join(line for line in data.split(b"\n") if not line.startswith(stamp))
    return hashlib.sha256(data).hexdigest()


def clone(origin: Path, destination: Path) -> Path:
    run(["git", "clone", "-q", str(origin), str(destination)], destination.parent)
    return destination


def tracked_outputs(repo: Path) -> list[str]:
    stages = committed_stages(repo)
    # Plain paths only: resolve_config's uncached params file ({path: {cache: false}}) is git's, not a result.
    return sorted(p for s in stages.values() for key in ("outs", "metrics", "plots") for p in s.get(key, [])
                  if isinstance(p, str))


def result_files(repo: Path) -> list[str]:
    """Every file a run built under results/, relative to the clone; not the report, which tests build on
    demand, nor Snakemake's empty .snakemake_timestamp markers in directory outputs."""
    root = repo / "results"
    return sorted(str(p.relative_to(repo)) for p in root.rglob("*")
                  if p.is_file() and p.name not in {".snakemake_timestamp", "report.html"})
