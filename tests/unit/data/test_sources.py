import hashlib
from pathlib import Path

import numpy as np
import pytest

from tempered.data import idx
from tempered.data.sources import DataSourceError, fetch_dataset
from tests.unit.data.test_idx import idx_bytes

SHAPES = {"train-images-idx3-ubyte": (3, 28, 28), "train-labels-idx1-ubyte": (3,),
          "t10k-images-idx3-ubyte": (2, 28, 28), "t10k-labels-idx1-ubyte": (2,)}


@pytest.fixture
def tiny_pins(monkeypatch):
    """Pin a tiny fake dataset so sources can be exercised without real downloads."""
    files = {name: idx_bytes(np.full(shape, i, np.uint8)) for i, (name, shape) in enumerate(SHAPES.items())}
    pins = {name: idx.PinnedFile(name, hashlib.sha256(data).hexdigest(), SHAPES[name]) for name, data in files.items()}
    monkeypatch.setitem(idx.PINNED, "tiny", pins)
    monkeypatch.setattr("tempered.data.sources.PINNED", idx.PINNED)
    return files


def writer(files, calls, name, corrupt=None):
    def source(cfg, workdir: Path) -> Path:
        calls.append(name)
        for fname, data in files.items():
            (workdir / fname).write_bytes(data[:-5] if fname == corrupt else data)
        return workdir

    return source


def failing(calls, name, message):
    def source(cfg, workdir):
        calls.append(name)
        raise OSError(message)

    return source


def test_first_working_source_wins_and_order_is_config_order(tiny_pins, tmp_path):
    calls = []
    sources = {"a": failing(calls, "a", "offline"), "b": writer(tiny_pins, calls, "b"),
               "c": writer(tiny_pins, calls, "c")}
    result = fetch_dataset("tiny", {"sources": ["a", "b", "c"]}, tmp_path, sources)
    assert calls == ["a", "b"]
    assert result.source == "b"
    assert result.failures == [{"source": "a", "reason": "OSError: offline"}]
    assert result.arrays["t10k-labels-idx1-ubyte"].tolist() == [3, 3]


def test_a_source_with_a_truncated_file_falls_through_and_is_discarded(tiny_pins, tmp_path, caplog):
    calls = []
    sources = {"bad": writer(tiny_pins, calls, "bad", corrupt="train-images-idx3-ubyte"),
               "good": writer(tiny_pins, calls, "good")}
    result = fetch_dataset("tiny", {"sources": ["bad", "good"]}, tmp_path, sources)
    assert result.source == "good"
    assert "sha256 mismatch for train-images-idx3-ubyte" in result.failures[0]["reason"]
    assert "source 'bad' failed" in caplog.text
    assert not (tmp_path / "bad").exists(), "a failed attempt's files must not be kept"


def test_all_sources_failing_lists_each_reason_and_how_to_supply_a_local_copy(tiny_pins, tmp_path):
    calls = []
    sources = {"a": failing(calls, "a", "no network"), "local": failing(calls, "local", "no local dir")}
    with pytest.raises(DataSourceError) as err:
        fetch_dataset("tiny", {"sources": ["a", "local"]}, tmp_path, sources)
    message = str(err.value)
    assert "- a: OSError: no network" in message and "- local: OSError: no local dir" in message
    assert "data.tiny.local_dir" in message


def test_local_directory_source_with_a_bad_file_is_refused_but_not_deleted(tiny_pins, tmp_path):
    local = tmp_path / "mine"
    local.mkdir()
    for name, data in tiny_pins.items():
        (local / f"{name}.gz").write_bytes(__import__("gzip").compress(data))
    (local / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    from tempered.data.sources import directory_source

    with pytest.raises(DataSourceError, match="t10k-labels"):
        fetch_dataset("tiny", {"sources": ["local"], "local_dir": str(local)}, tmp_path / "work",
                      {"local": directory_source("local_dir", "local directory")})
    assert (local / "t10k-labels-idx1-ubyte.gz").exists(), "the user's own file is never deleted"


def test_local_directory_source_reads_gz_files(tiny_pins, tmp_path):
    import gzip

    from tempered.data.sources import directory_source

    local = tmp_path / "mine"
    local.mkdir()
    for name, data in tiny_pins.items():
        (local / f"{name}.gz").write_bytes(gzip.compress(data))
    result = fetch_dataset("tiny", {"sources": ["local"], "local_dir": str(local)}, tmp_path / "work",
                           {"local": directory_source("local_dir", "local directory")})
    assert result.source == "local"
