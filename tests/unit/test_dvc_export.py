"""dvc.yaml is generated from the Snakemake DAG: the committed file is current and mirrors every job."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tempered.code_deps import step_files
from tempered.config import REPO_ROOT, ConfigError
from tempered.dvc_export import (
    JOBS_FILE,
    PARAMS_FILE,
    REQUIRE_PACKAGE,
    RESOLVE_STAGE,
    committed_stages,
    fix_command,
    render_dvc_files,
    render_dvc_yaml,
    render_params_file,
    resolved_stages,
    snakemake_jobs,
    stale_summary,
)
from tempered.step_params import has_key

SMOKE = "workflow/presets/smoke.yaml"


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    """The exporter works on the workflow in the current directory, as the CLI does."""
    monkeypatch.chdir(REPO_ROOT)


@pytest.fixture(scope="module")
def smoke_stages():
    # A module-scoped fixture runs before the autouse chdir: give it the repository explicitly.
    import os

    os.chdir(REPO_ROOT)
    return resolved_stages(["config.yaml", SMOKE])


def test_committed_dvc_yaml_is_not_stale():
    # Not `assert a == b`: pytest would print the difference of two long files.
    dvc_yaml, jobs = render_dvc_files(["config.yaml"])
    for name, text in (("dvc.yaml", dvc_yaml), (JOBS_FILE, jobs), (PARAMS_FILE, render_params_file(["config.yaml"]))):
        current = (REPO_ROOT / name).read_text()
        if current != text:
            pytest.fail(f"{stale_summary(Path(name), current, text)}\nregenerate: make dvc.yaml", pytrace=False)


def _tracked(stage):
    return sorted(stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []))


def test_one_stage_per_snakemake_job_with_the_same_command_and_files(smoke_stages):
    jobs = snakemake_jobs([SMOKE])
    # Plus resolve_config, DVC's own stage that rewrites the merged params file (no Snakemake job).
    assert len(smoke_stages) == len(jobs) + 1
    by_outputs = {tuple(_tracked(stage)): (name, stage) for name, stage in smoke_stages.items()
                  if name != RESOLVE_STAGE}
    assert {j.rule for j in jobs} >= {"fetch_mnist", "fetch_fashion_mnist", "split", "train_model",
                                      "evaluate_model", "summarize_seeds", "plot_training_curve"}
    for job in jobs:
        name, stage = by_outputs[tuple(sorted(job.outputs))]
        assert name.partition("@")[0].startswith(job.rule)
        assert stage["cmd"] == job.cmd
        assert sorted(stage["deps"]) == sorted(set(job.inputs))  # a file the job names twice is one dep


def test_each_stage_depends_on_the_code_its_step_runs_not_on_the_whole_package(smoke_stages):
    train, report = smoke_stages["train_model@cnn-seed0"], smoke_stages["ood_report"]
    assert set(step_files("train")) <= set(train["deps"]) and "src/tempered" not in train["deps"]
    convex, ood_figures = "src/tempered/training/convex.py", "src/tempered/stages/ood/figures.py"
    assert convex in train["deps"] and ood_figures not in train["deps"]
    assert ood_figures in report["deps"] and convex not in report["deps"]


def test_dvc_yaml_has_one_foreach_stage_per_rule_and_kind_of_model():
    dvc_yaml = yaml.safe_load(render_dvc_yaml(["config.yaml", SMOKE]))
    train = dvc_yaml["stages"]["train_model"]
    assert train["foreach"] == "${jobs.train_model}" and "${item.model}" in train["do"]["cmd"]
    assert train["do"]["params"] == [{PARAMS_FILE: ["models.${item.family}", "evaluation.limit_eval"]}]
    # Membership models also read membership.epochs: the same rule, a second definition.
    assert "membership.epochs" in dvc_yaml["stages"]["train_model_membership"]["do"]["params"][0][PARAMS_FILE]


def test_metrics_and_figures_are_declared_as_such(smoke_stages):
    assert smoke_stages["evaluate_model@cnn-seed0"]["metrics"] == ["results/metrics/eval/cnn/seed0.json"]
    assert smoke_stages["plot_training_curve@cnn"]["plots"] == ["results/figures/training_curve/cnn.png"]


def test_params_name_keys_present_in_their_files(smoke_stages):
    merged = yaml.safe_load(render_params_file(["config.yaml", SMOKE]))
    for name, stage in smoke_stages.items():
        for entry in stage.get("params", []):
            for path, keys in entry.items():
                assert path == PARAMS_FILE and all(has_key(merged, k) for k in keys), (name, path, keys)
    train = smoke_stages["train_model@cnn-seed0"]["params"]
    assert train == [{PARAMS_FILE: ["models.cnn", "evaluation.limit_eval"]}]


def test_seed_and_temperature_wildcards_follow_config():
    paper = committed_stages(REPO_ROOT)
    assert {s for s in paper if s.startswith("train_model@cnn-")} == {f"train_model@cnn-seed{s}" for s in (0, 1, 2)}
    grid = (1, 2, 5, 10, 20, 30, 40, 50, 100)
    assert {s for s in paper if s.startswith("train_student@student")} == {
        f"train_student@student_T{t}-seed{s}" for t in grid for s in (0, 1, 2)}
    # The membership recipes distil too, one student per size, T and model seed (0..n_shadows: targets and
    # shadows alike), each on its seed's half of the pool.
    mi1000 = "train_student_membership_mnist@mi1000_"
    assert {s for s in paper if s.startswith(mi1000)} == {
        f"{mi1000}student_T{t}-seed{k}" for t in grid for k in range(17)}
    student = paper[f"{mi1000}student_T20-seed3"]
    assert "results/membership/roles/size1000/seed3.npz" in student["deps"]
    assert "results/distillation/mi1000_teacher_T20/seed3/soft_labels.npz" in student["deps"]


def test_an_attack_reads_its_recipes_outputs_at_every_model_seed():
    paper = committed_stages(REPO_ROOT)
    # One definition for every target seed: the list of the recipe's outputs keeps its seeds as written.
    assert {f"membership_attack_mnist@mi1000_cnn_pgd-seed{s}" for s in (0, 1, 2)} <= set(paper)
    attack = paper["membership_attack_mnist@mi1000_cnn_pgd-seed1"]
    assert "--target results/membership/outputs/mi1000_cnn_pgd/seed1.npz" in attack["cmd"]
    outputs = [d for d in attack["deps"] if d.startswith("results/membership/outputs/")]
    assert sorted(outputs) == sorted(f"results/membership/outputs/mi1000_cnn_pgd/seed{k}.npz" for k in range(17))
    student = paper["train_student@student_T20-seed1"]
    assert "results/distillation/teacher_T20/seed1/soft_labels.npz" in student["deps"]


def test_membership_definitions_are_named_for_the_dataset_whose_settings_they_read():
    """The attacks on MNIST and Fashion-MNIST targets differ in one params key (their adversarial inputs): two
    definitions, each named for its dataset, not numbered."""
    paper = committed_stages(REPO_ROOT)
    for dataset, model in (("mnist", "mi1000_cnn"), ("fashion_mnist", "mi1000_song_fmnist")):
        for rule in ("membership_attack", "membership_outputs"):
            stage = paper[f"{rule}_{dataset}@{model}-seed0"]
            keys = stage["params"][0][PARAMS_FILE]
            adversarial = [k for k in keys if k.startswith("membership.adversarial_input.")]
            assert adversarial == [f"membership.adversarial_input.{dataset}"], (rule, dataset, keys)


def test_presets_must_follow_config_yaml():
    with pytest.raises(ConfigError, match="needs config.yaml first"):
        render_dvc_yaml([SMOKE])


# --- issue 18 item 3: a stale file is named in a few lines, with the command that regenerates it -------------------


def test_a_check_against_another_config_names_the_stale_files_and_the_fix_in_a_few_lines(tmp_path):
    """The issue's case the other way round (cheaper to render): the paper-scale dvc.yaml checked for smoke."""
    for name in ("Snakefile", "config.yaml", "dvc.yaml", JOBS_FILE, PARAMS_FILE):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    for folder in ("workflow", "src"):  # the rules' inputs include the source their steps run
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    proc = subprocess.run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config",
                           SMOKE, "--check"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    ours = [line for line in proc.stderr.splitlines() if "snakemake.logging" not in line]
    assert len(ours) <= 8, "\n".join(ours[:40])
    message = "\n".join(ours)
    assert f"dvc.yaml is stale: it was exported for `--config config.yaml`, not `--config config.yaml --config " \
           f"{SMOKE}`" in message
    assert f"{PARAMS_FILE} is stale" in message and "regenerating adds" in message
    assert ours[-1] == "regenerate: make dvc.yaml PRESET=smoke"


