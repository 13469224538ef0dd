"""Gradient-step proposals in embedding space (NAO, Luo et al. 2018, eq. 3).

Every encoder output ``e_t`` of a seed arch moves along the gradient of the predicted score,
``e_t' = normalise(e_t + eta * g_t / rms(g))``, and the decoder turns the moved outputs back
into tokens. The gradient is divided by its RMS over steps so that ``eta`` is a distance on the
unit sphere, whatever the predictor's output scale (the original code steps by the raw gradient,
so useful step sizes depend on the target scaling). All seeds and all step sizes decode as one
batch; the smallest step that yields a new arch wins, as in the original's growing-eta loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from nao.encoders.lstm_encoder import pool
from nao.errors import ArchError
from nao.spaces.base import Arch

if TYPE_CHECKING:
    from nao.controller.controller import Controller


@dataclass(frozen=True)
class Proposal:
    arch: Arch
    predicted: float
    step: float


def propose(ctrl: Controller, seeds: Sequence[Arch], *, known: Sequence[Arch], n: int,
            step_sizes: np.ndarray) -> list[Proposal]:
    """Up to ``n`` archs, distinct and not equivalent to ``known``, from moved seed embeddings.

    ``predicted`` is left at NaN here; the controller scores the decoded archs themselves.
    """
    if not seeds or n <= 0:
        return []
    space, model = ctrl.space, ctrl.model
    model.eval()
    tokens = ctrl._tokens(seeds)  # (K, T)
    with torch.enable_grad():
        outputs, _ = model.encoder(tokens)  # (K, S, H)
        outputs = outputs.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model.predict_from_outputs(outputs).sum(), outputs)  # (K, S, H)
    rms = grad.pow(2).sum(dim=-1).mean(dim=-1).sqrt().clamp_min(1e-12)  # (K,)
    direction = grad / rms[:, None, None]
    steps = torch.tensor(step_sizes, dtype=outputs.dtype, device=outputs.device)  # (M,)
    moved = outputs.detach()[None] + steps[:, None, None, None] * direction[None]  # (M, K, S, H)
    moved = F.normalize(moved.flatten(0, 1), dim=-1)  # (M*K, S, H)
    with torch.no_grad():
        decoded = model.decoder.greedy(pool(moved), moved, ctrl.mask_fn()).cpu().numpy()  # (M*K, T)

    seen = {space.canonical(a) for a in known}
    found: list[Proposal] = []
    step_of_row = np.repeat(step_sizes, len(seeds))
    for row, step in zip(decoded, step_of_row, strict=True):
        try:
            arch = space.from_tokens(row.tolist())
        except ArchError:  # impossible under the grammar mask; a user space may be looser
            continue
        key = space.canonical(arch)
        if key in seen:
            continue
        seen.add(key)
        found.append(Proposal(arch=arch, predicted=float("nan"), step=float(step)))
        if len(found) == n:
            break
    return found
