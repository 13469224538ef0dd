"""``evaluator.type: nb301``: the DARTS cell space scored by a NAS-Bench-301 surrogate model.

The model is YAHPO Gym's ``nb301`` v2 surrogate (Pfisterer et al. 2022), an ONNX network fitted on the
NAS-Bench-301 training data (Siems et al. 2020: ~60k DARTS cells trained on CIFAR-10). It is *not* the official
NB301 ensemble, so its numbers are not comparable with published NB301 tables; it is a fast, deterministic
stand-in for "train this DARTS cell for 98 epochs". It runs on onnxruntime, the optional extra
``nao-search[nb301]``.

Input encoding (the folder's ``encoding_v2.json`` gives the category codes, ``0`` = inactive edge): per cell, 14
edge columns, edge ``offset[node] + source`` carrying the op of the branch that reads ``source`` (node 2 has
edges 0-1, node 3 edges 2-4, node 4 edges 5-8, node 5 edges 9-13), the normal cell's 14 then the reduction
cell's; then, for nodes 3-5 of each cell, the pair of inputs as ``"a_b"``; then the epoch as a float.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nao.config import ConfigError, ConfigValueError, at_least, one_of
from nao.errors import UserError
from nao.registry import register_evaluator
from nao.search.evaluators import EvaluatorConfig, StaticEvaluator
from nao.spaces.base import Arch, SearchSpace
from nao.spaces.cell import CellSpace
from nao.spaces.darts import DARTS_OPS

MODEL_FILE, ENCODING_FILE = "model_v2.onnx", "encoding_v2.json"
PREFIX = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
EDGE_OFFSETS = (0, 2, 5, 9)  # first edge of DARTS nodes 2..5; an edge's index is offset + source
N_NODES = 4
EDGES_PER_CELL = 14
EPOCHS = 98  # the surrogate's training curves end at epoch 98
# The model's outputs (columns 0..3) as nao metrics: validation accuracy in percent (like the NB201 table), the
# validation cross-entropy, and the training run's seconds. Each with whether lower is better.
OUTPUTS = {"valid_acc": (0, False), "valid_loss": (1, True), "runtime": (2, True)}


@dataclass
class NB301Config(EvaluatorConfig):
    """The ``evaluator:`` section of ``type: nb301``."""

    path: str | None = None  # the surrogate's folder (model_v2.onnx, encoding_v2.json): ../shared/data/nb301
    epoch: int = EPOCHS  # the training epoch whose validation metric is predicted, 1..98
    threads: int = 1  # onnxruntime threads; one is fastest for a search's single-arch queries

    def __post_init__(self) -> None:
        if not 1 <= self.epoch <= EPOCHS:
            raise ConfigValueError("epoch", f"must be in 1..{EPOCHS} (the surrogate's curves end there), "
                                   f"got {self.epoch!r}")
        at_least(self, threads=1)
        self.metric = self.metric or "valid_acc"
        one_of(self, "metric", OUTPUTS)
        if self.report_metric is not None:
            one_of(self, "report_metric", OUTPUTS)
        self.minimize = OUTPUTS[self.metric][1]  # the metric's own direction (saved: readers of the run need it)


def check_darts_space(space: SearchSpace, key: str) -> None:
    """The surrogate reads DARTS cells only: 4 nodes of DARTS' 7 ops, distinct inputs, all nodes concatenated."""
    if not (isinstance(space, CellSpace) and set(space.op_names) == set(DARTS_OPS) and space.n_nodes == N_NODES
            and space.distinct_inputs and space.output == "all_nodes"):
        raise ConfigError(f"{key}: the NB301 surrogate scores DARTS cells (space: darts), got space {space.name!r}")


