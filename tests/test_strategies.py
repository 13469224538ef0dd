"""The baseline strategies (local search, BANANAS, REINFORCE) and tables that hold one arch per network."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import SMALL, write_results_csv

import nao
from nao.config import ConfigError, from_dict
from nao.controller.targets import TargetScaler
from nao.predictors.ensemble import EnsembleConfig, EnsemblePredictor
from nao.search import load_config, run_search
from nao.search.evaluators import StaticEvaluator, make_evaluator, parse_evaluator_config
from nao.search.reinforce import Policy
from nao.search.rundir import RunDir
from nao.search.strategies import NAOConfig, NAOStrategy
from nao.spaces import CellSpace, get_space
from nao.tasks.synthetic import SyntheticBenchmark

FAST = {"bananas.ensemble": json.dumps({"epochs": 20, "layers": 3}), "bananas.initial": 6, "bananas.batch": 4,
        "reinforce.batch": 4, "local.initial": 2}
NEW_STRATEGIES = ("local", "bananas", "reinforce")
NAO_ITS = json.dumps({"seed_archs": 6, "new_per_iteration": 4, "top_k": 4, "epochs": 30, "warm_epochs": 10,
                      "mutants": 30, "acquisition": "its", "controller": SMALL | {"predictor_heads": 3}})


def config(strategy: str, *, seed: int = 0, budget: int = 24, **extra):
    settings = {"evaluator.type": "synthetic", "strategy": strategy, "seed": seed, "budget": budget} | FAST | extra
    return load_config(None, [f"{k}={v}" for k, v in settings.items()])


def history(path) -> list[dict]:
    return [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in RunDir(path).read_history()]


@pytest.mark.parametrize("strategy", NEW_STRATEGIES)
def test_each_spends_the_budget_on_distinct_archs_and_reports_the_best(strategy, tmp_path):
    space = get_space("nb201")
    summary = run_search(config(strategy), tmp_path / "run", progress=False)
    records = RunDir(tmp_path / "run").read_history()
    assert summary["evaluated"] == len(records) == 24
    assert len({space.canonical(space.parse(r.arch)) for r in records}) == 24
    assert summary["best_metric"] == max(r.metrics["score"] for r in records)


class CrashAfter(StaticEvaluator):
    """The synthetic benchmark, but the process 'dies' (KeyboardInterrupt) at evaluation number ``crash_at``."""

    metric, report_metric, minimize = "score", None, False
    crash_at: int | None = None

    def __init__(self, space, config, **_) -> None:
        self.benchmark, self.count = SyntheticBenchmark(space), 0

    def evaluate(self, arch) -> dict[str, float]:
        self.count += 1
        if self.count == type(self).crash_at:
            raise KeyboardInterrupt
        return {"score": self.benchmark.score(arch)}

    def candidates(self) -> None:
        return None


@pytest.mark.parametrize("strategy, extra", [(s, {}) for s in NEW_STRATEGIES] + [("local", {"local.step": 0}),
                                                                                 ("nao", {"nao": NAO_ITS})])
def test_a_run_cut_mid_batch_resumes_to_where_the_uninterrupted_run_ends(strategy, extra, tmp_path, monkeypatch):
    nao.register_evaluator("crash-after", CrashAfter, config=nao.EvaluatorConfig, overwrite=True)
    settings = {"evaluator.type": "crash-after"} | extra
    straight = run_search(config(strategy, **settings), tmp_path / "straight", progress=False)
    for crash_at in (9, 8):  # mid-batch twice: the second resume starts from a resumed run's state
        monkeypatch.setattr(CrashAfter, "crash_at", crash_at)
        with pytest.raises(KeyboardInterrupt):
            run_search(config(strategy, **settings), tmp_path / "cut", resume=True, progress=False)
    monkeypatch.setattr(CrashAfter, "crash_at", None)
    resumed = run_search(config(strategy, **settings), tmp_path / "cut", resume=True, progress=False)
    assert history(tmp_path / "cut") == history(tmp_path / "straight")
    assert resumed["best_metric"] == straight["best_metric"]


def test_local_search_with_step_0_evaluates_the_whole_neighbourhood_then_moves_to_its_best(tmp_path):
    space = get_space("nb201")
    run_search(config("local", budget=60, **{"local.initial": 1, "local.step": 0}), tmp_path / "run",
               progress=False)
    records = RunDir(tmp_path / "run").read_history()
    start = space.parse(records[0].arch)
    first = [r for r in records if r.stage == 2]  # stage 1 is the random start
    expected = {space.canonical(a) for a in space.neighbours(start)} - {space.canonical(start)}
    assert {space.canonical(space.parse(r.arch)) for r in first} == expected
    best = max(first, key=lambda r: r.metrics["score"])
    if best.metrics["score"] > records[0].metrics["score"]:  # it moved: the next stage is the best's neighbourhood
        second = {space.canonical(space.parse(r.arch)) for r in records if r.stage == 3}
        around_best = {space.canonical(a) for a in space.neighbours(space.parse(best.arch))}
        assert second and second <= around_best


def test_local_search_with_a_neighbour_limit_samples_that_many(tmp_path):
    settings = {"local.neighbours": 5, "local.initial": 1, "local.step": 0}
    run_search(config("local", budget=40, **settings), tmp_path / "run", progress=False)
    per_stage = np.bincount([r.stage for r in RunDir(tmp_path / "run").read_history()])[1:]
    assert per_stage[0] == 1 and (per_stage[1:-1] <= 5).all() and (per_stage[1:-1] > 0).all()


def test_local_search_with_step_1_moves_at_the_first_neighbour_that_improves(tmp_path):
    space = get_space("nb201")
    run_search(config("local", budget=80, **{"local.initial": 1, "local.step": 1}), tmp_path / "run",
               progress=False)
    records = RunDir(tmp_path / "run").read_history()
    assert np.bincount([r.stage for r in records])[1:].max() == 1  # one arch per stage
    current, moves = records[0], 0
    for r in records[1:]:
        if r.source == "restart":
            current = r
            continue
        around = {space.canonical(a) for a in space.neighbours(space.parse(current.arch))}
        assert r.source == "neighbour" and space.canonical(space.parse(r.arch)) in around
        if r.metrics["score"] > current.metrics["score"]:
            current, moves = r, moves + 1
    assert moves >= 2


def test_local_search_restarts_from_the_best_of_initial_random_archs(tmp_path):
    space = get_space("nb201")
    run_search(config("local", budget=150, **{"local.initial": 3, "local.step": 1}), tmp_path / "run",
               progress=False)
    records = RunDir(tmp_path / "run").read_history()
    stages = {}
    for r in records:
        stages.setdefault(r.stage, []).append(r)
    restarts = [group for group in stages.values() if group[0].source == "restart"]
    assert restarts and all(len(group) == 3 for group in restarts[:-1])
    for group in restarts[:-1]:  # the climb goes on from the best of them
        following = stages[group[0].stage + 1][0]
        best = max(group, key=lambda r: r.metrics["score"])
        assert space.canonical(space.parse(following.arch)) in {
            space.canonical(a) for a in space.neighbours(space.parse(best.arch))}


def test_the_reinforce_policy_is_a_distribution_over_exactly_the_valid_archs():
    """Summed over every arch of a tiny DARTS-like space (distinct inputs), the policy's probabilities are 1."""
    space = CellSpace(name="tiny-distinct", ops=("a", "b"), n_nodes=2, distinct_inputs=True)
    policy = Policy(space, hidden_dim=8)
    with torch.no_grad():
        for p in policy.parameters():
            p.normal_()  # a far-from-uniform policy
    archs = [a for a in itertools.product(*[range(int(s)) for s in space._sizes])
             if all(a[k] != a[k + 2] for k in range(0, space.seq_len, 4))]
    tokens = torch.tensor([space.to_tokens(a) for a in archs])
    with torch.no_grad():
        log_p, entropy = policy.log_probs(tokens)
        sampled = policy.sample(200, torch.Generator().manual_seed(0))
    assert float(log_p.exp().sum()) == pytest.approx(1.0, abs=1e-4)
    assert (entropy > 0).all()
    assert all(space.is_valid_tokens(row) for row in sampled.tolist())


