"""NAO's CNN cell spaces: a normal and a reduction cell of two-branch nodes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from nao.errors import ArchError
from nao.spaces.base import CellGraph, parse_int_list
from nao.spaces.slots import SlotSpace

Node = tuple[tuple[int, int], tuple[int, int]]
Cell = tuple[Node, ...]


class CellSpace(SlotSpace):
    """The NAO CNN family: a normal then a reduction cell of ``n_nodes`` two-branch nodes.

    Node ``j`` (0-based) computes ``op_a(input_a) + op_b(input_b)``; inputs are ``0`` (cell k-2),
    ``1`` (cell k-1) or ``2 .. j + 1`` (earlier nodes). An arch is ``in op in op`` per node, the
    normal cell's nodes then the reduction cell's (``8 * n_nodes`` ints, the reference
    ``arch_pool`` line format). Tokens: input ``i`` -> ``i + 1``, op ``k`` -> ``k + n_nodes + 2``.
    The encoder reads and the decoder writes one node (two branches, 4 tokens) per LSTM step
    (``group_size = 4``); the original reads a branch per step, but a node per step trains 1.5x
    faster and reconstructs better (scripts/bench_controller_speed.py, README).

    Family parameters: ``n_nodes`` and ``ops``; ``distinct_inputs`` (a node's two branches must read
    different inputs, as in DARTS; the grammar then depends on the prefix, so :meth:`position_masks`
    is ``None`` and :meth:`token_mask` excludes the first branch's input from the second's); ``output``
    (``"loose_ends"``: the cell concatenates the states no node reads, as in NAO; ``"all_nodes"``: it
    concatenates every node, as in DARTS). Subclasses change the text form (``DartsSpace``).
    """

    OUTPUTS = ("loose_ends", "all_nodes")

    def __init__(self, *, name: str, ops: tuple[str, ...], n_nodes: int = 5, distinct_inputs: bool = False,
                 output: str = "loose_ends"):
        if n_nodes < 1:
            raise ValueError(f"n_nodes must be at least 1, got {n_nodes}")
        if not ops or len(set(ops)) != len(ops):
            raise ValueError(f"ops must be non-empty and distinct, got {ops!r}")
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(self.OUTPUTS)}, got {output!r}")
        self.op_names = tuple(ops)
        self.n_nodes = n_nodes
        self.distinct_inputs = distinct_inputs
        self.output = output
        sizes, offsets = [], []
        for _cell in range(2):
            for j in range(n_nodes):
                sizes += [j + 2, len(ops)] * 2
                offsets += [1, n_nodes + 2] * 2
        super().__init__(name=name, sizes=sizes, offsets=offsets, group_size=4)

    @classmethod
    def small(cls) -> CellSpace:
        """The NAO-WS / NAO-V2 5-op space (``nao-cnn``)."""
        return cls(
            name="nao-cnn",
            ops=("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity"),
        )

    @classmethod
    def large(cls) -> CellSpace:
        """NAO's 11-op space (``nao-cnn-large``), ops re-indexed 0..10 as in NAO-V2."""
        return cls(
            name="nao-cnn-large",
            ops=(
                "identity", "conv_1x1", "conv_3x3", "conv_1x3_3x1", "conv_1x7_7x1",
                "max_pool_2x2", "max_pool_3x3", "max_pool_5x5",
                "avg_pool_2x2", "avg_pool_3x3", "avg_pool_5x5",
            ),
        )

    def node_name(self, position: int) -> str:
        """The node that position ``position`` of an arch belongs to, for error messages."""
        cell = ("normal", "reduction")[position // (4 * self.n_nodes)]
        return f"{cell} cell node {position % (4 * self.n_nodes) // 4}"

    def slot_name(self, position: int) -> str:
        branch = "ab"[position % 4 // 2]
        field = ("input", "op")[position % 2]
        return f"{self.node_name(position)} {field} {branch}"

    # ------------------------------------------------------------------ distinct inputs (DARTS)
    def check(self, arch: Sequence[int]) -> tuple[int, ...]:
        """Ranges as in :class:`SlotSpace`; with ``distinct_inputs``, also two different inputs per node."""
        values = super().check(arch)
        if self.distinct_inputs:
            for k in range(0, self.seq_len, 4):
                if values[k] == values[k + 2]:
                    raise ArchError(f"{self.name}: {self.node_name(k)} takes input {values[k]} twice, "
                                    "its two inputs must differ")
        return values

    def from_tokens(self, tokens: Sequence[int]) -> tuple[int, ...]:
        values = super().from_tokens(tokens)
        if self.distinct_inputs:
            for k in range(0, self.seq_len, 4):
                if values[k] == values[k + 2]:
                    raise ArchError(f"{self.name}: tokens at positions {k} and {k + 2} ({self.node_name(k)}) "
                                    f"are both input {values[k]}, its two inputs must differ")
        return values

    def position_masks(self) -> np.ndarray | None:
        """The per-position table, or ``None`` with ``distinct_inputs`` (the grammar reads the prefix)."""
        return None if self.distinct_inputs else super().position_masks()

    def token_mask(self, prefix: Sequence[int]) -> np.ndarray:
        """The position's tokens; a second branch's input may not repeat the first's (``distinct_inputs``)."""
        mask = super().token_mask(prefix)
        t = len(prefix)
        if self.distinct_inputs and t % 4 == 2 and 0 <= prefix[t - 2] < self.vocab_size:
            mask[prefix[t - 2]] = False
        return mask

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """Uniform over valid archs: each second input is uniform over the inputs the first did not take."""
        if not self.distinct_inputs:
            return super().sample(rng)
        second = np.arange(self.seq_len) % 4 == 2
        values = rng.integers(0, self._sizes - second)
        values[second] += values[second] >= values[np.flatnonzero(second) - 2]
        return tuple(int(v) for v in values)

    def mutate(self, arch: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
        """One op or one input changed to another valid value (uniform position, then uniform value)."""
        if not self.distinct_inputs:
            return super().mutate(arch, rng)
        values = list(self.check(arch))
        # With distinct inputs an input has size - 2 alternatives (not itself, not its sibling's input).
        alternatives = self._sizes - 1 - (np.arange(self.seq_len) % 2 == 0)
        changeable = np.flatnonzero(alternatives > 0)
        if changeable.size == 0:
            raise ArchError(f"{self.name}: the space has a single arch, nothing to mutate")
        t = int(rng.choice(changeable))
        taken = {values[t]} | ({values[t ^ 2]} if t % 2 == 0 else set())
        options = [v for v in range(int(self._sizes[t])) if v not in taken]
        values[t] = options[int(rng.integers(len(options)))]
        return tuple(values)

    def neighbours(self, arch: Sequence[int]) -> list[tuple[int, ...]]:
        """One op or one input changed, every way; with ``distinct_inputs`` an input never takes its sibling's."""
        if not self.distinct_inputs:
            return super().neighbours(arch)
        values = self.check(arch)
        return [(*values[:t], v, *values[t + 1:]) for t, size in enumerate(self._sizes) for v in range(int(size))
                if v != values[t] and not (t % 2 == 0 and v == values[t ^ 2])]

    def parse(self, text: str) -> tuple[int, ...]:
        return self.check(parse_int_list(text, self.seq_len, self.name))

    def format(self, arch: Sequence[int]) -> str:
        return " ".join(str(v) for v in self.check(arch))

    def cells(self, arch: Sequence[int]) -> tuple[Cell, Cell]:
        """``(normal, reduction)``, each a tuple of nodes ``((in_a, op_a), (in_b, op_b))``."""
        values = self.check(arch)
        nodes = tuple(
            ((values[k], values[k + 1]), (values[k + 2], values[k + 3])) for k in range(0, self.seq_len, 4)
        )
        return nodes[: self.n_nodes], nodes[self.n_nodes :]

    def _from_nodes(self, nodes: Sequence[Node]) -> tuple[int, ...]:
        return tuple(v for node in nodes for branch in node for v in branch)

    def canonical(self, arch: Sequence[int]) -> tuple[int, ...]:
        """Each node's two branches in sorted order: they are summed, so their order is irrelevant."""
        normal, reduction = self.cells(arch)
        return self._from_nodes([tuple(sorted(node)) for node in normal + reduction])

    def equivalents(self, arch: Sequence[int]) -> list[tuple[int, ...]]:
        """Every branch-order variant of ``arch`` (nodes with two equal branches have only one)."""
        normal, reduction = self.cells(arch)
        orders = [[(a, b)] if a == b else [(a, b), (b, a)] for a, b in normal + reduction]
        return [self._from_nodes(nodes) for nodes in itertools.product(*orders)]

    @staticmethod
    def loose_ends(cell: Cell) -> list[int]:
        """States no node reads, concatenated as the cell's output: 0, 1 = cell inputs, 2.. = nodes."""
        used = {source for node in cell for source, _ in node}
        return [k for k in range(len(cell) + 2) if k not in used]

    def output_states(self, cell: Cell) -> list[int]:
        """The states the cell's output concatenates: the loose ends, or every node (``output``)."""
        return self.loose_ends(cell) if self.output == "loose_ends" else list(range(2, len(cell) + 2))

    def possible_output_states(self) -> list[int]:
        """The states some cell of the space outputs: every state with loose ends, the nodes otherwise."""
        return list(range(self.n_nodes + 2)) if self.output == "loose_ends" else list(range(2, self.n_nodes + 2))

    def graphs(self, arch: Sequence[int]) -> list[CellGraph]:
        """Normal and reduction cell; the output concatenates :meth:`output_states`."""
        out = self.n_nodes + 2
        graphs = []
        for title, cell in zip(("normal cell", "reduction cell"), self.cells(arch), strict=True):
            edges = [(src, j + 2, self.op_names[op]) for j, node in enumerate(cell) for src, op in node]
            edges += [(k, out, "") for k in self.output_states(cell)]
            nodes = ("c[k-2]", "c[k-1]", *(str(j) for j in range(self.n_nodes)), "concat")
            graphs.append(CellGraph(title=title, nodes=nodes, edges=tuple(edges)))
        return graphs
