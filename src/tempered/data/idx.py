"""Parse IDX files (LeCun's MNIST format) and check them against pinned digests.

Digests are of the uncompressed bytes, so a raw file and its .gz give the same answer.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08


class IdxError(ValueError):
    """An IDX file is malformed, truncated or not the pinned file; the message names it."""


@dataclass(frozen=True)
class PinnedFile:
    name: str  # canonical raw name, e.g. train-images-idx3-ubyte
    sha256: str
    shape: tuple[int, ...]


def _pins(digests: dict[str, str], n_train: int, n_test: int) -> dict[str, PinnedFile]:
    shapes = {
        "train-images-idx3-ubyte": (n_train, 28, 28),
        "train-labels-idx1-ubyte": (n_train,),
        "t10k-images-idx3-ubyte": (n_test, 28, 28),
        "t10k-labels-idx1-ubyte": (n_test,),
    }
    return {name: PinnedFile(name, digests[name], shapes[name]) for name in shapes}


PINNED = {
    "mnist": _pins(
        {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        60_000,
        10_000,
    ),
    "fashion_mnist": _pins(
        {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        60_000,
        10_000,
    ),
}


def read_raw_bytes(path: Path) -> bytes:
    """The uncompressed content of a raw or gzip-compressed IDX file."""
    data = Path(path).read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise IdxError(f"{path}: corrupt or truncated gzip stream ({err})") from err
    return data


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse an unsigned-byte IDX file: magic 0x0000 08 <ndim>, ndim big-endian uint32 sizes, then data."""
    if len(data) < 4:
        raise IdxError(f"{source}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise IdxError(f"{source}: bad magic number {data[:4].hex()} (expected 0000 08 <ndim>)")
    if data[2] != UBYTE:
        raise IdxError(f"{source}: element type 0x{data[2]:02x} is not unsigned byte (0x08)")
    ndim = data[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_len:
        raise IdxError(f"{source}: header declares {ndim} dimensions but the file has {len(data)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    # math.prod, not np.prod: a forged header's sizes can overflow int64 and wrap to the file's real size.
    expected = header_len + math.prod(shape)
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxError(f"{source}: {kind}: shape {shape} needs {expected} bytes, file has {len(data)} "
                      f"(the shape is the header's claim; nothing was allocated for it)")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape).copy()


def load_verified(path: Path, pin: PinnedFile) -> tuple[np.ndarray, str]:
    """Read, digest-check and parse one file; return (array, sha256). Any mismatch raises IdxError."""
    data = read_raw_bytes(path)
    actual = hashlib.sha256(data).hexdigest()
    if actual != pin.sha256:
        raise IdxError(
            f"{path}: sha256 mismatch for {pin.name}: expected {pin.sha256}, got {actual} "
            f"({len(data)} bytes); the file is not used"
        )
    array = parse_idx(data, str(path))
    if array.shape != pin.shape:
        raise IdxError(f"{path}: shape {array.shape}, expected {pin.shape}")
    return array, actual
