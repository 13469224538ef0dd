"""A function evaluator, in a plugin file: ``evaluator.function: docs/examples/chain_evaluate.py:evaluate``.

nao calls ``evaluate`` once per arch with the arch, its text form, the run's seed and a fresh working directory,
and records the dict it returns. Here a formula stands in for training (it runs in microseconds, so the example
searches in seconds); put your own training there and return its validation accuracy.
"""

import itertools
from pathlib import Path

import numpy as np

GAIN = np.array([[1.0, 1.6, 0.4, 0.2], [1.4, 2.0, 0.8, 0.3], [0.9, 1.5, 0.2, 0.9],  # per layer, per op
                 [0.5, 0.7, 1.8, 0.4], [1.2, 0.6, 0.3, 1.1], [0.8, 1.9, 0.5, 0.6]])


def evaluate(arch: tuple[int, ...], *, text: str, seed: int, workdir: Path) -> dict[str, float]:
    score = sum(GAIN[layer, op] for layer, op in enumerate(arch))
    score += 1.5 * sum(a == b == 1 for a, b in itertools.pairwise(arch))  # two 5x5 convs in a row
    (workdir / "arch.txt").write_text(text + "\n")  # whatever your training saves goes here
    return {"valid_acc": round(60.0 + 3.0 * score, 3), "params": float(sum(op < 2 for op in arch))}
