"""Hostile and corrupt input: altered checkpoints, bad array contents, forged headers, NaN weights and metrics,
malformed checkpoint metadata. Each is refused with an error naming the file and the problem; at the CLI, with
exit status 2, no traceback and nothing written."""

from __future__ import annotations

import io
import json
import math
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tempered.artifacts import (
    ArtifactError,
    read_arrays,
    read_checkpoint,
    sha256_file,
    tensors_sha256,
    write_arrays,
    write_checkpoint,
    write_json,
    write_metrics,
)
from tempered.config import REPO_ROOT
from tempered.data.arrays import read_images, subset
from tempered.data.idx import IdxError, parse_idx
from tempered.data.split import make_split
from tempered.models import build_model
from tempered.models.checkpoints import load_model

N_TRAIN, N_TEST = 20, 12


def tiny_images(rng=None) -> dict[str, np.ndarray]:
    rng = rng or np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8), "y_train": np.arange(N_TRAIN) % 10,
            "x_test": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8), "y_test": np.arange(N_TEST) % 10}


def cnn_checkpoint(path: Path, config: dict, meta: dict | None = None, nan_weight: bool = False) -> Path:
    torch.manual_seed(0)
    state = build_model(config["models"]["cnn"]).state_dict()
    if nan_weight:
        first = next(k for k, v in state.items() if v.is_floating_point())
        state[first].view(-1)[3] = math.nan
    write_checkpoint(path, state, {"model": "cnn", "model_config": config["models"]["cnn"],
                                   "provenance": {"seed": 0}} if meta is None else meta)
    return path


def member_data_offset(path: Path, name: str) -> tuple[int, int]:
    """Where a stored zip member's bytes start in the file, and how many there are."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def flip_inside_largest_tensor(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        member = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start, size = member_data_offset(path, member.filename)
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return member.filename


# Item 2: a flipped byte in a checkpoint.

def test_a_flipped_byte_inside_a_checkpoint_member_is_refused_naming_file_and_member(tmp_path, repo_config):
    path = cnn_checkpoint(tmp_path / "model.pt", repo_config)
    member = flip_inside_largest_tensor(path)
    # torch.load alone would accept it: the zip CRCs are what catches it.
    torch.load(path, map_location="cpu", weights_only=True)
    with pytest.raises(ArtifactError, match=rf"checkpoint {path} refused: member {member} fails its CRC-32"):
        read_checkpoint(path)


def test_tensors_that_differ_from_the_digest_recorded_at_write_time_are_refused(tmp_path):
    path = tmp_path / "model.pt"
    state = torch.nn.Linear(3, 2).state_dict()
    recorded = tensors_sha256(state)
    buffer = io.BytesIO()
    torch.save({"state_dict": {**state, "bias": state["bias"] + 1}, "meta": "{}", "tensors_sha256": recorded}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ArtifactError, match=rf"checkpoint {path} refused: its tensors hash to [0-9a-f]{{64}}, but "
                                            rf"'{recorded}' was recorded"):
        read_checkpoint(path)


def test_a_checkpoint_that_is_no_zip_archive_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(ArtifactError, match=rf"checkpoint {path} refused: not an intact zip archive"):
        read_checkpoint(path)


# Item 3: bad array contents, forged headers, the manifest digest.

def _nan_pixels(images):
    x = images["x_train"].astype(np.float32)
    x[0, 0, 0] = np.nan
    return {**images, "x_train": x}


BAD_ARRAYS = {
    "nan_pixels": (_nan_pixels, r"'x_train': 1 non-finite pixels"),
    "above_255": (lambda im: {**im, "x_test": im["x_test"].astype(np.int16) + 300},
                  r"'x_test': pixels range over \[\d+, \d+\], outside 0..255"),
    "already_scaled": (lambda im: {**im, "x_train": im["x_train"].astype(np.float32) / 255},
                       r"'x_train': pixels range over .*already scaled to \[0, 1\]"),
    "wrong_image_shape": (lambda im: {**im, "x_train": im["x_train"][:, :, :27]},
                          r"'x_train': shape \(20, 28, 27\), expected \(N, 28, 28\)"),
    "labels_out_of_range": (lambda im: {**im, "y_test": np.where(np.arange(N_TEST) == 5, 10, im["y_test"])},
                            r"'y_test': 1 labels outside 0..9 \(first: 10 at row 5\)"),
    "negative_label": (lambda im: {**im, "y_train": im["y_train"] - 1}, r"'y_train': 2 labels outside 0..9"),
    "float_labels": (lambda im: {**im, "y_train": im["y_train"].astype(np.float64)},
                     r"'y_train': dtype float64, expected integer class labels"),
    "label_shape": (lambda im: {**im, "y_train": im["y_train"][:, None]}, r"'y_train': shape \(20, 1\)"),
    "mismatched_rows": (lambda im: {**im, "y_train": im["y_train"][:-3]},
                        r"20 images in 'x_train' but 17 labels in 'y_train'"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_bad_array_contents_are_refused_naming_file_and_problem(tmp_path, case):
    make, problem = BAD_ARRAYS[case]
    path = tmp_path / "mnist.npz"
    write_arrays(path, make(tiny_images()))
    with pytest.raises(ArtifactError, match=rf"artifact {path}: .*{problem}"):
        read_images(path)


def test_good_arrays_load_and_scale_once(tmp_path):
    path = tmp_path / "mnist.npz"
    write_arrays(path, tiny_images())
    x, y = subset(read_images(path), make_split(5, 0, N_TRAIN, N_TEST), "test")
    assert x.shape == (N_TEST, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1 and y.dtype == torch.int64


def test_a_split_indexing_past_the_arrays_is_refused(tmp_path):
    images = tiny_images()
    with pytest.raises(ArtifactError, match=r"split set 'train' indexes rows .*'x_train' has 20 rows"):
        subset(images, make_split(5, 0, n_train=100, n_test=N_TEST), "train")


def forged_npz(path: Path, shape: tuple[int, ...], body: bytes) -> None:
    """An .npz whose x_train.npy header claims `shape` of uint8 but holds only `body`."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue() + body)


