import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch import nn

from tempered import paths
from tempered.config import REPO_ROOT, load_config
from tempered.data.ood_sets import NOISE_SETS, noise_images
from tempered.models.confidence_cnn import ConfidenceCNN
from tempered.ood.metrics import (
    aupr_in,
    aupr_out,
    auroc,
    bootstrap_interval,
    detection_error,
    fpr_at_tpr,
    misclassification_metrics,
    ood_metrics,
)
from tempered.ood.scores import energy, learned_confidence, learned_confidence_odin, msp, odin, score_batches
from tempered.stages.ood.steps import _Scorer
from tempered.stages.report.claims import _metrics_of, load_claims

# --- metrics -----------------------------------------------------------------------------------------------------


def sklearn_reference(scores_in, scores_out):
    labels = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    scores = np.r_[scores_in, scores_out]
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return {
        "fpr_at_95_tpr": fpr[np.argmax(tpr >= 0.95)],
        "detection_error": np.min(0.5 * (1 - tpr) + 0.5 * fpr),
        "auroc": roc_auc_score(labels, scores),
        "aupr_in": average_precision_score(labels, scores),
        "aupr_out": average_precision_score(1 - labels, -scores),
    }


@pytest.mark.parametrize("decimals", [None, 1], ids=["continuous", "ties"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ood_metrics_agree_with_scikit_learn(seed, decimals):
    rng = np.random.default_rng(seed)
    scores_in = rng.normal(1.0, 1.0, 700)
    scores_out = rng.normal(0.0, 1.5, 400)
    if decimals is not None:  # heavy ties within and across the two sets
        scores_in, scores_out = scores_in.round(decimals), scores_out.round(decimals)
    ours, reference = ood_metrics(scores_in, scores_out), sklearn_reference(scores_in, scores_out)
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name


def test_ood_metrics_on_a_hand_worked_case():
    scores_in, scores_out = [0.9, 0.8, 0.4], [0.7, 0.4, 0.1]
    # AUROC: of 9 (in, out) pairs, in wins 3 + 3 + 1 and ties once (0.4, 0.4): 7.5 / 9.
    assert auroc(scores_in, scores_out) == pytest.approx(7.5 / 9)
    # Keeping all three in-distribution samples needs threshold 0.4, which keeps 0.7 and 0.4 of the OOD ones.
    assert fpr_at_tpr(scores_in, scores_out) == pytest.approx(2 / 3)
    assert fpr_at_tpr(scores_in, scores_out, tpr=0.6) == 0.0  # threshold 0.8: TPR 2/3, FPR 0
    # Thresholds inf, .9, .8, .7, .4, .1 give 0.5(1 - TPR) + 0.5 FPR = 1/2, 1/3, 1/6, 1/3, 1/3, 1/2.
    assert detection_error(scores_in, scores_out) == pytest.approx(1 / 6)
    # Precision at each recall step (in positive): 1 at R=1/3, 1 at R=2/3, 3/5 at R=1 (0.4 ties an OOD sample).
    assert aupr_in(scores_in, scores_out) == pytest.approx(1 / 3 + 1 / 3 + (1 / 3) * (3 / 5))
    # OOD positive, ascending score: 0.1 (P=1, R=1/3), the 0.4 tie (P=2/3, R=2/3), 0.7 (P=3/4, R=1).
    assert aupr_out(scores_in, scores_out) == pytest.approx(1 / 3 + (1 / 3) * (2 / 3) + (1 / 3) * (3 / 4))


def test_metrics_at_the_extremes_and_on_tensors():
    separated = ood_metrics(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0]))
    assert separated == {"fpr_at_95_tpr": 0.0, "detection_error": 0.0, "auroc": 1.0, "aupr_in": 1.0,
                         "aupr_out": 1.0}
    same = np.zeros(10)
    assert auroc(same, same) == 0.5
    assert fpr_at_tpr(same, same) == 1.0
    assert detection_error(same, same) == 0.5
    with pytest.raises(ValueError, match="non-finite"):
        auroc([1.0, np.nan], [0.0])


