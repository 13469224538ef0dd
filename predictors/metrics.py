"""Ranking and regression metrics for performance predictors (pure numpy).

Every function takes 1-D arrays ``(y_true, y_pred)`` of equal length, higher = better. Correlations
on degenerate input (fewer than 2 items, a constant array) are ``nan`` instead of an error, so a
report on a tiny held-out split still prints. Pair counts use Knight's sort-based algorithm
(O(n log^2 n)), so n = 20,000 takes milliseconds.
"""

from __future__ import annotations

import numpy as np


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float 1-D arrays of equal length."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"expected two 1-D arrays of equal length, got shapes {t.shape} and {p.shape}")
    return t, p


def _tied_pairs(sorted_values: np.ndarray) -> int:
    """Number of pairs with equal values in an already sorted array."""
    if len(sorted_values) == 0:
        return 0
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1], True])
    counts = np.diff(starts)
    return int((counts * (counts - 1) // 2).sum())


def _count_inversions(a: np.ndarray) -> int:
    """Pairs ``i < j`` with ``a[i] > a[j]`` (strictly), for non-negative ints; O(n log^2 n).

    Bottom-up merge sort, vectorised per level: each pair of sorted blocks is counted with one
    ``searchsorted`` over all blocks at once (blocks are offset so that they stay globally sorted).
    """
    n = len(a)
    size = 1 << max(n - 1, 0).bit_length()
    top = int(a.max(initial=0)) + 1
    a = np.concatenate([a.astype(np.int64), np.full(size - n, top, dtype=np.int64)])  # pad sorts last
    stride = top + 1
    total = 0
    width = 1
    while width < size:
        blocks = a.reshape(-1, 2, width)  # (blocks, 2, width), each half sorted
        offsets = np.arange(len(blocks), dtype=np.int64)[:, None] * stride
        left = (blocks[:, 0, :] + offsets).ravel()
        right = (blocks[:, 1, :] + offsets).ravel()
        not_greater = np.searchsorted(left, right, side="right") - np.repeat(
            np.arange(len(blocks)) * width, width
        )
        total += int((width - not_greater).sum())
        a = np.sort(a.reshape(-1, 2 * width), axis=1).ravel()
        width *= 2
    return total


def _pair_counts(x: np.ndarray, y: np.ndarray) -> tuple[int, int, int, int, int]:
    """``(pairs, ties in x, ties in y, ties in both, discordant pairs)`` over all pairs ``i < j``."""
    n = len(x)
    order = np.lexsort((y, x))  # by x, then y: pairs tied in x are never inversions
    xs, ys = x[order], y[order]
    x_ties = _tied_pairs(xs)
    joint = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1]), True]
    joint_counts = np.diff(np.flatnonzero(joint))
    both_ties = int((joint_counts * (joint_counts - 1) // 2).sum())
    y_ties = _tied_pairs(np.sort(y))
    y_ranks = np.unique(y, return_inverse=True)[1].ravel()[order]
    discordant = _count_inversions(y_ranks)
    return n * (n - 1) // 2, x_ties, y_ties, both_ties, discordant


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall's tau-b (tie-corrected); ``nan`` when either array is constant or n < 2."""
    t, p = _pair(y_true, y_pred)
    pairs, t_ties, p_ties, both_ties, discordant = _pair_counts(t, p)
    denom = float(pairs - t_ties) * float(pairs - p_ties)
    if denom == 0:
        return float("nan")
    concordant = pairs - t_ties - p_ties + both_ties - discordant
    return float((concordant - discordant) / np.sqrt(denom))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(x)]
    group_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman's rho (Pearson on average ranks); ``nan`` when either array is constant or n < 2."""
    t, p = _pair(y_true, y_pred)
    if len(t) < 2:
        return float("nan")
    rt = average_ranks(t) - (len(t) + 1) / 2.0
    rp = average_ranks(p) - (len(p) + 1) / 2.0
    denom = np.sqrt((rt * rt).sum() * (rp * rp).sum())
    if denom == 0:
        return float("nan")
    return float((rt * rp).sum() / denom)


def pairwise_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of pairs with distinct true values whose predicted order agrees.

    A pair the predictor ties counts as half (a coin flip), so a constant predictor scores 0.5.
    ``nan`` when no pair has distinct true values.
    """
    t, p = _pair(y_true, y_pred)
    pairs, t_ties, p_ties, both_ties, discordant = _pair_counts(t, p)
    ranked = pairs - t_ties
    if ranked == 0:
        return float("nan")
    pred_only_ties = p_ties - both_ties
    concordant = ranked - pred_only_ties - discordant
    return float((concordant + 0.5 * pred_only_ties) / ranked)


def precision_at_k(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Share of the predicted top-k that is in the true top-k (``k`` capped at n; ``nan`` if n = 0).

    An item is in the true top-k when its true value is at least the k-th largest one, so ties at
    the boundary do not depend on the input order; predicted ties are broken by input order.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    t, p = _pair(y_true, y_pred)
    if len(t) == 0:
        return float("nan")
    k = min(k, len(t))
    threshold = np.sort(t)[-k]
    predicted_top = np.argsort(-p, kind="stable")[:k]
    return float(np.mean(t[predicted_top] >= threshold))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error; ``nan`` for empty input."""
    t, p = _pair(y_true, y_pred)
    if len(t) == 0:
        return float("nan")
    return float(np.abs(t - p).mean())


def reconstruction_accuracy(true_tokens: np.ndarray, pred_tokens: np.ndarray) -> float:
    """Share of rows (token sequences) reproduced exactly; ``nan`` for zero rows."""
    t = np.asarray(true_tokens)
    p = np.asarray(pred_tokens)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"expected two 2-D arrays of equal shape, got shapes {t.shape} and {p.shape}")
    if len(t) == 0:
        return float("nan")
    return float((t == p).all(axis=1).mean())


def ranking_report(y_true: np.ndarray, y_pred: np.ndarray, *, k: int = 10) -> dict[str, float]:
    """The held-out metrics ``predictor fit`` reports, as plain floats."""
    return {
        "kendall_tau": kendall_tau(y_true, y_pred),
        "spearman": spearman(y_true, y_pred),
        "pairwise_acc": pairwise_accuracy(y_true, y_pred),
        "precision_at_k": precision_at_k(y_true, y_pred, k),
        "mae": mae(y_true, y_pred),
    }