class HiddenTarget(StaticEvaluator):
    """Score = share of positions equal to a hidden arch: a OneMax, optimum 1.0."""

    metric, report_metric, minimize = "score", None, False

    def __init__(self, space, config, **_) -> None:
        self.target = np.array(space.sample(np.random.default_rng(1234)))

    def evaluate(self, arch) -> dict[str, float]:
        return {"score": float(np.mean(np.array(arch) == self.target))}

    def candidates(self) -> None:
        return None


def test_the_model_based_baselines_beat_random_search_on_a_known_score_function(tmp_path):
    """(Local search climbs one position per neighbourhood here: at 60 evaluations it is not ahead of random.)"""
    nao.register_evaluator("hidden-target-2", HiddenTarget, config=nao.EvaluatorConfig, overwrite=True)
    common = {"space": "nao-rnn", "evaluator.type": "hidden-target-2", "budget": 60}
    found = {s: np.mean([run_search(config(s, seed=seed, **common), tmp_path / f"{s}{seed}", progress=False)
                         ["best_metric"] for seed in range(4)]) for s in ("random", "bananas", "reinforce")}
    assert found["bananas"] > found["random"] + 0.1, found
    assert found["reinforce"] > found["random"] + 0.03, found


def test_the_bananas_ensemble_ranks_held_out_archs_and_knows_its_uncertainty():
    space = get_space("nb201")
    bench = SyntheticBenchmark(space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)]
    scores = np.array([bench.score(a) for a in archs])
    ensemble = EnsemblePredictor(space, EnsembleConfig(epochs=60, layers=3), seed=0)
    ensemble.fit(archs[:200], scores[:200])
    mean, std = ensemble.predict(archs[200:])
    assert np.corrcoef(mean, scores[200:])[0, 1] > 0.5 and (std > 0).all()
    refit = EnsemblePredictor(space, EnsembleConfig(epochs=60, layers=3), seed=0)
    refit.fit(archs[:200], scores[:200])
    assert np.array_equal(refit.predict(archs[200:])[0], mean)  # seeded: the same fit again


