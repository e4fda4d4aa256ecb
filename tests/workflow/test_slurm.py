"""The smoke preset on a real single-node Slurm cluster (tests/slurm_cluster.sh), through the project's profile
(workflow/profiles/slurm): every job that is not a localrule runs as a Slurm job, and the outputs are the
bytes the local run built. Skipped, with the reason, where Slurm cannot be brought up (not root, no apt)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.pipeline import SMOKE, digest, result_files, run

pytestmark = pytest.mark.e2e

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)")


def cluster_jobs(repo: Path) -> dict[str, int]:
    """Jobs of the smoke DAG that are not localrules, as '<rule>' -> count, from Snakemake's own dry run."""
    out = run(["snakemake", "-n", "--forceall", "--configfile", SMOKE, "--profile", "workflow/profiles/slurm"],
              repo)
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        # The "Job stats" table: '<rule> <count>' rows (not 'jobid: 0' lines, nor the total).
        if len(parts) == 2 and parts[1].isdigit() and parts[0].isidentifier() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def local_rules(repo: Path) -> set[str]:
    rules, current = set(), None
    for path in sorted((repo / "workflow" / "rules").glob("*.smk")):
        for line in path.read_text().splitlines():
            if m := re.match(r"rule (\w+):", line):
                current = m[1]
            elif line.strip() == "localrule: True":
                rules.add(current)
    return rules | {"all"}


def test_every_cluster_job_ran_as_a_slurm_job(slurm_run):
    repo, out = slurm_run
    submitted = SUBMITTED.findall(out)
    assert submitted, out[-3000:]
    expected = {r: n for r, n in cluster_jobs(repo).items() if r not in local_rules(repo)}
    assert sum(expected.values()) >= 20, expected
    # Each job's Slurm log lives under .snakemake/slurm_logs/rule_<rule>/...: the rule of each Slurm job id.
    by_rule: dict[str, int] = {}
    for _, slurm_id, log in submitted:
        rule = Path(log).relative_to(repo / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        assert Path(log).name == f"{slurm_id}.log" and Path(log).is_file(), log
        by_rule[rule] = by_rule.get(rule, 0) + 1
    assert by_rule == expected
    # And Slurm itself knows every one of them as completed (MinJobAge keeps them listed for an hour).
    listed = run(["squeue", "-h", "-t", "all", "-o", "%i %T"], repo)
    states = dict(line.split() for line in listed.splitlines() if line.strip())
    assert {states.get(slurm_id) for _, slurm_id, _ in submitted} == {"COMPLETED"}, listed


def test_slurm_outputs_equal_the_local_run(slurm_run, snakemake_run):
    repo, _ = slurm_run
    built = result_files(repo)
    assert len(built) >= 50
    assert built == result_files(snakemake_run)
    differing = [p for p in built if digest(repo / p) != digest(snakemake_run / p)]
    assert differing == [], f"Slurm and local runs built different bytes for {differing}"
