"""Adversarial training with a refreshed pool (tempered.adversarial_training; Szegedy et al. 2014, section 4.3)."""

import numpy as np
import pytest
import torch

from tempered.adversarial_training import AdversarialPool, refresh_pool, train_with_adversarial_pool
from tempered.models.szegedy import SoftmaxRegression
from tempered.training import train_classifier

SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
ATTACK = {"initial_c": 0.1, "search_steps": 4, "c_factor": 10.0, "max_iter": 30}
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
