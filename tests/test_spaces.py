"""Search spaces: token grammar, text forms, canonical forms and the built-in spaces' exact layouts."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from nao.errors import ArchError
from nao.spaces import SOS, CellSpace, NB201Space, RecurrentSpace, SearchSpace, get_space, list_spaces

N_ARCHS = 2000

# Every built-in space plus small custom members of each family: nothing may assume default sizes.
SPACES: dict[str, SearchSpace] = {name: get_space(name) for name in list_spaces()}
SPACES["tiny-cnn"] = CellSpace(name="tiny-cnn", ops=("conv", "pool", "identity"), n_nodes=3)
SPACES["tiny-nb201"] = NB201Space(ops=("none", "skip", "conv"), n_nodes=3, name="tiny-nb201")
SPACES["tiny-rnn"] = RecurrentSpace(name="tiny-rnn", activations=("tanh", "relu"), n_nodes=4)

NAONET_WS = "0 1 0 4 2 2 1 3 1 0 2 0 2 3 1 3 1 2 0 4 1 1 0 3 2 3 2 3 1 0 0 1 0 4 2 4 2 3 2 3"
NAONET_WS_TOKENS = (
    "1 8 1 11 3 9 2 10 2 7 3 7 3 10 2 10 2 9 1 11 "  # normal cell
    "2 8 1 10 3 10 3 10 2 7 1 8 1 11 3 11 3 10 3 10"  # reduction cell
)
NB201_TEXT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(params=sorted(SPACES), ids=str)
def space(request) -> SearchSpace:
    return SPACES[request.param]


def sample_archs(space: SearchSpace, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_builtin_spaces_are_registered():
    assert {"nb201", "nao-cnn", "nao-cnn-large", "nao-rnn"} <= set(list_spaces())
    for name in list_spaces():
        assert get_space(name).name == name


# ----------------------------------------------------------------------------- grammar, every space


def test_archs_are_hashable_and_sampling_is_seeded(space):
    archs = sample_archs(space, 50, seed=3)
    assert archs == sample_archs(space, 50, seed=3)
    assert len(set(archs)) > 1
    assert space.seq_len % space.group_size == 0


def test_arch_token_arch_round_trip(space):
    for arch in sample_archs(space, N_ARCHS):
        tokens = space.to_tokens(arch)
        assert len(tokens) == space.seq_len
        assert all(1 <= t < space.vocab_size for t in tokens)
        assert space.from_tokens(tokens) == arch
        assert space.is_valid_tokens(tokens)


def position_masks(space) -> np.ndarray:
    """The space's position-only masks; spaces whose grammar depends on the prefix (``darts``: a node's second
    input differs from its first) have none, and their masks are tested through ``token_mask`` alone."""
    masks = space.position_masks()
    if masks is None:
        pytest.skip(f"{space.name}: the grammar depends on the prefix (no position-only masks)")
    return masks


def test_sampled_archs_obey_the_mask_and_reach_every_allowed_token(space):
    """Every valid arch can be decoded under the mask, and the mask allows nothing that is never valid."""
    masks = position_masks(space)
    tokens = np.array([space.to_tokens(a) for a in sample_archs(space, N_ARCHS)])  # (N, seq_len)
    positions = np.arange(space.seq_len)
    assert masks[positions, tokens].all()
    for t in positions:
        seen = np.zeros(space.vocab_size, dtype=bool)
        seen[tokens[:, t]] = True
        np.testing.assert_array_equal(seen, masks[t])


def test_masks_have_the_right_shape_and_never_allow_sos(space):
    masks = position_masks(space)
    assert masks.shape == (space.seq_len, space.vocab_size)
    assert masks.dtype == bool
    assert not masks[:, SOS].any()
    assert masks.any(axis=1).all()


def test_token_mask_is_the_position_mask_of_the_prefix_length(space):
    masks = position_masks(space)
    tokens = space.to_tokens(sample_archs(space, 1)[0])
    for t in range(space.seq_len):
        np.testing.assert_array_equal(space.token_mask(tokens[:t]), masks[t])
    with pytest.raises(ArchError):
        space.token_mask(tokens)


def test_any_mask_respecting_sequence_decodes_to_a_valid_arch(space):
    """So greedy or sampled decoding under the mask can only produce valid archs."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        prefix: list[int] = []
        for _ in range(space.seq_len):
            allowed = np.flatnonzero(space.token_mask(prefix))
            prefix.append(int(rng.choice(allowed)))
        arch = space.from_tokens(prefix)
        assert space.to_tokens(arch) == tuple(prefix)


