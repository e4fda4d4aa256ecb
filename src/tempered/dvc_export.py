"""Generate dvc.yaml from the Snakemake DAG, so both engines run the same jobs with the same commands.

One DVC stage per Snakemake job: the job's exact shell command, its inputs plus the package source as deps,
the config keys its step reads (step_params) as params, outputs under results/metrics/ as metrics, PNG
figures as plots, every other output as a cached out.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tempered.config import ConfigError, load_config, read_yaml
from tempered.step_params import has_key, step_config_keys

MAIN_CONFIG = "config.yaml"
CODE_DEPS = ["src/tempered"]
HEADER = (
    "# Generated from the Snakemake DAG by `python -m tempered export-dvc {args}`; do not edit by hand.\n"
    "# `make dvc.yaml PRESET=<name>` regenerates it for a preset; tests fail when it is stale.\n"
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


def _params(keys: list[str], presets: Sequence[str]) -> list[Any]:
    """config.yaml holds every key; a preset is listed for the keys it overrides (DVC needs them present)."""
    params: list[Any] = [{MAIN_CONFIG: keys}] if keys else []
    for preset in presets:
        present = [k for k in keys if has_key(read_yaml(Path(preset)), k)]
        if present:
            params.append({preset: present})
    return params


def dvc_stage(job: SnakemakeJob, config: dict, presets: Sequence[str]) -> dict[str, Any]:
    stage: dict[str, Any] = {"cmd": job.cmd, "deps": [*job.inputs, *CODE_DEPS]}
    params = _params(_step_keys(job.cmd, config), presets)
    if params:
        stage["params"] = params
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


def render_dvc_yaml(config_files: Sequence[str]) -> str:
    if not config_files or config_files[0] != MAIN_CONFIG:
        raise ConfigError(f"export-dvc needs {MAIN_CONFIG} first, then presets; got {list(config_files)}")
    presets = list(config_files[1:])
    config = load_config(config_files)
    jobs = snakemake_jobs(presets)
    stages = {stage_name(job): dvc_stage(job, config, presets) for job in jobs}
    args = " ".join(f"--config {f}" for f in config_files)
    return HEADER.format(args=args) + yaml.safe_dump({"stages": stages}, sort_keys=False, width=1000)


def export_dvc_yaml(config_files: Sequence[str], out: Path, check: bool = False) -> None:
    from tempered.artifacts import write_bytes

    text = render_dvc_yaml(config_files)
    if check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            diff = "".join(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                str(out), "generated", n=1))
            raise ConfigError(f"{out} is stale against the Snakefile and config; regenerate it "
                              f"(make dvc.yaml). Difference:\n{diff}")
        return
    write_bytes(out, text.encode())
