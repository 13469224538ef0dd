"""The DARTS / NAS-Bench-301 cell space: a member of the :class:`CellSpace` family with DARTS' text form."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from nao.errors import ArchError
from nao.spaces.cell import CellSpace

DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
KEYS = ("normal", "normal_concat", "reduce", "reduce_concat")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})  # pasted from a PDF or web page


class DartsSpace(CellSpace):
    """DARTS cells: ``CellSpace`` with 4 nodes, DARTS' 7 ops, distinct inputs and every node in the output.

    Arch, tokens and grammar are the family's (``in op in op`` per node, normal cell first; op ``k`` is
    ``DARTS_OPS[k]``). Only the text form is DARTS' own: the genotype as DARTS-family code prints it,
    ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...],
    reduce_concat=[2, 3, 4, 5])``, edge ``2j`` and ``2j + 1`` being branches a and b of node ``j + 2``
    (DARTS numbers the states 0, 1 = cell inputs, 2.. = nodes). ``parse`` also takes double quotes,
    any whitespace and ``range(2, 6)`` for the concat lists; ``format`` writes the canonical printed form.
    """

    def __init__(self, *, name: str = "darts", ops: tuple[str, ...] = DARTS_OPS, n_nodes: int = 4):
        super().__init__(name=name, ops=ops, n_nodes=n_nodes, distinct_inputs=True, output="all_nodes")
        self._concat = list(range(2, n_nodes + 2))

    def node_name(self, position: int) -> str:
        """DARTS' names: ``normal`` / ``reduce`` cell, nodes numbered from 2 like the genotype's inputs."""
        cell = ("normal", "reduce")[position // (4 * self.n_nodes)]
        return f"{cell} cell node {position % (4 * self.n_nodes) // 4 + 2}"

    def slot_name(self, position: int) -> str:
        edge = position % (4 * self.n_nodes) // 2
        return f"{self.node_name(position)} {('input', 'op')[position % 2]} of edge {edge}"

    # ------------------------------------------------------------------ text form
    def format(self, arch: Sequence[int]) -> str:
        parts = []
        for key, cell in zip(("normal", "reduce"), self.cells(arch), strict=True):
            edges = ", ".join(f"('{self.op_names[op]}', {source})" for node in cell for source, op in node)
            parts += [f"{key}=[{edges}]", f"{key}_concat={self._concat}"]
        return f"Genotype({', '.join(parts)})"

    def parse(self, text: str) -> tuple[int, ...]:
        if not isinstance(text, str):
            raise ArchError(f"{self.name}: expected a genotype string, got {type(text).__name__}")
        fields = self._genotype_fields(text)
        values: list[int] = []
        for key in ("normal", "reduce"):
            self._check_concat(key, fields[f"{key}_concat"])
            values += self._cell_values(key, fields[key])
        return self.check(values)

    def _fail(self, message: str) -> ArchError:
        return ArchError(f"{self.name}: {message}")

    def _genotype_fields(self, text: str) -> dict[str, ast.expr]:
        """The four keyword arguments of ``Genotype(...)`` as syntax trees (nothing is evaluated)."""
        shown = " ".join(text.split())
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        expected = (f"expected Genotype(normal=[('op', input), ...], normal_concat={self._concat}, "
                    f"reduce=[...], reduce_concat={self._concat}), got {shown!r}")
        try:
            tree = ast.parse(text.translate(_QUOTES).strip(), mode="eval").body
        except (SyntaxError, ValueError):
            raise self._fail(expected) from None
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"
                and not tree.args):
            raise self._fail(expected)
        names = [k.arg for k in tree.keywords]
        if sorted(n or "**" for n in names) != sorted(KEYS):
            got = ", ".join(n or "**" for n in names) or "none"
            raise self._fail(f"Genotype(...) needs the keywords {', '.join(KEYS)} once each, got {got}")
        return {k.arg: k.value for k in tree.keywords if k.arg is not None}

    def _check_concat(self, key: str, node: ast.expr) -> None:
        """``[2, 3, ..., n + 1]`` as a list or tuple, or ``range(2, n + 2)`` as DARTS prints it."""
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
                and not node.keywords):
            value = _literal(ast.Tuple(elts=node.args, ctx=ast.Load()))
            value = list(range(*value)) if _all_ints(value) and 1 <= len(value) <= 3 else None
        else:
            value = _literal(node)
            value = list(value) if isinstance(value, (list, tuple)) else None
        if value != self._concat:
            raise self._fail(f"{key}_concat must be {self._concat} (the output concatenates all "
                             f"{self.n_nodes} nodes), got {ast.unparse(node)}")

    def _cell_values(self, key: str, node: ast.expr) -> list[int]:
        """``in op in op`` per node from one cell's edge list ``[('op', input), ...]``."""
        edges = _literal(node)
        n_edges = 2 * self.n_nodes
        if not isinstance(edges, (list, tuple)):
            raise self._fail(f"{key} cell must be a list of ('op', input) edges, got {ast.unparse(node)}")
        if len(edges) != n_edges:
            raise self._fail(f"{key} cell has {len(edges)} edges, expected {n_edges} "
                             f"(2 per node, {self.n_nodes} nodes)")
        values: list[int] = []
        for e, edge in enumerate(edges):
            where = f"{key} cell edge {e} (node {e // 2 + 2})"
            if not (isinstance(edge, (tuple, list)) and len(edge) == 2 and isinstance(edge[0], str)
                    and _all_ints(edge[1:])):
                raise self._fail(f"{where} must be ('op', input), got {edge!r}")
            op, source = edge
            if op not in self.op_names:
                raise self._fail(f"{where}: unknown op {op!r} (known: {', '.join(self.op_names)})")
            if not 0 <= source <= e // 2 + 1:
                raise self._fail(f"{where}: input {source} is not an earlier state "
                                 f"(node {e // 2 + 2} may take 0..{e // 2 + 1})")
            if e % 2 and source == values[-2]:
                raise self._fail(f"{key} cell node {e // 2 + 2} takes input {source} twice "
                                 f"(edges {e - 1} and {e}), its two inputs must differ")
            values += [source, self.op_names.index(op)]
        return values


def _literal(node: ast.expr) -> object:
    """The Python literal ``node`` spells, or ``None`` when it is not a literal."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _all_ints(values: object) -> bool:
    return isinstance(values, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
