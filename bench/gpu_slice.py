"""A paper-scale slice on one GPU, run as the very jobs Snakemake would run (issue 20 item 7).

The GPU machine this project is lent has torch but neither Snakemake nor DVC, and reaches no registry. So the
slice is planned here and run there:

  python bench/gpu_slice.py plan --overlay bench/gpu/paper_slice.yaml --out .gpu/jobs.json TARGET...
      asks Snakemake (dry run, -p) for every job the targets need, with its shell command, inputs and outputs;
  python3 bench/gpu_slice.py run --jobs .gpu/jobs.json --out DIR --workers N --stop-after S --kill-after K
      runs them there: a job starts once the files it reads exist, up to N at once (several models share the
      GPU), in rule order (training first, C&W first among the attacks); S seconds after this process started
      no job starts, K seconds after it the running ones are killed. Every job's wall time and exit status goes
      to DIR/jobs.jsonl as it ends, the GPU's use to DIR/gpu.csv, and the slice's metrics, histories and logs to
      DIR/results.tgz.

What the first try on the GPU machine taught (docs/costs/gpu.md): its python3 lives in a virtual environment,
so a `python` symlink to it loses the environment's packages (each job's `python` is replaced here by this
interpreter); a cold machine spends tens of seconds on the first `import torch`; and a command killed at its
limit brings back nothing, so K must leave minutes, not seconds, before the device tool's timeout.

Not a test and not part of the DAG: its numbers go into docs/costs/gpu.md and the notes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

PROCESS_START = time.time()

# The order jobs start in when several are ready: the critical path (training, then distillation) first.
RULE_RANK = ["fetch_mnist", "split", "train_model", "reuse_training", "soft_labels", "train_student",
             "evaluate_model", "attack_model"]
ATTACK_RANK = ["cw_l2", "jsma", "jsma_known_t", "pgd", "fgsm"]


def parse_dry_run(text: str) -> list[dict]:
    """The jobs of `snakemake -n -p` output: rule, wildcards, non-code inputs, outputs, shell command."""
    jobs = []
    for block in re.split(r"\n(?=\[[A-Z][a-z]{2} [A-Z][a-z]{2} .*\]\nrule )", text):
        rule = re.search(r"^rule (\w+):", block, re.M)
        command = re.search(r"^Shell command: (.*)$", block, re.M)
        if not rule or not command:
            continue
        field = {name: re.search(rf"^    {name}: (.*)$", block, re.M) for name in ("input", "output", "wildcards")}
        inputs = field["input"].group(1).split(", ") if field["input"] else []
        jobs.append({
            "rule": rule.group(1),
            "wildcards": field["wildcards"].group(1) if field["wildcards"] else "",
            "inputs": [f for f in inputs if not f.startswith("src/")],
            "outputs": field["output"].group(1).split(", "),
            "command": command.group(1),
        })
    return jobs


def plan(args: argparse.Namespace) -> None:
    dry = subprocess.run(["snakemake", *args.targets, "-n", "-p", "--forceall", "--configfile", args.overlay],
                         capture_output=True, text=True, check=True)
    jobs = parse_dry_run(dry.stdout + dry.stderr)
    if not jobs:
        sys.exit("snakemake's dry run listed no job; its output:\n" + dry.stdout[-2000:] + dry.stderr[-2000:])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(jobs, indent=1) + "\n")
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["rule"]] = counts.get(job["rule"], 0) + 1
    print(f"{len(jobs)} jobs -> {args.out}: {counts}")


def priority(job: dict, index: int) -> tuple:
    attack = re.search(r"attack=(\w+)", job["wildcards"])
    rank = ATTACK_RANK.index(attack.group(1)) if attack and attack.group(1) in ATTACK_RANK else 0
    return (RULE_RANK.index(job["rule"]) if job["rule"] in RULE_RANK else len(RULE_RANK), rank, index)


class GpuSampler:
    """nvidia-smi's utilisation and memory every `interval` seconds into a CSV, while the slice runs."""

    def __init__(self, path: Path, interval: int = 2):
        self.process = None
        if shutil.which("nvidia-smi"):
            self.process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=timestamp,utilization.gpu,memory.used,power.draw",
                 "--format=csv", "-l", str(interval)], stdout=path.open("w"), stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()


