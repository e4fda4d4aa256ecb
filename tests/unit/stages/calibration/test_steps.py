"""The temperature-scaling stage: calibrate per (model, seed) and the report over models, on tiny artifacts."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tempered.artifacts import ArtifactError, read_json, write_arrays
from tempered.cli import main
from tempered.config import REPO_ROOT
from tempered.stages.calibration.steps import calibrate_step, calibration_report_step, calibration_sets

CONFIG = str(REPO_ROOT / "config.yaml")


def logits_at_temperature(n: int, t_true: float, seed: int, scale: float = 4.0):
    """Logits z and labels drawn from softmax(z / t_true): the model is calibrated at T = t_true exactly."""
    g = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(n, 10, generator=g)
    labels = torch.multinomial(torch.softmax(z / t_true, dim=1), 1, generator=g).squeeze(1)
    return z.numpy().astype(np.float32), labels.numpy()


def write_logits(path, t_true=3.0, n_val=3000, n_test=3000, sets=("val", "test")):
    arrays = {}
    for i, name in enumerate(sets):
        z, y = logits_at_temperature(n_val if name == "val" else n_test, t_true, seed=i)
        arrays[f"{name}_logits"], arrays[f"{name}_labels"] = z, y
    write_arrays(path, arrays)
    return arrays


def no_nulls(value) -> bool:
    if isinstance(value, dict):
        return all(no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nulls(v) for v in value)
    return value is not None and not (isinstance(value, float) and not np.isfinite(value))


def run_calibrate(tmp_path, model="student_T20", config=(CONFIG,), seed=0):
    out = {k: tmp_path / f"{model}.{k}" for k in ("json", "csv", "png")}
    calibrate_step(list(config), model, seed, tmp_path / "logits.npz", out["json"], out["csv"], out["png"])
    return out


def test_a_known_temperature_is_recovered_and_accuracy_is_unchanged(tmp_path):
    write_logits(tmp_path / "logits.npz", t_true=3.0)
    out = run_calibrate(tmp_path)
    record = read_json(out["json"])
    assert record["fitted"] is True and record["fit_set"] == "val" and record["report_set"] == "test"
    assert record["fitted_temperature"] == pytest.approx(3.0, rel=0.1)
    assert record["distillation_temperature"] == 20.0
    before, after = record["before"], record["after"]
    assert after["accuracy"] == before["accuracy"]
    # Calibrated at T=3 by construction, so scaling must help on the (separate) test set.
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"] / 2
    assert record["fit"]["nll_after"] <= record["fit"]["nll_before"]
    assert no_nulls(record), "DVC cannot parse nulls in metrics files"
    bins = pd.read_csv(out["csv"])
    assert list(bins["state"].unique()) == ["before (T=1)", f"after (T={after['temperature']:.3g})"]
    for _, rows in bins.groupby("state"):
        assert rows["count"].sum() == before["n"] and len(rows) == 15
    assert out["png"].stat().st_size > 10_000


def test_a_validation_set_without_errors_is_reported_not_fitted(tmp_path):
    arrays = write_logits(tmp_path / "logits.npz")
    z = np.eye(10, dtype=np.float32)[np.arange(500) % 10] * 20
    arrays.update(val_logits=z, val_labels=np.arange(500) % 10)
    write_arrays(tmp_path / "logits.npz", arrays)
    record = read_json(run_calibrate(tmp_path, model="cnn")["json"])
    assert record["fitted"] is False and "after" not in record
    assert "every sample is classified correctly" in record["not_fitted_reason"]
    assert "500 'val' samples" in record["not_fitted_reason"]
    assert no_nulls(record)


def test_a_model_with_only_the_test_set_held_out_is_not_fitted_on_it(tmp_path):
    assert calibration_sets("full") == (None, "test")
    assert calibration_sets("p1") == ("p2", "test")
    preset = tmp_path / "full.yaml"
    cnn = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["models"]["cnn"]
    preset.write_text(yaml.safe_dump({"models": {"cnn_full": {**cnn, "train_set": "full"}}}))
    write_logits(tmp_path / "logits.npz", sets=("test",))
    record = read_json(run_calibrate(tmp_path, model="cnn_full", config=(CONFIG, str(preset)))["json"])
    assert record["fitted"] is False and record["fit_set"] == "none"
    assert "only the report set 'test' is held out" in record["not_fitted_reason"]


def test_missing_logits_are_named(tmp_path):
    write_logits(tmp_path / "logits.npz", sets=("test",))
    with pytest.raises(ArtifactError, match=r"logits.npz lacks arrays \['val_logits', 'val_labels'\]"):
        run_calibrate(tmp_path, model="cnn")


def test_the_report_puts_fitted_t_next_to_the_distillation_t(tmp_path):
    paths = []
    for model, t_true in (("cnn", 1.5), ("student_T20", 6.0), ("student_T100", 20.0)):
        (tmp_path / model).mkdir()
        write_logits(tmp_path / model / "logits.npz", t_true=t_true)
        out = {k: tmp_path / model / f"out.{k}" for k in ("json", "csv", "png")}
        calibrate_step([CONFIG], model, 0, tmp_path / model / "logits.npz", out["json"], out["csv"], out["png"])
        paths.append(out["json"])
    # And one that could not be fitted: it stays in the table with its reason.
    record = read_json(paths[0])
    record.update(model="teacher_T5", fitted=False, not_fitted_reason="every sample is classified correctly",
                  distillation_temperature=5.0)
    del record["after"], record["fitted_temperature"]
    paths.append(tmp_path / "unfitted.json")
    paths[-1].write_text(json.dumps(record))
    table_path, md_path, fig_path = tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.png"
    calibration_report_step(paths, table_path, md_path, fig_path)
    table = pd.read_csv(table_path).set_index("model")
    assert table.loc["student_T100", "distillation_temperature"] == 100
    assert table.loc["student_T100", "fitted_temperature"] == pytest.approx(20.0, rel=0.15)
    assert np.isnan(table.loc["cnn", "distillation_temperature"])
    assert not table.loc["teacher_T5", "fitted"] and np.isnan(table.loc["teacher_T5", "ece_after"])
    markdown = md_path.read_text()
    assert "Models not fitted (reason in `note`): teacher_T5." in markdown
    assert "calibrate_model" in markdown and fig_path.stat().st_size > 10_000


def test_the_cli_step_runs_and_refuses_a_non_calibration_file(tmp_path):
    write_logits(tmp_path / "logits.npz")
    args = ["calibrate", "--config", CONFIG, "--model", "cnn", "--seed", "1", "--logits", str(tmp_path / "logits.npz"),
            "--metrics", str(tmp_path / "m.json"), "--bins", str(tmp_path / "b.csv"),
            "--figure", str(tmp_path / "r.png")]
    assert main(args) == 0
    assert read_json(tmp_path / "m.json")["seed"] == 1
    (tmp_path / "other.json").write_text("{}")
    assert main(["calibration-report", "--metrics", str(tmp_path / "other.json"), "--table", str(tmp_path / "t.csv"),
                 "--markdown", str(tmp_path / "t.md"), "--figure", str(tmp_path / "t.png")]) == 2
