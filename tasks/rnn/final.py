"""``nao train`` for recurrent cell archs: one cell's language model trained from scratch, resumable.

Validation perplexity every epoch (with the ASGD-averaged weights once averaging has started), the
test perplexity once at the end with the papers' protocol (test batch size 1). The run directory is
the CNN one's: ``config.yaml``, ``checkpoint.pt`` (every epoch, atomically; arch, config, RNG
states), ``metrics.jsonl``, ``result.json``.
"""

from __future__ import annotations

import json
import math
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
from nao.spaces.recurrent import RecurrentSpace
from nao.tasks.cnn.train import resolve_device, seeded_init
from nao.tasks.rnn.model import LMConfig, fixed_model
from nao.tasks.rnn.train import CorpusConfig, LMTrainConfig, LMTrainer
from nao.tasks.text import load_corpus

CHECKPOINT = "checkpoint.pt"


@dataclass
class FinalConfig:
    """``nao train`` for the recurrent spaces; the defaults are NAO's PTB recipe (nao-facts §6.2)."""

    space: str = "nao-rnn"
    arch: str | None = None  # the arch's text form (required)
    seed: int = 1267
    device: str = "auto"
    data: CorpusConfig = field(default_factory=CorpusConfig)
    model: LMConfig = field(default_factory=LMConfig)
    train: LMTrainConfig = field(default_factory=LMTrainConfig)


def train_final(config: FinalConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
    space = get_space(config.space)
    if not isinstance(space, RecurrentSpace):
        raise ConfigError(f"space: {config.space} is not a recurrent cell space")
    if not config.arch:
        raise ConfigError("arch: required (the arch to train, in the space's text form)")
    arch = space.parse(config.arch)
    config.arch = space.format(arch)
    run = RunDir(out)
    if (run.path / "config.yaml").exists() and not resume:
        raise UserError(f"{run.path} already holds a training run: add --resume to continue it, "
                        "or choose another --out")
    corpus = load_corpus(config.data.name, data_dir=config.data.dir, download=config.data.download)
    run.lock()
    try:
        run.check_or_write_config(config)
        model = seeded_init(lambda: fixed_model(space, arch, corpus.vocab_size, config.model), config.seed)
        trainer = LMTrainer(model, corpus, config.train, seed=config.seed, device=resolve_device(config.device),
                            train_tokens=config.data.train_tokens)
        checkpoint = run.path / CHECKPOINT
        if checkpoint.exists():
            trainer.load_state_dict(torch.load(checkpoint, map_location=trainer.device, weights_only=False)["trainer"])
        started = time.perf_counter()
        cfg = config.train
        with tqdm(total=cfg.epochs, initial=trainer.epoch, desc="train", unit="epoch", file=sys.stderr,
                  disable=not progress, dynamic_ncols=True) as bar:
            while trainer.epoch < cfg.epochs:
                stats = trainer.train_epoch()
                valid = trainer.evaluate("valid", cfg.eval_batch_size)
                trainer.end_epoch(valid)
                stats |= {"valid_loss": valid, "valid_ppl": math.exp(valid)}
                with open(run.path / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(stats) + "\n")
                run.save_torch(CHECKPOINT, {"arch": config.arch, "space": config.space, "config": to_dict(config),
                                            "trainer": trainer.state_dict()})
                bar.update(1)
                bar.set_postfix(train_ppl=f"{stats['train_ppl']:.1f}", valid_ppl=f"{stats['valid_ppl']:.1f}")
        valid = trainer.evaluate("valid", cfg.eval_batch_size)
        test = trainer.evaluate("test", cfg.test_batch_size)
        result = {"out": str(run.path), "arch": config.arch, "epochs": trainer.epoch,
                  "params": sum(p.numel() for p in model.parameters()),
                  "valid_ppl": math.exp(valid), "test_ppl": math.exp(test), "averaged": trainer.averaging,
                  "seconds": round(time.perf_counter() - started, 1)}
        run.write_text("result.json", json.dumps(result) + "\n")
        return result
    finally:
        run.unlock()
