"""Choose the compute device and make CPU runs repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch

from tempered.config import ConfigError

# np.random.seed takes 0 .. 2**32 - 1; the schema bounds every config seed to it, and --seed is checked here.
MAX_SEED = 2**32 - 1


def resolve_device(name: str) -> torch.device:
    """'auto' means CUDA when present, else CPU; asking for CUDA where there is none is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("compute.device: 'cuda' but torch sees no CUDA device here; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed every RNG the pipeline touches and return a dedicated generator for data order."""
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed {seed} is outside 0 .. 2**32 - 1, the range numpy's generator takes")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