def test_misclassification_metrics_put_the_errors_in_the_positive_class():
    rng = np.random.default_rng(3)
    correct = rng.random(600) < 0.8
    scores = np.where(correct, rng.beta(5, 1, 600), rng.beta(2, 2, 600)).round(2)  # with ties
    ours = misclassification_metrics(torch.from_numpy(scores), torch.from_numpy(correct))
    errors = (~correct).astype(int)
    fpr, tpr, _ = roc_curve(errors, -scores, drop_intermediate=False)
    assert ours["auroc"] == pytest.approx(roc_auc_score(errors, -scores), abs=1e-12)
    assert ours["auroc"] == pytest.approx(roc_auc_score(correct, scores), abs=1e-12)
    assert ours["aupr_err"] == pytest.approx(average_precision_score(errors, -scores), abs=1e-12)
    assert ours["aupr_succ"] == pytest.approx(average_precision_score(correct, scores), abs=1e-12)
    assert ours["fpr_at_95_tpr"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-12)
    assert ours["detection_error"] == pytest.approx(np.min(0.5 * (1 - tpr) + 0.5 * fpr), abs=1e-12)


def test_bootstrap_interval_brackets_the_point_and_is_seeded():
    rng = np.random.default_rng(4)
    scores_in, scores_out = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 200)
    point, low, high = bootstrap_interval(auroc, scores_in, scores_out, n_boot=200, seed=7)
    assert point == auroc(scores_in, scores_out)
    assert low < point < high
    assert 0.05 < high - low < 0.2  # sd of AUROC at these sizes is about 0.02
    assert bootstrap_interval(auroc, scores_in, scores_out, n_boot=200, seed=7) == (point, low, high)
    assert bootstrap_interval(auroc, scores_in, scores_out, n_boot=200, seed=8) != (point, low, high)
    point95, low95, high95 = bootstrap_interval(fpr_at_tpr, scores_in, scores_out, n_boot=200, seed=7)
    assert low95 <= point95 <= high95


# --- scores ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()


@pytest.fixture(scope="module")
def confidence_model():
    torch.manual_seed(0)
    return ConfidenceCNN(dropout=0.5).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def odin_one_by_one(model, x, temperature, eps, clamp=False):
    """ODIN written out per image, as in facebookresearch/odin: batch of one, mean loss, backward."""
    out = []
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        logits = model(xi)
        logits = logits[0] if isinstance(logits, tuple) else logits
        log_s = torch.log_softmax(logits / temperature, dim=1)
        (-log_s[0, logits.argmax()]).backward()
        x_tilde = xi.detach() - eps * torch.sign(xi.grad)
        if clamp:
            x_tilde = x_tilde.clamp(0, 1)
        with torch.no_grad():
            logits = model(x_tilde)
            logits = logits[0] if isinstance(logits, tuple) else logits
            out.append(torch.softmax(logits / temperature, dim=1).max())
    return torch.stack(out)


def confidence_odin_one_by_one(model, x, eps):
    out = []
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        (-torch.log(model(xi)[1])).sum().backward()
        with torch.no_grad():
            out.append(model(xi.detach() - eps * torch.sign(xi.grad))[1][0])
    return torch.stack(out)


def test_msp_and_energy_by_definition(linear_model, images):
    z = linear_model(images).detach()
    torch.testing.assert_close(msp(linear_model, images), F.softmax(z, 1).max(1).values)
    torch.testing.assert_close(msp(linear_model, images, temperature=10.0), F.softmax(z / 10, 1).max(1).values)
    torch.testing.assert_close(energy(linear_model, images), torch.logsumexp(z, 1))
    torch.testing.assert_close(energy(linear_model, images, temperature=2.0), 2.0 * torch.logsumexp(z / 2.0, 1))


