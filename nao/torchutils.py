"""Small torch helpers shared by the controller and the tasks: the device option and seeded randomness
that leaves the caller's global RNG untouched."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def resolve_device(name: str) -> torch.device:
    """``"auto"`` = CUDA when present, else CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class TrainingRng:
    """The global torch RNG state that one training owns: dropout and drop-path draw from the global
    generator of the training's device (on CUDA, the device's own). ``with rng.active():`` swaps this
    state in for an epoch and the caller's back out afterwards, keeping where the epoch got to, so the
    epochs continue one stream, the caller's RNG is left alone, and a checkpoint resumes exactly."""

    def __init__(self, seed: int, device: torch.device | str) -> None:
        device = torch.device(device)
        self.cuda = device if device.type == "cuda" else None
        with self._forked():
            torch.manual_seed(seed)
            self.state = self._current()

    def _forked(self):
        return torch.random.fork_rng(devices=[] if self.cuda is None else [self.cuda])

    def _current(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.cuda is not None:
            state["cuda"] = torch.cuda.get_rng_state(self.cuda)
        return state

    @contextmanager
    def active(self) -> Iterator[None]:
        with self._forked():
            torch.set_rng_state(self.state["cpu"])
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.state["cuda"], self.cuda)
            yield
            self.state = self._current()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, torch.Tensor] | torch.Tensor) -> None:
        """A saved state; a bare tensor is the CPU state of a checkpoint written before CUDA's was kept."""
        self.state = {**self.state, **(state if isinstance(state, dict) else {"cpu": state})}


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """The block runs with torch's global generators seeded from ``seed``; the caller's states are given back
    after it, CUDA's too where CUDA is in use (where it is not, it stays uninitialised: the seed then reaches
    CUDA's generators only if the block starts CUDA)."""
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def seeded_init(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with initial weights drawn from ``seed``, leaving the caller's global RNG as it was."""
    with seeded(seed):
        return build()


def check_finite_loss(loss: float, epoch: int) -> float:
    """``loss``, unless it is NaN or infinite: then the training diverged, and an evaluation fails rather than
    scoring garbage."""
    if not math.isfinite(loss):
        raise FloatingPointError(f"training loss is {loss} in epoch {epoch} (the training diverged; a lower "
                                 "learning rate or gradient clipping may help)")
    return loss
