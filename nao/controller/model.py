"""The encoder-predictor-decoder network (NAO, Luo et al. 2018, section 3)."""

from __future__ import annotations

import torch
from torch import nn

from nao.encoders import AttentionDecoder, LSTMEncoder
from nao.encoders.lstm_encoder import pool
from nao.predictors.mlp import MLPPredictor


class EncoderPredictorDecoder(nn.Module):
    """Encoder -> embedding -> (predictor score, decoder reconstruction)."""

    def __init__(self, *, vocab_size: int, seq_len: int, group_size: int, embedding_dim: int,
                 hidden_dim: int, mlp_layers: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.encoder = LSTMEncoder(vocab_size=vocab_size, seq_len=seq_len, embedding_dim=embedding_dim,
                                   hidden_dim=hidden_dim, group_size=group_size, dropout=dropout)
        self.predictor = MLPPredictor(input_dim=hidden_dim, layers=mlp_layers, width=mlp_dim, dropout=dropout)
        self.decoder = AttentionDecoder(vocab_size=vocab_size, seq_len=seq_len, hidden_dim=hidden_dim,
                                        group_size=group_size)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> predicted score (B,), decoder logits (B, T, V) under teacher forcing."""
        outputs, embedding = self.encoder(tokens)  # (B, S, H), (B, H)
        return self.predictor(embedding), self.decoder(tokens, embedding, outputs)

    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> predicted score (B,)."""
        return self.predictor(self.encoder(tokens)[1])

    def predict_from_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Encoder outputs (B, S, H) -> predicted score (B,); differentiable in ``outputs``."""
        return self.predictor(pool(outputs))
