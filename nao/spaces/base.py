"""The search-space protocol: everything the controller knows about architectures.

An architecture ("arch") is an immutable, hashable value (built-in spaces use tuples of ints).
The controller only ever sees fixed-length token sequences: token 0 is reserved for
start-of-sequence, tokens ``1 .. vocab_size - 1`` are the space's own. Nothing about a space
(sequence length, vocabulary layout, node count) may be assumed outside its class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from nao.errors import ArchError

Arch = Hashable

SOS = 0  # start-of-sequence token shared by every space


@dataclass(frozen=True)
class CellGraph:
    """A drawable cell: node labels in topological order and labelled edges ``(source, target, op)``."""

    title: str
    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int, str], ...]
    last_is_output: bool = True  # drawn as the cell's output (False: the title says what the output is)


class SearchSpace(ABC):
    """A family of architectures with a token grammar.

    Subclasses set ``name``, ``seq_len`` and ``vocab_size`` (token 0 included) and implement
    the abstract methods. ``group_size`` is how many consecutive tokens one encoder or decoder
    step reads or writes (e.g. the 4 tokens of a CNN node); it must divide ``seq_len``.
    A complete minimal space (``docs/examples/chain_space.py`` is the same with error messages),
    registered from a plugin file::

        class Chain(nao.SearchSpace):
            \"\"\"6 layers, each one of 4 ops; op i is token i + 1 (token 0 is start-of-sequence).\"\"\"
            name, seq_len, vocab_size = "chain", 6, 5

            def sample(self, rng):              return tuple(int(op) for op in rng.integers(4, size=6))
            def to_tokens(self, arch):          return tuple(op + 1 for op in arch)
            def from_tokens(self, tokens):      return tuple(t - 1 for t in tokens)
            def token_mask(self, prefix):       return np.arange(5) > 0
            def parse(self, text):              return tuple(int(op) for op in text.split("-"))
            def format(self, arch):             return "-".join(map(str, arch))
            def canonical(self, arch):          return arch
            def equivalents(self, arch):        return [arch]
            def mutate(self, arch, rng):
                layer = int(rng.integers(6))
                return arch[:layer] + ((arch[layer] + int(rng.integers(1, 4))) % 4,) + arch[layer + 1:]

        nao.register_space(Chain())

    Who calls what: ``sample`` (random archs: seeds, random search, fills), ``mutate`` (evolution, BANANAS'
    candidates; local search when the space has no ``neighbours``) and ``canonical`` (every new arch is checked
    against the history by it) take the strategy's ``rng``, so they must draw from it alone; ``to_tokens`` /
    ``from_tokens`` / ``token_mask`` are the controller's view (decoding follows ``token_mask`` token by token, so
    every decoded sequence must parse); ``equivalents`` feeds the controller's augmentation at every fit; ``parse``
    / ``format`` read and write every file (history, results, configs), so ``parse(format(a)) == a``. An arch is any
    hashable value; it must survive ``format`` then ``parse`` in another process (a Ray worker).
    """

    name: str
    seq_len: int
    vocab_size: int
    group_size: int = 1

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random architecture."""

    @abstractmethod
    def to_tokens(self, arch: Arch) -> tuple[int, ...]:
        """The arch as ``seq_len`` tokens in ``1 .. vocab_size - 1``."""

    @abstractmethod
    def from_tokens(self, tokens: Sequence[int]) -> Arch:
        """Inverse of :meth:`to_tokens`; raises :class:`ArchError` for an invalid sequence."""

    @abstractmethod
    def token_mask(self, prefix: Sequence[int]) -> np.ndarray:
        """Boolean ``(vocab_size,)``: the tokens that may follow ``prefix`` in a valid arch."""

    @abstractmethod
    def parse(self, text: str) -> Arch:
        """The arch written as ``text`` in the space's text form; raises :class:`ArchError`."""

    @abstractmethod
    def format(self, arch: Arch) -> str:
        """The space's text form of ``arch`` (``parse(format(a)) == a``)."""

    @abstractmethod
    def canonical(self, arch: Arch) -> Arch:
        """One representative of all archs computing the same network (for de-duplication)."""

    @abstractmethod
    def equivalents(self, arch: Arch) -> list[Arch]:
        """Every arch with the same canonical form as ``arch`` (``arch`` included)."""

    @abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A different arch one local change away from ``arch``."""

    def neighbours(self, arch: Arch) -> list[Arch] | None:
        """Every arch one :meth:`mutate` step away from ``arch`` (local search's neighbourhood), or ``None``
        when the space cannot list them: strategies then collect distinct mutations instead."""
        return None

    def position_masks(self) -> np.ndarray | None:
        """``(seq_len, vocab_size)`` masks when the grammar depends only on the position.

        Batched decoding uses this fast path; spaces whose grammar depends on earlier tokens
        return ``None`` and decoding falls back to :meth:`token_mask` per sequence.
        """
        return None

    def graphs(self, arch: Arch) -> list[CellGraph]:
        """The arch as cell diagrams (for ``nao report``); a space without a picture returns ``[]``."""
        return []

    def is_valid_tokens(self, tokens: Sequence[int]) -> bool:
        """Whether ``tokens`` decodes to an arch of this space."""
        try:
            self.from_tokens(tokens)
        except ArchError:
            return False
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} seq_len={self.seq_len} vocab={self.vocab_size}>"


def parse_int_list(text: str, length: int, space_name: str) -> tuple[int, ...]:
    """Integers separated by whitespace or commas, exactly ``length`` of them."""
    parts = text.replace(",", " ").split()
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ArchError(f"{space_name}: expected {length} integers, got {text.strip()!r}") from None
    if len(values) != length:
        raise ArchError(f"{space_name}: expected {length} integers, got {len(values)}")
    return values
