"""A word-level language model around one recurrent cell (NAO / DARTS / AWD-LSTM style).

Embedding (whole words dropped with ``dropoute``, variational dropout ``dropouti`` on its output),
the cell (variational ``dropoutx`` on its input, ``dropouth`` on the states it reads), variational
``dropout`` on its output, and a decoder tied to the embedding (so ``size`` is both the embedding
and the hidden size, as in the papers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nao.spaces.recurrent import RecurrentSpace
from nao.tasks.rnn.cells import FixedRecurrentCell, SharedRecurrentCell, variational_mask


@dataclass
class LMConfig:
    """Sizes and dropouts; the defaults are NAO's final PTB model (nao-facts §6.2)."""

    size: int = 850  # embedding = hidden size (tied decoder)
    dropout: float = 0.75  # on the cell's output
    dropouth: float = 0.25  # on the states the cell's products read
    dropoutx: float = 0.75  # on the cell's input
    dropouti: float = 0.2  # on the embedding's output
    dropoute: float = 0.0  # whole words of the embedding


class CellLanguageModel(nn.Module):
    """``forward(tokens (T, B), hidden (B, H)) -> (logits (T, B, V), outputs (T, B, H))``; the new hidden
    state is ``outputs[-1]`` (detach it between windows). ``outputs`` are before output dropout (for TAR)."""

    def __init__(self, cell: nn.Module, vocab_size: int, config: LMConfig):
        super().__init__()
        self.cell, self.config = cell, config
        self.embedding = nn.Embedding(vocab_size, config.size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.embedding.weight.new_zeros(batch, self.config.size)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor,
                arch: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, (_, batch) = self.config, tokens.shape
        weight = self.embedding.weight
        if self.training and cfg.dropoute > 0:
            weight = weight * variational_mask(weight, cfg.dropoute, (weight.shape[0], 1))
        x = F.embedding(tokens, weight)  # (T, B, E)
        masks = {}
        if self.training:
            if cfg.dropouti > 0:
                x = x * variational_mask(x, cfg.dropouti, (1, batch, cfg.size))
            masks = {"x_mask": variational_mask(x, cfg.dropoutx, (batch, cfg.size)),
                     "h_mask": variational_mask(x, cfg.dropouth, (batch, cfg.size))}
        outputs = self.cell(x, hidden, arch, **masks)  # (T, B, H)
        dropped = outputs
        if self.training and cfg.dropout > 0:
            dropped = outputs * variational_mask(outputs, cfg.dropout, (1, batch, cfg.size))
        return F.linear(dropped, self.embedding.weight, self.bias), outputs


def fixed_model(space: RecurrentSpace, arch: Sequence[int], vocab_size: int, config: LMConfig) -> CellLanguageModel:
    """The language model of one arch (final training)."""
    return CellLanguageModel(FixedRecurrentCell(space, arch, config.size, config.size), vocab_size, config)


def supernet_model(space: RecurrentSpace, vocab_size: int, config: LMConfig) -> CellLanguageModel:
    """The weight-sharing language model of every arch of ``space`` (NAO-WS); pass ``arch`` to forward."""
    return CellLanguageModel(SharedRecurrentCell(space, config.size, config.size), vocab_size, config)
