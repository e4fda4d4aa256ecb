"""The one way to save and load each artifact kind: JSON, arrays, tables, checkpoints.

Every write goes to a temporary file in the target directory and is renamed into place, so a killed job
never leaves a partial file that looks complete.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import io
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tempered.config import non_finite_numbers

if TYPE_CHECKING:  # imported where used: the Snakefile imports this module, and torch alone takes seconds
    import pandas as pd
    import torch


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()

# What zipfile, zlib and numpy raise for a damaged or forged archive (a flipped byte in a zip header can surface
# as any of them); each becomes an ArtifactError naming the file.
_DAMAGED = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, struct.error,
            KeyError, IndexError)


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
    except OSError as err:
        if err.errno == errno.ENOSPC and err.filename is None:
            err.filename = str(path)  # a failed write or fsync names no file: name the artifact being written
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path | str, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def metrics_safe(obj: Any) -> Any:
    """What `dvc metrics show` can parse: nested mappings of numbers, strings and booleans. Nulls, NaN and
    empty mappings are dropped (DVC fails on them) and lists of scalars become one comma-separated string.
    write_metrics refuses a NaN before it gets here unless the caller declared it not measured."""
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


def _drop_keys(obj: Any, keys: set[str], prefix: str = "") -> Any:
    if isinstance(obj, Mapping):
        return {k: _drop_keys(v, keys, f"{prefix}{k}.") for k, v in obj.items() if f"{prefix}{k}" not in keys}
    if isinstance(obj, list | tuple) and any(key.startswith(prefix) for key in keys):
        return _drop_keys({str(i): v for i, v in enumerate(obj)}, keys, prefix)
    return obj


def checked_metrics(path: Path | str, obj: Mapping[str, Any], not_measured: tuple[str, ...] = ()) -> Any:
    """The metrics record as write_metrics would write it, or ArtifactError if a number in it is not finite.

    A NaN or infinite number is an accident (diverged weights, an empty mean) and is refused, naming the file,
    the model and the key: dropping it silently only moves the failure to a KeyError in some later report.
    A value that is legitimately not measured is said so explicitly: the caller omits the key, writes None,
    or names the key in `not_measured` (dotted keys; fnmatch patterns such as "targets.*.fitted_temperature"),
    and then a NaN there is left out of the file. A step calls this before its first write, so that a refused
    record leaves no output behind.
    """
    bad = non_finite_numbers(obj)
    allowed = {key for key in bad if any(fnmatch.fnmatchcase(key, pattern) for pattern in not_measured)}
    refused = {key: value for key, value in bad.items() if key not in allowed}
    if refused:
        model = obj.get("model")
        owner = f" of model {model!r}" if isinstance(model, str) else ""
        listed = ", ".join(f"{key} = {value}" for key, value in sorted(refused.items()))
        raise ArtifactError(f"metrics {path}{owner}: non-finite metric {listed}; not written (a value that "
                            f"cannot be measured must be omitted or declared not_measured by the step)")
    return metrics_safe(_drop_keys(obj, allowed) if allowed else obj)


def write_metrics(path: Path | str, obj: Mapping[str, Any], not_measured: tuple[str, ...] = ()) -> None:
    """The one way to write a DVC metrics file (results/metrics/...); see checked_metrics for NaN."""
    write_json(path, checked_metrics(path, obj, not_measured))


def read_json(path: Path | str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact {path}") from None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"artifact {path} is not valid JSON: {err}") from err


def read_records(paths: Sequence[Path | str], kind: str, keys: Sequence[str]) -> list[Any]:
    """The JSON records a report step gathers, each checked to be a `kind` file (it holds every one of `keys`): a
    wrong file passed in is named here, not met later as a KeyError inside a table."""
    records = [read_json(p) for p in paths]
    for path, record in zip(paths, records, strict=True):
        if not isinstance(record, Mapping) or any(key not in record for key in keys):
            raise ArtifactError(f"{path} is not {kind} file (no {'/'.join(repr(k) for k in keys)} keys)")
    return records


def write_arrays(path: Path | str, arrays: Mapping[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def _check_entry_count(path: Path | str, archive: zipfile.ZipFile) -> None:
    """zipfile lists the members its central directory parses to; one altered length field there can swallow
    the entries after it, silently. The end record counts them independently."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - (22 + 0xFFFF)))
        tail = handle.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) < end + 12:
        raise ArtifactError(f"artifact {path}: no zip end-of-central-directory record")
    counted = struct.unpack("<H", tail[end + 10:end + 12])[0]
    if counted != 0xFFFF and counted != len(archive.infolist()):  # 0xFFFF: a ZIP64 archive keeps it elsewhere
        raise ArtifactError(f"artifact {path}: the zip directory lists {len(archive.infolist())} members, its end "
                            f"record counts {counted}")


