"""What every artifact records about how it was made.

No wall-clock time goes in: two runs with the same inputs must write bit-identical artifacts.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping
from functools import cache
from typing import Any

import torch

from tempered import __version__
from tempered.config import REPO_ROOT, config_hash


@cache
def code_version() -> str:
    """The package version plus the git commit of the working tree (and '+dirty' when it has changes)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")


def provenance(
    config_section: Any,
    *,
    seed: int | None,
    device: torch.device | str,
    data_digests: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "config_hash": config_hash(config_section),
        "seed": seed,
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        # The CPU's vector instruction set picks torch's kernels, whose float rounding differs (AVX2 vs AVX512):
        # the same code, seed and data can train other weights on another machine, and this says which ran.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "data_digests": dict(data_digests or {}),
    }