def test_an_npz_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    path = tmp_path / "mnist.npz"
    forged_npz(path, (10**12, 28, 28), bytes(100))
    with pytest.raises(ArtifactError, match=rf"artifact {path}: array 'x_train' claims shape \(1000000000000, 28, "
                                            rf"28\) of uint8 \(784000000000000 bytes\) but holds 100 bytes"):
        read_arrays(path)


def test_the_manifest_digest_is_checked_naming_both_digests(tmp_path):
    path = tmp_path / "mnist.npz"
    write_arrays(path, tiny_images())
    recorded = sha256_file(path)
    write_json(tmp_path / "mnist.manifest.json", {"arrays_sha256": recorded})
    read_images(path)  # matches
    write_arrays(path, tiny_images(np.random.default_rng(1)))  # valid arrays, not the fetched ones
    with pytest.raises(ArtifactError, match=rf"artifact {path}: sha256 mismatch with .*mnist.manifest.json: "
                                            rf"recorded {recorded}, got {sha256_file(path)}"):
        read_images(path)


def idx_header(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("shape", [(2**32 - 1, 2**32 - 1, 2**32 - 1), (2**31, 2**31, 4)])
def test_an_idx_header_claiming_a_huge_shape_is_refused_with_claimed_and_actual_size(shape):
    # (2**31, 2**31, 4) is 2**64 bytes: an int64 product wraps to 0, which a bare header would have matched.
    data = idx_header(shape) + bytes(10)
    needed = 16 + math.prod(shape)
    with pytest.raises(IdxError, match=rf"forged.idx: truncated: shape \({shape[0]}, {shape[1]}, {shape[2]}\) "
                                       rf"needs {needed} bytes, file has {len(data)}"):
        parse_idx(data, "forged.idx")


# Item 4: NaN weights and NaN metrics.

def test_nan_weights_are_refused_on_load_naming_the_file_and_tensor(tmp_path, repo_config):
    path = cnn_checkpoint(tmp_path / "model.pt", repo_config, nan_weight=True)
    with pytest.raises(ArtifactError, match=rf"checkpoint {path} refused: tensor \S+ holds 1 non-finite values"):
        read_checkpoint(path)


@pytest.mark.parametrize("value", [math.nan, math.inf, np.float32("nan")])
def test_a_non_finite_metric_is_an_error_naming_model_and_key(tmp_path, value):
    path = tmp_path / "metrics.json"
    with pytest.raises(ArtifactError, match=rf"metrics {path} of model 'cnn': non-finite metric test\.ece = "):
        write_metrics(path, {"model": "cnn", "seed": 0, "test": {"accuracy": 0.9, "ece": value}})
    assert not path.exists(), "a refused record is not written"


def test_a_metric_declared_not_measured_is_omitted(tmp_path):
    path = tmp_path / "metrics.json"
    record = {"model": "mi200_cnn", "target": {"ece": 0.1, "fitted_temperature": math.nan, "ece_scaled": math.nan},
              "rows": [{"x": 1.0}, {"x": math.nan}], "seeds": [0, 1], "skipped": None}
    write_metrics(path, record, not_measured=("target.fitted_temperature", "target.ece_scaled", "rows.*.x"))
    assert json.loads(path.read_text()) == {"model": "mi200_cnn", "target": {"ece": 0.1}, "rows": {"0": {"x": 1.0}},
                                            "seeds": "0,1"}
    with pytest.raises(ArtifactError, match=r"non-finite metric target\.ece_scaled = nan"):
        write_metrics(path, record, not_measured=("target.fitted_temperature", "rows.*.x"))


# Item 6: malformed checkpoint metadata.

MALFORMED_META = {
    "no_model_config": ({"provenance": {"seed": 0}}, r"key 'model_config.architecture' is missing"),
    "architecture_not_a_string": ({"model_config": {"architecture": 3}, "provenance": {"seed": 0}},
                                  r"key 'model_config.architecture' is int 3, expected str"),
    "model_config_a_list": ({"model_config": ["papernot_cnn"], "provenance": {"seed": 0}},
                            r"key 'model_config.architecture' is missing"),
    "no_provenance": ({"model_config": "CNN"}, r"key 'provenance.seed' is missing"),
    "seed_a_string": ({"model_config": "CNN", "provenance": {"seed": "0"}},
                      r"key 'provenance.seed' is str '0', expected int"),
    "meta_a_list": ([1, 2], r"key 'meta' is not a JSON object"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_META))
def test_malformed_checkpoint_metadata_is_refused_naming_file_and_key(tmp_path, repo_config, case):
    meta, problem = MALFORMED_META[case]
    if isinstance(meta, dict) and meta.get("model_config") == "CNN":
        meta = {**meta, "model_config": repo_config["models"]["cnn"]}
    path = cnn_checkpoint(tmp_path / "model.pt", repo_config, meta=meta)
    with pytest.raises(ArtifactError, match=rf"checkpoint {path} refused: .*{problem}"):
        load_model(repo_config["models"]["cnn"], "cnn", path)


def test_checkpoint_metadata_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "meta": "{not json"}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ArtifactError, match=rf"checkpoint {path} refused: key 'meta' is not valid JSON"):
        read_checkpoint(path)


