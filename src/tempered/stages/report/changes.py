"""CHANGES.md of a published reference: what a new run changed against the reference it replaces, read from the
two runs' claims.csv (tables/claims.csv). Written by publish-reference, so that a reference's counts before and
after, its changed verdicts and its misses with their causes are the run's own numbers, never copied by hand."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from tempered.artifacts import ArtifactError
from tempered.reporting.tables import markdown_table
from tempered.stages.report.claims import NOT_REPRODUCED, VERDICTS

CHANGES = "CHANGES.md"
# The columns CHANGES.md reads; claims.csv holds more (tempered.stages.report.steps writes it).
_COLUMNS = ("id", "paper", "ours", "published", "verdict", "cause")
_ALL = "**all**"
CLAIMS = Path("tables/claims.csv")
# REPORT.md's run description (tempered.stages.report.steps): "- **report code version**: 0.1.0+gfd78b294ec96".
_REPORT_VERSION = re.compile(r"^- \*\*report code version\*\*: (\S+)$", re.MULTILINE)

Claims = list[dict[str, str]]


def read_claims(path: Path) -> Claims:
    """claims.csv's rows, checked for the columns CHANGES.md reads and for known verdicts."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ArtifactError(f"{path}: no column {', '.join(missing)} (has: {', '.join(reader.fieldnames or [])})")
        rows = list(reader)
    for line, row in enumerate(rows, 2):
        if row["verdict"] not in VERDICTS:
            raise ArtifactError(f"{path}, line {line}: verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}")
    return rows


def _number(text: str) -> str:
    """A claims.csv value at 4 significant digits ('' stays '—'): enough to tell a change, short enough to read."""
    if not text:
        return "—"
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def _cell(text: str) -> str:
    """Text inside a markdown table cell: a '|' would end the cell, a line break the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _counts(claims: Claims) -> dict[str, Counter[str]]:
    by_paper: dict[str, Counter[str]] = {}
    for row in claims:
        by_paper.setdefault(row["paper"], Counter())[row["verdict"]] += 1
    by_paper[_ALL] = Counter(row["verdict"] for row in claims)
    return by_paper


def counts_table(before: Claims | None, after: Claims) -> list[str]:
    """Verdict counts per paper (rows in the new run's order), 'before -> after' when there is a before."""
    new, old = _counts(after), _counts(before or [])
    papers = [*dict.fromkeys([*new, *old]).keys()]
    papers.remove(_ALL)
    verdicts = [v for v in VERDICTS if any(new[p][v] or old.get(p, Counter())[v] for p in [*papers, _ALL])]

    def cell(paper: str, verdict: str | None) -> str:
        def count(table: Mapping[str, Counter[str]]) -> int:
            counter = table.get(paper, Counter())
            return sum(counter.values()) if verdict is None else counter[verdict]
        return f"{count(old)} -> {count(new)}" if before is not None else str(count(new))

    rows = [[paper, *(cell(paper, v) for v in verdicts), cell(paper, None)] for paper in [*papers, _ALL]]
    return markdown_table(["paper", *verdicts, "claims"], rows, "l" + "r" * (len(verdicts) + 1))


def changed_verdicts(before: Claims, after: Claims) -> list[str]:
    """One line per claim whose verdict changed, was added or was dropped, with our value and the published."""
    old = {row["id"]: row for row in before}
    new = {row["id"]: row for row in after}
    lines = []
    for claim in [*new, *(c for c in old if c not in new)]:
        was, now = old.get(claim), new.get(claim)
        if was is not None and now is not None and was["verdict"] == now["verdict"]:
            continue
        shown = now or was
        values = f"(ours {_number(shown['ours'])}, published {_number(shown['published'])})"
        change = (f"{was['verdict'] if was else 'new claim'} -> {now['verdict'] if now else 'claim removed'}")
        lines.append(f"- {claim}: {change} {values}")
    return lines


def misses_table(after: Claims) -> list[str]:
    """Every claim not reproduced, with the cause it states (claims.csv's cause column, REPORT.md's)."""
    rows = [[row["id"], _number(row["ours"]), _number(row["published"]), _cell(row["cause"]) or "—"]
            for row in after if row["verdict"] == NOT_REPRODUCED]
    return markdown_table(["claim", "ours", "published", "cause"], rows, "lrrl")


def render_changes(before: Claims | None, after: Claims, before_name: str, after_name: str) -> str:
    """CHANGES.md's text. before: the replaced reference's claims (None: there was none)."""
    lines = ["# What this run changed", "",
             "Written by `python -m tempered publish-reference` from the claims.csv of this run "
             f"({after_name}) and of the reference it replaced ({before_name if before is not None else 'none'}).",
             "", "## Verdicts per paper" + (" (before -> after)" if before is not None else ""), "",
             *counts_table(before, after), ""]
    if before is not None:
        changed = changed_verdicts(before, after)
        lines += ["## Claims whose verdict changed", "", *(changed or ["None."]), ""]
    misses = sum(row["verdict"] == NOT_REPRODUCED for row in after)
    lines += [f"## The {misses} not reproduced, with the cause each states", "",
              *(misses_table(after) if misses else ["None."]), ""]
    return "\n".join(lines)


def code_version(report: Path) -> str:
    """The code version REPORT.md names for its run ('unknown' where it names none, or there is no REPORT.md)."""
    found = _REPORT_VERSION.search(report.read_text()) if report.is_file() else None
    return found.group(1) if found else "unknown"


def write_changes(before: Path, after: Path, out: Path) -> None:
    """CHANGES.md at out, from two runs' directories as a reference holds them (REPORT.md, tables/claims.csv);
    `before` may hold none: a first reference."""
    before_claims = before / CLAIMS
    old = read_claims(before_claims) if before_claims.is_file() else None
    text = render_changes(old, read_claims(after / CLAIMS), f"code {code_version(before / 'REPORT.md')}",
                          f"code {code_version(after / 'REPORT.md')}")
    out.write_text(text)
