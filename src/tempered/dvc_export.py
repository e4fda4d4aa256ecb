"""Generate dvc.yaml from the Snakemake DAG, so both engines run the same jobs with the same commands.

One DVC stage per Snakemake job: the job's exact shell command, its inputs plus the package source as deps,
the config keys its step reads (step_params) as params, outputs under results/metrics/ as metrics, PNG
figures as plots, every other output as a cached out.

The params name keys of PARAMS_FILE, the merged config (config.yaml overlaid by the presets), not of the config
files themselves: DVC can only list a key its file holds, and a preset holds only what it overrides, so a key a
preset gains later (attacks.fgsm.eps) would be invisible to DVC. The first stage, resolve_config, rewrites
PARAMS_FILE from the config files, so an edited preset (or `dvc exp run -S <preset>:<key>=<value>`) reaches
exactly the stages whose keys changed value, wherever the key is set.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tempered.config import ConfigError, load_config
from tempered.step_params import step_config_keys

MAIN_CONFIG = "config.yaml"
PARAMS_FILE = "dvc.params.yaml"
RESOLVE_STAGE = "resolve_config"
CODE_DEPS = ["src/tempered"]
HEADER = (
    "# Generated from the Snakemake DAG by `python -m tempered export-dvc {args}`; do not edit by hand.\n"
    "# `make dvc.yaml PRESET=<name>` regenerates it for a preset; tests fail when it is stale.\n"
)
PARAMS_HEADER = (
    "# The merged config that dvc.yaml's params name, written by `python -m tempered export-dvc {args}` (and by\n"
    "# dvc.yaml's stage resolve_config when a config file changes); do not edit: edit config.yaml or the preset.\n"
)


@dataclass(frozen=True)
class SnakemakeJob:
    rule: str
    wildcards: dict[str, str]
    inputs: list[str]
    outputs: list[str]
    cmd: str


def snakemake_jobs(presets: Sequence[str], workdir: Path | None = None) -> list[SnakemakeJob]:
    """Every job of the full DAG (as if nothing were built), via Snakemake's API, for the workflow in
    `workdir` (default: the current directory, the repository the command runs in)."""
    workdir = Path.cwd() if workdir is None else workdir
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[Path(p) for p in presets]),
            snakefile=workdir / "Snakefile",
            workdir=workdir,
        )
        workflow_api.dag(DAGSettings(forceall=True))
        # Snakemake has no public call that returns the job list; summary() and printdag() use these two.
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        jobs = [
            SnakemakeJob(job.rule.name, {k: str(v) for k, v in job.wildcards.items()},
                         sorted(map(str, job.input)), [str(o) for o in job.output],
                         " ".join(job.shellcmd.split()))
            for job in workflow.dag.jobs if job.shellcmd
        ]
    return sorted(jobs, key=lambda j: (j.rule, sorted(j.wildcards.items())))


def stage_name(job: SnakemakeJob) -> str:
    parts = [f"{k}{v}" if v.isdigit() else v for k, v in job.wildcards.items()]
    return "-".join([job.rule, *parts])


def _step_keys(cmd: str, config: dict) -> list[str]:
    """The config keys the command's step reads, found by parsing it with the CLI's own parser."""
    from tempered.cli import build_parser

    argv = shlex.split(cmd)
    if argv[:3] != ["python", "-m", "tempered"]:
        raise ValueError(f"rule command does not call the tempered CLI: {cmd}")
    args = build_parser().parse_args(argv[3:])
    named = {k: v for k, v in vars(args).items() if k != "step" and isinstance(v, str | int)}
    return step_config_keys(args.step, config, **named)


def resolve_stage(config_files: Sequence[str], args: str) -> dict[str, Any]:
    """The stage that rewrites PARAMS_FILE when a config file changes (not cached: git holds it, so a fresh
    clone's `dvc status` can read every stage's params before anything is pulled)."""
    return {"cmd": f"python -m tempered export-dvc {args} --out {PARAMS_FILE}",
            "deps": [*config_files, *CODE_DEPS],
            "outs": [{PARAMS_FILE: {"cache": False}}]}


def dvc_stage(job: SnakemakeJob, config: dict) -> dict[str, Any]:
    stage: dict[str, Any] = {"cmd": job.cmd, "deps": [*job.inputs, *CODE_DEPS]}
    keys = _step_keys(job.cmd, config)
    if keys:
        stage["params"] = [{PARAMS_FILE: keys}]
    metrics = [o for o in job.outputs if o.startswith("results/metrics/")]
    plots = [o for o in job.outputs if o.endswith(".png")]
    outs = [o for o in job.outputs if o not in metrics and o not in plots]
    if outs:
        stage["outs"] = outs
    if metrics:
        stage["metrics"] = metrics
    if plots:
        stage["plots"] = plots
    return stage


def _config_args(config_files: Sequence[str]) -> str:
    return " ".join(f"--config {f}" for f in config_files)


def _check_order(config_files: Sequence[str]) -> None:
    if not config_files or config_files[0] != MAIN_CONFIG:
        raise ConfigError(f"export-dvc needs {MAIN_CONFIG} first, then presets; got {list(config_files)}")


def render_dvc_yaml(config_files: Sequence[str]) -> str:
    _check_order(config_files)
    presets = list(config_files[1:])
    config = load_config(config_files)
    jobs = snakemake_jobs(presets)
    args = _config_args(config_files)
    stages = {RESOLVE_STAGE: resolve_stage(config_files, args),
              **{stage_name(job): dvc_stage(job, config) for job in jobs}}
    return HEADER.format(args=args) + yaml.safe_dump({"stages": stages}, sort_keys=False, width=1000)


def render_params_file(config_files: Sequence[str]) -> str:
    """The merged, validated config, keys sorted (so reordering a config file changes nothing)."""
    _check_order(config_files)
    args = _config_args(config_files)
    return PARAMS_HEADER.format(args=args) + yaml.safe_dump(load_config(config_files), sort_keys=True, width=1000)


def _write_or_check(out: Path, text: str, check: bool) -> None:
    from tempered.artifacts import write_bytes

    if not check:
        write_bytes(out, text.encode())
        return
    current = out.read_text() if out.exists() else ""
    if current != text:
        diff = "".join(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                            str(out), "generated", n=1))
        raise ConfigError(f"{out} is stale against the Snakefile and config; regenerate it "
                          f"(make dvc.yaml). Difference:\n{diff}")


def export_dvc_yaml(config_files: Sequence[str], out: Path, check: bool = False) -> None:
    """Write (or with `check`, compare) dvc.yaml at `out` and PARAMS_FILE beside it; an `out` named
    PARAMS_FILE writes only that file (what the resolve_config stage runs)."""
    if out.name == PARAMS_FILE:
        _write_or_check(out, render_params_file(config_files), check)
        return
    text = render_dvc_yaml(config_files)
    _write_or_check(out.with_name(PARAMS_FILE), render_params_file(config_files), check)
    _write_or_check(out, text, check)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def outputs_not_matching_lock(root: Path) -> list[str]:
    """'<file>: <why>' for every output file in the workspace at `root` whose md5 is not the one dvc.lock
    records (a directory output's files against its .dir listing in the DVC cache). After a pull, DVC records
    each checked-out file under the digest the remote object is *named* by, so a corrupted object would pass
    `dvc status`; this re-hashes the bytes. Entries of another hash kind (DVC 2's md5-dos2unix) are skipped."""
    from dvc.repo import Repo

    lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    problems: list[str] = []

    def check(path: Path, expected: str) -> None:
        if not path.is_file():
            problems.append(f"{path.relative_to(root)}: missing")
        elif (actual := _md5(path)) != expected:
            problems.append(f"{path.relative_to(root)}: md5 {actual}, dvc.lock records {expected}")

    with Repo(str(root)) as repo:
        cache = repo.cache.local
        for stage in (lock.get("stages") or {}).values():
            for out in stage.get("outs", []):
                if out.get("hash") != "md5":
                    continue
                path, md5 = root / out["path"], out["md5"]
                if not md5.endswith(".dir"):
                    check(path, md5)
                    continue
                listing = Path(cache.oid_to_path(md5))
                if not listing.is_file() or _md5(listing) != md5.removesuffix(".dir"):
                    problems.append(f"{out['path']}: the DVC cache lacks a sound listing of its files ({md5})")
                    continue
                for entry in json.loads(listing.read_text()):
                    check(path / entry["relpath"], entry["md5"])
    return problems


def verify_pulled_outputs(root: Path = Path(".")) -> int:
    """share.sh pull's last check before marking outputs current for Snakemake: 0, or 1 naming each file."""
    import sys

    problems = outputs_not_matching_lock(root.resolve())
    for problem in problems:
        print(f"share.sh: {problem}", file=sys.stderr)
    if problems:
        print("share.sh: the pulled files above do not match dvc.lock (a corrupted object in the remote?); not "
              "marking them current for Snakemake", file=sys.stderr)
    return 1 if problems else 0
