"""The reproduction report built by the DAG on the smoke preset: every claim has an outcome and none a verdict
(smoke's numbers mean nothing, and the report says so first), every figure it shows exists, no generated text
points outside the repository, and two builds from the same results differ only in the timestamp line. The
verdict rules themselves are tested on synthetic metrics (tests/unit/stages/report/test_claims.py)."""

from __future__ import annotations

import json
import re
import sys

import pandas as pd
import pytest

from tempered import paths
from tempered.stages.report.claims import NOT_COMPARABLE, NOT_JUDGED, NOT_RUN, VERDICTS, load_claims
from tempered.stages.report.reproduction import NOT_JUDGED_NOTICE, SECTIONS, TIMESTAMP_PREFIX
from tests.pipeline import SMOKE, run
from tests.unit.test_repository_stands_alone import upward_paths_outside

pytestmark = pytest.mark.e2e


def test_report_has_a_verdict_for_every_claim(snakemake_run):
    claims = load_claims(snakemake_run / paths.CLAIMS)
    table = pd.read_csv(snakemake_run / paths.CLAIMS_TABLE)
    assert list(table["id"]) == [c["id"] for c in claims]
    assert set(table["verdict"]) <= set(VERDICTS)
    # A claim published on a dataset this pipeline never measures (CIFAR) has no value of ours to show.
    measured = table[~table["verdict"].isin([NOT_RUN, NOT_COMPARABLE]) | table["reason"].str.contains(
        "measured here", na=False)]
    # A value claim has our value; an ordering claim has our series over the temperature grid instead.
    assert len(measured) > 10 and (measured["ours"].notna() | measured["series"].notna()).all()
    counts = json.loads((snakemake_run / paths.REPORT_METRICS).read_text())["verdicts"]
    assert sum(counts.values()) == len(claims)
    # Smoke judges nothing (report.judge_claims false): a measured claim is 'not judged', never a rule's verdict.
    assert set(table["verdict"]) <= {NOT_JUDGED, NOT_RUN, NOT_COMPARABLE}
    assert counts["not_judged"] > 10 and counts["reproduced"] == counts["not_reproduced"] == 0


def test_the_smoke_report_says_first_that_its_numbers_mean_nothing(snakemake_run):
    lines = (snakemake_run / paths.REPORT_MARKDOWN).read_text().splitlines()
    assert lines[0].startswith("# ") and lines[2] == NOT_JUDGED_NOTICE
    headline = next(line for line in lines if line.endswith("claims)."))
    assert "reproduced" not in headline and "not judged" in headline


def test_no_generated_text_points_outside_the_repository(snakemake_run):
    results = snakemake_run / "results"
    for path in [results / "REPORT.md", *sorted((results / "tables").glob("*.md"))]:
        assert not upward_paths_outside(path, path.read_text(), snakemake_run), path


def test_report_sections_and_figures_exist(snakemake_run):
    text = (snakemake_run / paths.REPORT_MARKDOWN).read_text()
    for heading, _, _ in SECTIONS:
        assert f"## {heading}" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "figures/summary/temperature_across_pipeline.png" in links
    report_dir = (snakemake_run / paths.REPORT_MARKDOWN).parent
    assert len(links) > 5 and all((report_dir / link).is_file() for link in links), links
    assert "`workflow/presets/smoke.yaml`" in text and "## Deviations from the papers' protocols" in text
    assert "`models.cnn.epochs`: 2 (paper-faithful default 50)" in text


def test_two_builds_differ_only_in_the_timestamp_line(snakemake_run, tmp_path):
    outputs = [tmp_path / "build0", tmp_path / "build1"]
    for out in outputs:
        run([sys.executable, "-m", "tempered", "report", "--config", "config.yaml", "--config", SMOKE,
             "--markdown", str(out / "REPORT.md"), "--table", str(out / "claims.csv"),
             "--metrics", str(out / "report.json"), "--figure", str(out / "s.png")],
            snakemake_run)
    texts = [(out / "REPORT.md").read_text().splitlines() for out in outputs]
    stamp = [i for i, line in enumerate(texts[0]) if line.startswith(TIMESTAMP_PREFIX)]
    assert len(stamp) == 1
    differing = [i for i, (a, b) in enumerate(zip(*texts, strict=True)) if a != b]
    assert set(differing) <= set(stamp)
    for name in ("claims.csv", "report.json", "s.png", "s.pdf"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


def test_the_smoke_report_publishes_as_a_reference(snakemake_run, tmp_path):
    # `make reference`: the run's REPORT.md unedited and every figure it shows resolve inside the reference.
    from tempered.stages.report.publish import publish_reference

    out = tmp_path / "reference"
    publish_reference(snakemake_run / "results", out)
    text = (out / "REPORT.md").read_text()
    assert text == (snakemake_run / paths.REPORT_MARKDOWN).read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((out / link).is_file() for link in links)
    assert (out / "tables" / "claims.csv").is_file() and (out / "tables" / "report.json").is_file()
