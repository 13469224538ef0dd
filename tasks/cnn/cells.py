"""NASNet-style cells computing an arch's cell: a fixed cell (one arch) and a shared cell (any arch).

A cell reads the outputs of the two previous cells (``s0`` = cell k-2, ``s1`` = cell k-1),
brings both to ``channels`` with 1x1 convolutions (a factorized reduction for ``s0`` when cell
k-1 halved the resolution), computes node ``j = op_a(input_a) + op_b(input_b)`` and outputs the
space's output states concatenated on channels: NAO's "loose ends" (states no node reads, the cell
inputs included) or, in ``darts``, every node. In a reduction cell the ops reading a cell input
have stride 2, and a cell input in the output is reduced by a factorized reduction (nao-facts §1.1).

``FixedCell`` holds only its arch's ops: the standalone child network. ``SharedCell`` holds one
op per (node, input, op) and runs whichever arch it is given: the weight-sharing supernet (ENAS,
NAO-WS). Every arch must give the next cell the same shape: by default it maps the variable
concatenation back to ``channels`` with a 1x1 convolution whose weight is sliced per output state
(ENAS, NAO-WS); with ``concat_output`` it concatenates a slot for every state, zeros where the arch
outputs none, so that each arch's supernet computes exactly its child network (shared weights aside).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nao.spaces.cell import Cell, CellSpace
from nao.tasks.cnn.ops import STANDALONE, FactorizedReduce, Norm, Pool, ReLUConvBN, conv, make_op


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a branch with probability ``drop_prob``, rescaling the rest (Larsson et al. 2017)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class _Cell(nn.Module):
    """Preprocessing, node computation and the output's reduction; subclasses say where ops come from."""

    def __init__(self, space: CellSpace, *, c_pp: int, c_p: int, channels: int, reduction: bool,
                 reduction_prev: bool, norm: Norm):
        super().__init__()
        self.output_states = space.output_states
        self.reduction = reduction
        self.channels = channels
        self.pre0 = (FactorizedReduce(c_pp, channels, norm) if reduction_prev
                     else ReLUConvBN([conv(c_pp, channels, 1)], channels, norm))
        self.pre1 = ReLUConvBN([conv(c_p, channels, 1)], channels, norm)

    def op(self, node: int, branch: int, source: int, op: int) -> nn.Module:
        raise NotImplementedError

    def combine(self, cell: Cell, outputs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def stride(self, source: int) -> int:
        return 2 if self.reduction and source < 2 else 1

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, cell: Cell, drop_prob: float = 0.0,
                memo: ArchIndependent | None = None) -> torch.Tensor:
        """``memo``: results computed only from inputs no arch changes, reused across archs (evaluation)."""
        memo = memo or ArchIndependent(())
        states = [memo.apply(self.pre0, 0, s0), memo.apply(self.pre1, 1, s1)]
        for j, node in enumerate(cell):
            total = None
            for b, (source, op) in enumerate(node):
                h = memo.apply(self.op(j, b, source, op), source, states[source])
                if self.training and drop_prob > 0:
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        outputs = [memo.apply(self.reduce_input[str(k)], k, states[k]) if self.reduction and k < 2 else states[k]
                   for k in self.output_states(cell)]
        return self.combine(cell, outputs)


class ArchIndependent:
    """What a cell computes from states no arch changes (``fixed``: the first cell's two inputs are
    the stem's output, the second cell's ``s0`` too), computed once when the supernet scores many
    archs on one batch: a third of the cost of scoring an arch at the main job's size."""

    def __init__(self, fixed: tuple[int, ...]):
        self.fixed = fixed
        self.values: dict[tuple[nn.Module, int], torch.Tensor] = {}

    def apply(self, module: nn.Module, source: int, x: torch.Tensor) -> torch.Tensor:
        if source not in self.fixed:
            return module(x)
        key = (module, source)
        if key not in self.values:
            self.values[key] = module(x)
        return self.values[key]