# The same at the command line: `python -m tempered evaluate` exits 2, names the file, writes nothing.

def tiny_tree(root: Path, config: dict) -> None:
    write_arrays(root / "mnist.npz", tiny_images())
    write_json(root / "mnist.manifest.json", {"arrays_sha256": sha256_file(root / "mnist.npz")})
    write_arrays(root / "split.npz", make_split(5, 0, N_TRAIN, N_TEST))
    cnn_checkpoint(root / "model.pt", config)


def _flip_checkpoint(root, config):
    flip_inside_largest_tensor(root / "model.pt")
    return "model.pt refused: member archive/data/"


def _nan_weights(root, config):
    cnn_checkpoint(root / "model.pt", config, nan_weight=True)
    return "model.pt refused: tensor"


def _nan_pixels_cli(root, config):
    write_arrays(root / "mnist.npz", _nan_pixels(tiny_images()))
    (root / "mnist.manifest.json").unlink()
    return "mnist.npz: array 'x_train': 1 non-finite pixels"


def _manifest_mismatch(root, config):
    write_json(root / "mnist.manifest.json", {"arrays_sha256": "0" * 64})
    return f"sha256 mismatch with mnist.manifest.json: recorded {'0' * 64}, got {sha256_file(root / 'mnist.npz')}"


