import io
import os
import pickle

import numpy as np
import pytest
import torch

from tempered.artifacts import (
    ArtifactError,
    atomic_path,
    read_arrays,
    read_checkpoint,
    read_records,
    write_arrays,
    write_checkpoint,
    write_json,
)
from tempered.models import build_model
from tempered.models.checkpoints import load_model
from tests.conftest import damage


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"ok": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"partial":')
        raise RuntimeError("killed")
    assert target.read_text().strip().endswith("}") and '"ok": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"], "no temporary file left behind"


def test_written_files_get_normal_permissions(tmp_path):
    write_json(tmp_path / "a.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_arrays_roundtrip_and_missing_keys_are_named(tmp_path):
    write_arrays(tmp_path / "a.npz", {"x": np.arange(3)})
    np.testing.assert_array_equal(read_arrays(tmp_path / "a.npz")["x"], np.arange(3))
    with pytest.raises(ArtifactError, match=r"lacks arrays \['y'\]"):
        read_arrays(tmp_path / "a.npz", required=("y",))
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="bad.npz"):
        read_arrays(tmp_path / "bad.npz")


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_npz_is_refused_naming_the_file(tmp_path, how):
    """Truncation, or one altered byte inside an array (zip's CRC-32 catches it): an error naming the file."""
    path = tmp_path / "images.npz"
    write_arrays(path, {"x": np.arange(4096, dtype=np.int64)})
    damage(path, how)
    with pytest.raises(ArtifactError, match="images.npz is not a readable .npz file"):
        read_arrays(path)


def test_a_record_of_the_wrong_kind_is_refused_naming_the_file_and_keys(tmp_path):
    good, wrong = tmp_path / "good.json", tmp_path / "wrong.json"
    good.write_text('{"ood": {}, "protocol": {}}')
    wrong.write_text('{"fitted": true}')
    assert read_records([good], "an OOD metrics", ("ood", "protocol")) == [{"ood": {}, "protocol": {}}]
    with pytest.raises(ArtifactError, match=r"wrong\.json is not an OOD metrics file \(no 'ood'/'protocol' keys\)"):
        read_records([good, wrong], "an OOD metrics", ("ood", "protocol"))


def test_checkpoint_roundtrip(tmp_path, repo_config):
    model = build_model(repo_config["models"]["cnn"])
    write_checkpoint(tmp_path / "m.pt", model.state_dict(), {"model_config": repo_config["models"]["cnn"]})
    state, meta = read_checkpoint(tmp_path / "m.pt")
    assert meta["model_config"]["architecture"] == "papernot_cnn"
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "meta": Payload()}, buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ArtifactError, match="refused: not a plain weights file"):
        read_checkpoint(path)


def test_checkpoint_of_another_architecture_is_refused(tmp_path, repo_config):
    cfg = repo_config["models"]["cnn"]
    other = torch.nn.Linear(784, 10)
    write_checkpoint(tmp_path / "linear.pt", other.state_dict(), {"model_config": {**cfg, "architecture": "fc10"}})
    with pytest.raises(ArtifactError, match="holds architecture 'fc10'"):
        load_model(cfg, "cnn", tmp_path / "linear.pt")
    # Same claimed architecture, wrong tensors: refused by shape, not loaded half-way.
    write_checkpoint(tmp_path / "liar.pt", other.state_dict(), {"model_config": cfg})
    with pytest.raises(ArtifactError, match="does not fit papernot_cnn"):
        load_model(cfg, "cnn", tmp_path / "liar.pt")


def test_metrics_are_made_parseable_by_dvc(tmp_path):
    from tempered.artifacts import metrics_safe, write_metrics

    raw = {"a": 1.0, "nan": float("nan"), "none": None, "empty": {}, "seeds": [0, 1, 2], "np": np.float32(0.5),
           "nested": {"skipped": {}, "rows": [{"x": 1}, {"x": 2}]}}
    assert metrics_safe(raw) == {"a": 1.0, "seeds": "0,1,2", "np": 0.5,
                                 "nested": {"rows": {"0": {"x": 1}, "1": {"x": 2}}}}
    write_metrics(tmp_path / "m.json", raw, not_measured=("nan",))  # an accidental NaN is refused
    assert "null" not in (tmp_path / "m.json").read_text()


def test_every_step_runs_with_the_configured_thread_count(tmp_path, monkeypatch):
    from tempered.cli import use_config_threads
    from tests.conftest import REPO_ROOT

    overlay = tmp_path / "threads.yaml"
    overlay.write_text("compute: {threads: 1}\n")
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    try:
        use_config_threads([str(REPO_ROOT / "config.yaml"), str(overlay)])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
