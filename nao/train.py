"""``nao train``: train one arch from scratch with the task its space belongs to (final training).

The run directory is the same for every task: ``config.yaml``, ``checkpoint.pt`` (replaced
atomically after every epoch; it carries the arch, the config and the trainer's state with every
RNG state, so ``--resume`` continues exactly), ``metrics.jsonl`` (one line per epoch) and
``result.json``. The test set is read once, by the task's ``final_metrics``, after the last epoch.
The recipe is the ``final`` of the task registered for the space's family (``nao.register_task``).
"""

from __future__ import annotations

import json
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm import tqdm

from nao.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from nao.errors import UserError
from nao.registry import task_for
from nao.search.rundir import RunDir
from nao.spaces import get_space

CHECKPOINT, METRICS, RESULT = "checkpoint.pt", "metrics.jsonl", "result.json"


class FinalTraining(ABC):
    """The ``nao train`` recipe of a task: the loop, checkpoints and ``--resume`` are ``nao train``'s.

    ``Config`` is the dataclass of the training config; it has ``space``, ``arch`` (text form), ``seed``,
    ``device`` and ``train.epochs``, and whatever else the recipe reads. A complete minimal recipe::

        @dataclass
        class TrainSettings:
            epochs: int = 10

        @dataclass
        class MyConfig:
            space: str = "my-space"
            arch: str | None = None
            seed: int = 0
            device: str = "auto"
            train: TrainSettings = field(default_factory=TrainSettings)

        class MyTraining(nao.FinalTraining):
            Config = MyConfig

            def build_trainer(self, config, space, arch):
                return MyTrainer(space, arch, seed=config.seed)   # has epoch, model, device, state_dict()

            def train_epoch(self, trainer, config):
                return {"train_loss": trainer.step()}           # trainer.epoch grows by one

            def final_metrics(self, trainer, config):
                return {"valid_acc": trainer.accuracy("valid"), "test_acc": trainer.accuracy("test")}

        nao.register_task("mine", family=MySpace, final=MyTraining())
    """

    Config: ClassVar[type]

    @abstractmethod
    def build_trainer(self, config: Any, space, arch) -> Any:
        """Called once, before anything is written: load the data (a bad path fails here) and build the model.
        The trainer has ``epoch`` (epochs done), ``model`` (a ``torch.nn.Module``), ``device``, and
        ``state_dict()`` / ``load_state_dict()`` holding every RNG state (resume is exact)."""

    @abstractmethod
    def train_epoch(self, trainer: Any, config: Any) -> dict:
        """One epoch (``trainer.epoch`` grows by one); its statistics, one line of ``metrics.jsonl``. Raise
        ``FloatingPointError`` for a diverged loss: the run stops, its last checkpoint kept."""

    @abstractmethod
    def final_metrics(self, trainer: Any, config: Any) -> dict:
        """After the last epoch: the result's metrics (the only place the test set is read)."""


def load_train_config(path: str | Path | None, overrides: list[str]) -> tuple[FinalTraining, Any]:
    """The final training of a ``nao train`` config (YAML + overrides; its plugins loaded) and the config read into
    that training's dataclass: a bad key or value raises ``ConfigError`` here, before anything trains."""
    from nao.plugins import load_plugins

    data = apply_overrides(load_yaml(path) if path is not None else {}, overrides)
    load_plugins(data.pop("plugins", None) or [])
    space = get_space(data.get("space", "nao-cnn"))
    final = task_for(space, needs="final", key="space").final
    return final, from_dict(final.Config, data)


def run_train(path: str | Path | None, overrides: list[str], out: str | Path, *, resume: bool = False,
              progress: bool = True) -> dict:
    """``nao train``: the config (YAML + overrides) trained into ``out``; returns the result."""
    final, config = load_train_config(path, overrides)
    return train_final(final, config, out, resume=resume, progress=progress)


def train_final(task: FinalTraining, config, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
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
