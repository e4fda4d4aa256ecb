"""A finished run's report as a committed reference (docs/reference/<preset>/): REPORT.md unedited, every figure it
shows, every stage table, the claim counts and the membership summary. The reference's README.md and experiments/
are written by people and stay; REPORT.md, figures/ and tables/ are replaced whole, so nothing of an older run
survives beside the new one. `make reference` runs it after `make reproduce`."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from tempered import paths
from tempered.artifacts import ArtifactError

# Markdown images: ![alt](path). REPORT.md links its figures relative to results/.
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
# What a reference holds beside its hand-written README.md and experiments/.
PUBLISHED = ("REPORT.md", "figures", "tables")


def _in_results(path: str) -> Path:
    """A path of tempered.paths, relative to the results directory (the run's may live elsewhere)."""
    return Path(path).relative_to(paths.RESULTS)


def linked_figures(report: str, source: Path) -> list[str]:
    """The figure paths REPORT.md shows, each checked to be a file inside the run's results directory."""
    paths = list(dict.fromkeys(_IMAGE.findall(report)))
    for path in paths:
        parts = PurePosixPath(path).parts
        if PurePosixPath(path).is_absolute() or ".." in parts or "://" in path:
            raise ArtifactError(f"{source}: figure link {path!r} is not a path inside the results directory")
        if not (source.parent / path).is_file():
            raise ArtifactError(f"{source}: links figure {path!r}, which {source.parent} does not hold")
    return paths


def _stage(results: Path, staging: Path) -> list[Path]:
    report = results / _in_results(paths.REPORT_MARKDOWN)
    if not report.is_file():
        raise ArtifactError(f"{report} does not exist: finish the run (make reproduce) before publishing it")
    copies = {Path("REPORT.md"): report}
    copies |= {Path(f): results / f for f in linked_figures(report.read_text(), report)}
    tables = sorted([*results.glob("tables/*.md"), *results.glob("tables/*.csv")])
    if not tables:
        raise ArtifactError(f"{results / 'tables'} holds no .md or .csv table")
    copies |= {Path("tables") / t.name: t for t in tables}
    counts = results / _in_results(paths.REPORT_METRICS)
    if not counts.is_file():
        raise ArtifactError(f"{counts} does not exist: the report step writes it beside REPORT.md")
    copies[Path("tables/report.json")] = counts
    membership = results / _in_results(paths.MEMBERSHIP_SUMMARY)
    if membership.is_file():  # a preset without the membership stage has none
        copies[Path("tables/membership_summary.json")] = membership
    for relative, source in copies.items():
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, staging / relative)
    return sorted(copies)


def publish_reference(results: Path, out: Path) -> list[Path]:
    """Copy the run under results into out; returns the copied paths, relative to out. Everything is copied into
    a staging directory beside out first, so a missing figure or table leaves out as it was."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".publish-", dir=out) as tmp:
        staging, retired = Path(tmp) / "new", Path(tmp) / "old"
        staging.mkdir()
        retired.mkdir()
        copied = _stage(results, staging)
        for name in PUBLISHED:
            if (out / name).exists():
                (out / name).rename(retired / name)
            if (staging / name).exists():
                (staging / name).rename(out / name)
    return copied
