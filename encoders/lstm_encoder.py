"""NAO's encoder: token sequence -> per-step outputs on the unit sphere and one arch embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class LSTMEncoder(nn.Module):
    """Embedding -> 1-layer LSTM -> L2-normalised outputs; embedding = normalised mean of outputs.

    ``group_size`` consecutive token embeddings are concatenated into one LSTM step (the
    original code feeds an ``(input, op)`` pair per step), which halves the sequence the
    LSTM runs over without tying the embedding width to the hidden width.
    """

    def __init__(self, *, vocab_size: int, seq_len: int, embedding_dim: int, hidden_dim: int,
                 group_size: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if seq_len % group_size:
            raise ValueError(f"group_size {group_size} does not divide seq_len {seq_len}")
        self.group_size = group_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim * group_size, hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> outputs (B, T / group_size, H), embedding (B, H)."""
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        x = rearrange(x, "b (s g) e -> b s (g e)", g=self.group_size)  # (B, S, G*E)
        outputs, _ = self.lstm(x)  # (B, S, H)
        outputs = F.normalize(self.dropout(outputs), dim=-1)
        return outputs, pool(outputs)


def pool(outputs: torch.Tensor) -> torch.Tensor:
    """Arch embedding from encoder outputs: normalised mean over steps. (B, S, H) -> (B, H)."""
    return F.normalize(outputs.mean(dim=1), dim=-1)
