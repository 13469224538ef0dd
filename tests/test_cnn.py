"""CNN task: ops, child networks, the weight-sharing supernet, training, `nao train`, CNN evaluators."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import SMALL, write_stripes

import nao
from nao.cli import main
from nao.errors import UserError
from nao.search import load_config, run_search
from nao.search.evaluators import make_evaluator
from nao.search.rundir import RunDir
from nao.spaces.cell import CellSpace
from nao.tasks.cnn.evaluators import SAMPLERS
from nao.tasks.cnn.network import ChildNetwork, NetworkConfig, Supernet
from nao.tasks.cnn.ops import OPS, FactorizedReduce, Norm, make_op
from nao.tasks.cnn.proxies import proxy_scores
from nao.tasks.cnn.train import TrainConfig, Trainer
from nao.tasks.images import load_images
from nao.torchutils import seeded_init

SPACE = nao.get_space("nao-cnn")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_NET = NetworkConfig(channels=4, cells_per_stage=1, auxiliary=False)
TINY_TRAIN = TrainConfig(epochs=2, batch_size=32, lr=0.05, cutout=2, crop_padding=1, drop_path=0.1,
                         eval_batch_size=64)


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stripes")
    write_stripes(folder)
    return folder


@pytest.fixture(scope="module")
def data(stripes):
    return load_images("mnist", data_dir=stripes, valid_size=60, download=False)


def history(path) -> list[tuple]:
    return [(r.arch, r.metrics, r.source, r.predicted) for r in RunDir(path).read_history()]


def archs(n: int, seed: int = 0) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("size", [8, 7])
def test_every_op_keeps_the_shape_or_halves_it_rounding_up(name, size):
    x = torch.randn(2, 4, size, size)
    assert make_op(name, 4, 1)(x).shape == (2, 4, size, size)
    assert make_op(name, 4, 2)(x).shape == (2, 4, (size + 1) // 2, (size + 1) // 2)


def test_a_factorized_reduction_of_few_channels_has_the_same_gradient_channels_last():
    """torch 2.13's oneDNN strided 1x1 conv weight gradient, channels-last with 2-6 input channels, wrote past
    its buffer: an abort with 1 thread, a wrong gradient with 2 (ops.StridedConv1x1)."""
    torch.manual_seed(0)
    reduce, x, r = FactorizedReduce(4, 8, Norm(running_stats=False)), torch.randn(16, 4, 8, 8), torch.randn(16, 8, 4, 4)
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last, torch.channels_last):
        reduce.to(memory_format=layout).zero_grad()
        (reduce(x.contiguous(memory_format=layout)) * r).sum().backward()
        grads.append([p.grad.clone() for p in reduce.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_a_fixed_cell_outputs_its_loose_ends_and_the_network_its_logits():
    arch = archs(1, seed=3)[0]
    net = ChildNetwork(SPACE, arch, in_channels=1, n_classes=4, config=NetworkConfig(channels=4, cells_per_stage=1))
    normal, reduction = SPACE.cells(arch)
    widths = [cell.out_channels // cell.channels for cell in net.cells]
    assert widths == [len(CellSpace.loose_ends(c)) for c in (normal, reduction, normal, reduction, normal)]
    net.train()
    logits, aux = net(torch.randn(3, 1, 8, 8))
    assert logits.shape == (3, 4) and aux.shape == (3, 4)
    net.eval()
    assert net(torch.randn(3, 1, 8, 8))[1] is None  # the auxiliary head only trains


DARTS_V2 = (  # Liu et al. 2019, the second-order DARTS cell
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def test_darts_v2_at_darts_cifar10_size_has_the_weights_darts_reports():
    """DARTS' training script logs "param size = 3.349342MB" for this cell (C=36, 20 cells, its auxiliary head
    not counted): the same ops, cells, stem and classifier, weight for weight."""
    net = ChildNetwork(nao.get_space("darts"), nao.get_space("darts").parse(DARTS_V2), in_channels=3, n_classes=10,
                       config=NetworkConfig(channels=36, cells_per_stage=6, auxiliary=True))
    assert len(net.cells) == 20
    assert sum(p.numel() for name, p in net.named_parameters() if not name.startswith("auxiliary")) == 3_349_342


def test_a_darts_cell_outputs_every_node_and_reduces_no_cell_input():
    darts = nao.get_space("darts")
    net = ChildNetwork(darts, darts.parse(DARTS_V2), in_channels=1, n_classes=4, config=TINY_NET)
    assert [cell.out_channels // cell.channels for cell in net.cells] == [4] * 5
    assert all(len(cell.reduce_input) == 0 for cell in net.cells)
    assert net(torch.randn(3, 1, 7, 7))[0].shape == (3, 4)


def test_loose_ends_include_unused_cell_inputs():
    cell = (((1, 0), (1, 4)), ((2, 1), (2, 2)))  # node 0 reads input 1, node 1 reads node 0
    assert CellSpace.loose_ends(cell) == [0, 3]


def test_a_supernet_score_depends_on_the_arch_and_the_weights_only():
    """Batch statistics only: the same arch gives the same output whatever ran before it, in any mode."""
    net = seeded_init(lambda: Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET), 0)
    x = torch.randn(16, 1, 8, 8)
    a, b, c = archs(3)
    with torch.no_grad():
        net.eval()
        first = net(x, a)[0]
        net(x, b)
        net.train()
        net(x, c)
        again = net(x, a)[0]
    assert torch.allclose(first, again, atol=1e-6)
    assert not torch.allclose(first, net.eval()(x, b)[0])


def test_pool_batch_norm_normalises_every_pooling_op_and_adds_no_weights():
    plain = seeded_init(lambda: Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET), 0)
    normed = seeded_init(lambda: Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET,
                                          pool_batch_norm=True), 0)
    assert plain.state_dict().keys() == normed.state_dict().keys()  # checkpoints load either way
    x = torch.randn(16, 4, 8, 8) * 3 + 2
    pools = [key for key, op in normed.cells[0].ops.items() if "pool" in SPACE.op_names[int(key.split("_")[-1])]]
    assert pools
    for key in pools:
        out, unnormed = normed.cells[0].ops[key](x), plain.cells[0].ops[key](x)
        assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(4), atol=1e-5)
        assert torch.allclose(out.var((0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)
        assert not torch.allclose(unnormed.mean((0, 2, 3)), torch.zeros(4), atol=1e-2)


def test_batch_norm_affine_false_leaves_the_cells_no_scale_or_shift_to_learn(stripes):
    configured = make_evaluator(SPACE, search_config(stripes, "supernet", 2, **{
        "evaluator.task.batch_norm_affine": False}).evaluator, device="cpu").supernet
    assert not any(m.affine for m in configured.cells.modules() if isinstance(m, torch.nn.BatchNorm2d))
    plain = seeded_init(lambda: Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET), 0)
    bare = seeded_init(lambda: Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET,
                                        batch_norm_affine=False), 0)
    norms = [m for m in bare.cells.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.affine or m.track_running_stats for m in norms)
    assert all(m.affine for m in plain.cells.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bare.stem[1].affine  # the stem, which every arch shares, keeps its own
    n_plain, n_bare = (sum(p.numel() for p in net.parameters()) for net in (plain, bare))
    assert n_plain - n_bare == 2 * sum(m.num_features for m in norms)
    x, a = torch.randn(8, 1, 8, 8), archs(1)[0]
    with torch.no_grad():  # at initialisation (scale 1, shift 0) both compute the same
        assert torch.allclose(plain.eval()(x, a)[0], bare.eval()(x, a)[0], atol=1e-5)


def child_with_supernet_weights(net: Supernet, arch, config: NetworkConfig) -> ChildNetwork:
    """The child network of ``arch`` holding the supernet's weights for it: its ops, and the columns of the
    preprocessing convolutions and the classifier that read the states the arch's cells output."""
    space = net.space
    child = ChildNetwork(space, arch, in_channels=1, n_classes=4, config=config)
    cells, shared = space.cells(arch), net.state_dict()

    def columns(producer: int) -> torch.Tensor:
        cell, c = net.cells[producer], net.cells[producer].channels
        states = space.output_states(cells[int(net.reductions[producer])])
        return torch.cat([torch.arange(i * c, (i + 1) * c) for i in map(cell.slots.index, states)])

    state = {}
    for name, value in child.state_dict().items():
        parts = name.split(".")
        if parts[0] == "cells" and parts[2] == "ops":
            j, b = map(int, parts[3].split("_"))
            source, op = cells[int(net.reductions[int(parts[1])])][j][b]
            parts[3] = f"{j}_{source}_{op}"
        weight = shared.get(".".join(parts), value)  # the child's running statistics: the supernet has none
        if weight.shape != value.shape:
            producer = (len(net.cells) - 1 if parts[0] == "classifier" else net.aux_after if parts[0] == "auxiliary"
                        else int(parts[1]) - (1 if parts[2] == "pre1" else 2))
            weight = weight.index_select(1, columns(producer))
        state[name] = weight
    child.load_state_dict(state)
    return child


