"""scripts/bench_search.py: every strategy at equal budget, one results file per setting."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

import nao
from nao.tasks.synthetic import SyntheticBenchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_pick_bounds
import bench_search


@pytest.fixture
def small_nb201(tmp_path, monkeypatch) -> Path:
    """The nb201 benchmark on a synthetic table of 200 cells (valid_acc searched, test_acc reported)."""
    table = tmp_path / "nb201.csv"
    space = nao.get_space("nb201")
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "valid_acc", "test_acc"])
        writer.writerows([space.format(arch), score, score - 1.0]
                         for arch, score in SyntheticBenchmark(space).table(200, seed=0))
    config, _, search, report = bench_search.BENCHMARKS["nb201"]
    copy = tmp_path / "nb201.yaml"  # a copy the tests may edit
    copy.write_text(config.read_text())
    monkeypatch.setitem(bench_search.BENCHMARKS, "nb201", (copy, f"evaluator.path={table}", search, report))
    return tmp_path / "bench"


def bench(out: Path, *more: str) -> None:
    bench_search.main(["--benchmarks", "nb201", "--strategies", "random", "evolution", "--seeds", "2",
                       "--budgets", "5", "10", "--no-report", "--out", str(out), *more])


def test_each_run_is_recorded_with_its_overrides_and_read_back_not_run_again(small_nb201, capsys):
    bench(small_nb201, "evolution.population=4")
    rows = [json.loads(line) for line in (small_nb201 / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["overrides"] == ["evolution.population=4"] for r in rows)
    first = json.loads(capsys.readouterr().out)
    assert first["overrides"] == ["evolution.population=4"] and first["summary"]["nb201"]["evolution"]["seeds"] == 2
    bench(small_nb201, "evolution.population=4")
    assert (small_nb201 / "results.jsonl").read_text().count("\n") == 4  # nothing ran again
    assert json.loads(capsys.readouterr().out)["summary"] == first["summary"]


def test_another_setting_in_the_same_out_is_refused_in_one_line_before_anything_runs(small_nb201, capsys):
    bench(small_nb201, "evolution.population=4")
    written = (small_nb201 / "results.jsonl").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        bench(small_nb201, "evolution.population=6")
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert "different config overrides" in err and "evolution.population=6" in err
    assert (small_nb201 / "results.jsonl").read_text() == written


def test_finished_only_reports_the_overrides_the_runs_were_made_with(small_nb201, capsys):
    bench(small_nb201, "evolution.tournament=2")
    capsys.readouterr()
    bench(small_nb201, "--finished-only")
    assert json.loads(capsys.readouterr().out)["overrides"] == ["evolution.tournament=2"]


@pytest.mark.parametrize("override, message", [("nao.top_kk=3", "unknown config key 'nao.top_kk'"),
                                               ("nao.top_k", "not of the form key=value")])
def test_a_bad_override_is_one_line_and_exit_2_before_any_run(small_nb201, capsys, override, message):
    with pytest.raises(SystemExit) as exit_:
        bench(small_nb201, override)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and message in err
    assert not small_nb201.exists()


def test_runs_from_an_edited_config_file_are_refused_in_the_same_out(small_nb201, capsys):
    bench(small_nb201)
    written = (small_nb201 / "results.jsonl").read_text()
    config = bench_search.BENCHMARKS["nb201"][0]
    config.write_text(config.read_text().replace("tournament: 5", "tournament: 3"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        bench(small_nb201)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and "different versions of nb201.yaml" in err
    assert (small_nb201 / "results.jsonl").read_text() == written
    bench(small_nb201, "--finished-only")  # summarizing what ran is still allowed
    assert json.loads(capsys.readouterr().out)["summary"]["nb201"]["random"]["seeds"] == 2


def test_pick_bounds_evaluate_the_best_measured_mutants_of_the_top_archs_within_the_budget():
    space = nao.get_space("nb201")
    truth, calls = SyntheticBenchmark(space), []

    def measure(archs):
        calls.append([{"valid_acc": truth.score(a), "arch": space.format(a)} for a in archs])
        return list(calls[-1])

    history = bench_pick_bounds.mutant_search(space, measure, bench_pick_bounds.pick_oracle, seed=0, budget=17,
                                              seed_archs=5, top_k=3, batch=5, mutants=10, metric="valid_acc")
    assert len(history) == 17 and len(calls[0]) == 5 and history[:5] == calls[0]
    assert len({space.canonical(space.parse(h["arch"])) for h in history}) == 17
    for k, candidates in enumerate(calls[1:]):
        picked = history[5 + 5 * k: 10 + 5 * k]
        best = sorted(candidates, key=lambda c: -c["valid_acc"])[:len(picked)]
        assert [p["valid_acc"] for p in picked] == [b["valid_acc"] for b in best]
        assert len(candidates) == 10
    assert [len(history[5 + 5 * k: 10 + 5 * k]) for k in range(3)] == [5, 5, 2]  # the last batch is cut by the budget


def test_pick_bounds_read_nao_s_settings_from_the_benchmark_config_and_report_both_pickers(small_nb201, capsys):
    bench_pick_bounds.main(["nao.top_k=3", "nao.seed_archs=6", "--benchmark", "nb201", "--seeds", "2",
                            "--budgets", "10", "20"])
    result = json.loads(capsys.readouterr().out)
    assert result["settings"]["top_k"] == 3 and result["settings"]["seed_archs"] == 6
    assert set(result["results"]) == {"oracle", "random"}
    oracle, blind = result["results"]["oracle"], result["results"]["random"]
    assert oracle["20"]["mean"] >= oracle["10"]["mean"] and oracle["20"]["mean"] > blind["20"]["mean"]
