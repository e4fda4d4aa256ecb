"""Temperature scaling without a finite optimum (Guo et al. 2017, section 4.2): NLL(1/T) is convex, and when its
slope at 1/T = 0 is not negative the NLL falls forever as T grows. That is detected in closed form and recorded
as 'not fitted', never as an optimiser's runaway T."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from tempered.artifacts import metrics_safe, read_json, write_arrays
from tempered.calibration.temperature_scaling import NoFiniteOptimum, fit_temperature, nll_slopes_in_inverse_temperature
from tempered.stages.calibration.steps import calibration_table
from tempered.stages.membership.report import markdown, membership_frame, summary
from tempered.stages.membership.steps import _fitted_temperature, _unscalable
from tests.unit.stages.calibration.test_steps import no_nulls, run_calibrate, write_logits

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def grid_nll(z: torch.Tensor, y: torch.Tensor, temperatures: torch.Tensor) -> torch.Tensor:
    return torch.stack([F.cross_entropy(z / t, y) for t in temperatures])


def near_chance(n: int = 2000, seed: int = 0, scale: float = 100.0):
    """Large logits (a T=100 student) with labels unrelated to them, on the side where the true-class logit is
    on average below the mean logit: what an under-trained hot student gives on its validation set."""
    g = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(n, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (n,), generator=g)
    slope_0, _ = nll_slopes_in_inverse_temperature(z, y)
    # Lowering every true-class logit by d raises the slope by d (1 - 1/K): just past zero.
    z[torch.arange(n), y] -= 2 * max(-slope_0, 0.0) + 1e-3
    return z, y


def test_the_slopes_are_the_derivative_of_the_nll_in_inverse_temperature():
    g = torch.Generator().manual_seed(3)
    z = 3 * torch.randn(500, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (500,), generator=g)
    slope_0, slope_inf = nll_slopes_in_inverse_temperature(z, y)
    u = torch.tensor(1e-9, dtype=torch.float64, requires_grad=True)
    F.cross_entropy(u * z, y).backward()
    assert slope_0 == pytest.approx(u.grad.item(), rel=1e-6)
    u = torch.tensor(1e4, dtype=torch.float64, requires_grad=True)
    F.cross_entropy(u * z, y).backward()
    assert slope_inf == pytest.approx(u.grad.item(), rel=1e-6)


def test_a_true_class_logit_below_the_mean_has_no_finite_optimum_and_the_reason_says_so():
    z, y = near_chance()
    slope_0, _ = nll_slopes_in_inverse_temperature(z, y)
    assert slope_0 > 0
    with pytest.raises(NoFiniteOptimum, match=r"no finite optimum \(T -> inf\)") as caught:
        fit_temperature(z, y)
    assert caught.value.limit == math.inf
    assert "on average no higher than the mean logit" in caught.value.reason
    # The claim behind it: the NLL keeps falling as T grows, down towards ln K.
    nlls = grid_nll(z, y, torch.logspace(0, 8, 9, dtype=torch.float64))
    assert (nlls.diff() < 0).all() and nlls[-1] == pytest.approx(math.log(10), abs=1e-4)


def test_a_model_whose_true_class_logit_is_always_lowest_has_no_finite_optimum():
    z = torch.tensor([[5.0, 0.0, 1.0], [0.0, 3.0, 4.0]])
    with pytest.raises(NoFiniteOptimum, match="T -> inf"):
        fit_temperature(z, torch.tensor([1, 0]))
    # Equal logits: the NLL is ln K for every T, flat, so no T is an optimum either.
    with pytest.raises(NoFiniteOptimum, match="T -> inf"):
        fit_temperature(torch.ones(4, 3), torch.tensor([0, 1, 2, 0]))


def test_every_sample_correct_is_the_other_limit():
    with pytest.raises(NoFiniteOptimum, match=r"T -> 0\): every sample is classified correctly") as caught:
        fit_temperature(torch.eye(3) * 5.0, torch.arange(3))
    assert caught.value.limit == 0.0


@pytest.mark.parametrize("scale, t_true", [(4.0, 2.5), (400.0, 100.0)])
def test_a_normal_case_still_fits_and_matches_a_brute_force_grid(scale, t_true):
    g = torch.Generator().manual_seed(1)
    z = scale * torch.randn(4000, 10, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z / t_true, dim=1), 1, generator=g).squeeze(1)
    t = fit_temperature(z, y)
    # Brute force: a coarse grid over two decades, then a fine one around its minimum (steps 2.3%, then 0.05%).
    coarse = torch.logspace(math.log10(t_true) - 1, math.log10(t_true) + 1, 201, dtype=torch.float64)
    centre = coarse[grid_nll(z, y, coarse).argmin()].item()
    fine = torch.logspace(math.log10(centre) - 0.01, math.log10(centre) + 0.01, 101, dtype=torch.float64)
    nlls = grid_nll(z, y, fine)
    assert t == pytest.approx(fine[nlls.argmin()].item(), rel=1e-3)
    assert F.cross_entropy(z / t, y) <= nlls.min() + 1e-12


def test_the_step_records_not_fitted_with_the_reason_and_no_temperature(tmp_path):
    arrays = write_logits(tmp_path / "logits.npz")
    z, y = near_chance(n=500)
    arrays.update(val_logits=z.float().numpy(), val_labels=y.numpy())
    write_arrays(tmp_path / "logits.npz", arrays)
    record = read_json(run_calibrate(tmp_path, model="student_T100")["json"])
    assert record["fitted"] is False and "after" not in record and "fitted_temperature" not in record
    assert record["not_fitted_reason"].startswith("no finite optimum (T -> inf)")
    assert "500 'val' samples" in record["not_fitted_reason"]
    assert record["no_finite_optimum"] == "T -> inf" and record["nll_slope_in_inverse_t"]["at_0"] > 0
    assert no_nulls(record)
    assert record["distillation_role"] == "student" and record["distillation_temperature"] == 100.0
    table = calibration_table([record])
    assert not table.loc[0, "fitted"] and np.isnan(table.loc[0, "fitted_temperature"])
    assert table.loc[0, "role"] == "student"
    from tempered.stages.calibration.steps import _markdown

    assert "| not fitted |" in _markdown(table)


def test_a_fitted_model_keeps_its_keys_and_records_the_slopes(tmp_path):
    write_logits(tmp_path / "logits.npz", t_true=3.0)
    record = read_json(run_calibrate(tmp_path, model="cnn")["json"])
    assert record["fitted"] is True and record["fitted_temperature"] == pytest.approx(3.0, rel=0.1)
    assert record["nll_slope_in_inverse_t"]["at_0"] < 0 < record["nll_slope_in_inverse_t"]["at_inf"]


def test_membership_skips_the_scaled_variant_instead_of_using_a_runaway_temperature(repo_config):
    z, y = near_chance(n=300)
    t, reason = _fitted_temperature("mi200_student_T100", z, y, repo_config)
    assert math.isnan(t) and reason.startswith("mi200_student_T100: no finite optimum (T -> inf)")
    g = torch.Generator().manual_seed(0)
    z = 4 * torch.randn(300, 10, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z / 2.0, 1), 1, generator=g).squeeze(1)
    t, reason = _fitted_temperature("mi200_cnn", z, y, repo_config)
    assert t == pytest.approx(2.0, rel=0.3) and reason == ""
    fitted = {"temperature": np.float64(1.3), "temperature_not_fitted_reason": np.array("")}
    shadows = [fitted,
               {"temperature": np.float64(np.nan), "temperature_not_fitted_reason": np.array("no finite optimum")}]
    assert _unscalable(fitted, ["s0.npz"], shadows[:1]) == ""
    assert "shadow s1.npz: no finite optimum" in _unscalable(fitted, ["s0.npz", "s1.npz"], shadows)
    target = {"temperature": np.float64(np.nan), "temperature_not_fitted_reason": np.array("target: no T")}
    assert _unscalable(target, ["s0.npz"], shadows[:1]) == "target: no T"


def test_the_membership_report_reads_a_target_without_a_fitted_temperature():
    metrics = {"auroc": 0.6, "advantage": 0.2, "tpr_at_0.001_fpr": 0.0, "tpr_at_0.01_fpr": 0.05,
               "best_threshold_accuracy": 0.6}
    attack = {**metrics, **{f"{k}_low": v - 0.01 for k, v in metrics.items()},
              **{f"{k}_high": v + 0.01 for k, v in metrics.items()}}
    target = {"train_size": 200, "training_temperature": 100.0, "robust_training": False, "train_accuracy": 0.2,
              "test_accuracy": 0.1, "generalization_gap": 0.1, "ece": 0.3}  # no fitted_temperature / ece_scaled
    record = {"model": "mi200_student_T100", "inner_model": "student_T100", "seed": 0, "target": target,
              "attacks": {"deployed": {"confidence": attack}}}
    frame = membership_frame([record])
    assert isinstance(frame, pd.DataFrame) and frame["fitted_temperature"].isna().all()
    assert "not fitted: no finite optimum" in markdown(frame)
    # The summary DVC tracks drops the absent T rather than writing NaN or a runaway value.
    target_summary = metrics_safe(summary(frame, "cnn", None))["targets"]["mi200_student_T100"]["target"]
    assert "fitted_temperature" not in target_summary and target_summary["ece"] == 0.3
