"""Found networks as plain PyTorch.

``build_cnn`` / ``build_rnn`` give the in-package network of an arch (the one ``nao train`` trains), and
``export_network`` writes ONE self-contained Python file that imports only torch and defines the same network
(the arch and the sizes written in it as constants), with the trained weights beside it (``FILE.pt``, a plain
state dict) when there are any. The file's ``build()`` has the in-package network's ``state_dict()`` keys and
shapes, so the weights load with ``strict=True``, and its forward computes what the in-package forward
computes (eval and training mode). ``nao export`` (``run_export``) finds the arch, the sizes and the weights
in a search run, a ``nao train`` directory, or the command line.

The exported source is generated from hand-written templates below, not copied from the package's modules:
the package is free to change its implementation as long as the contract above (checked by
``tests/test_export.py``) holds.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import textwrap
import types
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from string import Template
from typing import Any

import torch
import yaml
from torch import nn

from nao.errors import UserError
from nao.search.rundir import CONFIG, HISTORY
from nao.spaces import get_space
from nao.spaces.base import Arch, SearchSpace
from nao.spaces.cell import CellSpace
from nao.spaces.recurrent import RecurrentSpace
from nao.tasks.cnn.network import ChildNetwork, NetworkConfig
from nao.tasks.rnn.model import LMConfig, fixed_model

EXPORTABLE = "CNN cell spaces (nao-cnn, nao-cnn-large) and recurrent cell spaces (nao-rnn)"

# Sizes that depend on the data, for the datasets nao reads, so that no dataset is loaded to export a network:
IMAGE_DATASETS = {"cifar10": (10, 3), "cifar100": (100, 3), "fashion-mnist": (10, 1), "mnist": (10, 1)}  # classes, C
CORPORA = {"ptb": 10000, "wikitext-2": 33278}  # vocabulary size (train words + <eos>)
DEFAULT_IMAGES, DEFAULT_CORPUS = "cifar10", "ptb"  # the final-training configs' default datasets


class ExportError(UserError):
    """A network that cannot be exported: an unsupported space, a bad option, weights that do not fit."""


# ----------------------------------------------------------------------------------------------------- builders
def _resolve(space: SearchSpace | str, arch: Arch | str) -> tuple[SearchSpace, Arch]:
    """The space object and the checked arch (``arch`` may be its text form)."""
    space = get_space(space) if isinstance(space, str) else space
    unsupported = _unsupported(space)
    if unsupported is not None:
        raise ExportError(f"{space.name}: no exportable network ({unsupported}nao export writes {EXPORTABLE})")
    # an arch object is checked the same way as a text form
    return space, space.parse(arch if isinstance(arch, str) else space.format(arch))


def _unsupported(space: SearchSpace) -> str | None:
    """None for a space whose networks can be exported, else why not (empty: not a cell space at all)."""
    if isinstance(space, CellSpace):
        unknown = [op for op in space.op_names if op not in CNN_OPS]
        return f"ops without an export: {', '.join(unknown)}; " if unknown else None
    if isinstance(space, RecurrentSpace):
        unknown = [a for a in space.activations if a not in ACTIVATIONS]
        return f"activations without an export: {', '.join(unknown)}; " if unknown else None
    return ""


def build_cnn(space: CellSpace | str, arch: Arch | str, *, n_classes: int, in_channels: int = 3, channels: int = 36,
              cells_per_stage: int = 6, stem_multiplier: int = 3, stem_stride: int = 1, auxiliary: bool = False,
              dropout: float = 0.0) -> nn.Module:
    """The child network of a CNN cell arch (what ``nao train`` trains), with fresh weights.

    ``forward(x (B, in_channels, H, W)) -> (logits (B, n_classes), auxiliary logits or None)``; the auxiliary
    head (after the second reduction cell) runs in training mode only. The defaults are NAO's CIFAR-10 sizes.
    """
    space, arch = _resolve(space, arch)
    if not isinstance(space, CellSpace):
        raise ExportError(f"{space.name}: not a CNN cell space (build_rnn builds recurrent cells)")
    config = NetworkConfig(channels=channels, cells_per_stage=cells_per_stage, stem_multiplier=stem_multiplier,
                           stem_stride=stem_stride, auxiliary=auxiliary, dropout=dropout)
    return ChildNetwork(space, arch, in_channels=in_channels, n_classes=n_classes, config=config)


def build_rnn(space: RecurrentSpace | str, arch: Arch | str, *, vocab_size: int, size: int = 850,
              dropout: float = 0.75, dropouth: float = 0.25, dropoutx: float = 0.75, dropouti: float = 0.2,
              dropoute: float = 0.0) -> nn.Module:
    """The language model of a recurrent cell arch (what ``nao train`` trains), with fresh weights.

    ``forward(tokens (T, B), hidden (B, size)) -> (logits (T, B, vocab_size), outputs (T, B, size))``; the next
    hidden state is ``outputs[-1]``, the first ``init_hidden(B)``. Dropouts act in training mode only; the
    defaults are NAO's final PTB model.
    """
    space, arch = _resolve(space, arch)
    if not isinstance(space, RecurrentSpace):
        raise ExportError(f"{space.name}: not a recurrent cell space (build_cnn builds CNN cells)")
    config = LMConfig(size=size, dropout=dropout, dropouth=dropouth, dropoutx=dropoutx, dropouti=dropouti,
                      dropoute=dropoute)
    return fixed_model(space, arch, vocab_size, config)


def build_network(space: SearchSpace | str, arch: Arch | str, **options: Any) -> nn.Module:
    """``build_cnn`` or ``build_rnn``, whichever fits the space."""
    space, arch = _resolve(space, arch)
    return (build_cnn if isinstance(space, CellSpace) else build_rnn)(space, arch, **options)


# ------------------------------------------------------------------------------------------ source templates
# Each CNN op: the expression building it from ``c`` (channels) and ``stride``, and the helpers it needs.
CNN_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "identity": ("nn.Identity() if stride == 1 else FactorizedReduce(c, c)", ()),
    "skip_connect": ("nn.Identity() if stride == 1 else FactorizedReduce(c, c)", ()),
    "sep_conv_3x3": ("SepConv(c, 3, stride)", ("SepConv",)),
    "sep_conv_5x5": ("SepConv(c, 5, stride)", ("SepConv",)),
    "dil_conv_3x3": ("relu_conv_bn([conv(c, c, 3, stride, groups=c, dilation=2), conv(c, c, 1)], c)", ()),
    "dil_conv_5x5": ("relu_conv_bn([conv(c, c, 5, stride, groups=c, dilation=2), conv(c, c, 1)], c)", ()),
    "conv_1x1": ("relu_conv_bn([conv(c, c, 1, stride)], c)", ()),
    "conv_3x3": ("relu_conv_bn([conv(c, c, 3, stride)], c)", ()),
    "conv_1x3_3x1": ("factorized_conv(c, 3, stride)", ("factorized_conv",)),
    "conv_1x7_7x1": ("factorized_conv(c, 7, stride)", ("factorized_conv",)),
    **{f"{kind}_pool_{k}x{k}": (f'Pool("{kind}", {k}, stride)', ("Pool",))
       for kind in ("max", "avg") for k in (2, 3, 5)},
}
OUTPUTS = {"loose_ends": "its loose ends: the states no node reads", "all_nodes": "every node"}
ACTIVATIONS = {"tanh": "torch.tanh", "relu": "torch.relu", "sigmoid": "torch.sigmoid", "identity": "lambda x: x"}

_CNN_HEADER = '''\
"""$title

