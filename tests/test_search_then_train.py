"""scripts/search_then_train.py (the README's main job): the searched cell against random cells trained the same
way, on a tiny stripes search."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import write_stripes

import nao

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
search_then_train = importlib.import_module("search_then_train")

SPACE = nao.get_space("nao-cnn")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> tuple[str, str]:
    """A 4-arch random supernet search of the stripes data and a 1-epoch standalone training recipe."""
    folder = tmp_path_factory.mktemp("stt")
    write_stripes(folder / "stripes")
    data = {"name": "mnist", "dir": str(folder / "stripes"), "valid_size": 60, "download": False}
    network = {"channels": 4, "cells_per_stage": 1, "auxiliary": False}
    train = {"epochs": 1, "batch_size": 32, "cutout": 0, "eval_batch_size": 64}
    search, recipe = folder / "ws.yaml", folder / "train.yaml"
    search.write_text(yaml.safe_dump({"space": "nao-cnn", "strategy": "random", "budget": 4, "evaluator": {
        "type": "supernet", "task": {"data": data, "network": network, "train": train, "valid_images": 60}}}))
    recipe.write_text(yaml.safe_dump({"space": "nao-cnn", "arch": None, "data": data, "network": network,
                                      "train": train}))
    return str(search), str(recipe)


def run(configs, out: Path, *more: str, capsys) -> tuple[dict, list[str]]:
    summary = search_then_train.main([*configs, "--out", str(out), *more])
    printed = capsys.readouterr().out.splitlines()
    assert json.loads(printed[-1]) == summary  # the last line is the JSON summary
    return summary, printed


def test_the_searched_cell_is_trained_beside_three_random_cells_and_compared_with_their_spread(
        configs, tmp_path, capsys):
    summary, printed = run(configs, tmp_path, capsys=capsys)
    assert len(summary["random_arch"]) == 3 and len(summary["random_test_acc"]) == 3
    assert len({SPACE.canonical(SPACE.parse(a)) for a in summary["random_arch"]}) == 3
    assert summary["random_arch"][0] == SPACE.format(SPACE.sample(np.random.default_rng(0)))
    randoms = zip(["random", "random2", "random3"], summary["random_arch"], summary["random_test_acc"], strict=True)
    for name, arch, acc in [("best", summary["best_arch"], summary["best_test_acc"]), *randoms]:
        trained = json.loads((tmp_path / name / "result.json").read_text())
        assert (trained["arch"], trained["test_acc"]) == (arch, acc)
    rows = [line.split()[0] for line in printed[1:5]]
    assert rows == ["best", "random", "random2", "random3"]
    accs = summary["random_test_acc"]
    mean, std = np.mean(accs), np.std(accs, ddof=1)
    assert printed[-2].startswith(f"3 random archs: valid_acc {np.mean(summary['random_valid_acc']):.2f} ± ")
    assert f"test_acc {mean:.2f} ± {std:.2f}" in printed[-2]
    assert f"test_acc {summary['best_test_acc']:.2f} ({summary['best_test_acc'] - mean:+.2f} vs their mean" \
        in printed[-2]


def test_a_rerun_trains_nothing_and_more_random_cells_train_only_the_new_ones(configs, tmp_path, capsys):
    first, _ = run(configs, tmp_path, "--random", "2", capsys=capsys)
    names = ["best", "random", "random2"]
    written = {name: (tmp_path / name / "checkpoint.pt").stat().st_mtime_ns for name in names}
    again, _ = run(configs, tmp_path, "--random", "2", capsys=capsys)
    assert {k: v for k, v in again.items() if "seconds" not in k} == \
        {k: v for k, v in first.items() if "seconds" not in k}
    more, _ = run(configs, tmp_path, "--random", "3", capsys=capsys)
    assert more["random_arch"][:2] == first["random_arch"] and more["random_test_acc"][:2] == first["random_test_acc"]
    assert {name: (tmp_path / name / "checkpoint.pt").stat().st_mtime_ns for name in names} == written
    assert (tmp_path / "random3" / "result.json").exists()


def test_training_seeds_are_averaged_per_arch(configs, tmp_path, capsys):
    summary, printed = run(configs, tmp_path, "--random", "2", "--train-seeds", "2", capsys=capsys)
    for name, acc in [("best", summary["best_test_acc"]), ("random2", summary["random_test_acc"][1])]:
        seeds = [json.loads((tmp_path / run_dir / "result.json").read_text())["test_acc"]
                 for run_dir in (name, f"{name}-seed1")]
        assert acc == pytest.approx(np.mean(seeds))
    assert summary["train_seeds"] == 2
    assert any(line.startswith("random2") and "over training seeds 0..1" in line for line in printed)


def test_training_the_random_cells_in_a_second_process_changes_nothing_but_the_time(configs, tmp_path, capsys):
    # the module's fixture runs torch on one thread, as each of the two processes does
    parallel, _ = run(configs, tmp_path / "two", "--random", "2", capsys=capsys)
    serial, _ = run(configs, tmp_path / "one", "--random", "2", "--workers", "1", capsys=capsys)
    assert {k: v for k, v in serial.items() if "seconds" not in k} == \
        {k: v for k, v in parallel.items() if "seconds" not in k}


@pytest.mark.parametrize(("flag", "override", "message"), [
    ("--search-set", "evaluator.metric=valid_ppl", "evaluator.metric: the supernet evaluator measures 'valid_acc'"),
    ("--search-set", "evaluator.task.sampling=often", "evaluator.task.sampling: must be one of"),
    ("--train-set", "train.epoch=3", "unknown config key 'train.epoch'"),
])
def test_a_bad_search_or_training_setting_is_one_line_before_anything_runs(configs, tmp_path, capsys, flag,
                                                                           override, message):
    with pytest.raises(SystemExit) as exit_:
        search_then_train.main([*configs, "--out", str(tmp_path), flag, override])
    error = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(error.splitlines()) == 1 and message in error
    assert list(tmp_path.iterdir()) == []  # nothing searched, nothing trained


@pytest.mark.parametrize(("flag", "key", "stage"), [
    ("--search-set", "evaluator.task.data.dir", "search"),
    ("--train-set", "data.dir", "training"),
])
def test_a_step_that_fails_later_is_one_line_from_every_process_and_a_rerun_resumes(configs, tmp_path, capfd, flag,
                                                                                      key, stage):
    """The search's data missing (while the background process trains a random cell), or the trainings' data
    missing (in both processes): one error line, nothing else printed by either process but progress lines."""
    missing = tmp_path / "no-such-data"
    with pytest.raises(SystemExit) as exit_:
        search_then_train.main([*configs, "--out", str(tmp_path / "run"), "--random", "1", flag, f"{key}={missing}"])
    err = capfd.readouterr().err
    assert exit_.value.code == 2
    errors = [line for line in err.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1]
    assert errors[0].startswith("search_then_train: error: ") and str(missing) in errors[0]
    assert errors[0].endswith(f"(the finished steps are kept in {tmp_path / 'run'}: the same command resumes)")
    if stage == "training":  # the search finished before the trainings failed: a rerun resumes it, not redoes it
        history = (tmp_path / "run" / "search" / "history.jsonl").read_text()
        summary = search_then_train.main([*configs, "--out", str(tmp_path / "run"), "--random", "1"])
        assert (tmp_path / "run" / "search" / "history.jsonl").read_text() == history
        assert summary["evaluated"] == 4
