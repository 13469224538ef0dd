"""``nao train``: train one arch from scratch with the task its space belongs to (final training).

The run directory is the same for every task: ``config.yaml``, ``checkpoint.pt`` (replaced
atomically after every epoch; it carries the arch, the config and the trainer's state with every
RNG state, so ``--resume`` continues exactly), ``metrics.jsonl`` (one line per epoch) and
``result.json``. The test set is read once, by the task's ``final_metrics``, after the last epoch.

A task module gives ``FinalConfig`` (a dataclass with ``space``, ``arch``, ``seed``, ``device`` and
``train.epochs``), ``build_trainer(config, space, arch)`` (loads its data: a bad path fails before
anything is written), ``train_epoch(trainer, config) -> dict`` and ``final_metrics(trainer, config)``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from nao.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from nao.errors import UserError
from nao.search.rundir import RunDir
from nao.spaces import get_space
from nao.spaces.base import SearchSpace
from nao.spaces.cell import CellSpace
from nao.spaces.recurrent import RecurrentSpace

FINAL_TRAINING: dict[type[SearchSpace], str] = {CellSpace: "nao.tasks.cnn.final",
                                                 RecurrentSpace: "nao.tasks.rnn.final"}
CHECKPOINT, METRICS, RESULT = "checkpoint.pt", "metrics.jsonl", "result.json"


def run_train(path: str | Path | None, overrides: list[str], out: str | Path, *, resume: bool = False,
              progress: bool = True) -> dict:
    """``nao train``: the config (YAML + overrides) trained into ``out``; returns the result."""
    data = apply_overrides(load_yaml(path) if path is not None else {}, overrides)
    space = get_space(data.get("space", "nao-cnn"))
    modules = [module for family, module in FINAL_TRAINING.items() if isinstance(space, family)]
    if not modules:
        raise ConfigError(f"space: no task trains {space.name} archs "
                          f"(tasks exist for {', '.join(f.__name__ for f in FINAL_TRAINING)} spaces)")
    task = importlib.import_module(modules[0])
    return train_final(task, from_dict(task.FinalConfig, data), out, resume=resume, progress=progress)


def train_final(task, config, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
    """Train ``config.arch`` with ``task`` into ``out`` (or continue it)."""
    space = get_space(config.space)
    if not config.arch:
        raise ConfigError("arch: required (the arch to train, in the space's text form)")
    arch = space.parse(config.arch)
    config.arch = space.format(arch)
    run = RunDir(out)
    if (run.path / "config.yaml").exists() and not resume:
        raise UserError(f"{run.path} already holds a training run: add --resume to continue it, "
                        "or choose another --out")
    trainer = task.build_trainer(config, space, arch)
    run.lock()
    try:
        run.check_or_write_config(config)
        checkpoint = run.path / CHECKPOINT
        if checkpoint.exists():
            trainer.load_state_dict(torch.load(checkpoint, map_location=trainer.device, weights_only=False)["trainer"])
        started = time.perf_counter()
        with tqdm(total=config.train.epochs, initial=trainer.epoch, desc="train", unit="epoch", file=sys.stderr,
                  disable=not progress, dynamic_ncols=True) as bar:
            while trainer.epoch < config.train.epochs:
                try:
                    stats = task.train_epoch(trainer, config)
                except FloatingPointError as err:  # the checkpoint of the last good epoch stays as it was
                    raise UserError(str(err)) from None
                with open(run.path / METRICS, "a") as f:
                    f.write(json.dumps(stats) + "\n")
                run.save_torch(CHECKPOINT, {"arch": config.arch, "space": config.space, "config": to_dict(config),
                                            "trainer": trainer.state_dict()})
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items() if k.startswith(("train_loss", "valid_"))})
        result = {"out": str(run.path), "arch": config.arch, "epochs": trainer.epoch,
                  "params": sum(p.numel() for p in trainer.model.parameters()),
                  **task.final_metrics(trainer, config), "seconds": round(time.perf_counter() - started, 1)}
        run.write_text(RESULT, json.dumps(result) + "\n")
        return result
    finally:
        run.unlock()