def _malformed_meta(root, config):
    cnn_checkpoint(root / "model.pt", config, meta={"model_config": config["models"]["cnn"]})
    return "model.pt refused: malformed metadata: key 'provenance.seed' is missing"


CLI_CASES = {"flipped_checkpoint": _flip_checkpoint, "nan_weights": _nan_weights, "nan_pixels": _nan_pixels_cli,
             "manifest_mismatch": _manifest_mismatch, "malformed_metadata": _malformed_meta}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_evaluate_refuses_hostile_input_with_exit_2_and_writes_nothing(tmp_path, repo_config, case):
    tiny_tree(tmp_path, repo_config)
    expected = CLI_CASES[case](tmp_path, repo_config)
    overlay = tmp_path / "one_thread.yaml"
    overlay.write_text("compute: {threads: 1, device: cpu}\n")
    cmd = [sys.executable, "-m", "tempered", "evaluate", "--config", str(REPO_ROOT / "config.yaml"),
           "--config", str(overlay), "--model", "cnn", "--checkpoint", "model.pt", "--images", "mnist.npz",
           "--split", "split.npz", "--logits", "out/logits.npz", "--metrics", "out/metrics.json"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert expected in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "a refused step wrote output"


# Every single flipped byte: refused naming the file, or (a byte zip ignores, such as a timestamp) the same data.

def every_flipped_byte(original: bytes, path, read):
    """read() of `path` holding `original` with each byte flipped in turn: yields (offset, result) for the
    reads that pass; a read that fails must raise the project's error naming the file."""
    for i in range(len(original)):
        data = bytearray(original)
        data[i] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            got = read(path)
        except ArtifactError as err:
            assert str(path) in str(err), (i, err)
            continue
        yield i, got


def test_no_flipped_byte_of_an_npz_loads_different_arrays_or_escapes_as_a_traceback(tmp_path):
    good = tmp_path / "good.npz"
    write_arrays(good, {"x": np.arange(64, dtype=np.int16).reshape(8, 8), "y": np.arange(5, dtype=np.uint8)})
    original, expected = good.read_bytes(), read_arrays(good)
    for i, got in every_flipped_byte(original, tmp_path / "a.npz", read_arrays):
        assert got.keys() == expected.keys() and all(
            np.array_equal(got[k], expected[k]) and got[k].dtype == expected[k].dtype for k in got), i


def test_no_flipped_byte_of_a_checkpoint_loads_different_weights_or_escapes_as_a_traceback(tmp_path):
    good = tmp_path / "good.pt"
    write_checkpoint(good, torch.nn.Linear(3, 2).state_dict(), {"model_config": {"architecture": "x"}})
    original, (state, meta) = good.read_bytes(), read_checkpoint(good)
    for i, (got_state, got_meta) in every_flipped_byte(original, tmp_path / "a.pt", read_checkpoint):
        assert got_meta == meta and got_state.keys() == state.keys() and all(
            torch.equal(got_state[k], state[k]) for k in state), i
