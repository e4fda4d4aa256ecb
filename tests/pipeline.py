"""Running the pipeline in throwaway clones of the working tree: the helpers the end-to-end tests share.
The clones' runs themselves are session fixtures in tests/conftest.py, built once and shared by every test
module (each is a full smoke run: minutes)."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tempered import paths
from tempered.dvc_export import committed_stages
from tempered.stages.report.reproduction import TIMESTAMP_PREFIX

SMOKE = "workflow/presets/smoke.yaml"
SHARE = "workflow/scripts/share.sh"
# What the Slurm build makes: one cheap job of every rule that runs on the cluster (every rule but the localrules),
# with what those need. The profile, the submissions and the outputs' bytes are tested on 30 jobs instead of a
# third build of the whole smoke DAG (112 jobs), which the local and DVC builds already make;
# tests/workflow/test_slurm.py checks that these still reach every cluster rule of the smoke DAG.
SLURM_TARGETS = [
    paths.SZEGEDY_TRANSFER.format(seed=0),  # lbfgs_attack on both training sets, evaluate_model
    paths.TRAINING_SET_ERROR.format(model="fc100_100_10", seed=0),
    paths.GRADIENTS.format(model="student_T100", seed=0),  # soft_labels, train_student
    paths.ATTACK_METRICS.format(attack="fgsm", model="cnn", seed=0),
    paths.OOD_METRICS.format(model="cnn", seed=0),  # calibrate_model
    paths.MEMBERSHIP_METRICS.format(model="mi200_cnn", seed=0),  # membership_outputs, train_model at 4 seeds
]


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


class Command:
    """A command started in cwd with the clone's environment, its output going to files; `finish` waits for it,
    showing its progress as run() does. Started early, a long build runs beside other work (the session's
    smoke builds, tests/conftest.py) and is relayed only once someone waits for it."""

    def __init__(self, cmd: list[str], cwd: Path, timeout: int = 900):
        self.name = shlex.join(["python" if part == sys.executable else part for part in cmd])
        self.cwd, self.timeout = cwd, timeout
        self.started = time.monotonic()
        self._logs = tempfile.TemporaryDirectory(prefix="run-")
        self._files = {stream: Path(self._logs.name, stream) for stream in ("stdout", "stderr")}
        with self._files["stdout"].open("wb") as out, self._files["stderr"].open("wb") as err:
            # Unbuffered: DVC's "Running stage" lines reach the file as they are printed, not at exit.
            self.proc = subprocess.Popen(cmd, cwd=cwd, env={**clone_env(cwd), "PYTHONUNBUFFERED": "1"},
                                         stdout=out, stderr=err, start_new_session=True)

    def kill(self) -> None:
        """Stop the command and everything it started (a build's jobs), if it still runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def finish(self) -> str:
        """Wait until the command exits; assert it exited 0 within its timeout (the message holds the tails of
        its stdout and stderr) and return both. A command that runs past ANNOUNCE_AFTER_S, or prints a PROGRESS
        line, is named through `show` with where it runs and for which test, then its PROGRESS lines as they
        come (after the time since it started), then how it ended and when."""
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
            elapsed = time.monotonic() - self.started
            if not announced and (lines or elapsed > ANNOUNCE_AFTER_S):
                announced = True
                test = os.environ.get("PYTEST_CURRENT_TEST")
                show(f"{self.name}: running in {self.cwd}" + (f" (for {test})" if test else ""))
            for line in lines:
                show(f"  [{_clock(elapsed)}] {line}")

        with self._logs, self._files["stdout"].open("rb") as out, self._files["stderr"].open("rb") as err:
            try:
                while self.proc.poll() is None:
                    try:
                        self.proc.wait(timeout=POLL_S)
                    except subprocess.TimeoutExpired:
                        timed_out = time.monotonic() - self.started > self.timeout
                        if timed_out:
                            self.kill()
                    relay({"stdout": out, "stderr": err})
                relay({"stdout": out, "stderr": err})
            finally:
                self.kill()  # interrupted (Ctrl-C): leave no build running
        stdout, stderr = output["stdout"].decode(errors="replace"), output["stderr"].decode(errors="replace")
        code = self.proc.returncode
        outcome = (f"timed out after {self.timeout} s" if timed_out else
                   "done" if code == 0 else f"failed ({code})")
        if announced:
            show(f"{self.name}: {outcome} [{_clock(time.monotonic() - self.started)}]")
        assert code == 0 and not timed_out, f"{self.name} {outcome}:\n{stdout[-3000:]}\n{stderr[-6000:]}"
        return stdout + stderr


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> str:
    """Run cmd in cwd and wait for it (Command.finish says what is shown and checked); its stdout and stderr."""
    return Command(cmd, cwd, timeout).finish()


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


def publish(built: Path, place: Path) -> Path:
    """A copy of a built clone at `place` whose smoke dvc.yaml, dvc-jobs.json, dvc-params.json and dvc.lock are
    committed, then pushed. The default remote (.dvc/config) is the directory `tempered-dvc-store` beside the
    clone."""
    shutil.copytree(built, place, symlinks=True)
    run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE], place)
    run(["bash", SHARE, "push", "--configfile", SMOKE], place)
    # The pusher's own tree stays current for both engines.
    assert "Nothing to be done" in run(["snakemake", "-n", "--configfile", SMOKE], place)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], place)
    run(["git", "add", "dvc.yaml", "dvc-jobs.json", "dvc-params.json", "dvc.lock"], place)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke artifacts"], place)
    return place


def copy_published(published: Path, place: Path) -> Path:
    """A copy of a published clone and of its remote store beside it, under `place`, for a test that changes
    either or clones it: a clone made under `place` finds the copied store through the default remote's relative
    path. The copy of the clone is returned."""
    for part in (published, published.parent / "tempered-dvc-store"):
        shutil.copytree(part, place / part.name, symlinks=True)
    return place / published.name
