"""The encoder-predictor-decoder network (NAO, Luo et al. 2018, section 3)."""

from __future__ import annotations

import torch
from torch import nn

from nao.encoders import AttentionDecoder, LSTMEncoder
from nao.encoders.lstm_encoder import pool
from nao.predictors.mlp import MLPPredictor


class EncoderPredictorDecoder(nn.Module):
    """Encoder -> embedding -> (predictor heads' scores, decoder reconstruction).

    With ``predictor_heads`` > 1 the embedding feeds that many MLP heads, each from its own initialisation and
    each trained on the scores: their mean is the prediction, their spread an uncertainty (an ensemble on a shared
    encoder, as BANANAS' ensemble but one network). Head 0 is ``predictor``, the others ``more_predictors``, built
    last: a one-head model has the same weights, initialisation and checkpoints as before heads existed.
    """

    def __init__(self, *, vocab_size: int, seq_len: int, group_size: int, embedding_dim: int,
                 hidden_dim: int, mlp_layers: int, mlp_dim: int, dropout: float, predictor_heads: int = 1) -> None:
        super().__init__()
        self.encoder = LSTMEncoder(vocab_size=vocab_size, seq_len=seq_len, embedding_dim=embedding_dim,
                                   hidden_dim=hidden_dim, group_size=group_size, dropout=dropout)
        self.predictor = MLPPredictor(input_dim=hidden_dim, layers=mlp_layers, width=mlp_dim, dropout=dropout)
        self.decoder = AttentionDecoder(vocab_size=vocab_size, seq_len=seq_len, hidden_dim=hidden_dim,
                                        group_size=group_size)
        self.more_predictors = nn.ModuleList(
            MLPPredictor(input_dim=hidden_dim, layers=mlp_layers, width=mlp_dim, dropout=dropout)
            for _ in range(predictor_heads - 1))

    def heads(self, embedding: torch.Tensor) -> torch.Tensor:
        """embedding (B, H) -> every head's score (B, heads)."""
        return torch.stack([head(embedding) for head in (self.predictor, *self.more_predictors)], dim=-1)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> the heads' scores (B, heads), decoder logits (B, T, V) under teacher forcing."""
        outputs, embedding = self.encoder(tokens)  # (B, S, H), (B, H)
        return self.heads(embedding), self.decoder(tokens, embedding, outputs)

    def predict_heads(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> the heads' scores (B, heads)."""
        return self.heads(self.encoder(tokens)[1])

    def predict_from_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Encoder outputs (B, S, H) -> predicted score (B,), the heads' mean; differentiable in ``outputs``."""
        return self.heads(pool(outputs)).mean(dim=-1)
