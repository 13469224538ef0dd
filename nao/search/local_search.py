"""``strategy: local``: local search as White et al. (2020, "Local search is state of the art for NAS benchmarks")
define it: evaluate the current arch's neighbourhood, move to its best neighbour while that improves, and restart
from a random arch at a local optimum."""

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

    initial: int = 1  # random archs evaluated first; the best of them is the first current arch
    neighbours: int = 0  # evaluate at most this many neighbours of each current arch, drawn at random (0: all)

    def __post_init__(self) -> None:
        at_least(self, initial=1, neighbours=0)


class LocalSearch(Strategy):
    """Hill climbing over ``space.neighbours`` (one ``mutate`` step; distinct mutations where the space cannot
    list them), best-improvement with random restarts. A stage is one neighbourhood (its unevaluated members),
    a restart's random arch, or the initial random archs. Neighbours equivalent to an evaluated arch are not
    evaluated again: their known score counts when the best neighbour is chosen."""

    config: LocalSearchConfig

    def __init__(self, context, config: LocalSearchConfig) -> None:
        super().__init__(context, config)
        self.current: Arch | None = None
        self.neighbourhood: list[Arch] | None = None  # the current arch's neighbours once they are asked for
        self.starts: list[Arch] = []  # random archs asked for as a (re)start, not yet looked at
        self.restarts = 0

    def state_dict(self) -> dict:
        fmt = self.space.format
        return super().state_dict() | {
            "current": None if self.current is None else fmt(self.current),
            "neighbourhood": None if self.neighbourhood is None else [fmt(a) for a in self.neighbourhood],
            "starts": [fmt(a) for a in self.starts], "restarts": self.restarts}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        parse = self.space.parse
        self.current = None if state["current"] is None else parse(state["current"])
        self.neighbourhood = None if state["neighbourhood"] is None else [parse(a) for a in state["neighbourhood"]]
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
            if self.current is None:  # no start yet, or the starts all failed
                n = self.config.initial if not history else 1
                self.starts = [c.arch for c in self.random_new(min(remaining, n), seen, "random")]
                return [Candidate(a, "random" if self.restarts == 0 else "restart") for a in self.starts]
            if self.neighbourhood is None:
                self.neighbourhood = self._draw_neighbourhood(self.current)
                batch = self._new(self.neighbourhood, seen)[:remaining]
                if batch:
                    return [Candidate(a, "neighbour") for a in batch]
            best = self._best(self.neighbourhood, scores)
            current_score = scores.get(self.space.canonical(self.current))
            if best is not None and (current_score is None or scores[self.space.canonical(best)] > current_score):
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

    def _new(self, archs: Sequence[Arch], seen: set) -> list[Arch]:
        return [a for a in archs if self.space.canonical(a) not in seen]


register_strategy("local", LocalSearch, config=LocalSearchConfig)
