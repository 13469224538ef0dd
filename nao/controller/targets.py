"""Training targets: raw scores <-> standardised values where higher is always better."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nao.errors import ScoreError


@dataclass(frozen=True)
class TargetScaler:
    """``target = sign * (score - mean) / std`` with ``sign = -1`` when lower scores are better.

    The original code min-max scales to [0, 1] and divides by zero when all scores are equal;
    here equal scores are refused with a clear message, since nothing can be learned from them.
    """

    mean: float
    std: float
    sign: float

    @classmethod
    def fit(cls, scores: np.ndarray, *, minimize: bool) -> TargetScaler:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.size < 2:
            raise ScoreError(f"need at least 2 scored archs to fit, got {scores.size}")
        if not np.all(np.isfinite(scores)):
            raise ScoreError("scores contain NaN or infinite values")
        std = float(scores.std())
        if std <= 1e-12 * max(1.0, abs(float(scores.mean()))):
            raise ScoreError(f"all {scores.size} scores are equal ({scores[0]:g}): nothing to rank")
        return cls(mean=float(scores.mean()), std=std, sign=-1.0 if minimize else 1.0)

    def transform(self, scores: np.ndarray) -> np.ndarray:
        return self.sign * (np.asarray(scores, dtype=np.float64) - self.mean) / self.std

    def inverse(self, targets: np.ndarray) -> np.ndarray:
        return self.sign * np.asarray(targets, dtype=np.float64) * self.std + self.mean

    def to_dict(self) -> dict:
        return asdict(self)
