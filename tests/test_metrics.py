"""Ranking metrics: hand-computed cases, degenerate input, and a cross-check against scipy."""

import math
import time

import numpy as np
import pytest
from scipy import stats

from nao.predictors.metrics import (
    kendall_tau,
    mae,
    pairwise_accuracy,
    precision_at_k,
    ranking_report,
    reconstruction_accuracy,
    spearman,
)


def test_perfect_and_reversed_order():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert kendall_tau(y, y) == pytest.approx(1.0)
    assert kendall_tau(y, -y) == pytest.approx(-1.0)
    assert spearman(y, 10 * y + 3) == pytest.approx(1.0)
    assert spearman(y, -y) == pytest.approx(-1.0)
    assert pairwise_accuracy(y, y**3) == 1.0
    assert pairwise_accuracy(y, -y) == 0.0


def test_kendall_tau_hand_computed():
    # Pairs of (1,2,3,4) vs (1,3,2,4): 6 pairs, only (2,3) is discordant -> (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # With ties: x = (1,1,2), y = (1,2,3). Pairs: (0,1) tied in x, (0,2) and (1,2) concordant.
    # tau-b = (2 - 0) / sqrt((3 - 1) * (3 - 0)).
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_spearman_hand_computed():
    # Ranks (1,2,3) vs (1,3,2): d^2 = 0 + 1 + 1 -> 1 - 6 * 2 / (3 * 8) = 0.5.
    assert spearman([10, 20, 30], [5, 9, 7]) == pytest.approx(0.5)
    # Ties share the average rank: (1,1,2) -> ranks (1.5,1.5,3), Pearson with (1,2,3) = sqrt(3)/2.
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)


def test_pairwise_accuracy_ties():
    # True ties (0,1) are skipped: pairs (0,2), (1,2), (0,3), (1,3), (2,3) remain.
    # Predictions: (0,2) agree, (1,2) agree, (0,3) agree, (1,3) predicted tie -> 0.5, (2,3) wrong.
    y_true = [1, 1, 2, 3]
    y_pred = [0, 5, 9, 5]
    assert pairwise_accuracy(y_true, y_pred) == pytest.approx(3.5 / 5)
    assert pairwise_accuracy([1, 2, 3], [7, 7, 7]) == 0.5


def test_precision_at_k():
    y_true = [0.1, 0.9, 0.8, 0.2, 0.7]
    y_pred = [0.9, 0.8, 0.1, 0.2, 0.7]  # predicted top-2: items 0, 1; true top-2: items 1, 2
    assert precision_at_k(y_true, y_pred, 2) == 0.5
    assert precision_at_k(y_true, y_true, 3) == 1.0
    assert precision_at_k(y_true, y_pred, 100) == 1.0  # k capped at n
    # A tie at the k-th true value: both tied items count as top-2.
    assert precision_at_k([3, 2, 2, 1], [0, 5, 4, 9], 2) == 0.5
    with pytest.raises(ValueError):
        precision_at_k(y_true, y_pred, 0)


def test_mae_and_reconstruction():
    assert mae([1, 2, 3], [2, 2, 1]) == pytest.approx(1.0)
    true = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    pred = np.array([[1, 2, 3], [4, 5, 0], [7, 8, 9]])
    assert reconstruction_accuracy(true, pred) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        reconstruction_accuracy(true, pred[:, :2])


def test_degenerate_input_is_nan():
    for metric in (kendall_tau, spearman, pairwise_accuracy):
        assert math.isnan(metric([], []))
        assert math.isnan(metric([1.0], [2.0]))
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1, 2, 3], [4, 4, 4]))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))
    assert math.isnan(pairwise_accuracy([5, 5], [1, 2]))
    assert math.isnan(mae([], []))
    assert math.isnan(precision_at_k([], [], 3))
    assert math.isnan(reconstruction_accuracy(np.zeros((0, 4), int), np.zeros((0, 4), int)))
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])


@pytest.mark.parametrize("seed", range(6))
def test_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    y_true = rng.integers(0, max(2, n // 4), n).astype(float)  # many ties
    y_pred = np.round(y_true + rng.normal(0, 3, n), int(rng.integers(0, 2)))
    assert kendall_tau(y_true, y_pred) == pytest.approx(stats.kendalltau(y_true, y_pred).statistic)
    assert spearman(y_true, y_pred) == pytest.approx(stats.spearmanr(y_true, y_pred).statistic)


def test_pairwise_accuracy_matches_brute_force():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 10, 60).astype(float)
    y_pred = rng.integers(0, 10, 60).astype(float)
    credit, pairs = 0.0, 0
    for i in range(60):
        for j in range(i + 1, 60):
            if y_true[i] == y_true[j]:
                continue
            pairs += 1
            agree = np.sign(y_true[i] - y_true[j]) * np.sign(y_pred[i] - y_pred[j])
            credit += 0.5 if agree == 0 else float(agree > 0)
    assert pairwise_accuracy(y_true, y_pred) == pytest.approx(credit / pairs)


def test_large_input_is_fast():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=20_000)
    y_pred = y_true + rng.normal(size=20_000)
    start = time.perf_counter()
    tau = kendall_tau(y_true, y_pred)
    assert time.perf_counter() - start < 1.0
    assert tau == pytest.approx(stats.kendalltau(y_true, y_pred).statistic)


def test_ranking_report_plain_floats():
    report = ranking_report([1, 2, 3, 4], [1, 3, 2, 4], k=2)
    assert set(report) == {"kendall_tau", "spearman", "pairwise_acc", "precision_at_k", "mae"}
    assert all(type(v) is float for v in report.values())
    assert report["pairwise_acc"] == pytest.approx(5 / 6)
    assert report["precision_at_k"] == 0.5  # predicted top-2: items 3, 1; true top-2: items 3, 2
    assert report["mae"] == pytest.approx(0.5)
