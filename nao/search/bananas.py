"""``strategy: bananas``: BANANAS (White et al. 2021): Bayesian optimisation with an ensemble of neural
predictors, candidates made by mutating the best archs, and independent Thompson sampling (or UCB) to pick
which of them to evaluate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nao.config import at_least, one_of
from nao.predictors.ensemble import EnsembleConfig, EnsemblePredictor
from nao.registry import register_strategy
from nao.search.strategies import Candidate, Evaluated, Strategy
from nao.spaces.base import Arch

ACQUISITIONS = ("its", "ucb")


@dataclass
class BananasConfig:
    """The ``bananas:`` section; defaults are the paper's (10 initial archs, 10 per iteration, 100 candidates
    from the 10 best)."""

    initial: int = 10  # random archs before the first fit
    batch: int = 10  # archs evaluated per iteration: the best by the acquisition function
    candidates: int = 100  # mutations scored by the acquisition function per iteration
    parents: int = 10  # candidates are mutations of the best `parents` archs
    acquisition: str = "its"  # "its": independent Thompson sampling; "ucb": mean + ucb_beta * std
    ucb_beta: float = 0.5
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)

    def __post_init__(self) -> None:
        at_least(self, initial=2, batch=1, candidates=1, parents=1, ucb_beta=0.0)
        one_of(self, "acquisition", ACQUISITIONS)


class BananasStrategy(Strategy):
    """Per iteration: fit a fresh ensemble on everything evaluated, mutate the best ``parents`` archs into
    ``candidates`` new ones, evaluate the ``batch`` with the best acquisition values. Independent Thompson
    sampling draws one value per candidate from a normal with the ensemble's mean and standard deviation."""

    config: BananasConfig

    def __init__(self, context, config: BananasConfig) -> None:
        super().__init__(context, config)
        self.last_fit: dict[str, float] = {}

    def metrics(self) -> dict[str, float]:
        return self.last_fit

    def next_batch(self, history: Sequence[Evaluated], remaining: int,
                   failed: Sequence[Arch] = ()) -> list[Candidate]:
        seen = self.seen(history, failed)
        if len(history) < self.config.initial:
            return self.random_new(min(remaining, self.config.initial - len(history)), seen, "random")
        self.iteration += 1
        archs = [h.arch for h in history]
        scores = self.better(np.array([h.score for h in history], dtype=np.float64))
        ensemble = EnsemblePredictor(self.space, self.config.ensemble, seed=int(self.rng.integers(2**62)))
        self.last_fit = {"ensemble_mse": ensemble.fit(archs, scores)}
        candidates = self._candidates(archs, scores, seen)
        mean, std = ensemble.predict(candidates)
        its = self.config.acquisition == "its"
        value = self.rng.normal(mean, std) if its else mean + self.config.ucb_beta * std
        picked = np.argsort(-value, kind="stable")[:min(remaining, self.config.batch)]
        sign = -1.0 if self.context.minimize else 1.0  # predictions back on the metric's own scale
        return [Candidate(candidates[i], "bananas", sign * float(mean[i])) for i in picked]

    def _candidates(self, archs: list[Arch], scores: np.ndarray, seen: set) -> list[Arch]:
        """Distinct new evaluable mutations of the best ``parents`` archs (random archs when they run out)."""
        parents = [archs[i] for i in np.argsort(-scores, kind="stable")[:self.config.parents]]
        found = self.new_mutations(parents, self.config.candidates, seen)
        if not found:  # every mutation of every parent is known
            return [c.arch for c in self.random_new(self.config.batch, seen, "random")]
        return found


register_strategy("bananas", BananasStrategy, config=BananasConfig)
