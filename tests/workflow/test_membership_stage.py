"""The membership-inference stage as the DAG builds it on the smoke preset: roles kept apart in the files the
models trained on, every number recomputable from the per-sample scores, temperature scaling unable to move the
correctness attack, the report's answer; and the stage's refusals on tiny artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from tempered.artifacts import ArtifactError, read_arrays, read_checkpoint, read_json, write_arrays
from tempered.config import load_config
from tempered.model_grid import membership_shadow_ids, membership_targets, model_dataset, model_id, shadows_of
from tempered.ood.metrics import auroc
from tests.pipeline import SMOKE

pytestmark = pytest.mark.e2e

ATTACKS = {"correctness", "confidence", "entropy", "modified_entropy", "loss", "lira_offline", "lira_online"}
LIRA = {"lira_offline", "lira_online"}


@pytest.fixture(scope="module")
def smoke_config(snakemake_run):
    return load_config([snakemake_run / "config.yaml", snakemake_run / SMOKE])


def test_roles_in_the_files_the_models_trained_on_keep_apart_what_they_must(snakemake_run, smoke_config):
    root = snakemake_run / "results"
    for size in smoke_config["membership"]["train_sizes"]:
        target = read_arrays(root / f"membership/roles/size{size}/target.npz")
        assert len(target["target"]) == size and set(target["members"]) <= set(target["target"])
        # Non-members are training digits (one distribution with the members) that the target never saw.
        assert not set(target["nonmembers"]) & set(target["target"])
        assert len(target["calibration"]) == 10_000  # the test set: no non-member among them
        candidates = list(target["members"]) + list(target["nonmembers"])
        in_for = []
        for k in range(smoke_config["membership"]["n_shadows"]):
            roles = read_arrays(root / f"membership/roles/size{size}/shadow{k}.npz")
            mine = {c for c, inside in zip(candidates, roles["candidate_in"], strict=True) if inside}
            # A shadow trains on its half of the candidates (online LiRA) and on P2, never on the rest of a
            # target's set; its threshold data are its IN and OUT candidates.
            assert set(roles["shadow_in"]) & (set(target["target"]) | set(target["nonmembers"])) == mine
            assert set(roles["shadow_members"]) == mine and not set(roles["shadow_out"]) & set(roles["shadow_in"])
            in_for.append(roles["candidate_in"])
        assert set(np.stack(in_for).sum(axis=0)) == {len(in_for) // 2}  # IN for half the shadows, every one
        for shadow in membership_shadow_ids(smoke_config, size):
            _, meta = read_checkpoint(root / f"models/{shadow.name}/seed0/model.pt")
            assert meta["train_size"] == size and meta["model_config"]["train_set"] == "shadow_in"
        _, meta = read_checkpoint(root / f"models/mi{size}_cnn/seed0/model.pt")
        assert meta["train_size"] == size and meta["model_config"]["train_set"] == "target"


def test_each_targets_shadows_were_trained_like_it(snakemake_run, smoke_config):
    """membership.shadow_recipe target (smoke keeps config.yaml's): a student's shadows are students at its T,
    taught by teacher shadows on their own data, the PGD-trained target's shadows PGD-trained; only the data differ."""
    assert smoke_config["membership"]["shadow_recipe"] == "target"
    root = snakemake_run / "results"
    recipes = set()
    for name in membership_targets(smoke_config):
        target = model_id(smoke_config, name)
        _, target_meta = read_checkpoint(root / f"models/{name}/seed0/model.pt")
        for shadow in shadows_of(smoke_config, target):
            _, meta = read_checkpoint(root / f"models/{shadow.name}/seed0/model.pt")
            expected = {**target_meta["model_config"], "train_set": "shadow_in"}
            if "teacher" in expected:  # a student shadow learns from the teacher shadow of the same index
                expected["teacher"] = shadow.teacher().name
            assert meta["model_config"] == expected, shadow.name
            recipes.add((meta["model_config"]["method"], meta["model_config"]["temperature"]))
        record = read_json(root / f"metrics/membership/{name}/seed0.json")
        assert record["shadow_recipe"] == "target"
        assert record["n_shadows"] == smoke_config["membership"]["n_shadows"]
    assert {("madry_pgd", 1.0), ("cross_entropy", 100.0)} <= recipes


def test_song_et_al_targets_learned_fashion_mnist(snakemake_run, smoke_config):
    """Song et al. 2019's CNNs and their shadows trained on Fashion-MNIST's images (their checkpoints' data digests),
    with Adam; the MNIST targets on MNIST's."""
    root = snakemake_run / "results"
    digests = {name: read_json(root / f"data/{name}.manifest.json")["arrays_sha256"]
               for name in ("mnist", "fashion_mnist")}
    trained = set()
    for name in membership_targets(smoke_config):
        target = model_id(smoke_config, name)
        for model in (target, *shadows_of(smoke_config, target)):
            _, meta = read_checkpoint(root / f"models/{model.name}/seed0/model.pt")
            dataset = model_dataset(smoke_config, model.name)
            assert meta["provenance"]["data_digests"][f"{dataset}.npz"] == digests[dataset], model.name
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


def test_shadows_of_another_size_are_refused(snakemake_run, smoke_config, tmp_path):
    """Shadow outputs whose candidate logits do not match the target's roles (another size) stop the attack."""
    from tempered.stages.membership.steps import attack_step

    root = snakemake_run / "results"
    size = smoke_config["membership"]["train_sizes"][0]
    target = model_id(smoke_config, f"mi{size}_cnn")
    shadow = read_arrays(root / f"membership/shadows/{shadows_of(smoke_config, target)[0].name}/seed0.npz")
    shadow["candidate_members_logits"] = shadow["candidate_members_logits"][:-1]
    bad = tmp_path / "shadow.npz"
    write_arrays(bad, shadow)
    config = [str(snakemake_run / "config.yaml"), str(snakemake_run / SMOKE)]
    with pytest.raises(ArtifactError, match="another target size"):
        attack_step(config, f"mi{size}_cnn", root / f"models/mi{size}_cnn/seed0/model.pt", root / "data/mnist.npz",
                    root / f"membership/roles/size{size}/target.npz", [bad], tmp_path / "m.json", tmp_path / "s",
                    tmp_path / "roc.png")
    assert not (tmp_path / "m.json").exists()


def test_a_size_too_large_for_the_shadows_is_refused_before_any_job(snakemake_run, tmp_path):
    from tempered.config import ConfigError

    preset = yaml.safe_load((snakemake_run / SMOKE).read_text())
    preset["membership"]["train_sizes"] = [29950]  # smoke holds out n_eval=100: at most 29,900
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(preset))
    with pytest.raises(ConfigError, match="membership.train_sizes: 29950"):
        load_config([snakemake_run / "config.yaml", bad])
