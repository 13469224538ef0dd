"""The ``darts`` space: DARTS / NAS-Bench-301 cells as a member of the ``CellSpace`` family."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nao
from nao.errors import ArchError
from nao.spaces import CellSpace, DartsSpace, get_space

DARTS_V1 = (  # Liu et al. 2019, first order (its first node's two edges in the other order)
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
    "normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], "
    "reduce_concat=[2, 3, 4, 5])"
)
OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
       "dil_conv_5x5")
SPACE = get_space("darts")


def sample_archs(n: int, seed: int = 0) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def nodes(arch: tuple[int, ...]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The 8 nodes (normal cell's 4, then the reduction cell's) as ``((in_a, op_a), (in_b, op_b))``."""
    normal, reduction = SPACE.cells(arch)
    return list(normal + reduction)


def assert_valid(arch: tuple[int, ...]) -> None:
    """Every node of both cells reads two different, earlier states."""
    assert len(arch) == 32
    for j, ((a, op_a), (b, op_b)) in enumerate(nodes(arch)):
        node = j % 4
        assert a != b
        assert 0 <= a <= node + 1 and 0 <= b <= node + 1
        assert 0 <= op_a < 7 and 0 <= op_b < 7


# ----------------------------------------------------------------------------- the space is a family member


def test_darts_is_the_cell_family_with_four_nodes_distinct_inputs_and_all_nodes_as_output():
    assert isinstance(SPACE, DartsSpace) and isinstance(SPACE, CellSpace)
    assert SPACE.name == "darts"
    assert (SPACE.n_nodes, SPACE.op_names, SPACE.distinct_inputs, SPACE.output) == (4, OPS, True, "all_nodes")
    # The family's layout: 2 cells x 4 nodes x (in op in op); inputs are tokens 1..5, ops tokens 6..12.
    assert (SPACE.seq_len, SPACE.vocab_size, SPACE.group_size) == (32, 13, 4)
    assert SPACE.position_masks() is None  # the grammar reads the prefix: decoding uses token_mask
    # The NAO members keep their position-only grammar (the controller's batched fast path).
    for name in ("nao-cnn", "nao-cnn-large"):
        space = get_space(name)
        assert not space.distinct_inputs and space.output == "loose_ends"
        assert space.position_masks() is not None


# ----------------------------------------------------------------------------- text form


def test_darts_v2_parses_formats_back_and_round_trips():
    arch = SPACE.parse(DARTS_V1)
    assert arch[:8] == (0, 3, 1, 3, 0, 2, 1, 3)  # normal node 2: sep_conv_3x3(0) + sep_conv_3x3(1), ...
    assert nodes(arch)[7] == ((2, 2), (0, 1))  # reduce node 5: skip_connect(2) + avg_pool_3x3(0)
    assert SPACE.format(arch) == DARTS_V1
    assert SPACE.from_tokens(SPACE.to_tokens(arch)) == arch
    assert SPACE.to_tokens(arch)[:4] == (1, 9, 2, 9)


def test_sampled_archs_round_trip_through_text_and_tokens():
    for arch in sample_archs(300):
        assert SPACE.parse(SPACE.format(arch)) == arch
        assert SPACE.from_tokens(SPACE.to_tokens(arch)) == arch


@pytest.mark.parametrize("variant", [
    DARTS_V1.replace("'", '"'),
    DARTS_V1.replace("[2, 3, 4, 5]", "range(2, 6)"),
    DARTS_V1.replace(", ", ",").replace("=", " = "),
    "\n  " + DARTS_V1.replace("), (", "),\n        (").replace("], ", "],\n    ") + "\n",
    DARTS_V1.replace("[2, 3, 4, 5]", "(2, 3, 4, 5)"),
    DARTS_V1.replace("'", "\u2018", 1).replace("3x3'", "3x3\u2019", 1),  # typographic quotes from a web page
], ids=["double-quotes", "range", "spacing", "newlines", "tuple-concat", "smart-quotes"])
def test_pasted_variations_parse_to_the_same_arch(variant):
    assert SPACE.parse(variant) == SPACE.parse(DARTS_V1)


