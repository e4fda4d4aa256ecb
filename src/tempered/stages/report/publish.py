"""A finished run's report as a committed reference (docs/reference/<preset>/): REPORT.md unedited, every figure it
shows, every stage table, the claim counts and the membership summary, and CHANGES.md (what the run changed against
the reference it replaces: tempered.stages.report.changes). The reference's README.md and experiments/ are written
by people and stay; REPORT.md, CHANGES.md, figures/ and tables/ are replaced whole, so nothing of an older run
survives beside the new one. `make reference` runs it after `make reproduce`."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from tempered import paths
from tempered.artifacts import ArtifactError
from tempered.stages.report.changes import CHANGES, write_changes

# Markdown images: ![alt](path) or ![alt](path "title"). REPORT.md links its figures relative to results/. Every
# "![" must parse as one: a link this pattern misses would leave its figure behind without a word.
_IMAGE = re.compile(r'!\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
_IMAGE_START = "!["
# What a reference holds beside its hand-written README.md and experiments/; figures only from `figures/`.
PUBLISHED = ("REPORT.md", CHANGES, "figures", "tables")
FIGURES = "figures"
# REPORT.md's run description names the config files the run read (tempered.stages.report.steps).
_CONFIG_FILES = re.compile(r"^- \*\*config files\*\*: (.*)$", re.MULTILINE)


def _in_results(path: str) -> Path:
    """A path of tempered.paths, relative to the results directory (the run's may live elsewhere)."""
    return Path(path).relative_to(paths.RESULTS)


def linked_figures(report: str, source: Path) -> list[str]:
    """The figure paths REPORT.md shows, each checked to be a file under the run's figures/ directory."""
    if report.count(_IMAGE_START) != len(_IMAGE.findall(report)):
        unparsed = [line for line in report.splitlines() if line.count(_IMAGE_START) != len(_IMAGE.findall(line))]
        raise ArtifactError(f"{source}: image link not of the form ![alt](path): {unparsed[0]!r}")
    figures = list(dict.fromkeys(_IMAGE.findall(report)))
    for figure in figures:
        parts = PurePosixPath(figure).parts
        if PurePosixPath(figure).is_absolute() or ".." in parts or "://" in figure:
            raise ArtifactError(f"{source}: figure link {figure!r} is not a path inside the results directory")
        if parts[0] != FIGURES:
            raise ArtifactError(f"{source}: figure link {figure!r} is not under {FIGURES}/, the only figures a "
                                "reference holds")
        if not (source.parent / figure).is_file():
            raise ArtifactError(f"{source}: links figure {figure!r}, which {source.parent} does not hold")
    return figures


def check_preset(report: str, source: Path, preset: str) -> None:
    """The run read config.yaml and workflow/presets/<preset>.yaml, nothing else: a reference named for a preset
    holds that preset's run (a smoke run published as docs/reference/quick would pass for it)."""
    found = _CONFIG_FILES.search(report)
    if found is None:
        raise ArtifactError(f"{source}: no '- **config files**:' line says which config files the run read")
    read = re.findall(r"`([^`]+)`", found.group(1))
    expected = ["config.yaml", f"workflow/presets/{preset}.yaml"]
    if read != expected:
        raise ArtifactError(f"{source}: the run read {' + '.join(read) or 'no config file'}; a reference of "
                            f"preset {preset!r} needs {' + '.join(expected)}")


def _stage(results: Path, out: Path, staging: Path, preset: str | None) -> list[Path]:
    report = results / _in_results(paths.REPORT_MARKDOWN)
    if not report.is_file():
        raise ArtifactError(f"{report} does not exist: finish the run (make reproduce) before publishing it")
    text = report.read_text()
    if preset is not None:
        check_preset(text, report, preset)
    copies = {Path("REPORT.md"): report}
    copies |= {Path(f): results / f for f in linked_figures(text, report)}
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
    write_changes(out, staging, staging / CHANGES)
    return sorted([*copies, Path(CHANGES)])


def _swap(out: Path, staging: Path, retired: Path) -> None:
    """Move out's published entries to retired and staging's into out; if a move fails, the retired entries go
    back, so out holds the old reference or the new one, never a mix (nor nothing)."""
    moved: list[str] = []
    try:
        for name in PUBLISHED:
            if (out / name).exists():
                (out / name).rename(retired / name)
            moved.append(name)
            if (staging / name).exists():
                (staging / name).rename(out / name)
    except OSError:
        for name in moved:
            if (out / name).exists() and not (staging / name).exists():
                (out / name).rename(staging / name)  # the new copy, out of the way (deleted with the staging)
            if (retired / name).exists():
                (retired / name).rename(out / name)
        raise


def publish_reference(results: Path, out: Path, preset: str | None = None) -> list[Path]:
    """Copy the run under results into out; returns the copied paths, relative to out. Everything is copied into
    a staging directory inside out first, so a missing figure or table leaves out as it was. With `preset`, the
    run must have read exactly config.yaml and that preset."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".publish-", dir=out) as tmp:
        staging, retired = Path(tmp) / "new", Path(tmp) / "old"
        staging.mkdir()
        retired.mkdir()
        copied = _stage(results, out, staging, preset)
        _swap(out, staging, retired)
    return copied
