"""`nao search`: strategies over one evaluator and budget, configs, and crash-proof run directories."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import SMALL, write_results_csv

import nao
from nao.cli import main
from nao.config import from_dict
from nao.errors import UserError
from nao.registry import task_for
from nao.search import load_config, run_search
from nao.search.evaluators import StaticEvaluator, make_evaluator
from nao.search.rundir import RunDir
from nao.spaces import RecurrentSpace
from nao.tasks.synthetic import SyntheticBenchmark

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NB301 = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb301"
TOY_NAO = {"seed_archs": 16, "new_per_iteration": 12, "top_k": 8, "epochs": 150, "controller": SMALL}


def synthetic_config(strategy: str, seed: int = 0, budget: int = 40, **extra):
    settings = {"evaluator.type": "synthetic", "nao": json.dumps(TOY_NAO)} | extra
    return load_config(None, [f"strategy={strategy}", f"seed={seed}", f"budget={budget}",
                              *[f"{k}={v}" for k, v in settings.items()]])


def best_scores(strategy: str, seeds: range, tmp_path, **extra) -> list[float]:
    return [run_search(synthetic_config(strategy, seed, **extra), tmp_path / f"{strategy}{seed}",
                       progress=False)["best_metric"] for seed in seeds]


def history(path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in map(asdict, RunDir(path).read_history())]


@pytest.fixture(scope="module")
def toy_table(tmp_path_factory):
    """Every arch of a 3-node recurrent space (canonical = itself) with a synthetic score."""
    space = nao.register_space(RecurrentSpace(name="toy-rnn", n_nodes=3), overwrite=True)
    bench = SyntheticBenchmark(space)
    grids = [range(size) for size in space._sizes]
    archs = [tuple(int(v) for v in a) for a in np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(grids), -1).T]
    path = tmp_path_factory.mktemp("toy") / "table.csv"
    write_results_csv(path, space, [(a, bench.score(a)) for a in archs])
    return path, np.array([bench.score(a) for a in archs])


def test_random_search_finds_the_best_the_table_predicts(toy_table, tmp_path):
    """E[max of n distinct uniform draws] = sum_i v_(i) * (C(i-1, n-1) / C(N, n)), v sorted ascending."""
    path, values = toy_table
    budget, runs = 20, 150
    ordered = np.sort(values)
    n_total = len(ordered)
    expected = sum(ordered[i] * math.comb(i, budget - 1) for i in range(n_total)) / math.comb(n_total, budget)
    found = [run_search(load_config(None, ["space=toy-rnn", "strategy=random", f"seed={seed}", f"budget={budget}",
                                           f"evaluator.path={path}"]), tmp_path / str(seed), progress=False)
             ["best_metric"] for seed in range(runs)]
    stderr = np.std(found) / np.sqrt(runs)
    assert abs(np.mean(found) - expected) < 4 * stderr


def test_every_strategy_spends_the_budget_on_distinct_archs(tmp_path):
    space = nao.get_space("nb201")
    for strategy in ("random", "evolution", "nao"):
        summary = run_search(synthetic_config(strategy, budget=30), tmp_path / strategy, progress=False)
        records = RunDir(tmp_path / strategy).read_history()
        assert summary["evaluated"] == len(records) == 30
        assert len({space.canonical(space.parse(r.arch)) for r in records}) == 30
        assert summary["best_metric"] == max(r.metrics["score"] for r in records)


def test_evolution_with_a_batch_makes_that_many_children_per_step(tmp_path):
    space = nao.get_space("nb201")
    config = synthetic_config("evolution", budget=32, **{"evolution.population": 12, "evolution.batch": 5})
    run_search(config, tmp_path / "run", progress=False)
    records = RunDir(tmp_path / "run").read_history()
    per_stage = np.bincount([r.stage for r in records])[1:]
    assert per_stage.tolist() == [12, 5, 5, 5, 5]  # the population, then batches of 5 (the last one cut short)
    assert [r.source for r in records[12:]] == ["mutation"] * 20
    assert len({space.canonical(space.parse(r.arch)) for r in records}) == 32
    with pytest.raises(UserError, match=r"evolution\.batch: must be at least 1"):
        synthetic_config("evolution", **{"evolution.batch": 0})


class HiddenTargetEvaluator(StaticEvaluator):
    """Score = share of positions equal to a hidden target arch: known optimum 1.0 (a OneMax)."""

    metric, report_metric, minimize = "score", None, False

    def __init__(self, space, config, **_) -> None:
        self.target = np.array(space.sample(np.random.default_rng(1234)))

    def evaluate(self, arch) -> dict[str, float]:
        return {"score": float(np.mean(np.array(arch) == self.target))}

    def candidates(self) -> None:
        return None


def test_nao_and_evolution_beat_random_on_a_known_score_function(tmp_path, monkeypatch):
    nao.register_evaluator("hidden-target", HiddenTargetEvaluator, config=nao.EvaluatorConfig, overwrite=True)
    toy = {"seed_archs": 20, "new_per_iteration": 10, "top_k": 10, "epochs": 200, "controller": SMALL}
    common = {"space": "nao-rnn", "evaluator.type": "hidden-target", "nao": json.dumps(toy),
              "evolution.population": 10, "evolution.tournament": 3}
    seeds = range(4)
    found = {strategy: np.mean(best_scores(strategy, seeds, tmp_path, budget=80, **common))
             for strategy in ("random", "evolution", "nao")}
    assert found["nao"] > found["random"] + 0.02
    assert found["evolution"] > found["random"] + 0.02


def test_nao_records_where_each_arch_came_from_and_its_prediction(tmp_path):
    run_search(synthetic_config("nao"), tmp_path / "run", progress=False)
    records = RunDir(tmp_path / "run").read_history()
    assert {r.source for r in records[:16]} == {"seed"} and all(r.predicted is None for r in records[:16])
    later = records[16:]
    assert {r.source for r in later} <= {"nao", "random-fill"} and "nao" in {r.source for r in later}
    assert all(r.predicted is not None for r in later)
    assert [r.iteration for r in later] == sorted(r.iteration for r in later)
    assert (tmp_path / "run" / "controller").is_dir()


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(UserError, match=r"unknown config key 'nao\.epoch'"):
        load_config(None, ["nao.epoch=3"])
    with pytest.raises(UserError, match="budget: expected int"):
        load_config(None, ["budget=many"])
    with pytest.raises(UserError, match="strategy: unknown strategy 'bayes'"):
        load_config(None, ["strategy=bayes"])
    for key, value, least in [("workers", 0, 1), ("retries", -1, 0), ("budget", 0, 1), ("evolution.batch", 0, 1)]:
        with pytest.raises(UserError, match=rf"^{key}: must be at least {least}, got {value}$"):
            load_config(None, [f"{key}={value}"])  # whatever the executor or strategy
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: nb201\nbudget: [1\n")
    with pytest.raises(UserError, match=r"bad\.yaml:3"):
        load_config(bad, [])


def test_cli_search_prints_the_summary_and_refuses_a_second_run_into_the_same_dir(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"strategy": "random", "budget": 12, "evaluator": {"type": "synthetic"}}))
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["evaluated"] == 12 and "best_arch" in summary and "best_metric" in summary
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["search", str(config), "seed=1", "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "different config (seed: 0 in the run, 1 now)" in capsys.readouterr().err
    assert main(["search", str(config), "budget=11", "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "smaller budget (12 in the run, 11 now)" in capsys.readouterr().err
    assert main(["search", str(config), "--out", str(tmp_path / "run"), "--resume"]) == 0  # already finished


def test_a_run_saved_before_a_config_key_existed_resumes_with_its_default(tmp_path):
    """Also a run saved when every evaluator key was saved whatever its type (``path: null``, ``task: {}``)."""
    run_search(synthetic_config("random", budget=5), tmp_path / "run", progress=False)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    del saved["plugins"]
    saved["evaluator"] |= {"path": None, "task": {}}
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    assert run_search(synthetic_config("random", budget=6), tmp_path / "run", resume=True,
                      progress=False)["evaluated"] == 6


def test_resume_with_a_larger_budget_extends_the_run_as_if_started_with_it(tmp_path):
    """Stages line up (16 seed archs + 12 per iteration), so extending 28 -> 40 equals a 40-budget run."""
    run_search(synthetic_config("nao", budget=28), tmp_path / "extended", progress=False)
    summary = run_search(synthetic_config("nao", budget=40), tmp_path / "extended", resume=True, progress=False)
    run_search(synthetic_config("nao", budget=40), tmp_path / "direct", progress=False)
    assert summary["evaluated"] == 40
    assert history(tmp_path / "extended") == history(tmp_path / "direct")
    assert yaml.safe_load((tmp_path / "extended" / "config.yaml").read_text())["budget"] == 40


def test_a_run_in_use_by_a_live_process_is_refused(tmp_path):
    holder = RunDir(tmp_path / "run")
    holder.lock()
    try:
        with pytest.raises(UserError, match="in use by a running search"):
            run_search(synthetic_config("random"), tmp_path / "run", resume=True, progress=False)
    finally:
        holder.unlock()


def test_a_history_line_cut_short_by_a_kill_is_dropped(tmp_path):
    run_search(synthetic_config("random", budget=5), tmp_path / "run", progress=False)
    path = tmp_path / "run" / "history.jsonl"
    path.write_bytes(path.read_bytes() + b'{"arch": "|none~0|+')
    assert len(RunDir(tmp_path / "run").read_history()) == 5
    assert path.read_bytes().endswith(b"}\n")


def test_resume_after_sigkill_at_random_moments_ends_exactly_like_an_uninterrupted_run(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"strategy": "nao", "budget": 40, "seed": 5, "evaluator": {"type": "synthetic"},
                                      "nao": TOY_NAO}))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "nao", "search", str(config)]
    subprocess.run([*command, "--out", str(tmp_path / "straight")], env=env, check=True, capture_output=True)
    rng = np.random.default_rng(0)
    kills = 0
    for attempt in range(6):  # up to 5 kills at random moments, then a run to the end (however loaded the machine)
        proc = subprocess.Popen([*command, "--out", str(tmp_path / "killed"), "--resume"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=float(rng.uniform(1.0, 4.0)) if attempt < 5 else None)  # python + torch start ~1.5 s
            break
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert proc.returncode == 0 and kills >= 2
    assert history(tmp_path / "killed") == history(tmp_path / "straight")


def test_wandb_logger_runs_offline_without_an_account(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_search(synthetic_config("random", budget=6, logger="wandb"), tmp_path / "run", progress=False)
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    stages = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert stages[-1]["evaluated"] == 6


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    """Search configs load and build their evaluator (data is only read when first needed); training configs
    (those with an ``arch`` key) load into their task's ``FinalConfig``."""
    data = yaml.safe_load(path.read_text())
    if "arch" in data:
        space = nao.get_space(data["space"])
        from_dict(task_for(space, needs="final", key="space").final.Config, data)
    else:
        config = load_config(path, [])
        if config.evaluator.type == "nb301":  # it names the surrogate's folder on the command line
            pytest.importorskip("onnxruntime")
            if not NB301.is_dir():
                pytest.skip("../shared/data/nb301 is absent")
            config.evaluator.path = str(NB301)
        if config.evaluator.type != "table":  # a table config names its file on the command line
            make_evaluator(nao.get_space(config.space), config.evaluator)
