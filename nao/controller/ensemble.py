"""An ensemble of whole controllers as a predictor: K controllers fitted on the same results from K seeds, their
predictions averaged, as BANANAS averages its five networks (White et al. 2021). Each member is an ordinary
:class:`Controller`; the ensemble only predicts (``propose`` steps through one controller's embedding: use a
member for that). Costs K fits; on 1,000 DARTS cells five members rank held-out cells better than one
(docs/benchmarks.md, "Predictors").

>>> ens = ControllerEnsemble(get_space("nb201"), members=5, seed=0, epochs=200)
>>> ens.fit(archs, scores); ens.predict(archs); ens.save("model"); ControllerEnsemble.load("model")
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from nao.controller.controller import ENSEMBLE_FILE, Controller, atomic_write, remove_saved
from nao.errors import ModelDirError
from nao.spaces.base import Arch, SearchSpace

SEED_STRIDE = 1000  # member m has seed ``seed + SEED_STRIDE * m``: ensembles of nearby seeds share no member


class ControllerEnsemble:
    """``members`` controllers of the same hyperparameters (``**hyper``, as :class:`Controller` takes them), member
    ``m`` seeded ``seed + 1000 * m`` (member 0 is the controller ``Controller(space, seed=seed, **hyper)``)."""

    def __init__(self, space: SearchSpace | str, *, members: int, seed: int = 0, minimize: bool = False,
                 **hyper) -> None:
        if members < 1:
            raise ValueError(f"an ensemble needs at least 1 member, got {members}")
        self._set_members([Controller(space, seed=seed + SEED_STRIDE * m, minimize=minimize, **hyper)
                           for m in range(members)], seed)

    def _set_members(self, members: list[Controller], seed: int) -> None:
        self.members, self.seed = members, seed
        self.space, self.minimize = members[0].space, members[0].minimize

    def fit(self, archs: Iterable[Arch | str], scores: Sequence[float], *, epochs: int | None = None,
            progress: Callable[[int, float], None] | None = None) -> list[dict]:
        """Fit every member on the same (arch, score) pairs, one after the other (``progress(epoch, loss)`` after
        every epoch of each); each member's last losses."""
        archs = list(archs)
        return [member.fit(archs, scores, epochs=epochs, progress=progress) for member in self.members]

    def predict(self, archs: Iterable[Arch | str]) -> np.ndarray:
        """The members' mean prediction, on the scale of the training scores."""
        archs = list(archs)
        return np.mean([member.predict(archs) for member in self.members], axis=0)

    def reconstruct(self, archs: Iterable[Arch | str]) -> np.ndarray:
        """The first member's greedy decoding of each arch: (N, T) tokens."""
        return self.members[0].reconstruct(archs)

    def save(self, path: str | os.PathLike) -> None:
        """Each member in ``member0/``, ``member1/``, ... (a saved controller each), then ``ensemble.json`` (last, so
        a half-written directory never loads); a controller or an ensemble saved in ``path`` before is removed
        first."""
        path = Path(path)
        remove_saved(path)
        for m, member in enumerate(self.members):
            member.save(path / f"member{m}")
        meta = {"members": [f"member{m}" for m in range(len(self.members))], "seed": self.seed}
        atomic_write(path / ENSEMBLE_FILE, lambda f: f.write(json.dumps(meta, indent=2).encode()))

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> ControllerEnsemble:
        path = Path(path)
        try:
            meta = json.loads((path / ENSEMBLE_FILE).read_text())
            names, seed = meta["members"], int(meta["seed"])
            if not names or not all(isinstance(name, str) for name in names):
                raise ValueError(f"'members' must name at least one member directory, got {names!r}")
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ModelDirError(f"{path}: not a saved controller ensemble ({type(err).__name__}: {err})") from None
        members = [Controller.load(path / name, device=device) for name in names]
        if any((m.space.name, m.minimize) != (members[0].space.name, members[0].minimize) for m in members):
            raise ModelDirError(f"{path}: its members differ in search space or in the direction of the scores")
        ensemble = cls.__new__(cls)
        ensemble._set_members(members, seed)
        return ensemble


def load_predictor(path: str | os.PathLike, *, device: str | None = None) -> Controller | ControllerEnsemble:
    """What ``nao predictor fit`` saved in ``path``: a controller, or an ensemble of them (``--members``)."""
    loader = ControllerEnsemble if (Path(path) / ENSEMBLE_FILE).exists() else Controller
    return loader.load(path, device=device)
