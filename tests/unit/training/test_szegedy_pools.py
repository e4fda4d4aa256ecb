"""Adversarial training with refreshed pools (tempered.training.szegedy_pools; Szegedy et al. 2014, section 4.3)."""

import numpy as np
import pytest
import torch

from tempered.models.szegedy import SigmoidMLP, SoftmaxRegression
from tempered.training import szegedy_pools
from tempered.training.methods import train_classifier, train_with_adversarial_pool
from tempered.training.szegedy_pools import (
    AdversarialPool,
    layer_output,
    mixed_batch_loss,
    network_above,
    pool_layers,
    refresh_pool,
)

SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
ATTACK = {"initial_c": 0.1, "search_steps": 4, "c_factor": 10.0, "max_iter": 30}
CPU = torch.device("cpu")


# One torch thread (tests/conftest.py): tiny batches, and bit-stable results beside a build.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits(mnist_arrays):
    x = torch.from_numpy(mnist_arrays["x_train"][:600].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(mnist_arrays["y_train"][:600].astype(np.int64))
    return x, y


def test_pool_appends_until_full_then_replaces_and_samples_only_filled_entries():
    pool = AdversarialPool(4, (1, 2, 2), CPU)
    g = torch.Generator().manual_seed(0)
    assert len(pool.sample(3, g)[0]) == 0
    pool.add(torch.full((3, 1, 2, 2), 1.0), torch.tensor([1, 1, 1]), g)
    assert pool.size == 3
    x, y = pool.sample(50, g)
    assert x.shape == (50, 1, 2, 2) and torch.all(y == 1) and torch.all(x == 1.0)  # slot 4 (zeros) never drawn
    pool.add(torch.full((3, 1, 2, 2), 2.0), torch.tensor([2, 2, 2]), g)
    assert pool.size == 4
    # One new entry filled the last slot; the other two replaced two distinct old ones.
    assert int((pool.y == 2).sum()) == 3 and int((pool.y == 1).sum()) == 1


def test_refresh_adds_only_successful_examples_with_their_true_labels(digits):
    x, y = digits
    torch.manual_seed(0)
    model = SoftmaxRegression(weight_decay=1e-4)
    train_classifier(model, x, y, epochs=3, batch_size=64, optimizer_cfg=SGD, temperature=1.0,
                     generator=torch.Generator().manual_seed(0), device=CPU)
    pool = AdversarialPool(100, (1, 28, 28), CPU)
    tried, added = refresh_pool(pool, model, x, y, 20, ATTACK, torch.Generator().manual_seed(1))
    assert tried == 20 and 0 < added <= 20 and pool.size == added
    stored = pool.x[:pool.size]
    assert stored.min() >= 0 and stored.max() <= 1
    with torch.no_grad():
        predicted = model(stored).argmax(1)
    # Every pool entry fools the model it was made for: its prediction is not the stored (true) label.
    assert torch.all(predicted != pool.y[:pool.size])
    # The labels are the true labels of training images: each stored image is close to one with that label.
    nearest = torch.cdist(stored.flatten(1), x.flatten(1)).argmin(1)
    assert torch.equal(y[nearest], pool.y[:pool.size])


def test_training_on_the_pool_is_seeded_and_learns_the_pool(digits):
    x, y = digits
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SoftmaxRegression(weight_decay=1e-4)
        history = train_with_adversarial_pool(
            model, x, y, epochs=3, batch_size=64, optimizer_cfg=SGD, generator=torch.Generator().manual_seed(0),
            device=CPU, pool_size=200, refresh_every=2, refresh_size=16, mix_size=16, seed=3, attack=ATTACK,
            monitor=(x[:100], y[:100]), monitor_name="check")
        runs.append((model.logits.weight.detach().clone(), history))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    history = runs[0][1]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["pool_size"] > 0 and 0 < history[-1]["pool_attack_success"] <= 1
    assert {"check_nll", "check_accuracy", "train_loss", "train_accuracy"} <= set(history[-1])
    assert history[-1]["train_accuracy"] > 0.7


def tiny_mlp() -> SigmoidMLP:
    torch.manual_seed(0)
    return SigmoidMLP(hidden=(32, 16), penalties=(1e-5, 1e-5, 1e-6))


@pytest.fixture(scope="module")
def per_layer_run(digits):
    """A tiny FC32-16-10 adversarially trained for one epoch on 300 digits with a pool at every layer.

    Returns the model, its history and the pools the training loop made (recorded as they are built).
    """
    x, y = digits
    pools = []

    class RecordedPool(AdversarialPool):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pools.append(self)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = tiny_mlp()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(szegedy_pools, "AdversarialPool", RecordedPool)
        history = train_with_adversarial_pool(
            model, x[:300], y[:300], epochs=1, batch_size=50, optimizer_cfg=SGD,
            generator=torch.Generator().manual_seed(0), device=CPU, pool_size=100, refresh_every=2, refresh_size=8,
            mix_size=8, seed=3, attack=ATTACK, layers=None)
    torch.set_num_threads(threads)
    return model, history, pools


def test_layers_of_a_sigmoid_mlp_and_the_network_above_each_compose_to_the_whole_network(digits):
    x, _ = digits
    model = tiny_mlp().eval()
    assert pool_layers(model) == ["input", "hidden1", "hidden2"]
    assert pool_layers(SoftmaxRegression()) == ["input"]
    with torch.no_grad():
        whole = model(x[:20])
        for layer in pool_layers(model):
            assert torch.allclose(network_above(model, layer)(layer_output(model, x[:20], layer)), whole, atol=1e-6)
    with pytest.raises(ValueError, match="hidden3"):
        network_above(model, "hidden3")


def test_per_layer_training_fills_a_pool_at_every_layer_with_examples_of_its_width_in_the_unit_box(per_layer_run):
    _, history, pools = per_layer_run
    (row,) = history
    layers = ("input", "hidden1", "hidden2")
    assert [pool.x.shape[1:] for pool in pools] == [(1, 28, 28), (32,), (16,)]
    for layer, pool in zip(layers, pools, strict=True):
        assert pool.size > 0 and row[f"pool_size_{layer}"] == pool.size
        assert 0 < row[f"pool_attack_success_{layer}"] <= 1
        stored = pool.x[:pool.size]
        assert stored.min() >= 0 and stored.max() <= 1
    assert row["pool_size"] == sum(row[f"pool_size_{layer}"] for layer in layers)
    assert np.isfinite(row["train_loss"])


@pytest.mark.parametrize("layer", ["hidden1", "hidden2"])
def test_a_hidden_layers_refresh_stores_examples_that_fool_the_network_above_it(per_layer_run, digits, layer):
    model, _, _ = per_layer_run
    x, y = digits
    pool = AdversarialPool(50, tuple(layer_output(model, x[:1], layer).shape[1:]), CPU)
    tried, added = refresh_pool(pool, model, x, y, 12, ATTACK, torch.Generator().manual_seed(1), layer=layer)
    assert tried == 12 and 0 < added <= 12 and pool.size == added
    stored = pool.x[:pool.size]
    with torch.no_grad():
        predicted = network_above(model, layer)(stored).argmax(1)
    # Each entry fools the network above its layer, which calls it anything but its stored (true) label.
    assert torch.all(predicted != pool.y[:pool.size])


@pytest.mark.parametrize(("layer", "level"), [("hidden1", 1), ("hidden2", 2)])
def test_a_hidden_layers_pool_trains_only_the_layers_above_it(per_layer_run, digits, layer, level):
    model, _, _ = per_layer_run
    x, y = digits
    pool = AdversarialPool(50, tuple(layer_output(model, x[:1], layer).shape[1:]), CPU)
    refresh_pool(pool, model, x, y, 12, ATTACK, torch.Generator().manual_seed(2), layer=layer)
    assert pool.size > 0
    model.train()
    model.zero_grad(set_to_none=True)
    loss, _ = mixed_batch_loss(model, x[:0], y[:0], {layer: (pool.x[:pool.size], pool.y[:pool.size])})
    loss.backward()
    at_or_below = [p for hidden in model.hidden[:level] for p in hidden.parameters()]
    above = [p for hidden in model.hidden[level:] for p in hidden.parameters()] + list(model.logits.parameters())
    assert all(p.grad is None or not p.grad.any() for p in at_or_below)
    assert all(p.grad is not None and p.grad.any() for p in above)
    # The same check does see a gradient reach the first layer from input-level examples.
    model.zero_grad(set_to_none=True)
    loss, _ = mixed_batch_loss(model, x[:0], y[:0], {"input": (x[:8], y[:8])})
    loss.backward()
    assert all(p.grad is not None and p.grad.any() for p in model.hidden[0].parameters())
    model.eval()


def test_pool_layers_must_exist_and_be_distinct(digits):
    x, y = digits
    for layers in (["hidden1"], ["input", "input"], []):
        with pytest.raises(ValueError):
            train_with_adversarial_pool(
                SoftmaxRegression(), x[:64], y[:64], epochs=1, batch_size=64, optimizer_cfg=SGD,
                generator=torch.Generator().manual_seed(0), device=CPU, pool_size=10, refresh_every=1,
                refresh_size=2, mix_size=2, seed=0, attack=ATTACK, layers=layers)
