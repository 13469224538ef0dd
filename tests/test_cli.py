"""The `nao` command line: outputs on stdout, one-line errors with exit code 2, nothing half-written."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_results_csv
from scipy.stats import kendalltau

import nao
from nao.cli import main
from nao.predictors.fit import split_holdout

NB201 = nao.get_space("nb201")


def read_csv(path) -> list[dict]:
    return list(csv.DictReader(path.read_text().splitlines()))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def results_csv(tmp_path_factory, nb201_table):
    path = tmp_path_factory.mktemp("data") / "results.csv"
    write_results_csv(path, NB201, nb201_table[:60])
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, results_csv):
    out = tmp_path_factory.mktemp("model") / "ctrl"
    assert main(["predictor", "fit", "--space", "nb201", "--results", str(results_csv), "--epochs", "3",
                 "--holdout", "0.2", "--out", str(out)]) == 0
    return out


def test_spaces_lists_every_registered_space(capsys):
    code, out, _ = run(capsys, "spaces")
    assert code == 0
    for name in ("nb201", "nao-cnn", "nao-cnn-large", "nao-rnn"):
        assert any(line.split()[0] == name for line in out.splitlines()[1:])


def test_sample_prints_distinct_parseable_archs_deterministically(capsys):
    _, first, _ = run(capsys, "sample", "nao-cnn", "-n", "7", "--seed", "3")
    _, again, _ = run(capsys, "sample", "nao-cnn", "-n", "7", "--seed", "3")
    lines = first.splitlines()
    assert first == again and len(lines) == len(set(lines)) == 7
    space = nao.get_space("nao-cnn")
    assert [space.format(space.parse(line)) for line in lines] == lines


def test_predictor_fit_reports_held_out_metrics_and_saves_the_model(model_dir, capsys):
    report = json.loads((model_dir / "metrics.json").read_text())
    assert report["n_train"] == 48 and report["n_holdout"] == 12
    for key in ("kendall_tau", "spearman", "pairwise_acc", "precision_at_k", "mae", "reconstruction_acc", "seconds"):
        assert key in report
    assert nao.Controller.load(model_dir).space.name == "nb201"


def test_predictor_fit_ends_stdout_with_one_json_object(results_csv, tmp_path, capsys):
    code, out, _ = run(capsys, "predictor", "fit", "--space", "nb201", "--results", str(results_csv),
                       "--epochs", "1", "--holdout", "0", "--out", str(tmp_path / "m"))
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and result["n_holdout"] == 0 and result["n_train"] == 60
    assert result["kendall_tau"] is None  # nothing held out: no ranking report


def test_predictor_score_writes_one_prediction_per_arch(model_dir, results_csv, tmp_path, capsys):
    archs_txt = tmp_path / "archs.txt"
    archs_txt.write_text("".join(NB201.format(NB201.sample(np.random.default_rng(i))) + "\n"
                                 for i in range(4)))
    code, out, _ = run(capsys, "predictor", "score", "--model", str(model_dir), "--archs", str(archs_txt))
    rows = list(csv.DictReader(out.splitlines()))
    assert code == 0 and len(rows) == 4 and set(rows[0]) == {"arch", "predicted"}
    assert [r["arch"] for r in rows] == archs_txt.read_text().splitlines()
    code, _, _ = run(capsys, "predictor", "score", "--model", str(model_dir), "--archs", str(results_csv),
                     "--out", str(tmp_path / "scores.csv"))
    assert code == 0 and len(read_csv(tmp_path / "scores.csv")) == 60


def test_propose_writes_new_archs_best_first(model_dir, results_csv, tmp_path, capsys):
    out_csv = tmp_path / "proposals.csv"
    code, out, _ = run(capsys, "propose", "--model", str(model_dir), "--results", str(results_csv), "-n", "8",
                       "--top-k", "10", "--out", str(out_csv))
    assert code == 0
    rows = read_csv(out_csv)
    assert 0 < len(rows) <= 8 and set(rows[0]) == {"arch", "predicted", "step"}
    known = {NB201.canonical(NB201.parse(r["arch"])) for r in read_csv(results_csv)}
    assert not known & {NB201.canonical(NB201.parse(r["arch"])) for r in rows}
    predicted = [float(r["predicted"]) for r in rows]
    assert predicted == sorted(predicted, reverse=True)
    assert json.loads(out.strip().splitlines()[-1])["proposed"] == len(rows)


def test_original_arch_pool_files_are_read(tmp_path, capsys, nb201_table):
    pool = tmp_path / "arch_pool"
    pool.write_text("".join(NB201.format(a) + "\n" for a, _ in nb201_table[:20]))
    (tmp_path / "arch_pool.perf").write_text("".join(f"{s}\n" for _, s in nb201_table[:20]))
    code, out, _ = run(capsys, "predictor", "fit", "--space", "nb201", "--results", str(pool), "--epochs", "1",
                       "--holdout", "0.2", "--out", str(tmp_path / "m"))
    assert code == 0 and json.loads(out.splitlines()[-1])["metric"] == "perf"


@pytest.mark.parametrize("make_input, expected", [
    (lambda p: p.write_text("arch,score\n|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n"), "results.csv:2:"),
    (lambda p: p.write_text("arch,acc\n"), "results.csv"),
    (lambda p: p.write_text("name,score\nx,1\n"), "arch"),
    (lambda p: None, "results.csv"),
])
def test_bad_results_file_is_one_line_exit_2_and_no_model_written(tmp_path, capsys, make_input, expected):
    results = tmp_path / "results.csv"
    make_input(results)
    out = tmp_path / "model"
    code, stdout, err = run(capsys, "predictor", "fit", "--space", "nb201", "--results", str(results),
                            "--out", str(out))
    assert code == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and expected in err and err.startswith("nao: error:")
    assert not out.exists()


def test_unknown_metric_and_space_and_holdout_are_user_errors(results_csv, tmp_path, capsys):
    for argv, expected in [
        (["--space", "nb201", "--metric", "acc"], "acc"),
        (["--space", "nb202"], "nb202"),
        (["--space", "nb201", "--holdout", "1.5"], "--holdout"),
    ]:
        code, _, err = run(capsys, "predictor", "fit", *argv, "--results", str(results_csv),
                           "--out", str(tmp_path / "m"))
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_missing_model_dir_leaves_no_output_file(tmp_path, results_csv, capsys):
    out_csv = tmp_path / "proposals.csv"
    code, _, err = run(capsys, "propose", "--model", str(tmp_path / "nope"), "--results", str(results_csv),
                       "--out", str(out_csv))
    assert code == 2 and "not a saved controller" in err
    assert not out_csv.exists()


def test_the_installed_command_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nao", "sample", "no-such-space"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown search space 'no-such-space'" in proc.stderr


def test_predictor_fit_with_members_scores_with_their_mean_and_propose_asks_for_one_member(
        results_csv, tmp_path, capsys):
    out = tmp_path / "ensemble"
    code, stdout, _ = run(capsys, "predictor", "fit", "--space", "nb201", "--results", str(results_csv),
                          "--epochs", "2", "--holdout", "0.2", "--members", "2", "--out", str(out))
    report = json.loads(stdout.strip().splitlines()[-1])
    archs = [NB201.parse(r["arch"]) for r in read_csv(results_csv)]
    members = [nao.Controller.load(out / f"member{m}").predict(archs) for m in (0, 1)]
    _, held_out = split_holdout(len(archs), 0.2, 0)
    scores = np.array([float(r["score"]) for r in read_csv(results_csv)])
    assert code == 0 and report["members"] == 2 and report["n_holdout"] == len(held_out)
    assert report["kendall_tau"] == pytest.approx(kendalltau(scores[held_out], np.mean(members, axis=0)[held_out])[0],
                                                  abs=1e-4)  # the held-out ranking of the members' mean
    code, stdout, _ = run(capsys, "predictor", "score", "--model", str(out), "--archs", str(results_csv))
    predicted = [float(r["predicted"]) for r in csv.DictReader(stdout.splitlines())]
    assert code == 0 and predicted == pytest.approx(np.mean(members, axis=0), rel=1e-5)

    code, stdout, err = run(capsys, "propose", "--model", str(out), "--results", str(results_csv),
                            "--out", str(tmp_path / "proposals.csv"))
    assert code == 2 and err.count("\n") == 1 and f"use one of its members, e.g. {out / 'member0'}" in err
    assert not (tmp_path / "proposals.csv").exists()


def test_predictor_fit_set_changes_the_controllers_hyperparameters_and_refuses_unknown_ones(
        results_csv, tmp_path, capsys):
    out = tmp_path / "wide"
    code, _, _ = run(capsys, "predictor", "fit", "--space", "nb201", "--results", str(results_csv), "--epochs", "1",
                     "--set", "hidden_dim=16", "embedding_dim=8", "predict_equivalents=true", "--out", str(out))
    config = nao.Controller.load(out).config
    assert code == 0 and (config.hidden_dim, config.embedding_dim, config.predict_equivalents) == (16, 8, True)
    assert config.epochs == 1
    for pairs, message in ((["hiden_dim=16"], "nao: error: --set: unknown config key 'hiden_dim' (known: "),
                           (["hidden_dim=0"], "nao: error: --set: hidden_dim: must be at least 1"),
                           (["hidden_dim"], "nao: error: --set: override 'hidden_dim' is not of the form key=value"),
                           (["device=cpu"], "nao: error: --set: 'device' has an option of its own: use --device"),
                           (["epochs=3"], "nao: error: --set: 'epochs' has an option of its own: use --epochs")):
        code, _, err = run(capsys, "predictor", "fit", "--space", "nb201", "--results", str(results_csv),
                           "--set", *pairs, "--out", str(tmp_path / "refused"))
        assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "refused").exists()
