"""Running the pipeline in throwaway clones of the working tree: the helpers the end-to-end tests share.
The clones' runs themselves are session fixtures in tests/conftest.py, built once and shared by every test
module (each is a full smoke run: minutes)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tempered.reproduction_report import TIMESTAMP_PREFIX

SMOKE = "workflow/presets/smoke.yaml"


def clone_env(cwd: Path) -> dict[str, str]:
    """The venv's tools, importing the clone's own package (not the editable install's)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(cwd / "src")}


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=clone_env(cwd), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout + proc.stderr


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
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    # Plain paths only: resolve_config's uncached params file ({path: {cache: false}}) is git's, not a result.
    return sorted(p for s in stages.values() for key in ("outs", "metrics", "plots") for p in s.get(key, [])
                  if isinstance(p, str))


def result_files(repo: Path) -> list[str]:
    """Every file a run built under results/, relative to the clone; not the report, which tests build on
    demand, nor Snakemake's empty .snakemake_timestamp markers in directory outputs."""
    root = repo / "results"
    return sorted(str(p.relative_to(repo)) for p in root.rglob("*")
                  if p.is_file() and p.name not in {".snakemake_timestamp", "report.html"})
