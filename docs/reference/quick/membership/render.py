"""How findings.md here was made from a run of the membership stage alone (`snakemake
results/tables/membership.csv --configfile workflow/presets/quick.yaml`): the report's membership findings and the
membership claims' verdicts, each computed by the pipeline's own functions (tempered.stages.report) from the run
tree's metrics and config, with this checkout's workflow/claims.yaml (its measured causes), written unedited.

    cd docs/reference/quick/membership && PYTHONPATH=../../../../src python render.py <run tree> > findings.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from tempered import paths
from tempered.config import REPO_ROOT, load_config
from tempered.stages.report.claims import evaluate_all, load_claims
from tempered.stages.report.reproduction import claims_table, verdict_counts
from tempered.stages.report.steps import membership_findings

root = Path(sys.argv[1])
config = load_config([root / "config.yaml", root / "workflow/presets/quick.yaml"])
claims = [c for c in load_claims(REPO_ROOT / paths.CLAIMS) if c.get("source") == "MEMBERSHIP_SUMMARY"]
outcomes = evaluate_all(claims, config, root, judge=config["report"]["judge_claims"])
counts = ", ".join(f"{verdict} {n}" for verdict, n in verdict_counts(outcomes).items() if n)
print("# Membership inference at the quick preset: findings and verdicts\n")
print(membership_findings(config, root) + "\n")
print(f"## The membership claims ({len(outcomes)}: {counts})\n")
print(claims_table(outcomes))
