"""The NAO / DARTS recurrent "highway" cell, for one arch (``FixedRecurrentCell``) or any arch with
shared weights (``SharedRecurrentCell``, NAO-WS).

At step t: ``[c0, h0] = x_t W_x + h_{t-1} W_h``, ``s_0 = h_{t-1} + σ(c0) ⊙ (tanh(h0) − h_{t-1})``; node
i reads one earlier state ``s_p``: ``[c, h] = s_p W_i``, ``s_i = s_p + σ(c) ⊙ (f_i(h) − s_p)``; the
output ``h_t`` is the mean of ``s_1 .. s_n`` — in the search and in the final model alike (the
original averaged ``s_0 .. s_n`` in its supernet only, nao-facts §8.1, 8).

Speed: the input half of the first product is computed for all steps at once, and the nodes are
run level by level (a node's level = its predecessor's + 1): all nodes of a level take one batched
matrix product, so a step costs (depth of the cell + 1) products instead of n + 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nao.spaces.recurrent import RecurrentSpace

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda x: x}


@dataclass(frozen=True)
class Level:
    """Nodes computed together: their 1-based ids, predecessors, and activation groups (contiguous runs)."""

    nodes: tuple[int, ...]
    preds: tuple[int, ...]
    groups: tuple[tuple[str, int, int], ...]  # (activation, start, stop) over ``nodes``


def schedule(space: RecurrentSpace, arch: Sequence[int]) -> list[Level]:
    """The arch's nodes by level, each level's nodes ordered by activation so each group is one slice."""
    depth = [0]
    for pred, _ in space.nodes(arch):
        depth.append(depth[pred] + 1)
    levels = []
    for level in range(1, max(depth) + 1):
        members = sorted((act, i) for i, (pred, act) in enumerate(space.nodes(arch), start=1) if depth[i] == level)
        nodes = tuple(i for _, i in members)
        groups, start = [], 0
        for act in sorted({a for a, _ in members}):
            stop = start + sum(1 for a, _ in members if a == act)
            groups.append((space.activations[act], start, stop))
            start = stop
        levels.append(Level(nodes, tuple(space.nodes(arch)[i - 1][0] for i in nodes), tuple(groups)))
    return levels


class _RecurrentCell(nn.Module):
    """The recurrence; subclasses say which weight matrix node i uses when it reads state p."""

    def __init__(self, space: RecurrentSpace, input_size: int, hidden: int):
        super().__init__()
        self.space, self.hidden = space, hidden
        self.w_x = nn.Parameter(torch.empty(input_size, 2 * hidden))
        self.w_h = nn.Parameter(torch.empty(hidden, 2 * hidden))
        for w in (self.w_x, self.w_h):
            nn.init.uniform_(w, -0.04, 0.04)  # the small uniform init of the DARTS / NAO-WS cells

    def node_weight(self, node: int, pred: int) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, h: torch.Tensor, arch: Sequence[int], *,
                x_mask: torch.Tensor | None = None, h_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (T, B, I), ``h`` (B, H) -> outputs (T, B, H) (the last row is the new hidden state).

        ``x_mask`` (B, I) and ``h_mask`` (B, H): variational dropout masks, the same at every step.
        """
        levels = schedule(self.space, arch)
        weights = [torch.stack([self.node_weight(i, p) for i, p in zip(lv.nodes, lv.preds, strict=True)])
                   for lv in levels]  # per level (k, H, 2H)
        xs = (x if x_mask is None else x * x_mask) @ self.w_x  # (T, B, 2H) for all steps at once
        outputs = []
        for t in range(x.shape[0]):
            c0, h0 = (xs[t] + (h if h_mask is None else h * h_mask) @ self.w_h).chunk(2, dim=-1)
            states: list[torch.Tensor | None] = [h + torch.sigmoid(c0) * (torch.tanh(h0) - h)]
            states += [None] * self.space.n_nodes
            for level, w in zip(levels, weights, strict=True):
                inputs = torch.stack([states[p] for p in level.preds])  # (k, B, H)
                c, g = torch.bmm(inputs if h_mask is None else inputs * h_mask, w).chunk(2, dim=-1)
                activated = torch.cat([ACTIVATIONS[name](g[a:b]) for name, a, b in level.groups])
                new = inputs + torch.sigmoid(c) * (activated - inputs)  # (k, B, H)
                for i, s in zip(level.nodes, new.unbind(0), strict=True):
                    states[i] = s
            h = torch.stack(states[1:]).mean(dim=0)  # (B, H)
            outputs.append(h)
        return torch.stack(outputs)


class FixedRecurrentCell(_RecurrentCell):
    """One arch's cell: a weight matrix per node."""

    def __init__(self, space: RecurrentSpace, arch: Sequence[int], input_size: int, hidden: int):
        super().__init__(space, input_size, hidden)
        self.arch = tuple(space.check(arch))
        self.w_nodes = nn.Parameter(torch.empty(space.n_nodes, hidden, 2 * hidden))
        nn.init.uniform_(self.w_nodes, -0.04, 0.04)

    def node_weight(self, node: int, pred: int) -> torch.Tensor:
        return self.w_nodes[node - 1]

    def forward(self, x: torch.Tensor, h: torch.Tensor, arch: Sequence[int] | None = None, **masks) -> torch.Tensor:
        return super().forward(x, h, self.arch, **masks)


class SharedRecurrentCell(_RecurrentCell):
    """Every arch's cell: a weight matrix per (node, predecessor), as NAO-WS shares them."""

    def __init__(self, space: RecurrentSpace, input_size: int, hidden: int):
        super().__init__(space, input_size, hidden)
        self.w_nodes = nn.ParameterList(
            nn.Parameter(torch.empty(hidden, 2 * hidden).uniform_(-0.04, 0.04))
            for node in range(1, space.n_nodes + 1) for _ in range(node))

    def node_weight(self, node: int, pred: int) -> torch.Tensor:
        return self.w_nodes[node * (node - 1) // 2 + pred]


def variational_mask(like: torch.Tensor, p: float, shape: tuple[int, ...]) -> torch.Tensor | None:
    """A dropout mask of ``shape`` (scaled by 1 / (1 - p)), or None when ``p`` is 0."""
    if p <= 0:
        return None
    return like.new_empty(shape).bernoulli_(1 - p) / (1 - p)

