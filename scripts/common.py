"""Helpers shared by the benchmark scripts: the shared data (NB201 table, NB301 surrogate) and ``key=value``
hyperparameters."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

import nao

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NB201_CSV = SHARED_DATA / "nb201" / "cifar10.csv"
NB301_DIR = SHARED_DATA / "nb301"  # YAHPO Gym's NB301 surrogate (model_v2.onnx, encoding_v2.json)


def load_nb201(path: Path = NB201_CSV) -> tuple[list, dict[str, np.ndarray]]:
    """All 15,625 NB201 cells as (archs, {column: values}) from the shared CIFAR-10 table."""
    if not path.exists():
        raise SystemExit(f"{path} not found: the benchmarks read ../shared/data beside the repository")
    space = nao.get_space("nb201")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    archs = [space.parse(r["arch"]) for r in rows]
    columns = {c: np.array([float(r[c]) for r in rows]) for c in ("valid_acc", "test_acc")}
    return archs, columns


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=0.01", "augment=false"]`` -> ``{"lr": 0.01, "augment": False}`` (values parsed as JSON)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
