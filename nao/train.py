"""``nao train``: train one arch from scratch with the task its space belongs to (final training)."""

from __future__ import annotations

import importlib
from pathlib import Path

from nao.config import ConfigError, apply_overrides, from_dict, load_yaml
from nao.spaces import get_space
from nao.spaces.base import SearchSpace
from nao.spaces.cell import CellSpace
from nao.spaces.recurrent import RecurrentSpace

# space family -> module with ``FinalConfig`` and ``train_final(config, out, resume=, progress=)``
FINAL_TRAINING: dict[type[SearchSpace], str] = {CellSpace: "nao.tasks.cnn.final",
                                                 RecurrentSpace: "nao.tasks.rnn.final"}


def run_train(path: str | Path | None, overrides: list[str], out: str | Path, *, resume: bool = False,
              progress: bool = True) -> dict:
    data = apply_overrides(load_yaml(path) if path is not None else {}, overrides)
    space = get_space(data.get("space", "nao-cnn"))
    modules = [module for family, module in FINAL_TRAINING.items() if isinstance(space, family)]
    if not modules:
        raise ConfigError(f"space: no task trains {space.name} archs "
                          f"(tasks exist for {', '.join(f.__name__ for f in FINAL_TRAINING)} spaces)")
    task = importlib.import_module(modules[0])
    return task.train_final(from_dict(task.FinalConfig, data), out, resume=resume, progress=progress)
