"""Szegedy et al. 2014 MNIST models (tempered.models.szegedy) and AE pre-training (tempered.autoencoder)."""

import pytest
import torch

from tempered.autoencoder import pretrain_autoencoder, sparse_autoencoder_loss
from tempered.models.szegedy import (
    SZEGEDY_ARCHITECTURES,
    AutoencoderClassifier,
    SigmoidMLP,
    SoftmaxRegression,
    SparseAutoencoder,
)
from tempered.training import train_classifier

SGD = {"name": "sgd", "lr": 0.5, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    # Small batches: two threads only add contention on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("name", "params"), [
    ("fc10", 784 * 10 + 10),
    ("fc100_100_10", 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10),
    ("fc200_200_10", 784 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10),
    ("fc123_456_10", 784 * 123 + 123 + 123 * 456 + 456 + 456 * 10 + 10),
    ("ae400_10", (784 * 400 + 400) + (400 * 784 + 784) + 400 * 10 + 10),
])
def test_logit_shapes_and_parameter_counts(name, params):
    model = SZEGEDY_ARCHITECTURES[name]().eval()
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, 10)
    assert sum(p.numel() for p in model.parameters()) == params


def test_softmax_regression_penalty_by_hand():
    model = SoftmaxRegression(weight_decay=1e-2)
    with torch.no_grad():
        model.logits.weight.fill_(0.5)
        model.logits.bias.fill_(100.0)  # biases are not decayed
    # lambda * sum(w^2) / k, k = 10 units: 1e-2 * (7840 * 0.25) / 10
    assert model.weight_penalty().item() == pytest.approx(1e-2 * 7840 * 0.25 / 10)


def test_sigmoid_mlp_penalty_by_hand():
    model = SigmoidMLP(hidden=(100, 100), penalties=(1e-5, 1e-5, 1e-6))
    with torch.no_grad():
        model.hidden[0].weight.fill_(1.0)
        model.hidden[1].weight.fill_(2.0)
        model.logits.weight.fill_(3.0)
    expected = 1e-5 * 78400 / 100 + 1e-5 * 10000 * 4 / 100 + 1e-6 * 1000 * 9 / 10
    assert model.weight_penalty().item() == pytest.approx(expected)
    model.weight_penalty().backward()
    torch.testing.assert_close(model.logits.weight.grad, torch.full((10, 100), 2 * 1e-6 * 3.0 / 10))
    with pytest.raises(ValueError, match="one penalty per layer"):
        SigmoidMLP(hidden=(100, 100), penalties=(1e-5, 1e-6))


def test_autoencoder_classifier_penalises_only_its_softmax_layer():
    model = AutoencoderClassifier(weight_decay=1e-6)
    with torch.no_grad():
        model.logits.weight.fill_(2.0)
    assert model.weight_penalty().item() == pytest.approx(1e-6 * 4000 * 4 / 10)


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = SigmoidMLP(dropout=0.5)
    x = torch.rand(4, 1, 28, 28)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    with pytest.raises(ValueError):
        SoftmaxRegression(dropout=0.5)


def prototype_images(n: int, seed: int) -> torch.Tensor:
    """Images made of a few stroke-like prototypes, so there is structure to reconstruct."""
    g = torch.Generator().manual_seed(seed)
    prototypes = (torch.rand(5, 784, generator=g) > 0.8).float()
    weights = torch.rand(n, 5, generator=g)
    return (weights @ prototypes).clamp(0, 1).view(n, 1, 28, 28)


def test_autoencoder_pretraining_lowers_the_reconstruction_error():
    torch.manual_seed(1)
    autoencoder = SparseAutoencoder(hidden=64)
    x = prototype_images(256, seed=1)
    before = sparse_autoencoder_loss(autoencoder, x)
    history = pretrain_autoencoder(autoencoder, x, epochs=15, batch_size=32, lr=3e-3,
                                   generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    after = sparse_autoencoder_loss(autoencoder, x)
    assert len(history) == 15 and history[-1]["loss"] < history[0]["loss"]
    assert after["reconstruction"] < 0.4 * before["reconstruction"]
    assert after["loss"] < before["loss"]
    mean_code = autoencoder.encode(x).mean().item()
    assert mean_code < 0.25, "the sparsity penalty keeps the mean activation near rho = 0.05"


def test_frozen_encoder_does_not_move_while_the_classifier_trains():
    torch.manual_seed(2)
    autoencoder = SparseAutoencoder(hidden=64)
    x = prototype_images(128, seed=2)
    y = torch.randint(0, 10, (128,), generator=torch.Generator().manual_seed(2))
    model = AutoencoderClassifier(autoencoder)
    # Pre-training the frozen submodule works and leaves it frozen.
    pretrain_autoencoder(model.autoencoder, x, epochs=1, batch_size=32, lr=1e-3,
                         generator=torch.Generator().manual_seed(2), device=torch.device("cpu"))
    assert not any(p.requires_grad for p in model.autoencoder.parameters())
    encoder_before = {k: v.clone() for k, v in model.autoencoder.state_dict().items()}
    softmax_before = model.logits.weight.detach().clone()
    train_classifier(model, x, y, epochs=2, batch_size=32, optimizer_cfg=SGD, temperature=1.0,
                     generator=torch.Generator().manual_seed(2), device=torch.device("cpu"))
    for key, value in model.autoencoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key
    assert not torch.equal(model.logits.weight, softmax_before)