class NB301Encoder:
    """DARTS archs as the surrogate's ``x_cat`` rows (int32, 34 columns), codes read from ``encoding_v2.json``."""

    def __init__(self, space: CellSpace, encoding: dict[str, dict[str, int]]) -> None:
        self.space = space
        columns = [f"edge_{cell}_{e}" for cell in ("normal", "reduce") for e in range(EDGES_PER_CELL)]
        columns += [f"inputs_node_{cell}_{node}" for cell in ("normal", "reduce") for node in (3, 4, 5)]
        try:
            codes = [encoding[PREFIX + column] for column in columns]
            self._op_codes = [[c[name] for name in space.op_names] for c in codes[:2 * EDGES_PER_CELL]]
            self._pair_codes = [{tuple(int(v) for v in k.split("_")): v for k, v in c.items() if k != "#na#"}
                                for c in codes[2 * EDGES_PER_CELL:]]
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise UserError(f"{ENCODING_FILE}: not the NB301 v2 encoding (missing {err})") from None
        self.n_columns = len(columns)

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """``(len(archs), 34)`` int32; inactive edges stay 0 (``#na#``)."""
        rows = np.zeros((len(archs), self.n_columns), dtype=np.int32)
        for r, arch in enumerate(archs):
            for c, cell in enumerate(self.space.cells(arch)):
                for j, node in enumerate(cell):
                    for source, op in node:
                        edge = c * EDGES_PER_CELL + EDGE_OFFSETS[j] + source
                        rows[r, edge] = self._op_codes[edge][op]
                    if j > 0:
                        pair = tuple(sorted(source for source, _ in node))
                        rows[r, 2 * EDGES_PER_CELL + 3 * c + j - 1] = self._pair_codes[3 * c + j - 1][pair]
        return rows


class NB301Evaluator(StaticEvaluator):
    """DARTS cells scored by the NB301 surrogate (validation accuracy in percent at ``epoch``)."""

    def __init__(self, space: SearchSpace, config: NB301Config, **_) -> None:
        check_darts_space(space, "evaluator.type=nb301")
        self.metric, self.report_metric, self.minimize = config.metric, config.report_metric, config.minimize
        self.epoch = config.epoch
        self.session, self.encoder = load_surrogate(config.path, space, threads=config.threads)

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        """The model's ``(len(archs), 4)`` outputs, in one batched query (accuracy as a fraction)."""
        epochs = np.full((len(archs), 1), self.epoch, dtype=np.float32)
        return self.session.run(None, {"x_cat": self.encoder.encode(archs), "x_cont": epochs})[0]

    def metrics(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        """Every arch's searched (and reported) metric, in one query."""
        out = self.score(archs) if archs else np.zeros((0, 4))
        names = [self.metric] + ([self.report_metric] if self.report_metric else [])
        scale = {"valid_acc": 100.0}
        return [{name: float(row[OUTPUTS[name][0]]) * scale.get(name, 1.0) for name in names} for row in out]

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return self.metrics([arch])[0]

    def candidates(self) -> None:
        return None


def load_surrogate(path: str | None, space: CellSpace, *, threads: int = 1):
    """The onnxruntime session and the input encoder of the surrogate in folder ``path``."""
    if not path:
        raise UserError("evaluator.path is required for evaluator.type=nb301 (the surrogate's folder, "
                        "e.g. ../shared/data/nb301)")
    folder = Path(path).expanduser()
    for name in (MODEL_FILE, ENCODING_FILE):
        if not (folder / name).is_file():
            raise UserError(f"evaluator.path: {folder} has no {name} (the folder of YAHPO Gym's nb301 v2 surrogate)")
    try:
        import onnxruntime
    except ImportError:
        raise UserError("evaluator.type=nb301 needs onnxruntime: pip install 'nao-search[nb301]'") from None
    try:
        encoding = json.loads((folder / ENCODING_FILE).read_text())
    except ValueError as err:
        raise UserError(f"{folder / ENCODING_FILE}: not valid JSON ({err})") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.log_severity_level = 3  # errors only: the model's graph-optimizer notes are not the user's business
    try:
        session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for unreadable models
        raise UserError(f"{folder / MODEL_FILE}: onnxruntime cannot load it ({err})") from None
    return session, NB301Encoder(space, encoding)


register_evaluator("nb301", NB301Evaluator, config=NB301Config)
