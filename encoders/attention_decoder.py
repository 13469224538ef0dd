"""NAO's decoder: an LSTM started from the arch embedding, attending over the encoder outputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# Returns a (B, V) boolean mask of allowed tokens given the tokens decoded so far (B, t).
MaskFn = Callable[[torch.Tensor], torch.Tensor]


class AttentionDecoder(nn.Module):
    """1-layer LSTM decoder with Luong "general" attention (Luong et al. 2015, eq. 5-8).

    The initial state is ``(h0, c0) = (embedding, embedding)``. Attention is computed from
    the LSTM output (no input feeding), so teacher-forced training runs the whole sequence in
    one LSTM call; greedy decoding steps through time under a grammar mask.
    """

    def __init__(self, *, vocab_size: int, seq_len: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.embedding = nn.Embedding(vocab_size, hidden_dim)
        self.lstm = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.query = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.combine = nn.Linear(2 * hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def _logits(self, lstm_out: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """lstm_out (B, T, H), memory (B, S, H) -> logits (B, T, V)."""
        scores = torch.bmm(self.query(lstm_out), memory.transpose(1, 2))  # (B, T, S)
        context = torch.bmm(scores.softmax(dim=-1), memory)  # (B, T, H)
        mixed = torch.tanh(self.combine(torch.cat([context, lstm_out], dim=-1)))  # (B, T, H)
        return self.out(self.dropout(mixed))

    def forward(self, inputs: torch.Tensor, embedding: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: inputs (B, T) = [SOS] + target[:-1] -> logits (B, T, V)."""
        state = (embedding.unsqueeze(0).contiguous(), embedding.unsqueeze(0).contiguous())  # (1, B, H) each
        lstm_out, _ = self.lstm(self.dropout(self.embedding(inputs)), state)  # (B, T, H)
        return self._logits(lstm_out, memory)

    @torch.no_grad()
    def greedy(self, embedding: torch.Tensor, memory: torch.Tensor, mask_fn: MaskFn, sos: int = 0) -> torch.Tensor:
        """Batched greedy decoding; only tokens allowed by ``mask_fn`` are emitted. -> (B, T) long."""
        batch = embedding.shape[0]
        state = (embedding.unsqueeze(0).contiguous(), embedding.unsqueeze(0).contiguous())
        token = torch.full((batch, 1), sos, dtype=torch.long, device=embedding.device)
        decoded = torch.empty((batch, self.seq_len), dtype=torch.long, device=embedding.device)
        for t in range(self.seq_len):
            lstm_out, state = self.lstm(self.embedding(token), state)  # (B, 1, H)
            logits = self._logits(lstm_out, memory)[:, 0]  # (B, V)
            logits = logits.masked_fill(~mask_fn(decoded[:, :t]), float("-inf"))
            token = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            decoded[:, t] = token[:, 0]
        return decoded
