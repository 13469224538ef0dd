"""`nao export` and the public network builders.

The exported file is plain PyTorch: it runs in a Python where nao cannot be imported, its `build()` network has
the in-package network's state dict (keys and shapes), and with the in-package weights it computes exactly what
the in-package network computes, in eval mode and (same random draws) in training mode.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import write_stripes

import nao
from nao.cli import main
from nao.export import ACTIVATIONS, CNN_OPS, build_cnn, build_rnn, export_network
from nao.search import load_config, run_search
from nao.tasks.cnn.network import NetworkConfig
from nao.tasks.cnn.ops import OPS
from nao.tasks.rnn.model import LMConfig

TINY_CNN = {"n_classes": 4, "in_channels": 1, "channels": 4, "cells_per_stage": 1}
TINY_RNN = {"vocab_size": 20, "size": 8}
RNN_ARCH = "0 1 1 1 2 2 1 2 4 1 4 1 4 1 7 1 8 2 1 0 4 1"  # NAO-WS's PTB cell: every activation but identity
RNN_ARCH_IDENTITY = "0 3 1 0 0 1 2 2 4 3 3 0 6 3 1 1 8 2 0 3 2 0"

# (name, space, arch, extra options, input size). Nodes are `in op in op`; the normal cell's 5 nodes, then the
# reduction cell's. Together the archs use every op in a normal cell and every op reading a cell input (stride 2,
# identity becoming a factorized reduction) in a reduction cell, and some reduction cells leave a cell input
# unused (a loose end reduced by a factorized reduction).
CNN_CASES = [
    ("large_a", "nao-cnn-large",
     "0 0 1 1  0 2 1 3  2 4 3 5  0 6 4 7  1 8 5 9   0 0 1 1  0 2 1 3  0 4 1 5  0 6 1 7  0 8 1 9",
     {"auxiliary": True}, 8),
    ("large_b", "nao-cnn-large",
     "0 10 1 10  2 0 1 2  0 9 3 1  4 5 2 8  1 4 5 6   1 10 1 0  2 10 1 7  3 0 2 5  1 3 4 8  5 1 4 9",
     {}, 7),
    ("small_a", "nao-cnn",
     "0 0 1 1  0 2 1 3  2 4 3 0  4 1 1 4  5 2 0 3   0 0 1 1  0 2 1 3  0 4 1 4  2 0 3 1  4 2 5 3",
     {"auxiliary": True, "stem_stride": 2}, 8),
    ("small_b", "nao-cnn",
     "1 4 0 4  2 0 2 1  3 2 1 3  0 1 4 2  5 3 0 0   0 4 0 0  2 1 0 2  3 3 0 3  4 4 2 0  5 1 0 1",
     {"dropout": 0.5, "stem_multiplier": 2}, 8),
    ("darts", "darts",  # its output is every node: no cell input is reduced
     "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('dil_conv_3x3', 0), ('dil_conv_5x5', 2), "
     "('max_pool_3x3', 1), ('avg_pool_3x3', 3), ('skip_connect', 4), ('sep_conv_3x3', 0)], normal_concat=[2, 3, 4, 5], "
     "reduce=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
     "('sep_conv_5x5', 0), ('dil_conv_3x3', 1), ('dil_conv_5x5', 0), ('skip_connect', 1)], reduce_concat=[2, 3, 4, 5])",
     {"auxiliary": True}, 7),
]
RNN_CASES = [("rnn_a", RNN_ARCH), ("rnn_b", RNN_ARCH_IDENTITY)]


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights and batch-norm statistics far from their initial values, so that a wrong load shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3)
    return model


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def run_forward(model: torch.nn.Module, inputs: tuple, drop_path: float | None) -> dict:
    """What the runner below computes, here with the in-package network: eval mode, then training mode."""
    model.eval()
    with torch.no_grad():
        evaluated = model(*inputs)
    model.train()
    if drop_path is not None:
        model.drop_path = drop_path
    torch.manual_seed(123)
    with torch.no_grad():
        trained = model(*inputs)
    return {"eval": evaluated, "train": trained}


# Runs with `python -I -S`: no site-packages, no .pth files (so not nao's editable-install hook), no PYTHONPATH,
# cwd in a temporary folder; only torch's folder is put on sys.path.
RUNNER = """
import importlib.util, json, sys
sys.path.append(sys.argv[2])
try:
    import nao  # noqa: F401
    nao_importable = True
