"""RNN task: the highway cell (level-scheduled, fixed and shared weights) and the cell language model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import yaml

import nao
from nao.tasks.rnn.cells import ACTIVATIONS, FixedRecurrentCell, SharedRecurrentCell, schedule
from nao.tasks.rnn.model import LMConfig, fixed_model, supernet_model

SPACE = nao.get_space("nao-rnn")
NAO_WS_PTB = SPACE.parse("0 1 1 1 2 2 1 2 4 1 4 1 4 1 7 1 8 2 1 0 4 1")  # nao-facts §6.4


def archs(n: int, seed: int = 0) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def reference_cell(cell: FixedRecurrentCell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The cell's equations node by node, step by step (nao-facts §2), without any batching trick."""
    outputs = []
    for x_t in x:
        c0, h0 = torch.cat([x_t, h], dim=1).mm(torch.cat([cell.w_x, cell.w_h])).chunk(2, dim=1)
        states = [h + torch.sigmoid(c0) * (torch.tanh(h0) - h)]
        for i, (pred, act) in enumerate(SPACE.nodes(cell.arch), start=1):
            c, g = states[pred].mm(cell.w_nodes[i - 1]).chunk(2, dim=1)
            states.append(states[pred] + torch.sigmoid(c) * (ACTIVATIONS[SPACE.activations[act]](g) - states[pred]))
        h = torch.stack(states[1:]).mean(dim=0)  # mean of nodes 1..11
        outputs.append(h)
    return torch.stack(outputs)


@pytest.mark.parametrize("arch", [NAO_WS_PTB, *archs(4)])
def test_the_level_scheduled_cell_computes_the_cell_equations(arch):
    cell = FixedRecurrentCell(SPACE, arch, input_size=6, hidden=8)
    x, h = torch.randn(5, 3, 6), torch.randn(3, 8)
    assert torch.allclose(cell(x, h), reference_cell(cell, x, h), atol=1e-6)


def test_levels_follow_predecessors():
    levels = schedule(SPACE, NAO_WS_PTB)
    level_of = {0: 0} | {i: k + 1 for k, lv in enumerate(levels) for i in lv.nodes}
    for i, (pred, _) in enumerate(SPACE.nodes(NAO_WS_PTB), start=1):
        assert level_of[i] == level_of[pred] + 1
    assert sorted(i for lv in levels for i in lv.nodes) == list(range(1, 12))


def test_the_shared_cell_with_an_archs_weights_is_that_archs_cell():
    shared = SharedRecurrentCell(SPACE, input_size=6, hidden=8)
    x, h = torch.randn(4, 2, 6), torch.randn(2, 8)
    for arch in archs(3, seed=1):
        fixed = FixedRecurrentCell(SPACE, arch, input_size=6, hidden=8)
        with torch.no_grad():
            fixed.w_x.copy_(shared.w_x)
            fixed.w_h.copy_(shared.w_h)
            for i, (pred, _) in enumerate(SPACE.nodes(arch), start=1):
                fixed.w_nodes[i - 1].copy_(shared.node_weight(i, pred))
        assert torch.allclose(shared(x, h, arch), fixed(x, h), atol=1e-6)


def test_a_shared_cell_step_trains_only_the_weights_of_its_arch():
    shared = SharedRecurrentCell(SPACE, input_size=6, hidden=8)
    arch = archs(1, seed=2)[0]
    shared(torch.randn(3, 2, 6), torch.zeros(2, 8), arch).sum().backward()
    used = {(i, pred) for i, (pred, _) in enumerate(SPACE.nodes(arch), start=1)}
    for i in range(1, 12):
        for pred in range(i):
            assert (shared.node_weight(i, pred).grad is not None) == ((i, pred) in used), (i, pred)


def test_the_language_model_ties_its_decoder_and_drops_out_only_in_training():
    config = LMConfig(size=8, dropoute=0.1)
    model = fixed_model(SPACE, NAO_WS_PTB, vocab_size=20, config=config)
    tokens = torch.randint(0, 20, (5, 3))
    logits, outputs = model(tokens, model.init_hidden(3))
    assert logits.shape == (5, 3, 20) and outputs.shape == (5, 3, 8)
    assert not any(p.shape == (20, 8) for n, p in model.named_parameters() if n != "embedding.weight")
    model.eval()
    first = model(tokens, model.init_hidden(3))[0]
    assert torch.equal(first, model(tokens, model.init_hidden(3))[0])
    model.train()
    assert not torch.equal(first, model(tokens, model.init_hidden(3))[0])


def test_the_supernet_language_model_runs_any_arch():
    model = supernet_model(SPACE, vocab_size=20, config=LMConfig(size=8))
    tokens = torch.randint(0, 20, (4, 2))
    a, b = archs(2, seed=3)
    model.eval()
    assert not torch.allclose(model(tokens, model.init_hidden(2), a)[0], model(tokens, model.init_hidden(2), b)[0])


