"""Progress inside the long jobs (issue 18): an attack job and the membership jobs show tqdm bars on stderr, named
after what runs, and the bars change nothing the jobs compute."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tempered.artifacts import read_arrays, write_arrays, write_checkpoint
from tempered.attacks.cw_l2 import CarliniWagnerL2
from tempered.attacks.jsma import JSMA
from tempered.attacks.pgd import PGD
from tempered.models import build_model
from tests.conftest import REPO_ROOT


@pytest.fixture
def tiny_job(tmp_path, repo_config):
    """A random CNN checkpoint and 40 random digits in each of MNIST's arrays."""
    cnn = repo_config["models"]["cnn"]
    torch.manual_seed(0)
    write_checkpoint(tmp_path / "model.pt", build_model(cnn).state_dict(),
                     {"model_config": cnn, "provenance": {"seed": 0}})
    rng = np.random.default_rng(0)
    write_arrays(tmp_path / "mnist.npz", {
        f"{kind}_{part}": (rng.integers(0, 256, (40, 28, 28), dtype=np.uint8) if kind == "x"
                           else np.arange(40, dtype=np.uint8) % 10)
        for kind in ("x", "y") for part in ("train", "test")})
    return tmp_path


def test_an_attack_job_counts_its_attempts_and_its_iterations_on_stderr(tiny_job, capsys):
    from tempered.stages.attacks.steps import attack_step

    overlay = tiny_job / "tiny.yaml"
    overlay.write_text("attacks: {samples: 2, batch_size: 10, cw_l2: {confidence: 0.0, learning_rate: 0.01, "
                       "binary_search_steps: 2, max_iterations: 5, initial_const: 0.001, abort_early: true}}\n")
    attack_step([str(REPO_ROOT / "config.yaml"), str(overlay)], "cw_l2", "cnn", 0, tiny_job / "model.pt",
                tiny_job / "mnist.npz", tiny_job / "adv.npz", tiny_job / "metrics.json")
    err = capsys.readouterr().err
    assert "cw_l2 on cnn:" in err and "18/18 [" in err and "attempt/s]" in err, err  # 2 samples x 9 targets
    assert "C&W c search 1/2:   0%|          | 0/10 [" in err, err  # 2 steps x 5 iterations
    assert json.loads((tiny_job / "metrics.json").read_text())["attempts"] == 18


@pytest.mark.parametrize(("attack", "bar"), [
    (lambda progress: CarliniWagnerL2(binary_search_steps=2, max_iterations=10, progress=progress),
     "C&W c search 1/2:   0%|          | 0/20 ["),
    (lambda progress: JSMA(gamma=0.02, progress=progress), "JSMA:   0%|          | 0/7 ["),
    (lambda progress: PGD(steps=3, progress=progress), "PGD:   0%|          | 0/3 ["),
], ids=["cw_l2", "jsma", "pgd"])
def test_a_bar_changes_no_result(attack, bar, repo_config, capsys):
    torch.manual_seed(0)
    model = build_model(repo_config["models"]["cnn"]).eval()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(6) % 10
    target = (labels + 1) % 10
    quiet = attack(False).attack(model, x, labels, target)
    assert capsys.readouterr().err == ""  # off by default: PGD inside a training loop stays silent
    shown = attack(True).attack(model, x, labels, target)
    assert bar in capsys.readouterr().err
    for field in ("x_adv", "success", "distortion"):
        assert torch.equal(getattr(quiet, field), getattr(shown, field)), field


def test_membership_jobs_show_their_sets_and_variants_on_stderr(tmp_path, repo_config, capsys):
    from tempered.stages.membership.steps import attack_step, outputs_step
    from tests.unit.tiny_inputs import write_membership_models

    overlay = tmp_path / "tiny.yaml"
    overlay.write_text("membership: {train_sizes: [200], models: [cnn], distilled: false, n_shadows: 3, n_eval: 8,\n"
                       "  adversarial_input: {mnist: {eps: 0.3, alpha: 0.1, steps: 2, random_start: true}},\n"
                       "  bootstrap: {n_boot: 5, level: 0.95, seed: 0}}\n")
    config = [str(REPO_ROOT / "config.yaml"), str(overlay)]
    torch.manual_seed(0)
    write_membership_models(tmp_path, repo_config["models"]["cnn"], "mi200_cnn", range(4))
    for k in range(4):
        outputs_step(config, "mi200_cnn", k, tmp_path / "model" / f"seed{k}.pt", tmp_path / "mnist.npz",
                     tmp_path / "roles" / f"seed{k}.npz", tmp_path / f"outputs{k}.npz")
        err = capsys.readouterr().err
        assert "PGD:" in err, err
    assert len(read_arrays(tmp_path / "outputs0.npz")["adv_logits"]) == 16

    attack_step(config, "mi200_cnn", 0, tmp_path / "outputs0.npz", [tmp_path / f"outputs{k}.npz" for k in range(4)],
                tmp_path / "metrics.json", tmp_path / "scores", tmp_path / "roc.png")
    err = capsys.readouterr().err
    assert "membership attacks on mi200_cnn:" in err and "3/3 [" in err and "variant/s]" in err, err
    assert "deployed" in json.loads((tmp_path / "metrics.json").read_text())["attacks"]