Exported by `nao export` from $origin: plain PyTorch (imports only torch), no nao needed.

Space: $space
Arch:  $arch

$cells

$network

$loading
"""

import torch
import torch.nn.functional as F
from torch import nn

SPACE = $space_literal
ARCH = $arch_literal
# Node j of a cell computes op_a(input_a) + op_b(input_b); states: 0 = the output of cell k-2, 1 = that of cell
# k-1, 2.. = nodes 0.. of this cell. A cell outputs the states of its *_OUTPUT concatenated on channels ($output).
# In a reduction cell the ops reading a cell input have stride 2.
NORMAL_CELL = $normal_cell
NORMAL_OUTPUT = $normal_output
REDUCTION_CELL = $reduction_cell
REDUCTION_OUTPUT = $reduction_output

N_CLASSES = $n_classes
IN_CHANNELS = $in_channels
CHANNELS = $channels  # of the first stage, doubled at each reduction cell
CELLS_PER_STAGE = $cells_per_stage  # normal cells per stage (3 stages, a reduction cell between two stages)
STEM_MULTIPLIER = $stem_multiplier  # the stem outputs STEM_MULTIPLIER * CHANNELS channels
STEM_STRIDE = $stem_stride
DROPOUT = $dropout  # before the classifier


def conv(c_in, c_out, kernel, stride=1, groups=1, dilation=1):
    """A convolution without bias, padded so that stride 1 keeps the size and stride 2 halves it (rounding up)."""
    size = (kernel, kernel) if isinstance(kernel, int) else kernel
    if size == (1, 1) and stride not in (1, (1, 1)) and groups == 1:
        return StridedConv1x1(c_in, c_out, stride)
    padding = (dilation * (size[0] // 2), dilation * (size[1] // 2))
    return nn.Conv2d(c_in, c_out, size, stride, padding=padding, dilation=dilation, groups=groups, bias=False)


class StridedConv1x1(nn.Conv2d):
    """A strided 1x1 convolution computed as a subsample, then a stride-1 1x1 convolution (the same result): torch
    2.13's CPU kernel for the strided one corrupts memory in training on small channels-last inputs."""

    def __init__(self, c_in, c_out, stride):
        super().__init__(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        return F.conv2d(x[:, :, ::self.stride[0], ::self.stride[1]], self.weight)


def relu_conv_bn(convs, channels):
    """ReLU, the convolution(s), batch norm."""
    return nn.Sequential(nn.ReLU(), *convs, nn.BatchNorm2d(channels))


class FactorizedReduce(nn.Module):
    """Halves the resolution without dropping pixels: two stride-2 1x1 convolutions, the second shifted by one."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = StridedConv1x1(c_in, c_out // 2, 2)
        self.conv_b = StridedConv1x1(c_in, c_out - c_out // 2, 2)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = F.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))
'''

_FACTORIZED_CONV = '''


def factorized_conv(c, kernel, stride):
    """1 x k then k x 1 convolutions (the stride split between them): a cheap large receptive field."""
    return relu_conv_bn([conv(c, c, (1, kernel), (1, stride)), conv(c, c, (kernel, 1), (stride, 1))], c)
'''

_SEP_CONV = '''

class SepConv(nn.Sequential):
    """Separable convolution, twice: ReLU, depthwise k x k (the stride is in the first), pointwise 1x1, BN."""

    def __init__(self, c, kernel, stride):
        super().__init__(
            relu_conv_bn([conv(c, c, kernel, stride, groups=c), conv(c, c, 1)], c),
            relu_conv_bn([conv(c, c, kernel, groups=c), conv(c, c, 1)], c),
        )
'''

_POOL = '''

class Pool(nn.Module):
    """Max or average pooling keeping the size (stride 1) or halving it; even kernels pad right and bottom."""

    def __init__(self, kind, kernel, stride):
        super().__init__()
        self.kind, self.kernel, self.stride = kind, kernel, stride

    def forward(self, x):
        padding = self.kernel // 2
        if self.kernel % 2 == 0:
            x, padding = F.pad(x, (0, 1, 0, 1), value=float("-inf") if self.kind == "max" else 0.0), 0
        if self.kind == "max":
            return F.max_pool2d(x, self.kernel, self.stride, padding)
        return F.avg_pool2d(x, self.kernel, self.stride, padding, count_include_pad=False)
'''

_AUXILIARY = '''

class AuxiliaryHead(nn.Module):
    """The auxiliary classifier (training only), adaptively pooled to 2x2 so any input size works."""

    def __init__(self, channels, n_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(),
        )
        self.classifier = nn.Linear(768, n_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
'''

_CNN_BODY = '''

# The ops of this arch, by name: (channels, stride) -> module.
OPS = {
$ops}


def drop_path(x, drop_prob):
    """Zero whole samples of a branch with probability drop_prob, rescaling the others (training only)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class Cell(nn.Module):
    """One cell: 1x1 convolutions (a factorized reduction after a reduction cell) bring both inputs to
    `channels`, then the nodes, then the output states concatenated (cell inputs reduced in a reduction cell)."""

    def __init__(self, nodes, outputs, *, c_pp, c_p, channels, reduction, reduction_prev):
        super().__init__()
        self.nodes, self.outputs = nodes, outputs
        self.pre0 = FactorizedReduce(c_pp, channels) if reduction_prev else relu_conv_bn([conv(c_pp, channels, 1)],
                                                                                          channels)
        self.pre1 = relu_conv_bn([conv(c_p, channels, 1)], channels)
        self.ops = nn.ModuleDict({
            f"{j}_{b}": OPS[op](channels, 2 if reduction and source < 2 else 1)
            for j, node in enumerate(nodes) for b, (source, op) in enumerate(node)
        })
        self.reduce_input = nn.ModuleDict({str(k): FactorizedReduce(channels, channels)
                                           for k in outputs if reduction and k < 2})
        self.out_channels = len(outputs) * channels

    def forward(self, s0, s1, drop_prob=0.0):
        states = [self.pre0(s0), self.pre1(s1)]
        for j, node in enumerate(self.nodes):
            total = None
            for b, (source, _) in enumerate(node):
                h = self.ops[f"{j}_{b}"](states[source])
                if self.training and drop_prob > 0:
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        outputs = [self.reduce_input[str(k)](states[k]) if str(k) in self.reduce_input else states[k]
                   for k in self.outputs]
        return torch.cat(outputs, dim=1)


class Network(nn.Module):
    """forward(x (B, IN_CHANNELS, H, W), normalised) -> (logits (B, N_CLASSES), auxiliary logits or None)."""

    def __init__(self):
        super().__init__()
        c = CHANNELS
        c_stem = STEM_MULTIPLIER * c
        self.stem = nn.Sequential(nn.Conv2d(IN_CHANNELS, c_stem, 3, STEM_STRIDE, 1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        self.cells = nn.ModuleList()
        c_pp = c_p = c_stem
        reduction_prev = False
        self.aux_after = -1  # the index of the cell the auxiliary head reads: the second reduction cell
        for stage in range(3):
            layout = [False] * CELLS_PER_STAGE
            if stage > 0:
                c *= 2
                layout = [True, *layout]
            for reduction in layout:
                nodes, outputs = (REDUCTION_CELL, REDUCTION_OUTPUT) if reduction else (NORMAL_CELL, NORMAL_OUTPUT)
                cell = Cell(nodes, outputs, c_pp=c_pp, c_p=c_p, channels=c, reduction=reduction,
                            reduction_prev=reduction_prev)
                self.cells.append(cell)
                c_pp, c_p, reduction_prev = c_p, cell.out_channels, reduction
                if reduction and stage == 2:
                    self.aux_after = len(self.cells) - 1
        $auxiliary_line
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Linear(c_p, N_CLASSES)
        self.drop_path = 0.0  # drop-path probability of the deepest cell (for training; 0 = off)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        aux = None
        for index, cell in enumerate(self.cells):
            drop = self.drop_path * (index + 1) / len(self.cells)  # deeper cells drop more
            s0, s1 = s1, cell(s0, s1, drop)
            if index == self.aux_after and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        pooled = s1.mean(dim=(2, 3))  # (B, C)
        return self.classifier(self.dropout(pooled)), aux


def build():
    """The network with fresh weights; load the trained ones with load_state_dict (see the top of this file)."""
    return Network()
$smoke'''

_RNN_SOURCE = '''\
"""$title

Exported by `nao export` from $origin: plain PyTorch (imports only torch), no nao needed.

Space: $space
Arch:  $arch

$cells

$network

$loading
"""

import torch
import torch.nn.functional as F
from torch import nn

SPACE = $space_literal
ARCH = $arch_literal
# Node i (1-based) reads one earlier state s_p (0 = the state computed from x_t and h_{t-1}):
# [c, g] = s_p W_i, s_i = s_p + sigmoid(c) * (activation(g) - s_p). The output h_t is the mean of nodes 1..n.
NODES = $nodes  # (predecessor, activation) of nodes 1..n

VOCAB_SIZE = $vocab_size
SIZE = $size  # embedding size = hidden size (the decoder is tied to the embedding)
DROPOUT = $dropout  # on the cell's outputs
DROPOUTH = $dropouth  # on the states the cell's products read
DROPOUTX = $dropoutx  # on the cell's input
DROPOUTI = $dropouti  # on the embedding's output
DROPOUTE = $dropoute  # whole words of the embedding

ACTIVATIONS = {
$activations}


def variational_mask(like, p, shape):
    """A dropout mask of `shape`, the same at every step (scaled by 1 / (1 - p)), or None when p is 0."""
    if p <= 0:
        return None
    return like.new_empty(shape).bernoulli_(1 - p) / (1 - p)


class Cell(nn.Module):
    """The highway cell: forward(x (T, B, SIZE), h (B, SIZE)) -> outputs (T, B, SIZE)."""

    def __init__(self, size):
        super().__init__()
        self.w_x = nn.Parameter(torch.empty(size, 2 * size))
        self.w_h = nn.Parameter(torch.empty(size, 2 * size))
        self.w_nodes = nn.Parameter(torch.empty(len(NODES), size, 2 * size))
        for w in (self.w_x, self.w_h, self.w_nodes):
            nn.init.uniform_(w, -0.04, 0.04)

    def forward(self, x, h, x_mask=None, h_mask=None):
        xs = (x if x_mask is None else x * x_mask) @ self.w_x  # (T, B, 2 SIZE), every step at once
        outputs = []
        for t in range(x.shape[0]):
            c0, h0 = (xs[t] + (h if h_mask is None else h * h_mask) @ self.w_h).chunk(2, dim=-1)
            states = [h + torch.sigmoid(c0) * (torch.tanh(h0) - h)]
            for i, (pred, activation) in enumerate(NODES):
                s = states[pred]
                c, g = ((s if h_mask is None else s * h_mask) @ self.w_nodes[i]).chunk(2, dim=-1)
                states.append(s + torch.sigmoid(c) * (ACTIVATIONS[activation](g) - s))
            h = torch.stack(states[1:]).mean(dim=0)  # (B, SIZE)
            outputs.append(h)
        return torch.stack(outputs)


class LanguageModel(nn.Module):
    """forward(tokens (T, B), hidden (B, SIZE)) -> (logits (T, B, VOCAB_SIZE), outputs (T, B, SIZE)).

    The next hidden state is outputs[-1] (detach it between training windows); the first is init_hidden(B).
    """

    def __init__(self):
        super().__init__()
        self.cell = Cell(SIZE)
        self.embedding = nn.Embedding(VOCAB_SIZE, SIZE)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        self.bias = nn.Parameter(torch.zeros(VOCAB_SIZE))

    def init_hidden(self, batch):
        return self.embedding.weight.new_zeros(batch, SIZE)

    def forward(self, tokens, hidden):
        batch = tokens.shape[1]
        weight = self.embedding.weight
        if self.training and DROPOUTE > 0:
            weight = weight * variational_mask(weight, DROPOUTE, (weight.shape[0], 1))
        x = F.embedding(tokens, weight)  # (T, B, SIZE)
        x_mask = h_mask = None
        if self.training:
            if DROPOUTI > 0:
                x = x * variational_mask(x, DROPOUTI, (1, batch, SIZE))
            x_mask = variational_mask(x, DROPOUTX, (batch, SIZE))
            h_mask = variational_mask(x, DROPOUTH, (batch, SIZE))
        outputs = self.cell(x, hidden, x_mask, h_mask)  # (T, B, SIZE)
        dropped = outputs
        if self.training and DROPOUT > 0:
            dropped = outputs * variational_mask(outputs, DROPOUT, (1, batch, SIZE))
        return F.linear(dropped, self.embedding.weight, self.bias), outputs


def build():
    """The model with fresh weights; load the trained ones with load_state_dict (see the top of this file)."""
    return LanguageModel()
$smoke'''

_CNN_SMOKE = '''

if __name__ == "__main__":  # a smoke check: python THIS_FILE.py
    model = build().eval()
    with torch.no_grad():
        logits, _ = model(torch.randn(2, IN_CHANNELS, 32, 32))
    print(f"{SPACE} network, {sum(p.numel() for p in model.parameters())} parameters, logits {tuple(logits.shape)}")
'''

_RNN_SMOKE = '''

if __name__ == "__main__":  # a smoke check: python THIS_FILE.py
    model = build().eval()
    with torch.no_grad():
        logits, outputs = model(torch.zeros(5, 2, dtype=torch.long), model.init_hidden(2))
    print(f"{SPACE} network, {sum(p.numel() for p in model.parameters())} parameters, logits {tuple(logits.shape)}")
'''


def _cell_literal(space: CellSpace, cell) -> str:
    lines = [f"    (({a}, {space.op_names[op_a]!r}), ({b}, {space.op_names[op_b]!r})),  # node {j}"
             for j, ((a, op_a), (b, op_b)) in enumerate(cell)]
    return "(\n" + "\n".join(lines).replace("'", '"') + "\n)"


def _describe_cell(space: CellSpace, cell, *, reduction: bool) -> str:
    names = ["c[k-2]", "c[k-1]"] + [f"node {j}" for j in range(len(cell))]
    nodes = [f"    node {j} = {space.op_names[op_a]}({names[a]}) + {space.op_names[op_b]}({names[b]})"
             for j, ((a, op_a), (b, op_b)) in enumerate(cell)]
    ends = ", ".join(f"reduce({names[k]})" if reduction and k < 2 else names[k] for k in space.output_states(cell))
    title = "Reduction cell (ops reading c[k-2] or c[k-1] have stride 2):" if reduction else "Normal cell:"
    return "\n".join([title, *nodes, f"    output = concat({ends})"])


def _loading(out: Path, weights: Path | None, no_weights: str, call: str) -> str:
    if weights is None:
        return (f"No trained weights were exported ({no_weights}): build() gives fresh ones.\n\n"
                f"    from {out.stem} import build\n    model = build()\n    {call}")
    return ("Load the trained weights (written beside this file):\n\n"
            f"    import torch\n    from {out.stem} import build\n    model = build()\n"
            f'    model.load_state_dict(torch.load("{weights.name}"))\n    model.eval()\n    {call}')


def network_source(space: SearchSpace | str, arch: Arch | str, *, out: str | Path = "network.py",
                   weights: str | Path | None = None, origin: str = "Python", no_weights: str = "none given",
                   smoke_check: bool = True, **options: Any) -> str:
    """The Python source of the exported network of ``arch`` (``options``: ``build_cnn`` / ``build_rnn``'s).

    ``out`` and ``weights`` name the files in the loading instructions of the docstring; ``origin`` says where
    the arch came from, ``no_weights`` why there are no weights.
    """
    space, arch = _resolve(space, arch)
    options = network_options(space, options)
    params = sum(p.numel() for p in build_network(space, arch, **options).parameters())
    out, weights = Path(out), None if weights is None else Path(weights)
    texts = {"space": space.name, "arch": space.format(arch), "space_literal": json.dumps(space.name),
             "arch_literal": json.dumps(space.format(arch)), "origin": origin}
    source = _cnn_source if isinstance(space, CellSpace) else _rnn_source
    return source(space, arch, options, params=params, smoke_check=smoke_check, texts=texts,
                  loading=lambda call: _loading(out, weights, no_weights, call))


def _cnn_source(space: CellSpace, arch: Arch, o: dict[str, Any], *, params: int, loading: Callable[[str], str],
                smoke_check: bool, texts: dict[str, str]) -> str:
    """``o``: the network's options (``build_cnn``'s); ``texts``: the template's space, arch and origin."""
    normal, reduction = space.cells(arch)
    used = sorted({space.op_names[op] for cell in (normal, reduction) for node in cell for _, op in node},
                  key=list(CNN_OPS).index)
    helpers = {h for op in used for h in CNN_OPS[op][1]}
    call = "logits, _ = model(images)  # (B, C, H, W), normalised with the training set's channel mean and std"
    network = (f"Network: {o['n_classes']} classes, {o['in_channels']} input channel(s), a stem "
               f"({o['stem_multiplier']} x {o['channels']} channels, stride {o['stem_stride']}), 3 stages of "
               f"{o['cells_per_stage']} normal cell(s) with a reduction cell between two stages ({o['channels']} "
               "channels in the first stage, doubled at each reduction), "
               + ("an auxiliary head after the second reduction cell (training only)" if o["auxiliary"]
                  else "no auxiliary head")
               + f", global average pooling, dropout {o['dropout']:g}, a linear classifier; {params:,} parameters.")
    header = Template(_CNN_HEADER).substitute(
        texts, network=textwrap.fill(network, 116),
        title=f"A {space.name} cell network: the standalone CNN of one arch.",
        cells=_describe_cell(space, normal, reduction=False) + "\n" + _describe_cell(space, reduction,
                                                                                       reduction=True),
        normal_cell=_cell_literal(space, normal), reduction_cell=_cell_literal(space, reduction),
        normal_output=space.output_states(normal), reduction_output=space.output_states(reduction),
        output=OUTPUTS[space.output],
        loading=loading(call), **{k: repr(v) for k, v in o.items()})
    body = Template(_CNN_BODY).substitute(
        ops="".join(f'    "{op}": lambda c, stride: {CNN_OPS[op][0]},\n' for op in used),
        auxiliary_line=("self.auxiliary = AuxiliaryHead(self.cells[self.aux_after].out_channels, N_CLASSES)"
                        if o["auxiliary"] else "self.auxiliary = None  # no auxiliary head"),
        smoke=_CNN_SMOKE if smoke_check else "")
    return "".join([header, _FACTORIZED_CONV if "factorized_conv" in helpers else "",
                    _SEP_CONV if "SepConv" in helpers else "", _POOL if "Pool" in helpers else "",
                    _AUXILIARY if o["auxiliary"] else "", body])


def _rnn_source(space: RecurrentSpace, arch: Arch, options: dict[str, Any], *, params: int,
                loading: Callable[[str], str], smoke_check: bool, texts: dict[str, str]) -> str:
    nodes = space.nodes(arch)
    acts = [space.activations[a] for a in sorted({a for _, a in nodes})]
    names = ["s0"] + [f"s{i}" for i in range(1, len(nodes) + 1)]
    cells = "\n".join(["Recurrent cell:", *(f"    s{i} = highway({space.activations[a]}, {names[p]})"
                                             for i, (p, a) in enumerate(nodes, 1)),
                       f"    h_t = mean(s1 .. s{len(nodes)})"])
    node_literal = "(\n" + "".join(f'    ({p}, "{space.activations[a]}"),  # node {i}\n'
                                   for i, (p, a) in enumerate(nodes, 1)) + ")"
    dropouts = ", ".join(f"{k} {options[k]:g}" for k in ("dropout", "dropouth", "dropoutx", "dropouti", "dropoute"))
    network = (f"Network: a word-level language model: an embedding ({options['vocab_size']} words x "
               f"{options['size']}), the recurrent cell ({options['size']} units), a decoder tied to the embedding; "
               f"dropouts (training only): {dropouts}; {params:,} parameters.")
    call = "logits, outputs = model(tokens, model.init_hidden(batch))  # tokens (T, B); next hidden: outputs[-1]"
    return Template(_RNN_SOURCE).substitute(
        texts, title=f"A {space.name} recurrent cell language model: the network of one arch.", cells=cells,
        nodes=node_literal, network=textwrap.fill(network, 116), loading=loading(call),
        activations="".join(f'    "{a}": {ACTIVATIONS[a]},\n' for a in acts),
        smoke=_RNN_SMOKE if smoke_check else "", **{k: repr(v) for k, v in options.items()})


# ------------------------------------------------------------------------------------------------- options
_CLI_NAMES = {"n_classes": "--classes", "in_channels": "--in-channels", "vocab_size": "--vocab-size"}
_MINIMUM = {"cells_per_stage": 0}  # every other int option is at least 1; float options are dropout rates


def network_options(space: SearchSpace, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the space's builder (``build_cnn`` / ``build_rnn``), its defaults filled in."""
    builder = build_cnn if isinstance(space, CellSpace) else build_rnn
    params = {name: p for name, p in inspect.signature(builder).parameters.items() if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ExportError(f"{unknown[0]}: not an option of {space.name} networks (options: {', '.join(params)})")
    full = {}
    for name, param in params.items():
        if name in options:
            value = options[name]
        elif param.default is param.empty:
            raise ExportError(f"{name}: needed for a {space.name} network (give {_CLI_NAMES.get(name, name)})")
        else:
            value = param.default
        kind = {"int": int, "float": float, "bool": bool}[str(param.annotation)]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ExportError(f"{name}: expected {kind.__name__}, got {value!r}")
        if kind is int and value < _MINIMUM.get(name, 1):
            raise ExportError(f"{name}: must be at least {_MINIMUM.get(name, 1)}, got {value}")
        if kind is float and not 0.0 <= value < 1.0:
            raise ExportError(f"{name}: a dropout rate in [0, 1), got {value}")
        full[name] = value
    return full


def parse_settings(settings: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dict (values read as YAML: ``16``, ``0.2``, ``true``)."""
    options = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ExportError(f"--set {item!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return options


def _known_fields(cls: type, section: Any) -> dict[str, Any]:
    """The keys of a saved config section that ``cls`` (a dataclass) has: a run's resolved sizes."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in section.items() if k in names} if isinstance(section, dict) else {}


def data_sizes(space: SearchSpace, data_name: str | None) -> dict[str, int]:
    """Classes and input channels (CNN) or vocabulary size (RNN) of a dataset nao reads, without loading it;
    ``{}`` for a dataset nao does not know (the options must then be given)."""
    if isinstance(space, CellSpace):
        classes, channels = IMAGE_DATASETS.get(data_name or DEFAULT_IMAGES, (None, None))
        return {} if classes is None else {"n_classes": classes, "in_channels": channels}
    vocab = CORPORA.get(data_name or DEFAULT_CORPUS)
    return {} if vocab is None else {"vocab_size": vocab}


def task_sizes(space: SearchSpace, task: dict) -> dict[str, Any]:
    """Network sizes from a search's ``evaluator.task`` (its ``network`` or ``model`` section and dataset), the
    final-training defaults for what it does not say."""
    data = task["data"].get("name") if isinstance(task.get("data"), dict) else None
    if isinstance(space, CellSpace):
        return asdict(NetworkConfig(**_known_fields(NetworkConfig, task.get("network")))) | data_sizes(space, data)
    return asdict(LMConfig(**_known_fields(LMConfig, task.get("model")))) | data_sizes(space, data)


# -------------------------------------------------------------------------------------------------- writing
def _check_weights(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state_dict.items()}
    problems = [f"{len(keys)} {what} (first: {keys[0]})" for what, keys in (
        ("missing", [k for k in expected if k not in given]),
        ("unexpected", [k for k in given if k not in expected]),
        ("of another shape", [k for k in expected if k in given and given[k] != expected[k]])) if keys]
    if problems:
        raise ExportError(f"the weights do not fit the network of this arch: {'; '.join(problems)}")


def _check_source(source: str, model: nn.Module, out: Path) -> None:
    """Run the generated source and compare its network's state dict keys and shapes with ``model``'s."""
    module = types.ModuleType("nao_exported_network")
    exec(compile(source, str(out), "exec"), module.__dict__)
    exported = {k: tuple(v.shape) for k, v in module.build().state_dict().items()}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if exported != expected:  # a bug of the exporter, not of the user's input
        raise AssertionError(f"exported network's state dict differs: {sorted(set(exported) ^ set(expected))[:5]}")


def _replace_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_network(space: SearchSpace | str, arch: Arch | str, out: str | Path, *,
                   state_dict: dict[str, torch.Tensor] | None = None, origin: str = "Python",
                   no_weights: str = "none given", **options: Any) -> dict[str, Any]:
    """Write the network of ``arch`` as ``out`` (a ``.py`` file importing only torch) and, with ``state_dict``
    (the in-package network's weights, see ``build_cnn`` / ``build_rnn``), the weights as ``out`` with ``.pt``.

    Both files are written via temporary files, so neither is ever half-written. Returns ``{"out", "weights",
    "arch", "space", "params"}``.
    """
    space, arch = _resolve(space, arch)
    out = Path(out)
    if out.suffix != ".py":
        raise ExportError(f"{out}: the exported network is a Python file; give a name ending in .py")
    if not out.stem.isidentifier():
        raise ExportError(f"{out}: {out.stem!r} cannot be imported as a Python module; use letters, digits and _")
    options = network_options(space, options)
    model = build_network(space, arch, **options)
    weights = None
    if state_dict is not None:
        _check_weights(model, state_dict)
        model.load_state_dict(state_dict)
        weights = out.with_suffix(".pt")
    source = network_source(space, arch, out=out, weights=weights, origin=origin, no_weights=no_weights, **options)
    _check_source(source, model, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if weights is not None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        _replace_atomic(weights, lambda tmp: torch.save(tensors, tmp))
    elif out.with_suffix(".pt").exists():
        print(f"nao export: {out.with_suffix('.pt')} is left from an earlier export; it does not belong to "
              f"{out}", file=sys.stderr)
    _replace_atomic(out, lambda tmp: tmp.write_text(source))
    return {"out": str(out), "weights": None if weights is None else str(weights), "arch": space.format(arch),
            "space": space.name, "params": sum(p.numel() for p in model.parameters())}


# ------------------------------------------------------------------------------------------------ nao export
CHECKPOINT = "checkpoint.pt"  # of a `nao train` directory (nao.train)


def run_export(source: str | None, out: str | Path, *, space: str | None = None, arch: str | None = None,
               options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``nao export``: the network of a search run's best arch, of a ``nao train`` directory (with its weights),
    or of ``space`` + ``arch``; ``options`` override the sizes (not those of a trained network)."""
    options = dict(options or {})
    if source is not None:
        if space is not None or arch is not None:
            raise ExportError("give a run directory or --space and --arch, not both")
        path = Path(source)
        if not path.is_dir():
            raise ExportError(f"{path}: no such directory")
        if (path / CONFIG).exists() and (path / CHECKPOINT).exists():
            return _from_train_dir(path, out, options)
        if (path / CONFIG).exists() and (path / HISTORY).exists():
            return _from_search_run(path, out, options)
        raise ExportError(f"{path}: neither a search run ({CONFIG}, {HISTORY}) nor a training run "
                          f"({CONFIG}, {CHECKPOINT})")
    if space is None or arch is None:
        raise ExportError("give a run directory (of `nao search` or `nao train`), or --space and --arch")
    found = get_space(space)
    _resolve(found, arch)
    defaults = task_sizes(found, {})
    return export_network(found, arch, out, origin="an arch given on the command line",
                          no_weights="the arch was given on the command line", **defaults | options)


def _from_search_run(path: Path, out: str | Path, options: dict[str, Any]) -> dict[str, Any]:
    from nao.report import load_run

    run = load_run(path)
    if run.config.get("plugins"):  # the run's own spaces
        from nao.plugins import load_plugins

        load_plugins(run.config["plugins"])
    best = run.best()
    space = get_space(run.config["space"])
    _resolve(space, best.arch)
    task = (run.config.get("evaluator") or {}).get("task") or {}
    sizes = task_sizes(space, task if isinstance(task, dict) else {})
    value = best.metrics[run.metric]
    print(f"nao export: {path} is a search run: its best arch ({run.metric} {value:.6g}) is exported without "
          "weights (a search trains no standalone network; train it with `nao train`)", file=sys.stderr)
    return export_network(space, best.arch, out, origin=f"the search run {path} (its best arch, {run.metric} "
                          f"{value:.6g})", no_weights="a search trains no standalone network: train this arch with "
                          "`nao train`", **sizes | options)


def _from_train_dir(path: Path, out: str | Path, options: dict[str, Any]) -> dict[str, Any]:
    if options:
        raise ExportError(f"{path}: a trained network keeps the sizes it was trained with "
                          f"({', '.join(sorted(options))} cannot be changed)")
    try:
        checkpoint = torch.load(path / CHECKPOINT, map_location="cpu", weights_only=False)
        space, arch, config, trainer = (checkpoint[k] for k in ("space", "arch", "config", "trainer"))
        state = trainer["model"]
    except Exception as err:  # unreadable, or not a checkpoint of `nao train`
        raise ExportError(f"{path / CHECKPOINT}: not a `nao train` checkpoint ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''})") from None
    space = get_space(space)
    _resolve(space, arch)
    try:
        if isinstance(space, CellSpace):
            sizes = asdict(NetworkConfig(**_known_fields(NetworkConfig, config.get("network")))) | {
                "n_classes": state["classifier.weight"].shape[0], "in_channels": state["stem.0.weight"].shape[1]}
        else:
            sizes = asdict(LMConfig(**_known_fields(LMConfig, config.get("model")))) | {
                "vocab_size": state["bias"].shape[0]}
    except KeyError as err:
        raise ExportError(f"{path / CHECKPOINT}: the weights have no {err.args[0]}") from None
    note = ""
    if isinstance(space, RecurrentSpace) and trainer.get("averaging"):
        state = _averaged(build_rnn(space, arch, **sizes), state, trainer["optimizer"])
        note = ", the ASGD-averaged weights it was evaluated with"
    done, total = trainer.get("epoch"), (config.get("train") or {}).get("epochs")
    if total is not None and done is not None and done < total:
        print(f"nao export: {path} stopped after epoch {done} of {total}: its weights are those of epoch {done}",
              file=sys.stderr)
    return export_network(space, arch, out, state_dict=state,
                          origin=f"the training run {path} (after epoch {done} of {total}{note})", **sizes)


def _averaged(model: nn.Module, state: dict[str, torch.Tensor], optimizer: dict) -> dict[str, torch.Tensor]:
    """``state`` with each parameter replaced by its ASGD average (``ax``), as the trainer evaluates it."""
    names = [name for name, _ in model.named_parameters()]
    indices = [i for group in optimizer["param_groups"] for i in group["params"]]
    averaged = dict(state)
    for index, name in zip(indices, names, strict=True):
        ax = optimizer["state"].get(index, {}).get("ax")
        if ax is not None:
            averaged[name] = ax
    return averaged