def write_corpus(folder, lines: int = 300) -> None:
    """A tiny corpus with a learnable pattern: each sentence counts up from a random start word."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", lines), ("valid", lines // 5), ("test", lines // 5)):
        text = []
        for _ in range(n):
            start = int(rng.integers(0, 6))
            text.append(" ".join(words[start:start + 5]))
        (folder / f"{split}.txt").write_text("\n".join(text) + "\n")


def train_config(tmp_path, **train) -> str:
    import yaml

    write_corpus(tmp_path / "corpus")
    config = {"space": "nao-rnn", "arch": SPACE.format(NAO_WS_PTB), "seed": 0,
              "data": {"name": "ptb", "dir": str(tmp_path / "corpus"), "download": False},
              "model": {"size": 16, "dropout": 0.1, "dropouth": 0.1, "dropoutx": 0.1, "dropouti": 0.1},
              "train": {"epochs": 3, "batch_size": 8, "eval_batch_size": 4, "bptt": 10, "lr": 5.0,
                        "nonmono": 1} | train}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_nao_train_learns_a_corpus_reports_test_perplexity_once_and_resumes(tmp_path, capsys):
    import json

    from nao.cli import main

    config, out = train_config(tmp_path, epochs=3, lr=15.0), str(tmp_path / "run")
    assert main(["train", config, "--out", out]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["epochs"] == 3 and result["test_ppl"] < 6  # 13 words; a uniform guess is 13
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3] and all("test_ppl" not in m for m in lines)
    assert main(["train", config, "train.epochs=4", "--out", out, "--resume"]) == 2
    assert "different config (train.epochs: 3 in the run, 4 now)" in capsys.readouterr().err


def test_training_resumes_exactly_and_switches_to_averaging_when_validation_stalls(tmp_path):
    from nao.tasks.rnn.train import LMTrainConfig, LMTrainer
    from nao.tasks.text import load_corpus

    write_corpus(tmp_path / "corpus")
    corpus = load_corpus("ptb", data_dir=tmp_path / "corpus", download=False)
    config = LMTrainConfig(batch_size=8, bptt=10, lr=5.0, nonmono=1)

    def trainer() -> LMTrainer:
        torch.manual_seed(0)
        model = fixed_model(SPACE, NAO_WS_PTB, corpus.vocab_size, LMConfig(size=16, dropout=0.1))
        return LMTrainer(model, corpus, config, seed=0, device=torch.device("cpu"))

    straight = trainer()
    for loss in (3.0, 2.0):
        straight.train_epoch()
        straight.end_epoch(loss)
    assert not straight.averaging
    straight.end_epoch(3.5)  # worse than the best before the last epoch: switch
    assert straight.averaging and isinstance(straight.optimizer, torch.optim.ASGD)
    straight.train_epoch()
    resumed = trainer()
    resumed.train_epoch()
    resumed.end_epoch(3.0)
    state = resumed.state_dict()
    resumed = trainer()
    resumed.load_state_dict(state)
    resumed.train_epoch()
    resumed.end_epoch(2.0)
    resumed.end_epoch(3.5)
    resumed.train_epoch()
    for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    before = [p.clone() for p in straight.model.parameters()]
    with straight.averaged_weights():
        assert any(not torch.equal(p, b) for p, b in zip(straight.model.parameters(), before, strict=True))
    assert all(torch.equal(p, b) for p, b in zip(straight.model.parameters(), before, strict=True))


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_the_learning_rate_follows_its_schedule_over_the_whole_training(tmp_path, schedule):
    from nao.tasks.rnn.train import LMTrainConfig, LMTrainer
    from nao.tasks.text import load_corpus

    write_corpus(tmp_path / "corpus")
    corpus = load_corpus("ptb", data_dir=tmp_path / "corpus", download=False)
    config = LMTrainConfig(epochs=2, batch_size=8, bptt=10, variable_length=False, lr=5.0, lr_schedule=schedule)
    model = fixed_model(SPACE, NAO_WS_PTB, corpus.vocab_size, LMConfig(size=16, dropout=0.1))
    trainer = LMTrainer(model, corpus, config, seed=0, device=torch.device("cpu"))
    rates = []
    trainer.optimizer.step = lambda: rates.append(trainer.optimizer.param_groups[0]["lr"])  # record, do not train
    trainer.train_epoch()
    first_epoch = len(rates)
    trainer.train_epoch()
    full_windows = rates[:first_epoch - 1] + rates[first_epoch:-1]  # each epoch's last window is shorter
    if schedule == "constant":
        assert full_windows == [5.0] * len(full_windows)
    else:
        assert rates[0] == 5.0 and rates[-1] < 0.05  # from lr down to (nearly) zero
        assert all(a > b for a, b in itertools.pairwise(full_windows))
        assert rates[first_epoch] == pytest.approx(2.5, abs=0.05)  # half-way: half the rate


def test_an_unknown_learning_rate_schedule_is_refused_naming_the_key(tmp_path, capsys):
    from nao.cli import main

    assert main(["train", train_config(tmp_path), "train.lr_schedule=step", "--out", str(tmp_path / "run")]) == 2
    assert "train.lr_schedule: must be one of constant, cosine, got 'step'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def search_config(tmp_path, evaluator: str, budget: int, **extra):
    import json

    from conftest import SMALL

    from nao.search import load_config

    write_corpus(tmp_path / "corpus")
    task = {"data": {"name": "ptb", "dir": str(tmp_path / "corpus"), "download": False},
            "model": {"size": 16, "dropout": 0.1, "dropouth": 0.1, "dropoutx": 0.1, "dropouti": 0.1},
            "train": {"epochs": 1, "batch_size": 8, "eval_batch_size": 4, "bptt": 10, "lr": 5.0},
            "valid_windows": 3}
    nao_config = {"seed_archs": 6, "new_per_iteration": 4, "top_k": 4, "epochs": 20, "controller": SMALL}
    settings = {"space": "nao-rnn", "strategy": "nao", "budget": budget, "evaluator.type": evaluator,
                "evaluator.task": json.dumps(task), "nao": json.dumps(nao_config)} | extra
    return load_config(None, [f"{k}={v}" for k, v in settings.items()])


def test_an_rnn_supernet_search_minimises_perplexity_and_resumes_like_an_uninterrupted_run(tmp_path):
    from nao.report import load_run, summary_rows
    from nao.search import run_search
    from nao.search.rundir import RunDir

    direct = run_search(search_config(tmp_path, "supernet", 14), tmp_path / "direct", progress=False)
    assert len(list((tmp_path / "direct" / "supernet").glob("stage*.pt"))) == 3
    run_search(search_config(tmp_path, "supernet", 10), tmp_path / "extended", progress=False)
    extended = run_search(search_config(tmp_path, "supernet", 14), tmp_path / "extended", resume=True,
                          progress=False)
    assert extended == direct | {"run_dir": str(tmp_path / "extended")}
    scores = [r.metrics["valid_ppl"] for r in RunDir(tmp_path / "direct").read_history()]
    assert all(1 < s < 50 for s in scores) and len(set(scores)) > 1
    assert direct["best_metric"] <= min(scores[-4:])  # re-scored with the last weights; lower is better
    [row] = summary_rows([load_run(tmp_path / "direct")])  # `nao report` shows the re-scored values too
    assert row["best_valid_ppl"] == direct["best_metric"] and row["best_arch"] == direct["best_arch"]


def test_a_run_saved_before_a_task_key_existed_resumes_with_its_default(tmp_path):
    from nao.search import run_search

    run_search(search_config(tmp_path, "standalone", 1, strategy="random"), tmp_path / "run", progress=False)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    del saved["evaluator"]["task"]["sampling"], saved["evaluator"]["minimize"]  # keys added by a later version
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    summary = run_search(search_config(tmp_path, "standalone", 2, strategy="random"), tmp_path / "run", resume=True,
                         progress=False)
    assert summary["evaluated"] == 2


def test_an_rnn_standalone_search_trains_each_cell(tmp_path):
    from nao.search import run_search

    summary = run_search(search_config(tmp_path, "standalone", 2, strategy="random"), tmp_path / "run",
                         progress=False)
    assert summary["evaluated"] == 2 and summary["best_metric"] > 1


@pytest.mark.parametrize("sampling", ["pool", "space"])
def test_the_supernet_trains_the_pools_cells_or_any_cell_of_the_space(tmp_path, sampling):
    from nao.search.evaluators import make_evaluator

    space = nao.get_space("nao-rnn")
    config = search_config(tmp_path, "supernet", 4, **{"evaluator.task.sampling": sampling})
    evaluator = make_evaluator(space, config.evaluator, run_path=tmp_path)
    arch = space.sample(np.random.default_rng(0))
    before = [w.detach().clone() for w in evaluator.supernet.cell.w_nodes]
    evaluator.train([arch], seed=0, progress=False)
    changed = sum(not torch.equal(a, b) for a, b in zip(before, evaluator.supernet.cell.w_nodes, strict=True))
    if sampling == "pool":
        assert changed == space.n_nodes  # one matrix per node: the pool's one cell
    else:
        assert changed > space.n_nodes


def test_an_unknown_supernet_sampling_is_refused_naming_the_key(tmp_path):
    from nao.config import ConfigError
    from nao.search.evaluators import make_evaluator

    config = search_config(tmp_path, "supernet", 4, **{"evaluator.task.sampling": "loss"})
    with pytest.raises(ConfigError, match=r"evaluator\.task\.sampling: must be one of pool, space, got 'loss'"):
        make_evaluator(nao.get_space("nao-rnn"), config.evaluator)


def test_valid_windows_below_one_is_refused_naming_the_key(tmp_path):
    from nao.config import ConfigError
    from nao.search.evaluators import make_evaluator

    config = search_config(tmp_path, "supernet", 4, **{"evaluator.task.valid_windows": 0})
    with pytest.raises(ConfigError, match=r"evaluator\.task\.valid_windows: must be at least 1 \(or null: all\), "
                                          r"got 0"):
        make_evaluator(nao.get_space("nao-rnn"), config.evaluator)