@pytest.mark.parametrize("space_name", ["nao-cnn", "darts"])
def test_with_concat_output_the_supernet_computes_each_arch_as_its_child_network(space_name):
    space, config = nao.get_space(space_name), replace(TINY_NET, auxiliary=True)
    net = seeded_init(lambda: Supernet(space, in_channels=1, n_classes=4, config=config, concat_output=True), 0)
    x = torch.randn(16, 1, 8, 8)
    widths = set()
    for arch in [space.sample(np.random.default_rng(seed)) for seed in range(4)]:
        child = child_with_supernet_weights(net, arch, config)
        with torch.no_grad():
            expected, expected_aux = child.train()(x)  # training mode: the batch's statistics, as the supernet's
            logits, aux = net.train()(x, arch)
            assert torch.allclose(logits, expected, atol=1e-5) and torch.allclose(aux, expected_aux, atol=1e-5)
            net.eval()
            memo_logits = net.head(net.stem(x), space.cells(arch), net.arch_independent())[0]
            assert torch.allclose(memo_logits, expected, atol=1e-5)
        widths.add(tuple(cell.out_channels for cell in child.cells))
    assert len(widths) > 1 or space.output != "loose_ends"  # loose ends: children differ in width
    slots = space.n_nodes + 2 if space.output == "loose_ends" else space.n_nodes  # a slot per state it may output
    assert [cell.out_channels for cell in net.cells] == [slots * c for c in (4, 8, 8, 16, 16)]