class FixedCell(_Cell):
    """One arch's cell; the output concatenates its output states (``out_channels`` = their number x channels)."""

    def __init__(self, cell: Cell, space: CellSpace, **kwargs):
        super().__init__(space, **kwargs, norm=STANDALONE)
        self.cell = cell
        self.ops = nn.ModuleDict({
            f"{j}_{b}": make_op(space.op_names[op], self.channels, self.stride(source))
            for j, node in enumerate(cell) for b, (source, op) in enumerate(node)
        })
        inputs = [k for k in self.output_states(cell) if k < 2] if self.reduction else []
        self.reduce_input = nn.ModuleDict({str(k): FactorizedReduce(self.channels, self.channels, STANDALONE)
                                           for k in inputs})
        self.out_channels = len(self.output_states(cell)) * self.channels

    def op(self, node: int, branch: int, source: int, op: int) -> nn.Module:
        return self.ops[f"{node}_{branch}"]

    def combine(self, cell: Cell, outputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(outputs, dim=1)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, cell: Cell | None = None, drop_prob: float = 0.0,
                memo: ArchIndependent | None = None) -> torch.Tensor:
        return super().forward(s0, s1, self.cell, drop_prob, memo)


class SharedCell(_Cell):
    """Every arch's cell with shared weights: one op per (node, input, op), batch statistics only.

    ``pool_batch_norm`` follows each pooling op with a batch norm without affine weights, as DARTS' search network
    does (Liu et al. 2019): a pooled input keeps its input's scale, unlike the convolutions (which end in a batch
    norm) it shares its node and the next layers' weights with.

    ``concat_output`` outputs the child network's concatenation instead of projecting it to ``channels``: one slot
    of ``channels`` per state an arch can output (``slots``), the arch's output states in theirs and zeros
    elsewhere. The next cells' preprocessing and the classifier then read an arch's states with the weights its
    child network would have there (zero slots add nothing), and a cell that outputs more states passes on more
    channels, as its child network does, where the projection gives every arch the same width. It costs
    preprocessing convolutions over every slot; on the main job's space it did not rank better (docs/cnn.md).

    ``batch_norm_affine=False``: the cells' batch norms learn no scale and shift (:class:`Norm`)."""

    def __init__(self, space: CellSpace, *, pool_batch_norm: bool = False, concat_output: bool = False,
                 batch_norm_affine: bool = True, **kwargs):
        norm = Norm(running_stats=False, affine=batch_norm_affine)
        super().__init__(space, **kwargs, norm=norm)
        n_nodes = space.n_nodes
        self.concat_output = concat_output

        def shared_op(name: str, stride: int) -> nn.Module:
            op = make_op(name, self.channels, stride, norm)
            if pool_batch_norm and isinstance(op, Pool):
                return nn.Sequential(op, Norm(running_stats=False, affine=False)(self.channels))
            return op

        self.ops = nn.ModuleDict({
            f"{j}_{source}_{op}": shared_op(name, self.stride(source))
            for j in range(n_nodes) for source in range(j + 2) for op, name in enumerate(space.op_names)
        })
        inputs = (0, 1) if self.reduction and space.output == "loose_ends" else ()
        self.reduce_input = nn.ModuleDict({str(k): FactorizedReduce(self.channels, self.channels, norm)
                                           for k in inputs})
        self.slots = space.possible_output_states()
        if concat_output:
            self.out_channels = len(self.slots) * self.channels
        else:
            self.out_weight = nn.Parameter(torch.empty(self.channels, (n_nodes + 2) * self.channels))
            nn.init.kaiming_normal_(self.out_weight)
            self.out_bn = norm(self.channels)
            self.out_channels = self.channels

    def op(self, node: int, branch: int, source: int, op: int) -> nn.Module:
        return self.ops[f"{node}_{source}_{op}"]

    def combine(self, cell: Cell, outputs: list[torch.Tensor]) -> torch.Tensor:
        c = self.channels
        if self.concat_output:
            states, zeros = dict(zip(self.output_states(cell), outputs, strict=True)), torch.zeros_like(outputs[0])
            return torch.cat([states.get(k, zeros) for k in self.slots], dim=1)
        columns = torch.cat([self.out_weight[:, k * c:(k + 1) * c] for k in self.output_states(cell)], dim=1)
        return self.out_bn(F.conv2d(F.relu(torch.cat(outputs, dim=1)), columns[:, :, None, None]))
