"""Search strategies over one evaluator and one budget: ``nao``, ``random``, ``evolution``.

A strategy is asked for the next batch of archs given the history so far. Every decision it
makes is a function of its seed, its saved state and the history, so a resumed run repeats the
uninterrupted run exactly: its state (RNG state, iteration, controller checkpoint) is saved by
the search loop together with the batch it produced. Each strategy is registered with the
dataclass of its config section (``nao.register_strategy``), exactly as a user's own would be.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nao.config import ConfigValueError, at_least, one_of
from nao.controller import Controller, ControllerConfig
from nao.errors import UserError
from nao.predictors.ensemble import EnsembleConfig, EnsemblePredictor
from nao.predictors.metrics import average_ranks
from nao.registry import register_strategy
from nao.spaces.base import Arch, SearchSpace


@dataclass(frozen=True)
class Candidate:
    """An arch a strategy asks to evaluate; ``source`` says which step made it (``seed``, ``mutation``, ...)."""

    arch: Arch
    source: str
    predicted: float | None = None


@dataclass
class Evaluated:
    """What a strategy sees of one finished evaluation."""

    arch: Arch
    score: float  # the searched metric (re-scored each stage under weight sharing)


@dataclass(frozen=True)
class SearchContext:
    """What a strategy may rely on, fixed for the whole run."""

    space: SearchSpace
    seed: int  # the run's seed: the strategy's only source of randomness
    minimize: bool  # lower scores are better
    run_path: Path  # the run directory: a strategy may keep checkpoints there (name them in its state)
    device: str = "auto"
    candidates: Sequence[Arch] | None = None  # the only archs that can be evaluated (a table's); None: any arch


def distinct_mutations(space: SearchSpace, parents: Sequence[Arch], n: int, seen: set, rng: np.random.Generator,
                       keep: Callable[[Arch], bool] = lambda arch: True) -> list[Arch]:
    """Up to ``n`` mutations of ``parents`` (mutated in turn), distinct by canonical form, none equivalent to
    ``seen``, each one ``keep`` accepts; fewer where the parents' mutations run out (100 tries per wanted arch)."""
    found: dict = {}
    for attempt in range(100 * n):
        if len(found) == n:
            break
        child = space.mutate(parents[attempt % len(parents)], rng)
        key = space.canonical(child)
        if key not in seen and key not in found and keep(child):
            found[key] = child
    return list(found.values())


