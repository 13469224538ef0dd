"""Evaluators for recurrent cell spaces: a weight-sharing language model (``supernet``, NAO-WS on PTB)
or each cell trained briefly (``standalone``). Both report validation perplexity (lower is better)
on the same validation windows for every arch, from a zero state: the original drew one random
window per arch, from the first few percent of the validation text only (nao-facts §5.2)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nao.config import ConfigError
from nao.search.evaluators import SharedWeightsEvaluator, TaskEvaluator
from nao.spaces.base import Arch
from nao.spaces.recurrent import RecurrentSpace
from nao.tasks.rnn.model import LMConfig, fixed_model, supernet_model
from nao.tasks.rnn.train import CorpusConfig, LMTrainConfig, LMTrainer
from nao.tasks.text import Corpus, load_corpus
from nao.torchutils import seeded_init


@dataclass
class TextTaskConfig:
    """``evaluator.task`` of the RNN evaluators (defaults: the NAO-WS PTB search, nao-facts §5.2)."""

    data: CorpusConfig = field(default_factory=CorpusConfig)
    model: LMConfig = field(default_factory=lambda: LMConfig(size=300, dropout=0.75, dropouth=0.25, dropoutx=0.75,
                                                             dropouti=0.2))
    train: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(
        epochs=200, batch_size=256, eval_batch_size=64, bptt=35, variable_length=False, lr=0.25, grad_clip=10.0,
        weight_decay=5e-7, asgd=False))
    valid_windows: int | None = 10  # every arch is scored on the first this many BPTT windows of the validation
    #                                 text (None: all of it)
    sampling: str = "pool"  # supernet: the cell of each BPTT window, uniform over the pool (NAO-WS) or "space"
    #                         (any cell of the space: every shared matrix trains equally, whatever the pool holds)


SAMPLING = ("pool", "space")


class _TextEvaluator(TaskEvaluator):
    metric = "valid_ppl"
    minimize = True
    TaskConfig = TextTaskConfig

    def check_task(self, task: TextTaskConfig) -> None:
        if task.sampling not in SAMPLING:
            raise ConfigError(f"evaluator.task.sampling: must be one of {', '.join(SAMPLING)}, got {task.sampling!r}")
        if task.valid_windows is not None and task.valid_windows < 1:
            raise ConfigError(f"evaluator.task.valid_windows: must be at least 1 (or null: all), "
                              f"got {task.valid_windows}")

    def whole_validation(self) -> dict:
        return {"valid_windows": None}

    def __init__(self, space: RecurrentSpace, config, *, seed: int, device: str, run_path: Path | None):
        super().__init__(space, config, seed=seed, device=device, run_path=run_path)
        self._corpus: Corpus | None = None

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            d = self.task.data
            self._corpus = load_corpus(d.name, data_dir=d.dir, download=d.download)
        return self._corpus

    def score(self, trainer: LMTrainer, arch: Arch | None) -> dict[str, float]:
        loss = trainer.evaluate("valid", self.task.train.eval_batch_size, arch=arch,
                                max_windows=self.task.valid_windows)
        return {self.metric: math.exp(loss)}


class StandaloneEvaluator(_TextEvaluator):
    """Each cell's language model trained from scratch for ``task.train.epochs``."""

    shares_weights = False

    def begin_stage(self, stage: int, pool: list[Arch]) -> None:
        pass

    def evaluate(self, arch: Arch) -> dict[str, float]:
        model = seeded_init(lambda: fixed_model(self.space, arch, self.corpus.vocab_size, self.task.model), self.seed)
        trainer = LMTrainer(model, self.corpus, self.task.train, seed=self.seed, device=self.device,
                            train_tokens=self.task.data.train_tokens)
        for _ in range(self.task.train.epochs):
            trainer.train_epoch()
            if trainer.config.asgd:
                trainer.end_epoch(trainer.evaluate("valid", trainer.config.eval_batch_size))
        return self.score(trainer, None)


class SupernetEvaluator(SharedWeightsEvaluator, _TextEvaluator):
    """NAO-WS on text: one shared language model, an arch per BPTT window drawn uniformly from the pool."""

    def __init__(self, space: RecurrentSpace, config, *, seed: int, device: str, run_path: Path | None):
        _TextEvaluator.__init__(self, space, config, seed=seed, device=device, run_path=run_path)
        SharedWeightsEvaluator.__init__(self, seed=seed, device=self.device, run_path=run_path)
        self._supernet = None
        self._scorer: LMTrainer | None = None

    @property
    def supernet(self):
        if self._supernet is None:
            self._supernet = seeded_init(
                lambda: supernet_model(self.space, self.corpus.vocab_size, self.task.model), self.seed).to(self.device)
        return self._supernet

    def train(self, pool: list[Arch], *, seed: int, desc: str = "supernet", progress: bool = True) -> list[dict]:
        rng = np.random.default_rng(seed)
        trainer = LMTrainer(self.supernet, self.corpus, self.task.train, seed=seed, device=self.device,
                            train_tokens=self.task.data.train_tokens)
        def next_cell() -> Arch:
            return self.space.sample(rng) if self.task.sampling == "space" else pool[rng.integers(len(pool))]

        stats = []
        with tqdm(total=self.task.train.epochs, desc=desc, file=sys.stderr, disable=not progress, leave=False) as bar:
            for _ in range(self.task.train.epochs):
                stats.append(trainer.train_epoch(next_cell))
                bar.update(1)
                bar.set_postfix(ppl=f"{stats[-1]['train_ppl']:.1f}")
        return stats

    def evaluate(self, arch: Arch) -> dict[str, float]:
        if self._scorer is None:
            self._scorer = LMTrainer(self.supernet, self.corpus, self.task.train, seed=self.seed, device=self.device,
                                     train_tokens=self.task.data.train_tokens)
        return self.score(self._scorer, arch)