def test_the_projecting_supernet_gives_every_arch_the_same_narrow_output():
    net = seeded_init(lambda: Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET), 0)
    assert [cell.out_channels for cell in net.cells] == [4, 8, 8, 16, 16]


def test_reusing_arch_independent_results_across_archs_changes_no_score():
    net = seeded_init(lambda: Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET), 0).eval()
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        stem, memos = net.stem(x), net.arch_independent()
        for arch in archs(6):
            assert torch.allclose(net.head(stem, SPACE.cells(arch), memos)[0], net(x, arch)[0], atol=1e-6)
    assert memos[0].values and memos[1].values and not memos[2].values


def test_a_supernet_step_trains_only_the_ops_of_its_arch():
    net = Supernet(SPACE, in_channels=1, n_classes=4, config=TINY_NET)
    arch = archs(1)[0]
    net(torch.randn(4, 1, 8, 8), arch)[0].sum().backward()
    normal = SPACE.cells(arch)[0]
    used = {f"{j}_{s}_{o}" for j, node in enumerate(normal) for s, o in node}
    first = net.cells[0]
    for key, module in first.ops.items():
        grads = [p.grad for p in module.parameters()]
        if grads:
            assert all(g is not None for g in grads) == (key in used), key


def test_training_is_seeded_and_resumes_exactly(data):
    def trainer() -> Trainer:
        model = seeded_init(lambda: ChildNetwork(SPACE, archs(1)[0], in_channels=1, n_classes=4, config=TINY_NET), 7)
        return Trainer(model, data, TINY_TRAIN, seed=7, device=torch.device("cpu"))

    straight = trainer()
    straight.train_epoch()
    straight.train_epoch()
    first = trainer()
    first.train_epoch()
    state = first.state_dict()
    torch.randn(5)  # the caller's RNG use in between changes nothing
    resumed = trainer()
    resumed.load_state_dict(state)
    resumed.train_epoch()
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_a_child_network_learns_the_stripes(data):
    model = seeded_init(lambda: ChildNetwork(SPACE, archs(1)[0], in_channels=1, n_classes=4, config=TINY_NET), 0)
    trainer = Trainer(model, data, TrainConfig(epochs=6, batch_size=16, lr=0.05, cutout=0, crop_padding=0,
                                               flip=False, drop_path=0.0), seed=0, device=torch.device("cpu"))
    for _ in range(6):
        trainer.train_epoch()
    assert trainer.accuracy("valid") >= 90.0