@pytest.mark.parametrize("text, message", [
    (DARTS_V1.replace("('sep_conv_3x3', 1)", "('conv_3x3', 1)", 1),
     "normal cell edge 1 (node 2): unknown op 'conv_3x3'"),
    (DARTS_V1.replace("('skip_connect', 2), ('max_pool_3x3', 0)", "('skip_connect', 2), ('max_pool_3x3', 2)"),
     "reduce cell node 3 takes input 2 twice (edges 2 and 3), its two inputs must differ"),
    (DARTS_V1.replace("('skip_connect', 2)]", "('skip_connect', 5)]", 1),
     "normal cell edge 7 (node 5): input 5 is not an earlier state (node 5 may take 0..4)"),
    (DARTS_V1.replace("('skip_connect', 0), ('sep_conv_3x3', 1)", "('skip_connect', 0), ('sep_conv_3x3', -1)", 1),
     "normal cell edge 3 (node 3): input -1 is not an earlier state"),
    (DARTS_V1.replace(", ('avg_pool_3x3', 0)]", "]"), "reduce cell has 7 edges, expected 8 (2 per node, 4 nodes)"),
    (DARTS_V1.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 5]"),
     "normal_concat must be [2, 3, 4, 5] (the output concatenates all 4 nodes), got [2, 3, 5]"),
    (DARTS_V1.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=range(2, 5)"),
     "reduce_concat must be [2, 3, 4, 5]"),
    (DARTS_V1.replace("reduce_concat", "reduced_concat"), "needs the keywords normal, normal_concat, reduce"),
    (DARTS_V1.replace("('max_pool_3x3', 0), ('max_pool_3x3', 1)", "('max_pool_3x3', 0), 'max_pool_3x3'"),
     "reduce cell edge 1 (node 2) must be ('op', input)"),
    (DARTS_V1[:-1], "expected Genotype(normal=[('op', input), ...]"),
    ("geno = " + DARTS_V1, "expected Genotype("),
    ("0 1 0 4 2 2 1 3", "expected Genotype("),
])
def test_bad_text_is_one_arch_error_naming_the_problem(text, message):
    with pytest.raises(ArchError, match=re.escape(message)) as caught:
        SPACE.parse(text)
    assert str(caught.value).startswith("darts: ")
    assert "\n" not in str(caught.value)


def test_invalid_arch_values_are_refused_by_every_entry_point():
    arch = list(SPACE.parse(DARTS_V1))
    arch[4:7:2] = [1, 1]  # normal node 3 reads input 1 twice
    for method in (SPACE.format, SPACE.to_tokens, SPACE.canonical, SPACE.equivalents):
        with pytest.raises(ArchError, match="normal cell node 3 takes input 1 twice"):
            method(tuple(arch))
    tokens = list(SPACE.to_tokens(SPACE.parse(DARTS_V1)))
    tokens[6] = tokens[4]
    with pytest.raises(ArchError, match=re.escape("tokens at positions 4 and 6 (normal cell node 3)")):
        SPACE.from_tokens(tokens)
    assert not SPACE.is_valid_tokens(tokens)


# ----------------------------------------------------------------------------- sampling and decoding


def test_sampled_archs_are_valid_and_cover_every_op_and_every_allowed_input():
    archs = sample_archs(2000)
    assert len(set(archs)) == len(archs)
    for arch in archs:
        assert_valid(arch)
    values = np.array(archs)  # (2000, 32)
    for t in range(32):
        node = t % 16 // 4
        expected = set(range(7)) if t % 2 else set(range(node + 2))
        assert set(values[:, t].tolist()) == expected, SPACE.slot_name(t)


def test_sampling_is_uniform_over_the_input_pairs_of_a_node():
    """Node 5 has 5 * 4 ordered (in_a, in_b) pairs; each should come up about 1/20 of the time."""
    values = np.array(sample_archs(2000, seed=1))
    pairs = values[:, 12] * 5 + values[:, 14]
    counts = np.bincount(pairs, minlength=25).reshape(5, 5)
    assert np.diag(counts).sum() == 0
    off_diagonal = counts[~np.eye(5, dtype=bool)]
    assert off_diagonal.min() > 50 and off_diagonal.max() < 150  # expected 100 each