def test_from_tokens_rejects_sequences_that_break_the_grammar(space):
    masks = position_masks(space)
    tokens = list(space.to_tokens(sample_archs(space, 1)[0]))
    for bad_length in (tokens[:-1], [*tokens, tokens[-1]], []):
        with pytest.raises(ArchError, match="tokens"):
            space.from_tokens(bad_length)
    for t in range(space.seq_len):
        for bad in [*np.flatnonzero(~masks[t]), space.vocab_size, -1]:
            broken = tokens.copy()
            broken[t] = int(bad)
            with pytest.raises(ArchError, match=re.escape(f"at position {t} (")):
                space.from_tokens(broken)
            assert not space.is_valid_tokens(broken)


def test_text_round_trip(space):
    for arch in sample_archs(space, N_ARCHS):
        text = space.format(arch)
        assert space.parse(text) == arch
        assert space.format(space.parse(text)) == text


def test_canonical_is_idempotent_and_shared_by_all_equivalents(space):
    for arch in sample_archs(space, 100):
        canon = space.canonical(arch)
        assert space.canonical(canon) == canon
        equivalents = space.equivalents(arch)
        assert arch in equivalents
        assert canon in equivalents
        assert len(set(equivalents)) == len(equivalents)
        assert {space.canonical(e) for e in equivalents} == {canon}
        assert sorted(space.equivalents(canon)) == sorted(equivalents)


def test_mutate_changes_exactly_one_token_to_another_valid_one(space):
    rng = np.random.default_rng(2)
    for arch in sample_archs(space, 500):
        child = space.mutate(arch, rng)
        assert child != arch
        changed = np.array(space.to_tokens(child)) != np.array(space.to_tokens(arch))
        assert changed.sum() == 1


def test_invalid_archs_are_rejected(space):
    arch = sample_archs(space, 1)[0]
    with pytest.raises(ArchError):
        space.to_tokens(arch[:-1])
    with pytest.raises(ArchError):
        space.format((*arch[:-1], 99))
    with pytest.raises(ArchError):
        space.canonical((*arch[:-1], -1))


# ----------------------------------------------------------------------------- nb201


def test_nb201_layout():
    space = get_space("nb201")
    assert (space.seq_len, space.vocab_size, space.group_size) == (6, 6, 1)
    assert space.op_names == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert space.edges == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def test_nb201_text_form_round_trips():
    space = get_space("nb201")
    arch = space.parse(NB201_TEXT)
    assert arch == (3, 3, 3, 1, 3, 2)
    assert space.to_tokens(arch) == (4, 4, 4, 2, 4, 3)
    assert space.format(arch) == NB201_TEXT


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NB201_TEXT.replace("skip_connect", "sep_conv_3x3"), "unknown op 'sep_conv_3x3'"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "expected 3 '+'-separated nodes, got 2"),
        (NB201_TEXT + "+|none~0|none~1|none~2|none~3|", "expected 3 '+'-separated nodes, got 4"),
        (NB201_TEXT.replace("nor_conv_1x1~2", "nor_conv_1x1~3"), "node 3 entry 2 must take input 2, got '3'"),
        (NB201_TEXT.replace("|nor_conv_3x3~1|+", "|+"), "node 2 must have 2 inputs, got 1"),
        (NB201_TEXT.replace("skip_connect~0", "skip_connect"), "must be 'op~input'"),
        (NB201_TEXT.lstrip("|"), "node 1 must look like"),
        ("", "expected 3"),
    ],
)
def test_nb201_parse_explains_bad_text(text, message):
    with pytest.raises(ArchError, match=re.escape(message)):
        get_space("nb201").parse(text)


def nb201_paths(space: NB201Space, arch) -> set[tuple]:
    """Every input-to-output path with no ``none`` op, as a tuple of (target, source, op) edges."""
    none = space.op_names.index("none")
    ops = dict(zip(space.edges, arch, strict=True))

    def paths_from(node: int) -> set[tuple]:
        if node == space.n_nodes - 1:
            return {()}
        return {
            ((j, node, ops[j, node]), *rest)
            for j in range(node + 1, space.n_nodes)
            if ops[j, node] != none
            for rest in paths_from(j)
        }

    return paths_from(0)


