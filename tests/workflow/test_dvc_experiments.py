"""`dvc exp run -S <file>:<param>=<value>` on a built smoke tree reruns the stages that read that setting and
what is downstream of them, nothing else, and `dvc exp show` lists the report's headline metrics."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.pipeline import SMOKE, run

pytestmark = pytest.mark.e2e


def test_an_experiment_on_one_setting_reruns_only_what_reads_it(dvc_run, tmp_path):
    repo = tmp_path / "exp"
    shutil.copytree(dvc_run, repo, symlinks=True)
    run(["git", "config", "user.name", "t"], repo)
    run(["git", "config", "user.email", "t@t"], repo)
    # Experiments start from a commit: commit the smoke pipeline and its lock, as a user would before exp run.
    run(["git", "add", "dvc.yaml", "dvc-jobs.json", "dvc-params.json", "dvc.lock"], repo)
    run(["git", "commit", "-qm", "smoke pipeline"], repo)

    out = run(["dvc", "exp", "run", "-S", f"{SMOKE}:attacks.cw_l2.initial_const=0.5"], repo)
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    # resolve_config rewrites the merged params file the stages' params name.
    assert ran == {"resolve_config", "attack_model@cw_l2-cnn-seed0", "attack_model@cw_l2-student_T100-seed0",
                   "distillation_report", "report"}, sorted(ran)

    shown = run(["dvc", "exp", "show", "--no-pager", "--md"], repo)
    assert "verdicts.reproduced" in shown and "initial_const" in shown