# ------------------------------------------------------------------------------- tables of one arch per network
@pytest.fixture(scope="module")
def canonical_table(tmp_path_factory):
    """Every network of a 1-node cell space once, as its canonical form (branches sorted), with a score."""
    space = nao.register_space(CellSpace(name="tiny-cell", ops=("a", "b", "c"), n_nodes=1), overwrite=True)
    archs = sorted({space.canonical(a) for a in itertools.product(*[range(int(s)) for s in space._sizes])})
    bench = SyntheticBenchmark(space)
    path = tmp_path_factory.mktemp("canonical") / "table.csv"
    write_results_csv(path, space, [(a, bench.score(a)) for a in archs])
    return space, path, {a: round(bench.score(a), 4) for a in archs}  # as the file has them


def test_another_representative_of_a_tabled_network_is_evaluated_as_that_network(canonical_table):
    space, path, scores = canonical_table
    evaluator = make_evaluator(space, parse_evaluator_config({"type": "table", "path": str(path)}))
    tabled = next(a for a in scores if space.equivalents(a) != [a])
    other = next(a for a in space.equivalents(tabled) if a != tabled)
    assert other not in scores and evaluator.evaluate(other) == {"score": scores[tabled]}


@pytest.mark.parametrize("strategy", ["evolution", "local", "bananas", "reinforce", "nao"])
def test_strategies_propose_other_representatives_of_tabled_networks(strategy, canonical_table, tmp_path):
    space, path, scores = canonical_table
    toy_nao = {"seed_archs": 8, "new_per_iteration": 6, "top_k": 6, "epochs": 40,
               "controller": {"embedding_dim": 8, "hidden_dim": 16, "mlp_dim": 16}}
    run = config(strategy, budget=30, space="tiny-cell", **{"evaluator.type": "table", "evaluator.path": path,
                                                            "evolution.population": 6, "nao": json.dumps(toy_nao)})
    run_search(run, tmp_path / "run", progress=False)
    records = RunDir(tmp_path / "run").read_history()
    archs = [space.parse(r.arch) for r in records]
    assert len(records) == 30 and len({space.canonical(a) for a in archs}) == 30
    assert all(r.metrics["score"] == scores[space.canonical(a)] for r, a in zip(records, archs, strict=True))
    assert any(a not in scores for a in archs)  # not dropped: evaluated as its tabled network


@pytest.mark.parametrize("mutants", [0, 30])
def test_nao_with_mutants_takes_the_best_predicted_of_its_proposals_and_the_top_archs_mutations(mutants, tmp_path):
    section = {"seed_archs": 6, "new_per_iteration": 4, "top_k": 4, "epochs": 30, "warm_epochs": 10,
               "mutants": mutants, "controller": SMALL}
    run_search(config("nao", budget=14, nao=json.dumps(section)), tmp_path / "run", progress=False)
    records = RunDir(tmp_path / "run").read_history()[6:]
    assert {r.source for r in records} <= ({"nao", "nao-mutation"} if mutants else {"nao", "random-fill"})
    if mutants:
        assert any(r.source == "nao-mutation" for r in records)
        for stage in (records[:4], records[4:]):  # one ranked batch per iteration, best predicted first
            predicted = [r.predicted for r in stage]
            assert predicted == sorted(predicted, reverse=True)


class HeadsStub:
    """A fitted controller's interface as ``NAOStrategy`` sees it: given heads' means and spreads."""

    def __init__(self, mean, std) -> None:
        self.mean, self.std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        self.scaler = TargetScaler(mean=0.0, std=1.0, sign=1.0)  # targets are the scores

    def predict_targets(self, archs):
        return self.mean[:len(archs)], self.std[:len(archs)]


