"""Hendrycks & Gimpel 2017's MNIST network (tempered.models.gelu_mlp): their shapes, initialisation and penalty, and
that their recipe learns real digits."""

import math

import numpy as np
import pytest
import torch

from tempered.models import build_model
from tempered.models.gelu_mlp import GeluMLP
from tempered.training.methods import train_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_three_hidden_layers_of_256_gelu_units():
    model = build_model({"architecture": "gelu_mlp", "dropout": 0.0}).eval()
    assert isinstance(model, GeluMLP)
    assert model(torch.rand(4, 1, 28, 28)).shape == (4, 10)
    assert [layer.out_features for layer in model.hidden] == [256, 256, 256]
    assert sum(p.numel() for p in model.parameters()) == 784 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 10 + 10
    # Their gelu_fast: the tanh approximation.
    x = torch.linspace(-3, 3, 13)
    fast = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    torch.testing.assert_close(model.activation(x), fast)


def test_initialisation_unit_norm_columns_over_their_gains():
    torch.manual_seed(0)
    model = GeluMLP()
    # Each output unit's incoming weights have norm 1 / sqrt(gain_in + gain_out): 1 + 0.425 for the first layer,
    # 0.425 + 0.425 between GELU layers, 0.425 + 1 for the logits; biases start at 0.
    expected = [1 / math.sqrt(1.425), 1 / math.sqrt(0.85), 1 / math.sqrt(0.85), 1 / math.sqrt(1.425)]
    for layer, norm in zip([*model.hidden, model.logits], expected, strict=True):
        torch.testing.assert_close(layer.weight.norm(dim=1), torch.full((layer.out_features,), norm))
        assert not layer.bias.any()


def test_penalty_is_their_l2_loss_of_the_hidden_weights_only():
    model = GeluMLP(weight_decay=1e-5)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    hidden_weights = 784 * 256 + 2 * 256 * 256  # biases and the logits layer are not decayed
    torch.testing.assert_close(model.weight_penalty(), torch.tensor(1e-5 * 0.25 * hidden_weights / 2))
    with pytest.raises(ValueError, match="no dropout"):
        GeluMLP(dropout=0.5)


def test_config_gives_their_penalty(repo_config):
    """config.yaml, not the constructor's default, sets the penalty the pipeline trains hendrycks_mlp with."""
    model = build_model(repo_config["models"]["hendrycks_mlp"])
    assert model.weight_decay == 1e-5
    changed = {**repo_config["models"]["hendrycks_mlp"], "architecture_args": {"weight_decay": 3e-4}}
    assert build_model(changed).weight_decay == 3e-4


def test_their_recipe_learns_digits(mnist_arrays):
    torch.manual_seed(0)
    x = torch.from_numpy(mnist_arrays["x_train"][:5000].astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(mnist_arrays["y_train"][:5000].astype(np.int64))
    xt = torch.from_numpy(mnist_arrays["x_test"][:1000].astype(np.float32) / 255).unsqueeze(1)
    yt = torch.from_numpy(mnist_arrays["y_test"][:1000].astype(np.int64))
    model = GeluMLP()
    adam = {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "lr_drops": [0.66], "lr_drop_factor": 0.1}
    train_classifier(model, x, y, epochs=5, batch_size=128, optimizer_cfg=adam, temperature=1.0,
                     generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    with torch.no_grad():
        accuracy = (model.eval()(xt).argmax(1) == yt).float().mean().item()
    assert accuracy > 0.88, accuracy
