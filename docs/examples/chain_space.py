"""A search space of your own, in a plugin file: a chain of 6 layers, each one of 4 ops.

    nao sample chain -n 3 --plugin docs/examples/chain_space.py
"""

import numpy as np

import nao

OPS = ("conv3x3", "conv5x5", "maxpool", "skip")


class ChainSpace(nao.SearchSpace):
    name, seq_len, vocab_size = "chain", 6, len(OPS) + 1  # token 0 is start-of-sequence; op i is token i + 1

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(op) for op in rng.integers(len(OPS), size=self.seq_len))

    def to_tokens(self, arch):
        return tuple(op + 1 for op in arch)

    def from_tokens(self, tokens):
        if len(tokens) != self.seq_len or not all(1 <= t <= len(OPS) for t in tokens):
            raise nao.errors.ArchError(f"chain: not a token sequence of this space: {list(tokens)}")
        return tuple(t - 1 for t in tokens)

    def token_mask(self, prefix):
        return np.arange(self.vocab_size) > 0  # any op at any position

    def parse(self, text: str):
        names = text.strip().split("-")
        if len(names) != self.seq_len or not set(names) <= set(OPS):
            raise nao.errors.ArchError(f"chain: expected {self.seq_len} of {', '.join(OPS)} joined by -, got {text!r}")
        return tuple(OPS.index(name) for name in names)

    def format(self, arch) -> str:
        return "-".join(OPS[op] for op in arch)

    def canonical(self, arch):
        return arch  # no two chains compute the same network

    def equivalents(self, arch):
        return [arch]

    def mutate(self, arch, rng: np.random.Generator):
        layer, shift = int(rng.integers(self.seq_len)), int(rng.integers(1, len(OPS)))
        return (*arch[:layer], (arch[layer] + shift) % len(OPS), *arch[layer + 1:])


nao.register_space(ChainSpace(), overwrite=True)
