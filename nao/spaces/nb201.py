"""The NAS-Bench-201 cell space: a DAG of ``n_nodes`` nodes with one op on every edge ``j <- i``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from nao.errors import ArchError
from nao.spaces.base import CellGraph
from nao.spaces.slots import SlotSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class NB201Space(SlotSpace):
    """NAS-Bench-201 cells: node ``j`` sums ``op(node i)`` over ``i < j``; the last node is the output.

    An arch is one op index per edge, ordered as in the text form
    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (edges into node 1, then node 2, ...). Token = op + 1.

    Canonical form: an edge is *live* when its op is not ``none``, its source node is reachable from
    node 0 along non-``none`` edges, and the output node is reachable from its target node along
    non-``none`` edges. Every other edge is set to ``none``: it either carries zero (``none``, or an
    op applied to a node that only ever receives zero) or feeds a node whose value never reaches the
    output. Live edges are exactly the edges on input-to-output paths, so the canonical form keeps the
    same paths and canonicalising twice changes nothing.
    """

    def __init__(self, *, ops: tuple[str, ...] = NB201_OPS, n_nodes: int = 4, name: str = "nb201"):
        if n_nodes < 2:
            raise ValueError(f"n_nodes must be at least 2, got {n_nodes}")
        if len(ops) < 2 or len(set(ops)) != len(ops):
            raise ValueError(f"ops must be at least two distinct names, got {ops!r}")
        self.op_names = tuple(ops)
        self.n_nodes = n_nodes
        self.edges = tuple((j, i) for j in range(1, n_nodes) for i in range(j))  # (target, source)
        self._none = self.op_names.index("none") if "none" in self.op_names else None
        n_edges = len(self.edges)
        super().__init__(name=name, sizes=[len(ops)] * n_edges, offsets=[1] * n_edges)

    def slot_name(self, position: int) -> str:
        j, i = self.edges[position]
        return f"edge {j}<-{i}"

    def parse(self, text: str) -> tuple[int, ...]:
        parts = text.strip().split("+")
        if len(parts) != self.n_nodes - 1:
            raise ArchError(
                f"{self.name}: expected {self.n_nodes - 1} '+'-separated nodes, "
                f"got {len(parts)} in {text.strip()!r}"
            )
        values = []
        for j, part in enumerate(parts, start=1):
            if len(part) < 2 or part[0] != "|" or part[-1] != "|":
                raise ArchError(f"{self.name}: node {j} must look like '|op~0|...|', got {part!r}")
            entries = part[1:-1].split("|")
            if len(entries) != j:
                raise ArchError(f"{self.name}: node {j} must have {j} inputs, got {len(entries)} in {part!r}")
            for i, entry in enumerate(entries):
                op, sep, source = entry.partition("~")
                if not sep:
                    raise ArchError(f"{self.name}: node {j} entry {entry!r} must be 'op~input'")
                if op not in self.op_names:
                    raise ArchError(f"{self.name}: unknown op {op!r} (known: {', '.join(self.op_names)})")
                if source != str(i):
                    raise ArchError(f"{self.name}: node {j} entry {i} must take input {i}, got {source!r}")
                values.append(self.op_names.index(op))
        return tuple(values)

    def format(self, arch: Sequence[int]) -> str:
        ops = iter(self.check(arch))
        return "+".join(
            "|" + "|".join(f"{self.op_names[next(ops)]}~{i}" for i in range(j)) + "|"
            for j in range(1, self.n_nodes)
        )

    def _canonical(self, arch: Sequence[int]) -> tuple[int, ...]:
        """``arch`` (already checked) with every edge that is not live set to ``none``."""
        active = [op != self._none for op in arch]
        from_input = [True] + [False] * (self.n_nodes - 1)
        # Edges are ordered by target node, so a node's flag is final before any edge reads it.
        for e, (j, i) in enumerate(self.edges):
            from_input[j] = from_input[j] or (active[e] and from_input[i])
        to_output = [False] * (self.n_nodes - 1) + [True]
        for e in reversed(range(len(self.edges))):
            j, i = self.edges[e]
            to_output[i] = to_output[i] or (active[e] and to_output[j])
        return tuple(
            op if a and from_input[i] and to_output[j] else self._none
            for op, a, (j, i) in zip(arch, active, self.edges, strict=True)
        )

    def canonical(self, arch: Sequence[int]) -> tuple[int, ...]:
        """``arch`` with every edge that is not live set to ``none`` (see the class docstring)."""
        return self._canonical(self.check(arch))

    def equivalents(self, arch: Sequence[int]) -> list[tuple[int, ...]]:
        """Every arch with the same canonical form: the dead edges of ``arch`` take every op that
        keeps them dead."""
        canon = self.canonical(arch)
        free = [e for e, op in enumerate(canon) if op == self._none]
        result = []
        for choice in itertools.product(range(len(self.op_names)), repeat=len(free)):
            candidate = list(canon)
            for e, op in zip(free, choice, strict=True):
                candidate[e] = op
            if self._canonical(candidate) == canon:
                result.append(tuple(candidate))
        return result

    def graphs(self, arch: Sequence[int]) -> list[CellGraph]:
        values = self.check(arch)
        nodes = ("input", *(str(j) for j in range(1, self.n_nodes - 1)), "output")
        edges = tuple((i, j, self.op_names[op]) for (j, i), op in zip(self.edges, values, strict=True)
                      if op != self._none)
        return [CellGraph(title=f"{self.name} cell", nodes=nodes, edges=edges)]