class Strategy(ABC):
    """How the next archs are chosen. A complete minimal strategy, registered from a plugin file::

        from dataclasses import dataclass
        import nao

        @dataclass
        class GreedyConfig:
            batch: int = 4                      # section `greedy:` of a search config; checked when it loads

        class Greedy(nao.Strategy):
            \"\"\"Mutations of the best arch so far, after a random start.\"\"\"

            def next_batch(self, history, remaining, failed=()):
                seen = self.seen(history, failed)
                if not history:
                    return self.random_new(min(remaining, self.config.batch), seen, "random")
                self.iteration += 1
                best = max(history, key=lambda h: self.better(np.array(h.score)))
                children = []
                for _ in range(100 * self.config.batch):
                    child = self.space.mutate(best.arch, self.rng)
                    if self.space.canonical(child) not in seen and self.evaluable(child):
                        seen.add(self.space.canonical(child))
                        children.append(nao.Candidate(child, "mutation"))
                    if len(children) == min(remaining, self.config.batch):
                        break
                return children or self.random_new(1, seen, "random")

        nao.register_strategy("greedy", Greedy, config=GreedyConfig)

    Lifecycle. ``__init__(context, config)`` once per process that runs the search (a resumed run builds a new
    one). ``load_state_dict(state)`` on resume, before anything else. ``next_batch`` at every stage boundary:
    when the previous batch has been evaluated completely (and, under weight sharing, every arch re-scored).
    ``state_dict()`` right after each ``next_batch``, saved atomically with the batch, so whatever ``next_batch``
    changed (RNG, iteration, checkpoints it wrote) must be in it. ``metrics()`` after each stage, logged to
    ``metrics.jsonl``. Use ``self.rng`` for every random choice: then a resumed run decides exactly what the
    uninterrupted one decided.
    """

    def __init__(self, context: SearchContext, config) -> None:
        self.context, self.config = context, config
        self.space = context.space
        self.seed = context.seed
        self.rng = np.random.default_rng(context.seed)
        self.run_path = context.run_path
        self.iteration = 0
        self._pool = list(context.candidates) if context.candidates is not None else None
        self._pool_keys = {self.space.canonical(a) for a in self._pool} if self._pool is not None else None

    @abstractmethod
    def next_batch(self, history: Sequence[Evaluated], remaining: int,
                   failed: Sequence[Arch] = ()) -> list[Candidate]:
        """Archs to evaluate next: distinct, not equivalent to any in ``history`` or ``failed`` (archs whose
        evaluation failed), evaluable (``self.evaluable``), at most ``remaining`` (at least 1). ``history`` holds
        every successful evaluation so far in the order the batches made them. An empty list ends the search."""

    def state_dict(self) -> dict:
        """Everything a resumed run needs to decide as this one would (JSON-serialisable)."""
        return {"rng": self.rng.bit_generator.state, "iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.iteration = state["iteration"]

    def metrics(self) -> dict[str, float]:
        """Numbers about the last ``next_batch`` for ``metrics.jsonl`` (e.g. the controller's losses)."""
        return {}

    # ------------------------------------------------------------------ shared helpers
    def sample(self) -> Arch:
        """A uniformly random evaluable arch."""
        if self._pool is not None:
            return self._pool[int(self.rng.integers(len(self._pool)))]
        return self.space.sample(self.rng)

    def random_new(self, n: int, seen: set, source: str) -> list[Candidate]:
        """``n`` random archs, none equivalent to ``seen`` (which is updated)."""
        found: list[Candidate] = []
        for _ in range(1000 * n + 10_000):
            if len(found) == n:
                return found
            arch = self.sample()
            key = self.space.canonical(arch)
            if key not in seen:
                seen.add(key)
                found.append(Candidate(arch, source))
        raise UserError(f"found only {len(found)} of {n} new archs: the space or table is exhausted")

    def new_mutations(self, parents: Sequence[Arch], n: int, seen: set) -> list[Arch]:
        """Up to ``n`` distinct evaluable mutations of ``parents`` (mutated in turn), none equivalent to ``seen``;
        fewer where the parents' mutations run out."""
        return distinct_mutations(self.space, parents, n, seen, self.rng, keep=self.evaluable)

    def seen(self, history: Sequence[Evaluated], failed: Sequence[Arch] = ()) -> set:
        """Canonical forms of every arch evaluated or failed."""
        return {self.space.canonical(h.arch) for h in history} | {self.space.canonical(a) for a in failed}

    def evaluable(self, arch: Arch) -> bool:
        """Whether the evaluator can score ``arch``: any arch, or one equivalent to a candidate (a table may hold
        one representative per network, as NAS-Bench-101 does; another representative is that network)."""
        return self._pool_keys is None or self.space.canonical(arch) in self._pool_keys

    def better(self, scores: np.ndarray) -> np.ndarray:
        """Scores oriented so that higher is better."""
        return -scores if self.context.minimize else scores


@dataclass
class RandomConfig:
    """Random search has no settings."""


class RandomStrategy(Strategy):
    """Uniform random archs, without repeats (by canonical form)."""

    def next_batch(self, history: Sequence[Evaluated], remaining: int,
                   failed: Sequence[Arch] = ()) -> list[Candidate]:
        self.iteration += 1
        return self.random_new(remaining, self.seen(history, failed), "random")


@dataclass
class EvolutionConfig:
    """Regularized evolution (Real et al. 2019)."""

    population: int = 20  # the newest `population` evaluated archs are alive
    tournament: int = 5  # parent = best of this many drawn from the population
    batch: int = 1  # children per step, each from its own tournament: > 1 keeps Ray workers busy and gives a
    #                 weight-sharing evaluator stages of more than one arch (asynchronous evolution's batch)

    def __post_init__(self) -> None:
        at_least(self, population=1, tournament=1, batch=1)


class EvolutionStrategy(Strategy):
    """Regularized evolution: the parent is the best of a random tournament among the newest
    ``population`` archs; its mutation is evaluated; the oldest arch leaves the population
    (the population is simply the newest ``population`` entries of the history). With ``batch`` > 1,
    that many children are made from one population, each from its own tournament."""

    config: EvolutionConfig

    def next_batch(self, history: Sequence[Evaluated], remaining: int,
                   failed: Sequence[Arch] = ()) -> list[Candidate]:
        seen = self.seen(history, failed)
        if len(history) < self.config.population:
            return self.random_new(min(remaining, self.config.population - len(history)), seen, "random")
        self.iteration += 1
        population = history[-self.config.population:]
        return [self._child(population, seen) for _ in range(min(remaining, self.config.batch))]

    def _child(self, population: Sequence[Evaluated], seen: set) -> Candidate:
        """A mutation of the best of a random tournament, new to ``seen`` (which is updated)."""
        picks = self.rng.choice(len(population), min(self.config.tournament, len(population)), replace=False)
        parent = max((population[i] for i in picks), key=lambda h: self.better(np.array(h.score)))
        for _ in range(1000):
            child = self.space.mutate(parent.arch, self.rng)
            key = self.space.canonical(child)
            if key not in seen and self.evaluable(child):
                seen.add(key)
                return Candidate(child, "mutation")
        return self.random_new(1, seen, "random")[0]  # every mutation of the parent is known


ACQUISITIONS = ("greedy", "its")


@dataclass
class NAOConfig:
    """Algorithm 1 of the NAO paper over a shared budget."""

    seed_archs: int = 50  # random archs evaluated before the first controller fit
    new_per_iteration: int = 25  # archs evaluated per iteration (proposals, then random fill)
    top_k: int = 25  # proposals start from the top-k evaluated archs
    epochs: int = 1000  # controller epochs of the first fit
    warm_epochs: int = 200  # epochs of every later fit: it starts from the previous fit's weights, and the pool
    #                         grew by one iteration's archs (5x fewer epochs: same search quality, 4x faster on
    #                         NB201, docs/benchmarks.md)
    mutants: int = 0  # > 0: this many mutations of the top-k archs compete with the decoded proposals for the
    #                   batch, all ranked by the predictor (0: gradient steps only, as in the paper)
    acquisition: str = "greedy"  # how the batch is chosen among proposals and mutants: "greedy" the best predicted;
    #                              "its" independent Thompson sampling, one draw per candidate from a normal with
    #                              the predictor heads' mean and spread (needs mutants and controller.predictor_heads)
    ensemble_ranks: bool = False  # True: proposals and mutants are ranked by the sum of their ranks under the
    #                               controller's predictor and a BANANAS ensemble (`ensemble`) fitted afresh on the
    #                               history each iteration: two predictor families (White et al. 2021) rank the
    #                               one-edit mutants better than either (docs/benchmarks.md; needs mutants)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)  # device "auto": the search's device

    def __post_init__(self) -> None:
        at_least(self, seed_archs=2, new_per_iteration=1, top_k=1, epochs=1, warm_epochs=1, mutants=0)
        one_of(self, "acquisition", ACQUISITIONS)
        if self.acquisition == "its" and (self.mutants == 0 or self.controller.predictor_heads < 2):
            raise ConfigValueError("acquisition", "'its' needs mutants > 0 (it chooses among proposals and mutants) "
                                   "and controller.predictor_heads >= 2 (their spread is its uncertainty)")
        if self.ensemble_ranks and self.mutants == 0:
            raise ConfigValueError("ensemble_ranks", "needs mutants > 0 (it ranks proposals and mutants together)")


class NAOStrategy(Strategy):
    """Seed pool, then per iteration: fit the controller on everything evaluated (warm start),
    propose new archs from the top-k by gradient steps, fill up with random archs if short."""

    config: NAOConfig

    def __init__(self, context: SearchContext, config: NAOConfig) -> None:
        super().__init__(context, config)
        self.device = config.controller.device if config.controller.device != "auto" else context.device
        self.controller: Controller | None = None
        self.checkpoint: str | None = None  # relative to the run dir
        self.last_fit: dict = {}
        self.last_ensemble_fit: dict = {}  # with ensemble_ranks

    def state_dict(self) -> dict:
        return super().state_dict() | {"checkpoint": self.checkpoint}

    def metrics(self) -> dict[str, float]:
        return {f"controller_{key}": value for key, value in self.last_fit.items()} | self.last_ensemble_fit

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.checkpoint = state["checkpoint"]
        self.controller = None  # loaded from the checkpoint when next needed

    def _controller(self) -> Controller:
        if self.controller is None:
            if self.checkpoint is not None:
                self.controller = Controller.load(self.run_path / self.checkpoint, device=self.device)
            else:
                hyper = asdict(self.config.controller) | {"device": self.device}
                self.controller = Controller(self.space, seed=self.seed, minimize=self.context.minimize, **hyper)
        return self.controller

    def next_batch(self, history: Sequence[Evaluated], remaining: int,
                   failed: Sequence[Arch] = ()) -> list[Candidate]:
        seen = self.seen(history, failed)
        if len(history) < self.config.seed_archs:
            return self.random_new(min(remaining, self.config.seed_archs - len(history)), seen, "seed")
        self.iteration += 1
        ctrl = self._controller()
        archs = [h.arch for h in history]
        scores = np.array([h.score for h in history])
        epochs = self.config.epochs if self.iteration == 1 else self.config.warm_epochs
        self.last_fit = ctrl.fit(archs, scores, epochs=epochs)
        wanted = min(remaining, self.config.new_per_iteration)
        batch = [Candidate(p.arch, "nao", p.predicted)
                 for p in ctrl.propose(archs, scores, n=wanted, top_k=self.config.top_k) if self.evaluable(p.arch)]
        if self.config.mutants:
            parents = [archs[i] for i in np.argsort(-self.better(scores), kind="stable")[:self.config.top_k]]
            known = seen | {self.space.canonical(c.arch) for c in batch}
            mutants = [Candidate(a, "nao-mutation") for a in self.new_mutations(parents, self.config.mutants, known)]
            batch = self._best_predicted(ctrl, batch + mutants, wanted, self._ensemble(archs, scores))
        seen |= {self.space.canonical(c.arch) for c in batch}
        fill = self.random_new(wanted - len(batch), seen, "random-fill")
        if fill:
            predicted = ctrl.predict([c.arch for c in fill])
            batch += [Candidate(c.arch, c.source, float(p)) for c, p in zip(fill, predicted, strict=True)]
        self.checkpoint = f"controller/iter{self.iteration:03d}"
        ctrl.save(self.run_path / self.checkpoint)
        return batch

    def _ensemble(self, archs: list[Arch], scores: np.ndarray) -> EnsemblePredictor | None:
        """With ``ensemble_ranks``, a BANANAS ensemble fitted on the history (higher is better); else None."""
        if not self.config.ensemble_ranks:
            return None
        ensemble = EnsemblePredictor(self.space, self.config.ensemble, seed=int(self.rng.integers(2**62)))
        self.last_ensemble_fit = {"ensemble_mse": ensemble.fit(archs, self.better(scores))}
        return ensemble

    def _best_predicted(self, ctrl: Controller, candidates: list[Candidate], n: int,
                        ensemble: EnsemblePredictor | None = None) -> list[Candidate]:
        """The ``n`` candidates the acquisition picks (greedy: the best predicted; with ``ensemble``, the best by
        the sum of their ranks under both predictors), each with the controller's prediction."""
        archs = [c.arch for c in candidates]
        mean, std = ctrl.predict_targets(archs)
        value = self.rng.normal(mean, std) if self.config.acquisition == "its" else mean
        if ensemble is not None:
            value = average_ranks(value) + average_ranks(ensemble.predict(archs)[0])
        order = np.argsort(-value, kind="stable")[:n]
        predicted = ctrl.scaler.inverse(mean[order])
        return [Candidate(candidates[i].arch, candidates[i].source, float(p))
                for i, p in zip(order, predicted, strict=True)]


register_strategy("nao", NAOStrategy, config=NAOConfig)
register_strategy("random", RandomStrategy, config=RandomConfig)
register_strategy("evolution", EvolutionStrategy, config=EvolutionConfig)
