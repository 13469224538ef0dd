"""Small torch helpers shared by the controller and the tasks: the device option and seeded randomness
that leaves the caller's global RNG untouched."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def resolve_device(name: str) -> torch.device:
    """``"auto"`` = CUDA when present, else CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seeded_rng_state(seed: int) -> torch.Tensor:
    """The global CPU RNG state ``torch.manual_seed(seed)`` gives, without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.get_rng_state()


def seeded_init(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with initial weights drawn from ``seed``, leaving the caller's global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def check_finite_loss(loss: float, epoch: int) -> float:
    """``loss``, unless it is NaN or infinite: then the training diverged, and an evaluation fails rather than
    scoring garbage."""
    if not math.isfinite(loss):
        raise FloatingPointError(f"training loss is {loss} in epoch {epoch} (the training diverged; a lower "
                                 "learning rate or gradient clipping may help)")
    return loss
