"""Membership-inference building blocks: scores by hand, metrics against scikit-learn and a hand-worked case,
threshold fitting on synthetic data, the likelihood-ratio score against its closed form, and a memorising
model on real MNIST that the attacks must catch (and a model that never saw the members, which they must not)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve

from tempered.ood.metrics import auroc
from tempered.privacy import lira, scores
from tempered.privacy.metrics import advantage, decision_accuracy, score_metrics, tpr_at_fpr
from tempered.privacy.thresholds import best_threshold, fit_class_thresholds, predict_members

# One torch thread (tests/conftest.py): tiny models, trained beside the smoke builds without oversubscribing.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_modified_entropy_by_hand():
    p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    logits = torch.log(p)
    mentr = -0.3 * math.log(0.7) - (0.2 * math.log(0.8) + 0.1 * math.log(0.9))
    assert scores.modified_entropy(logits, torch.tensor([0])).item() == pytest.approx(-mentr)
    # Confidently wrong: entropy calls it a member, modified entropy does not.
    wrong = torch.log(torch.tensor([[0.01, 0.98, 0.01]], dtype=torch.float64))
    assert scores.modified_entropy(wrong, torch.tensor([0])) < scores.modified_entropy(logits, torch.tensor([0]))
    assert scores.entropy(wrong, torch.tensor([0])) > scores.entropy(logits, torch.tensor([0]))


def test_loss_and_confidence_agree_with_their_definitions():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    labels = torch.arange(50) % 10
    p_y = torch.softmax(logits, 1)[torch.arange(50), labels]
    assert torch.allclose(scores.confidence(logits, labels), p_y)
    assert torch.allclose(scores.loss(logits, labels), torch.log(p_y))


def test_temperature_scaling_cannot_move_the_correctness_attack():
    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(1)) * 3
    labels = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(2))
    for t in (0.1, 1.7, 50.0):
        assert torch.equal(scores.correctness(logits / t, labels), scores.correctness(logits, labels))
    assert not torch.allclose(scores.confidence(logits / 1.7, labels), scores.confidence(logits, labels))


def test_advantage_and_tpr_at_fpr_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(0.5, 1, 300), rng.normal(0, 1, 400)
    y = np.r_[np.ones(300), np.zeros(400)]
    fpr, tpr, _ = roc_curve(y, np.r_[members, nonmembers], drop_intermediate=False)
    assert advantage(members, nonmembers) == pytest.approx(np.max(tpr - fpr))
    for level in (0.001, 0.01, 0.1):
        assert tpr_at_fpr(members, nonmembers, level) == pytest.approx(tpr[fpr <= level].max())


def test_tpr_at_fpr_by_hand():
    members, nonmembers = [0.9, 0.8, 0.3], [0.85, 0.2, 0.1, 0.05]
    assert tpr_at_fpr(members, nonmembers, 0.0) == pytest.approx(1 / 3)   # t = 0.9
    assert tpr_at_fpr(members, nonmembers, 0.2) == pytest.approx(1 / 3)   # t = 0.8 costs FPR 1/4
    assert tpr_at_fpr(members, nonmembers, 0.25) == pytest.approx(1.0)   # t = 0.3: all members, one non-member
    assert decision_accuracy([True, True, False], [False, True, False, False]) == pytest.approx(0.5 * (2 / 3 + 3 / 4))


def test_score_metrics_carry_bootstrap_intervals():
    rng = np.random.default_rng(1)
    out = score_metrics(rng.normal(1, 1, 200), rng.normal(0, 1, 200), n_boot=50, level=0.95, seed=0)
    assert out["auroc_low"] <= out["auroc"] <= out["auroc_high"]
    assert set(out) >= {"advantage", "tpr_at_0.001_fpr", "tpr_at_0.01_fpr_high"}


def test_threshold_fitting_recovers_a_known_threshold():
    rng = np.random.default_rng(2)
    labels_m, labels_n = rng.integers(0, 2, 2000), rng.integers(0, 2, 2000)
    cut = np.array([0.3, 0.7])  # class 0 separates at 0.3, class 1 at 0.7
    members = cut[labels_m] + rng.uniform(0, 0.3, 2000)
    nonmembers = cut[labels_n] - rng.uniform(0, 0.3, 2000)
    fitted = fit_class_thresholds(members, labels_m, nonmembers, labels_n, n_classes=2)
    assert fitted == pytest.approx(cut, abs=0.01)
    assert predict_members(members, labels_m, fitted).all() and not predict_members(nonmembers, labels_n, fitted).any()
    assert best_threshold([1.0], [0.0]) == 1.0


def test_logit_confidence_matches_its_definition_and_stays_finite():
    logits = torch.tensor([[2.0, 0.5, -1.0], [100.0, 0.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0])
    phi = lira.logit_confidence(logits, labels)
    p = torch.softmax(logits[0], 0)[0].item()
    assert phi[0].item() == pytest.approx(math.log(p / (1 - p)))
    assert phi[1].item() == pytest.approx(100.0 - math.log(2.0))


def test_likelihood_ratio_scores_match_the_closed_form():
    # Three shadows per side with known per-sample mean and sample standard deviation 1.
    mu_out, mu_in = np.array([0.0, 2.0]), np.array([3.0, 4.0])
    spread = np.array([[-1.0], [0.0], [1.0]])
    out_phis, in_phis = mu_out + spread, mu_in + spread
    x = np.array([1.5, 2.5])
    assert lira.offline_scores(x, out_phis, global_variance=False) == pytest.approx(x - mu_out)
    expected = -0.5 * (x - mu_in) ** 2 + 0.5 * (x - mu_out) ** 2
    # Online: six shadows, each sample IN for its own three (a different three per sample), OUT for the others.
    in_mask = np.array([[True, False], [True, True], [True, False], [False, True], [False, False], [False, True]])
    phis = np.empty((6, 2))
    for sample in range(2):
        phis[in_mask[:, sample], sample] = in_phis[:, sample]
        phis[~in_mask[:, sample], sample] = out_phis[:, sample]
    assert lira.online_scores(x, phis, in_mask, global_variance=False) == pytest.approx(expected)
    # Offline with a mask: each sample against its own OUT shadows only.
    assert lira.offline_scores(x, phis, global_variance=False, in_mask=in_mask) == pytest.approx(x - mu_out)
    # One variance for all (the paper's, below 64 shadows a side): the deviation of every selected value.
    sd_in, sd_out = in_phis.std(), out_phis.std()
    fixed = (-0.5 * ((x - mu_in) / sd_in) ** 2 - np.log(sd_in)) - (-0.5 * ((x - mu_out) / sd_out) ** 2 - np.log(sd_out))
    assert lira.online_scores(x, phis, in_mask) == pytest.approx(fixed)
    with pytest.raises(ValueError, match="1 of 2 samples have no shadow model on this side"):
        lira.online_scores(x, phis, np.c_[np.ones(6, bool), in_mask[:, 1]])


def test_online_lira_on_synthetic_gaussians_separates_as_the_closed_form_says():
    """phi ~ N(1, 1) IN and N(0, 1) OUT for every sample, 64 shadows per side: the online score of x tends to
    x - 1/2 (the log-ratio of two unit Gaussians 1 apart), and its AUROC on fresh IN vs OUT draws to
    Phi(1 / sqrt 2) = 0.760."""
    from statistics import NormalDist

    rng = np.random.default_rng(0)
    n, shadows = 2000, 128
    in_mask = np.zeros((shadows, n), dtype=bool)
    for p in range(shadows // 2):
        half = rng.permutation(n)[:n // 2]
        in_mask[2 * p, half] = True
        in_mask[2 * p + 1] = ~in_mask[2 * p]
    phis = rng.normal(0.0, 1.0, (shadows, n)) + in_mask
    x = rng.normal(0.0, 1.0, n) + (np.arange(n) < n // 2)
    scores = lira.online_scores(x, phis, in_mask)
    # Per-sample Gaussians fitted from 64 draws each: close to the true ratio, not equal to it.
    assert np.median(np.abs(scores - (x - 0.5))) < 0.2 and np.corrcoef(scores, x)[0, 1] > 0.95
    assert auroc(scores[:n // 2], scores[n // 2:]) == pytest.approx(NormalDist().cdf(1 / math.sqrt(2)), abs=0.03)


def _train_mlp(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def test_a_memorising_model_is_caught_and_an_unrelated_one_is_not(mnist_arrays):
    x = torch.tensor(mnist_arrays["x_train"][:400], dtype=torch.float32) / 255.0
    y = torch.tensor(mnist_arrays["y_train"][:400], dtype=torch.int64)
    x_test = torch.tensor(mnist_arrays["x_test"][:200], dtype=torch.float32) / 255.0
    y_test = torch.tensor(mnist_arrays["y_test"][:200], dtype=torch.int64)
    members, members_y = x[:200], y[:200]
    memorising = _train_mlp(members, members_y, epochs=300, seed=0)
    unrelated = _train_mlp(x[200:], y[200:], epochs=300, seed=0)
    with torch.no_grad():
        for name in ("loss", "confidence", "modified_entropy"):
            score = scores.METRIC_SCORES[name]
            caught = auroc(score(memorising(members), members_y).numpy(), score(memorising(x_test), y_test).numpy())
            blind = auroc(score(unrelated(members), members_y).numpy(), score(unrelated(x_test), y_test).numpy())
            assert caught > 0.8, (name, caught)
            assert 0.35 < blind < 0.65, (name, blind)


def test_membership_roles_are_halves_of_one_pool_balanced_and_seeded():
    """Carlini et al. 2022's pool: each model seed trains on exactly `size` images of the pool, exactly n_eval of
    them candidates; seeds 2p and 2p + 1 are complementary; no role touches the validation or test digits."""
    from tempered.data.split import make_split
    from tempered.privacy.roles import half_mask, model_roles

    split = make_split(validation_size=5000, seed=0)
    train, val = set(split["train"]), set(split["val"])
    for size, n_eval in ((1000, 2000), (5000, 2000)):
        roles = [model_roles(split, size, k, n_eval=n_eval, seed=0) for k in range(5)]
        n = min(n_eval, size)
        candidates = roles[0]["candidates"]
        assert len(candidates) == len(set(candidates)) == 2 * n
        pool = set(candidates).union(*(set(r["pool_half"]) for r in roles))
        assert len(pool) == 2 * size and pool <= train and not pool & val
        for r in roles:
            half, members, nonmembers = set(r["pool_half"]), set(r["members"]), set(r["nonmembers"])
            assert np.array_equal(r["candidates"], candidates)  # one candidate list for every model seed
            assert len(half) == size and len(members) == len(nonmembers) == n
            assert members == set(candidates[r["candidate_in"]]) and members <= half and not nonmembers & half
            assert members | nonmembers == set(candidates)
            assert np.array_equal(r["calibration"], split["test"])  # every test digit; no non-member
        # Pairs 2p, 2p + 1 are complementary in the candidates and in the rest of the pool.
        for a, b in ((0, 1), (2, 3)):
            assert not set(roles[a]["pool_half"]) & set(roles[b]["pool_half"])
            assert (roles[a]["candidate_in"] ^ roles[b]["candidate_in"]).all()
        assert (np.stack([r["candidate_in"] for r in roles[:4]]).sum(axis=0) == 2).all()
        assert not np.array_equal(roles[0]["candidate_in"], roles[2]["candidate_in"])
    # Seeded, and each size's roles are independent of which other sizes are configured.
    again = model_roles(split, 1000, 3, 2000, 0)
    assert all(np.array_equal(v, again[k]) for k, v in model_roles(split, 1000, 3, n_eval=2000, seed=0).items())
    assert not np.array_equal(model_roles(split, 1000, 3, 2000, 1)["candidates"], again["candidates"])
    assert half_mask(10, 0, 5, 0, 1).sum() == 5
    with pytest.raises(ValueError, match=r"train_sizes: 27501 is not in \(0, 27500\]"):
        model_roles(split, 27501, 0, n_eval=2000, seed=0)


def test_every_attack_catches_a_memorising_target_with_shadow_thresholds(mnist_arrays):
    """Shadows as the pipeline trains them (tempered.privacy.roles): pairs split the 400 candidates (200 members,
    200 training digits neither target saw) into complementary halves. A memorising target is caught by every
    attack, online LiRA included; a target that never saw the members is not, and the permutation null says a
    blind attack does as well on it (p > 0.05)."""
    from tempered.privacy.evaluation import Bootstrap, Logits, attack_target
    from tempered.privacy.paired import best_threshold_accuracy, permutation_p_value
    from tempered.privacy.roles import half_mask

    x = torch.tensor(mnist_arrays["x_train"][:1000], dtype=torch.float32) / 255.0
    y = torch.tensor(mnist_arrays["y_train"][:1000], dtype=torch.int64)
    # Non-members from the members' distribution, as the pipeline draws them: training digits no model here
    # trained on but the shadows that drew them.
    x_test, y_test = x[200:400], y[200:400]
    members = (x[:200], y[:200])
    candidates = (torch.cat([members[0], x_test]), torch.cat([members[1], y_test]))
    target = _train_mlp(*members, epochs=300, seed=0)
    unrelated = _train_mlp(x[800:], y[800:], epochs=300, seed=0)  # never saw the members
    masks = np.stack([half_mask(400, k, size=200, seed=0, part=1) for k in range(4)])
    shadows = [_train_mlp(candidates[0][mask], candidates[1][mask], epochs=300, seed=k + 1)
               for k, mask in enumerate(masks)]
    boot = Bootstrap(n_boot=20, level=0.95, seed=0)
    with torch.no_grad():
        # The threshold attacks' data: each shadow's IN candidates against its OUT ones, pooled.
        shadow_in = Logits(torch.cat([s(candidates[0][m]) for s, m in zip(shadows, masks, strict=True)]),
                           torch.cat([candidates[1][m] for m in masks]))
        shadow_out = Logits(torch.cat([s(candidates[0][~m]) for s, m in zip(shadows, masks, strict=True)]),
                            torch.cat([candidates[1][~m] for m in masks]))
        on_members = [s(members[0]) for s in shadows]
        on_nonmembers = [s(x_test) for s in shadows]
        results, table = attack_target(Logits(target(members[0]), members[1]), Logits(target(x_test), y_test),
                                       shadow_in, shadow_out, on_members, on_nonmembers, boot, masks)
        blind, blind_table = attack_target(Logits(unrelated(members[0]), members[1]),
                                           Logits(unrelated(x_test), y_test), shadow_in, shadow_out, on_members,
                                           on_nonmembers, boot, masks)
    assert len(table) == 400 and table["member"].sum() == 200
    assert results["loss"]["accuracy"] > 0.65 and results["confidence"]["accuracy"] > 0.65
    assert results["lira_offline"]["auroc"] > 0.8 and results["lira_online"]["auroc"] > 0.8
    for attack in ("lira_offline", "lira_online"):
        assert 0.35 < blind[attack]["auroc"] < 0.65, (attack, blind[attack])
        scores_ = blind_table[attack].to_numpy()
        member = blind_table["member"].to_numpy(bool)
        assert permutation_p_value(best_threshold_accuracy, scores_[member], scores_[~member], 200, 0) > 0.05
    assert blind["loss"]["accuracy"] < 0.6
