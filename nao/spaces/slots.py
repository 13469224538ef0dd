"""``SlotSpace``: shared machinery of the built-in spaces.

An arch is a fixed-length tuple of ints where position ``t`` takes a value in
``0 .. sizes[t] - 1`` and is written as the token ``value + offsets[t]``. The grammar depends only
on the position, so one ``(seq_len, vocab)`` mask table describes it exactly, and any token
sequence that respects the table decodes to a valid arch.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from nao.errors import ArchError
from nao.spaces.base import SearchSpace


class SlotSpace(SearchSpace):
    """A space of fixed-length int tuples whose valid values and tokens depend only on the position.

    Subclasses call ``super().__init__`` with the per-position value counts (``sizes``) and token
    offsets, and name the positions in :meth:`slot_name` so that errors say what is wrong.
    """

    def __init__(self, *, name: str, sizes: Sequence[int], offsets: Sequence[int], group_size: int = 1):
        if len(sizes) != len(offsets) or not sizes:
            raise ValueError("sizes and offsets must be non-empty and of equal length")
        if min(sizes) < 1 or min(offsets) < 1:
            raise ValueError("every position needs at least one value, and token 0 is reserved")
        if len(sizes) % group_size:
            raise ValueError(f"group_size {group_size} does not divide seq_len {len(sizes)}")
        self.name = name
        self.seq_len = len(sizes)
        self.group_size = group_size
        self._sizes = np.asarray(sizes, dtype=np.int64)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self.vocab_size = int((self._sizes + self._offsets).max())
        self._masks = np.zeros((self.seq_len, self.vocab_size), dtype=bool)
        for t, (size, offset) in enumerate(zip(sizes, offsets, strict=True)):
            self._masks[t, offset : offset + size] = True

    def slot_name(self, position: int) -> str:
        """What position ``position`` of an arch means, for error messages."""
        return f"position {position}"

    def check(self, arch: Sequence[int]) -> tuple[int, ...]:
        """``arch`` as a tuple of ints after checking its length and every value's range."""
        try:
            values = tuple(operator.index(v) for v in arch)
        except TypeError:
            raise ArchError(f"{self.name}: an arch is a sequence of integers, got {arch!r}") from None
        if len(values) != self.seq_len:
            raise ArchError(f"{self.name}: expected {self.seq_len} integers, got {len(values)}")
        for t, v in enumerate(values):
            if not 0 <= v < self._sizes[t]:
                high = self._sizes[t] - 1
                raise ArchError(f"{self.name}: {self.slot_name(t)} is {v}, must be in 0..{high}")
        return values

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(v) for v in rng.integers(0, self._sizes))

    def to_tokens(self, arch: Sequence[int]) -> tuple[int, ...]:
        values = self.check(arch)
        return tuple(v + int(o) for v, o in zip(values, self._offsets, strict=True))

    def from_tokens(self, tokens: Sequence[int]) -> tuple[int, ...]:
        try:
            tokens = [operator.index(t) for t in tokens]
        except TypeError:
            raise ArchError(f"{self.name}: tokens must be integers, got {tokens!r}") from None
        if len(tokens) != self.seq_len:
            raise ArchError(f"{self.name}: expected {self.seq_len} tokens, got {len(tokens)}")
        for t, token in enumerate(tokens):
            if not (0 <= token < self.vocab_size and self._masks[t, token]):
                low, high = int(self._offsets[t]), int(self._offsets[t] + self._sizes[t] - 1)
                raise ArchError(
                    f"{self.name}: token {token} at position {t} ({self.slot_name(t)}) "
                    f"is not allowed, expected {low}..{high}"
                )
        return tuple(token - int(o) for token, o in zip(tokens, self._offsets, strict=True))

    def position_masks(self) -> np.ndarray:
        return self._masks.copy()

    def token_mask(self, prefix: Sequence[int]) -> np.ndarray:
        if len(prefix) >= self.seq_len:
            raise ArchError(f"{self.name}: a prefix of {len(prefix)} tokens leaves nothing to decode")
        return self._masks[len(prefix)].copy()

    def neighbours(self, arch: Sequence[int]) -> list[tuple[int, ...]]:
        """``arch`` with one position changed to another valid value, every way (what ``mutate`` draws from)."""
        values = self.check(arch)
        return [(*values[:t], v, *values[t + 1:]) for t, size in enumerate(self._sizes)
                for v in range(int(size)) if v != values[t]]

    def mutate(self, arch: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
        """``arch`` with one position changed to a different valid value (uniformly chosen)."""
        values = list(self.check(arch))
        changeable = np.flatnonzero(self._sizes > 1)
        if changeable.size == 0:
            raise ArchError(f"{self.name}: the space has a single arch, nothing to mutate")
        t = int(rng.choice(changeable))
        size = int(self._sizes[t])
        values[t] = (values[t] + int(rng.integers(1, size))) % size
        return tuple(values)
