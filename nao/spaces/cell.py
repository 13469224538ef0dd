"""NAO's CNN cell spaces: a normal and a reduction cell of two-branch nodes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

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
    """

    def __init__(self, *, name: str, ops: tuple[str, ...], n_nodes: int = 5):
        if n_nodes < 1:
            raise ValueError(f"n_nodes must be at least 1, got {n_nodes}")
        if not ops or len(set(ops)) != len(ops):
            raise ValueError(f"ops must be non-empty and distinct, got {ops!r}")
        self.op_names = tuple(ops)
        self.n_nodes = n_nodes
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

    def slot_name(self, position: int) -> str:
        cell = ("normal", "reduction")[position // (4 * self.n_nodes)]
        node = position % (4 * self.n_nodes) // 4
        branch = "ab"[position % 4 // 2]
        field = ("input", "op")[position % 2]
        return f"{cell} cell node {node} {field} {branch}"

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

    def graphs(self, arch: Sequence[int]) -> list[CellGraph]:
        """Normal and reduction cell; the output concatenates the loose ends."""
        out = self.n_nodes + 2
        graphs = []
        for title, cell in zip(("normal cell", "reduction cell"), self.cells(arch), strict=True):
            edges = [(src, j + 2, self.op_names[op]) for j, node in enumerate(cell) for src, op in node]
            edges += [(k, out, "") for k in self.loose_ends(cell)]
            nodes = ("c[k-2]", "c[k-1]", *(str(j) for j in range(self.n_nodes)), "concat")
            graphs.append(CellGraph(title=title, nodes=nodes, edges=tuple(edges)))
        return graphs
