"""Generate dvc.yaml from the Snakemake DAG, so both engines run the same jobs with the same commands.

One DVC stage per Snakemake job: the job's exact shell command, its inputs (the source files its step runs
among them, rules/common.smk `code`) as deps, the config keys its step reads (step_params) as params, outputs
under results/metrics/ as metrics, PNG figures as plots, every other output as a cached out. The jobs of one rule
are written as one `foreach` stage (tempered.dvc_foreach) over items kept in JOBS_FILE, so dvc.yaml reads as the
rules do; DVC names each job's stage <rule>@<wildcards>.

The params name keys of PARAMS_FILE, the merged config (config.yaml overlaid by the presets), not of the config
files themselves: DVC can only list a key its file holds, and a preset holds only what it overrides, so a key a
preset gains later (attacks.fgsm.eps) would be invisible to DVC. The first stage, resolve_config, rewrites
PARAMS_FILE from the config files, so an edited preset (or `dvc exp run -S <preset>:<key>=<value>`) reaches
exactly the stages whose keys changed value, wherever the key is set.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tempered import code_deps
from tempered.config import PRESETS_DIR, REPO_ROOT, ConfigError, load_config
from tempered.dvc_foreach import Definition, JobStage, expand_stage, fold
from tempered.model_grid import family_dataset, model_config_key, model_id
from tempered.nested import leaves
from tempered.step_params import step_config_keys

MAIN_CONFIG = "config.yaml"
PARAMS_FILE = "dvc-params.json"
JOBS_FILE = "dvc-jobs.json"
JOBS_VAR = "jobs"  # JOBS_FILE's one top-level key: dvc.yaml's foreach stages read ${jobs.<stage>}
RESOLVE_STAGE = "resolve_config"
# Inputs listing one file per model seed, the job's own seed among them (rules/membership.smk): their seeds stay
# as written, so one definition serves every target seed (tempered.dvc_foreach.template_text).
NUMBERS_AS_WRITTEN = {"membership_attack": ("shadows",)}
ONE_LINE = 1 << 30  # yaml's line width: never fold a command or a list
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
# The two generated files DVC reads are JSON: DVC parses a params file once per stage that names it (200 times on
# the quick preset), and its YAML parser made `dvc status` take 12 s there, JSON 7 s. Their names carry one dot:
# DVC picks the parser by everything after the first dot of a name, so "dvc.params.json" is read as YAML.
# JSON has no comments: GENERATED_KEY holds what the header comment of a YAML file would say.
GENERATED_KEY = "_generated"
JOBS_NOTE = ("The jobs of each foreach stage of dvc.yaml (wildcards, and the inputs they do not determine), written "
             "by `python -m tempered export-dvc {args}` from the Snakemake DAG; do not edit by hand.")
PARAMS_NOTE = ("The merged config that dvc.yaml's params name, written by `python -m tempered export-dvc {args}` (and "
               "by dvc.yaml's stage resolve_config when a config file changes); do not edit: edit config.yaml or the "
               "preset.")


@dataclass(frozen=True)
class SnakemakeJob:
    rule: str
    wildcards: dict[str, str]
    inputs: list[str]
    outputs: list[str]
    cmd: str
    named_inputs: dict[str, str | list[str]]


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
                         " ".join(job.shellcmd.split()),
                         {name: str(value) if isinstance(value, str) else list(map(str, value))
                          for name, value in job.input.items()})
            for job in workflow.dag.jobs if job.shellcmd
        ]
    return sorted(jobs, key=lambda j: (j.rule, sorted(j.wildcards.items())))


def job_key(job: SnakemakeJob) -> str:
    """The job's name among its rule's jobs: its wildcards (a number after its wildcard's name), or the rule."""
    parts = [f"{k}{v}" if v.isdigit() else v for k, v in job.wildcards.items()]
    return "-".join(parts) or job.rule


@functools.cache
def _cli_parser() -> argparse.ArgumentParser:
    """The CLI's own parser, built once: a paper-scale DAG has ~9,000 jobs to parse."""
    from tempered.cli import build_parser

    return build_parser()


def _step_keys(cmd: str, config: dict) -> list[str]:
    """The config keys the command's step reads, found by parsing it with the CLI's own parser."""
    argv = shlex.split(cmd)
    if argv[:3] != ["python", "-m", "tempered"]:
        raise ValueError(f"rule command does not call the tempered CLI: {cmd}")
    args = _cli_parser().parse_args(argv[3:])
    named = {k: v for k, v in vars(args).items() if k != "step" and isinstance(v, str | int)}
    return step_config_keys(args.step, config, **named)


def resolve_stage(config_files: Sequence[str], args: str) -> dict[str, Any]:
    """The stage that rewrites PARAMS_FILE when a config file changes (not cached: git holds it, so a fresh
    clone's `dvc status` can read every stage's params before anything is pulled). DVC evaluates it first (it
    leads dvc.yaml and depends on no stage), so its REQUIRE_PACKAGE names a `python` without the package."""
    return {"cmd": [REQUIRE_PACKAGE, f"python -m tempered export-dvc {args} --out {PARAMS_FILE}"],
            "deps": [*config_files, *code_deps.step_files("export-dvc"), REQUIRE_PACKAGE],
            "outs": [{PARAMS_FILE: {"cache": False}}]}


def dvc_stage(job: SnakemakeJob, config: dict) -> dict[str, Any]:
    stage: dict[str, Any] = {"cmd": job.cmd, "deps": list(dict.fromkeys(job.inputs))}  # a file named twice: once
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


def stage_definitions(config_files: Sequence[str]) -> list[Definition]:
    """Every rule's jobs folded into foreach definitions (checked job by job), in rule order."""
    _check_order(config_files)
    config = load_config(config_files)
    by_rule: dict[str, list[JobStage]] = {}
    for job in snakemake_jobs(list(config_files[1:])):
        by_rule.setdefault(job.rule, []).append(
            JobStage(job_key(job), job.wildcards, job.named_inputs, dvc_stage(job, config),
                     _settings(config, job.wildcards), *_labels(config, job.wildcards),
                     NUMBERS_AS_WRITTEN.get(job.rule, ())))
    return [definition for rule, jobs in by_rule.items() for definition in fold(rule, jobs)]


def _settings(config: Mapping[str, Any], wildcards: Mapping[str, str]) -> dict[str, str]:
    """A model's family: the config entry (models.<family>) its settings come from (a student's is the base's)."""
    if "model" not in wildcards:
        return {}
    return {"family": model_config_key(config, wildcards["model"]).removeprefix("models.")}


def _labels(config: Mapping[str, Any], wildcards: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The part of the DAG a job belongs to (dvc_foreach.JobStage): a membership model's jobs read
    membership.epochs besides the model's keys; those that depend on their size's shadows hold mi<size>, and
    those that read their dataset's settings (membership.adversarial_input.<dataset>) name it."""
    if "model" not in wildcards or not (model := model_id(config, wildcards["model"])).is_membership:
        return (), ()
    return ("membership",), (f"mi{model.size}", family_dataset(config, model.family))


def _stage_entry(definition: Definition) -> dict[str, Any]:
    if list(definition.items) == [definition.name] and not definition.items[definition.name]:
        return definition.body  # a rule with one job and no wildcards: a plain stage
    return {"foreach": "${" + f"{JOBS_VAR}.{definition.name}" + "}", "do": definition.body}


def render_dvc_files(config_files: Sequence[str]) -> tuple[str, str]:
    """dvc.yaml's text and JOBS_FILE's."""
    definitions = stage_definitions(config_files)
    args = _config_args(config_files)
    stages = {RESOLVE_STAGE: resolve_stage(config_files, args), **{d.name: _stage_entry(d) for d in definitions}}
    # Lists of plain entries on one line each (default_flow_style=None): a stage reads as a few lines.
    dvc_yaml = HEADER.format(args=args) + yaml.safe_dump({"vars": [JOBS_FILE], "stages": stages},
                                                         sort_keys=False, width=ONE_LINE, default_flow_style=None)
    jobs = {d.name: d.items for d in definitions if _stage_entry(d) is not d.body}
    return dvc_yaml, _jobs_json(jobs, JOBS_NOTE.format(args=args))


def _jobs_json(jobs: Mapping[str, Mapping[str, Any]], note: str) -> str:
    """JOBS_FILE's text: one job per line, as a reader scans it."""
    def line(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    stages = [f"  {line(stage)}: {{\n" + ",\n".join(f"   {line(key)}: {line(item)}" for key, item in items.items())
              + "\n  }" for stage, items in jobs.items()]
    return (f"{{\n {line(GENERATED_KEY)}: {line(note)},\n {line(JOBS_VAR)}: {{\n" + ",\n".join(stages)
            + "\n }\n}\n")


def render_dvc_yaml(config_files: Sequence[str]) -> str:
    return render_dvc_files(config_files)[0]


def expand_stages(dvc_yaml: Mapping[str, Any], jobs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """dvc.yaml's stages as DVC resolves them, given the parsed dvc.yaml and JOBS_FILE: a foreach stage becomes
    one stage per item, named <stage>@<key> (what `dvc stage list` shows)."""
    stages: dict[str, dict[str, Any]] = {}
    for name, entry in dvc_yaml["stages"].items():
        if "foreach" not in entry:
            stages[name] = entry
            continue
        for key, item in jobs[JOBS_VAR][name].items():
            stages[f"{name}@{key}"] = expand_stage(entry["do"], item)
    return stages


def resolved_stages(config_files: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stages DVC runs for these config files (expand_stages of what export-dvc writes)."""
    dvc_yaml, jobs = render_dvc_files(config_files)
    return expand_stages(yaml.safe_load(dvc_yaml), yaml.safe_load(jobs))


def committed_stages(root: Path) -> dict[str, dict[str, Any]]:
    """The stages of the dvc.yaml (and JOBS_FILE) in the directory `root`."""
    return expand_stages(yaml.safe_load((root / "dvc.yaml").read_text()),
                         yaml.safe_load((root / JOBS_FILE).read_text()))


def render_params_file(config_files: Sequence[str]) -> str:
    """The merged, validated config, keys sorted (so reordering a config file changes nothing)."""
    _check_order(config_files)
    args = _config_args(config_files)
    params = {GENERATED_KEY: PARAMS_NOTE.format(args=args), **load_config(config_files)}
    return json.dumps(params, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:STALE_NAMES_SHOWN])
    return f"{shown}, ..." if len(names) > STALE_NAMES_SHOWN else shown


def _exported_for(text: str) -> str | None:
    """The config arguments a generated file's header names (HEADER, GENERATED_KEY's note), or None."""
    match = re.search(r"export-dvc (.*?)`", text[:2000])
    return match[1] if match else None


def _entries(text: str, kind: str) -> dict[str, Any] | None:
    """dvc.yaml's stages by name, JOBS_FILE's jobs as <stage>@<key>, or the params file's keys by dotted name;
    None if the text is not one."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if kind == "keys":
        return leaves(data) if isinstance(data, Mapping) else None
    if kind == "jobs":
        jobs = data.get(JOBS_VAR) if isinstance(data, Mapping) else None
        if not isinstance(jobs, Mapping) or not all(isinstance(items, Mapping) for items in jobs.values()):
            return None
        return {f"{stage}@{key}": item for stage, items in jobs.items() for key, item in items.items()}
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
    kind = {PARAMS_FILE: "keys", JOBS_FILE: "jobs"}.get(path.name, "stages")
    old, new = _entries(current, kind), _entries(expected, kind)
    if old is not None and new is not None:
        noun = kind
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
    dvc_yaml, jobs_yaml = render_dvc_files(config_files)
    texts = {out.with_name(PARAMS_FILE): render_params_file(config_files), out.with_name(JOBS_FILE): jobs_yaml,
             out: dvc_yaml}
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
