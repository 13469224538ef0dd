"""scripts/bench_acquisition.py: how a batch is picked among predicted candidates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bench_acquisition import BATCH, diverse_batch


def test_a_diverse_batch_skips_candidates_within_spread_tokens_of_one_already_picked():
    predicted = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    tokens = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0]])
    assert diverse_batch(predicted, tokens, 0).tolist() == [0, 1, 2, 3, 4]  # fewer candidates than a batch
    assert diverse_batch(predicted, tokens, 2).tolist() == [0, 2]  # 1 is one token from 0; 3 and 4 one from 2


def test_a_batch_holds_the_best_predicted_up_to_its_size():
    predicted = np.arange(3 * BATCH, dtype=float)
    tokens = np.eye(3 * BATCH, dtype=int)  # every two candidates differ in two tokens
    assert diverse_batch(predicted, tokens, 2).tolist() == list(range(3 * BATCH - 1, 2 * BATCH - 1, -1))
