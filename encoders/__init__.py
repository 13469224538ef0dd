"""Sequence models over architecture tokens: the LSTM encoder and the attention LSTM decoder."""

from nao.encoders.attention_decoder import AttentionDecoder
from nao.encoders.lstm_encoder import LSTMEncoder

__all__ = ["AttentionDecoder", "LSTMEncoder"]
