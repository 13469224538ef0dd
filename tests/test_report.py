"""`nao report`: the summary table and the pictures are produced from tiny runs."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import SMALL

from nao.cli import main
from nao.search import load_config, run_search

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    toy = {"seed_archs": 8, "new_per_iteration": 6, "top_k": 4, "epochs": 20, "controller": SMALL}
    paths = []
    for strategy, seed in [("random", 0), ("random", 1), ("evolution", 0), ("nao", 0)]:
        config = load_config(None, [f"strategy={strategy}", f"seed={seed}", "budget=20", "evaluator.type=synthetic",
                                    f"nao={json.dumps(toy)}", "evolution.population=5"])
        run_search(config, root / f"{strategy}{seed}", progress=False)
        paths.append(root / f"{strategy}{seed}")
    return paths


def test_report_writes_plots_and_a_summary_of_every_run(runs, tmp_path, capsys):
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "report")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("best_so_far.png", "predicted_vs_measured.png", "best_arch.png", "summary.csv", "summary.md"):
        assert name in result["files"]
        assert (tmp_path / "report" / name).stat().st_size > 1000 or name.endswith((".csv", ".md"))
    rows = list(csv.DictReader((tmp_path / "report" / "summary.csv").read_text().splitlines()))
    assert [r["strategy"] for r in rows] == ["random", "random", "evolution", "nao"]
    assert all(r["evaluated"] == "20" for r in rows)
    assert result["best_metric"] == max(float(r["best_score"]) for r in rows)
    assert "| random | 2 |" in (tmp_path / "report" / "summary.md").read_text()


def test_report_of_a_directory_without_a_run_is_a_user_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "not a run directory" in capsys.readouterr().err
