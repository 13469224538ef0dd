"""Where per-stage search metrics go besides ``metrics.jsonl``: nowhere else, or Weights & Biases.

``logger: wandb`` runs offline unless ``WANDB_MODE`` says otherwise, so it needs no account;
wandb is imported only when this logger is chosen.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nao.errors import UserError


class NullLogger:
    def log(self, metrics: dict, step: int) -> None:
        pass

    def close(self) -> None:
        pass


class WandbLogger:
    def __init__(self, run_path: Path, config: dict) -> None:
        try:
            import wandb
        except ImportError:
            raise UserError("logger: wandb needs the wandb package (pip install 'nao-search[wandb]')") from None
        run_id = hashlib.sha1(str(run_path.resolve()).encode()).hexdigest()[:12]  # the same run on --resume
        self._run = wandb.init(project=os.environ.get("WANDB_PROJECT", "nao"), dir=str(run_path), config=config,
                               id=run_id, resume="allow", name=run_path.name,
                               mode=os.environ.get("WANDB_MODE", "offline"))

    def log(self, metrics: dict, step: int) -> None:
        self._run.log(metrics, step=step)

    def close(self) -> None:
        self._run.finish()


LOGGERS = {"none": lambda run_path, config: NullLogger(), "wandb": WandbLogger}


def make_logger(name: str, run_path: Path, config: dict):
    if name not in LOGGERS:
        raise UserError(f"logger: unknown {name!r} (known: {', '.join(sorted(LOGGERS))})")
    return LOGGERS[name](run_path, config)
