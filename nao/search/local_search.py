"""``strategy: local``: local search as White et al. (2020, "Local search is state of the art for NAS benchmarks")
define it: start from the best of a few random archs, evaluate the current arch's neighbours, move to a better one
while there is one, and restart from random archs at a local optimum. Their variants are both here: the whole
neighbourhood before the best is chosen (best improvement), or neighbours one at a time in random order, moving at
the first that improves (first improvement, their default)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nao.config import at_least
from nao.registry import register_strategy
from nao.search.strategies import Candidate, Evaluated, Strategy
from nao.spaces.base import Arch


@dataclass
class LocalSearchConfig:
    """The ``local:`` section."""

    # The defaults are White et al.'s (10 random starts, first improvement); on NB201 and the NB301 surrogate they
    # beat 1 start with best improvement at every budget of 50 to 300 (docs/benchmarks.md).
    initial: int = 10  # random archs evaluated at the start and at every restart; the best is the current arch
    neighbours: int = 0  # evaluate at most this many neighbours of each current arch, drawn at random (0: all)
    step: int = 1  # neighbours evaluated before each decision, in random order: 0 all of them, then move to the
    #                best (best improvement); k > 0: k at a time, moving as soon as one beats the current arch
    #                (1: first improvement; a batch of 1 per stage: with parallel workers, step = workers)

    def __post_init__(self) -> None:
        at_least(self, initial=1, neighbours=0, step=0)


class LocalSearch(Strategy):
    """Hill climbing over ``space.neighbours`` (one ``mutate`` step; distinct mutations where the space cannot
    list them) with random restarts. A stage is ``config.step`` neighbours (0: the whole neighbourhood; only the
    unevaluated ones are asked for) or a (re)start's random archs. Neighbours equivalent to an evaluated arch are
    not evaluated again: their known score counts when the best neighbour is chosen."""

    config: LocalSearchConfig

    def __init__(self, context, config: LocalSearchConfig) -> None:
        super().__init__(context, config)
        self.current: Arch | None = None
        self.neighbourhood: list[Arch] | None = None  # the current arch's neighbours once they are drawn
        self.looked = 0  # how many of them (in order) were asked for or found already evaluated
        self.starts: list[Arch] = []  # random archs asked for as a (re)start, not yet looked at
        self.restarts = 0

    def state_dict(self) -> dict:
        fmt = self.space.format
        return super().state_dict() | {
            "current": None if self.current is None else fmt(self.current),
            "neighbourhood": None if self.neighbourhood is None else [fmt(a) for a in self.neighbourhood],
            "looked": self.looked, "starts": [fmt(a) for a in self.starts], "restarts": self.restarts}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        parse = self.space.parse
        self.current = None if state["current"] is None else parse(state["current"])
        self.neighbourhood = None if state["neighbourhood"] is None else [parse(a) for a in state["neighbourhood"]]
        self.looked = state.get("looked", len(self.neighbourhood or []))  # runs before ``step``: all asked at once
        self.starts = [parse(a) for a in state["starts"]]
        self.restarts = state["restarts"]

    def metrics(self) -> dict[str, float]:
        return {"restarts": float(self.restarts)}

    def next_batch(self, history: Sequence[Evaluated], remaining: int,
                   failed: Sequence[Arch] = ()) -> list[Candidate]:
        self.iteration += 1
        seen = self.seen(history, failed)
        scores = self._known_scores(history)
        for _ in range(10_000):  # each pass moves, restarts or asks; a pass that asks returns
            if self.current is None and self.starts:  # the (re)start archs are evaluated: climb from the best
                self.current = self._best(self.starts, scores)
                self.starts = []
            if self.current is None:  # no start yet, a restart, or the starts all failed
                self.starts = [c.arch for c in self.random_new(min(remaining, self.config.initial), seen, "random")]
                return [Candidate(a, "random" if self.restarts == 0 else "restart") for a in self.starts]
            if self.neighbourhood is None:
                self.neighbourhood, self.looked = self._draw_neighbourhood(self.current), 0
            best = self._best(self.neighbourhood[:self.looked], scores)
            current = scores.get(self.space.canonical(self.current))
            improves = best is not None and (current is None or scores[self.space.canonical(best)] > current)
            if not improves and self.looked < len(self.neighbourhood):
                batch = self._next_step(seen, remaining)
                if batch:
                    return [Candidate(a, "neighbour") for a in batch]
                continue  # the rest were evaluated before: decide on them
            if improves:
                self.current = best  # move
            else:  # a local optimum (or nothing evaluable around it): restart
                self.current, self.restarts = None, self.restarts + 1
            self.neighbourhood = None
        return []  # the space is exhausted around every start

    def _known_scores(self, history: Sequence[Evaluated]) -> dict:
        """Best known score per canonical form, oriented so that higher is better."""
        scores: dict = {}
        for h in history:
            key, score = self.space.canonical(h.arch), float(self.better(np.array(h.score)))
            scores[key] = max(score, scores.get(key, -np.inf))
        return scores

    def _best(self, archs: Sequence[Arch], scores: dict) -> Arch | None:
        scored = [(scores[self.space.canonical(a)], i) for i, a in enumerate(archs)
                  if self.space.canonical(a) in scores]
        return archs[max(scored)[1]] if scored else None

    def _draw_neighbourhood(self, arch: Arch) -> list[Arch]:
        """The evaluable neighbours of ``arch``, one per canonical form, at most ``config.neighbours`` of them
        drawn at random; in random order (ties between equal scores then fall at random)."""
        listed = self.space.neighbours(arch)
        if listed is None:  # the space cannot list them: distinct mutations
            listed = [self.space.mutate(arch, self.rng) for _ in range(1000)]
        unique = {self.space.canonical(a): a for a in listed if self.evaluable(a)}
        unique.pop(self.space.canonical(arch), None)
        archs = list(unique.values())
        order = self.rng.permutation(len(archs))
        limit = self.config.neighbours or len(archs)
        return [archs[i] for i in order[:limit]]

    def _next_step(self, seen: set, remaining: int) -> list[Arch]:
        """The next ``config.step`` unevaluated neighbours in order (all of them for step 0, at most
        ``remaining``); the neighbours passed over, evaluated before, count as looked at."""
        wanted = min(remaining, self.config.step or len(self.neighbourhood))
        batch: list[Arch] = []
        while self.looked < len(self.neighbourhood) and len(batch) < wanted:
            arch = self.neighbourhood[self.looked]
            self.looked += 1
            if self.space.canonical(arch) not in seen:
                batch.append(arch)
        return batch


register_strategy("local", LocalSearch, config=LocalSearchConfig)
