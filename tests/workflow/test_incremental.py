"""Change one setting of a built smoke tree and ask each engine, by dry run, what it would redo: exactly the
jobs that setting touches and what is downstream of them, nothing else. Both engines read the same
per-step config keys (tempered.step_params), so both must agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tempered.config import load_config
from tempered.stages.ood.scored_models import ood_model_names
from tests.pipeline import SMOKE, clone_env, run

pytestmark = pytest.mark.e2e

# Jobs that gather every model (one table per stage, and the reproduction report, which also lists every
# setting that departs from config.yaml): any new model or changed attack reruns them.
GATHERING = {"distillation_report", "calibration_report", "ood_report", "membership_report", "report"}


def edited_copy(built: Path, place: Path, settings: dict) -> Path:
    """A copy of a built tree (times and Snakemake metadata kept) whose smoke preset has `settings` merged in,
    edited in place as a user would: the jobs' command lines (which name the config files) stay the same.
    The file is rewritten in another key order and layout on purpose: that alone must rerun nothing."""
    shutil.copytree(built, place, symlinks=True)
    preset = place / SMOKE
    preset.write_text(yaml.safe_dump({**yaml.safe_load(preset.read_text()), **settings}))
    return place


def snakemake_plan(repo: Path) -> set[str]:
    """'rule[wildcards]' of every job a dry run would run (Snakemake 9's dry-run listing)."""
    out = run(["snakemake", "-n", "--configfile", SMOKE], repo)
    jobs, rule = set(), None
    for line in out.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):$", line):
            rule = m[1]
            jobs.add(rule)
        elif rule and (m := re.match(r"\s+wildcards: (.*)$", line)):
            jobs.discard(rule)
            jobs.add(f"{rule}[{m[1]}]")
            rule = None
    return jobs - {"all"}


def dvc_plan(repo: Path) -> set[str]:
    """Stages `dvc status` reports as changed once dvc.yaml is re-exported for the edited preset."""
    run([sys.executable, "-m", "tempered", "export-dvc", "--config", "config.yaml", "--config", SMOKE], repo)
    proc = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=clone_env(repo), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout)) - {"resolve_config"}  # DVC's own stage: no Snakemake job


def test_a_new_temperature_adds_only_its_own_jobs(snakemake_run, dvc_run, tmp_path):
    grow = {"distillation": {"temperatures": [100, 2]}}
    planned = snakemake_plan(edited_copy(snakemake_run, tmp_path / "sm", grow))
    # T2's own jobs include its membership recipes mi<size>_teacher_T2 / mi<size>_student_T2 at every model seed
    # (targets and, membership.shadow_recipe target, their own shadows), their outputs and attacks.
    own = {j for j in planned if re.search(r"model=(mi\d+_)?(teacher|student)_T2\b", j)}
    assert {j.split("[")[0] for j in own} >= {"train_model", "soft_labels", "train_student", "evaluate_model",
                                              "attack_model", "calibrate_model", "detect_ood", "membership_attack"}
    assert planned - own == GATHERING, sorted(planned - own)

    stages = dvc_plan(edited_copy(dvc_run, tmp_path / "dvc", grow))
    # DVC names a job <stage>@<wildcards joined by '-'>: the model follows '@' or another wildcard (the attack).
    dvc_own = {s for s in stages if re.search(r"[@-](mi\d+_)?(teacher|student)_T2(-|$)", s)}
    # Every Snakemake job is one DVC stage, so the counts must match.
    assert len(dvc_own) == len(own), (sorted(dvc_own), sorted(own))
    assert stages - dvc_own == GATHERING, sorted(stages - dvc_own)


def test_one_attack_setting_reruns_only_that_attack(snakemake_run, dvc_run, tmp_path):
    attacks = yaml.safe_load((snakemake_run / SMOKE).read_text())["attacks"]
    changed = {"attacks": {**attacks, "cw_l2": {**attacks["cw_l2"], "max_iterations": 21}}}
    planned = snakemake_plan(edited_copy(snakemake_run, tmp_path / "sm", changed))
    assert planned == {"attack_model[attack=cw_l2, model=cnn, seed=0]",
                       "attack_model[attack=cw_l2, model=student_T100, seed=0]", "distillation_report",
                       "report"}

    # DVC lists the stages whose own definition changed (the reproduction report reads the attacks settings
    # too); distillation_report, whose inputs these two rewrite, follows in `dvc repro` once they have run
    # (DVC cannot know before that their outputs will differ).
    stages = dvc_plan(edited_copy(dvc_run, tmp_path / "dvc", changed))
    assert stages == {"attack_model@cw_l2-cnn-seed0", "attack_model@cw_l2-student_T100-seed0", "report"}


def test_a_new_membership_size_adds_only_its_own_jobs(snakemake_run, dvc_run, tmp_path):
    """Roles are one file per size and model seed, so a new size trains and attacks its own models and leaves
    every built size alone; only the membership report and the reproduction report gather."""
    membership = yaml.safe_load((snakemake_run / SMOKE).read_text())["membership"]
    grow = {"membership": {**membership, "train_sizes": [*membership["train_sizes"], 300]}}
    planned = snakemake_plan(edited_copy(snakemake_run, tmp_path / "sm", grow))
    own = {j for j in planned if re.search(r"(size=300|model=mi300_)", j)}
    assert {j.split("[")[0] for j in own} == {"membership_roles", "train_model", "soft_labels", "train_student",
                                              "membership_outputs", "membership_attack"}
    assert planned - own == {"membership_report", "report"}, sorted(planned - own)

    stages = dvc_plan(edited_copy(dvc_run, tmp_path / "dvc", grow))
    dvc_own = {s for s in stages if re.search(r"@(size300|mi300_)", s)}
    assert len(dvc_own) == len(own), (sorted(dvc_own), sorted(own))
    assert stages - dvc_own == {"membership_report", "report"}, sorted(stages - dvc_own)


def test_a_change_to_one_figure_module_reruns_only_the_jobs_that_draw_with_it(snakemake_run, dvc_run, tmp_path):
    """Each job depends on the source its step runs (tempered.code_deps), not on the whole package: a new colour in
    stages/ood/figures.py redraws the OOD figures (their scoring jobs draw the per-model ones) and touches no
    training."""
    def edited(built: Path, place: Path) -> Path:
        shutil.copytree(built, place, symlinks=True)
        module = place / "src" / "tempered" / "stages" / "ood" / "figures.py"
        module.write_text(module.read_text() + "\n# a new colour\n")
        return place

    planned = snakemake_plan(edited(snakemake_run, tmp_path / "sm"))
    drawing = {j for j in planned if j.startswith("detect_ood[")}
    # Every model smoke scores (cnn, confidence, hendrycks_mlp and student_T100 today), read from its config.
    scored = ood_model_names(load_config([snakemake_run / "config.yaml", snakemake_run / SMOKE]))
    assert drawing == {f"detect_ood[model={m}, seed=0]" for m in scored}, sorted(planned)
    # The reproduction report reads the OOD table, so it follows.
    assert planned - drawing == {"ood_report", "report"}, sorted(planned)

    # DVC lists the stages whose own deps changed; the report follows in `dvc repro` once they have run.
    stages = dvc_plan(edited(dvc_run, tmp_path / "dvc"))
    wildcards = [dict(re.findall(r"(\w+)=([^,\]]+)", job)) for job in drawing]
    assert stages == {f"detect_ood@{w['model']}-seed{w['seed']}" for w in wildcards} | {"ood_report"}, sorted(stages)
