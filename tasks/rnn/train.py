"""Training word-level language models built from a recurrent cell (the DARTS / NAO-WS recipe).

SGD with gradient clipping, random BPTT lengths with the learning rate scaled by length / bptt,
activation regularisation (AR) and temporal activation regularisation (TAR) on the cell's outputs,
and NT-ASGD (Merity et al. 2017): once the validation loss has not improved on the best of the
epochs before the last ``nonmono``, training switches to averaged SGD, and evaluation uses the
averaged weights. ``lr_schedule: cosine`` anneals the learning rate to zero over ``epochs`` instead (for
short trainings: it ends at a settled point, where a constant rate ends wherever SGD's last steps left the
weights). The same trainer trains one cell (``arch=None``) and the supernet (an arch per
window from ``sample_arch``). All randomness comes from ``seed``; ``state_dict`` resumes exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from nao.tasks.rnn.model import CellLanguageModel
from nao.tasks.text import Corpus, batchify, variable_length_windows, windows
from nao.torchutils import TrainingRng, check_finite_loss


@dataclass
class CorpusConfig:
    name: str = "ptb"  # ptb | wikitext-2
    dir: str | None = None  # default: found or downloaded (see the README)
    train_tokens: int | None = None  # use only the first this many training tokens (CPU-sized runs)
    download: bool = True


@dataclass
class LMTrainConfig:
    """NAO's final PTB recipe by default (nao-facts §6.2)."""

    epochs: int = 4000
    batch_size: int = 64
    eval_batch_size: int = 10
    test_batch_size: int = 1  # the papers' test protocol
    bptt: int = 35
    variable_length: bool = True  # random window lengths (AWD-LSTM)
    lr: float = 20.0
    lr_schedule: Literal["constant", "cosine"] = "constant"  # factor on lr by training progress (LR_SCHEDULES)
    grad_clip: float = 0.25
    weight_decay: float = 8e-7
    alpha: float = 0.0  # AR: alpha * mean(h^2) on the dropped outputs
    beta: float = 1e-3  # TAR: beta * mean((h_t - h_{t-1})^2)
    asgd: bool = True  # switch to averaged SGD when validation stops improving
    nonmono: int = 5


LR_SCHEDULES: dict[str, Callable[[float], float]] = {  # progress through the training (0..1) -> factor on lr
    "constant": lambda progress: 1.0,
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))),
}


class LMTrainer:
    """Trains ``model`` on ``corpus.train`` one epoch at a time; ``evaluate`` gives mean NLL per token."""

    def __init__(self, model: CellLanguageModel, corpus: Corpus, config: LMTrainConfig, *, seed: int,
                 device: torch.device, train_tokens: int | None = None):
        self.model, self.corpus, self.config, self.device = model.to(device), corpus, config, device
        self.train_stream = batchify(corpus.train[:train_tokens], config.batch_size).to(device)  # (T, B)
        self.optimizer = self._sgd()
        self.averaging = False
        self.generator = torch.Generator().manual_seed(seed)
        self.torch_rng = TrainingRng(seed, device)
        self.epoch = 0
        self.valid_losses: list[float] = []

    def _sgd(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def train_epoch(self, sample_arch: Callable[[], Sequence[int]] | None = None) -> dict[str, float]:
        cfg, model = self.config, self.model
        model.train()
        hidden = model.init_hidden(cfg.batch_size)
        started, total, count, position = time.perf_counter(), 0.0, 0, 0
        schedule, rows = LR_SCHEDULES[cfg.lr_schedule], len(self.train_stream) - 1
        steps = (variable_length_windows(self.train_stream, cfg.bptt, generator=self.generator)
                 if cfg.variable_length else ((x, y, len(x)) for x, y in windows(self.train_stream, cfg.bptt)))
        with self.torch_rng.active():
            for inputs, targets, length in steps:
                progress = (self.epoch + position / rows) / cfg.epochs
                for group in self.optimizer.param_groups:
                    group["lr"] = cfg.lr * schedule(progress) * length / cfg.bptt
                position += length
                logits, outputs = model(inputs, hidden, None if sample_arch is None else sample_arch())
                nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
                loss = nll + cfg.beta * (outputs[1:] - outputs[:-1]).pow(2).mean()
                if cfg.alpha > 0:
                    loss = loss + cfg.alpha * outputs.pow(2).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                hidden = outputs[-1].detach()
                total += check_finite_loss(nll.item(), self.epoch + 1) * targets.numel()
                count += targets.numel()
        self.epoch += 1
        return {"epoch": self.epoch, "train_loss": total / count, "train_ppl": math.exp(total / count),
                "averaging": self.averaging, "seconds": time.perf_counter() - started}

    def end_epoch(self, valid_loss: float) -> None:
        """NT-ASGD: switch to averaging when ``valid_loss`` is worse than the best before the last ``nonmono``."""
        cfg = self.config
        earlier = self.valid_losses[:-cfg.nonmono] if len(self.valid_losses) > cfg.nonmono else []
        if cfg.asgd and not self.averaging and earlier and valid_loss > min(earlier):
            self.optimizer = torch.optim.ASGD(self.model.parameters(), lr=cfg.lr, t0=0, lambd=0.0,
                                              weight_decay=cfg.weight_decay)
            self.averaging = True
        self.valid_losses.append(valid_loss)

    @contextmanager
    def averaged_weights(self):
        """The ASGD average in place of the weights (when averaging), restored afterwards."""
        if not self.averaging:
            yield
            return
        saved = [p.detach().clone() for p in self.model.parameters()]
        with torch.no_grad():
            for p in self.model.parameters():
                state = self.optimizer.state.get(p, {})
                if "ax" in state:
                    p.copy_(state["ax"])
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.model.parameters(), saved, strict=True):
                    p.copy_(s)

    @torch.no_grad()
    def evaluate(self, split: str, batch_size: int, *, arch: Sequence[int] | None = None,
                 max_windows: int | None = None) -> float:
        """Mean NLL per token of ``split`` (its first ``max_windows`` BPTT windows), from a zero state."""
        stream = batchify(getattr(self.corpus, split), batch_size).to(self.device)
        self.model.eval()
        hidden, total, count = self.model.init_hidden(batch_size), 0.0, 0
        with self.averaged_weights():
            for n, (inputs, targets) in enumerate(windows(stream, self.config.bptt)):
                if max_windows is not None and n >= max_windows:
                    break
                logits, outputs = self.model(inputs, hidden, arch)
                total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                         reduction="sum").item()
                count += targets.numel()
                hidden = outputs[-1]
        return total / count

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "averaging": self.averaging, "generator": self.generator.get_state(),
                "torch_rng": self.torch_rng.state_dict(), "epoch": self.epoch, "valid_losses": self.valid_losses}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.averaging = state["averaging"]
        if self.averaging:
            self.optimizer = torch.optim.ASGD(self.model.parameters(), lr=self.config.lr, t0=0, lambd=0.0,
                                              weight_decay=self.config.weight_decay)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.torch_rng.load_state_dict(state["torch_rng"])
        self.epoch = state["epoch"]
        self.valid_losses = list(state["valid_losses"])