except ModuleNotFoundError:
    nao_importable = False
import torch

report = {"nao_importable": nao_importable}
for case in json.load(open(sys.argv[1])):
    spec = importlib.util.spec_from_file_location(case["name"], case["file"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build()
    model.load_state_dict(torch.load(case["weights"]), strict=True)
    inputs = torch.load(case["inputs"])
    model.eval()
    with torch.no_grad():
        evaluated = model(*inputs)
    model.train()
    if case["drop_path"] is not None:
        model.drop_path = case["drop_path"]
    torch.manual_seed(123)
    with torch.no_grad():
        trained = model(*inputs)
    torch.save({"eval": evaluated, "train": trained}, case["output"])
report["nao_modules"] = sorted(m for m in sys.modules if m == "nao" or m.startswith("nao."))
print(json.dumps(report))
"""


def torch_path(tmp: Path) -> str:
    """The folder torch is installed in; when nao is installed there as a plain package (not editable), a copy
    of that folder's entries without nao."""
    site = Path(torch.__file__).resolve().parent.parent
    if not (site / "nao").exists():
        return str(site)
    shadow = tmp / "site"
    shadow.mkdir()
    for entry in site.iterdir():
        if entry.name != "nao":
            (shadow / entry.name).symlink_to(entry)
    return str(shadow)


@contextlib.contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These networks are tiny: a second thread only adds synchronisation (10x slower on a busy 2-core machine)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stripes")
    write_stripes(folder, n_train=120, n_test=20)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    words = [f"w{i}" for i in range(12)]
    for split, n in (("train", 120), ("valid", 20), ("test", 20)):
        (folder / f"{split}.txt").write_text("".join(" ".join(words[i % 6:i % 6 + 5]) + "\n" for i in range(n)))
    return folder


@pytest.fixture(scope="module")
def cnn_train_dir(tmp_path_factory, stripes):
    """A tiny `nao train` of a CNN arch (with an auxiliary head) on 8x8 one-channel stripes (10 classes: mnist)."""
    root = tmp_path_factory.mktemp("cnn_train")
    config = {"space": "nao-cnn-large", "arch": CNN_CASES[0][2], "seed": 1,
              "data": {"name": "mnist", "dir": str(stripes), "valid_size": 20, "download": False},
              "network": {"channels": 8, "cells_per_stage": 1, "auxiliary": True},
              "train": {"epochs": 1, "batch_size": 60, "cutout": 2, "eval_batch_size": 64}}
    # 8 channels, not 4: on ONE thread torch 2.13's CPU backward of a stride-2 1x1 convolution over channels-last
    # input with 2..6 input channels (a factorized reduction of a 4-channel network) corrupts the heap
    (root / "train.yaml").write_text(yaml.safe_dump(config))
    assert cli("train", str(root / "train.yaml"), "--out", str(root / "run"))[0] == 0
    return root / "run"


@pytest.fixture(scope="module")
def rnn_train_dir(tmp_path_factory, corpus):
    root = tmp_path_factory.mktemp("rnn_train")
    config = {"space": "nao-rnn", "arch": RNN_ARCH, "seed": 0,
              "data": {"name": "ptb", "dir": str(corpus), "download": False},
              "model": {"size": 8, "dropout": 0.1, "dropouth": 0.1, "dropoutx": 0.1, "dropouti": 0.1},
              "train": {"epochs": 1, "batch_size": 8, "eval_batch_size": 4, "bptt": 10, "lr": 5.0, "nonmono": 1}}
    (root / "train.yaml").write_text(yaml.safe_dump(config))
    assert cli("train", str(root / "train.yaml"), "--out", str(root / "run"))[0] == 0
    return root / "run"


def trained_network(train_dir: Path) -> torch.nn.Module:
    """The in-package network of a training run, with its weights (its sizes as the configs above say)."""
    checkpoint = torch.load(train_dir / "checkpoint.pt", weights_only=False)
    if checkpoint["space"] == "nao-rnn":
        vocab = checkpoint["trainer"]["model"]["bias"].shape[0]  # the corpus's 10 words and <eos>
        model = build_rnn("nao-rnn", checkpoint["arch"], vocab_size=vocab, size=8, dropout=0.1, dropouth=0.1,
                          dropoutx=0.1, dropouti=0.1)
    else:  # mnist: 10 classes, 1 channel
        model = build_cnn("nao-cnn-large", checkpoint["arch"], n_classes=10, in_channels=1, channels=8,
                          cells_per_stage=1, auxiliary=True)
    model.load_state_dict(checkpoint["trainer"]["model"])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cnn_train_dir, rnn_train_dir):
    """Every case exported with weights, then run in ONE isolated Python; per case the in-package outputs
    (``expected``), the exported file's (``actual``), and the runner's report."""
    root = tmp_path_factory.mktemp("exported")
    cases, expected, results = [], {}, {}
    for seed, (name, space, arch, options, size) in enumerate(CNN_CASES):
        model = randomize(build_cnn(space, arch, **TINY_CNN | options), seed)
        results[name] = export_network(space, arch, root / f"{name}.py", state_dict=model.state_dict(),
                                       **TINY_CNN | options)
        inputs = (torch.randn(3, 1, size, size, generator=torch.Generator().manual_seed(seed)),)
        cases.append((name, model, inputs, 0.3))
    for seed, (name, arch) in enumerate(RNN_CASES, start=10):
        model = randomize(build_rnn("nao-rnn", arch, **TINY_RNN), seed)
        results[name] = export_network("nao-rnn", arch, root / f"{name}.py", state_dict=model.state_dict(),
                                       **TINY_RNN)
        generator = torch.Generator().manual_seed(seed)
        inputs = (torch.randint(0, 20, (6, 3), generator=generator), torch.randn(3, 8, generator=generator))
        cases.append((name, model, inputs, None))
    for name, train_dir, inputs, drop_path in (
            ("cnn_trained", cnn_train_dir, (torch.randn(2, 1, 8, 8),), 0.3),
            ("rnn_trained", rnn_train_dir, (torch.randint(0, 11, (5, 2)), torch.zeros(2, 8)), None)):
        code, out, _ = cli("export", str(train_dir), "--out", str(root / f"{name}.py"))
        assert code == 0
        results[name] = json.loads(out.strip().splitlines()[-1])
        cases.append((name, trained_network(train_dir), inputs, drop_path))
    manifest = []
    for name, model, inputs, drop_path in cases:
        expected[name] = run_forward(model, inputs, drop_path)
        torch.save(inputs, root / f"{name}.inputs.pt")
        manifest.append({"name": name, "file": str(root / f"{name}.py"), "weights": str(root / f"{name}.pt"),
                         "inputs": str(root / f"{name}.inputs.pt"), "output": str(root / f"{name}.output.pt"),
                         "drop_path": drop_path})
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "runner.py").write_text(RUNNER)
    work = tmp_path_factory.mktemp("isolated")
    proc = subprocess.run([sys.executable, "-I", "-S", str(root / "runner.py"), str(root / "manifest.json"),
                           torch_path(work)], cwd=work, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    actual = {name: torch.load(root / f"{name}.output.pt") for name, *_ in cases}
    return {"root": root, "results": results, "expected": expected, "actual": actual,
            "report": json.loads(proc.stdout.strip().splitlines()[-1])}


def constants(source: str) -> dict:
    """The module-level constants of an exported file (``NAME = literal``)."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


def same(a, b) -> bool:
    """Equal outputs (tensors compared with a tight tolerance; ``None`` for an absent auxiliary output)."""
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------------ the file
def test_every_cnn_op_and_rnn_activation_of_the_package_has_an_export():
    assert set(CNN_OPS) == set(OPS)
    assert set(ACTIVATIONS) == set(nao.get_space("nao-rnn").activations)


def test_the_cnn_cases_use_every_op_in_a_normal_cell_and_strided_in_a_reduction_cell():
    loose_inputs = 0
    for space_name in ("nao-cnn", "nao-cnn-large", "darts"):
        space = nao.get_space(space_name)
        normal_ops, strided_ops = set(), set()
        for _, name, arch, _, _ in CNN_CASES:
            if name == space_name:
                normal, reduction = space.cells(space.parse(arch))
                normal_ops |= {space.op_names[op] for node in normal for _, op in node}
                strided_ops |= {space.op_names[op] for node in reduction for source, op in node if source < 2}
                loose_inputs += any(k < 2 for k in space.output_states(reduction))
        assert normal_ops == strided_ops == set(space.op_names)
    assert loose_inputs >= 2


def test_the_exported_file_runs_in_a_python_where_nao_cannot_be_imported(exported):
    assert exported["report"] == {"nao_importable": False, "nao_modules": []}


@pytest.mark.parametrize("name", [c[0] for c in CNN_CASES] + [c[0] for c in RNN_CASES])
def test_the_exported_file_imports_only_torch_and_the_standard_library(exported, name):
    tree = ast.parse((exported["root"] / f"{name}.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"torch"}


@pytest.mark.parametrize("name", [c[0] for c in CNN_CASES] + [c[0] for c in RNN_CASES])
def test_the_exported_network_with_the_in_package_weights_computes_the_same_outputs(exported, name):
    expected, actual = exported["expected"][name], exported["actual"][name]
    assert same(expected["eval"], actual["eval"])
    assert same(expected["train"], actual["train"])  # dropouts, drop-path and the auxiliary head alike
    if name in ("large_a", "small_a"):
        assert actual["train"][1] is not None and actual["eval"][1] is None  # the auxiliary head trains only


@pytest.mark.parametrize(("name", "space", "arch", "options", "size"), CNN_CASES)
def test_the_file_holds_the_arch_as_constants_and_the_weights_file_is_a_plain_state_dict(
        exported, name, space, arch, options, size):
    source = (exported["root"] / f"{name}.py").read_text()
    text = nao.get_space(space).format(nao.get_space(space).parse(arch))
    assert constants(source)["ARCH"] == text and constants(source)["SPACE"] == space
    assert f'torch.load("{name}.pt")' in source  # how to load, in the docstring
    weights = torch.load(exported["root"] / f"{name}.pt", weights_only=True)
    model = build_cnn(space, arch, **TINY_CNN | options)
    assert {k: v.shape for k, v in weights.items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert exported["results"][name] == {"out": str(exported["root"] / f"{name}.py"),
                                         "weights": str(exported["root"] / f"{name}.pt"), "arch": text,
                                         "space": space, "params": sum(p.numel() for p in model.parameters())}


# ------------------------------------------------------------------------------------------------ nao export
def test_export_of_a_training_run_has_its_arch_sizes_and_last_weights(exported, cnn_train_dir):
    result = exported["results"]["cnn_trained"]
    checkpoint = torch.load(cnn_train_dir / "checkpoint.pt", weights_only=False)
    assert result["arch"] == checkpoint["arch"] and result["space"] == "nao-cnn-large"
    weights = torch.load(result["weights"], weights_only=True)
    assert all(torch.equal(weights[k], v) for k, v in checkpoint["trainer"]["model"].items())
    source = Path(result["out"]).read_text()
    found = constants(source)  # mnist's classes and channels, the config's sizes
    assert [found[k] for k in ("N_CLASSES", "IN_CHANNELS", "CHANNELS", "CELLS_PER_STAGE")] == [10, 1, 8, 1]
    assert "self.auxiliary = AuxiliaryHead(" in source


def test_export_of_an_rnn_training_run_with_averaged_sgd_writes_the_averaged_weights(rnn_train_dir, corpus,
                                                                                      tmp_path):
    from nao.tasks.rnn.train import LMTrainConfig, LMTrainer
    from nao.tasks.text import load_corpus

    run = tmp_path / "run"
    shutil.copytree(rnn_train_dir, run)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    model = trained_network(rnn_train_dir)
    trainer = LMTrainer(model, load_corpus("ptb", data_dir=corpus, download=False),
                        LMTrainConfig(batch_size=8, bptt=10, lr=5.0, nonmono=1), seed=0, device=torch.device("cpu"))
    trainer.load_state_dict(checkpoint["trainer"])
    trainer.valid_losses = [1.0, 2.0]
    trainer.end_epoch(3.0)  # worse than the best before the last epoch: averaging starts
    trainer.train_epoch()
    assert trainer.averaging
    torch.save(checkpoint | {"trainer": trainer.state_dict()}, run / "checkpoint.pt")
    code, out, _ = cli("export", str(run), "--out", str(tmp_path / "lm.py"))
    assert code == 0
    weights = torch.load(json.loads(out.strip().splitlines()[-1])["weights"], weights_only=True)
    with trainer.averaged_weights():
        averaged = {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.equal(averaged["cell.w_x"], model.cell.w_x)
    assert all(torch.equal(weights[k], v) for k, v in averaged.items())
    assert "ASGD-averaged" in (tmp_path / "lm.py").read_text()


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "run"
    config = load_config(None, ["space=nao-cnn", "strategy=random", "budget=5", "evaluator.type=synthetic"])
    summary = run_search(config, path, progress=False)
    return path, summary


def test_export_of_a_search_run_writes_its_best_arch_without_weights(search_run, tmp_path):
    path, summary = search_run
    code, out, err = cli("export", str(path), "--out", str(tmp_path / "best.py"))
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["arch"] == summary["best_arch"] and result["weights"] is None and result["space"] == "nao-cnn"
    assert "without weights" in err and not (tmp_path / "best.pt").exists()
    source = (tmp_path / "best.py").read_text()
    defaults = NetworkConfig()  # no evaluator.task.network in a synthetic run: the final-training sizes
    found = constants(source)
    assert (found["CHANNELS"], found["CELLS_PER_STAGE"]) == (defaults.channels, defaults.cells_per_stage)
    assert (found["N_CLASSES"], found["IN_CHANNELS"]) == (10, 3)  # cifar10, the final training's default dataset
    assert "No trained weights were exported" in source


def test_a_search_runs_network_sizes_come_from_its_task_and_the_options(search_run, tmp_path):
    path, summary = search_run
    run = tmp_path / "run"
    shutil.copytree(path, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["evaluator"]["task"] = {"data": {"name": "fashion-mnist"},
                                   "network": asdict_network(channels=8, cells_per_stage=2, stem_stride=2)}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    code, out, _ = cli("export", str(run), "--out", str(tmp_path / "a.py"), "--cells-per-stage", "3",
                       "--set", "auxiliary=true")
    assert code == 0
    source = (tmp_path / "a.py").read_text()
    found = constants(source)
    assert (found["N_CLASSES"], found["IN_CHANNELS"], found["CHANNELS"]) == (10, 1, 8)  # fashion-mnist, the task
    assert (found["CELLS_PER_STAGE"], found["STEM_STRIDE"]) == (3, 2)  # --cells-per-stage beats the task
    assert "self.auxiliary = AuxiliaryHead(" in source  # --set auxiliary=true
    params = json.loads(out.strip().splitlines()[-1])["params"]
    model = build_cnn("nao-cnn", summary["best_arch"], n_classes=10, in_channels=1, channels=8, cells_per_stage=3,
                      stem_stride=2, auxiliary=True)
    assert params == sum(p.numel() for p in model.parameters())


def asdict_network(**sizes) -> dict:
    from dataclasses import asdict

    return asdict(NetworkConfig(**sizes))


def test_export_of_a_space_and_arch_with_options(tmp_path):
    code, out, _ = cli("export", "--space", "nao-rnn", "--arch", RNN_ARCH, "--out", str(tmp_path / "lm.py"),
                       "--vocab-size", "50", "--set", "size=12", "--set", "dropout=0.5")
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1]) == {
        "out": str(tmp_path / "lm.py"), "weights": None, "arch": RNN_ARCH, "space": "nao-rnn",
        "params": sum(p.numel() for p in build_rnn("nao-rnn", RNN_ARCH, vocab_size=50, size=12).parameters())}
    source = (tmp_path / "lm.py").read_text()
    found = constants(source)
    assert (found["VOCAB_SIZE"], found["SIZE"], found["DROPOUT"], found["DROPOUTH"]) == (50, 12, 0.5, 0.25)
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "lm.py", "exec"), namespace)
    logits, outputs = namespace["build"]().eval()(torch.zeros(3, 2, dtype=torch.long), torch.zeros(2, 12))
    assert logits.shape == (3, 2, 50) and outputs.shape == (3, 2, 12)


@pytest.mark.parametrize(("args", "message"), [
    (["--space", "nb201", "--arch", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"],
     "nb201: no exportable network"),
    (["--space", "nao-cnn", "--arch", "0 1 2"], "nao-cnn: expected 40 integers"),
    (["--space", "nao-cnn", "--arch", CNN_CASES[2][2], "--vocab-size", "5"], "vocab_size: not an option"),
    (["--space", "nao-cnn", "--arch", CNN_CASES[2][2], "--set", "channels=0"], "channels: must be at least 1"),
    (["--space", "nao-cnn"], "or --space and --arch"),
    (["{tmp}/missing"], "no such directory"),
    (["{tmp}"], "neither a search run"),
    (["{train}", "--channels", "8"], "keeps the sizes it was trained with"),
    (["{train}", "--space", "nao-cnn"], "not both"),
])
def test_export_errors_are_one_line_exit_2_and_write_nothing(tmp_path, cnn_train_dir, args, message):
    argv = [a.format(tmp=tmp_path, train=cnn_train_dir) for a in args]
    code, out, err = cli("export", *argv, "--out", str(tmp_path / "net.py"))
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_write_leaves_neither_file_nor_a_temporary(tmp_path, monkeypatch):
    model = build_rnn("nao-rnn", RNN_ARCH, **TINY_RNN)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_network("nao-rnn", RNN_ARCH, tmp_path / "lm.py", state_dict=model.state_dict(), **TINY_RNN)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- builders
def test_the_builders_take_an_arch_or_its_text_and_default_to_the_final_training_sizes():
    space = nao.get_space("nao-cnn")
    arch = space.parse(CNN_CASES[2][2])
    by_text, by_arch = build_cnn("nao-cnn", CNN_CASES[2][2], n_classes=10), build_cnn(space, arch, n_classes=10)
    assert by_text.state_dict().keys() == by_arch.state_dict().keys()
    defaults = NetworkConfig()
    assert len(by_text.cells) == 3 * defaults.cells_per_stage + 2 and by_text.auxiliary is None
    assert by_text.stem[0].out_channels == defaults.stem_multiplier * defaults.channels
    lm = build_rnn("nao-rnn", nao.get_space("nao-rnn").parse(RNN_ARCH), vocab_size=20)
    assert lm.config == LMConfig()
    with pytest.raises(nao.UserError, match="not a recurrent cell space"):
        build_rnn("nao-cnn", arch, vocab_size=20)