def _check_array_sizes(path: Path | str) -> None:
    """Refuse an .npy member whose header claims more (or fewer) bytes than it holds, before numpy allocates the
    claimed shape: a forged header could otherwise ask for terabytes (MemoryError) from a file of a few bytes."""
    with zipfile.ZipFile(path) as archive:
        _check_entry_count(path, archive)
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ArtifactError(f"artifact {path}: array {info.filename[:-4]!r} has .npy format version "
                                        f"{version}, expected 1.0 or 2.0")
                if dtype.hasobject:
                    continue  # np.load refuses it (allow_pickle=False), with its own message
                claimed = math.prod(shape) * dtype.itemsize
                held = info.file_size - member.tell()
                if claimed != held:
                    raise ArtifactError(f"artifact {path}: array {info.filename[:-4]!r} claims shape {shape} of "
                                        f"{dtype} ({claimed} bytes) but holds {held} bytes")


def read_arrays(path: Path | str, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    try:
        _check_array_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact {path}") from None
    except ArtifactError:
        raise
    except _DAMAGED as err:
        # BadZipFile covers truncation and altered bytes (every member's CRC-32 is checked on read); zlib.error
        # an altered byte that breaks the deflate stream itself.
        raise ArtifactError(f"artifact {path} is not a readable .npz file: {err}") from err
    missing = [key for key in required if key not in arrays]
    if missing:
        raise ArtifactError(f"artifact {path} lacks arrays {missing}; it holds {sorted(arrays)}")
    return arrays


def write_table(path: Path | str, frame: pd.DataFrame) -> None:
    write_bytes(path, frame.to_csv(index=False, lineterminator="\n").encode())


def tensors_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_checkpoint(path: Path | str, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Save tensors plus JSON-able metadata (architecture, provenance); loadable with weights_only=True. The
    tensors' digest goes with them: read_checkpoint checks what torch actually loaded against it."""
    import torch

    buffer = io.BytesIO()
    tensors = {k: v.detach().cpu() for k, v in state_dict.items()}
    payload = {"state_dict": tensors, "meta": json.dumps(meta), "tensors_sha256": tensors_sha256(tensors)}
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())


def _check_archive(path: Path | str) -> None:
    """torch.load reads a checkpoint's zip members without checking their CRC-32: one flipped byte in a weight
    would load silently. Check every member first."""
    try:
        with zipfile.ZipFile(path) as archive:
            _check_entry_count(path, archive)
            bad = archive.testzip()
    except FileNotFoundError:
        raise ArtifactError(f"missing checkpoint {path}") from None
    except (*_DAMAGED, RuntimeError) as err:
        raise ArtifactError(f"checkpoint {path} refused: not an intact zip archive ({err})") from err
    if bad is not None:
        raise ArtifactError(f"checkpoint {path} refused: member {bad} fails its CRC-32 check (the file was altered "
                            f"or damaged after it was written)")


def read_checkpoint(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a checkpoint written by write_checkpoint: every zip member's CRC-32 checked, pickled code refused
    (weights_only=True), the loaded tensors' digest checked against the recorded one, metadata a JSON object,
    every floating-point tensor finite."""
    import torch

    _check_archive(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"missing checkpoint {path}") from None
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for a bad file
        raise ArtifactError(f"checkpoint {path} refused: not a plain weights file ({err})") from err
    # Checkpoints written before the digest was recorded have no tensors_sha256; their zip CRCs still hold.
    if not isinstance(payload, dict) or set(payload) - {"tensors_sha256"} != {"state_dict", "meta"}:
        raise ArtifactError(f"checkpoint {path} is not a tempered checkpoint (expected state_dict + meta)")
    state_dict = payload["state_dict"]
    if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ArtifactError(f"checkpoint {path} refused: key 'state_dict' is not a mapping of names to tensors")
    if "tensors_sha256" in payload:
        # torch's zip reader and Python's can read a damaged central directory differently (one flipped byte
        # there did in testing): the CRCs Python checked are then not of the bytes torch loaded. This digest is.
        actual = tensors_sha256(state_dict)
        if actual != payload["tensors_sha256"]:
            raise ArtifactError(f"checkpoint {path} refused: its tensors hash to {actual}, but "
                                f"{payload['tensors_sha256']!r} was recorded when it was written")
    try:
        meta = json.loads(payload["meta"]) if isinstance(payload["meta"], str) else None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"checkpoint {path} refused: key 'meta' is not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise ArtifactError(f"checkpoint {path} refused: key 'meta' is not a JSON object")
    for name, tensor in state_dict.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise ArtifactError(f"checkpoint {path} refused: tensor {name} holds {bad} non-finite values "
                                    f"(NaN or inf) of {tensor.numel()}; the training diverged or the file was "
                                    f"altered")
    return state_dict, meta


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(*paths: Path | str) -> dict[str, str]:
    """File name -> sha256 of each file: the data digests a step's provenance records of its inputs."""
    return {Path(path).name: sha256_file(path) for path in paths}
