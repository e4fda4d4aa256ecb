"""Cost records (Snakemake's benchmark of every job), the per-rule cost table, and the estimate `make reproduce`
prints before it starts (tempered.preflight)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tempered import paths
from tempered.artifacts import ArtifactError
from tempered.config import load_config
from tempered.costs import per_rule, read_records, write_cost_report
from tempered.dvc_export import snakemake_jobs
from tempered.preflight import (
    CPU_CNN_SAMPLES_PER_S,
    cnn_sample_epochs,
    estimate,
    forward_macs,
    parse_job_table,
    planned_jobs,
    summary,
    trained_models,
)
from tempered.reporting.durations import ESTIMATED, duration

REPO = Path(__file__).resolve().parents[2]
SMOKE = "workflow/presets/smoke.yaml"

TINY_SNAKEFILE = """
rule all:
    input: expand("out/{name}.txt", name=["a", "b"]), "out/c.txt"

rule slow:
    output: "out/{name}.txt"
    wildcard_constraints: name="a|b"
    benchmark: "bench/slow/{name}.tsv"
    shell: "sleep 0.4; echo {wildcards.name} > {output}"

rule quick:
    output: "out/c.txt"
    benchmark: "bench/quick.tsv"
    shell: "echo c > {output}"
"""


def snakemake(workdir: Path, *args: str) -> str:
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--cores", "1", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A three-job workflow run by Snakemake itself: its records are real benchmark files."""
    workdir = tmp_path_factory.mktemp("tiny")
    (workdir / "Snakefile").write_text(TINY_SNAKEFILE)
    snakemake(workdir)
    return workdir


def test_records_are_read_from_snakemakes_own_benchmark_files(tiny_run):
    records = read_records(tiny_run / "bench")
    assert sorted(records["job"]) == ["a", "b", "quick"]
    slow = records[records["rule"] == "slow"]
    assert (slow["wall_s"] >= 0.4).all()  # each job slept 0.4 s
    assert (records["wall_s"] < 30).all()


def test_the_table_sums_each_rules_jobs(tiny_run):
    records = read_records(tiny_run / "bench")
    table = per_rule(records).set_index("rule")
    assert table.loc["slow", "jobs"] == 2 and table.loc["quick", "jobs"] == 1
    slow = records[records["rule"] == "slow"]["wall_s"]
    assert table.loc["slow", "wall_total_s"] == pytest.approx(slow.sum())
    assert table.loc["slow", "wall_max_s"] == pytest.approx(slow.max())
    assert list(per_rule(records)["rule"]) == ["slow", "quick"]  # costliest first


def test_the_report_is_written_for_one_label_only(tiny_run, tmp_path):
    root = tmp_path / "records"
    (root / "quick").mkdir(parents=True)
    (root / "smoke").symlink_to(tiny_run / "bench", target_is_directory=True)
    markdown = write_cost_report(root, "smoke", tmp_path / "out")
    text = markdown.read_text()
    assert "| slow | 2 |" in text and "| **all** | 3 |" in text
    assert (tmp_path / "out" / "smoke.png").stat().st_size > 0
    with pytest.raises(ArtifactError, match="no cost records for the 'default' run"):
        write_cost_report(root, "default", tmp_path / "out")


def test_a_file_that_is_not_a_record_is_named(tmp_path):
    (tmp_path / "train_model").mkdir()
    (tmp_path / "train_model" / "cnn.tsv").write_text("wall\n3\n")
    with pytest.raises(ArtifactError, match=r"cnn\.tsv: not a Snakemake benchmark record"):
        read_records(tmp_path)


def test_the_dry_run_job_table_is_parsed(tiny_run):
    text = snakemake(tiny_run, "-n", "--forceall", "--quiet", "rules")
    assert parse_job_table(text) == {"slow": 2, "quick": 1}
    assert parse_job_table("Nothing to be done (all requested files are present and up to date).") == {}


def test_every_job_of_the_pipeline_records_its_cost_under_its_preset():
    text = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--forceall", "--configfile",
                           SMOKE], cwd=REPO, capture_output=True, text=True, timeout=300).stdout
    jobs = [line for line in text.splitlines() if re.match(r"^(local)?rule \w+:$", line)]
    records = re.findall(r"^    benchmark: (\S+)$", text, flags=re.M)
    assert len(records) == len(jobs) - 1  # every job but `all`
    assert len(set(records)) == len(records)
    assert all(r.startswith(f"{paths.COST_RECORDS}/smoke/") for r in records)


