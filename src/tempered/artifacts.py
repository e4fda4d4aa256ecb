"""The one way to save and load each artifact kind: JSON, arrays, tables, checkpoints.

Every write goes to a temporary file in the target directory and is renamed into place, so a killed job
never leaves a partial file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: the Snakefile imports this module, and torch alone takes seconds
    import pandas as pd
    import torch


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class ArtifactError(ValueError):
    """An artifact is missing, corrupt or of the wrong kind; the message names the file."""


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; artifacts get the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path | str, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def metrics_safe(obj: Any) -> Any:
    """What `dvc metrics show` can parse: nested mappings of numbers, strings and booleans. Nulls, NaN and
    empty mappings are dropped (DVC fails on them) and lists of scalars become one comma-separated string."""
    if isinstance(obj, Mapping):
        cleaned = {str(k): metrics_safe(v) for k, v in obj.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != {}}
    if isinstance(obj, list | tuple):
        if all(isinstance(v, str | int | float | bool | np.generic) for v in obj):
            return ",".join(str(metrics_safe(v)) for v in obj)
        return metrics_safe({str(i): v for i, v in enumerate(obj)})
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN
        return None
    return obj


def write_metrics(path: Path | str, obj: Mapping[str, Any]) -> None:
    """The one way to write a DVC metrics file (results/metrics/...)."""
    write_json(path, metrics_safe(obj))


def read_json(path: Path | str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact {path}") from None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"artifact {path} is not valid JSON: {err}") from err


def write_arrays(path: Path | str, arrays: Mapping[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def read_arrays(path: Path | str, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact {path}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        # BadZipFile covers truncation and altered bytes (every member's CRC-32 is checked on read).
        raise ArtifactError(f"artifact {path} is not a readable .npz file: {err}") from err
    missing = [key for key in required if key not in arrays]
    if missing:
        raise ArtifactError(f"artifact {path} lacks arrays {missing}; it holds {sorted(arrays)}")
    return arrays


def write_table(path: Path | str, frame: pd.DataFrame) -> None:
    write_bytes(path, frame.to_csv(index=False, lineterminator="\n").encode())


def write_checkpoint(path: Path | str, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Save tensors plus JSON-able metadata (architecture, provenance); loadable with weights_only=True."""
    import torch

    buffer = io.BytesIO()
    payload = {"state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "meta": json.dumps(meta)}
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())


def read_checkpoint(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a checkpoint written by write_checkpoint; refuses pickled code (weights_only=True)."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"missing checkpoint {path}") from None
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for a bad file
        raise ArtifactError(f"checkpoint {path} refused: not a plain weights file ({err})") from err
    if not isinstance(payload, dict) or set(payload) != {"state_dict", "meta"}:
        raise ArtifactError(f"checkpoint {path} is not a tempered checkpoint (expected state_dict + meta)")
    return payload["state_dict"], json.loads(payload["meta"])


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
