"""The training method a model names (models.<name>.method): the config's checks and train_step's dispatch."""

import copy

import pandas as pd
import pytest
import torch
import yaml

from tempered.artifacts import read_checkpoint
from tempered.config import METHOD_SECTIONS, REPO_ROOT, load_config, validate_config
from tempered.data.arrays import subset
from tempered.data.split import make_split
from tempered.device import seed_everything
from tempered.model_grid import membership_recipes, model_config, model_id, shadow_recipe
from tempered.models import build_model
from tempered.stages.train.steps import train_step, training_method
from tempered.training.madry_pgd import pgd_perturbation
from tempered.training.methods import train_classifier
from tests.unit.test_config import invalid
from tests.unit.tiny_inputs import write_digits_and_split

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_schema_enum_the_sections_and_train_steps_dispatch_name_the_same_methods():
    schema = yaml.safe_load((REPO_ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["$defs"]["model"]["properties"]["method"]["enum"] == list(METHOD_SECTIONS)
    assert all(callable(training_method(method)) for method in METHOD_SECTIONS)


def test_an_unknown_method_is_refused_by_the_schema(repo_config):
    message = invalid(repo_config, lambda c: c["models"]["cnn"].update(method="distillation"))
    assert "models.cnn.method" in message and "'distillation' is not one of" in message


def test_a_model_without_a_method_is_refused(repo_config):
    message = invalid(repo_config, lambda c: c["models"]["cnn"].pop("method"))
    assert "models.cnn" in message and "'method' is a required property" in message


@pytest.mark.parametrize(("model", "section"), [("cnn_pgd", "pgd_training"), ("confidence", "learned_confidence"),
                                                 ("fc100_100_10_adv", "adversarial_training"),
                                                 ("ae400_10", "autoencoder")])
def test_a_method_without_its_settings_section_is_refused_naming_model_and_key(repo_config, model, section):
    message = invalid(repo_config, lambda c: c["models"][model].pop(section))
    method = repo_config["models"][model]["method"]
    assert f"models.{model}: method {method} needs its settings section '{section}'" in message


def test_another_methods_settings_section_is_refused_naming_model_key_and_its_method(repo_config):
    def mutate(c):
        c["models"]["fc100_100_10"]["pgd_training"] = copy.deepcopy(c["models"]["cnn_pgd"]["pgd_training"])

    message = invalid(repo_config, mutate)
    assert ("models.fc100_100_10.pgd_training: settings of method madry_pgd, but the model's method is "
            "cross_entropy") in message
    message = invalid(repo_config, lambda c: c["models"]["cnn_pgd"].update(method="szegedy_pools"))
    assert "models.cnn_pgd.pgd_training: settings of method madry_pgd" in message
    assert "models.cnn_pgd: method szegedy_pools needs its settings section 'adversarial_training'" in message


def test_the_optimizer_temperature_and_architecture_must_fit_the_method(repo_config):
    message = invalid(repo_config, lambda c: c["models"]["fc10_1"].update(method="cross_entropy"))
    assert "models.fc10_1.optimizer.name: method cross_entropy needs optimizer sgd" in message
    message = invalid(repo_config, lambda c: c["models"]["fc100_100_10"].update(method="convex_lbfgs"))
    assert "models.fc100_100_10.optimizer.name: method convex_lbfgs needs optimizer lbfgs" in message
    message = invalid(repo_config, lambda c: c["models"]["fc10_1"].update(temperature=2.0))
    assert "models.fc10_1.temperature: method convex_lbfgs trains on the cross-entropy at T=1, got 2" in message

    def plain_confidence_cnn(c):
        del c["models"]["confidence"]["learned_confidence"]
        c["models"]["confidence"]["method"] = "cross_entropy"

    message = invalid(repo_config, plain_confidence_cnn)
    assert "models.confidence.method: architecture confidence_cnn trains by method learned_confidence" in message


def test_the_distillation_base_model_must_train_by_cross_entropy(repo_config):
    message = invalid(repo_config, lambda c: c["distillation"].update(base_model="cnn_pgd"))
    assert "distillation.base_model: 'cnn_pgd' trains by method madry_pgd" in message


def test_derived_models_train_by_the_method_of_the_model_they_copy(repo_config):
    config = copy.deepcopy(repo_config)
    config["membership"]["models"] = ["cnn", "cnn_pgd", "confidence"]
    config["membership"]["shadow_model"] = "cnn_pgd"
    size = config["membership"]["train_sizes"][0]
    assert model_config(config, "teacher_T20")["method"] == "cross_entropy"
    assert model_config(config, "student_T20")["method"] == "cross_entropy"
    assert model_config(config, f"mi{size}_cnn_pgd")["method"] == "madry_pgd"
    assert model_config(config, f"mi{size}_confidence")["method"] == "learned_confidence"
    assert shadow_recipe(config, model_id(config, f"mi{size}_confidence")).name == f"mi{size}_confidence"  # like it
    config["membership"]["shadow_recipe"] = "shadow_model"
    # Every MNIST target's shadows are now cnn_pgd's model seeds, which train by its method.
    assert shadow_recipe(config, model_id(config, f"mi{size}_cnn")).name == f"mi{size}_cnn_pgd"
    assert f"mi{size}_cnn_pgd" in membership_recipes(config)
    validate_config(config)


# Each method on real digits, a few hundred samples for one or two epochs.
TINY = {
    "cnn": {"epochs": 1, "limit_train": 256},
    "confidence": {"epochs": 1, "limit_train": 256},
    "cnn_pgd": {"epochs": 1, "limit_train": 256,
                "pgd_training": {"eps": 0.3, "alpha": 0.1, "steps": 2, "random_start": True, "warmup_epochs": 0}},
    "fc100_100_10_adv": {"epochs": 2, "limit_train": 256, "adversarial_training": {
        "pool_size": 40, "refresh_every": 2, "refresh_size": 16, "mix_size": 8, "seed": 0,
        "attack": {"initial_c": 0.1, "search_steps": 2, "c_factor": 10.0, "max_iter": 10}}},
    "ae400_10": {"epochs": 1, "limit_train": 256, "autoencoder": {
        "epochs": 2, "batch_size": 64, "lr": 1e-3, "sparsity_target": 0.1, "sparsity_weight": 3.0,
        "weight_decay": 3e-3}},
    "fc10_1em4": {"limit_train": 256, "optimizer": {"name": "lbfgs", "max_iter": 200, "tolerance_grad": 1e-6,
                                                    "history_size": 20}},
}
MODEL_OF_METHOD = {"cross_entropy": "cnn", "learned_confidence": "confidence", "madry_pgd": "cnn_pgd",
                   "szegedy_pools": "fc100_100_10_adv", "sparse_autoencoder": "ae400_10", "convex_lbfgs": "fc10_1em4"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_arrays):
    """train_step on every method's model: {method: (state_dict, history, config files, inputs)}."""
    root = tmp_path_factory.mktemp("methods")
    images, split = write_digits_and_split(root, mnist_arrays)
    preset = root / "tiny.yaml"
    preset.write_text(yaml.safe_dump({"models": TINY, "evaluation": {"limit_eval": 200}}))
    config = [str(REPO_ROOT / "config.yaml"), str(preset)]
    out = {}
    for method, model in MODEL_OF_METHOD.items():
        train_step(config, model, 0, images, split, root / f"{model}.pt", root / f"{model}.csv")
        out[method] = (read_checkpoint(root / f"{model}.pt")[0], pd.read_csv(root / f"{model}.csv"), config)
    return out, mnist_arrays, make_split(5000, 0)


def test_every_method_is_exercised_below():
    assert set(MODEL_OF_METHOD) == set(METHOD_SECTIONS)


def _direct(config_files, model_name, arrays, split, perturb: bool):
    """The model train_step trains, trained by the library call instead (a known answer for the dispatch)."""
    mcfg = model_config(load_config(config_files), model_name)
    generator = seed_everything(0)
    x, y = subset(arrays, split, mcfg["train_set"], mcfg["limit_train"])
    model = build_model(mcfg)
    batches = -(-len(x) // mcfg["batch_size"])
    train_classifier(model, x, y, epochs=mcfg["epochs"], batch_size=mcfg["batch_size"],
                     optimizer_cfg=mcfg["optimizer"], temperature=mcfg["temperature"], generator=generator,
                     device=torch.device("cpu"), perturb=pgd_perturbation(mcfg["pgd_training"], mcfg["temperature"],
                                                                          generator, batches) if perturb else None)
    return model.state_dict()


def test_cross_entropy_and_madry_pgd_give_the_weights_of_their_library_calls(trained):
    runs, arrays, split = trained
    for method, perturb in (("cross_entropy", False), ("madry_pgd", True)):
        state, history, config = runs[method]
        direct = _direct(config, MODEL_OF_METHOD[method], arrays, split, perturb)
        assert all(torch.equal(state[k], direct[k]) for k in direct), method
        assert list(history.columns) == ["seed", "epoch", "train_loss", "train_accuracy", "val_nll", "val_accuracy"]
    # Same CNN, settings and seed: the PGD batches alone make madry_pgd's weights differ.
    assert not torch.equal(runs["cross_entropy"][0]["logits.weight"], runs["madry_pgd"][0]["logits.weight"])


def test_learned_confidence_steers_lambda_and_trains_the_confidence_branch(trained):
    state, history, _ = trained[0]["learned_confidence"]
    assert {"lambda", "train_confidence_loss", "mean_confidence"} <= set(history.columns)
    assert history["lambda"].iloc[-1] != 0.1 and "confidence.weight" in state


def test_szegedy_pools_fill_the_pool_of_every_configured_layer(trained):
    _, history, _ = trained[0]["szegedy_pools"]
    for layer in ("input", "hidden1", "hidden2"):
        assert history[f"pool_size_{layer}"].iloc[-1] > 0
    assert history["pool_size"].iloc[-1] == sum(history[f"pool_size_{k}"].iloc[-1]
                                                for k in ("input", "hidden1", "hidden2"))


def test_sparse_autoencoder_pretrains_the_autoencoder_before_the_softmax(trained):
    state, history, config = trained[0]["sparse_autoencoder"]
    seed_everything(0)
    untrained = build_model(model_config(load_config(config), "ae400_10")).state_dict()
    assert not torch.equal(state["autoencoder.encoder.weight"], untrained["autoencoder.encoder.weight"])
    assert list(history.columns) == ["seed", "epoch", "train_loss", "train_accuracy", "test_nll", "test_accuracy"]


def test_convex_lbfgs_lowers_the_full_batch_objective_within_its_iterations(trained):
    """Softmax regression on 256 digits is convex: L-BFGS reaches the gradient tolerance, in rounds of 50
    iterations whose objectives fall."""
    _, history, _ = trained[0]["convex_lbfgs"]
    assert len(history) >= 2 and history["iterations"].iloc[-1] < 200
    assert history["converged"].iloc[-1] and history["gradient_inf_norm"].iloc[-1] <= 1e-6
    assert history["objective"].diff().iloc[1:].lt(0).all()