def test_a_larger_cnn_counts_as_many_papernot_passes_as_its_multiply_accumulates():
    """MACs by hand: Papernot CNN 26*26*32*9 + 24*24*32*32*9 + 10*10*64*32*9 + 8*8*64*64*9 + 1024*200 + 200*200
    + 200*10; Song et al.'s CNN at width 1: 28*28*16*9 + 28*28*16*16*9 + 14*14*16*16*9 + 14*14*32*16*9
    + 14*14*32*32*9 + 7*7*32*32*9 + 1568*200 + 200*10."""
    papernot = (26 * 26 * 32 * 9 + 24 * 24 * 32 * 32 * 9 + 10 * 10 * 64 * 32 * 9 + 8 * 8 * 64 * 64 * 9
                + 1024 * 200 + 200 * 200 + 200 * 10)
    song = (28 * 28 * 16 * 9 + 28 * 28 * 16 * 16 * 9 + 14 * 14 * 16 * 16 * 9 + 14 * 14 * 32 * 16 * 9
            + 14 * 14 * 32 * 32 * 9 + 7 * 7 * 32 * 32 * 9 + 1568 * 200 + 200 * 10)
    assert forward_macs("papernot_cnn") == papernot
    assert forward_macs("song_cnn", (("width", 1),)) == song
    config = load_config(["config.yaml"])
    size = config["membership"]["train_sizes"][0]
    settings = config["models"]["song_fmnist_pgd"]
    factor = forward_macs("song_cnn", tuple(sorted(settings["architecture_args"].items()))) / papernot
    assert factor > 100  # width 16: ~140 Papernot CNNs
    expected = settings["epochs"] * size * (1 + settings["pgd_training"]["steps"]) * factor
    assert cnn_sample_epochs(config, f"mi{size}_song_fmnist_pgd") == pytest.approx(expected)


def test_planned_jobs_of_a_fresh_tree_are_the_whole_dag():
    presets = [SMOKE]
    expected = Counter(job.rule for job in snakemake_jobs(presets, REPO))
    assert planned_jobs(presets, REPO) == dict(expected)


def test_cnn_work_counts_epochs_samples_and_pgd_steps():
    config = load_config(["config.yaml"])
    cnn = config["models"]["cnn"]
    assert cnn_sample_epochs(config, "cnn") == cnn["epochs"] * (60_000 - config["split"]["validation_size"])
    assert cnn_sample_epochs(config, "fc100_100_10") == 0  # an MLP is not counted at the CNN's rate
    size = config["membership"]["train_sizes"][0]
    pgd = config["models"]["cnn_pgd"]
    epochs = config["membership"]["epochs"] or pgd["epochs"]
    expected = epochs * size * (1 + pgd["pgd_training"]["steps"])
    assert cnn_sample_epochs(config, f"mi{size}_cnn_pgd") == expected
    # The DAG trains the membership copy of cnn_pgd though models.cnn_pgd is disabled: the bound counts it.
    assert not config["models"]["cnn_pgd"].get("enabled", True) and "cnn_pgd" in config["membership"]["models"]
    assert f"mi{size}_cnn_pgd" in trained_models(config) and "cnn_pgd" not in trained_models(config)
    # A twin's weights are a copy (rule reuse_training): not a training to count.
    assert "cnn" in trained_models(config) and "teacher_T1" not in trained_models(config)


def test_an_estimate_from_full_records_is_their_sum_and_otherwise_a_bound():
    config = load_config(["config.yaml", SMOKE])
    jobs = {"train_model": 4, "attack_model": 2}
    full = estimate(jobs, {"train_model": 10.0, "attack_model": 30.0}, config)
    assert full.seconds == pytest.approx(100.0) and not full.lower_bound
    partial = estimate(jobs, {"attack_model": 30.0}, config)
    assert partial.lower_bound and partial.seconds > 60.0  # the recorded attacks plus the training bound
    none = estimate(jobs, {}, config)
    assert none.lower_bound and none.seconds == pytest.approx(partial.seconds - 60.0)
    assert f"{CPU_CNN_SAMPLES_PER_S:,.0f} samples/s" in none.how


def test_the_paper_scale_summary_names_the_presets_that_run_less():
    config = load_config(["config.yaml"])
    text = summary(["config.yaml"], {"train_model": 300, "attack_model": 100},
                   estimate({"train_model": 300}, {}, config), on_gpu=False)
    assert "400 jobs to run" in text and "at least" in text
    assert "PRESET=quick" in text and "PRESET=smoke" in text
    quick = summary(["config.yaml", "workflow/presets/quick.yaml"], {"train_model": 3},
                    estimate({"train_model": 3}, {}, config), on_gpu=True)
    assert "PRESET=" not in quick and "CUDA device is present" in quick
    assert "nothing to run" in summary(["config.yaml"], {}, estimate({}, {}, config), on_gpu=False)


def test_durations_read_as_the_cost_table_and_the_estimate_wrote_them():
    """One formatter, two ladders: the strings costs._duration and preflight._hours gave before they merged."""
    seconds = (42.25, 119.96, 120, 3599, 3600, 7199, 7200, 9000, 172799, 172800, 1e6)
    assert [duration(s) for s in seconds] == ["42.2 s", "120.0 s", "2.0 min", "60.0 min", "60.0 min", "120.0 min",
                                              "2.00 h", "2.50 h", "48.00 h", "48.00 h", "277.78 h"]
    assert [duration(s, ESTIMATED) for s in seconds] == ["42 s", "120 s", "2 min", "60 min", "1.0 h", "2.0 h",
                                                         "2.0 h", "2.5 h", "48.0 h", "2.0 days", "11.6 days"]