@pytest.mark.parametrize("clamp", [False, True])
def test_odin_batched_equals_the_reference_loop(linear_model, confidence_model, images, clamp):
    for model in (linear_model, confidence_model):
        model.zero_grad(set_to_none=True)
        ours = odin(model, images, temperature=1000.0, eps=0.002, clamp=clamp)
        assert all(p.grad is None for p in model.parameters())  # gradients taken w.r.t. the input only
        torch.testing.assert_close(ours, odin_one_by_one(model, images, temperature=1000.0, eps=0.002, clamp=clamp))


def test_odin_step_raises_the_tempered_softmax_score_and_eps_zero_is_msp(linear_model, images):
    before = msp(linear_model, images, temperature=10.0)
    after = odin(linear_model, images, temperature=10.0, eps=0.001)
    assert (after > before).all()
    torch.testing.assert_close(odin(linear_model, images, temperature=10.0, eps=0.0), before)


def test_learned_confidence_scores(confidence_model, linear_model, images):
    c = learned_confidence(confidence_model, images)
    torch.testing.assert_close(c, confidence_model(images)[1].detach())
    stepped = learned_confidence_odin(confidence_model, images, eps=0.01)
    torch.testing.assert_close(stepped, confidence_odin_one_by_one(confidence_model, images, eps=0.01))
    assert (stepped > c).all()  # the step descends -log c
    with pytest.raises(TypeError, match="logits only"):
        learned_confidence(linear_model, images)


def test_score_batches_is_independent_of_the_batch_size(confidence_model, images):
    whole = odin(confidence_model, images, temperature=1000.0, eps=0.002)
    chunked = score_batches(odin, confidence_model, images, batch_size=4, device=torch.device("cpu"),
                            temperature=1000.0, eps=0.002)
    torch.testing.assert_close(chunked, whole)
    assert score_batches(msp, confidence_model, images[:0], 4, torch.device("cpu")).shape == (0,)


# --- the noise sets: each paper's own Gaussian noise ------------------------------------------------------------

NOISE = {"seed": 3, "size": 400, "gaussian_noise_unclipped": {"mean": 0.0, "std": 1.0},
         "gaussian_noise_clipped": {"mean": 0.5, "std": 1.0}}


def test_uniform_noise_is_seeded_and_in_range():
    uniform = noise_images("uniform_noise", NOISE)
    assert uniform.shape == (400, 1, 28, 28) and uniform.dtype == np.float32
    assert uniform.min() >= 0 and uniform.max() < 1
    np.testing.assert_array_equal(uniform, noise_images("uniform_noise", NOISE))
    assert not np.array_equal(uniform, noise_images("uniform_noise", {**NOISE, "seed": 4}))


def test_unclipped_gaussian_noise_is_hendrycks_and_gimpels_n01_as_drawn():
    x = noise_images("gaussian_noise_unclipped", NOISE)
    assert x.shape == (400, 1, 28, 28) and x.dtype == np.float32
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1.0) < 0.01  # 313,600 draws: standard errors ~0.002
    assert (x < 0).mean() > 0.45 and (x > 1).mean() > 0.14  # P(z < 0) = 0.5, P(z > 1) = 0.159: nothing clipped
    assert not ((x == 0) | (x == 1)).any()


