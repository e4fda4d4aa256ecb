import pytest
import torch
import torch.nn.functional as F

from tempered.data.arrays import subset
from tempered.data.split import make_split
from tempered.device import seed_everything
from tempered.models import build_model
from tempered.training import classification_metrics, predict_logits, train_classifier


@pytest.fixture(scope="module")
def small_data(mnist_arrays):
    split = make_split(5000, 0)
    train = subset(mnist_arrays, split, "train", limit=2000)
    val = subset(mnist_arrays, split, "val", limit=1000)
    return train, val


def fit(model_cfg, data, seed=0, temperature=1.0, epochs=2):
    generator = seed_everything(seed)
    model = build_model(model_cfg)
    (x, y), val = data
    history = train_classifier(model, x, y, epochs=epochs, batch_size=64, optimizer_cfg=model_cfg["optimizer"],
                               temperature=temperature, generator=generator, device=torch.device("cpu"),
                               monitor=val, monitor_name="val")
    return model, history


@pytest.fixture(scope="module")
def cnn_cfg(repo_config):
    return {**repo_config["models"]["cnn"], "optimizer": {**repo_config["models"]["cnn"]["optimizer"], "lr": 0.05}}


def test_training_on_real_mnist_beats_chance_by_far(cnn_cfg, small_data):
    model, history = fit(cnn_cfg, small_data, epochs=3)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_accuracy"] > 0.8, history


def test_same_seed_gives_identical_weights_and_a_different_seed_does_not(cnn_cfg, small_data):
    a, _ = fit(cnn_cfg, small_data, seed=1, epochs=1)
    b, _ = fit(cnn_cfg, small_data, seed=1, epochs=1)
    c, _ = fit(cnn_cfg, small_data, seed=2, epochs=1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.state_dict()["logits.weight"], c.state_dict()["logits.weight"])


def test_loss_is_computed_on_softmax_of_logits_over_temperature(cnn_cfg, small_data):
    """At T, the first step's gradient equals that of CE(z/T): train one step by hand and compare."""
    (x, y), _ = small_data
    cfg = {**cnn_cfg, "dropout": 0.0}
    seed_everything(0)
    model = build_model(cfg)
    reference = build_model(cfg)
    reference.load_state_dict(model.state_dict())
    opt = cfg["optimizer"]
    optimizer = torch.optim.SGD(reference.parameters(), lr=opt["lr"], momentum=opt["momentum"])
    # One batch holding all 64 samples, so the shuffle order cannot matter.
    train_classifier(model, x[:64], y[:64], epochs=1, batch_size=64, optimizer_cfg=cfg["optimizer"],
                     temperature=20.0, generator=torch.Generator().manual_seed(7), device=torch.device("cpu"))
    loss = F.cross_entropy(reference(x[:64]) / 20.0, y[:64])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for (name, p), q in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, msg=name)


def test_divergence_is_an_error_not_a_result(cnn_cfg, small_data):
    cfg = {**cnn_cfg, "optimizer": {**cnn_cfg["optimizer"], "lr": 1e6}}
    with pytest.raises(FloatingPointError, match="diverged"):
        fit(cfg, small_data, epochs=2)


def test_metrics_known_answer():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 0])
    metrics = classification_metrics(logits, labels)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    # -log softmax for the true class 0 is softplus(z1 - z0).
    expected_nll = sum(F.softplus(torch.tensor(d)) for d in (-2.0, 1.0, -3.0)) / 3
    assert metrics["nll"] == pytest.approx(expected_nll.item(), rel=1e-6)


def test_predict_logits_is_batch_size_invariant_and_in_eval_mode(cnn_cfg, small_data):
    seed_everything(0)
    model = build_model(cnn_cfg)
    x = small_data[1][0][:50]
    torch.testing.assert_close(predict_logits(model, x, 7, torch.device("cpu")),
                               predict_logits(model, x, 50, torch.device("cpu")))
