"""Song et al. 2019's Fashion-MNIST CNN (tempered.models.song_cnn) and the optimiser it trains with (Adam with
learning-rate drops, tempered.training.loop), on real Fashion-MNIST images."""

import copy
import math

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from tempered.config import REPO_ROOT, ConfigError, load_config, validate_config
from tempered.data.sources import fetch_dataset
from tempered.device import seed_everything
from tempered.models import build_model
from tempered.models.song_cnn import SongCNN
from tempered.training.inference import classification_metrics, predict_logits
from tempered.training.loop import epoch_learning_rates, make_optimizer
from tempered.training.methods import train_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conv(cin: int, cout: int) -> int:
    return 3 * 3 * cin * cout  # no bias: the authors' _conv is a bare conv2d


@pytest.mark.parametrize("width", [1, 16])
def test_the_authors_layers_at_any_width(width):
    """Six 3x3 convolutions (16w, 16w, 16w/2, 32w, 32w, 32w/2), fc200, fc10: the parameters of the authors'
    model (width_num 16: 12.1M; convolutions without bias), and 28x28 -> 7x7 by the two stride-2 layers."""
    n, w = 16 * width, 32 * width
    expected = (conv(1, n) + 2 * conv(n, n) + conv(n, w) + 2 * conv(w, w) + (w * 7 * 7 * 200 + 200)
                + (200 * 10 + 10))
    model = SongCNN(width=width).eval()
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.features(torch.rand(2, 1, 28, 28)).shape == (2, w, 7, 7)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_weight_penalty_is_half_lambda_times_the_squared_weights_without_biases():
    model = SongCNN(width=1, weight_decay=2e-6)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    assert model.weight_penalty().item() == pytest.approx(2e-6 / 2 * 0.25 * weights, rel=1e-6)
    assert SongCNN(width=1).weight_penalty().item() == 0.0


def test_initial_weights_follow_the_authors_scales():
    torch.manual_seed(0)
    model = SongCNN(width=4)
    wide = model.features[6]  # conv3: 64 -> 128 channels
    assert wide.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 128)), rel=0.05)
    fc = model.penultimate[1]
    assert fc.weight.abs().max().item() <= math.sqrt(3 / fc.in_features)
    assert all(m.bias.abs().sum() == 0 for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_config_refuses_dropout_and_an_enabled_fashion_model(repo_config):
    cfg = copy.deepcopy(repo_config)
    cfg["models"]["song_fmnist"]["dropout"] = 0.5
    with pytest.raises(ConfigError, match="models.song_fmnist.dropout: song_cnn has no dropout"):
        validate_config(cfg)
    cfg = copy.deepcopy(repo_config)
    cfg["models"]["song_fmnist"]["enabled"] = True
    with pytest.raises(ConfigError, match="models.song_fmnist.dataset: fashion_mnist models train only as "
                                          "membership-inference targets"):
        validate_config(cfg)


def test_learning_rate_drops_at_the_authors_fractions_of_training():
    """Adam at 1e-4, tenfold drops at 50k and 65k of 80k steps: over 133 epochs, epoch e (0-based) has dropped
    once from e >= 0.625 * 133 = 83.1, twice from e >= 0.8125 * 133 = 108.1."""
    rates = epoch_learning_rates({"lr": 1e-4, "lr_drops": [0.625, 0.8125], "lr_drop_factor": 0.1}, 133)
    assert len(rates) == 133
    assert set(rates[:84]) == {1e-4}
    assert rates[84:109] == pytest.approx([1e-5] * 25) and rates[109:] == pytest.approx([1e-6] * 24)
    assert epoch_learning_rates({"lr": 0.1}, 3) == [0.1, 0.1, 0.1]  # no drops: SGD's rate, unchanged
    assert isinstance(make_optimizer([torch.zeros(1, requires_grad=True)],
                                     {"name": "adam", "lr": 1e-3, "weight_decay": 0.0}), torch.optim.Adam)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; known: sgd, adam"):
        make_optimizer([torch.zeros(1, requires_grad=True)], {"name": "rmsprop"})


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """2,000 real Fashion-MNIST training images and 1,000 test images, through the pipeline's own fetch."""
    cfg = load_config([REPO_ROOT / "config.yaml"])["data"]["fashion_mnist"]
    raw = fetch_dataset("fashion_mnist", cfg, tmp_path_factory.mktemp("fashion")).arrays

    def images(name: str, n: int) -> torch.Tensor:
        return torch.from_numpy(raw[name][:n].astype(np.float32) / 255.0).unsqueeze(1)

    def labels(name: str, n: int) -> torch.Tensor:
        return torch.from_numpy(raw[name][:n].astype(np.int64))

    return ((images("train-images-idx3-ubyte", 2000), labels("train-labels-idx1-ubyte", 2000)),
            (images("t10k-images-idx3-ubyte", 1000), labels("t10k-labels-idx1-ubyte", 1000)))


def test_the_narrow_model_learns_fashion_mnist_with_adam_and_its_drops(repo_config, fashion):
    """Width 1, Adam at 1e-3 with one drop halfway through 4 epochs: far above chance (10%) on held-out test images,
    and the rate each epoch ran at is the schedule's."""
    (x, y), (x_test, y_test) = fashion
    cfg = {**repo_config["models"]["song_fmnist"], "architecture_args": {"width": 1, "weight_decay": 2e-6},
           "optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "lr_drops": [0.5], "lr_drop_factor": 0.1}}
    model = build_model(cfg)
    seen = []  # the rate of every optimiser step, as the step runs
    hook = register_optimizer_step_pre_hook(lambda optimizer, *_: seen.append(optimizer.param_groups[0]["lr"]))
    try:
        history = train_classifier(model, x, y, epochs=4, batch_size=100, optimizer_cfg=cfg["optimizer"],
                                   temperature=1.0, generator=seed_everything(0), device=torch.device("cpu"))
    finally:
        hook.remove()
    assert len(history) == 4
    per_epoch = len(seen) // 4
    assert seen == [1e-3] * (2 * per_epoch) + [pytest.approx(1e-4)] * (2 * per_epoch)
    accuracy = classification_metrics(predict_logits(model, x_test, 500, torch.device("cpu")), y_test)["accuracy"]
    assert accuracy > 0.6, accuracy
