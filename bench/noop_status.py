"""How long the engines take to say "nothing to do" on a fully built tree (goal: <= 5 s each).

Run it in a tree built for a preset (e.g. after `make reproduce PRESET=quick`):
    python bench/noop_status.py --preset quick [--repeat 3]
It rewrites the tree's dvc.yaml for the preset, records Snakemake-built outputs in dvc.lock when DVC does not
know them yet (`dvc commit --force`: hashing every artifact once, not timed), then times
`snakemake -n` and `dvc status` `--repeat` times each and prints the median and the spread as JSON.
Both must report nothing to do; the bench fails otherwise (a "no-op" that plans work measures nothing).

Without a built tree, `--placeholders` (in a throwaway clone: it writes under results/) first writes every output
the DAG would build as a small placeholder file (a directory output gets one file), stamps them current in DAG
order with `snakemake --touch`, and records them in dvc.lock: what a no-op costs depends on the number of jobs,
files and dependencies, not on the outputs' contents. Not a test: run it, read the numbers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def write_placeholders(repo: Path, preset: list[str]) -> int:
    """A placeholder for every output of the preset's DAG (Snakemake's --summary lists them), stamped current in
    DAG order; returns how many. An output without a suffix under a scores/ directory is a directory output."""
    summary = subprocess.run(["snakemake", "--summary", *(["--configfile", *preset] if preset else [])], cwd=repo,
                             capture_output=True, text=True, check=True).stdout
    outputs = [row["output_file"] for row in csv.DictReader(io.StringIO(summary), delimiter="\t")]
    for output in outputs:
        path = repo / output
        if "/scores" in output and not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            (path / "placeholder.npy").write_text(output)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(output)
    subprocess.run(["snakemake", "--touch", "--cores", "1", *(["--configfile", *preset] if preset else [])],
                   cwd=repo, check=True, capture_output=True)
    return len(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", help="the preset the tree was built with (workflow/presets/<name>.yaml)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the built tree (default: here)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--placeholders", action="store_true",
                        help="first write a placeholder for every output (a throwaway clone: see above)")
    args = parser.parse_args()
    repo = args.repo.resolve()
    preset = [f"workflow/presets/{args.preset}.yaml"] if args.preset else []
    placeholders = write_placeholders(repo, preset) if args.placeholders else 0

    config_args = [a for f in ["config.yaml", *preset] for a in ("--config", f)]
    subprocess.run([sys.executable, "-m", "tempered", "export-dvc", *config_args], cwd=repo, check=True)
    _, status = timed(["dvc", "status"], repo)
    if "up to date" not in status:
        # Built by Snakemake: record the outputs in dvc.lock and the cache once (not timed), as
        # workflow/scripts/share.sh push does, times reset in DAG order afterwards.
        subprocess.run(["bash", "workflow/scripts/share.sh", "commit", *(["--configfile", *preset] if preset else [])],
                       cwd=repo, check=True)

    commands = {
        "snakemake -n": ["snakemake", "-n", *(["--configfile", *preset] if preset else [])],
        "dvc status": ["dvc", "status"],
    }
    expected = {"snakemake -n": "Nothing to be done", "dvc status": "up to date"}
    results = {}
    for name, cmd in commands.items():
        times = []
        for _ in range(args.repeat):
            elapsed, out = timed(cmd, repo)
            if expected[name] not in out:
                sys.exit(f"{name} has work to do in {repo}; build the tree first:\n{out[-2000:]}")
            times.append(elapsed)
        results[name] = {"median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
                         "max_s": round(max(times), 2), "runs": args.repeat}
    n_stages = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=repo, capture_output=True,
                              text=True, check=True).stdout.count("\n")
    print(json.dumps({"preset": args.preset or "paper", "stages": n_stages, "placeholder_outputs": placeholders,
                      **results}, indent=2))


if __name__ == "__main__":
    main()
