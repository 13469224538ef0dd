"""Training targets: raw scores <-> standardised values where higher is always better."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from nao.errors import ScoreError

TRANSFORMS = ("zscore", "rank")


@dataclass(frozen=True)
class TargetScaler:
    """Monotone map between scores and training targets (higher target = better arch).

    ``kind="zscore"``: ``target = sign * (score - mean) / std`` with ``sign = -1`` when lower
    scores are better. ``kind="rank"``: each training score becomes the standard-normal quantile
    of its mid-rank, ``Phi^-1((rank - 0.5) / n)`` (ties share the average rank), so a long tail
    of failed archs (NB201: ~10% of cells near 10% accuracy) no longer dominates the MSE.
    Between training scores the rank map is piecewise linear (``knots``); beyond them it
    continues with the z-score slope, so it stays strictly increasing everywhere and predictions
    of unseen archs keep their order.

    The original code min-max scales to [0, 1] and divides by zero when all scores are equal;
    here equal scores are refused with a clear message, since nothing can be learned from them.
    """

    mean: float
    std: float
    sign: float
    kind: str = "zscore"
    knots: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (sign * score, target), increasing

    @classmethod
    def fit(cls, scores: np.ndarray, *, minimize: bool, kind: str = "zscore") -> TargetScaler:
        if kind not in TRANSFORMS:
            raise ValueError(f"unknown target transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")
        scores = np.asarray(scores, dtype=np.float64)
        if scores.size < 2:
            raise ScoreError(f"need at least 2 scored archs to fit, got {scores.size}")
        if not np.all(np.isfinite(scores)):
            raise ScoreError("scores contain NaN or infinite values")
        std = float(scores.std())
        if std <= 1e-12 * max(1.0, abs(float(scores.mean()))):
            raise ScoreError(f"all {scores.size} scores are equal ({scores[0]:g}): nothing to rank")
        sign = -1.0 if minimize else 1.0
        knots = None
        if kind == "rank":
            values, counts = np.unique(sign * scores, return_counts=True)
            mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each distinct value
            normal = NormalDist()
            targets = np.array([normal.inv_cdf((r - 0.5) / scores.size) for r in mid_ranks])
            knots = (tuple(values.tolist()), tuple(targets.tolist()))
        return cls(mean=float(scores.mean()), std=std, sign=sign, kind=kind, knots=knots)

    def transform(self, scores: np.ndarray) -> np.ndarray:
        oriented = self.sign * np.asarray(scores, dtype=np.float64)
        if self.knots is None:
            return (oriented - self.sign * self.mean) / self.std
        return _interp(oriented, *self.knots, slope=1.0 / self.std)

    def inverse(self, targets: np.ndarray) -> np.ndarray:
        targets = np.asarray(targets, dtype=np.float64)
        if self.knots is None:
            return self.sign * targets * self.std + self.mean
        values, knot_targets = self.knots
        return self.sign * _interp(targets, knot_targets, values, slope=self.std)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TargetScaler:
        data = dict(data)
        if data.get("knots") is not None:
            data["knots"] = tuple(tuple(k) for k in data["knots"])
        return cls(**data)


def _interp(x: np.ndarray, xp: tuple[float, ...], fp: tuple[float, ...], *, slope: float) -> np.ndarray:
    """Piecewise-linear through (xp, fp) (both increasing), continued with ``slope`` outside them."""
    xp_, fp_ = np.asarray(xp), np.asarray(fp)
    inside = np.interp(x, xp_, fp_)
    below = fp_[0] + (x - xp_[0]) * slope
    above = fp_[-1] + (x - xp_[-1]) * slope
    return np.where(x < xp_[0], below, np.where(x > xp_[-1], above, inside))
