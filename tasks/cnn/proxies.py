"""Training-free scores of CNN archs ("zero-cost proxies"): how a freshly initialised network of the arch responds to
one mini-batch, in a forward and backward pass instead of a training.

Abdelfattah et al. 2021 ("Zero-Cost Proxies for Lightweight NAS") found such scores ranking NAS-Bench-201 cells as
well as short trainings; they are cheap where a supernet is not, and they see what a network's capacity and
trainability buy, which weight-sharing supernets miss (docs/cnn.md). Each proxy is registered by name in
:data:`PROXIES` as ``proxy(model, images, labels) -> float``, higher meaning better; ``model`` is a fresh
:class:`ChildNetwork` the proxy may change (it is thrown away after).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nao.spaces.base import Arch
from nao.spaces.cell import CellSpace
from nao.tasks.cnn.network import ChildNetwork, NetworkConfig
from nao.tasks.cnn.train import model_input
from nao.tasks.images import ImageData
from nao.torchutils import seeded, seeded_init

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
PROXIES: dict[str, Proxy] = {}


def register_proxy(name: str) -> Callable[[Proxy], Proxy]:
    """Decorator: make ``proxy`` available as ``name`` in :data:`PROXIES`."""
    def register(proxy: Proxy) -> Proxy:
        PROXIES[name] = proxy
        return proxy
    return register


@torch.no_grad()
def _saliency(model: nn.Module) -> float:
    """The sum of |θ · ∂/∂θ| over the weights of the convolutions and linear layers (the synapses), of the
    gradients of the last backward pass."""
    synapses = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    return sum(float((w * w.grad).abs().sum()) for w in synapses if w.grad is not None)


@register_proxy("weights")
def weights(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The number of weights of the whole network: the baseline every proxy is compared with (Abdelfattah et al.
    2021's #params). Unlike the supernet's ``parameters_of`` (the shared ops an arch uses), it counts the
    preprocessing convolutions of each cell too, whose size grows with the nodes the previous cell concatenates."""
    return float(sum(p.numel() for p in model.parameters()))


@register_proxy("synflow")
def synflow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """SynFlow (Tanaka et al. 2020; as a proxy, Abdelfattah et al. 2021): the sum over the synapses of
    |θ · ∂R/∂θ|, where R is the sum of the outputs of the network with every parameter replaced by its absolute
    value, on one all-ones input. It uses no data (only the input's shape); batch norms are in eval mode with
    fresh statistics (near identities), and the computation is in double precision, since the products of many
    layers' weights overflow single precision. Returned as its natural logarithm (same order, readable)."""
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
    model.zero_grad()
    model(ones)[0].sum().backward()
    total = _saliency(model)
    return float(np.log(total)) if total > 0 else float("-inf")


@register_proxy("snip")
def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """SNIP (Lee et al. 2019; as a proxy, Abdelfattah et al. 2021): the sum over the synapses of |θ · ∂L/∂θ|,
    ``L`` the cross-entropy of the mini-batch (training mode: batch norms use the batch's statistics)."""
    model.train().zero_grad()
    F.cross_entropy(model(images)[0], labels).backward()
    return _saliency(model)


@register_proxy("naswot")
def naswot(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021, "Neural Architecture Search without Training"): log |K|, where K[i, j] counts
    the ReLUs (the ``nn.ReLU`` modules of the ops) on which images i and j of the mini-batch agree, both active
    or both inactive. A network that tells the images apart by their activation patterns already at
    initialisation has a K close to diagonal and a large determinant."""
    n = len(images)
    agreement = torch.zeros((n, n), dtype=torch.float64, device=images.device)

    def count(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        active = (inputs[0].detach().flatten(1) > 0).double()
        agreement.add_(active @ active.T + (1 - active) @ (1 - active).T)

    hooks = [m.register_forward_pre_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model.train()(images)
    finally:
        for hook in hooks:
            hook.remove()
    return float(torch.linalg.slogdet(agreement)[1])


def proxy_scores(name: str, space: CellSpace, archs: Sequence[Arch], network: NetworkConfig, data: ImageData, *,
                 seed: int, batch_size: int = 64, device: torch.device | str = "cpu") -> np.ndarray:
    """Proxy ``name`` of each arch's network (``network``'s size, weights initialised from ``seed``: the same draw
    for every arch, on any ``device``) on the first ``batch_size`` training images of ``data`` (the same for every
    arch), computed on ``device``."""
    if name not in PROXIES:
        raise KeyError(f"no proxy {name!r}; known: {', '.join(PROXIES)}")
    images, labels = data.train
    x, y = model_input(images[:batch_size].to(device), data), labels[:batch_size].to(device)
    scores = []
    for arch in archs:
        model = seeded_init(lambda a=arch: ChildNetwork(space, a, in_channels=data.shape[0],
                                                        n_classes=data.n_classes, config=network), seed).to(device)
        with seeded(seed):
            scores.append(PROXIES[name](model, x, y))
    return np.array(scores, dtype=float)
