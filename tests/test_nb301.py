"""The NB301 surrogate evaluator: its input encoding, the reference values of its data README, its errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nao.config import ConfigError
from nao.errors import UserError
from nao.search.evaluators import make_evaluator, parse_evaluator_config
from nao.search.surrogates import ENCODING_FILE, NB301Encoder
from nao.spaces import get_space

SPACE = get_space("darts")
NB301 = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb301"
DARTS_V2 = (  # Liu et al. 2019; the data README gives its surrogate accuracy, 0.9291
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
needs_surrogate = pytest.mark.skipif(not (NB301 / "model_v2.onnx").is_file(), reason="../shared/data/nb301 is absent")


def fake_encoding() -> dict:
    """The v2 file's layout with op codes 1..7 in DARTS order and input-pair codes in lexicographic order."""
    prefix = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
    ops = {"#na#": 0} | {op: k + 1 for k, op in enumerate(SPACE.op_names)}
    encoding = {f"{prefix}edge_{cell}_{e}": ops for cell in ("normal", "reduce") for e in range(14)}
    for cell in ("normal", "reduce"):
        for node in (3, 4, 5):
            pairs = [f"{a}_{b}" for a in range(node) for b in range(a + 1, node)]
            encoding[f"{prefix}inputs_node_{cell}_{node}"] = {"#na#": 0} | {p: k + 1 for k, p in enumerate(pairs)}
    return encoding


def test_every_cell_has_eight_active_edges_and_one_input_pair_per_later_node():
    encoder = NB301Encoder(SPACE, fake_encoding())
    rows = encoder.encode([SPACE.sample(np.random.default_rng(seed)) for seed in range(200)])
    assert rows.shape == (200, 34) and rows.dtype == np.int32
    assert ((rows[:, :14] > 0).sum(1) == 8).all() and ((rows[:, 14:28] > 0).sum(1) == 8).all()
    assert (rows[:, 28:] > 0).all()


def test_darts_v2_is_encoded_edge_by_edge():
    row = NB301Encoder(SPACE, fake_encoding()).encode([SPACE.parse(DARTS_V2)])[0]
    code = {op: k + 1 for k, op in enumerate(SPACE.op_names)}
    normal = np.zeros(14, int)
    # node 2: edges 0, 1; node 3 (edges 2-4) reads 0, 1; node 4 (edges 5-8) reads 1, 0; node 5 (9-13) reads 0, 2
    for edge, op in [(0, "sep_conv_3x3"), (1, "sep_conv_3x3"), (2, "sep_conv_3x3"), (3, "sep_conv_3x3"),
                     (6, "sep_conv_3x3"), (5, "skip_connect"), (9, "skip_connect"), (11, "dil_conv_3x3")]:
        normal[edge] = code[op]
    assert row[:14].tolist() == normal.tolist()
    # pairs: node 3 "0_1" (code 1 of 0_1, 0_2, 1_2), node 4 "0_1" (1), node 5 "0_2" (2 of 0_1, 0_2, ...)
    assert row[28:31].tolist() == [1, 1, 2]


def test_branch_order_does_not_change_the_encoding():
    rng = np.random.default_rng(0)
    encoder = NB301Encoder(SPACE, fake_encoding())
    for _ in range(20):
        arch = SPACE.sample(rng)
        rows = encoder.encode(SPACE.equivalents(arch))
        assert (rows == rows[0]).all()


@needs_surrogate
def test_the_surrogate_gives_the_readme_reference_values():
    pytest.importorskip("onnxruntime")
    evaluator = make_evaluator(SPACE, parse_evaluator_config({"type": "nb301", "path": str(NB301)}))
    assert evaluator.metric == "valid_acc" and not evaluator.minimize
    assert evaluator.evaluate(SPACE.parse(DARTS_V2))["valid_acc"] == pytest.approx(92.91, abs=0.01)
    rng = np.random.default_rng(0)
    accuracy = evaluator.score([SPACE.sample(rng) for _ in range(2000)])[:, 0]
    assert accuracy.mean() == pytest.approx(0.9241, abs=0.001)  # README: mean 0.9241 over 2,000 random cells
    assert np.percentile(accuracy, 99) == pytest.approx(0.9326, abs=0.001)


@needs_surrogate
def test_the_loss_is_minimized_and_another_output_may_be_reported():
    pytest.importorskip("onnxruntime")
    config = parse_evaluator_config({"type": "nb301", "path": str(NB301), "metric": "valid_loss",
                                     "report_metric": "valid_acc", "epoch": 50})
    evaluator = make_evaluator(SPACE, config)
    assert config.minimize and evaluator.minimize
    metrics = evaluator.evaluate(SPACE.parse(DARTS_V2))
    assert set(metrics) == {"valid_loss", "valid_acc"} and 0 < metrics["valid_loss"] < 1


@pytest.mark.parametrize(("section", "message"), [
    ({"epoch": 99}, "evaluator.epoch: must be in 1..98"),
    ({"metric": "test_acc"}, "evaluator.metric: must be one of valid_acc, valid_loss, runtime, got 'test_acc'"),
    ({"report_metric": "acc"}, "evaluator.report_metric: must be one of"),
])
def test_bad_settings_name_their_key(section, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_evaluator_config({"type": "nb301", **section})


def test_the_surrogate_scores_darts_cells_only(tmp_path):
    config = parse_evaluator_config({"type": "nb301", "path": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"scores DARTS cells .* got space 'nb201'"):
        make_evaluator(get_space("nb201"), config)


def test_a_folder_without_the_model_is_named(tmp_path):
    (tmp_path / ENCODING_FILE).write_text(json.dumps(fake_encoding()))
    config = parse_evaluator_config({"type": "nb301", "path": str(tmp_path)})
    with pytest.raises(UserError, match=f"{tmp_path} has no model_v2.onnx"):
        make_evaluator(SPACE, config)


def test_without_onnxruntime_the_message_names_the_extra(tmp_path, monkeypatch):
    for name in ("model_v2.onnx", ENCODING_FILE):
        (tmp_path / name).write_text("{}")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if it were not installed
    config = parse_evaluator_config({"type": "nb301", "path": str(tmp_path)})
    with pytest.raises(UserError, match=r"pip install 'nao-search\[nb301\]'"):
        make_evaluator(SPACE, config)

