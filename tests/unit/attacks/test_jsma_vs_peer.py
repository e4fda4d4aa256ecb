"""Our JSMA against torchattacks' on one small Papernot CNN trained on real MNIST digits: the same images,
targets, theta and budget, every result judged by our model and our L0 (bench/attacks_vs_peers.py does the
same at full size, with ART too). The Makefile's test setup installs torchattacks --no-deps
(requirements-bench.txt says why); a missing peer fails the test instead of skipping it."""

import numpy as np
import pytest
import torch
import torchattacks
from torch import nn

from tempered.attacks.common import attack_succeeded, l0_distortion
from tempered.attacks.jsma import JSMA
from tempered.config import REPO_ROOT, load_config
from tempered.models import build_model
from tempered.training.methods import train_classifier

TRAIN, EPOCHS, ATTACKED = 6000, 3, 60


@pytest.fixture(scope="module")
def cnn_and_digits(mnist_arrays):
    """A 3-epoch Papernot CNN (first 6000 training digits, seed 0) and the first 60 test digits it classifies
    correctly, with target (y + 1) mod 10."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = load_config([REPO_ROOT / "config.yaml"])["models"]["cnn"]
    x = torch.from_numpy(mnist_arrays["x_train"][:TRAIN].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(mnist_arrays["y_train"][:TRAIN].astype(np.int64))
    torch.manual_seed(0)
    model = build_model(cfg)
    train_classifier(model, x, y, epochs=EPOCHS, batch_size=cfg["batch_size"],
                     optimizer_cfg={**cfg["optimizer"], "lr": 0.05}, temperature=1.0,
                     generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x_test = torch.from_numpy(mnist_arrays["x_test"][:200].astype(np.float32) / 255.0).unsqueeze(1)
    y_test = torch.from_numpy(mnist_arrays["y_test"][:200].astype(np.int64))
    with torch.no_grad():
        correct = model(x_test).argmax(1) == y_test
    # torchattacks searches only features below 0.99, we (like cleverhans) every feature below 1: on digits whose
    # pixels at 0.99 or above are set to 1 the two domains are the same, so the comparison is of the attacks.
    x_test = torch.where(x_test >= 0.99, torch.ones_like(x_test), x_test)
    x_test, y_test = x_test[correct][:ATTACKED], y_test[correct][:ATTACKED]
    yield model, x_test, y_test, (y_test + 1) % 10
    torch.set_num_threads(threads)


def test_jsma_succeeds_at_least_as_often_as_torchattacks(cnn_and_digits):
    model, x, labels, target = cnn_and_digits
    ours = JSMA(theta=1.0, gamma=0.145)
    pairs = ours.max_iterations(x[0].numel())  # 56: floor(784 * 0.145 / 2)
    with torch.no_grad():
        result = ours.attack(model, x, labels, target)
    # The same budget of pairs: torchattacks takes ceil(|X| * gamma / 2) iterations (57 at gamma=14.5%, up to 114
    # features, beyond gamma * |X|), so it gets the gamma whose ceiling is our floor.
    peer = torchattacks.JSMA(nn.Sequential(model, nn.Softmax(dim=1)).eval(), theta=1.0,
                             gamma=(2 * pairs - 1) / x[0].numel())
    peer.set_mode_targeted_by_function(lambda images, labels: target, quiet=True)
    x_peer = peer(x, labels)
    with torch.no_grad():
        peer_success = attack_succeeded(model(x_peer), labels, target)
    assert l0_distortion(x, x_peer).max() <= 2 * pairs
    assert result.success_rate >= peer_success.float().mean().item(), (
        f"ours {result.success_rate:.3f} at mean L0 {result.mean_distortion:.1f}, torchattacks "
        f"{peer_success.float().mean():.3f} at {l0_distortion(x, x_peer)[peer_success].mean():.1f}")
