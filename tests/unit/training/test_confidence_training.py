"""The learned-confidence training loop (DeVries & Taylor 2018): lambda steering, learning, determinism, dispatch."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from tempered.config import ConfigError, validate_config
from tempered.models import build_model
from tempered.models.confidence_cnn import ConfidenceCNN
from tempered.training.inference import predict_logits
from tempered.training.learned_confidence import BUDGET
from tempered.training.methods import train_confidence_classifier

SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}


class LinearConfidence(nn.Module):
    """Logits and a sigmoid confidence from one linear layer each: the smallest (logits, c) model."""

    def __init__(self, dim: int = 20, classes: int = 4):
        super().__init__()
        self.logits = nn.Linear(dim, classes)
        self.confidence = nn.Linear(dim, 1)

    def forward(self, x):
        return self.logits(x), torch.sigmoid(self.confidence(x)).squeeze(1)


def blobs(n=800, dim=20, classes=4, noise=1.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 2
    y = torch.randint(0, classes, (n,), generator=g)
    return centers[y] + noise * torch.randn(n, dim, generator=g), y


def train(model, x, y, epochs, lambda_init=0.1, budget=BUDGET, seed=0):
    return train_confidence_classifier(model, x, y, epochs=epochs, batch_size=64, optimizer_cfg=SGD,
                                       generator=torch.Generator().manual_seed(seed), device=torch.device("cpu"),
                                       lambda_init=lambda_init, budget=budget, monitor=(x, y), monitor_name="train")


def test_lambda_moves_toward_the_budget_from_both_sides():
    x, y = blobs()
    torch.manual_seed(0)
    # A confidence head starting near c = 0.5 pays L_c = log 2 = 0.69 > 0.3: lambda must rise from 0.1 ...
    rising = train(LinearConfidence(), x, y, epochs=1)
    assert rising[0]["lambda"] > 0.1
    # ... and with a budget above any L_c the model reaches (-log 0.5 < 5), lambda shrinks every step.
    torch.manual_seed(0)
    falling = train(LinearConfidence(), x, y, epochs=1, budget=5.0)
    steps = -(-len(x) // 64)
    assert falling[0]["lambda"] == pytest.approx(0.1 / 1.01 ** steps, rel=1e-9)


@pytest.fixture(scope="module")
def trained():
    """Overlapping classes (about 85% separable): hints are worth asking for, so L_c starts far above beta."""
    x, y = blobs(n=1600, noise=4.0)
    torch.manual_seed(0)
    model = LinearConfidence()
    history = train(model, x, y, epochs=20)
    return model.eval(), history, x, y


def test_training_learns_the_task_and_the_confidence_loss_settles_at_the_budget(trained):
    _, history, _, _ = trained
    assert history[-1]["train_accuracy"] > 0.8
    assert history[0]["train_confidence_loss"] > 0.6
    # lambda is steered until L_c = -log c hovers at beta = 0.3 (DeVries & Taylor 2018, section 2) ...
    late = [row["train_confidence_loss"] for row in history[-5:]]
    assert abs(np.mean(late) - BUDGET) < 0.06, late
    # ... which here takes a higher price on asking than the start (0.1).
    assert history[-1]["lambda"] > 0.15


def test_confidence_is_higher_on_correct_predictions(trained):
    model, _, x, y = trained
    with torch.no_grad():
        logits, c = model(x)
    correct = logits.argmax(1) == y
    assert 0 < correct.sum() < len(y)
    assert c[correct].mean() > c[~correct].mean()


def test_a_run_is_repeatable_bit_for_bit():
    x, y = blobs(n=300)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LinearConfidence()
        history = train(model, x, y, epochs=2)
        runs.append((history, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.equal(a, b)


def test_confidence_cnn_is_built_from_config_and_predict_logits_takes_its_logits(repo_config):
    mcfg = repo_config["models"]["confidence"]
    assert mcfg["architecture"] == "confidence_cnn"
    assert mcfg["learned_confidence"] == {"lambda_init": 0.1, "budget": 0.3}  # the paper's values
    model = build_model(mcfg)
    assert isinstance(model, ConfidenceCNN)
    x = torch.rand(5, 1, 28, 28)
    logits = predict_logits(model, x, 2, torch.device("cpu"))
    torch.testing.assert_close(logits, model.eval()(x)[0])


def test_learned_confidence_settings_belong_to_the_confidence_architecture_only(repo_config):
    config = copy.deepcopy(repo_config)
    config["models"]["cnn"]["learned_confidence"] = {"lambda_init": 0.1, "budget": 0.3}
    with pytest.raises(ConfigError, match="models.cnn"):
        validate_config(config)
    config = copy.deepcopy(repo_config)
    del config["models"]["confidence"]["learned_confidence"]
    with pytest.raises(ConfigError, match="models.confidence"):
        validate_config(config)


def test_train_step_trains_the_confidence_model_on_real_digits(tmp_path, mnist_arrays):
    """The CLI train step dispatches on the method (learned_confidence); the history records lambda and L_c."""
    import pandas as pd
    import yaml

    from tempered.artifacts import read_checkpoint, write_arrays
    from tempered.config import REPO_ROOT
    from tempered.data.split import make_split
    from tempered.stages.train.steps import train_step

    images = tmp_path / "mnist.npz"
    write_arrays(images, mnist_arrays)
    split = tmp_path / "split.npz"
    write_arrays(split, make_split(5000, 0))
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({"models": {"confidence": {"epochs": 1, "limit_train": 600}},
                                      "evaluation": {"limit_eval": 200}}))
    train_step([str(REPO_ROOT / "config.yaml"), str(preset)], "confidence", 0, images, split,
               tmp_path / "model.pt", tmp_path / "history.csv")
    history = pd.read_csv(tmp_path / "history.csv")
    assert {"lambda", "train_confidence_loss", "mean_confidence", "val_accuracy"} <= set(history.columns)
    assert np.isfinite(history["lambda"]).all() and history["lambda"].iloc[0] != 0.1
    state, meta = read_checkpoint(tmp_path / "model.pt")
    assert "confidence.weight" in state and meta["model_config"]["architecture"] == "confidence_cnn"