@pytest.mark.parametrize("acquisition", ["greedy", "its"])
def test_nao_acquisition_greedy_takes_the_best_mean_its_draws_from_the_heads_spread(acquisition, tmp_path):
    section = from_dict(NAOConfig, json.loads(NAO_ITS) | {"acquisition": acquisition})
    space = get_space("nb201")
    candidates = [nao.Candidate(space.sample(np.random.default_rng(i)), "nao-mutation") for i in range(40)]
    context = nao.SearchContext(space=space, seed=0, minimize=False, run_path=tmp_path)
    picks = NAOStrategy(context, section)._best_predicted
    mean = np.linspace(0.0, 1.0, 40)  # the last candidate predicted best
    greedy_order = list(range(39, 29, -1))
    certain = picks(HeadsStub(mean, np.zeros(40)), candidates, 10)
    assert [c.arch for c in certain] == [candidates[i].arch for i in greedy_order]  # no spread: the best means
    assert [c.predicted for c in certain] == list(mean[greedy_order])
    uncertain = picks(HeadsStub(mean, np.full(40, 5.0)), candidates, 10)
    taken = {space.format(c.arch) for c in uncertain}
    best_means = {space.format(candidates[i].arch) for i in greedy_order}
    assert (taken == best_means) == (acquisition == "greedy")  # its: a wide spread takes other candidates too


def test_nao_its_without_heads_or_mutants_is_refused_naming_the_key():
    no_heads, no_mutants = {"mutants": 30}, {"controller": {"predictor_heads": 3}}
    for section in (no_heads, no_mutants):
        with pytest.raises(ConfigError, match=r"nao\.acquisition: 'its' needs"):
            config("nao", nao=json.dumps(section | {"acquisition": "its"}))


class EnsembleStub:
    """A fitted BANANAS ensemble's interface as ``NAOStrategy`` sees it: given means."""

    def __init__(self, mean) -> None:
        self.mean = np.asarray(mean, dtype=float)

    def predict(self, archs):
        return self.mean[:len(archs)], np.zeros(len(archs))


def test_nao_with_ensemble_ranks_takes_the_best_sums_of_both_predictors_ranks(tmp_path):
    section = from_dict(NAOConfig, json.loads(NAO_ITS) | {"acquisition": "greedy", "ensemble_ranks": True})
    space = get_space("nb201")
    candidates = [nao.Candidate(space.sample(np.random.default_rng(i)), "nao-mutation") for i in range(5)]
    context = nao.SearchContext(space=space, seed=0, minimize=False, run_path=tmp_path)
    picks = NAOStrategy(context, section)._best_predicted
    controller = HeadsStub([0.0, 0.1, 0.2, 0.3, 0.4], np.zeros(5))  # ranks 1..5: the last best
    ensemble = EnsembleStub([9.0, 0.0, 8.0, 1.0, 2.0])  # ranks 5, 1, 4, 2, 3: the first best
    picked = picks(controller, candidates, 2, ensemble)  # rank sums 6, 3, 7, 6, 8
    assert [c.arch for c in picked] == [candidates[4].arch, candidates[2].arch]
    assert [c.predicted for c in picked] == [0.4, 0.2]  # the controller's predictions, as without the ensemble
    alone = picks(controller, candidates, 2)
    assert [c.arch for c in alone] == [candidates[4].arch, candidates[3].arch]


def test_nao_with_ensemble_ranks_fits_the_ensemble_every_iteration_and_resumes_where_it_stopped(tmp_path):
    section = json.dumps({"seed_archs": 6, "new_per_iteration": 4, "top_k": 4, "epochs": 30, "warm_epochs": 10,
                          "mutants": 30, "ensemble_ranks": True, "ensemble": {"epochs": 20, "layers": 3},
                          "controller": SMALL})
    run_search(config("nao", budget=14, nao=section), tmp_path / "whole", progress=False)
    whole = history(tmp_path / "whole")
    assert {r["source"] for r in whole[6:]} <= {"nao", "nao-mutation"}
    run_search(config("nao", budget=10, nao=section), tmp_path / "cut", progress=False)
    run_search(config("nao", budget=14, nao=section), tmp_path / "cut", resume=True, progress=False)
    assert history(tmp_path / "cut") == whole


def test_nao_ensemble_ranks_without_mutants_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"nao\.ensemble_ranks: needs mutants"):
        config("nao", nao=json.dumps({"ensemble_ranks": True}))
