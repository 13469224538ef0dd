"""The NASNet-style stack around the cells: stem, stages of normal cells, reduction cells between
stages, an optional auxiliary head, global pooling and a linear classifier (NAO §3, DARTS)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nao.spaces.cell import Cell, CellSpace
from nao.tasks.cnn.cells import ArchIndependent, FixedCell, SharedCell

Logits = tuple[torch.Tensor, torch.Tensor | None]  # (logits, auxiliary logits or None)


@dataclass
class NetworkConfig:
    """Size of the network built around the cells."""

    channels: int = 36  # C of the first stage, doubled at every reduction
    cells_per_stage: int = 6  # N normal cells per stage; 3 stages, 2 reduction cells between them
    stem_multiplier: int = 3  # the stem outputs stem_multiplier * C channels
    stem_stride: int = 1  # 2 halves the input first (cheap CPU-sized networks)
    auxiliary: bool = True  # auxiliary classifier after the second reduction cell (training only)
    dropout: float = 0.0  # before the classifier


class AuxiliaryHead(nn.Module):
    """The NASNet/DARTS auxiliary classifier, with adaptive pooling so any input size works."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(),
        )
        self.classifier = nn.Linear(768, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class CellNetwork(nn.Module):
    """Cells from ``make_cell(reduction=, reduction_prev=, c_pp=, c_p=, channels=)``; see the subclasses."""

    def __init__(self, *, make_cell: Callable[..., nn.Module], in_channels: int, n_classes: int,
                 config: NetworkConfig, running_stats: bool = True):
        super().__init__()
        c = config.channels
        c_stem = config.stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, config.stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(c_stem, track_running_stats=running_stats))
        self.cells = nn.ModuleList()
        self.reductions: list[bool] = []
        c_pp = c_p = c_stem
        reduction_prev = False
        self.aux_after = -1
        for stage in range(3):
            layout = [False] * config.cells_per_stage
            if stage > 0:
                c *= 2
                layout = [True, *layout]
            for reduction in layout:
                cell = make_cell(reduction=reduction, reduction_prev=reduction_prev, c_pp=c_pp, c_p=c_p, channels=c)
                self.cells.append(cell)
                self.reductions.append(reduction)
                c_pp, c_p, reduction_prev = c_p, cell.out_channels, reduction
                if reduction and stage == 2:
                    self.aux_after = len(self.cells) - 1
        aux_channels = self.cells[self.aux_after].out_channels
        self.auxiliary = AuxiliaryHead(aux_channels, n_classes) if config.auxiliary else None
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(c_p, n_classes)
        self.drop_path = 0.0  # largest drop-path probability now (set by the trainer's schedule)

    def _forward(self, x: torch.Tensor, cells: tuple[Cell, Cell] | None) -> Logits:
        return self.head(self.stem(x), cells)

    def head(self, stem: torch.Tensor, cells: tuple[Cell, Cell] | None,
             memos: list[ArchIndependent] | None = None) -> Logits:
        """Everything after the stem. The supernet scores many archs on one batch with one stem output
        and ``memos`` from ``arch_independent()`` (kept across those archs, in eval mode only)."""
        s0 = s1 = stem
        aux = None
        for index, (cell, reduction) in enumerate(zip(self.cells, self.reductions, strict=True)):
            drop = self.drop_path * (index + 1) / len(self.cells)  # deeper cells drop more (NAO / NASNet)
            arch_cell = None if cells is None else cells[int(reduction)]
            s0, s1 = s1, cell(s0, s1, arch_cell, drop, None if memos is None else memos[index])
            if index == self.aux_after and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        pooled = s1.mean(dim=(2, 3))  # (B, C)
        return self.classifier(self.dropout(pooled)), aux

    def arch_independent(self) -> list[ArchIndependent]:
        """Empty memos for ``head``: both inputs of the first cell and ``s0`` of the second are the stem's output."""
        return [ArchIndependent((0, 1) if i == 0 else (0,) if i == 1 else ()) for i in range(len(self.cells))]


class ChildNetwork(CellNetwork):
    """The standalone network of one arch (final training, standalone evaluation)."""

    def __init__(self, space: CellSpace, arch: Sequence[int], *, in_channels: int, n_classes: int,
                 config: NetworkConfig):
        arch_cells = space.cells(arch)
        self.arch = space.format(arch)

        def make_cell(*, reduction: bool, **kwargs) -> FixedCell:
            return FixedCell(arch_cells[reduction], space, reduction=reduction, **kwargs)

        super().__init__(make_cell=make_cell, in_channels=in_channels, n_classes=n_classes, config=config)

    def forward(self, x: torch.Tensor) -> Logits:
        return self._forward(x, None)


class Supernet(CellNetwork):
    """Every arch of ``space`` with shared weights (one op per node, input and op); ``forward(x, arch)``.
    ``pool_batch_norm``, ``concat_output``, ``batch_norm_affine``: see :class:`SharedCell`."""

    def __init__(self, space: CellSpace, *, in_channels: int, n_classes: int, config: NetworkConfig,
                 pool_batch_norm: bool = False, concat_output: bool = False, batch_norm_affine: bool = True):
        self.space = space

        def make_cell(**kwargs) -> SharedCell:
            return SharedCell(space, pool_batch_norm=pool_batch_norm, concat_output=concat_output,
                              batch_norm_affine=batch_norm_affine, **kwargs)

        super().__init__(make_cell=make_cell, in_channels=in_channels, n_classes=n_classes, config=config,
                         running_stats=False)

    def forward(self, x: torch.Tensor, arch: Sequence[int]) -> Logits:
        return self._forward(x, self.space.cells(arch))
