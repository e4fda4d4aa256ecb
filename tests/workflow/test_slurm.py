"""The smoke preset on a real single-node Slurm cluster (tests/slurm_cluster.sh), through the project's profile
(workflow/profiles/slurm): its SLURM_TARGETS, which reach every rule that is not a localrule, each job of them runs
as a Slurm job, and the outputs are the bytes the local run built. Skipped, with the reason, where Slurm cannot be
brought up (not root, no apt)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tempered.preflight import parse_job_table
from tests.pipeline import SLURM_TARGETS, SMOKE, digest, result_files, run

pytestmark = pytest.mark.e2e

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)")


def planned_jobs(repo: Path, targets: list[str]) -> dict[str, int]:
    """Jobs of the smoke DAG that building `targets` (none: the whole DAG) takes, as '<rule>' -> count, from
    Snakemake's own dry run (without the Slurm profile, which changes how jobs run, not which)."""
    return parse_job_table(run(["snakemake", "-n", "--forceall", *targets, "--configfile", SMOKE], repo))


def local_rules(repo: Path) -> set[str]:
    rules, current = set(), None
    for path in sorted((repo / "workflow" / "rules").glob("*.smk")):
        for line in path.read_text().splitlines():
            if m := re.match(r"rule (\w+):", line):
                current = m[1]
            elif line.strip() == "localrule: True":
                rules.add(current)
    return rules | {"all"}


def cluster_jobs(repo: Path, targets: list[str]) -> dict[str, int]:
    return {r: n for r, n in planned_jobs(repo, targets).items() if r not in local_rules(repo)}


def test_the_slurm_targets_reach_every_cluster_rule(origin):
    """The Slurm build makes a part of the smoke DAG: that part must still run every rule a cluster runs."""
    whole, part = cluster_jobs(origin, []), cluster_jobs(origin, SLURM_TARGETS)
    assert len(whole) >= 10, whole
    assert set(part) == set(whole), f"no Slurm job of {sorted(set(whole) - set(part))}"
    assert sum(part.values()) < sum(whole.values())


def test_every_cluster_job_ran_as_a_slurm_job(slurm_run):
    repo, out = slurm_run
    submitted = SUBMITTED.findall(out)
    assert submitted, out[-3000:]
    expected = cluster_jobs(repo, SLURM_TARGETS)
    # Each job's Slurm log lives under .snakemake/slurm_logs/rule_<rule>/...: the rule of each Slurm job id.
    by_rule: dict[str, int] = {}
    for _, slurm_id, log in submitted:
        rule = Path(log).relative_to(repo / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        assert Path(log).name == f"{slurm_id}.log" and Path(log).is_file(), log
        by_rule[rule] = by_rule.get(rule, 0) + 1
    assert by_rule == expected
    # And Slurm itself knows every one of them as completed (MinJobAge keeps them listed for four hours).
    listed = run(["squeue", "-h", "-t", "all", "-o", "%i %T"], repo)
    states = dict(line.split() for line in listed.splitlines() if line.strip())
    assert {states.get(slurm_id) for _, slurm_id, _ in submitted} == {"COMPLETED"}, listed


def test_slurm_outputs_equal_the_local_run(slurm_run, snakemake_run):
    repo, _ = slurm_run
    built = result_files(repo)
    assert set(SLURM_TARGETS) <= set(built)
    assert set(built) <= set(result_files(snakemake_run)), "the Slurm build made files the local build did not"
    differing = [p for p in built if digest(repo / p) != digest(snakemake_run / p)]
    assert differing == [], f"Slurm and local runs built different bytes for {differing}"
