"""BANANAS' predictor: an ensemble of MLPs on a fixed encoding of the arch (White et al. 2021, section 4).

Each member is a plain feed-forward network trained from its own random initialisation on the same data; the
members' spread is the uncertainty the acquisition function uses. The members are trained together, as one
batched network (weights ``(members, in, out)``), which is several times faster on a CPU than a loop over them.
The encoding is the one-hot of the canonical form's tokens (the space's own encoding; BANANAS' path encoding is
specific to cell spaces with one op per edge).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nao.config import at_least
from nao.spaces.base import Arch, SearchSpace


@dataclass
class EnsembleConfig:
    """BANANAS' meta neural network: 5 members of 10 layers of width 20, Adam at 0.01 for 200 epochs."""

    members: int = 5
    layers: int = 10
    width: int = 20
    epochs: int = 200
    lr: float = 0.01
    batch_size: int = 32

    def __post_init__(self) -> None:
        at_least(self, members=1, layers=1, width=1, epochs=1, lr=0.0, batch_size=1)


class BatchedLinear(nn.Module):
    """``members`` independent linear layers applied to ``(members, B, in)``."""

    def __init__(self, members: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1 / np.sqrt(d_in)  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(members, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsemblePredictor:
    """Fit on (arch, score), predict each arch's mean and standard deviation over the members.

    >>> ens = EnsemblePredictor(get_space("nb201"), EnsembleConfig(), seed=0)
    >>> ens.fit(archs, scores); mean, std = ens.predict(other_archs)
    """

    def __init__(self, space: SearchSpace, config: EnsembleConfig | None = None, *, seed: int = 0) -> None:
        self.space, self.config, self.seed = space, config or EnsembleConfig(), seed
        self._mean = self._scale = 0.0
        self.model: nn.Module | None = None

    def encode(self, archs: Sequence[Arch]) -> torch.Tensor:
        """One-hot of the canonical form's tokens: ``(N, seq_len * vocab_size)``."""
        tokens = torch.tensor([self.space.to_tokens(self.space.canonical(a)) for a in archs], dtype=torch.long)
        return nn.functional.one_hot(tokens, self.space.vocab_size).flatten(1).float()

    def fit(self, archs: Sequence[Arch], scores: Sequence[float]) -> float:
        """Train fresh members on standardised scores; returns the last epoch's mean squared error."""
        cfg = self.config
        x = self.encode(archs)
        y = np.asarray(scores, dtype=np.float64)
        self._mean, self._scale = float(y.mean()), float(y.std()) or 1.0
        targets = torch.tensor((y - self._mean) / self._scale, dtype=torch.float32)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            dims = [x.shape[1]] + [cfg.width] * cfg.layers
            blocks: list[nn.Module] = []
            for d_in, d_out in itertools.pairwise(dims):
                blocks += [BatchedLinear(cfg.members, d_in, d_out), nn.ReLU()]
            self.model = nn.Sequential(*blocks, BatchedLinear(cfg.members, dims[-1], 1))
        optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        n, loss = len(x), torch.zeros(())
        for _ in range(cfg.epochs):
            order = torch.stack([torch.randperm(n, generator=generator) for _ in range(cfg.members)])  # (M, N)
            for start in range(0, n, cfg.batch_size):
                index = order[:, start:start + cfg.batch_size]  # each member its own minibatches
                predicted = self.model(x[index]).squeeze(-1)  # (M, B)
                loss = nn.functional.mse_loss(predicted, targets[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return loss.item()

    @torch.no_grad()
    def predict(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the members, on the scale of the training scores."""
        if self.model is None:
            raise RuntimeError("the ensemble is not fitted yet: call fit() first")
        x = self.encode(archs).expand(self.config.members, -1, -1)
        out = self.model(x).squeeze(-1).numpy().astype(np.float64) * self._scale + self._mean  # (M, N)
        return out.mean(axis=0), out.std(axis=0)
