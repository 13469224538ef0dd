"""A synthetic benchmark for any search space: a fixed, known score for every arch.

Used by the quick-start (a results table that needs no download) and by tests that need a
score function whose optimum is known. The score of an arch is a deterministic function of its
canonical token sequence: per-position token effects plus a few pairwise interactions,
squashed into (50, 100) so it reads like an accuracy.
"""

from __future__ import annotations

import zlib

import numpy as np

from nao.spaces.base import Arch, SearchSpace


class SyntheticBenchmark:
    """``score(arch)`` for every arch of ``space``; equivalent archs score the same."""

    def __init__(self, space: SearchSpace, *, seed: int = 0, interactions: int | None = None) -> None:
        self.space = space
        rng = np.random.default_rng([seed, zlib.crc32(space.name.encode())])
        length, vocab = space.seq_len, space.vocab_size
        self.unary = rng.normal(size=(length, vocab))  # (T, V)
        n_pairs = length if interactions is None else interactions
        self.pairs = np.sort(rng.integers(0, length, size=(n_pairs, 2)), axis=1)  # (P, 2)
        self.pairwise = rng.normal(scale=0.5, size=(n_pairs, vocab, vocab))  # (P, V, V)
        self.scale = np.sqrt(length + 0.25 * n_pairs)

    def score(self, arch: Arch) -> float:
        tokens = np.asarray(self.space.to_tokens(self.space.canonical(arch)))
        z = self.unary[np.arange(len(tokens)), tokens].sum()
        z += self.pairwise[np.arange(len(self.pairs)), tokens[self.pairs[:, 0]], tokens[self.pairs[:, 1]]].sum()
        return float(50.0 + 50.0 / (1.0 + np.exp(-z / self.scale)))

    def table(self, n: int, *, seed: int = 0) -> list[tuple[Arch, float]]:
        """``n`` distinct random archs (by canonical form) with their scores."""
        rng = np.random.default_rng(seed)
        rows: dict = {}
        for _ in range(50 * n + 1000):
            if len(rows) == n:
                break
            arch = self.space.sample(rng)
            rows.setdefault(self.space.canonical(arch), (arch, self.score(arch)))
        return list(rows.values())
