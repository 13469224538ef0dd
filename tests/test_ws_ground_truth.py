"""scripts/ws_ground_truth.py (cells trained standalone for a weight-sharing search's space) and
scripts/bench_ws_ranking.py --ground-truth (supernets measured against them), on tiny stripes searches."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import write_stripes
from scipy.stats import kendalltau, rankdata, spearmanr

import nao
from nao.search import load_config, run_search
from nao.search.evaluators import make_evaluator
from nao.tasks.cnn.evaluators import StandaloneEvaluator
from nao.tasks.cnn.proxies import proxy_scores
from nao.tasks.cnn.train import DataConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
ws_ground_truth = importlib.import_module("ws_ground_truth")
bench_ws_ranking = importlib.import_module("bench_ws_ranking")

SPACE = nao.get_space("nao-cnn")
FIELDS = {"arch", "valid_acc", "group", "train_seed", "epochs", "seconds"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two threads on two busy cores make a tiny training many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    """A supernet search of the stripes data: random strategy, so one stage and no controller to fit."""
    folder = tmp_path_factory.mktemp("ws")
    write_stripes(folder / "stripes")
    task = {"data": {"name": "mnist", "dir": str(folder / "stripes"), "valid_size": 60, "download": False},
            "network": {"channels": 4, "cells_per_stage": 1, "auxiliary": False},
            "train": {"epochs": 1, "batch_size": 32, "cutout": 0, "eval_batch_size": 64}, "valid_images": 20}
    path = folder / "ws.yaml"
    path.write_text(yaml.safe_dump({"space": "nao-cnn", "strategy": "random", "budget": 6, "seed": 0,
                                    "evaluator": {"type": "supernet", "task": task}}))
    return path


@pytest.fixture(scope="module")
def runs(config_file) -> list[Path]:
    """Two finished supernet searches (seeds 0 and 1)."""
    out = []
    for seed in (0, 1):
        out.append(config_file.parent / f"run{seed}")
        run_search(load_config(config_file, [f"seed={seed}"]), out[-1], progress=False)
    return out


def generate(config_file: Path, runs: list[Path], out: Path, *more: str) -> None:
    ws_ground_truth.main(["--config", str(config_file), "--random", "2", "--top", "3", "--epochs", "1",
                          "--out", str(out), "--runs", *map(str, runs), *more])


@pytest.fixture(scope="module")
def ground_truth(config_file, runs) -> Path:
    out = config_file.parent / "gt" / "ground_truth.jsonl"
    generate(config_file, runs, out)
    return out


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def final_ranking(run: Path) -> list[str]:
    """The run's archs best first by the scores its search saved after the last stage (ties in history order)."""
    scores = json.loads((run / "scores.json").read_text())["scores"]
    return sorted(scores, key=lambda arch: -scores[arch])  # stable: the saved order is the history's


def test_the_file_holds_random_cells_and_the_tops_of_each_runs_final_ranking_round_robin(ground_truth, runs):
    cells = lines(ground_truth)
    assert [c["group"] for c in cells] == ["random", "top:run0", "random", "top:run1", "top:run0"]
    for cell in cells:
        assert set(cell) == FIELDS | ({"supernet_rank"} if cell["group"] != "random" else set())
        assert (cell["train_seed"], cell["epochs"]) == (0, 1) and cell["seconds"] > 0
        assert 0 <= cell["valid_acc"] <= 100
    assert len({SPACE.canonical(SPACE.parse(c["arch"])) for c in cells}) == 5
    for run in runs:
        ranking = final_ranking(run)
        taken = [c for c in cells if c["group"] == f"top:{run.name}"]
        for cell in taken:
            assert ranking[cell["supernet_rank"] - 1] == cell["arch"]
        skipped = {c["arch"] for c in cells} - {c["arch"] for c in taken}  # taken earlier, by another group
        assert [c["arch"] for c in taken] == [a for a in ranking if a not in skipped][:len(taken)]
    header = json.loads(ground_truth.with_suffix(".json").read_text())
    evaluator = header["training"]["evaluator"]
    assert evaluator["type"] == "standalone" and evaluator["task"]["train"]["epochs"] == 1
    assert evaluator["task"]["data"]["train_images"] is None
    assert evaluator["task"]["valid_images"] == 60  # the whole validation split; the supernet scores on 20
    [invocation] = header["invocations"]
    assert invocation["command"].startswith("python scripts/ws_ground_truth.py --config ")
    assert invocation["commit"] and (invocation["random"], invocation["top"]) == (2, 3)


def count_trainings(monkeypatch) -> list:
    """The archs trained from now on (the list grows)."""
    trained, evaluate = [], StandaloneEvaluator.evaluate

    def counted(self, arch):
        trained.append(arch)
        return evaluate(self, arch)

    monkeypatch.setattr(StandaloneEvaluator, "evaluate", counted)
    return trained


def test_a_rerun_trains_nothing_and_a_last_line_cut_short_is_dropped_and_trained_again(
        ground_truth, config_file, runs, tmp_path, monkeypatch):
    out = tmp_path / "copy.jsonl"
    shutil.copy(ground_truth, out)
    shutil.copy(ground_truth.with_suffix(".json"), out.with_suffix(".json"))
    before, trained = out.read_text(), count_trainings(monkeypatch)
    generate(config_file, runs, out)
    assert trained == [] and out.read_text() == before
    assert len(json.loads(out.with_suffix(".json").read_text())["invocations"]) == 2

    cut = before[:before.rindex("\n", 0, -1) + 1] + before.splitlines(keepends=True)[-1][:30]  # a kill mid-line
    out.write_text(cut)
    generate(config_file, runs, out)
    assert [SPACE.format(a) for a in trained] == [lines(ground_truth)[-1]["arch"]]
    assert [c["arch"] for c in lines(out)] == [c["arch"] for c in lines(ground_truth)]


