"""NAO's recurrent cell space (the PTB/WikiText RNN cell of NAO and NAO-WS)."""

from __future__ import annotations

from collections.abc import Sequence

from nao.spaces.base import CellGraph, parse_int_list
from nao.spaces.slots import SlotSpace


class RecurrentSpace(SlotSpace):
    """A recurrent cell of ``n_nodes`` nodes, each ``s_i = highway(f_i, s_p)`` of one predecessor.

    Node ``i`` (1-based) picks a predecessor ``p`` in ``0 .. i - 1`` (0 = the state computed from
    ``x_t`` and ``h_{t-1}``) and an activation. An arch is ``pred act`` per node (``2 * n_nodes``
    ints). Tokens: pred ``p`` -> ``p + 1``, activation ``a`` -> ``a + n_nodes + 1``. The cell output
    is the mean of all nodes, so no two different archs are known to compute the same cell.
    """

    def __init__(
        self,
        *,
        name: str = "nao-rnn",
        activations: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity"),
        n_nodes: int = 11,
    ):
        if n_nodes < 1:
            raise ValueError(f"n_nodes must be at least 1, got {n_nodes}")
        if not activations or len(set(activations)) != len(activations):
            raise ValueError(f"activations must be non-empty and distinct, got {activations!r}")
        self.activations = tuple(activations)
        self.n_nodes = n_nodes
        sizes, offsets = [], []
        for i in range(1, n_nodes + 1):
            sizes += [i, len(activations)]
            offsets += [1, n_nodes + 1]
        super().__init__(name=name, sizes=sizes, offsets=offsets, group_size=2)

    def slot_name(self, position: int) -> str:
        field = ("predecessor", "activation")[position % 2]
        return f"node {position // 2 + 1} {field}"

    def nodes(self, arch: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(pred, act)`` of nodes ``1 .. n_nodes``."""
        values = self.check(arch)
        return tuple((values[k], values[k + 1]) for k in range(0, self.seq_len, 2))

    def parse(self, text: str) -> tuple[int, ...]:
        return self.check(parse_int_list(text, self.seq_len, self.name))

    def format(self, arch: Sequence[int]) -> str:
        return " ".join(str(v) for v in self.check(arch))

    def canonical(self, arch: Sequence[int]) -> tuple[int, ...]:
        """``arch`` itself: the cell has no symmetry to factor out."""
        return self.check(arch)

    def equivalents(self, arch: Sequence[int]) -> list[tuple[int, ...]]:
        return [self.check(arch)]

    def graphs(self, arch: Sequence[int]) -> list[CellGraph]:
        """Node 0 is computed from x_t and h_{t-1}; the output h_t, the mean of nodes 1..n, is named in
        the title rather than drawn as n more edges."""
        edges = tuple((pred, i, self.activations[act]) for i, (pred, act) in enumerate(self.nodes(arch), 1))
        nodes = ("x,h", *(str(i) for i in range(1, self.n_nodes + 1)))
        return [CellGraph(title=f"recurrent cell (h_t = mean of nodes 1..{self.n_nodes})", nodes=nodes, edges=edges,
                          last_is_output=False)]