def test_clipped_gaussian_noise_is_devries_and_taylors_n05_1_in_the_pixel_range():
    x = noise_images("gaussian_noise_clipped", NOISE)
    assert x.shape == (400, 1, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    # P(N(0.5, 1) < 0) = P(> 1) = 0.309: that much mass sits on each end; symmetric about 0.5.
    assert abs((x == 0).mean() - 0.309) < 0.01 and abs((x == 1).mean() - 0.309) < 0.01
    assert abs(x.mean() - 0.5) < 0.01


def test_each_noise_set_is_seeded_on_its_own_stream():
    for name in NOISE_SETS:
        np.testing.assert_array_equal(noise_images(name, NOISE), noise_images(name, NOISE))
        assert not np.array_equal(noise_images(name, NOISE), noise_images(name, {**NOISE, "seed": 4}))
    same_params = {**NOISE, "gaussian_noise_unclipped": NOISE["gaussian_noise_clipped"]}
    unclipped = noise_images("gaussian_noise_unclipped", same_params)
    clipped = noise_images("gaussian_noise_clipped", same_params)
    # Different streams: the clipped set is not the unclipped one clipped.
    assert not np.array_equal(np.clip(unclipped, 0, 1), clipped)
    # The clipped set keeps the images of the one Gaussian set there was before (stream 1 of the seed).
    old = np.clip(np.random.default_rng([3, 1]).normal(0.5, 1.0, (400, 1, 28, 28)), 0, 1).astype(np.float32)
    np.testing.assert_array_equal(clipped, old)
    # A set's mean and std are its own.
    shifted = noise_images("gaussian_noise_unclipped", {**NOISE, "gaussian_noise_clipped": {"mean": 3, "std": 2}})
    np.testing.assert_array_equal(shifted, noise_images("gaussian_noise_unclipped", NOISE))
    with pytest.raises(ValueError, match="unknown noise 'gaussian_noise'"):
        noise_images("gaussian_noise", NOISE)


@pytest.mark.parametrize("preset", [None, "quick"])
def test_config_runs_both_papers_gaussian_noise(preset):
    files = [REPO_ROOT / "config.yaml"] + ([REPO_ROOT / f"workflow/presets/{preset}.yaml"] if preset else [])
    ood = load_config(files)["ood"]
    assert {"gaussian_noise_unclipped", "gaussian_noise_clipped"} <= set(ood["datasets"])
    assert ood["noise"]["gaussian_noise_unclipped"] == {"mean": 0.0, "std": 1.0}
    assert ood["noise"]["gaussian_noise_clipped"] == {"mean": 0.5, "std": 1.0}


def test_each_papers_noise_claims_read_its_own_set():
    claims = load_claims(REPO_ROOT / paths.CLAIMS)
    read = {c["id"]: [m.key for m in _metrics_of(c)] for c in claims if "requires_stage" not in c}
    noise_keys = {cid: [k for k in keys if "gaussian_noise" in k] for cid, keys in read.items()}
    for cid, keys in noise_keys.items():
        for key in keys:
            assert "/gaussian_noise/" not in f"/{key}/", f"{cid} reads the old, ambiguous set"
            if cid.startswith("hendrycks."):
                assert "/gaussian_noise_unclipped/" in key, cid
            if cid.startswith("devries."):
                assert "/gaussian_noise_clipped/" in key, cid
    assert noise_keys["hendrycks.msp.gaussian"] == ["ood/gaussian_noise_unclipped/msp/auroc"]


def test_devries_claims_compare_with_the_standard_cnns_msp_on_the_same_set():
    claims = [c for c in load_claims(REPO_ROOT / paths.CLAIMS)
              if c["paper"] == "devries2018" and "versus" in c and "requires_stage" not in c]
    assert claims
    for claim in claims:
        ours, versus = _metrics_of(claim)
        assert ours.model == "confidence" and versus.model == "cnn", claim["id"]
        dataset = ours.key.split("/")[1]
        assert versus.key.split("/")[:3] == ["ood", dataset, "msp"], claim["id"]
        assert versus.key.rpartition("/")[2] == ours.key.rpartition("/")[2], claim["id"]
        assert versus.files([0]) == [paths.OOD_METRICS.format(model="cnn", seed=0)]
        assert "cnn" in claim["requires_config"]["ood.models"]


def test_unclipped_noise_reaches_odin_and_the_model_unclamped(linear_model):
    x = torch.from_numpy(noise_images("gaussian_noise_unclipped", {**NOISE, "size": 6}))
    scorer = _Scorer(linear_model, 4, torch.device("cpu"))
    ours = torch.from_numpy(scorer.score("odin", "noise", x, 1000.0, 0.002)).float()
    torch.testing.assert_close(ours, odin(linear_model, x, temperature=1000.0, eps=0.002, clamp=False))
    assert not torch.allclose(ours, odin(linear_model, x, temperature=1000.0, eps=0.002, clamp=True))
    logits = scorer.logits("noise", x)
    torch.testing.assert_close(logits, linear_model(x).detach())  # fed as drawn, no clipping or rescaling
