"""The OOD detection stage: protocol (tune vs report), grid tuning, fast bootstrap, OOD sets, and the steps on tiny
artifacts with real (small, untrained) CNNs and real digits."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import roc_curve as sklearn_roc_curve

from tempered.artifacts import read_json, write_arrays, write_checkpoint, write_json
from tempered.cli import main
from tempered.config import REPO_ROOT, ConfigError, load_config
from tempered.data.ood_sets import emnist_upright, fetch_downloaded_sets, omniglot_as_mnist
from tempered.models.confidence_cnn import ConfidenceCNN
from tempered.models.papernot_cnn import PapernotCNN
from tempered.ood.bootstrap import all_metrics, bootstrap_metrics, roc_curve
from tempered.ood.metrics import OOD_METRICS, bootstrap_interval, misclassification_metrics, ood_metrics
from tempered.ood.protocol import detectors_for, in_distribution_parts, ood_parts
from tempered.ood.scores import learned_confidence_odin, odin
from tempered.ood.tuning import best_grid_point, confidence_grid, odin_grid
from tempered.stages.ood.scored_models import ood_model_names
from tempered.stages.ood.steps import ood_report_step, ood_step

CPU = torch.device("cpu")
CONFIG = str(REPO_ROOT / "config.yaml")

# --- protocol ------------------------------------------------------------------------------------------------------


def test_in_distribution_tuning_and_report_samples_never_overlap():
    split = {"val": np.arange(100, 150), "test": np.arange(0, 400), "p1": np.arange(200), "p2": np.arange(200, 400)}
    parts = in_distribution_parts("train", split, tune_size=30, limit_report=None)
    assert parts["tune"][0] == "val" and list(parts["tune"][1]) == list(range(100, 130))
    assert parts["report"][0] == "test" and len(parts["report"][1]) == 400  # val indexes MNIST train: disjoint
    # A model trained on all 60k has only test held out: it tunes on the first samples and reports on the rest.
    full = in_distribution_parts("full", split, tune_size=30, limit_report=100)
    assert full["tune"][0] == full["report"][0] == "test"
    assert np.intersect1d(full["tune"][1], full["report"][1]).size == 0
    assert list(full["report"][1]) == list(range(30, 130))
    with pytest.raises(ConfigError, match="ood.tune_size 400 leaves 400 in-distribution tuning and 0 report"):
        in_distribution_parts("full", split, tune_size=400, limit_report=None)


def test_ood_tuning_part_is_the_first_samples_and_the_report_part_the_rest():
    parts = ood_parts(50, tune_size=20, limit_report=None, dataset="x")
    assert list(parts["tune"]) == list(range(20)) and list(parts["report"]) == list(range(20, 50))
    assert list(ood_parts(50, 20, 5, "x")["report"]) == [20, 21, 22, 23, 24]
    with pytest.raises(ConfigError, match="OOD set 'noise' has 20 samples, not more than ood.tune_size"):
        ood_parts(20, 20, None, "noise")


def test_scored_models_and_detectors_follow_config(repo_config):
    names = ood_model_names(repo_config)
    assert names[:2] == ["cnn", "confidence"] and "student_T100" in names and "teacher_T100" not in names
    assert "teacher_T100" in ood_model_names({**repo_config, "ood": {**repo_config["ood"], "teachers": True}})
    with pytest.raises(ConfigError, match=r"ood.models names \['vgg'\]"):
        ood_model_names({**repo_config, "ood": {**repo_config["ood"], "models": ["vgg"]}})
    assert detectors_for("papernot_cnn", True) == ["msp", "msp_scaled", "energy", "energy_scaled", "odin"]
    assert detectors_for("papernot_cnn", False) == ["msp", "energy", "odin"]
    assert detectors_for("confidence_cnn", True)[-2:] == ["confidence", "confidence_preprocessed"]


# --- fast metrics and bootstrap --------------------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [None, 1], ids=["continuous", "ties"])
def test_one_sort_metrics_and_bootstrap_equal_the_reference_functions(decimals):
    rng = np.random.default_rng(4)
    scores_in, scores_out = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.5, 200)
    if decimals is not None:
        scores_in, scores_out = scores_in.round(decimals), scores_out.round(decimals)
    assert all_metrics(scores_in, scores_out) == ood_metrics(scores_in, scores_out)
    fast = bootstrap_metrics(scores_in, scores_out, n_boot=40, seed=7)
    for name, metric in OOD_METRICS.items():
        point, low, high = bootstrap_interval(metric, scores_in, scores_out, n_boot=40, seed=7)
        assert (fast[name]["value"], fast[name]["low"], fast[name]["high"]) == (point, low, high), name
    assert fast["auroc"]["low"] < fast["auroc"]["value"] < fast["auroc"]["high"]


def test_misclassification_through_the_fast_path_matches_the_reference():
    rng = np.random.default_rng(1)
    scores = rng.random(400)
    correct = rng.random(400) < scores  # confident samples are more often right
    fast = bootstrap_metrics(-scores[~correct], -scores[correct], n_boot=1)
    reference = misclassification_metrics(scores, correct)
    for ours, theirs in (("auroc", "auroc"), ("fpr_at_95_tpr", "fpr_at_95_tpr"), ("aupr_in", "aupr_err"),
                         ("aupr_out", "aupr_succ"), ("detection_error", "detection_error")):
        assert fast[ours]["value"] == pytest.approx(reference[theirs], abs=1e-12)


def test_roc_curve_matches_scikit_learn():
    rng = np.random.default_rng(2)
    scores_in, scores_out = rng.normal(1, 1, 100).round(1), rng.normal(0, 1, 80).round(1)
    fpr, tpr = roc_curve(scores_in, scores_out)
    ref_fpr, ref_tpr, _ = sklearn_roc_curve(np.r_[np.ones(100), np.zeros(80)], np.r_[scores_in, scores_out],
                                            drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)


# --- grid tuning ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits(mnist_arrays):
    return torch.from_numpy(mnist_arrays["x_test"][:24].astype(np.float32) / 255.0).unsqueeze(1)


def test_odin_grid_equals_odin_at_every_grid_point(digits):
    torch.manual_seed(0)
    model = PapernotCNN().eval()
    temperatures, epsilons = [1.0, 1000.0], [0.0, 0.004]
    grid = odin_grid(model, digits, temperatures, epsilons, batch_size=16, device=CPU)
    for i, t in enumerate(temperatures):
        for j, eps in enumerate(epsilons):
            # The same batches as the grid's: a convolution over 16 or 24 images may round differently.
            one_by_one = [odin(model, digits[s:s + 16], temperature=t, eps=eps).numpy() for s in range(0, 24, 16)]
            np.testing.assert_array_equal(grid[i, j], np.concatenate(one_by_one))
    assert not np.array_equal(grid[0, 0], grid[0, 1]), "eps must change the score"


def test_confidence_grid_equals_the_preprocessed_confidence(digits):
    torch.manual_seed(0)
    model = ConfidenceCNN().eval()
    grid = confidence_grid(model, digits, [0.0, 0.002], batch_size=16, device=CPU)
    for j, eps in enumerate([0.0, 0.002]):
        one_by_one = [learned_confidence_odin(model, digits[s:s + 16], eps=eps).numpy() for s in range(0, 24, 16)]
        np.testing.assert_array_equal(grid[j], np.concatenate(one_by_one))


def test_best_grid_point_minimises_fpr_at_95_tpr():
    rng = np.random.default_rng(0)
    scores_in = np.stack([rng.normal(m, 1, 200) for m in (0.0, 3.0, 1.0)])[:, None]  # grid (3, 1)
    scores_out = np.stack([rng.normal(0, 1, 200) for _ in range(3)])[:, None]
    index, metrics = best_grid_point(scores_in, scores_out)
    assert index == (1, 0) and metrics == all_metrics(scores_in[1, 0], scores_out[1, 0])
    with pytest.raises(ValueError, match="grids differ"):
        best_grid_point(scores_in, scores_out[:2])


# --- OOD sets -------------------------------------------------------------------------------------------------------


# The noise sets (tempered.data.ood_sets.noise_images): tests/unit/ood/test_ood.py.


def test_an_unavailable_set_is_skipped_with_its_reason_and_the_rest_kept(tmp_path):
    def offline(root):
        raise RuntimeError(f"Error downloading to {root}: <urlopen error [Errno -2] Name or service not known>")

    def fake(root):
        return np.zeros((7, 28, 28), np.uint8)

    arrays, status = fetch_downloaded_sets(["kmnist", "omniglot"], tmp_path, {"kmnist": offline, "omniglot": fake})
    assert list(arrays) == ["omniglot"] and arrays["omniglot"].shape == (7, 28, 28)
    assert status["omniglot"] == {"status": "fetched", "source": "torchvision", "size": 7}
    assert status["kmnist"]["status"] == "skipped"
    assert "Name or service not known" in status["kmnist"]["reason"]
    assert str(tmp_path) not in status["kmnist"]["reason"], "the reason must not depend on where it ran"


def test_emnist_and_omniglot_are_brought_to_mnist_conventions():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 2, 5] = 255
    assert emnist_upright(image)[0, 5, 2] == 255
    omniglot = np.full((2, 105, 105), 255, np.uint8)  # white background
    omniglot[:, 30:70, 45:60] = 0  # a black stroke
    converted = omniglot_as_mnist(omniglot)
    assert converted.shape == (2, 28, 28) and converted[0, 0, 0] == 0 and converted.max() > 200


# --- the steps on tiny artifacts --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, mnist_arrays):
    """Small real digits, a split into them, Fashion-like images, a skipped download, two untrained CNNs."""
    root = tmp_path_factory.mktemp("ood")
    write_arrays(root / "mnist.npz", {"x_train": mnist_arrays["x_train"][:1000],
                                      "y_train": mnist_arrays["y_train"][:1000],
                                      "x_test": mnist_arrays["x_test"][:400], "y_test": mnist_arrays["y_test"][:400]})
    write_arrays(root / "split.npz", {"val": np.arange(150), "train": np.arange(150, 1000), "test": np.arange(400),
                                      "full": np.arange(1000), "p1": np.arange(500), "p2": np.arange(500, 1000)})
    # Stand-in for Fashion-MNIST: MNIST training digits turned upside down (not the in-distribution test digits).
    write_arrays(root / "fashion.npz", {"x_test": mnist_arrays["x_train"][-300:, ::-1].copy()})
    write_arrays(root / "downloaded.npz", {})
    write_json(root / "downloaded.json", {"datasets": {"kmnist": {
        "status": "skipped", "reason": "torchvision could not download it: URLError: offline"}}})
    config = load_config([CONFIG])
    for name, cls in (("cnn", PapernotCNN), ("confidence", ConfidenceCNN)):
        torch.manual_seed(0)
        write_checkpoint(root / f"{name}.pt", cls().state_dict(),
                         {"model": name, "model_config": config["models"][name], "provenance": {"seed": 0}})
        write_json(root / f"{name}.calibration.json", {"model": name, "seed": 0, "fitted": True,
                                                       "fitted_temperature": 2.0})
    return root


def tiny_preset(root, limit_report=150):
    path = root / f"tiny{limit_report}.yaml"
    path.write_text(yaml.safe_dump({"ood": {
        "datasets": ["fashion_mnist", "uniform_noise", "kmnist"], "tune_size": 60, "limit_report": limit_report,
        "noise": {"seed": 0, "size": 300},
        "odin": {"temperatures": [1, 1000], "epsilons": [0.0, 0.004]}, "confidence_epsilons": [0.0, 0.004],
        "bootstrap": {"n_boot": 20, "level": 0.95, "seed": 0}}, "evaluation": {"batch_size": 64}}))
    return [CONFIG, str(path)]


def run_ood(root, model, config, tag):
    out = root / tag
    ood_step(config, model, 0, root / f"{model}.pt", root / "mnist.npz", root / "split.npz", root / "fashion.npz",
             root / "downloaded.npz", root / "downloaded.json", root / f"{model}.calibration.json",
             out / "metrics.json", out / "scores", out / "roc.png", out / "hist.png")
    return out


@pytest.fixture(scope="module")
def confidence_run(artifacts):
    return run_ood(artifacts, "confidence", tiny_preset(artifacts), "confidence")


def no_nulls(value) -> bool:
    if isinstance(value, dict):
        return all(no_nulls(v) for v in value.values())
    return value is not None and not (isinstance(value, float) and not np.isfinite(value))


def test_ood_step_scores_every_detector_and_reports_the_skipped_set(confidence_run):
    record = read_json(confidence_run / "metrics.json")
    assert no_nulls(record), "DVC cannot parse nulls in metrics files"
    assert sorted(record["ood"]) == ["fashion_mnist", "uniform_noise"]
    assert record["skipped_datasets"] == {"kmnist": "torchvision could not download it: URLError: offline"}
    detectors = ["msp", "msp_scaled", "energy", "energy_scaled", "odin", "confidence", "confidence_preprocessed"]
    assert sorted(record["ood"]["fashion_mnist"]) == sorted(detectors)
    msp_scaled = record["ood"]["uniform_noise"]["msp_scaled"]
    assert msp_scaled["temperature"] == 2.0
    odin_result = record["ood"]["fashion_mnist"]["odin"]
    assert odin_result["temperature"] in (1, 1000) and odin_result["eps"] in (0.0, 0.004)
    for metric in ("auroc", "fpr_at_95_tpr", "detection_error", "aupr_in", "aupr_out"):
        assert 0 <= msp_scaled[f"{metric}_low"] <= msp_scaled[f"{metric}_high"] <= 1
    assert record["protocol"]["in_tune_set"] == "val" and record["protocol"]["n_in_report"] == 150
    assert record["datasets"]["fashion_mnist"] == {"n_tune": 60, "n_report": 150}
    assert "msp" in record["misclassification"] and "odin@uniform_noise" in record["misclassification"]
    assert (confidence_run / "roc.png").stat().st_size > 10_000 and (confidence_run / "hist.png").exists()


def test_per_sample_scores_recompute_the_metrics_and_keep_tuning_apart(confidence_run):
    record = read_json(confidence_run / "metrics.json")
    files = sorted(p.name for p in (confidence_run / "scores").iterdir())
    assert len(files) == 7 * 2 and "confidence_preprocessed__fashion_mnist.csv" in files
    for detector in ("msp", "odin", "confidence_preprocessed"):
        table = pd.read_csv(confidence_run / "scores" / f"{detector}__fashion_mnist.csv")
        report = table[table["part"] == "report"]
        recomputed = ood_metrics(report.loc[report["distribution"] == "in", "score"],
                                 report.loc[report["distribution"] == "out", "score"])
        assert recomputed["auroc"] == pytest.approx(record["ood"]["fashion_mnist"][detector]["auroc"], abs=1e-12)
        tune = table[table["part"] == "tune"]
        assert set(tune["set"]) == {"val", "fashion_mnist"} and set(report["set"]) == {"test", "fashion_mnist"}
        out_tune = tune.loc[tune["set"] == "fashion_mnist", "index"]
        out_report = report.loc[report["set"] == "fashion_mnist", "index"]
        assert out_tune.max() < out_report.min() and len(out_tune) == 60 and len(out_report) == 150


def test_tuned_settings_do_not_depend_on_the_report_samples(artifacts, confidence_run):
    """Tuning sees only the tuning samples: shrinking the report part leaves every tuned setting unchanged."""
    other = read_json(run_ood(artifacts, "confidence", tiny_preset(artifacts, limit_report=90), "fewer") /
                      "metrics.json")
    record = read_json(confidence_run / "metrics.json")
    for dataset in ("fashion_mnist", "uniform_noise"):
        for detector in ("odin", "confidence_preprocessed"):
            keys = ("temperature", "eps", "tune_fpr_at_95_tpr", "tune_auroc")
            assert ({k: record["ood"][dataset][detector].get(k) for k in keys}
                    == {k: other["ood"][dataset][detector].get(k) for k in keys})
    assert other["protocol"]["n_in_report"] == 90


def test_a_plain_cnn_without_a_fitted_temperature_gets_no_scaled_detectors(artifacts):
    calibration = artifacts / "cnn.calibration.json"
    calibration.write_text(json.dumps({"model": "cnn", "seed": 0, "fitted": False,
                                       "not_fitted_reason": "every sample is classified correctly"}))
    record = read_json(run_ood(artifacts, "cnn", tiny_preset(artifacts), "cnn") / "metrics.json")
    assert sorted(record["ood"]["uniform_noise"]) == ["energy", "msp", "odin"]
    assert record["temperature_scaling"] == {"fitted": False, "reason": "every sample is classified correctly"}


def test_the_report_lists_skipped_sets_and_the_tuning_protocol(artifacts, confidence_run, tmp_path):
    paths = [confidence_run / "metrics.json"]
    table_path, md_path, fig_path = tmp_path / "ood.csv", tmp_path / "ood.md", tmp_path / "auroc.png"
    ood_report_step(paths, artifacts / "downloaded.json", table_path, md_path, fig_path)
    markdown = md_path.read_text()
    assert "- kmnist: torchvision could not download it: URLError: offline" in markdown
    assert "first 60 samples of each OOD set" in markdown and "the remaining samples (first 150)" in markdown
    assert "Their claims read the `msp` rows of `hendrycks_mlp`" in markdown
    assert "here the `msp` rows of `cnn`, which sees the same samples" in markdown
    table = pd.read_csv(table_path)
    assert set(table["task"]) == {"ood", "misclassification"}
    assert len(table[table["task"] == "ood"]) == 7 * 2
    assert fig_path.stat().st_size > 10_000


def test_the_cli_wires_the_ood_step(artifacts, tmp_path):
    config = tiny_preset(artifacts)
    args = ["ood", "--config", config[0], "--config", config[1], "--model", "confidence"]
    files = {"checkpoint": "confidence.pt", "images": "mnist.npz", "split": "split.npz", "fashion": "fashion.npz",
             "downloaded": "downloaded.npz", "downloaded-manifest": "downloaded.json",
             "calibration": "confidence.calibration.json"}
    args += [x for name, f in files.items() for x in (f"--{name}", str(artifacts / f))]
    args += ["--metrics", str(tmp_path / "m.json"), "--scores", str(tmp_path / "s"), "--roc", str(tmp_path / "r.png"),
             "--histograms", str(tmp_path / "h.png")]
    assert main([*args, "--seed", "0"]) == 0
    assert read_json(tmp_path / "m.json")["seed"] == 0
    (tmp_path / "m.json").unlink()
    assert main([*args, "--seed", "1"]) == 2  # the calibration file is for seed 0: refused, naming the file
    assert not (tmp_path / "m.json").exists()