def test_decoding_by_token_mask_only_produces_valid_archs():
    rng = np.random.default_rng(1)
    for _ in range(500):
        prefix: list[int] = []
        for _ in range(SPACE.seq_len):
            mask = SPACE.token_mask(prefix)
            assert mask.shape == (SPACE.vocab_size,) and not mask[0]
            prefix.append(int(rng.choice(np.flatnonzero(mask))))
        arch = SPACE.from_tokens(prefix)
        assert_valid(arch)
        assert SPACE.to_tokens(arch) == tuple(prefix)
    with pytest.raises(ArchError):
        SPACE.token_mask(prefix)


def test_second_input_mask_excludes_the_first_input():
    tokens = SPACE.to_tokens(SPACE.parse(DARTS_V1))
    assert np.flatnonzero(SPACE.token_mask(tokens[:2])).tolist() == [2]  # node 2: the other of inputs 0, 1
    assert np.flatnonzero(SPACE.token_mask(tokens[:12])).tolist() == [1, 2, 3, 4, 5]  # node 5, first input
    first = tokens[12]
    assert np.flatnonzero(SPACE.token_mask(tokens[:14])).tolist() == [t for t in (1, 2, 3, 4, 5) if t != first]
    assert np.flatnonzero(SPACE.token_mask(tokens[:13])).tolist() == list(range(6, 13))  # an op


# ----------------------------------------------------------------------------- canonical, equivalents, mutate


def swap_edges(arch: tuple[int, ...], node: int) -> tuple[int, ...]:
    k = 4 * node
    return (*arch[:k], *arch[k + 2 : k + 4], *arch[k : k + 2], *arch[k + 4 :])


def test_canonical_ignores_the_order_of_a_nodes_two_edges():
    for arch in sample_archs(100):
        canon = SPACE.canonical(arch)
        assert_valid(canon)
        assert SPACE.canonical(canon) == canon
        for node in range(8):
            assert SPACE.canonical(swap_edges(arch, node)) == canon


def test_equivalents_are_the_2_to_the_8_edge_orders_sharing_one_canonical_form():
    for arch in sample_archs(20):
        equivalents = SPACE.equivalents(arch)
        assert len(equivalents) == len(set(equivalents)) == 2**8
        assert arch in equivalents
        assert {SPACE.canonical(e) for e in equivalents} == {SPACE.canonical(arch)}
        assert swap_edges(swap_edges(arch, 0), 7) in equivalents


def test_mutate_changes_exactly_one_op_or_input_and_stays_valid():
    rng = np.random.default_rng(2)
    changed_fields = set()
    for arch in sample_archs(500):
        child = SPACE.mutate(arch, rng)
        assert_valid(child)
        assert SPACE.canonical(child) != SPACE.canonical(arch)
        diff = np.flatnonzero(np.array(child) != np.array(arch))
        assert len(diff) == 1
        changed_fields.add(("input", "op")[diff[0] % 2])
        assert diff[0] % 16 not in (0, 2)  # node 2 always reads inputs 0 and 1: nothing to change there
    assert changed_fields == {"input", "op"}


# ----------------------------------------------------------------------------- report graphs, controller, CLI


def test_graphs_draw_every_node_into_the_output_concat():
    normal, reduction = SPACE.graphs(SPACE.parse(DARTS_V1))
    assert normal.nodes == ("c[k-2]", "c[k-1]", "0", "1", "2", "3", "concat")
    assert [e for e in normal.edges if e[1] == 6] == [(k, 6, "") for k in (2, 3, 4, 5)]
    assert (2, 5, "skip_connect") in normal.edges and (0, 5, "avg_pool_3x3") in reduction.edges


def test_a_tiny_controller_fits_and_proposes_valid_new_archs():
    archs = sample_archs(20, seed=5)
    scores = np.random.default_rng(0).random(20)
    ctrl = nao.Controller("darts", seed=0, epochs=5, embedding_dim=8, hidden_dim=16, mlp_layers=1, mlp_dim=16,
                          max_equivalents=4, n_steps=4)
    ctrl.fit(archs, scores)
    proposals = ctrl.propose(archs, scores, n=5, top_k=5)
    assert proposals
    known = {SPACE.canonical(a) for a in archs}
    for p in proposals:
        assert_valid(p.arch)
        assert SPACE.canonical(p.arch) not in known
        assert SPACE.parse(SPACE.format(p.arch)) == p.arch


def test_cli_sample_prints_genotypes(capsys):
    from nao.cli import main

    main(["sample", "darts", "-n", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("Genotype(normal=[(")
        assert_valid(SPACE.parse(line))
