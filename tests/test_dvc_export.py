"""dvc.yaml is generated from the Snakemake DAG: the committed file is current and mirrors every job."""

import pytest
import yaml

from tempered.config import REPO_ROOT, ConfigError
from tempered.dvc_export import (
    PARAMS_FILE,
    RESOLVE_STAGE,
    render_dvc_yaml,
    render_params_file,
    snakemake_jobs,
    stage_name,
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
    return yaml.safe_load(render_dvc_yaml(["config.yaml", SMOKE]))["stages"]


def test_committed_dvc_yaml_is_not_stale():
    assert (REPO_ROOT / "dvc.yaml").read_text() == render_dvc_yaml(["config.yaml"]), (
        "dvc.yaml is stale: run `make dvc.yaml`")
    assert (REPO_ROOT / PARAMS_FILE).read_text() == render_params_file(["config.yaml"]), (
        f"{PARAMS_FILE} is stale: run `make dvc.yaml`")


def test_one_stage_per_snakemake_job_with_the_same_command_and_files(smoke_stages):
    jobs = snakemake_jobs([SMOKE])
    # Plus resolve_config, DVC's own stage that rewrites the merged params file (no Snakemake job).
    assert sorted(stage_name(j) for j in jobs) == sorted(set(smoke_stages) - {RESOLVE_STAGE})
    assert {j.rule for j in jobs} >= {"fetch_mnist", "fetch_fashion_mnist", "split", "train_model",
                                      "evaluate_model", "summarize_seeds", "plot_training_curve"}
    for job in jobs:
        stage = smoke_stages[stage_name(job)]
        assert stage["cmd"] == job.cmd
        tracked = stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
        assert sorted(tracked) == sorted(job.outputs)
        assert set(job.inputs) <= set(stage["deps"]) and "src/tempered" in stage["deps"]


def test_metrics_and_figures_are_declared_as_such(smoke_stages):
    assert smoke_stages["evaluate_model-cnn-seed0"]["metrics"] == ["results/metrics/eval/cnn/seed0.json"]
    assert smoke_stages["plot_training_curve-cnn"]["plots"] == ["results/figures/training_curve/cnn.png"]


def test_params_name_keys_present_in_their_files(smoke_stages):
    merged = yaml.safe_load(render_params_file(["config.yaml", SMOKE]))
    for name, stage in smoke_stages.items():
        for entry in stage.get("params", []):
            for path, keys in entry.items():
                assert path == PARAMS_FILE and all(has_key(merged, k) for k in keys), (name, path, keys)
    train = smoke_stages["train_model-cnn-seed0"]["params"]
    assert train == [{PARAMS_FILE: ["models.cnn", "evaluation.limit_eval"]}]


def test_seed_and_temperature_wildcards_follow_config():
    paper = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    assert {s for s in paper if s.startswith("train_model-cnn-")} == {f"train_model-cnn-seed{s}" for s in (0, 1, 2)}
    grid = (1, 2, 5, 10, 20, 30, 40, 50, 100)
    assert {s for s in paper if s.startswith("train_student-student")} == {
        f"train_student-student_T{t}-seed{s}" for t in grid for s in (0, 1, 2)}
    # The membership targets distil too, one student per size, T and seed, on their own roles.
    assert {s for s in paper if s.startswith("train_student-mi1000_")} == {
        f"train_student-mi1000_student_T{t}-seed{s}" for t in grid for s in (0, 1, 2)}
    assert "results/membership/roles/size1000/target.npz" in paper["train_student-mi1000_student_T20-seed1"]["deps"]
    student = paper["train_student-student_T20-seed1"]
    assert "results/distillation/teacher_T20/seed1/soft_labels.npz" in student["deps"]


def test_presets_must_follow_config_yaml():
    with pytest.raises(ConfigError, match="needs config.yaml first"):
        render_dvc_yaml([SMOKE])
