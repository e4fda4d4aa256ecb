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
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tempered.config import PRESETS_DIR, REPO_ROOT, ConfigError, load_config
from tempered.step_params import step_config_keys

MAIN_CONFIG = "config.yaml"
PARAMS_FILE = "dvc.params.yaml"
RESOLVE_STAGE = "resolve_config"
CODE_DEPS = ["src/tempered"]
# DVC runs each command with the `python` first on PATH; one without the package fails every stage with only
# "No module named tempered". resolve_config, the first stage DVC evaluates, checks this first and says why.
REQUIRE_PACKAGE = "workflow/scripts/require_tempered.sh"
# A failed --check names this many stages (or keys) of each kind, or shows this many diff lines.
STALE_NAMES_SHOWN = 3
STALE_DIFF_LINES = 20
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
    clone's `dvc status` can read every stage's params before anything is pulled). DVC evaluates it first (it
    leads dvc.yaml and depends on no stage), so its REQUIRE_PACKAGE names a `python` without the package."""
    return {"cmd": [REQUIRE_PACKAGE, f"python -m tempered export-dvc {args} --out {PARAMS_FILE}"],
            "deps": [*config_files, *CODE_DEPS, REQUIRE_PACKAGE],
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


def _leaves(value: Any, key: str = "") -> dict[str, Any]:
    """Nested mappings as {dotted key: value} down to the leaves (lists and empty mappings are leaves)."""
    if not isinstance(value, Mapping) or (key and not value):
        return {key: value}
    found: dict[str, Any] = {}
    for name, item in value.items():
        found.update(_leaves(item, f"{key}.{name}" if key else str(name)))
    return found


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:STALE_NAMES_SHOWN])
    return f"{shown}, ..." if len(names) > STALE_NAMES_SHOWN else shown


def _exported_for(text: str) -> str | None:
    """The config arguments a generated file's first line names (HEADER, PARAMS_HEADER), or None."""
    match = re.search(r"export-dvc (.*?)`", text.partition("\n")[0])
    return match[1] if match else None


def _entries(text: str, params: bool) -> dict[str, Any] | None:
    """dvc.yaml's stages by name, or the params file's keys by dotted name; None if the text is not one."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if params:
        return _leaves(data) if isinstance(data, Mapping) else None
    stages = data.get("stages") if isinstance(data, Mapping) else None
    return dict(stages) if isinstance(stages, Mapping) else None


def stale_summary(path: Path, current: str | None, expected: str) -> str:
    """A few lines on how the file at `path` (text `current`, None when absent) differs from `expected`: the config
    it was exported for, the stages (or params keys) regenerating adds, removes and changes, by count and first
    names; the first lines of the diff when the files are not both parseable. Never the whole diff (the paper
    scale dvc.yaml is 29,000 lines, and a preset's differs from it in most)."""
    if current is None:
        return f"{path} is missing"
    lines = [f"{path} is stale"]
    was, now = _exported_for(current), _exported_for(expected)
    if was and now and was != now:
        lines[0] += f": it was exported for `{was}`, not `{now}`"
    params = path.name == PARAMS_FILE
    old, new = _entries(current, params), _entries(expected, params)
    if old is not None and new is not None:
        noun = "keys" if params else "stages"
        kinds = [("adds", [k for k in new if k not in old]), ("removes", [k for k in old if k not in new]),
                 ("changes", [k for k in new if k in old and new[k] != old[k]])]
        counts = [f"{verb} {len(keys):,} ({_names(keys)})" for verb, keys in kinds if keys]
        if counts:
            lines.append(f"  {len(old):,} {noun} in the file; regenerating {'; '.join(counts)}")
            return "\n".join(lines)
    diff = list(difflib.unified_diff(current.splitlines(), expected.splitlines(), str(path), "generated", n=0,
                                     lineterm=""))
    lines += [f"  {line}" for line in diff[:STALE_DIFF_LINES]]
    if len(diff) > STALE_DIFF_LINES:
        lines.append(f"  ... ({len(diff) - STALE_DIFF_LINES:,} more diff lines)")
    return "\n".join(lines)


def fix_command(config_files: Sequence[str], out: Path) -> str:
    """The command that regenerates `out` for these config files: `make dvc.yaml [PRESET=<name>]` where it
    can (the repository's own dvc.yaml, config.yaml and at most one preset), else the export-dvc call."""
    presets = list(config_files[1:])
    presets_dir = PRESETS_DIR.relative_to(REPO_ROOT)
    names = [Path(p).stem for p in presets if Path(p).parent == presets_dir and Path(p).suffix == ".yaml"]
    if out.parent.resolve() == Path.cwd().resolve() and len(presets) <= 1 and len(names) == len(presets):
        return "make dvc.yaml" + "".join(f" PRESET={name}" for name in names)
    return f"python -m tempered export-dvc {_config_args(config_files)} --out {shlex.quote(str(out))}"


def _write_or_check(config_files: Sequence[str], out: Path, texts: dict[Path, str], check: bool) -> None:
    from tempered.artifacts import write_bytes

    if not check:
        for path, text in texts.items():
            write_bytes(path, text.encode())
        return
    current = {path: path.read_text() if path.exists() else None for path in texts}
    stale = [stale_summary(path, current[path], text) for path, text in texts.items() if current[path] != text]
    if stale:
        raise ConfigError("\n".join(stale) + f"\nregenerate: {fix_command(config_files, out)}")


def export_dvc_yaml(config_files: Sequence[str], out: Path, check: bool = False) -> None:
    """Write (or with `check`, compare) dvc.yaml at `out` and PARAMS_FILE beside it; an `out` named
    PARAMS_FILE writes only that file (what the resolve_config stage runs). A failed check names each stale
    file, summarizes how it differs and gives the command that regenerates it."""
    if out.name == PARAMS_FILE:
        _write_or_check(config_files, out, {out: render_params_file(config_files)}, check)
        return
    text = render_dvc_yaml(config_files)
    texts = {out.with_name(PARAMS_FILE): render_params_file(config_files), out: text}
    _write_or_check(config_files, out, texts, check)


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
