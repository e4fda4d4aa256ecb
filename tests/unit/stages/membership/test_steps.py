"""The membership stage's steps on tiny real models (issue 15): outputs are a model's at its seed on its own
roles, and an attack takes its shadow recipe's outputs at every model seed, on the same candidates, and drops the
target's own seed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tempered.artifacts import ArtifactError, read_arrays, write_arrays
from tempered.stages.membership.steps import attack_step, outputs_step
from tests.conftest import REPO_ROOT
from tests.unit.tiny_inputs import write_membership_models

OVERLAY = ("membership: {train_sizes: [200], models: [cnn, cnn_pgd], distilled: false, n_shadows: 3, n_eval: 8,\n"
           "  adversarial_input: {mnist: {eps: 0.3, alpha: 0.1, steps: 1, random_start: false}},\n"
           "  bootstrap: {n_boot: 5, level: 0.95, seed: 0}}\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory, repo_config):
    """mi200_cnn's outputs at model seeds 0..3, from untrained CNNs on tiny random digits."""
    place = tmp_path_factory.mktemp("membership")
    (place / "tiny.yaml").write_text(OVERLAY)
    config = [str(REPO_ROOT / "config.yaml"), str(place / "tiny.yaml")]
    torch.manual_seed(0)
    write_membership_models(place, repo_config["models"]["cnn"], "mi200_cnn", range(4))
    for k in range(4):
        outputs_step(config, "mi200_cnn", k, place / "model" / f"seed{k}.pt", place / "mnist.npz",
                     place / "roles" / f"seed{k}.npz", place / f"out{k}.npz")
    return place, config


def test_outputs_hold_the_candidates_membership_and_provenance(built):
    place, _ = built
    out, roles = read_arrays(place / "out1.npz"), read_arrays(place / "roles" / "seed1.npz")
    assert np.array_equal(out["candidates"], roles["candidates"])
    assert np.array_equal(out["candidate_in"], roles["candidate_in"]) and out["candidate_in"].sum() == 8
    assert out["logits"].shape == out["adv_logits"].shape == (16, 10)
    record = json.loads(str(out["provenance_json"]))
    assert (record["model"], record["model_seed"]) == ("mi200_cnn", 1)


@pytest.mark.parametrize(("seed", "roles", "named"), [
    (2, "seed1.npz", "it was trained at seed 1, not 2"),
    (1, "seed2.npz", "it was trained on other roles than"),
])
def test_outputs_refuse_a_checkpoint_of_another_seed_or_other_roles(built, tmp_path, seed, roles, named):
    place, config = built
    with pytest.raises(ArtifactError, match=named):
        outputs_step(config, "mi200_cnn", seed, place / "model" / "seed1.pt", place / "mnist.npz",
                     place / "roles" / roles, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_an_attack_scores_the_targets_members_against_its_nonmembers(built, tmp_path):
    place, config = built
    attack_step(config, "mi200_cnn", 0, place / "out0.npz", [place / f"out{k}.npz" for k in range(4)],
                tmp_path / "m.json", tmp_path / "scores", tmp_path / "roc.png")
    record = json.loads((tmp_path / "m.json").read_text())
    assert (record["n_members"], record["n_nonmembers"], record["n_shadows"]) == (8, 8, 3)
    assert (record["shadow_model"], record["shadow_seeds"], record["seed"]) == ("mi200_cnn", "1,2,3", 0)
    assert "lira_online" in record["attacks"]["deployed"]
    scores = pd.read_csv(tmp_path / "scores" / "loss.csv")
    roles = read_arrays(place / "roles" / "seed0.npz")
    assert set(scores.loc[scores["member"], "candidate"]) == set(roles["members"])
    assert set(scores.loc[~scores["member"], "candidate"]) == set(roles["nonmembers"])


def _mislabelled(place, tmp_path, change):
    """out2.npz with `change` applied to its arrays and provenance."""
    arrays = dict(read_arrays(place / "out2.npz"))
    record = json.loads(str(arrays["provenance_json"]))
    change(arrays, record)
    arrays["provenance_json"] = np.array(json.dumps(record))
    write_arrays(tmp_path / "bad.npz", arrays)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize(("shadows", "change", "named"), [
    ((0, 1, 2), None, r"are at model seeds \[0, 1, 2\]; the attack needs the recipe at each of \[0, 1, 2, 3\] once"),
    ((0, 1, 1, 2, 3), None, r"are at model seeds \[0, 1, 1, 2, 3\]"),
    ((0, 1, "bad", 3), lambda a, r: a.update(candidates=a["candidates"][::-1].copy()), "score other candidates"),
    ((0, 1, "bad", 3), lambda a, r: r.update(model="mi200_cnn_pgd"), "are of model 'mi200_cnn_pgd'"),
])
def test_an_attack_refuses_shadows_that_are_not_the_recipes_other_seeds(built, tmp_path, shadows, change, named):
    place, config = built
    paths = [_mislabelled(place, tmp_path, change) if k == "bad" else place / f"out{k}.npz" for k in shadows]
    with pytest.raises(ArtifactError, match=named):
        attack_step(config, "mi200_cnn", 3, place / "out3.npz", paths, tmp_path / "m.json", tmp_path / "s",
                    tmp_path / "roc.png")
    assert not (tmp_path / "m.json").exists()


def test_an_attack_refuses_outputs_of_another_model_seed_as_its_target(built, tmp_path):
    place, config = built
    with pytest.raises(ArtifactError, match="not of 'mi200_cnn' at seed 1"):
        attack_step(config, "mi200_cnn", 1, place / "out0.npz", [place / f"out{k}.npz" for k in range(4)],
                    tmp_path / "m.json", tmp_path / "s", tmp_path / "roc.png")
