"""NAO's decoder: an LSTM started from the arch embedding, attending over the encoder outputs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

# Returns a (B, V) boolean mask of allowed tokens given the tokens decoded so far (B, t).
MaskFn = Callable[[torch.Tensor], torch.Tensor]


class AttentionDecoder(nn.Module):
    """1-layer LSTM decoder with Luong "general" attention (Luong et al. 2015, eq. 5-8).

    The initial state is ``(h0, c0) = (embedding, embedding)``. Like the encoder, one LSTM step
    covers ``group_size`` tokens: it reads the previous group and emits logits for the next
    group's tokens (for the CNN space, one ``(input, op)`` branch per step), which halves the
    recurrent steps. Attention is computed from the LSTM output (no input feeding), so
    teacher-forced training runs the whole sequence in one LSTM call; greedy decoding steps
    through time under a grammar mask.
    """

    def __init__(self, *, vocab_size: int, seq_len: int, hidden_dim: int, group_size: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if seq_len % group_size:
            raise ValueError(f"group_size {group_size} does not divide seq_len {seq_len}")
        self.seq_len = seq_len
        self.group_size = group_size
        token_dim = -(-hidden_dim // group_size)  # ceil: a group's embeddings are about hidden_dim wide
        self.embedding = nn.Embedding(vocab_size, token_dim)
        self.lstm = nn.LSTM(token_dim * group_size, hidden_dim, batch_first=True)
        self.query = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.combine = nn.Linear(2 * hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, vocab_size * group_size)
        self.dropout = nn.Dropout(dropout)

    def _step_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, S*G) -> LSTM inputs (B, S, G*E)."""
        return rearrange(self.embedding(tokens), "b (s g) e -> b s (g e)", g=self.group_size)

    def _logits(self, lstm_out: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """lstm_out (B, S, H), memory (B, M, H) -> logits (B, S*G, V)."""
        scores = torch.bmm(self.query(lstm_out), memory.transpose(1, 2))  # (B, S, M)
        context = torch.bmm(scores.softmax(dim=-1), memory)  # (B, S, H)
        mixed = torch.tanh(self.combine(torch.cat([context, lstm_out], dim=-1)))  # (B, S, H)
        logits = self.out(self.dropout(mixed))  # (B, S, G*V)
        return rearrange(logits, "b s (g v) -> b (s g) v", g=self.group_size)

    @staticmethod
    def _initial_state(embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h0 = embedding.unsqueeze(0).contiguous()  # (1, B, H)
        return h0, h0

    def forward(self, targets: torch.Tensor, embedding: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: targets (B, T) -> logits (B, T, V); step s reads group s-1 (SOS first)."""
        inputs = F.pad(targets[:, : -self.group_size], (self.group_size, 0), value=0)  # (B, T)
        lstm_out, _ = self.lstm(self._step_inputs(inputs), self._initial_state(embedding))  # (B, S, H)
        return self._logits(lstm_out, memory)

    @torch.no_grad()
    def greedy(self, embedding: torch.Tensor, memory: torch.Tensor, mask_fn: MaskFn, sos: int = 0) -> torch.Tensor:
        """Batched greedy decoding; only tokens allowed by ``mask_fn`` are emitted. -> (B, T) long."""
        return self._decode(embedding, memory, mask_fn, lambda logits: logits.argmax(dim=-1), sos)

    @torch.no_grad()
    def sample(self, embedding: torch.Tensor, memory: torch.Tensor, mask_fn: MaskFn, *,
               generator: torch.Generator | None = None, sos: int = 0) -> torch.Tensor:
        """Batched sampling from the masked softmax (a policy's actions). -> (B, T) long."""
        def draw(logits: torch.Tensor) -> torch.Tensor:
            return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
        return self._decode(embedding, memory, mask_fn, draw, sos)

    def log_probs(self, tokens: torch.Tensor, embedding: torch.Tensor, memory: torch.Tensor,
                  mask_fn: MaskFn) -> tuple[torch.Tensor, torch.Tensor]:
        """Under the masked softmax, each token's log-probability and each step's entropy, both (B, T)."""
        logits = self(tokens, embedding, memory)  # (B, T, V)
        allowed = torch.stack([mask_fn(tokens[:, :t]) for t in range(tokens.shape[1])], dim=1)
        log_p = logits.masked_fill(~allowed, float("-inf")).log_softmax(dim=-1)
        entropy = -(log_p.exp() * log_p.masked_fill(~allowed, 0.0)).sum(dim=-1)
        return log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), entropy

    def _decode(self, embedding: torch.Tensor, memory: torch.Tensor, mask_fn: MaskFn,
                pick: Callable[[torch.Tensor], torch.Tensor], sos: int) -> torch.Tensor:
        """Step through time; ``pick`` chooses each token from its masked logits (B, V)."""
        batch, group = embedding.shape[0], self.group_size
        state = self._initial_state(embedding)
        previous = torch.full((batch, group), sos, dtype=torch.long, device=embedding.device)
        decoded = torch.empty((batch, self.seq_len), dtype=torch.long, device=embedding.device)
        for start in range(0, self.seq_len, group):
            lstm_out, state = self.lstm(self._step_inputs(previous), state)  # (B, 1, H)
            logits = self._logits(lstm_out, memory)  # (B, G, V)
            for g in range(group):
                t = start + g
                allowed = mask_fn(decoded[:, :t])
                decoded[:, t] = pick(logits[:, g].masked_fill(~allowed, float("-inf")))
            previous = decoded[:, start:start + group]
        return decoded


def grammar_mask_fn(space, device: torch.device | str) -> MaskFn:
    """A search space's grammar (``position_masks``, else ``token_mask`` per row) as a batched mask function."""
    masks = space.position_masks()
    if masks is not None:
        table = torch.tensor(masks, dtype=torch.bool, device=device)  # (T, V)
        return lambda prefix: table[prefix.shape[1]].expand(prefix.shape[0], -1)

    def per_row(prefix: torch.Tensor) -> torch.Tensor:
        rows = [space.token_mask(p) for p in prefix.tolist()]
        return torch.tensor(np.asarray(rows, dtype=bool), device=device)
    return per_row