def test_a_stale_summary_counts_and_names_what_regenerating_changes():
    stages = {f"s{i}": {"cmd": f"c{i}"} for i in range(10)}
    current = yaml.safe_dump({"stages": {**stages, "gone": {"cmd": "x"}}})
    expected = yaml.safe_dump({"stages": {**stages, "s1": {"cmd": "new"}, "n1": {}, "n2": {}, "n3": {}, "n4": {}}})
    summary = stale_summary(Path("dvc.yaml"), current, expected)
    assert summary == ("dvc.yaml is stale\n  11 stages in the file; regenerating adds 4 (n1, n2, n3, ...); "
                       "removes 1 (gone); changes 1 (s1)")


def test_a_stale_params_file_names_its_keys():
    summary = stale_summary(Path(PARAMS_FILE), "a: {b: 1, c: [1]}\nd: 0\n", "a: {b: 2, c: [1]}\ne: 0\n")
    assert summary.splitlines()[1] == "  3 keys in the file; regenerating adds 1 (e); removes 1 (d); changes 1 (a.b)"


def test_a_file_that_cannot_be_compared_by_stage_shows_at_most_20_diff_lines():
    current = "".join(f"line {i}: a: b\n" for i in range(500))  # not YAML
    summary = stale_summary(Path("dvc.yaml"), current, "stages: {}\n").splitlines()
    assert len(summary) == 22 and summary[-1] == "  ... (484 more diff lines)"
    assert stale_summary(Path("dvc.yaml"), None, "stages: {}\n") == "dvc.yaml is missing"


