"""What `make reproduce` is about to do, said before it starts: how many jobs, how long on this machine, and how to
run less. The time comes from the cost records an earlier run of the same preset left here (logs/benchmarks,
tempered.costs); without them, from the work of training the CNNs at this machine's measured CPU rate, which is a
lower bound: every other job adds to it."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tempered import paths
from tempered.config import MNIST_TRAIN_SIZE, load_config, preset_names
from tempered.model_grid import model_config, model_id, trained_model_names, training_twins
from tempered.reporting.durations import ESTIMATED, duration

# Papernot CNN, batch 128, fp32, 2 CPU threads: 2,300-2,600 samples/s measured here by bench/train_throughput.py
# (idle machine). The lower end, so that the bound stays a bound.
CPU_CNN_SAMPLES_PER_S = 2300.0
CNN_ARCHITECTURES = frozenset({"papernot_cnn", "confidence_cnn"})
# Convolutional models of other sizes, counted at the Papernot CNN's rate times their multiply-accumulates per
# sample relative to it (Song et al. 2019's CNN at width 16 is ~140 Papernot CNNs; the MLPs stay uncounted).
SCALED_ARCHITECTURES = frozenset({"song_cnn"})
TRAINING_RULES = ("train_model", "train_student")
# Cost tables of whole runs on this project's 2-core machine (tempered costs --out docs/costs), one per preset.
REFERENCE_COSTS = Path("docs/costs")
# A long run on a CPU waits this long before starting, when someone is at the terminal to read the summary.
PAUSE_S = 10
PAUSE_AFTER_S = 3600.0

_JOB_ROW = re.compile(r"^(?P<rule>[A-Za-z_][\w]*)\s+(?P<count>\d+)$")


@dataclass(frozen=True)
class Estimate:
    seconds: float
    how: str
    lower_bound: bool


def planned_jobs(presets: Sequence[str], workdir: Path = Path(".")) -> dict[str, int]:
    """Jobs per rule that `snakemake` would run now (its dry run's job table; nothing when all is built)."""
    cmd = ["snakemake", "-n", "--quiet", "rules", *(a for p in presets for a in ("--configfile", p))]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return parse_job_table(proc.stdout + proc.stderr)


def parse_job_table(text: str) -> dict[str, int]:
    """The first 'Job stats' table of a dry run, without its 'all' and 'total' rows."""
    jobs: dict[str, int] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if line.strip() == "Job stats:":
            break
    else:
        return jobs
    for line in lines:
        match = _JOB_ROW.match(line.strip())
        if match is None:
            if jobs:
                break
            continue  # the header and its rule
        if match["rule"] == "total":
            break
        if match["rule"] != "all":
            jobs[match["rule"]] = int(match["count"])
    return jobs


def recorded_seconds(records_dir: Path) -> dict[str, float]:
    """Mean wall seconds per job of each rule an earlier run recorded under records_dir."""
    from tempered.costs import read_records

    if not records_dir.is_dir():
        return {}
    records = read_records(records_dir)
    return {str(rule): float(s) for rule, s in records.groupby("rule")["wall_s"].mean().items()}


def reference_seconds(table_csv: Path) -> dict[str, float]:
    """Mean wall seconds per job of each rule in a committed cost table (docs/costs/<preset>.csv, written by
    `tempered costs` from a run on this project's 2-core machine)."""
    import pandas as pd

    if not table_csv.is_file():
        return {}
    table = pd.read_csv(table_csv)
    return {str(row.rule): float(row.wall_total_s) / int(row.jobs) for row in table.itertuples()}


def training_set_size(config: Mapping[str, Any], model: str) -> int:
    settings, mid = model_config(config, model), model_id(config, model)
    if mid.is_membership:  # a membership model trains on its half of its size's pool: the size
        size = mid.size
    elif settings["train_set"] in ("p1", "p2"):
        size = MNIST_TRAIN_SIZE // 2
    elif settings["train_set"] == "train":
        size = MNIST_TRAIN_SIZE - config["split"]["validation_size"]
    else:
        size = MNIST_TRAIN_SIZE
    limit = settings.get("limit_train")
    return min(size, limit) if limit else size


@functools.lru_cache(maxsize=32)
def forward_macs(architecture: str, args: tuple[tuple[str, Any], ...] = ()) -> int:
    """Multiply-accumulates of one 28x28 sample through the model's convolutions and linear layers (hooks on a
    forward pass of the built model: its own layer sizes, never a second description of them)."""
    import torch
    from torch import nn

    from tempered.models import build_model

    model = build_model({"architecture": architecture, "dropout": 0.0, "architecture_args": dict(args)}).eval()
    total = 0

    def count(module, _inputs, output) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    return total


def cnn_cost_factor(settings: Mapping[str, Any]) -> float:
    """A model's training cost per sample in Papernot-CNN passes: 1 for the Papernot CNNs, their MAC ratio for
    SCALED_ARCHITECTURES, 0 (not counted) for the MLPs."""
    if settings["architecture"] in CNN_ARCHITECTURES:
        return 1.0
    if settings["architecture"] in SCALED_ARCHITECTURES:
        args = tuple(sorted(settings.get("architecture_args", {}).items()))
        return forward_macs(settings["architecture"], args) / forward_macs("papernot_cnn")
    return 0.0


def cnn_sample_epochs(config: Mapping[str, Any], model: str) -> float:
    """Samples the model's training passes through a Papernot CNN (PGD training: one pass per attack step as well;
    a larger CNN: as many Papernot CNN passes as its multiply-accumulates make, cnn_cost_factor)."""
    settings = model_config(config, model)
    factor = cnn_cost_factor(settings)
    if not factor:
        return 0.0
    passes = 1 + settings["pgd_training"]["steps"] if settings["method"] == "madry_pgd" else 1
    return float(settings["epochs"] * training_set_size(config, model) * passes * factor)


def trained_models(config: Mapping[str, Any]) -> list[str]:
    """What the DAG trains: every model it has a checkpoint of (model_grid.trained_model_names, membership copies of a
    disabled cnn_pgd included) but the twins, whose weights are a copy (rule reuse_training)."""
    twins = training_twins(config)
    return [model for model in trained_model_names(config) if model not in twins]


def training_bound(config: Mapping[str, Any], training_jobs: int) -> Estimate:
    """Time to train the CNNs of `training_jobs` jobs (the mean job of the config's models) on this CPU."""
    models = trained_models(config)
    per_job = sum(cnn_sample_epochs(config, m) for m in models) / max(len(models), 1)
    work = per_job * training_jobs
    return Estimate(work / CPU_CNN_SAMPLES_PER_S,
                    f"training the CNNs alone is {work:,.0f} sample passes at ~{CPU_CNN_SAMPLES_PER_S:,.0f} "
                    "samples/s (this machine's CPU rate, bench/train_throughput.py)", lower_bound=True)


def estimate(jobs: Mapping[str, int], recorded: Mapping[str, float], config: Mapping[str, Any],
             source: str = "the cost records of an earlier run of this preset here") -> Estimate:
    """From the records (seconds per job of each rule) when they cover every planned rule; otherwise the
    recorded part plus the training bound for the rest."""
    unrecorded = sorted(rule for rule in jobs if rule not in recorded)
    if jobs and not unrecorded:
        seconds = sum(count * recorded[rule] for rule, count in jobs.items())
        return Estimate(seconds, f"from {source}", lower_bound=False)
    bound = training_bound(config, sum(jobs.get(rule, 0) for rule in TRAINING_RULES if rule in unrecorded))
    if recorded:
        recorded_part = sum(count * recorded[rule] for rule, count in jobs.items() if rule in recorded)
        return Estimate(recorded_part + bound.seconds,
                        f"rules in {source}, and for the rest, {bound.how}", lower_bound=True)
    return bound


def summary(config_files: Sequence[str], jobs: Mapping[str, int], found: Estimate, on_gpu: bool) -> str:
    presets = [f for f in config_files if Path(f).name != "config.yaml"]
    what = " + ".join(config_files)
    total = sum(jobs.values())
    if total == 0:
        return f"make reproduce ({what}): everything is built; nothing to run."
    biggest = sorted(jobs.items(), key=lambda item: (-item[1], item[0]))[:4]
    lines = [f"make reproduce ({what}): {total} jobs to run ("
             + ", ".join(f"{rule} {count}" for rule, count in biggest) + (", ..." if len(jobs) > 4 else "") + ")"]
    bound = "at least " if found.lower_bound else "about "
    if on_gpu:
        lines.append("  a CUDA device is present: the CPU estimate below does not apply to this run")
    lines.append(f"  expected on this machine's CPU, one job at a time: {bound}{duration(found.seconds, ESTIMATED)} "
                 f"({found.how})")
    if not presets:
        lines.append("  this is paper scale (config.yaml alone), meant for a GPU or a cluster; to run less here: "
                     + ", ".join(f"PRESET={name}" for name in preset_names()))
    lines.append("  per-rule costs of a finished run: results/costs/<preset>.md (`make costs`)")
    return "\n".join(lines)


def cuda_present() -> bool:
    import torch

    return torch.cuda.is_available()


def run(config_files: Sequence[str], pause_s: float = PAUSE_S) -> int:
    """Print the summary; pause (Ctrl-C stops the run) only for a long CPU run with someone at the terminal."""
    config = load_config(config_files)
    presets = [f for f in config_files if Path(f).name != "config.yaml"]
    jobs = planned_jobs(presets)
    label = paths.cost_label(list(config_files))
    local = Path(paths.COST_RECORDS) / label
    committed = REFERENCE_COSTS / f"{label}.csv"
    if recorded := recorded_seconds(local):
        found = estimate(jobs, recorded, config, f"the cost records of an earlier run here ({local}/)")
    else:
        found = estimate(jobs, reference_seconds(committed), config, f"the measured costs in {committed}")
    on_gpu = config["compute"]["device"] == "cuda" or (config["compute"]["device"] == "auto" and cuda_present())
    print(summary(config_files, jobs, found, on_gpu), file=sys.stderr)
    if not on_gpu and found.seconds >= PAUSE_AFTER_S and sys.stdin.isatty() and pause_s > 0:
        print(f"  starting in {pause_s:.0f} s; Ctrl-C stops it", file=sys.stderr, flush=True)
        try:
            time.sleep(pause_s)
        except KeyboardInterrupt:
            print("  stopped before the first job", file=sys.stderr)
            return 130
    return 0
