import pytest
import torch
import torch.nn.functional as F

from tempered.data.arrays import subset
from tempered.data.split import make_split
from tempered.device import seed_everything
from tempered.models import build_model
from tempered.training.inference import classification_metrics, predict_logits
from tempered.training.methods import train_classifier

# One torch thread (tests/conftest.py): small CNNs trained beside the smoke builds without oversubscribing the cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_pgd_perturbation_stays_in_the_ball_and_restores_the_mode(cnn_cfg, small_data):
    from tempered.training.madry_pgd import pgd_perturbation

    (x, y), _ = small_data
    model = build_model(cnn_cfg).train()
    cfg = {"eps": 0.1, "alpha": 0.05, "steps": 3, "random_start": True, "warmup_epochs": 1}
    perturb = pgd_perturbation(cfg, 1.0, torch.Generator().manual_seed(0), batches_per_epoch=2)
    first = perturb(model, x[:32], y[:32])
    assert (first - x[:32]).abs().max() <= 0.05 + 1e-6  # the first of two warm-up batches: half of eps
    x_adv = perturb(model, x[:32], y[:32])
    assert model.training  # the attack ran in eval mode and gave the model back as it found it
    assert (x_adv - x[:32]).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert F.cross_entropy(model.eval()(x_adv), y[:32]) > F.cross_entropy(model(x[:32]), y[:32])


def test_training_with_perturb_trains_on_the_perturbed_batches(repo_config, small_data):
    """A perturbation that returns its input gives bit-identical training; one that blanks every image gives
    the model one output per batch, so it stays near chance where the same steps on the real digits do not.
    Softmax regression (FC10), which learns MNIST within one epoch."""
    (x, y), val = small_data
    # FC10 trains by full-batch L-BFGS in the config; the perturbation hook belongs to the minibatch loop.
    cfg = {**repo_config["models"]["fc10_1em4"], "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9,
                                                               "nesterov": False, "weight_decay": 0.0}}

    def train(perturb):
        generator = seed_everything(3)
        model = build_model(cfg)
        return train_classifier(model, x, y, epochs=1, batch_size=64, optimizer_cfg=cfg["optimizer"],
                                temperature=1.0, generator=generator, device=torch.device("cpu"), monitor=val,
                                monitor_name="val", perturb=perturb)

    plain = train(None)
    assert train(lambda model, xb, yb: xb) == plain
    blind = train(lambda model, xb, yb: torch.zeros_like(xb))
    # One class per batch of 64: about 0.1 on average; 0.25 would need batches a quarter one digit.
    assert blind[0]["train_accuracy"] < 0.25 < 0.7 < plain[0]["train_accuracy"]
    assert blind[0]["val_accuracy"] < 0.25 < 0.7 < plain[0]["val_accuracy"]
