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


def write_stripes(folder, *, n_train: int = 240, n_test: int = 60, size: int = 8, seed: int = 0) -> None:
    """A tiny MNIST-format dataset (raw idx files) any cell network learns in a few epochs: 4 classes,
    class k = a bright horizontal stripe at row 2k of a noisy ``size x size`` image."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def idx(array: np.ndarray) -> bytes:
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        return header + array.astype(np.uint8).tobytes()

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 4, n)
        images = rng.integers(0, 60, (n, size, size))
        images[np.arange(n), 2 * labels, :] = 250
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx(images))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(labels))
