"""Input-gradient magnitudes of the deployed softmax in float64 and log space (Papernot et al. 2016, section V.C:
distillation shrinks them by up to 1e30). In float32 they read exactly 0 at T=20 and above; here they stay
measurable, so the ordering over students can be checked."""

import copy
import math

import numpy as np
import pytest
import torch

from tempered.stages.attacks.distillation_report import claims, gradients_figure, markdown, summary_table, tidy_results
from tempered.stages.attacks.steps import gradient_summaries, input_gradient_magnitudes, log_input_gradient_magnitudes
from tempered.step_params import step_view
from tests.unit.attacks.test_attacks import Scaled, synthetic_digits, train_synthetic_mlp

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_model():
    """A 784-32-10 ReLU MLP trained on synthetic digits until it is confident, and 6 held-out samples."""
    generator = torch.Generator().manual_seed(0)
    model, prototypes = train_synthetic_mlp(1000, 100, generator)
    return model, synthetic_digits(6, generator, prototypes)[0]


def float32_magnitudes(model, x):
    """The old measurement: a float32 model, the softmax of its logits, backpropagated in float32."""
    x = x.detach().requires_grad_(True)
    probs = torch.softmax(model(x), dim=1)
    return torch.stack([torch.autograd.grad(probs[:, j].sum(), x, retain_graph=True)[0].flatten(1).abs()
                        for j in range(probs.shape[1])], dim=1)


def test_log_space_equals_the_float64_softmax_jacobian_where_it_is_representable(small_model):
    model, x = small_model
    ours = input_gradient_magnitudes(model, x[:2].double())
    assert ours.dtype == torch.float64
    model64 = copy.deepcopy(model).double()
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda v: torch.softmax(model64(v[None]), 1)[0], x[i].double())
        torch.testing.assert_close(ours[i], jac.flatten(1).abs(), rtol=1e-9, atol=1e-15)
    assert all(p.grad is None for p in model.parameters())
    assert next(model.parameters()).dtype == torch.float32, "the deployed model itself is left in float32"


def test_hot_students_have_measurable_and_ordered_gradients(small_model):
    model, x = small_model
    scales = (1.0, 5.0, 20.0, 100.0)  # the logits of students distilled at these T, deployed at T=1
    per_scale = {k: gradient_summaries(log_input_gradient_magnitudes(Scaled(model, k).eval(), x)) for k in scales}
    # The float32 measurement reads exactly 0 at T=100: nothing to compare.
    assert (float32_magnitudes(Scaled(model, 100.0).eval(), x) == 0).all()
    medians = [float(np.median(per_scale[k]["log10_mean_abs"])) for k in scales]
    assert all(np.isfinite(per_scale[k]["log10_mean_abs"]).all() for k in scales)
    assert all(b < a for a, b in zip(medians, medians[1:], strict=False)), medians
    assert medians[0] - medians[-1] > 30, medians  # the paper's "up to 1e30" is measurable
    # Per sample, too: a larger scale always gives a smaller magnitude.
    stacked = np.stack([per_scale[k]["log10_mean_abs"] for k in scales])
    assert (np.diff(stacked, axis=0) < 0).all()
    # Where representable, the linear value agrees with its log10; below float64's range it is 0, not garbage.
    cold = per_scale[1.0]
    np.testing.assert_allclose(np.log10(cold["mean_abs"]), cold["log10_mean_abs"], rtol=1e-12)
    assert (cold["log10_max_abs"] >= cold["log10_mean_abs"]).all()
    assert (per_scale[100.0]["fraction_above_0.01"] == 0).all()


def test_the_report_and_figure_use_log10_and_order_the_students(repo_config, small_model):
    model, x = small_model
    gradients = {f"{name}/seed0": gradient_summaries(log_input_gradient_magnitudes(Scaled(model, k).eval(), x))
                 for name, k in (("cnn", 1.0), ("student_T1", 1.0), ("student_T20", 20.0), ("student_T100", 100.0))}
    gradients["student_T100/seed0"]["log10_mean_abs"][0] = -math.inf  # an exact zero must not break anything
    evals = [{"model": m.split("/")[0], "seed": 0, "test": {"accuracy": 0.99}} for m in gradients]
    table = summary_table(tidy_results(step_view(repo_config, "distillation-report"), evals, [], gradients))
    log10 = table[table["quantity"] == "gradient_log10_mean_abs_median"].set_index("model")["mean"]
    # At scale 100 this small model's gradients are near 1e-820: below float64, measurable only as a log.
    assert log10["student_T1"] > log10["student_T20"] > log10["student_T100"] > -math.inf
    text = markdown(table, [])
    assert "median log10 mean-abs input gradient" in text
    line = next(x for x in claims(table, []) if "input gradients" in x)
    assert "— seen across the students" in line and "at T=1 ->" in line and "at T=100" in line
    fig = gradients_figure(step_view(repo_config, "distillation-report"), gradients)
    assert "1 exactly 0, not shown" in fig.axes[0].get_title()
    # An older file without log10 values: its underflowed zeros give no log10 median, not a -inf one.
    old = tidy_results(step_view(repo_config, "distillation-report"), [], [],
                       {"student_T100/seed0": {"mean_abs": np.zeros(3)}})
    assert "gradient_log10_mean_abs_median" not in set(old["quantity"])