def environment() -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
            "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def with_this_python(command: str) -> str:
    """The job's command with `python` replaced by this interpreter (whose environment holds torch)."""
    return re.sub(r"^python ", shlex.quote(sys.executable) + " ", command)


def run(args: argparse.Namespace) -> None:
    started = time.monotonic() - (time.time() - PROCESS_START)  # deadlines count from this process's start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "environment.json").write_text(json.dumps(environment(), indent=1) + "\n")
    jobs = json.loads(Path(args.jobs).read_text())
    order = sorted(range(len(jobs)), key=lambda i: priority(jobs[i], i))
    produced = {f for job in jobs for f in job["outputs"]}
    pending, running, failed = list(order), {}, []
    env = dict(os.environ, PYTHONPATH="src" + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    sampler = GpuSampler(out / "gpu.csv")
    record = (out / "jobs.jsonl").open("w")

    def ready(job: dict) -> bool:
        return all(Path(f).exists() or f not in produced for f in job["inputs"])

    while pending or running:
        elapsed = time.monotonic() - started
        for index, (process, job_started) in list(running.items()):
            if process.poll() is None:
                continue
            del running[index]
            job = jobs[index]
            row = {"rule": job["rule"], "wildcards": job["wildcards"], "start_s": round(job_started - started, 2),
                   "seconds": round(time.monotonic() - job_started, 2), "rc": process.returncode}
            record.write(json.dumps(row) + "\n")
            record.flush()
            print(json.dumps(row), flush=True)
            if process.returncode:
                failed.append(index)
        if failed and args.fail_fast:
            break
        if elapsed < args.stop_after:
            for index in [i for i in pending if ready(jobs[i])][: args.workers - len(running)]:
                pending.remove(index)
                for output in jobs[index]["outputs"]:
                    Path(output).parent.mkdir(parents=True, exist_ok=True)
                log = out / "logs" / f"{index:03d}_{jobs[index]['rule']}.log"
                log.parent.mkdir(exist_ok=True)
                running[index] = (subprocess.Popen(with_this_python(jobs[index]["command"]), shell=True,
                                                   env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                                   start_new_session=True),
                                  time.monotonic())
        elif not running:
            break
        if elapsed > args.kill_after:
            break
        time.sleep(0.5)
    for index, (process, job_started) in running.items():  # out of time: what ran until now is still measured
        os.killpg(process.pid, signal.SIGKILL)
        record.write(json.dumps({"rule": jobs[index]["rule"], "wildcards": jobs[index]["wildcards"],
                                 "start_s": round(job_started - started, 2),
                                 "seconds": round(time.monotonic() - job_started, 2), "rc": "killed"}) + "\n")
    record.close()
    sampler.stop()
    summary = {"wall_s": round(time.monotonic() - started, 1), "jobs": len(jobs), "not_started": len(pending),
               "failed": [jobs[i]["wildcards"] or jobs[i]["rule"] for i in failed], "killed": len(running)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary), flush=True)
    with tarfile.open(out / "results.tgz", "w:gz") as tar:
        for pattern in ("results/metrics/**/*.json", "results/models/*/*/history.csv", "logs/**/*.log",
                        "results/data/*.manifest.json"):
            for path in sorted(Path().glob(pattern)):
                tar.add(path)
        tar.add(out / "logs", arcname="runner_logs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--overlay", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("targets", nargs="+")
    r = sub.add_parser("run")
    r.add_argument("--jobs", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--workers", type=int, default=10)
    r.add_argument("--stop-after", type=float, default=300, help="seconds after start when no job starts any more")
    r.add_argument("--kill-after", type=float, default=360, help="seconds after start when running jobs are killed")
    r.add_argument("--fail-fast", action="store_true", help="stop everything at the first failed job")
    args = parser.parse_args()
    plan(args) if args.verb == "plan" else run(args)


if __name__ == "__main__":
    main()
