"""What a run cost, rule by rule: Snakemake's benchmark record of every job (wall time, CPU time, peak resident
memory; workflow/rules/common.smk `cost_record`) summed per rule, as a table and a figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tempered.artifacts import ArtifactError, write_bytes, write_table
from tempered.reporting.durations import duration
from tempered.reporting.tables import markdown_table

# Snakemake's benchmark columns: s (wall seconds), cpu_time (user + system seconds), max_rss (MB; "-" when the
# job ended before the first sample).
_WALL, _CPU, _RSS = "s", "cpu_time", "max_rss"
TABLE_COLUMNS = ["rule", "jobs", "wall_total_s", "wall_max_s", "cpu_total_s", "peak_rss_mb"]


def read_records(root: Path) -> pd.DataFrame:
    """One row per job record under root (<rule>/<job>.tsv): rule, job, wall_s, cpu_s, rss_mb. A record with
    repeats (benchmark's repeat flag) counts its mean."""
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        record = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
        missing = {_WALL, _CPU, _RSS} - set(record.columns)
        if missing or record.empty:
            raise ArtifactError(f"{path}: not a Snakemake benchmark record (missing columns {sorted(missing)} "
                             f"or no rows)")
        relative = path.relative_to(root).with_suffix("")
        rows.append({"rule": relative.parts[0], "job": "/".join(relative.parts[1:]) or relative.parts[0],
                     "wall_s": float(record[_WALL].mean()), "cpu_s": float(record[_CPU].mean()),
                     "rss_mb": float(record[_RSS].max())})
    return pd.DataFrame(rows, columns=["rule", "job", "wall_s", "cpu_s", "rss_mb"])


def per_rule(records: pd.DataFrame) -> pd.DataFrame:
    """Jobs, total and longest wall time, total CPU time and peak memory of each rule, costliest first."""
    grouped = records.groupby("rule")
    table = pd.DataFrame({
        "jobs": grouped.size(),
        "wall_total_s": grouped["wall_s"].sum(),
        "wall_max_s": grouped["wall_s"].max(),
        "cpu_total_s": grouped["cpu_s"].sum(),
        "peak_rss_mb": grouped["rss_mb"].max(),
    }).reset_index()
    return table.sort_values(["wall_total_s", "rule"], ascending=[False, True], ignore_index=True)[TABLE_COLUMNS]


def render_markdown(table: pd.DataFrame, label: str, records_dir: Path) -> str:
    """The cost table of one run (a preset's records), with its total; wall times add up as if the jobs ran
    one after another (what `--cores` equal to compute.threads does)."""
    lines = [
        f"# Costs of the `{label}` run, rule by rule",
        "",
        f"Measured by Snakemake's `benchmark:` record of every job ({records_dir}/). Total wall time is the sum over",
        "jobs (one job at a time); runs with more cores or on a cluster overlap jobs and take less. Peak memory",
        "is the largest resident set of one job.",
        "",
    ]
    rows = [[row.rule, row.jobs, duration(row.wall_total_s), duration(row.wall_max_s), duration(row.cpu_total_s),
             _megabytes(row.peak_rss_mb)] for row in table.itertuples()]
    rows.append(["**all**", table["jobs"].sum(), duration(table["wall_total_s"].sum()),
                 duration(table["wall_max_s"].max()), duration(table["cpu_total_s"].sum()),
                 _megabytes(table["peak_rss_mb"].max())])
    lines += markdown_table(["rule", "jobs", "wall time, total", "longest job", "CPU time", "peak memory"], rows,
                            align="-rrrrr")
    return "\n".join(lines) + "\n"


def _megabytes(rss: float) -> str:
    return "-" if pd.isna(rss) else f"{rss:,.0f} MB"


def plot(table: pd.DataFrame, label: str, path: Path) -> None:
    """Total wall time per rule, costliest on top, each bar labelled with its jobs."""
    import matplotlib.pyplot as plt

    from tempered.reporting.figures import apply_style, save_figure

    apply_style()
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(table) + 1.2))
    ordered = table.iloc[::-1]
    minutes = ordered["wall_total_s"] / 60
    ax.barh(ordered["rule"], minutes, color="#4c72b0")
    for y, (value, jobs) in enumerate(zip(minutes, ordered["jobs"], strict=True)):
        ax.annotate(f"{jobs} job{'s' if jobs != 1 else ''}", (value, y), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_xlabel("wall time, all jobs of the rule (minutes)")
    ax.set_title(f"Where the {label} run's time went")
    ax.set_xlim(0, max(float(minutes.max()), 1e-9) * 1.25)
    save_figure(fig, path)


def write_cost_report(records_root: Path, label: str, out_dir: Path) -> Path:
    """Read the label's records, write <out_dir>/<label>.md, .csv and .png; return the markdown path."""
    records_dir = records_root / label
    if not records_dir.is_dir():
        raise ArtifactError(f"{records_dir}: no cost records for the {label!r} run (Snakemake writes one per job "
                            "it runs; a tree built by DVC or pulled from a remote has none)")
    table = per_rule(read_records(records_dir))
    markdown = out_dir / f"{label}.md"
    write_bytes(markdown, render_markdown(table, label, records_dir).encode())
    write_table(out_dir / f"{label}.csv", table.round(3))
    plot(table, label, out_dir / f"{label}.png")
    return markdown
