"""``nao train`` for CNN cell archs: one arch trained from scratch, resumable, test set read once at the end.

The run directory holds ``config.yaml``, ``checkpoint.pt`` (replaced atomically after every epoch;
it carries the arch, the config and every RNG state), ``metrics.jsonl`` (one line per epoch) and,
when training is done, ``result.json``. The model that is tested is the last epoch's: nothing is
selected on the test set (the original picked its best checkpoint on it, nao-facts §8.1, 12).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from nao.config import ConfigError, to_dict
from nao.errors import UserError
from nao.search.rundir import RunDir
from nao.spaces import get_space
from nao.spaces.cell import CellSpace
from nao.tasks.cnn.network import ChildNetwork, NetworkConfig
from nao.tasks.cnn.train import DataConfig, TrainConfig, Trainer, resolve_device, seeded_init
from nao.tasks.images import load_images

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"


@dataclass
class FinalConfig:
    """``nao train`` for the CNN spaces; the defaults are NAO's CIFAR-10 recipe (nao-facts §6.1)."""

    space: str = "nao-cnn"
    arch: str | None = None  # the arch's text form (required)
    seed: int = 0
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    valid_every: int = 1  # epochs between validation passes (the last epoch is always validated)


def train_final(config: FinalConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
    """Train ``config.arch`` into ``out`` (or continue it); returns the result (also ``result.json``)."""
    space = get_space(config.space)
    if not isinstance(space, CellSpace):
        raise ConfigError(f"space: {config.space} is not a CNN cell space")
    if not config.arch:
        raise ConfigError("arch: required (the arch to train, in the space's text form)")
    arch = space.parse(config.arch)
    config.arch = space.format(arch)
    run = RunDir(out)
    checkpoint = run.path / CHECKPOINT
    if (run.path / "config.yaml").exists() and not resume:
        raise UserError(f"{run.path} already holds a training run: add --resume to continue it, "
                        "or choose another --out")
    d = config.data
    data = load_images(d.name, data_dir=d.dir, valid_size=d.valid_size, seed=config.seed, download=d.download)
    run.lock()
    try:
        run.check_or_write_config(config)
        model = seeded_init(lambda: ChildNetwork(space, arch, in_channels=data.shape[0], n_classes=data.n_classes,
                                                 config=config.network), config.seed)
        trainer = Trainer(model, data, config.train, seed=config.seed, device=resolve_device(config.device),
                          train_images=d.train_images)
        if checkpoint.exists():
            trainer.load_state_dict(torch.load(checkpoint, map_location=trainer.device, weights_only=False)["trainer"])
        started = time.perf_counter()
        with tqdm(total=config.train.epochs, initial=trainer.epoch, desc="train", unit="epoch", file=sys.stderr,
                  disable=not progress, dynamic_ncols=True) as bar:
            while trainer.epoch < config.train.epochs:
                stats = trainer.train_epoch()
                if trainer.epoch % config.valid_every == 0 or trainer.epoch == config.train.epochs:
                    stats["valid_acc"] = trainer.accuracy("valid")
                with open(run.path / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(stats) + "\n")
                run.save_torch(CHECKPOINT, {"arch": config.arch, "space": config.space, "config": to_dict(config),
                                            "trainer": trainer.state_dict()})
                bar.update(1)
                bar.set_postfix(loss=f"{stats['train_loss']:.3f}", valid=f"{stats.get('valid_acc', float('nan')):.2f}")
        result = {"out": str(run.path), "arch": config.arch, "epochs": trainer.epoch,
                  "params": sum(p.numel() for p in model.parameters()),
                  "valid_acc": trainer.accuracy("valid"), "test_acc": trainer.accuracy("test"),
                  "seconds": round(time.perf_counter() - started, 1)}
        run.write_text(RESULT, json.dumps(result) + "\n")
        return result
    finally:
        run.unlock()