def test_the_fix_command_is_make_where_make_would_do_it(tmp_path):
    assert fix_command(["config.yaml"], Path("dvc.yaml")) == "make dvc.yaml"
    assert fix_command(["config.yaml", SMOKE], Path("dvc-params.json")) == "make dvc.yaml PRESET=smoke"
    own = str(tmp_path / "mine.yaml")
    assert fix_command(["config.yaml", own], Path("dvc.yaml")) == (
        f"python -m tempered export-dvc --config config.yaml --config {own} --out dvc.yaml")
    assert fix_command(["config.yaml"], tmp_path / "dvc.yaml").endswith(f"--out {tmp_path / 'dvc.yaml'}")


def test_dvcs_first_stage_says_how_to_get_a_python_with_the_package(tmp_path):
    """`.venv/bin/dvc repro` without the venv on PATH: DVC runs the `python` first on PATH."""
    stages = committed_stages(REPO_ROOT)
    assert stages[RESOLVE_STAGE]["cmd"][0] == REQUIRE_PACKAGE
    assert next(iter(stages)) == RESOLVE_STAGE  # DVC evaluates the stages that need no other in file order
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "python").write_text("#!/bin/sh\necho 'No module named tempered' >&2\nexit 1\n")
    (stub / "python").chmod(0o755)
    script = str(REPO_ROOT / REQUIRE_PACKAGE)
    proc = subprocess.run([script], env={**os.environ, "PATH": f"{stub}:/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == (f"the tempered package is not importable by the `python` on PATH ({stub}/python): run "
                           "`source .venv/bin/activate` first (`make reproduce` puts the venv on PATH itself)\n")
    venv = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    assert subprocess.run([script], env=venv, timeout=60).returncode == 0