def test_more_random_cells_extend_the_file_with_the_same_first_ones(ground_truth, config_file, runs, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / "copy.jsonl"
    shutil.copy(ground_truth, out)
    shutil.copy(ground_truth.with_suffix(".json"), out.with_suffix(".json"))
    trained = count_trainings(monkeypatch)
    ws_ground_truth.main(["--config", str(config_file), "--random", "3", "--top", "0", "--epochs", "1",
                          "--out", str(out)])
    assert len(trained) == 1 and lines(out)[:5] == lines(ground_truth)
    assert lines(out)[5]["group"] == "random"


def test_other_training_settings_are_refused_in_one_line(ground_truth, config_file, runs, tmp_path, capsys):
    out = tmp_path / "copy.jsonl"
    shutil.copy(ground_truth, out)
    shutil.copy(ground_truth.with_suffix(".json"), out.with_suffix(".json"))
    with pytest.raises(SystemExit) as exit_:
        generate(config_file, runs, out, "--epochs", "2")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ws_ground_truth: error: {out} holds cells trained otherwise (evaluator.task.train.epochs: 1 in the run, "
        "2 now): choose another --out"]


def test_set_changes_the_config_the_cells_are_trained_with(ground_truth, config_file, runs, tmp_path, capsys,
                                                          monkeypatch):
    """A config whose supernet differs from the truth's networks (here: wider) extends the truth with --set."""
    wider = tmp_path / "wider.yaml"
    settings = yaml.safe_load(config_file.read_text())
    settings["evaluator"]["task"]["network"]["channels"] = 6
    wider.write_text(yaml.safe_dump(settings))
    out = tmp_path / "copy.jsonl"
    shutil.copy(ground_truth, out)
    shutil.copy(ground_truth.with_suffix(".json"), out.with_suffix(".json"))
    extend = ["--random", "3", "--top", "0", "--epochs", "1", "--out", str(out)]
    with pytest.raises(SystemExit):
        ws_ground_truth.main(["--config", str(wider), *extend])
    assert "evaluator.task.network.channels: 4 in the run, 6 now" in capsys.readouterr().err
    trained = count_trainings(monkeypatch)
    ws_ground_truth.main(["--config", str(wider), "--set", "evaluator.task.network.channels=4", *extend])
    assert len(trained) == 1 and lines(out)[:5] == lines(ground_truth)


def test_a_file_made_before_a_config_key_existed_is_extended_not_refused(ground_truth, config_file, runs,
                                                                          tmp_path, monkeypatch):
    out = tmp_path / "copy.jsonl"
    shutil.copy(ground_truth, out)
    header = json.loads(ground_truth.with_suffix(".json").read_text())
    del header["training"]["evaluator"]["task"]["warmup_epochs"]  # a key added after the file was made
    out.with_suffix(".json").write_text(json.dumps(header))
    trained = count_trainings(monkeypatch)
    ws_ground_truth.main(["--config", str(config_file), "--random", "3", "--top", "0", "--epochs", "1",
                          "--out", str(out)])
    assert len(trained) == 1 and lines(out)[:5] == lines(ground_truth)


def test_train_seed_trains_the_same_cells_with_another_seed_on_the_same_validation_images(
        ground_truth, config_file, runs, tmp_path, monkeypatch):
    seen, evaluate = [], StandaloneEvaluator.evaluate

    def recorded(self, arch):
        seen.append((self.seed, self.data.valid[0]))
        return evaluate(self, arch)

    monkeypatch.setattr(StandaloneEvaluator, "evaluate", recorded)
    out = tmp_path / "seed1.jsonl"
    generate(config_file, runs, out, "--train-seed", "1")
    assert [c["arch"] for c in lines(out)] == [c["arch"] for c in lines(ground_truth)]
    assert {c["train_seed"] for c in lines(out)} == {1} and {seed for seed, _ in seen} == {1}
    split = load_config(config_file, []).evaluator.task["data"]
    expected = DataConfig(**split).load(0).valid[0]  # the config's seed (0) draws the split
    assert all(torch.equal(images, expected) for _, images in seen)
    training = json.loads(out.with_suffix(".json").read_text())["training"]
    assert training["train_seed"] == 1 and training["evaluator"]["task"]["data"]["split_seed"] == 0


def noise_files(tmp_path: Path, first: list[float], second: dict[int, float]) -> tuple[Path, Path]:
    """A ground truth of cells "cell i" measured ``first[i]``, and a file of some of them (``second``) again."""
    paths = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    paths[0].write_text("".join(json.dumps({"arch": f"cell {i}", "valid_acc": v, "group": "random",
                                            "train_seed": 0}) + "\n" for i, v in enumerate(first)))
    paths[1].write_text("".join(json.dumps({"arch": f"cell {i}", "valid_acc": v, "train_seed": 1}) + "\n"
                                for i, v in second.items()))
    return paths


def test_truth_noise_compares_the_seeds_on_shared_cells_and_estimates_the_reachable_ranking(tmp_path, capsys):
    ws_truth_noise = importlib.import_module("ws_truth_noise")
    first = [80.0 + 0.5 * i for i in range(20)]
    off = [0.3, -0.1, 0.45, -0.4, 0.2, -0.3, 0.05, -0.25, 0.4, -0.35]  # under 0.5 up or down
    again = {i: first[i] + off[k] for k, i in enumerate(range(0, 20, 2))}  # 10 cells trained again
    ws_truth_noise.main([*map(str, noise_files(tmp_path, first, again)), "--simulations", "200"])
    result = json.loads(capsys.readouterr().out)
    once = np.array([first[i] for i in again])
    differences = np.array(list(again.values())) - once
    assert result["shared_cells"] == 10 and result["cells"] == 20 and result["train_seeds"] == [[0], [1]]
    assert result["repeat"]["kendall_tau"] == 1.0  # under 0.5 points of noise cannot swap cells 1 point apart
    assert result["noise_std"] == round(np.std(differences, ddof=1) / np.sqrt(2), 3)
    assert result["spread_std"] == round(np.std(first, ddof=1), 3)
    assert 0.5 < result["reachable"]["kendall_tau"] < 1.0  # neighbours 0.5 apart do swap under that noise
    low, high = result["noise_std_interval"]
    assert low <= result["noise_std"] <= high
    noisier, quieter = result["reachable_interval"]["kendall_tau"]
    assert noisier < result["reachable"]["kendall_tau"] < quieter

    exact = {i: first[i] for i in range(5)}
    ws_truth_noise.main([*map(str, noise_files(tmp_path, first, exact)), "--simulations", "5"])
    result = json.loads(capsys.readouterr().out)
    assert result["noise_std"] == 0.0 and result["noise_std_interval"] == [0.0, 0.0]
    assert result["reachable"]["kendall_tau"] == 1.0 and result["reachable_interval"]["kendall_tau"] == [1.0, 1.0]


def test_a_truth_averaged_over_both_seeds_is_reachable_further_than_one_seed(tmp_path, capsys):
    ws_truth_noise = importlib.import_module("ws_truth_noise")
    first = [80.0 + 0.5 * i for i in range(20)]
    rng = np.random.default_rng(0)
    again = {i: v + float(rng.normal(0.0, 0.4)) for i, v in enumerate(first)}  # every cell trained again
    ws_truth_noise.main([*map(str, noise_files(tmp_path, first, again)), "--simulations", "300"])
    result = json.loads(capsys.readouterr().out)
    one_seed, both = result["reachable"], result["reachable_mean_of_both"]
    assert both["kendall_tau"] > one_seed["kendall_tau"]  # half the noise variance: fewer swapped neighbours
    assert both["spearman"] > one_seed["spearman"]


def test_truth_noise_needs_three_shared_cells(tmp_path, capsys):
    ws_truth_noise = importlib.import_module("ws_truth_noise")
    first, second = noise_files(tmp_path, [80.0, 81.0, 82.0], {0: 80.5, 1: 81.2})
    with pytest.raises(SystemExit) as exit_:
        ws_truth_noise.main([str(first), str(second)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ws_truth_noise: error: {second}: 2 of its cells are in {first}; at least 3 are needed"]


@pytest.mark.parametrize("case", ["missing run", "run without supernet", "missing config", "table config"])
def test_bad_input_is_one_line_and_exit_status_2(case, config_file, runs, tmp_path, capsys):
    (tmp_path / "half").mkdir()
    shutil.copy(runs[0] / "config.yaml", tmp_path / "half" / "config.yaml")  # a search killed before its supernet
    (tmp_path / "table.yaml").write_text("space: nb201\nevaluator: {type: synthetic}\n")
    config, run, message = {
        "missing run": (config_file, tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: no such directory"),
        "run without supernet": (config_file, tmp_path / "half",
                                 f"{tmp_path / 'half'}: no supernet checkpoint stage0000.pt"),
        "missing config": (tmp_path / "none.yaml", runs[0], f"{tmp_path / 'none.yaml'}: No such file"),
        "table config": (tmp_path / "table.yaml", runs[0], "evaluator.type synthetic trains no networks"),
    }[case]
    with pytest.raises(SystemExit) as exit_:
        generate(config, [run], tmp_path / "gt.jsonl")
    assert exit_.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ws_ground_truth: error: ") and message in line
    assert not (tmp_path / "gt.jsonl").exists()


def test_search_seeds_run_the_missing_searches_once_and_take_their_tops(config_file, tmp_path, monkeypatch):
    argv = ["--config", str(config_file), "--random", "0", "--top", "1", "--epochs", "1", "--search-seeds", "3",
            "--search-dir", str(tmp_path / "searches"), "--out", str(tmp_path / "gt.jsonl")]
    ws_ground_truth.main(argv)
    run = tmp_path / "searches" / "search-seed3"
    [cell] = lines(tmp_path / "gt.jsonl")
    assert (cell["group"], cell["supernet_rank"], cell["arch"]) == ("top:search-seed3", 1, final_ranking(run)[0])
    searched = []
    monkeypatch.setattr(importlib.import_module("common"), "run_search", lambda *args, **kwargs: searched.append(args))
    ws_ground_truth.main(argv)
    assert searched == [] and len(lines(tmp_path / "gt.jsonl")) == 1


def test_ground_truth_metrics_on_a_ranking_made_by_hand():
    truth = np.arange(20.0)  # cell i measured i
    scores = truth.copy()
    scores[[0, 1, 2, 10, 11, 12]] = [10, 11, 12, 0, 1, 2]  # 3 bad cells among the supernet's top 10
    scores[16:] = [19, 18, 17, 16]  # the true top 20 % (4 cells) in reverse order
    is_random = truth % 2 == 0
    found = bench_ws_ranking.ground_truth_metrics(scores, truth, is_random)
    top50 = np.arange(10, 20)  # the true top 50 %
    assert found == {"kendall_tau": round(kendalltau(truth, scores)[0], 3),
                     "spearman": round(spearmanr(truth, scores)[0], 3), "kendall_tau_top20": -1.0,
                     "kendall_tau_top50": round(kendalltau(truth[top50], scores[top50])[0], 3),
                     "kendall_tau_random": round(kendalltau(truth[is_random], scores[is_random])[0], 3),
                     "precision_at_10": 0.7, "picked": 16.0, "picked_index": 16, "best": 19.0, "random_mean": 9.0}
    flipped = bench_ws_ranking.ground_truth_metrics(-scores, -truth, is_random, minimize=True)
    assert flipped == found | {"picked": -16.0, "best": -19.0, "random_mean": -9.0}


def test_the_benchmark_finds_a_perfect_ranking_where_the_truth_is_the_supernets_own_scores(runs, tmp_path, capsys):
    scores = json.loads((runs[0] / "scores.json").read_text())["scores"]
    path = tmp_path / "own.jsonl"
    path.write_text("".join(json.dumps({"arch": arch, "valid_acc": acc, "group": "random" if i % 2 else "top:run0"})
                            + "\n" for i, (arch, acc) in enumerate(scores.items())) + '{"arch": "1 2')  # cut short
    bench_ws_ranking.main([str(runs[0]), str(runs[1]), "--ground-truth", str(path)])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["cells"] == len(scores) and [r["run"] for r in result["runs"]] == list(map(str, runs))
    own = result["runs"][0]
    best = max(scores.values())
    assert (own["kendall_tau"], own["spearman"], own["precision_at_10"]) == (1.0, 1.0, 1.0)
    assert own["picked"] == own["best"] == round(best, 3) and scores[own["picked_arch"]] == best
    assert own["random_mean"] == round(np.mean(list(scores.values())[1::2]), 3)
    taus = [r["kendall_tau"] for r in result["runs"]]
    assert result["summary"]["kendall_tau"] == {"mean": round(np.mean(taus), 3), "std": round(np.std(taus, ddof=1), 3)}


def test_repeats_average_each_cells_truth_over_the_files_that_hold_it(runs, tmp_path, capsys):
    scores = json.loads((runs[0] / "scores.json").read_text())["scores"]
    archs = list(scores)
    once, again = tmp_path / "seed0.jsonl", tmp_path / "seed1.jsonl"
    once.write_text("".join(json.dumps({"arch": a, "valid_acc": -scores[a], "group": "random"}) + "\n"
                            for a in archs))  # alone, the supernet's exact reverse
    again.write_text("".join(json.dumps({"arch": a, "valid_acc": 3 * scores[a]}) + "\n" for a in archs[:-1]))
    bench_ws_ranking.main([str(runs[0]), "--ground-truth", str(once), "--repeats", str(again)])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["repeated_cells"] == len(archs) - 1 and result["repeats"] == [str(again)]
    means = [scores[a] for a in archs[:-1]] + [-scores[archs[-1]]]  # (-s + 3 s) / 2, and the last one alone
    assert result["runs"][0]["kendall_tau"] == round(kendalltau(means, [scores[a] for a in archs])[0], 3)
    assert result["runs"][0]["random_mean"] == round(np.mean(means), 3)


def test_valid_images_scores_cells_on_the_first_n_validation_images(config_file, tmp_path):
    out = tmp_path / "gt.jsonl"
    ws_ground_truth.main(["--config", str(config_file), "--random", "1", "--top", "0", "--epochs", "1",
                          "--valid-images", "30", "--out", str(out)])
    header = json.loads(out.with_suffix(".json").read_text())
    assert header["training"]["evaluator"]["task"]["valid_images"] == 30
    [cell] = lines(out)
    assert (cell["valid_acc"] * 30 / 100) == pytest.approx(round(cell["valid_acc"] * 30 / 100))


def test_score_with_changes_how_the_supernets_score_not_their_weights(runs, tmp_path, capsys):
    common = importlib.import_module("common")
    more_images = ["evaluator.task.valid_images=60"]  # the search scored on 20
    final = common.load_final_supernet(runs[0], more_images)
    scores = {SPACE.format(arch): score for arch, score in final.ranking()}
    assert scores != json.loads((runs[0] / "scores.json").read_text())["scores"]
    path = tmp_path / "on_60.jsonl"
    path.write_text("".join(json.dumps({"arch": arch, "valid_acc": acc, "group": "random"}) + "\n"
                            for arch, acc in scores.items()))
    bench_ws_ranking.main([str(runs[0]), "--ground-truth", str(path), "--score-with", *more_images])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["score_with"] == more_images and result["runs"][0]["kendall_tau"] == 1.0


def test_the_parameter_count_baseline_ranks_cells_by_the_weights_they_use(runs, tmp_path, capsys):
    final = importlib.import_module("common").load_final_supernet(runs[0])
    weights = {SPACE.format(arch): final.supernet.parameters_of(arch) for arch in final.pool}
    path = tmp_path / "weights.jsonl"
    path.write_text("".join(json.dumps({"arch": arch, "valid_acc": 1e-3 * n, "group": "random"}) + "\n"
                            for arch, n in weights.items()))
    bench_ws_ranking.main([str(runs[0]), "--ground-truth", str(path)])
    baseline = json.loads(capsys.readouterr().out.splitlines()[-1])["parameter_count"]
    assert baseline["kendall_tau"] == 1.0 and weights[baseline["picked_arch"]] == max(weights.values())


def test_the_supernet_combined_with_the_parameter_count_ranks_cells_by_the_sum_of_their_two_ranks(
        runs, tmp_path, capsys):
    final = importlib.import_module("common").load_final_supernet(runs[0])
    scores = np.array([final.supernet.evaluate(arch)["valid_acc"] for arch in final.pool])
    weights = np.array([final.supernet.parameters_of(arch) for arch in final.pool], dtype=float)
    rank_sum = rankdata(scores) + rankdata(weights)
    path = tmp_path / "rank_sum.jsonl"  # the truth is the combined ranking itself
    path.write_text("".join(json.dumps({"arch": SPACE.format(arch), "valid_acc": float(r), "group": "random"}) + "\n"
                            for arch, r in zip(final.pool, rank_sum, strict=True)))
    bench_ws_ranking.main([str(runs[0]), str(runs[0]), "--ground-truth", str(path)])
    combined = json.loads(capsys.readouterr().out.splitlines()[-1])["supernet_and_parameter_count"]
    assert [r["kendall_tau"] for r in combined["runs"]] == [1.0, 1.0]
    assert combined["summary"]["kendall_tau"] == {"mean": 1.0, "std": 0.0}
    assert combined["runs"][0]["picked_arch"] == SPACE.format(final.pool[int(np.argmax(rank_sum))])


def test_rank_by_loss_ranks_cells_by_the_supernets_validation_cross_entropy_lowest_first(runs, tmp_path, capsys):
    final = importlib.import_module("common").load_final_supernet(runs[0])
    losses = {SPACE.format(arch): final.supernet.evaluate(arch)["valid_loss"] for arch in final.pool}
    path = tmp_path / "negated_loss.jsonl"  # the truth: the lower the supernet's loss, the better the cell
    path.write_text("".join(json.dumps({"arch": arch, "valid_acc": -loss, "group": "random"}) + "\n"
                            for arch, loss in losses.items()))
    bench_ws_ranking.main([str(runs[0]), "--ground-truth", str(path), "--rank-by-loss"])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    [run] = result["runs"]
    assert result["ranked_by"] == "valid_loss" and run["kendall_tau"] == 1.0
    assert losses[run["picked_arch"]] == min(losses.values())
    bench_ws_ranking.main([str(runs[0]), "--ground-truth", str(path)])  # by accuracy: not the same ranking
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["runs"][0]["kendall_tau"] < 1.0


def test_all_supernets_rank_cells_by_the_sum_of_their_ranks_over_the_runs(runs, tmp_path, capsys):
    common = importlib.import_module("common")
    finals = [common.load_final_supernet(run) for run in runs[:2]]
    archs = finals[0].pool
    scores = [np.array([f.supernet.evaluate(arch)["valid_acc"] for arch in archs]) for f in finals]
    weights = np.array([finals[0].supernet.parameters_of(arch) for arch in archs], dtype=float)
    rank_sum = rankdata(scores[0]) + rankdata(scores[1])
    path = tmp_path / "rank_sum.jsonl"  # the truth is the supernets' combined ranking itself
    path.write_text("".join(json.dumps({"arch": SPACE.format(arch), "valid_acc": float(r), "group": "random"}) + "\n"
                            for arch, r in zip(archs, rank_sum, strict=True)))
    bench_ws_ranking.main([str(runs[0]), str(runs[1]), "--ground-truth", str(path)])
    together = json.loads(capsys.readouterr().out.splitlines()[-1])["all_supernets"]
    assert together["supernets"]["kendall_tau"] == 1.0
    assert together["supernets"]["picked_arch"] == SPACE.format(archs[int(np.argmax(rank_sum))])
    with_weights = rank_sum + 2 * rankdata(weights)  # the parameter count weighs as much as all supernets
    assert together["with_parameter_count"]["kendall_tau"] == round(kendalltau(with_weights, rank_sum)[0], 3)


def test_a_proxy_ranks_cells_alone_and_added_to_each_supernets_and_the_parameter_counts_ranks(
        runs, tmp_path, capsys):
    final = importlib.import_module("common").load_final_supernet(runs[0])
    archs, supernet = final.pool, final.supernet
    naswot = proxy_scores("naswot", SPACE, archs, supernet.task.network, supernet.data, seed=final.config.seed)
    scores = np.array([supernet.evaluate(arch)["valid_acc"] for arch in archs])
    weights = np.array([supernet.parameters_of(arch) for arch in archs], dtype=float)
    path = tmp_path / "naswot.jsonl"  # the truth is the proxy itself
    path.write_text("".join(json.dumps({"arch": SPACE.format(arch), "valid_acc": float(v), "group": "random"}) + "\n"
                            for arch, v in zip(archs, naswot, strict=True)))
    bench_ws_ranking.main([str(runs[0]), "--ground-truth", str(path), "--proxies", "naswot"])
    found = json.loads(capsys.readouterr().out.splitlines()[-1])["proxies"]["naswot"]
    assert found["alone"]["kendall_tau"] == 1.0 and found["alone"]["picked_arch"] == SPACE.format(
        archs[int(np.argmax(naswot))])

    def tau_with_truth(ranks):
        return round(kendalltau(naswot, ranks)[0], 3)
    [with_supernet] = found["supernet_and_proxy"]["runs"]
    assert with_supernet["kendall_tau"] == tau_with_truth(rankdata(scores) + rankdata(naswot))
    assert found["with_parameter_count"]["kendall_tau"] == tau_with_truth(rankdata(weights) + rankdata(naswot))
    assert found["kendall_tau_with_parameter_count"] == tau_with_truth(weights)
    [all_three] = found["supernet_parameter_count_and_proxy"]["runs"]
    assert all_three["kendall_tau"] == tau_with_truth(rankdata(scores) + rankdata(weights) + rankdata(naswot))


def test_proxies_need_a_ground_truth(runs, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench_ws_ranking.main([str(runs[0]), "--proxies", "naswot"])
    assert exit_.value.code == 2 and "--proxies" in capsys.readouterr().err


def test_the_supernets_agreement_with_each_other_and_with_the_weights_is_measured_among_the_random_cells(
        runs, tmp_path, capsys):
    finals = [importlib.import_module("common").load_final_supernet(run) for run in runs]
    archs = finals[0].pool
    scores = [np.array([final.supernet.evaluate(arch)["valid_acc"] for arch in archs]) for final in finals]
    weights = np.array([finals[0].supernet.parameters_of(arch) for arch in archs])
    is_random = np.arange(len(archs)) > 0  # the first cell is a top cell: left out of both measures
    path = tmp_path / "gt.jsonl"
    path.write_text("".join(json.dumps({"arch": SPACE.format(arch), "valid_acc": float(i),
                                        "group": "random" if chosen else "top:run0"}) + "\n"
                            for i, (arch, chosen) in enumerate(zip(archs, is_random, strict=True))))
    bench_ws_ranking.main([str(runs[0]), str(runs[1]), str(runs[0]), "--ground-truth", str(path)])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])

    def tau(a, b):
        return round(kendalltau(a[is_random], b[is_random])[0], 3)
    assert [r["kendall_tau_random_with_parameter_count"] for r in result["runs"]] == [
        tau(weights, scores[0]), tau(weights, scores[1]), tau(weights, scores[0])]
    between = result["summary"]["kendall_tau_random_between_runs"]
    assert between["pairs"] == [tau(scores[0], scores[1]), 1.0, tau(scores[1], scores[0])]
    assert between["mean"] == pytest.approx(np.mean(between["pairs"]), abs=1e-3)


def test_the_finetune_curve_scores_each_cell_after_each_step_count_from_the_supernet_or_from_scratch(
        runs, tmp_path, capsys, monkeypatch):
    ws_finetune_curve = importlib.import_module("ws_finetune_curve")
    scores = json.loads((runs[0] / "scores.json").read_text())["scores"]
    path = tmp_path / "own.jsonl"  # the truth: the supernet's own scores, so its ranking at 0 steps is perfect
    path.write_text("".join(json.dumps({"arch": arch, "valid_acc": acc, "group": "random" if i % 2 else "top:run0"})
                            + "\n" for i, (arch, acc) in enumerate(scores.items())))
    out = tmp_path / "curve"
    argv = [str(runs[0]), "--ground-truth", str(path), "--steps", "2", "0", "--out", str(out)]
    ws_finetune_curve.main(argv)
    result = json.loads(capsys.readouterr().out)
    assert sorted(result["steps"]) == ["0", "2"] and result["cells"] == len(scores)
    assert result["steps"]["0"]["runs"][0]["kendall_tau"] == 1.0
    assert result["steps"]["0"]["runs"][0]["mean_score"] == round(np.mean(list(scores.values())), 2)
    cells = lines(out / f"{runs[0].name}.jsonl")
    assert [c["arch"] for c in cells] == list(scores) and [c["scores"]["0"] for c in cells] == list(scores.values())
    final = importlib.import_module("common").load_final_supernet(runs[0])
    first = SPACE.parse(cells[0]["arch"])
    assert cells[0]["scores"]["2"] == final.supernet.finetuned_scores(first, [2])[2]["valid_acc"]

    monkeypatch.setattr(type(final.supernet), "finetuned_scores", lambda *a: pytest.fail("scored again"))
    ws_finetune_curve.main(argv)  # a rerun reads every score from the file
    assert json.loads(capsys.readouterr().out) == result
    monkeypatch.undo()

    ws_finetune_curve.main([*argv, "--scratch", "--random-only"])
    from_scratch = json.loads(capsys.readouterr().out)
    fresh = make_evaluator(SPACE, final.config.evaluator, seed=final.config.seed, device="cpu")  # never trained
    cells = lines(out / f"{runs[0].name}-scratch.jsonl")
    assert from_scratch["cells"] == len(cells) == len(scores) // 2 and {c["group"] for c in cells} == {"random"}
    assert [c["scores"]["0"] for c in cells] == [fresh.evaluate(SPACE.parse(c["arch"]))["valid_acc"] for c in cells]

    with pytest.raises(SystemExit) as exit_:
        ws_finetune_curve.main([*argv[:-5], "--steps", "1", "--out", str(out)])
    assert exit_.value.code == 2 and "made with steps [0, 2], not [1]; use another --out" in capsys.readouterr().err


def test_the_training_curve_scores_the_truth_after_each_cycle_of_an_untrained_supernet(
        config_file, ground_truth, tmp_path, capsys):
    ws_training_curve = importlib.import_module("ws_training_curve")
    out = tmp_path / "curve.jsonl"
    argv = ["--config", str(config_file), "--set", "evaluator.task.sampling=space", "--ground-truth",
            str(ground_truth), "--cycles", "2", "--cycle-epochs", "1", "--out", str(out)]
    ws_training_curve.main(argv)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == lines(out) and [line["epochs"] for line in printed] == [1, 2]

    config = load_config(config_file, ["evaluator.task.sampling=space"])  # the same two cycles, by hand
    supernet = make_evaluator(SPACE, config.evaluator, seed=config.seed, device="cpu")
    cells = lines(ground_truth)
    truth = np.array([c["valid_acc"] for c in cells])
    for cycle, line in enumerate(printed):
        supernet.train([], seed=cycle, epochs=1, progress=False)
        supernet.weights_changed()
        scores = np.array([supernet.evaluate(SPACE.parse(c["arch"]))["valid_acc"] for c in cells])
        assert line["mean_score"] == round(scores.mean(), 2)
        assert line["kendall_tau"] == bench_ws_ranking.rounded(kendalltau(truth, scores)[0])
    with pytest.raises(SystemExit) as exit_:
        ws_training_curve.main(argv)
    assert exit_.value.code == 2 and "exists" in capsys.readouterr().err


def test_search_measures_a_changed_config_over_its_seeds(config_file, ground_truth, tmp_path, capsys):
    bench_ws_ranking.main(["--ground-truth", str(ground_truth), "--search", str(config_file), "--seeds", "0", "1",
                           "--set", "evaluator.task.valid_images=40", "--search-dir", str(tmp_path)])
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    runs = [tmp_path / "search-seed0", tmp_path / "search-seed1"]
    assert [r["run"] for r in result["runs"]] == list(map(str, runs))
    for seed, run in enumerate(runs):
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert (saved["seed"], saved["evaluator"]["task"]["valid_images"]) == (seed, 40)
    with pytest.raises(SystemExit) as exit_:  # the runs there are not of this setting
        bench_ws_ranking.main(["--ground-truth", str(ground_truth), "--search", str(config_file), "--seeds", "0",
                               "--set", "evaluator.task.valid_images=50", "--search-dir", str(tmp_path)])
    assert exit_.value.code == 2 and "evaluator.task.valid_images: 40 in the run, 50 now" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--search", "x.yaml", "--ground-truth", "gt.jsonl"],  # no --search-dir
                                  ["--ground-truth", "gt.jsonl"],  # nothing to measure
                                  ["run0", "run1"],  # several runs without --ground-truth
                                  ["run0", "--rank-by-loss"]])  # it ranks a ground truth's cells
def test_benchmark_arguments_that_cannot_go_together_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench_ws_ranking.main(argv)
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err


def test_op_effects_correlate_each_ops_count_with_the_truth_and_the_supernets(runs, tmp_path, capsys):
    ws_op_effects = importlib.import_module("ws_op_effects")
    archs = [SPACE.sample(np.random.default_rng(seed)) for seed in range(12)]
    first_op = f"normal:{SPACE.op_names[0]}"
    path = tmp_path / "by_op.jsonl"  # the truth: how often the normal cell uses the first op
    path.write_text("".join(json.dumps({"arch": SPACE.format(arch), "valid_acc": float(sum(
        op == 0 for node in SPACE.cells(arch)[0] for _, op in node)), "group": "random"}) + "\n" for arch in archs))
    ws_op_effects.main([str(runs[0]), str(runs[1]), "--ground-truth", str(path)])
    result = json.loads(capsys.readouterr().out)
    assert result["truth"][first_op] == 1.0 and len(result["truth"]) == 2 * len(SPACE.op_names) + 4
    assert [r["run"] for r in result["runs"]] == list(map(str, runs))
    for op, mean in result["supernet"].items():
        assert mean == pytest.approx(np.mean([r[op] for r in result["runs"]]), abs=1e-3)
    assert "proxies" not in result


def test_op_effects_count_each_cells_output_states_and_correlate_the_proxies_too(runs, tmp_path, capsys):
    ws_op_effects = importlib.import_module("ws_op_effects")
    archs = [SPACE.sample(np.random.default_rng(seed)) for seed in range(12)]
    path = tmp_path / "by_outputs.jsonl"  # the truth: how many states the reduction cell outputs
    path.write_text("".join(json.dumps({"arch": SPACE.format(arch), "valid_acc": float(len(
        SPACE.output_states(SPACE.cells(arch)[1]))), "group": "random"}) + "\n" for arch in archs))
    ws_op_effects.main([str(runs[0]), "--ground-truth", str(path), "--proxies", "weights"])
    result = json.loads(capsys.readouterr().out)
    assert result["truth"]["reduction:outputs"] == 1.0
    assert ws_op_effects.depth([[(0, 0), (1, 0)], [(2, 0), (0, 0)], [(1, 0), (1, 0)]]) == 2  # node 1 reads node 0
    assert ws_op_effects.depth([[(0, 0), (1, 0)], [(1, 0), (0, 0)]]) == 1

    final = importlib.import_module("common").load_final_supernet(runs[0])
    weights = proxy_scores("weights", SPACE, archs, final.supernet.task.network, final.supernet.data,
                           seed=final.config.seed)
    outputs = [len(SPACE.output_states(SPACE.cells(arch)[1])) for arch in archs]
    assert result["proxies"]["weights"]["reduction:outputs"] == round(float(np.corrcoef(outputs, weights)[0, 1]), 3)


def test_a_text_tasks_truth_scores_cells_on_the_whole_validation_text_and_the_benchmark_ranks_by_perplexity(
        tmp_path, capsys, monkeypatch):
    from test_rnn import write_corpus

    from nao.tasks.rnn.evaluators import StandaloneEvaluator as TextStandalone

    write_corpus(tmp_path / "corpus")
    task = {"data": {"name": "ptb", "dir": str(tmp_path / "corpus"), "download": False},
            "model": {"size": 8, "dropout": 0.1, "dropouth": 0.1, "dropoutx": 0.1, "dropouti": 0.1},
            "train": {"epochs": 1, "batch_size": 8, "eval_batch_size": 4, "bptt": 10, "lr": 5.0},
            "valid_windows": 2}
    config_file = tmp_path / "ptb_ws.yaml"
    config_file.write_text(yaml.safe_dump({"space": "nao-rnn", "strategy": "random", "budget": 5, "seed": 0,
                                          "evaluator": {"type": "supernet", "task": task}}))
    run_search(load_config(config_file, []), tmp_path / "run", progress=False)
    out = tmp_path / "gt.jsonl"
    ws_ground_truth.main(["--config", str(config_file), "--random", "2", "--top", "2", "--epochs", "1",
                          "--runs", str(tmp_path / "run"), "--out", str(out), "--train-seed", "3"])

    header = json.loads(out.with_suffix(".json").read_text())
    assert header["training"]["evaluator"]["task"]["valid_windows"] is None  # the search scores on 2 windows
    cells = lines(out)
    assert [c["group"] for c in cells] == ["random", "top:run", "random", "top:run"]
    space = nao.get_space("nao-rnn")
    whole = load_config(config_file, ["evaluator.type=standalone", "evaluator.task.valid_windows=null"])
    evaluator = TextStandalone(space, whole.evaluator, seed=3, device="cpu", run_path=None)
    assert cells[0]["valid_ppl"] == pytest.approx(evaluator.evaluate(space.parse(cells[0]["arch"]))["valid_ppl"])

    scores = json.loads((tmp_path / "run" / "scores.json").read_text())["scores"]
    own = tmp_path / "own.jsonl"  # the supernet's own perplexities as the truth: a perfect ranking
    own.write_text("".join(json.dumps({"arch": a, "valid_ppl": s, "group": "random"}) + "\n"
                           for a, s in scores.items()))
    bench_ws_ranking.main([str(tmp_path / "run"), "--ground-truth", str(own)])
    [run] = json.loads(capsys.readouterr().out.splitlines()[-1])["runs"]
    assert run["kendall_tau"] == 1.0 and run["picked"] == run["best"] == round(min(scores.values()), 3)

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before the refusal")

    monkeypatch.setattr(bench_ws_ranking, "supernet_scores", no_scoring)
    with pytest.raises(SystemExit) as exit_:  # training-free proxies score CNN cells only: refused before scoring
        bench_ws_ranking.main([str(tmp_path / "run"), "--ground-truth", str(own), "--proxies", "naswot"])
    error = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(error.splitlines()) == 1 and "not a CNN supernet" in error


def test_few_shot_trains_each_parts_sub_supernet_on_its_part_alone_and_scores_its_cells_with_it(
        runs, ground_truth, tmp_path, capsys, monkeypatch):
    ws_few_shot = importlib.import_module("ws_few_shot")
    final = importlib.import_module("common").load_final_supernet(runs[0])
    part_of = ws_few_shot.SPLITS["params"](final, "2")
    evaluator_type, trained = type(final.supernet), []
    train, evaluate = evaluator_type.train, evaluator_type.evaluate

    def spied_train(self, pool, **kwargs):
        trained.append({"parts": {part_of(a) for a in pool}, "scored": []})
        return train(self, pool, **kwargs)

    def spied_evaluate(self, arch):
        trained[-1]["scored"].append(part_of(arch))
        return evaluate(self, arch)

    monkeypatch.setattr(evaluator_type, "train", spied_train)
    monkeypatch.setattr(evaluator_type, "evaluate", spied_evaluate)
    out = tmp_path / "few-shot"
    argv = [str(runs[0]), "--ground-truth", str(ground_truth), "--split", "params:2", "--epochs", "1",
            "--out", str(out)]
    ws_few_shot.main(argv)
    result = json.loads(capsys.readouterr().out)
    cells = [SPACE.parse(c["arch"]) for c in lines(ground_truth)]
    parts = [part_of(a) for a in cells]
    assert trained == [{"parts": {p}, "scored": [p] * parts.count(p)} for p in sorted(set(parts))]
    assert result["runs"][0]["parts"] == {str(p): parts.count(p) for p in sorted(set(parts))}
    sizes = [final.supernet.parameters_of(a) for a in cells]
    assert max(s for s, p in zip(sizes, parts, strict=True) if p == 0) <= min(
        s for s, p in zip(sizes, parts, strict=True) if p == 1)

    saved = json.loads((out / f"{runs[0].name}-params2-e1.json").read_text())
    truth = np.array([c["valid_acc"] for c in lines(ground_truth)])
    is_random = np.array([c["group"] == "random" for c in lines(ground_truth)])
    expected = bench_ws_ranking.ground_truth_metrics(np.array(saved["scores"]), truth, is_random)
    assert result["runs"][0]["kendall_tau"] == expected["kendall_tau"]
    assert result["runs"][0]["kendall_tau_random_with_parameter_count"] == round(
        kendalltau(np.array(sizes)[is_random], np.array(saved["scores"])[is_random])[0], 3)
    monkeypatch.setattr(ws_few_shot, "split_scores", lambda *a: pytest.fail("trained again"))
    ws_few_shot.main(argv)  # a rerun reads the scores from the file
    assert json.loads(capsys.readouterr().out) == result
    other_truth = tmp_path / "other.jsonl"  # ... but not another truth's cells' scores from it
    other_truth.write_text("".join(ground_truth.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(SystemExit) as exit_info:
        ws_few_shot.main([str(runs[0]), "--ground-truth", str(other_truth), *argv[3:]])
    assert exit_info.value.code == 2
    assert "other cells or of another run" in capsys.readouterr().err


def test_few_shot_leaves_the_final_weights_as_they_were_and_scores_alike_on_a_rerun(runs, ground_truth, tmp_path):
    ws_few_shot = importlib.import_module("ws_few_shot")
    final = importlib.import_module("common").load_final_supernet(runs[0])
    archs = [SPACE.parse(c["arch"]) for c in lines(ground_truth)]
    before = [final.supernet.evaluate(a)["valid_acc"] for a in archs]
    first = ws_few_shot.split_scores(final, archs, "op:1", 1)
    assert [final.supernet.evaluate(a)["valid_acc"] for a in archs] == before
    assert ws_few_shot.split_scores(final, archs, "op:1", 1)["scores"] == first["scores"]
    assert first["parts"] == {str(op): sum(a[1] == op for a in archs) for op in sorted({a[1] for a in archs})}


@pytest.mark.parametrize("split, message", [("op:2", "--split op:2: not an op position of nao-cnn (odd, below 40)"),
                                            ("params:1", "--split params:1: the number of parts must be at least 2"),
                                            ("none:3", "--split none takes no argument")])
def test_few_shot_refuses_a_bad_split_in_one_line(split, message, runs, ground_truth, tmp_path, capsys):
    ws_few_shot = importlib.import_module("ws_few_shot")
    with pytest.raises(SystemExit) as exit_:
        ws_few_shot.main([str(runs[0]), "--ground-truth", str(ground_truth), "--split", split,
                          "--out", str(tmp_path)])
    assert exit_.value.code == 2 and capsys.readouterr().err.strip().endswith(message)
