"""Stage: the reproduction report. Reads every claim's metrics, computes verdicts, writes results/REPORT.md, the
claims table (CSV), a DVC metrics file of the verdicts and the summary figure."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tempered import paths
from tempered.artifacts import read_json, sha256_file, write_bytes, write_metrics, write_table
from tempered.config import SCHEMA_PATH, config_hash, load_config, read_yaml
from tempered.provenance import code_version
from tempered.stages.report.claims import evaluate_all, load_claims
from tempered.stages.report.inputs import DATA_MANIFESTS, report_figures, report_inputs
from tempered.stages.report.reproduction import FIXED_DEVIATIONS, preset_deviations, render, verdict_counts
from tempered.step_params import STEP_CONFIG_KEYS, step_config

log = logging.getLogger(__name__)

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "seaborn", "matplotlib", "snakemake", "dvc")


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return f"Python {platform.python_version()}; " + ", ".join(found)


def run_description(config_files: Sequence[str], config: Mapping[str, Any], root: Path,
                    read_files: Sequence[str]) -> dict[str, str]:
    """Which preset and seeds made the results, the code and data they came from, and the devices they ran on
    (as the artifacts themselves record it, not as this machine is)."""
    digests = [f"{name} {read_json(root / manifest)['arrays_sha256'][:16]}"
               for name, manifest in DATA_MANIFESTS.items()]
    digests.append(f"split {sha256_file(root / paths.SPLIT_INDEXES)[:16]}")
    devices, versions = set(), set()
    for file in read_files:
        prov = read_json(root / file).get("provenance", {}) if file.endswith(".json") else {}
        if prov:
            devices.add(str(prov.get("device")))
            versions.add(str(prov.get("code_version")))
    return {
        "config files": " + ".join(f"`{f}`" for f in config_files),
        "seeds": ", ".join(str(s) for s in config["seeds"]),
        "config hash": config_hash(config.declared()),  # the result-affecting settings the report reads
        "report code version": code_version(),
        "code versions of the artifacts": ", ".join(sorted(versions)) or "—",
        "devices of the artifacts": ", ".join(sorted(devices)) or "—",
        "data digests (sha256, 16 hex)": "; ".join(digests),
        "packages (report)": _versions(),
    }


def schema_description(schema: Mapping[str, Any], dotted: str) -> str:
    """The description workflow/schemas/config.schema.yaml gives a dotted config key ('' when it gives none),
    following $ref and the schema of a mapping's free keys (models.<name>)."""
    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = node.get("$ref", "")
        return schema["$defs"][ref.rsplit("/", 1)[1]] if ref.startswith("#/$defs/") else node

    node: Mapping[str, Any] = schema
    for part in dotted.split("."):
        node = resolve(node)
        if part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        else:
            return ""
    return str(node.get("description") or resolve(node).get("description") or "")


def _claims_frame(outcomes) -> pd.DataFrame:
    rows = []
    for o in outcomes:
        m = o.ours
        rows.append({"id": o.claim["id"], "paper": o.claim["paper"], "where": o.claim["where"],
                     "quantity": o.claim["quantity"], "published": o.claim["published"],
                     "ours": None if m is None else m.value, "low": None if m is None else m.low,
                     "high": None if m is None else m.high, "n_seeds": None if m is None else m.n_seeds,
                     "series": "; ".join(f"{k}={v:.6g}" for k, v in o.series),
                     "verdict": o.verdict, "reason": o.reason, "cause": o.cause})
    return pd.DataFrame(rows)


def membership_findings(config: Mapping[str, Any], root: Path) -> str:
    from tempered.model_grid import distilled_names, robust_membership_model
    from tempered.stages.membership.report import findings

    cfg = config["membership"]
    students = list(zip(config["distillation"]["temperatures"], distilled_names(config, "student"), strict=True))
    robust = robust_membership_model(config)
    return findings(read_json(root / paths.MEMBERSHIP_SUMMARY), config["distillation"]["base_model"],
                    students if cfg["distilled"] else [], robust)


def report_step(config_files: Sequence[str], claims_path: Path, root: Path, markdown_path: Path,
                table_path: Path, metrics_path: Path, figure_path: Path) -> None:
    from tempered.reporting.figures import save_figure
    from tempered.stages.report.figures import temperature_summary, temperature_table

    config = step_config(config_files, "report")
    claims = load_claims(claims_path)
    sources = read_yaml(claims_path)
    papers = {**sources.get("papers", {}), **sources.get("questions", {})}
    judged = config["report"]["judge_claims"]
    outcomes = evaluate_all(claims, config, root, judge=judged)
    table = _claims_frame(outcomes)
    write_table(table_path, table)
    counts = verdict_counts(outcomes)
    write_metrics(metrics_path, {"verdicts": {k.replace(" ", "_"): v for k, v in counts.items()},
                                 "claims": {o.claim["id"]: {"ours": None if o.ours is None else o.ours.value,
                                                            "verdict": o.verdict} for o in outcomes}})

    save_figure(temperature_summary(temperature_table(config, root, claims_path)), figure_path)  # PNG and PDF

    report_dir = markdown_path.resolve().parent

    def rel(path: Path | str) -> str:
        """Figure links relative to the report, so the results folder can move as a whole."""
        return Path(os.path.relpath(Path(path).resolve(), report_dir)).as_posix()

    figures = {group: [rel(f) for f in files] for group, files in report_figures(config).items()}
    defaults = load_config(config_files[:1])  # config.yaml, whose defaults follow the papers
    # The papers' protocol lives in these sections; report.* is how this report is written, not a departure.
    sections = [k for k in STEP_CONFIG_KEYS["report"] if k.split(".")[0] != "report"]
    schema = read_yaml(SCHEMA_PATH)
    deviations = preset_deviations({k: defaults[k] for k in sections}, {k: config[k] for k in sections},
                                   describe=lambda key: schema_description(schema, key))
    deviations += list(FIXED_DEVIATIONS)
    run = run_description(config_files, config, root, report_inputs(config, claims))
    timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = render(outcomes, papers, run, deviations, figures, rel(figure_path), timestamp,
                  {"membership": membership_findings(config, root)}, judged=judged)
    write_bytes(markdown_path, text.encode())
    log.info("report: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))


def register(add_step) -> None:
    """This stage's CLI step: report (every claim, its verdict, the summary figure)."""
    p = add_step("report", lambda a: report_step(a.config, Path(a.claims), Path("."), Path(a.markdown),
                                                 Path(a.table), Path(a.metrics), Path(a.figure)),
                 "every published claim beside our measurement, with computed verdicts: REPORT.md")
    p.add_argument("--claims", default=paths.CLAIMS)
    p.add_argument("--markdown", required=True)
    p.add_argument("--table", required=True, help="CSV: one row per claim with our value and the verdict")
    p.add_argument("--metrics", required=True, help="JSON (DVC metrics): verdict counts and each claim's value")
    p.add_argument("--figure", required=True, help="PNG: temperature across the pipeline (the PDF goes beside it)")
