"""Shared fixtures: small synthetic results that every test can afford to fit on."""

from __future__ import annotations

import csv

import pytest

import nao
from nao.tasks.synthetic import SyntheticBenchmark

SMALL = {"embedding_dim": 16, "hidden_dim": 64, "mlp_layers": 1, "mlp_dim": 64, "batch_size": 32}


@pytest.fixture(scope="session")
def nb201_table() -> list[tuple]:
    """120 distinct nb201 archs with synthetic scores."""
    return SyntheticBenchmark(nao.get_space("nb201")).table(120, seed=1)


@pytest.fixture(scope="session")
def fitted(nb201_table) -> nao.Controller:
    """A small controller fitted on ``nb201_table`` (shared: tests must not refit it)."""
    ctrl = nao.Controller("nb201", seed=3, **SMALL)
    archs, scores = zip(*nb201_table, strict=True)
    ctrl.fit(archs, scores, epochs=300)
    return ctrl


def write_results_csv(path, space, rows, metric: str = "score") -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", metric])
        writer.writerows([space.format(arch), f"{score:.4f}"] for arch, score in rows)
