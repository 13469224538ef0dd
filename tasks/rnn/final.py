"""``nao train`` for recurrent cell archs (the loop and run directory are ``nao.train``'s).

Validation perplexity every epoch (with the ASGD-averaged weights once averaging has started, which
it does when validation stalls), the test perplexity once at the end with the papers' protocol
(test batch size 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nao.config import ConfigError
from nao.spaces.recurrent import RecurrentSpace
from nao.tasks.rnn.model import LMConfig, fixed_model
from nao.tasks.rnn.train import CorpusConfig, LMTrainConfig, LMTrainer
from nao.tasks.text import load_corpus
from nao.torchutils import resolve_device, seeded_init
from nao.train import FinalTraining


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


class RNNFinalTraining(FinalTraining):
    Config = FinalConfig

    def build_trainer(self, config: FinalConfig, space: RecurrentSpace, arch) -> LMTrainer:
        if not isinstance(space, RecurrentSpace):
            raise ConfigError(f"space: {config.space} is not a recurrent cell space")
        corpus = load_corpus(config.data.name, data_dir=config.data.dir, download=config.data.download)
        model = seeded_init(lambda: fixed_model(space, arch, corpus.vocab_size, config.model), config.seed)
        return LMTrainer(model, corpus, config.train, seed=config.seed, device=resolve_device(config.device),
                         train_tokens=config.data.train_tokens)

    def train_epoch(self, trainer: LMTrainer, config: FinalConfig) -> dict:
        stats = trainer.train_epoch()
        valid = trainer.evaluate("valid", config.train.eval_batch_size)
        trainer.end_epoch(valid)
        return stats | {"valid_loss": valid, "valid_ppl": math.exp(valid)}

    def final_metrics(self, trainer: LMTrainer, config: FinalConfig) -> dict:
        return {"valid_ppl": math.exp(trainer.evaluate("valid", config.train.eval_batch_size)),
                "test_ppl": math.exp(trainer.evaluate("test", config.train.test_batch_size)),
                "averaged": trainer.averaging}