def test_nb201_canonical_keeps_exactly_the_edges_on_input_to_output_paths():
    """Two cells are equivalent exactly when they have the same input-to-output paths."""
    space = get_space("nb201")
    none = space.op_names.index("none")
    for arch in sample_archs(space, 500):
        canon = space.canonical(arch)
        paths = nb201_paths(space, arch)
        assert nb201_paths(space, canon) == paths
        on_paths = {(j, i) for path in paths for j, i, _ in path}
        assert {edge for edge, op in zip(space.edges, canon, strict=True) if op != none} == on_paths
        for other in space.equivalents(arch)[:20]:
            assert nb201_paths(space, other) == paths


def test_nb201_ops_leaving_zero_nodes_do_not_matter():
    """Nodes 1 and 2 only receive ``none``, so they are zero and whatever leaves them is irrelevant."""
    space = get_space("nb201")
    plain = space.parse("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    busy = space.parse("|none~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|")
    assert space.canonical(busy) == space.canonical(plain) == plain
    assert busy in space.equivalents(plain)


def test_nb201_equivalents_are_all_cells_with_the_same_paths():
    """Checked by brute force over the whole space."""
    space = get_space("nb201")
    plain = space.parse("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    paths = nb201_paths(space, plain)
    everything = itertools.product(range(len(space.op_names)), repeat=space.seq_len)
    expected = [arch for arch in everything if nb201_paths(space, arch) == paths]
    assert sorted(space.equivalents(plain)) == expected
    assert len(expected) > 5**3  # more than the three edges leaving nodes 1 and 2 are free


def test_nb201_ops_into_dead_end_nodes_do_not_matter():
    """Node 1 feeds nothing, so the op computing it is irrelevant; edges out of node 0 still matter."""
    space = get_space("nb201")
    dead_end = space.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
    expected = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    assert space.format(space.canonical(dead_end)) == expected
    cut = space.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")
    assert space.canonical(cut) == (0,) * 6
    assert space.canonical(cut) != space.canonical(dead_end)


def test_nb201_without_none_has_no_equivalences():
    space = NB201Space(ops=("skip_connect", "nor_conv_3x3"), name="no-none")
    for arch in sample_archs(space, 50):
        assert space.canonical(arch) == arch
        assert space.equivalents(arch) == [arch]


# ----------------------------------------------------------------------------- NAO CNN cells


def test_nao_cnn_layouts():
    small, large = get_space("nao-cnn"), get_space("nao-cnn-large")
    assert (small.seq_len, small.vocab_size, small.group_size) == (40, 12, 4)
    assert (large.seq_len, large.vocab_size, large.group_size) == (40, 18, 4)
    assert small.op_names[0] == "sep_conv_3x3" and small.op_names[4] == "identity"
    assert large.op_names[0] == "identity" and large.op_names[10] == "avg_pool_5x5"
    masks = small.position_masks()
    # Node j's input positions allow inputs 0..j+1 (tokens 1..j+2); op positions allow tokens 7..11.
    for cell in range(2):
        for j in range(5):
            start = cell * 20 + j * 4
            for t in (start, start + 2):
                assert np.flatnonzero(masks[t]).tolist() == list(range(1, j + 3))
            for t in (start + 1, start + 3):
                assert np.flatnonzero(masks[t]).tolist() == list(range(7, 12))


def test_naonet_ws_arch_tokens_match_the_reference_layout():
    space = get_space("nao-cnn")
    arch = space.parse(NAONET_WS)
    assert space.to_tokens(arch) == tuple(int(t) for t in NAONET_WS_TOKENS.split())
    assert space.from_tokens([int(t) for t in NAONET_WS_TOKENS.split()]) == arch
    assert space.format(arch) == NAONET_WS
    assert space.parse(NAONET_WS.replace(" ", ", ")) == arch
    assert space.parse("\n  " + NAONET_WS.replace(" ", "   ") + "  \n") == arch


def test_cells_split_an_arch_into_nodes_of_two_branches():
    space = get_space("nao-cnn")
    normal, reduction = space.cells(space.parse(NAONET_WS))
    assert len(normal) == len(reduction) == 5
    assert normal[0] == ((0, 1), (0, 4))
    assert normal[4] == ((1, 2), (0, 4))
    assert reduction[0] == ((1, 1), (0, 3))
    assert reduction[4] == ((2, 3), (2, 3))


def test_nao_cnn_canonical_sorts_the_branches_of_each_node():
    space = get_space("nao-cnn")
    arch = space.parse(NAONET_WS)
    canon = space.canonical(arch)
    for node in space.cells(canon)[0] + space.cells(canon)[1]:
        assert node[0] <= node[1]
    swapped = (*arch[2:4], *arch[0:2], *arch[4:])  # branches of normal node 0 exchanged
    assert space.canonical(swapped) == canon
    assert swapped in space.equivalents(arch)
    # Reduction nodes 1 and 4 have two identical branches; the other 8 nodes can be written two ways.
    assert len(space.equivalents(arch)) == 2**8


def test_nao_cnn_parse_explains_bad_text():
    space = get_space("nao-cnn")
    with pytest.raises(ArchError, match="expected 40 integers, got 39"):
        space.parse(NAONET_WS.rsplit(" ", 1)[0])
    with pytest.raises(ArchError, match="expected 40 integers"):
        space.parse(NAONET_WS.replace("4", "x", 1))
    out_of_range = NAONET_WS.split()
    out_of_range[4] = "3"  # node 1 may only use inputs 0..2
    with pytest.raises(ArchError, match=re.escape("normal cell node 1 input a is 3, must be in 0..2")):
        space.parse(" ".join(out_of_range))
    bad_op = NAONET_WS.split()
    bad_op[-1] = "5"
    with pytest.raises(ArchError, match=re.escape("reduction cell node 4 op b is 5, must be in 0..4")):
        space.parse(" ".join(bad_op))


def test_cell_space_sizes_follow_the_node_count():
    space = SPACES["tiny-cnn"]
    assert (space.seq_len, space.vocab_size) == (24, 8)  # tokens 1..4 inputs, 5..7 ops
    masks = space.position_masks()
    assert np.flatnonzero(masks[0]).tolist() == [1, 2]
    assert np.flatnonzero(masks[1]).tolist() == [5, 6, 7]
    assert np.flatnonzero(masks[12 + 8]).tolist() == [1, 2, 3, 4]  # reduction node 2, input a
    normal, reduction = space.cells(space.sample(np.random.default_rng(0)))
    assert len(normal) == len(reduction) == 3


# ----------------------------------------------------------------------------- NAO RNN cell


def test_nao_rnn_layout():
    space = get_space("nao-rnn")
    assert (space.seq_len, space.vocab_size, space.group_size) == (22, 16, 2)
    assert space.activations == ("tanh", "relu", "sigmoid", "identity")
    masks = space.position_masks()
    for t in range(0, 22, 2):
        assert np.flatnonzero(masks[t]).tolist() == list(range(1, t // 2 + 2))  # preds 0..node-1
        assert np.flatnonzero(masks[t + 1]).tolist() == [12, 13, 14, 15]


def test_nao_rnn_text_tokens_and_nodes():
    space = get_space("nao-rnn")
    text = "0 0 1 1 1 2 0 3 2 0 5 1 3 2 7 3 0 0 9 1 10 3"
    arch = space.parse(text)
    assert space.format(arch) == text
    assert space.to_tokens(arch)[:4] == (1, 12, 2, 13)
    assert space.nodes(arch)[-1] == (10, 3)
    assert space.canonical(arch) == arch
    assert space.equivalents(arch) == [arch]


def test_nao_rnn_parse_explains_bad_text():
    space = get_space("nao-rnn")
    with pytest.raises(ArchError, match="expected 22 integers, got 21"):
        space.parse("0 0 " * 10 + "0")
    with pytest.raises(ArchError, match=re.escape("node 2 predecessor is 2, must be in 0..1")):
        space.parse("0 0 2 0" + " 0 0" * 9)
    with pytest.raises(ArchError, match=re.escape("node 1 activation is 4, must be in 0..3")):
        space.parse("0 4" + " 0 0" * 10)