def train_config(tmp_path, stripes, **extra) -> str:
    config = {"space": "nao-cnn", "arch": SPACE.format(archs(1)[0]), "seed": 1,
              "data": {"name": "mnist", "dir": str(stripes), "valid_size": 60, "download": False},
              "network": {"channels": 4, "cells_per_stage": 1, "auxiliary": True},
              "train": {"epochs": 2, "batch_size": 32, "cutout": 2, "eval_batch_size": 64}} | extra
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_nao_train_reports_test_accuracy_once_and_resumes(tmp_path, stripes, capsys):
    config = train_config(tmp_path, stripes)
    out = str(tmp_path / "run")
    assert main(["train", config, "--out", out]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["epochs"] == 2 and 0 <= result["test_acc"] <= 100 and 0 <= result["valid_acc"] <= 100
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert checkpoint["arch"] == result["arch"] and checkpoint["trainer"]["epoch"] == 2
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2] and all("test_acc" not in m for m in lines)
    assert main(["train", config, "--out", out]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main(["train", config, "train.epochs=3", "--out", out, "--resume"]) == 2
    assert "different config (train.epochs: 2 in the run, 3 now)" in capsys.readouterr().err
    assert main(["train", config, "--out", out, "--resume"]) == 0  # finished: tested again, not retrained
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["test_acc"] == result["test_acc"]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


def test_nao_train_trains_a_pasted_darts_genotype_with_the_shipped_darts_recipe(tmp_path, stripes, capsys):
    overrides = [f"arch={DARTS_V2}", f"data.dir={stripes}", "data.name=mnist", "data.valid_size=60",
                 "data.download=false", "network.channels=4", "network.cells_per_stage=1", "train.epochs=1",
                 "train.batch_size=32", "train.cutout=2", "train.eval_batch_size=64"]
    assert main(["train", str(CONFIGS / "darts_train.yaml"), *overrides, "--out", str(tmp_path / "run")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["arch"] == DARTS_V2 and 0 <= result["test_acc"] <= 100


@pytest.mark.parametrize(("override", "message"), [
    ("arch=", "arch: required"),
    ("arch=0 1 2", "nao-cnn"),
    ("space=nb201", "no task trains nb201 archs"),
    ("train.epoch=3", "unknown config key 'train.epoch'"),
])
def test_nao_train_config_errors_are_one_line(tmp_path, stripes, capsys, override, message):
    assert main(["train", train_config(tmp_path, stripes), override, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def search_config(stripes, evaluator: str, budget: int, **extra):
    task = {"data": {"name": "mnist", "dir": str(stripes), "valid_size": 60, "download": False},
            "network": {"channels": 4, "cells_per_stage": 1, "auxiliary": False},
            "train": {"epochs": 1, "batch_size": 32, "cutout": 0, "eval_batch_size": 64}, "valid_images": 60}
    nao_config = {"seed_archs": 6, "new_per_iteration": 4, "top_k": 4, "epochs": 20, "controller": SMALL}
    settings = {"space": "nao-cnn", "strategy": "nao", "budget": budget, "evaluator.type": evaluator,
                "evaluator.task": json.dumps(task), "nao": json.dumps(nao_config)} | extra
    return load_config(None, [f"{k}={v}" for k, v in settings.items()])


def test_a_supernet_search_trains_before_each_batch_and_resumes_like_an_uninterrupted_run(tmp_path, stripes):
    direct = run_search(search_config(stripes, "supernet", 14), tmp_path / "direct", progress=False)
    assert sorted(p.name for p in (tmp_path / "direct" / "supernet").iterdir()) == [
        "stage0001.pt", "stage0002.pt", "stage0003.pt"]  # 6 seeds, then 4 + 4 proposals
    run_search(search_config(stripes, "supernet", 10), tmp_path / "extended", progress=False)
    extended = run_search(search_config(stripes, "supernet", 14), tmp_path / "extended", resume=True,
                          progress=False)
    assert extended == direct | {"run_dir": str(tmp_path / "extended")}
    first = [r.metrics for r in RunDir(tmp_path / "direct").read_history()]
    assert first == [r.metrics for r in RunDir(tmp_path / "extended").read_history()]
    scores = [m["valid_acc"] for m in first]
    assert all(0 <= s <= 100 for s in scores) and len(set(scores)) > 1


def test_a_supernet_search_killed_while_training_resumes_to_the_same_end(tmp_path, stripes):
    """The state of a kill during stage 3's supernet training: stage 3's batch saved, its weights not yet."""
    run_search(search_config(stripes, "supernet", 14), tmp_path / "run", progress=False)
    finished = history(tmp_path / "run")
    (tmp_path / "run" / "supernet" / "stage0003.pt").unlink()
    lines = (tmp_path / "run" / "history.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "run" / "history.jsonl").write_text("".join(lines[:10]))
    run_search(search_config(stripes, "supernet", 14), tmp_path / "run", resume=True, progress=False)
    assert history(tmp_path / "run") == finished


def test_a_darts_space_search_with_weight_sharing_scores_genotypes(tmp_path, stripes):
    summary = run_search(search_config(stripes, "supernet", 8, space="darts"), tmp_path / "run", progress=False)
    history = RunDir(tmp_path / "run").read_history()
    assert summary["evaluated"] == 8 and summary["best_arch"].startswith("Genotype(normal=[")
    assert len({r.metrics["valid_acc"] for r in history}) > 1


def test_the_supernet_evaluator_refuses_the_test_set_and_other_metrics(stripes, tmp_path):
    with pytest.raises(UserError, match="never looks at the test set"):
        run_search(search_config(stripes, "supernet", 4, **{"evaluator.report_metric": "test_acc"}),
                   tmp_path / "a", progress=False)
    with pytest.raises(UserError, match=r"evaluator\.task\.sampling: must be one of uniform, params, space, fair, "
                                        r"outputs, got 'loss'"):
        run_search(search_config(stripes, "supernet", 4, **{"evaluator.task.sampling": "loss"}),
                   tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("space_name", ["nao-cnn", "darts"])
def test_fair_sampling_gives_every_op_position_each_op_once_in_every_run_of_as_many_mini_batches(tmp_path,
                                                                                                space_name):
    space = nao.get_space(space_name)
    config = search_config(tmp_path / "no-data-here", "supernet", 2, space=space_name)
    draws = SAMPLERS["fair"](make_evaluator(space, config.evaluator, device="cpu"), [], np.random.default_rng(0))
    m = len(space.op_names)
    for _ in range(3):
        run = np.array([space.check(next(draws)) for _ in range(m)])  # valid archs (DARTS: distinct inputs)
        for position in range(1, space.seq_len, 2):
            assert sorted(run[:, position]) == list(range(m))
        assert len({tuple(arch[::2]) for arch in run}) > 1  # inputs are drawn, not fixed


def test_space_sampling_trains_archs_from_outside_the_pool(tmp_path):
    config = search_config(tmp_path / "no-data-here", "supernet", 2)
    pool = [SPACE.sample(np.random.default_rng(1))]
    draws = SAMPLERS["space"](make_evaluator(SPACE, config.evaluator, device="cpu"), pool, np.random.default_rng(0))
    archs = {next(draws) for _ in range(20)}
    assert len(archs) == 20 and not archs & set(pool)


def test_outputs_sampling_has_every_state_output_far_more_equally_than_uniform_draws(tmp_path):
    config = search_config(tmp_path / "no-data-here", "supernet", 2)
    evaluator = make_evaluator(SPACE, config.evaluator, device="cpu")
    rng = np.random.default_rng(0)

    def frequencies(archs) -> np.ndarray:  # how often each state is output, per cell type
        counts = np.zeros((2, SPACE.n_nodes + 2))
        for arch in archs:
            for kind, cell in enumerate(SPACE.cells(SPACE.check(arch))):
                counts[kind, SPACE.output_states(cell)] += 1
        return counts / len(archs)

    draws = SAMPLERS["outputs"](evaluator, [], rng)
    balanced, uniform = frequencies([next(draws) for _ in range(1400)]), frequencies(
        [SPACE.sample(rng) for _ in range(1400)])
    assert uniform[:, :3].max() < 0.15  # the cell inputs and the first node: rarely output by uniform draws
    assert balanced.min() > 0.1 and (balanced[:, :2] > 3 * uniform[:, :2]).all()


def test_outputs_sampling_draws_only_states_a_cell_can_output(tmp_path):
    """In darts every node is output and the cell inputs never are: a drawn input would be sought forever."""
    space = nao.get_space("darts")
    config = search_config(tmp_path / "no-data-here", "supernet", 2, space="darts")
    draws = SAMPLERS["outputs"](make_evaluator(space, config.evaluator, device="cpu"), [], np.random.default_rng(0))
    assert len({space.check(next(draws)) for _ in range(50)}) == 50


@pytest.mark.parametrize("sampling", ["space", "fair", "outputs"])
def test_a_supernet_search_trains_with_each_sampling_rule_and_resumes_like_an_uninterrupted_run(
        tmp_path, stripes, sampling):
    direct = run_search(search_config(stripes, "supernet", 10, **{"evaluator.task.sampling": sampling}),
                        tmp_path / "direct", progress=False)
    run_search(search_config(stripes, "supernet", 6, **{"evaluator.task.sampling": sampling}),
               tmp_path / "resumed", progress=False)
    resumed = run_search(search_config(stripes, "supernet", 10, **{"evaluator.task.sampling": sampling}),
                         tmp_path / "resumed", resume=True, progress=False)
    assert resumed == direct | {"run_dir": str(tmp_path / "resumed")}
    scores = [r.metrics["valid_acc"] for r in RunDir(tmp_path / "direct").read_history()]
    assert len(set(scores)) > 1


def test_a_warm_up_trains_the_fresh_supernet_on_the_whole_space_before_the_first_stage_and_resumes(
        tmp_path, stripes):
    def stage_one(run: Path) -> dict:
        return torch.load(run / "supernet" / "stage0001.pt", weights_only=True)

    plain = tmp_path / "plain"
    run_search(search_config(stripes, "supernet", 6), plain, progress=False)
    warm = {"evaluator.task.warmup_epochs": 1}
    direct = run_search(search_config(stripes, "supernet", 14, **warm), tmp_path / "direct", progress=False)
    assert any(not torch.equal(w, stage_one(plain)[k]) for k, w in stage_one(tmp_path / "direct").items())
    run_search(search_config(stripes, "supernet", 10, **warm), tmp_path / "resumed", progress=False)
    resumed = run_search(search_config(stripes, "supernet", 14, **warm), tmp_path / "resumed", resume=True,
                         progress=False)  # stages 1-2 reloaded, no second warm-up
    assert resumed == direct | {"run_dir": str(tmp_path / "resumed")}
    assert [r.metrics for r in RunDir(tmp_path / "resumed").read_history()] == \
        [r.metrics for r in RunDir(tmp_path / "direct").read_history()]
    with pytest.raises(UserError, match=r"evaluator\.task\.warmup_epochs: must be at least 0, got -1"):
        run_search(search_config(stripes, "supernet", 4, **{"evaluator.task.warmup_epochs": -1}),
                   tmp_path / "bad", progress=False)


def test_finetuned_scoring_adapts_the_weights_to_each_arch_then_restores_them(tmp_path, stripes, monkeypatch):
    config = search_config(stripes, "supernet", 2, **{"evaluator.task.finetune_steps": 3})
    evaluator = make_evaluator(SPACE, config.evaluator, device="cpu")
    evaluator.train(archs(4), seed=0, progress=False)
    shared = {key: value.clone() for key, value in evaluator.supernet.state_dict().items()}
    scored_with, score = [], evaluator._score

    def spied(arch):
        scored_with.append({key: value.clone() for key, value in evaluator.supernet.state_dict().items()})
        return score(arch)

    monkeypatch.setattr(evaluator, "_score", spied)
    first, second = archs(2, seed=5)
    tuned = evaluator.evaluate(first)
    assert evaluator.evaluate(second) and evaluator.evaluate(first) == tuned  # the same steps for every arch
    assert all(torch.equal(value, shared[key]) for key, value in evaluator.supernet.state_dict().items())
    changed = [[key for key in shared if not torch.equal(weights[key], shared[key])] for weights in scored_with]
    assert all(changed) and changed[0] != changed[1]  # each arch scored on weights moved along its own ops
    assert changed[0] == changed[2] and torch.equal(scored_with[0]["classifier.weight"],
                                                    scored_with[2]["classifier.weight"])
    with pytest.raises(UserError, match=r"evaluator\.task\.finetune_lr: must be positive, got 0"):
        run_search(search_config(stripes, "supernet", 2, **{"evaluator.task.finetune_lr": 0}), tmp_path / "a",
                   progress=False)


def test_finetuned_scores_follow_one_run_of_steps_whose_last_score_is_the_finetuned_evaluation(stripes):
    plain = make_evaluator(SPACE, search_config(stripes, "supernet", 2).evaluator, device="cpu")
    plain.train(archs(4), seed=0, progress=False)
    tuned = make_evaluator(SPACE, search_config(stripes, "supernet", 2, **{"evaluator.task.finetune_steps": 3})
                           .evaluator, device="cpu")
    tuned.supernet.load_state_dict(plain.supernet.state_dict())
    shared = {key: value.clone() for key, value in plain.supernet.state_dict().items()}
    arch = archs(1, seed=5)[0]
    curve = plain.finetuned_scores(arch, [0, 1, 3])
    assert sorted(curve) == [0, 1, 3]
    assert curve[0] == plain.evaluate(arch) and curve[3] == tuned.evaluate(arch)
    assert all(torch.equal(value, shared[key]) for key, value in plain.supernet.state_dict().items())
    with pytest.raises(UserError, match=r"evaluator\.task\.finetune_steps: 99 steps of 32 images need 3168 "):
        plain.finetuned_scores(arch, [99])  # the stripes' training split has far fewer images


def test_a_standalone_search_trains_each_arch(tmp_path, stripes):
    summary = run_search(search_config(stripes, "standalone", 3, strategy="random"), tmp_path / "run",
                         progress=False)
    history = RunDir(tmp_path / "run").read_history()
    assert summary["evaluated"] == 3 and all(r.seconds > 0 for r in history)
    assert summary["best_metric"] == max(r.metrics["valid_acc"] for r in history)


def test_a_proxy_search_scores_each_arch_by_its_training_free_score_without_training(tmp_path, stripes):
    config = search_config(stripes, "proxy", 4, strategy="random", seed=3,
                           **{"evaluator.task.proxy": "naswot", "evaluator.task.proxy_images": 16})
    summary = run_search(config, tmp_path / "run", progress=False)
    history = RunDir(tmp_path / "run").read_history()
    data = load_images("mnist", data_dir=stripes, valid_size=60, download=False, seed=3)  # split by the run's seed
    network = NetworkConfig(channels=4, cells_per_stage=1, auxiliary=False)
    expected = proxy_scores("naswot", SPACE, [SPACE.parse(r.arch) for r in history], network, data, seed=3,
                            batch_size=16)  # the run's seed initialises every network; the first 16 images
    assert [r.metrics["proxy_score"] for r in history] == list(expected)
    assert summary["best_metric"] == max(expected) and len(set(expected)) > 1
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["evaluator"]
    assert saved["metric"] == "proxy_score" and not saved["minimize"] and saved["task"]["proxy"] == "naswot"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_a_proxy_search_on_cuda_scores_on_cuda_as_on_the_cpu(tmp_path, stripes, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    scores = {}
    for device in ("cpu", "cuda"):
        config = search_config(stripes, "proxy", 3, strategy="random", seed=3, device=device,
                               **{"evaluator.task.proxy": "naswot", "evaluator.task.proxy_images": 16})
        run_search(config, tmp_path / device, progress=False)
        scores[device] = [r.metrics["proxy_score"] for r in RunDir(tmp_path / device).read_history()]
    assert np.allclose(scores["cpu"], scores["cuda"], rtol=1e-3)


@pytest.mark.parametrize(("override", "message"), [
    ("evaluator.task.proxy=zen", "evaluator.task.proxy: must be one of weights, synflow, snip, naswot, got "),
    ("evaluator.task.proxy_images=1", "evaluator.task.proxy_images: must be at least 2"),
])
def test_a_bad_proxy_setting_is_one_line_naming_the_key(tmp_path, stripes, capsys, override, message):
    config = tmp_path / "proxy.yaml"
    config.write_text(yaml.safe_dump({"space": "nao-cnn", "strategy": "random", "budget": 2,
                                      "evaluator": {"type": "proxy", "task": {"data": {"dir": str(stripes)}}}}))
    assert main(["search", str(config), override, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "history.jsonl").exists()


def test_a_standalone_cell_of_convolutions_is_expected_to_cost_more_than_one_of_pooling_without_the_data(
        tmp_path):
    config = search_config(tmp_path / "no-data-here", "standalone", 2)
    evaluator = make_evaluator(SPACE, config.evaluator, device="cpu")

    def arch(op_name: str) -> tuple[int, ...]:  # every node sums the op on its two newest inputs, in both cells
        op = SPACE.op_names.index(op_name)
        return tuple(value for node in range(SPACE.n_nodes) for value in (node, op, node + 1, op)) * 2

    costs = [evaluator.cost(arch(op)) for op in ("sep_conv_5x5", "sep_conv_3x3", "max_pool_3x3")]
    assert costs[0] > costs[1] > costs[2] > 0  # the reduction cell's input convolutions cost something too


def test_an_arch_whose_training_diverges_is_a_failed_evaluation_not_a_score(tmp_path, stripes):
    config = search_config(stripes, "standalone", 2, strategy="random", retries=0,
                           **{"evaluator.task.train.lr": "1.0e+30", "evaluator.task.train.grad_clip": 0})
    with pytest.raises(UserError, match="every evaluation failed"):
        run_search(config, tmp_path / "run", progress=False)
    history = RunDir(tmp_path / "run").read_history()
    assert len(history) == 2 and all(r.error.startswith("FloatingPointError: training loss is nan") for r in history)
