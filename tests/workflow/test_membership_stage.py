"""The membership-inference stage as the DAG builds it on the smoke preset: roles kept apart in the files the
models trained on, every number recomputable from the per-sample scores, temperature scaling unable to move the
correctness attack, the report's answer; and a refusal of a size the pool cannot hold."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tempered.artifacts import read_arrays, read_checkpoint, read_json
from tempered.config import load_config
from tempered.model_grid import (
    membership_model_seeds,
    membership_recipe_ids,
    membership_targets,
    model_dataset,
    model_id,
    shadow_recipe,
)
from tempered.ood.metrics import auroc
from tests.pipeline import SMOKE

pytestmark = pytest.mark.e2e

ATTACKS = {"correctness", "confidence", "entropy", "modified_entropy", "loss", "lira_offline", "lira_online"}
LIRA = {"lira_offline", "lira_online"}


@pytest.fixture(scope="module")
def smoke_config(snakemake_run):
    return load_config([snakemake_run / "config.yaml", snakemake_run / SMOKE])


def trained_membership_models(config) -> list[tuple[str, int]]:
    """(recipe, model seed) of every membership model the DAG trains: a shadow recipe at every model seed, a
    target that is no shadow recipe at membership.seeds only."""
    targets = [model_id(config, name) for name in membership_targets(config)]
    shadows = {shadow_recipe(config, t).name for t in targets}
    return [(m.name, k) for m in membership_recipe_ids(config)
            for k in (membership_model_seeds(config) if m.name in shadows else config["membership"]["seeds"])]


def test_roles_in_the_files_the_models_trained_on_keep_apart_what_they_must(snakemake_run, smoke_config):
    """Each model seed trains on its half of the size's pool (recorded by digest in its checkpoint), with exactly
    half of the candidates IN; every candidate is IN for some model seeds and OUT for others."""
    from tempered.artifacts import sha256_file

    root = snakemake_run / "results"
    seeds = membership_model_seeds(smoke_config)
    for size in smoke_config["membership"]["train_sizes"]:
        roles = {k: read_arrays(root / f"membership/roles/size{size}/seed{k}.npz") for k in seeds}
        candidates = roles[0]["candidates"]
        for k, r in roles.items():
            assert np.array_equal(r["candidates"], candidates)
            half = set(r["pool_half"])
            assert len(half) == size and set(candidates[r["candidate_in"]]) == set(r["members"]) <= half
            assert not set(r["nonmembers"]) & half  # non-members: training digits this model never saw
            assert len(r["calibration"]) == 10_000  # the test set: no non-member among them
            for recipe, seed in trained_membership_models(smoke_config):
                if seed != k or model_id(smoke_config, recipe).size != size:
                    continue
                _, meta = read_checkpoint(root / f"models/{recipe}/seed{k}/model.pt")
                assert meta["train_size"] == size and meta["model_config"]["train_set"] == "pool_half"
                roles_file = root / f"membership/roles/size{size}/seed{k}.npz"
                assert meta["provenance"]["data_digests"][roles_file.name] == sha256_file(roles_file), recipe
        assert not set(roles[0]["pool_half"]) & set(roles[1]["pool_half"])  # seeds 0 and 1: complementary
        in_for = np.stack([r["candidate_in"] for r in roles.values()]).sum(axis=0)
        assert in_for.min() >= 1 and in_for.max() <= len(seeds) - 1  # every candidate has IN and OUT models


def test_each_targets_shadows_are_the_shared_recipe_at_the_other_seeds(snakemake_run, smoke_config):
    """Smoke trains one shadow recipe per dataset (membership.shadow_recipe shadow_model): every target's shadows
    are that recipe at the other model seeds (read from their outputs' provenance), trained by its own settings."""
    assert smoke_config["membership"]["shadow_recipe"] == "shadow_model"
    root = snakemake_run / "results"
    for name in membership_targets(smoke_config):
        recipe = shadow_recipe(smoke_config, model_id(smoke_config, name))
        assert recipe.family == {"mnist": "cnn", "fashion_mnist": "song_fmnist"}[model_dataset(smoke_config, name)]
        record = read_json(root / f"metrics/membership/{name}/seed0.json")
        assert record["shadow_recipe"] == "shadow_model" and record["shadow_model"] == recipe.name
        assert record["n_shadows"] == smoke_config["membership"]["n_shadows"]
        assert record["shadow_seeds"] == ",".join(map(str, membership_model_seeds(smoke_config)[1:]))
        for k in map(int, record["shadow_seeds"].split(",")):
            outputs = read_arrays(root / f"membership/outputs/{recipe.name}/seed{k}.npz")
            assert json.loads(str(outputs["provenance_json"]))["model"] == recipe.name
            _, meta = read_checkpoint(root / f"models/{recipe.name}/seed{k}/model.pt")
            assert meta["model_config"]["method"] == smoke_config["models"][recipe.family]["method"]
            assert meta["provenance"]["seed"] == k


def test_shadows_trained_like_each_target_are_its_own_recipe_at_every_model_seed(snakemake_run, tmp_path):
    """membership.shadow_recipe target (config.yaml, quick), on the plan: each target's attack reads its own
    recipe's outputs at every model seed, and the PGD-trained and distilled recipes train at all of them."""
    from tests.workflow.test_incremental import edited_copy, snakemake_plan

    membership = yaml.safe_load((snakemake_run / SMOKE).read_text())["membership"]
    planned = snakemake_plan(edited_copy(snakemake_run, tmp_path / "sm",
                                         {"membership": {**membership, "shadow_recipe": "target"}}))
    for recipe in ("mi200_cnn_pgd", "mi200_student_T100", "mi200_song_fmnist_pgd"):
        # Seed 0 (the target) is built already and stays: its outputs do not depend on who uses them.
        assert f"membership_outputs[model={recipe}, seed=0]" not in planned
        assert (snakemake_run / f"results/membership/outputs/{recipe}/seed0.npz").is_file()
        for k in range(1, membership["n_shadows"] + 1):
            assert f"membership_outputs[model={recipe}, seed={k}]" in planned, (recipe, k, sorted(planned))
        train = "train_student" if "student" in recipe else "train_model"
        assert f"{train}[model={recipe}, seed={membership['n_shadows']}]" in planned
    assert "membership_attack[model=mi200_cnn_pgd, seed=0]" in planned


def test_song_et_al_targets_learned_fashion_mnist(snakemake_run, smoke_config):
    """Song et al. 2019's CNNs and their shadows trained on Fashion-MNIST's images (their checkpoints' data digests),
    with Adam; the MNIST targets on MNIST's."""
    root = snakemake_run / "results"
    digests = {name: read_json(root / f"data/{name}.manifest.json")["arrays_sha256"]
               for name in ("mnist", "fashion_mnist")}
    trained = set()
    for model, k in trained_membership_models(smoke_config):
        _, meta = read_checkpoint(root / f"models/{model}/seed{k}/model.pt")
        dataset = model_dataset(smoke_config, model)
        assert meta["provenance"]["data_digests"][f"{dataset}.npz"] == digests[dataset], model
        trained.add((dataset, meta["model_config"]["optimizer"]["name"]))
    assert trained == {("mnist", "sgd"), ("fashion_mnist", "adam")}


def test_every_number_is_recomputed_from_the_saved_scores(snakemake_run, smoke_config):
    root = snakemake_run / "results"
    scaled = 0
    for model in membership_targets(smoke_config):
        record = read_json(root / f"metrics/membership/{model}/seed0.json")
        assert set(record["attacks"]["deployed"]) == ATTACKS
        assert set(record["attacks"]["adversarial_input"]) == ATTACKS - LIRA
        for attack in ATTACKS:
            table = pd.read_csv(root / f"membership/scores/{model}/seed0/{attack}.csv")
            member = table["member"].to_numpy(bool)
            assert member.sum() == (~member).sum() == record["n_members"]  # balanced
            for variant, metrics in record["attacks"].items():
                if attack in metrics:
                    scores = table[variant].to_numpy()
                    assert auroc(scores[member], scores[~member]) == pytest.approx(metrics[attack]["auroc"])
        # Robustness beside leakage: the PGD examples' accuracy is the correctness attack's mean score on them.
        correct = pd.read_csv(root / f"membership/scores/{model}/seed0/correctness.csv")
        on_pgd = correct["adversarial_input"].to_numpy(float)
        target, member = record["target"], correct["member"].to_numpy(bool)
        assert target["pgd_train_accuracy"] == pytest.approx(on_pgd[member].mean())
        assert target["pgd_test_accuracy"] == pytest.approx(on_pgd[~member].mean())
        assert target["robust_generalization_gap"] == pytest.approx(
            target["pgd_train_accuracy"] - target["pgd_test_accuracy"])
        dataset = record["target"]["dataset"]
        assert dataset == model_dataset(smoke_config, model)
        assert record["robustness_attack"] == {"attack": "pgd",
                                               **smoke_config["membership"]["adversarial_input"][dataset]}
        p_values = record["best_threshold_accuracy_p_value"]
        assert set(p_values) == ATTACKS and all(0 < p <= 1 for v in p_values.values() for p in v.values())
        skipped = record.get("skipped_variants", {}).get("temperature_scaled")
        if skipped:
            # A target (or shadow) whose NLL has no finite optimum in T has no temperature-scaled variant and no
            # fitted T: smoke's 2-epoch distilled targets sit near chance (calibration.NoFiniteOptimum).
            assert "no finite optimum" in skipped and "temperature_scaled" not in record["attacks"], model
            assert "fitted_temperature" not in record["target"], model
            continue
        scaled += 1
        assert set(record["attacks"]["temperature_scaled"]) == ATTACKS
        # Temperature scaling keeps the argmax: the correctness attack cannot move, whatever T was fitted.
        assert record["target"]["fitted_temperature"] != 1.0
        correctness = pd.read_csv(root / f"membership/scores/{model}/seed0/correctness.csv")
        assert correctness["deployed"].equals(correctness["temperature_scaled"])
        # The paired change is the difference of the two variants' metrics on the same candidates.
        for attack in ATTACKS:
            table = pd.read_csv(root / f"membership/scores/{model}/seed0/{attack}.csv")
            member = table["member"].to_numpy(bool)
            recomputed = (auroc(table["temperature_scaled"][member], table["temperature_scaled"][~member])
                          - auroc(table["deployed"][member], table["deployed"][~member]))
            change = record["temperature_scaling_change"][attack]
            assert change["auroc_change"] == pytest.approx(recomputed, abs=1e-12)
            assert change["auroc_change_low"] <= change["auroc_change_high"]
        assert record["temperature_scaling_change"]["correctness"]["auroc_change_detectable"] == 0.0
    assert scaled >= 2, "the standard and PGD-trained targets must be temperature-scaled"


def test_the_summary_and_the_report_answer_the_question(snakemake_run, smoke_config):
    root = snakemake_run / "results"
    summary = read_json(root / "metrics/membership.json")
    assert set(summary["targets"]) == set(membership_targets(smoke_config))
    assert summary["temperature_scaling"]["correctness"]["max_abs_auroc_change"] == 0.0
    largest = max(smoke_config["membership"]["train_sizes"])
    song = smoke_config["membership"]["song2019_models"]
    assert summary["song2019"]["natural"]["model"] == f"mi{largest}_{song['natural']}"
    assert summary["song2019"]["robust"]["model"] == f"mi{largest}_{song['robust']}"
    report = (root / "REPORT.md").read_text()
    section = report.split("## Song et al. 2019")[1].split("\n## ")[0]
    assert "correctness attack cannot move" in section and "LiRA AUROC" in section
    assert "MI accuracy against a naturally trained model (ours" in section
    assert f"{song['robust']}'s PGD accuracy" in section and "on its members" in section
    assert "Song et al. 2019's setting (Fashion-MNIST CNNs)" in section
    table = (root / "tables/membership.md").read_text()
    assert "PGD acc. train / held out (gap)" in table and "What temperature scaling changes (paired" in table
    paired = pd.read_csv(root / "tables/membership_paired.csv")
    assert set(paired["model"]) == set(summary["temperature_scaling_paired"])
    assert "Paired on the same candidates, temperature scaling changed LiRA AUROC by" in section
    claims = pd.read_csv(root / "tables/claims.csv").set_index("id")
    for claim in ("song.mi.fmnist.natural", "song.mi.fmnist.robust", "song.mi.fmnist.robust_adv_inputs"):
        assert claims.loc[claim, "verdict"] != "not run at this preset", claim
        assert claims.loc[claim, "ours"] == pytest.approx(
            summary["song2019"][claim.rsplit(".", 1)[1].replace("adv_inputs", "adversarial_input")]
            ["best_threshold_accuracy"])
    for figure in ("leakage_vs_distillation_T", "before_after_temperature_scaling", "leakage_vs_gap_and_ece"):
        assert (root / f"figures/membership/{figure}.png").stat().st_size > 0
        assert (root / f"figures/membership/{figure}.pdf").stat().st_size > 0


def test_a_size_too_large_for_the_pool_is_refused_before_any_job(snakemake_run, tmp_path):
    from tempered.config import ConfigError

    preset = yaml.safe_load((snakemake_run / SMOKE).read_text())
    preset["membership"]["train_sizes"] = [27501]  # a pool of twice the size: at most (60,000 - 5,000) / 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(preset))
    with pytest.raises(ConfigError, match="membership.train_sizes: 27501 needs a pool of 55002"):
        load_config([snakemake_run / "config.yaml", bad])
