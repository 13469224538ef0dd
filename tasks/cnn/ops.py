"""Candidate operations of the CNN cell spaces, by name (``CellSpace.op_names``).

Every op maps ``channels`` to ``channels``; ``stride=2`` halves height and width (rounding up,
so 7x7 maps become 4x4 whatever the op). ``norm`` says how their batch norms normalise (:class:`Norm`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Norm:
    """The batch norms of the ops and cells. A standalone network keeps running statistics and learns a scale and
    shift per channel. The weight-sharing supernet normalises with each batch's own statistics
    (``running_stats=False``), so an arch's score never depends on which arch ran before it (nao-facts §8.1, 15);
    ``affine=False`` also drops the learned scale and shift, as DARTS' search network does (Liu et al. 2019), so
    that no op's output scale is learned for the archs it happened to be trained in."""

    running_stats: bool = True
    affine: bool = True

    def __call__(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, affine=self.affine, track_running_stats=self.running_stats)


STANDALONE = Norm()

OpFactory = Callable[[int, int, Norm], nn.Module]


class ReLUConvBN(nn.Sequential):
    """ReLU, then one convolution (or a chain, e.g. 1x7 then 7x1), then batch norm."""

    def __init__(self, convs: list[nn.Conv2d], channels: int, norm: Norm):
        super().__init__(nn.ReLU(), *convs, norm(channels))


def conv(c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int | tuple[int, int] = 1,
         groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """No bias; padded so that stride 1 keeps the size and stride 2 halves it (rounding up)."""
    size = (kernel, kernel) if isinstance(kernel, int) else kernel
    if size == (1, 1) and stride not in (1, (1, 1)) and groups == 1:
        return StridedConv1x1(c_in, c_out, stride)
    padding = (dilation * (size[0] // 2), dilation * (size[1] // 2))
    return nn.Conv2d(c_in, c_out, size, stride, padding=padding, dilation=dilation, groups=groups, bias=False)


class StridedConv1x1(nn.Conv2d):
    """A strided 1x1 convolution run as a subsample and a stride-1 1x1 convolution: the same result.

    torch 2.13's oneDNN weight gradient of a strided 1x1 conv on channels-last CPU input with 2-6 input
    channels (jit_avx2_1x1_convolution_bwd_weights) writes past its buffer: heap corruption, or losses that
    differ run to run (found with valgrind in the supernet's FactorizedReduce; stride 1 is clean).
    """

    def __init__(self, c_in: int, c_out: int, stride: int | tuple[int, int]):
        super().__init__(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x[:, :, ::self.stride[0], ::self.stride[1]], self.weight)


class SepConv(nn.Sequential):
    """DARTS-style separable convolution: (ReLU, depthwise k x k, pointwise 1x1, BN) twice."""

    def __init__(self, channels: int, kernel: int, stride: int, norm: Norm):
        super().__init__(
            ReLUConvBN([conv(channels, channels, kernel, stride, groups=channels), conv(channels, channels, 1)],
                       channels, norm),
            ReLUConvBN([conv(channels, channels, kernel, groups=channels), conv(channels, channels, 1)],
                       channels, norm),
        )


class FactorizedReduce(nn.Module):
    """Halves the resolution without losing pixels: two stride-2 1x1 convs, the second shifted by one."""

    def __init__(self, c_in: int, c_out: int, norm: Norm):
        super().__init__()
        self.conv_a = StridedConv1x1(c_in, c_out // 2, 2)
        self.conv_b = StridedConv1x1(c_in, c_out - c_out // 2, 2)
        self.bn = norm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]  # odd sizes too: both halves give ceil(size / 2)
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


class Pool(nn.Module):
    """Max or average pooling that keeps the size (stride 1) or halves it (stride 2).

    Even kernels pad one pixel right and bottom, as the reference does for its 2x2 pools.
    """

    def __init__(self, kind: str, kernel: int, stride: int):
        super().__init__()
        self.kind, self.kernel, self.stride = kind, kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = self.kernel // 2
        if self.kernel % 2 == 0:
            x, padding = F.pad(x, (0, 1, 0, 1), value=float("-inf") if self.kind == "max" else 0.0), 0
        if self.kind == "max":
            return F.max_pool2d(x, self.kernel, self.stride, padding)
        return F.avg_pool2d(x, self.kernel, self.stride, padding, count_include_pad=False)


def identity(channels: int, stride: int, norm: Norm) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, norm)


def factorized_conv(kernel: int) -> OpFactory:
    """1 x k then k x 1 (the stride split between them), NAO's cheap large-receptive-field conv."""
    return lambda c, s, norm: ReLUConvBN([conv(c, c, (1, kernel), (1, s)), conv(c, c, (kernel, 1), (s, 1))], c, norm)


def dil_conv(kernel: int) -> OpFactory:
    """DARTS' dilated separable convolution: ReLU, depthwise k x k with dilation 2, pointwise 1x1, BN (once,
    where ``SepConv`` stacks two): a 5x5 (9x9) receptive field for the weights of a 3x3 (5x5)."""
    return lambda c, s, norm: ReLUConvBN([conv(c, c, kernel, s, groups=c, dilation=2), conv(c, c, 1)], c, norm)


def pool(kind: str, kernel: int) -> OpFactory:
    return lambda c, s, norm: Pool(kind, kernel, s)


OPS: dict[str, OpFactory] = {
    "identity": identity,
    "skip_connect": identity,  # DARTS' name for it
    "sep_conv_3x3": lambda c, s, norm: SepConv(c, 3, s, norm),
    "sep_conv_5x5": lambda c, s, norm: SepConv(c, 5, s, norm),
    "dil_conv_3x3": dil_conv(3),
    "dil_conv_5x5": dil_conv(5),
    "conv_1x1": lambda c, s, norm: ReLUConvBN([conv(c, c, 1, s)], c, norm),
    "conv_3x3": lambda c, s, norm: ReLUConvBN([conv(c, c, 3, s)], c, norm),
    "conv_1x3_3x1": factorized_conv(3),
    "conv_1x7_7x1": factorized_conv(7),
    **{f"{kind}_pool_{k}x{k}": pool(kind, k) for kind in ("max", "avg") for k in (2, 3, 5)},
}


def make_op(name: str, channels: int, stride: int, norm: Norm = STANDALONE) -> nn.Module:
    if name not in OPS:
        raise KeyError(f"no CNN op named {name!r} (known: {', '.join(sorted(OPS))})")
    return OPS[name](channels, stride, norm)
