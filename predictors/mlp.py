"""The performance-predictor head: an MLP from the arch embedding to one score."""

from __future__ import annotations

import torch
from torch import nn


class MLPPredictor(nn.Module):
    """``layers`` x (Linear, ReLU, Dropout) then Linear -> 1; linear output (targets are standardised)."""

    def __init__(self, *, input_dim: int, layers: int, width: int, dropout: float = 0.0) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        dim = input_dim
        for _ in range(layers):
            blocks += [nn.Linear(dim, width), nn.ReLU(), nn.Dropout(dropout)]
            dim = width
        blocks.append(nn.Linear(dim, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """embedding (B, H) -> score (B,)."""
        return self.net(embedding).squeeze(-1)
