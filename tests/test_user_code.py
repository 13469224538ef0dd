"""Your own problem: a user space, evaluator and strategy from plugin files, the function and command evaluators,
and the ask/tell optimizer — each through the same run directory, resume and failure handling as the built-ins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import SMALL, write_results_csv

import nao
from nao.cli import main
from nao.errors import UserError
from nao.plugins import load_object
from nao.search import load_config, run_search
from nao.search.asktell import TellError
from nao.search.rundir import RunDir
from nao.spaces import RecurrentSpace
from nao.tasks.synthetic import SyntheticBenchmark

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
SPACE_PLUGIN = str(EXAMPLES / "chain_space.py")
FUNCTION = f"{EXAMPLES / 'chain_evaluate.py'}:evaluate"
TOY_NAO = {"seed_archs": 8, "new_per_iteration": 6, "top_k": 6, "epochs": 40, "controller": SMALL}


def chain_settings(strategy: str, budget: int = 20, **extra) -> dict:
    return {"plugins": [SPACE_PLUGIN], "space": "chain", "strategy": strategy, "budget": budget, "seed": 0,
            "evaluator": {"type": "function", "function": FUNCTION, "metric": "valid_acc"}, "nao": TOY_NAO,
            "evolution": {"population": 6, "tournament": 3}} | extra


def write_config(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def history(path: Path) -> list[dict]:
    return [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in RunDir(path).read_history()]


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ plugins and search
@pytest.mark.parametrize("strategy", ["nao", "random", "evolution"])
def test_a_plugin_space_and_function_evaluator_are_searched_from_the_cli(strategy, tmp_path, capsys):
    config = write_config(tmp_path / "chain.yaml", chain_settings(strategy))
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 0
    summary = last_json(capsys.readouterr().out)
    records = RunDir(tmp_path / "run").read_history()
    space = nao.get_space("chain")
    assert summary["evaluated"] == len(records) == 20 and summary["failed"] == 0
    assert len({r.arch for r in records}) == 20 and all(space.parse(r.arch) for r in records)
    assert summary["best_metric"] == max(r.metrics["valid_acc"] for r in records)
    # each evaluation had a fresh working directory of its own, where the function wrote
    workdirs = sorted((tmp_path / "run" / "evaluations").iterdir())
    assert len(workdirs) == 20 and {(d / "arch.txt").read_text().strip() for d in workdirs} == {r.arch for r in records}


def test_the_shipped_example_config_runs_as_its_header_says(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # its paths are relative to the repository, as the README's command runs it
    assert main(["search", "docs/examples/chain_search.yaml", "budget=18", "strategy=evolution",
                 "--out", str(tmp_path / "run")]) == 0
    assert last_json(capsys.readouterr().out)["evaluated"] == 18


def test_the_command_evaluator_example_runs_as_its_docstring_says(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["search", "docs/examples/chain_command.yaml", "strategy=random", "budget=5",
                 "--out", str(tmp_path / "run")]) == 0
    summary = last_json(capsys.readouterr().out)
    records = RunDir(tmp_path / "run").read_history()
    evaluate = load_object(FUNCTION, key="function")  # the example's formula, run here for comparison
    space = nao.get_space("chain")
    assert summary["failed"] == 0 and all(
        r.metrics == evaluate(space.parse(r.arch), text=r.arch, seed=0, workdir=tmp_path) for r in records)
    logs = [(d / "stderr.log").read_text() for d in (tmp_path / "run" / "evaluations").iterdir()]
    assert sorted(logs) == sorted(f"training {r.arch} with seed 0\n" for r in records)


def test_the_ask_tell_example_runs_and_resumes(tmp_path):
    run = [sys.executable, str(EXAMPLES / "ask_tell.py"), str(tmp_path / "run")]
    first = subprocess.run(run, capture_output=True, text=True, check=True)
    best = first.stdout.strip().splitlines()[-1]
    assert len(RunDir(tmp_path / "run").read_history()) == 40 and "valid_acc" in best
    again = subprocess.run(run, capture_output=True, text=True, check=True)  # reopened: already done, same best
    assert again.stdout.strip().splitlines()[-1] == best and len(RunDir(tmp_path / "run").read_history()) == 40


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("strategy", ["nao", "random", "evolution"])
def test_ray_workers_load_the_plugins_and_decide_as_a_serial_run(strategy, tmp_path, local_ray, capsys):
    config = write_config(tmp_path / "chain.yaml", chain_settings(strategy))
    assert main(["search", str(config), "--out", str(tmp_path / "serial")]) == 0
    serial = last_json(capsys.readouterr().out)
    assert main(["search", str(config), "executor=ray", "workers=2", "--out", str(tmp_path / "ray")]) == 0
    on_ray = last_json(capsys.readouterr().out)
    assert on_ray | {"run_dir": ""} == serial | {"run_dir": ""}
    in_batch_order = sorted(history(tmp_path / "ray"), key=lambda r: (r["stage"], r["index"]))
    assert in_batch_order == history(tmp_path / "serial")
    assert len(list((tmp_path / "ray" / "evaluations").iterdir())) == 20  # the workers' working directories


@pytest.fixture
def one_thread():
    """Torch on one thread here and in the subprocesses: with two, a process's BLAS may pick its thread count by the
    machine's load, and a search whose controller fits differ in the last float digits decides differently."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    torch.set_num_threads(threads)


def test_a_killed_plugin_search_resumes_to_where_the_uninterrupted_run_ends(tmp_path, capsys, one_thread):
    settings = chain_settings("nao", budget=24)
    config = write_config(tmp_path / "chain.yaml", settings)
    assert main(["search", str(config), "--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    driver = subprocess.Popen([sys.executable, "-m", "nao", "search", str(config), "--out", str(tmp_path / "cut")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=one_thread)
    history_file = tmp_path / "cut" / "history.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:  # killed once the controller has been fitted
        if history_file.exists() and len(history_file.read_text().splitlines()) >= 10:
            break
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert len(RunDir(tmp_path / "cut").read_history()) < 24
    assert main(["search", str(config), "--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert history(tmp_path / "cut") == history(tmp_path / "whole")


def test_a_plugin_strategy_gets_its_typed_section_and_resumes(tmp_path, capsys):
    plugin = tmp_path / "greedy.py"
    plugin.write_text(textwrap.dedent('''
        from dataclasses import dataclass
        import numpy as np
        import nao

        @dataclass
        class GreedyConfig:
            batch: int = 4

        class Greedy(nao.Strategy):
            def next_batch(self, history, remaining, failed=()):
                seen = self.seen(history, failed)
                if not history:
                    return self.random_new(min(remaining, self.config.batch), seen, "random")
                self.iteration += 1
                best = max(history, key=lambda h: self.better(np.array(h.score)))
                children = []
                for _ in range(100 * self.config.batch):
                    child = self.space.mutate(best.arch, self.rng)
                    if self.space.canonical(child) not in seen and self.evaluable(child):
                        seen.add(self.space.canonical(child))
                        children.append(nao.Candidate(child, "mutation"))
                    if len(children) == min(remaining, self.config.batch):
                        break
                return children or self.random_new(1, seen, "random")

        nao.register_strategy("greedy", Greedy, config=GreedyConfig, overwrite=True)
    '''))
    settings = chain_settings("greedy", budget=12, plugins=[SPACE_PLUGIN, str(plugin)], greedy={"batch": 3})
    config = write_config(tmp_path / "greedy.yaml", settings)
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 0
    records = RunDir(tmp_path / "run").read_history()
    assert [r.stage for r in records] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert {r.source for r in records[3:]} == {"mutation"}
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["greedy"] == {"batch": 3} and "nao" not in saved
    capsys.readouterr()
    assert main(["search", str(config), "budget=15", "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert last_json(capsys.readouterr().out)["evaluated"] == 15
    assert main(["search", str(config), "greedy.batchh=2", "--out", str(tmp_path / "other")]) == 2
    assert "greedy.batchh" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_a_plugin_that_fails_to_import_is_one_line_naming_it(tmp_path, capsys):
    bad = tmp_path / "broken.py"
    bad.write_text("import nao\n\nraise RuntimeError('no GPU here')\n")
    assert main(["spaces", "--plugin", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.py" in err and "RuntimeError: no GPU here" in err
    config = write_config(tmp_path / "c.yaml", chain_settings("random", plugins=[str(bad)]))
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "broken.py" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_an_unregistered_component_names_the_plugin_option(tmp_path, capsys):
    assert main(["search", str(write_config(tmp_path / "c.yaml", {"strategy": "bayes"})),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "strategy: unknown strategy 'bayes'" in err and "--plugin" in err


def test_nothing_but_the_plugin_loader_imports_code_by_name():
    users = [str(p.relative_to(ROOT)) for folder in ("nao", "tasks", "encoders", "predictors")
             for p in (ROOT / folder).rglob("*.py") if "importlib" in p.read_text()]
    assert users == ["nao/plugins.py"]


# ------------------------------------------------------------------------------------------ config checks
@pytest.mark.parametrize(("override", "key"), [
    ("nao.controller.hiden_dim=8", "nao.controller.hiden_dim"),
    ("nao.controller.lr=-1", "nao.controller.lr"),
    ("evolution.population=-2", "evolution.population"),
    ("nao.top_k=0", "nao.top_k"),
    ("evaluator.timeout=5", "evaluator.timeout"),  # the function evaluator has no timeout
    ("budget=0", "budget"),
])
def test_bad_values_anywhere_in_the_config_are_one_line_before_anything_runs(override, key, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", chain_settings("nao"))
    assert main(["search", str(config), override, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and key in err and not (tmp_path / "run").exists()


def test_a_state_file_that_is_not_json_is_one_line_on_resume(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", chain_settings("random", budget=6))
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    (tmp_path / "run" / "state.json").write_text("{not json")
    assert main(["search", str(config), "budget=8", "--out", str(tmp_path / "run"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "state.json" in err


def test_the_cli_refuses_counts_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "nb201", "-n", "-5"])
    assert exit_info.value.code == 2 and "-n: must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["predictor", "fit", "--space", "nb201", "--results", "x.csv", "--epochs", "0", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "--epochs: must be at least 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ function evaluator
def test_a_function_evaluator_gets_the_arch_its_text_the_seed_and_a_fresh_workdir(tmp_path):
    plugin = tmp_path / "spy.py"
    plugin.write_text(textwrap.dedent('''
        CALLS = []

        def evaluate(arch, *, text, seed, workdir):
            CALLS.append((arch, text, seed, workdir, sorted(workdir.iterdir())))
            if text.startswith("conv3x3"):
                raise RuntimeError("out of memory")
            return {"valid_acc": float(sum(arch)), "note": "not a number: dropped"}
    '''))
    settings = chain_settings("random", budget=12, seed=7, retries=1)
    settings["evaluator"]["function"] = f"{plugin}:evaluate"
    summary = run_search(load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings.items()]), tmp_path / "run",
                         progress=False)
    from nao.plugins import load_plugin
    calls = load_plugin(str(plugin)).CALLS
    space = nao.get_space("chain")
    assert all(space.format(arch) == text and seed == 7 and listing == [] for arch, text, seed, _, listing in calls)
    assert len({workdir for *_, workdir, _ in calls}) == len(calls)
    records = RunDir(tmp_path / "run").read_history()
    assert all(set(r.metrics) == {"valid_acc"} for r in records if r.error is None)
    failed = [r for r in records if r.error is not None]
    assert failed and summary["failed"] == len(failed)
    assert all("out of memory" in r.error and r.attempts == 2 for r in failed)


# ------------------------------------------------------------------------------------------ command evaluator
NASTY = ("Genotype(normal=[('sep_conv_3x3', 0)], x=\"$(touch pwned)\"; `touch pwned2` && echo 'a' | cat > pwned3 "
         "{seed} \\n %s ${HOME} *")


class QuotesSpace(RecurrentSpace):
    """A 1-node recurrent space whose text form is full of shell syntax (DARTS genotypes have quotes and
    parentheses): each arch's text is ``NASTY`` followed by its integers."""

    def format(self, arch) -> str:
        return f"{NASTY} {super().format(arch)}"

    def parse(self, text: str):
        return super().parse(text.removeprefix(NASTY + " "))


@pytest.fixture(scope="module")
def quotes_space() -> str:
    nao.register_space(QuotesSpace(name="quotes", n_nodes=1), overwrite=True)
    return "quotes"


def command_settings(command: str, budget: int = 4, **evaluator) -> list[str]:
    return ["space=quotes", "strategy=random", f"budget={budget}", "retries=0", "evaluator.type=command",
            f"evaluator.command={json.dumps(command)}", "evaluator.metric=score"] + \
        [f"evaluator.{k}={json.dumps(v)}" for k, v in evaluator.items()]


def test_any_arch_text_reaches_the_command_intact_and_never_as_shell_syntax(quotes_space, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "echo_arch.py"
    script.write_text(textwrap.dedent('''
        import json, os, sys
        arch, workdir, seed = sys.argv[1], sys.argv[2], sys.argv[3]
        assert arch == os.environ["NAO_ARCH"] and workdir == os.environ["NAO_WORKDIR"]
        open(os.path.join(workdir, "received.txt"), "w").write(arch)
        print("training...")
        print(json.dumps({"score": len(arch) + int(seed), "loss": 0.5}))
    '''))
    command = f"{sys.executable} {script} {{arch}} {{workdir}} {{seed}}"
    run_search(load_config(None, [*command_settings(command), "seed=3"]), tmp_path / "run", progress=False)
    records = RunDir(tmp_path / "run").read_history()
    assert len(records) == 4 and all(r.error is None for r in records)
    received = {(d / "received.txt").read_text() for d in (tmp_path / "run" / "evaluations").iterdir()}
    assert received == {r.arch for r in records} and all(r.arch.startswith(NASTY) for r in records)
    assert all(r.metrics == {"score": len(r.arch) + 3.0, "loss": 0.5} for r in records)
    assert not list(tmp_path.rglob("pwned*"))


@pytest.mark.parametrize(("command", "expected"), [
    ("echo starting; echo 'CUDA out of memory' >&2; exit 3", "exit code 3; stderr.log ends: CUDA out of memory"),
    ("sleep 30", "timed out after 0.5 s"),
    ("echo 'all done'", "not a JSON object of metrics; stdout.log ends: all done"),
    ("echo '{\"loss\": 1.0}'", "gave no number for 'score' (keys: loss)"),
    ("echo '{\"score\": NaN}'", "gave score = nan"),
])
def test_a_failing_command_is_a_recorded_failure_and_the_search_goes_on(command, expected, quotes_space, tmp_path):
    wrapped = f"case \"$NAO_ARCH\" in *' 0 0') {command};; *) echo '{{\"score\": 1}}';; esac"
    started = time.perf_counter()
    summary = run_search(load_config(None, command_settings(wrapped, budget=4, timeout=0.5)), tmp_path / "run",
                         progress=False)
    records = RunDir(tmp_path / "run").read_history()
    failed = [r for r in records if r.error is not None]
    assert len(records) == 4 and summary["failed"] == len(failed) == 1  # the space has 4 archs; one fails
    assert expected in failed[0].error and failed[0].arch == NASTY + " 0 0"
    assert time.perf_counter() - started < 20


def test_quoting_a_placeholder_in_the_template_is_refused(quotes_space, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"space": "quotes", "evaluator": {
        "type": "command", "command": "python train.py --arch '{arch}'", "metric": "score"}})
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "evaluator.command: write {arch} without quotes" in capsys.readouterr().err


@pytest.mark.parametrize("executor", ["serial", "ray"])
def test_interrupting_the_search_ends_the_running_commands(executor, tmp_path):
    if executor == "ray":
        pytest.importorskip("ray")
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import nao\nfrom nao.spaces import RecurrentSpace\n"
                      "nao.register_space(RecurrentSpace(name='tiny', n_nodes=1), overwrite=True)\n")
    pids = tmp_path / "pids"
    running = 1 if executor == "serial" else 2
    config = write_config(tmp_path / "c.yaml", {
        "plugins": [str(plugin)], "space": "tiny", "strategy": "random", "budget": 4, "executor": executor,
        "workers": 2, "evaluator": {"type": "command", "metric": "score",
                                    "command": f"echo $$ >> {pids}; exec sleep 60"}})
    driver = subprocess.Popen([sys.executable, "-m", "nao", "search", str(config), "--out", str(tmp_path / "run")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and driver.poll() is None and not (
                pids.exists() and len(pids.read_text().split()) == running):
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read()
        children = [int(pid) for pid in pids.read_text().split()]
        assert len(children) == running
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130 and "interrupted" in driver.stderr.read()
    finally:
        driver.kill()
    for child in children:
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)


# ------------------------------------------------------------------------------------------ ask / tell
@pytest.fixture(scope="module")
def toy_table(tmp_path_factory) -> Path:
    """Every arch of a 3-node recurrent space with a synthetic score and a second metric."""
    space = nao.register_space(RecurrentSpace(name="toy-asktell", n_nodes=3), overwrite=True)
    bench = SyntheticBenchmark(space)
    rng = np.random.default_rng(0)
    archs = list({space.sample(rng) for _ in range(3000)})
    path = tmp_path_factory.mktemp("table") / "table.csv"
    write_results_csv(path, space, [(a, bench.score(a)) for a in archs])
    return path


def table_metrics(path: Path) -> dict[str, dict[str, float]]:
    lines = path.read_text().splitlines()[1:]
    return {line.rsplit(",", 1)[0]: {"score": float(line.rsplit(",", 1)[1])} for line in lines}


@pytest.mark.parametrize("strategy", ["nao", "evolution"])
def test_an_ask_tell_loop_on_a_table_decides_exactly_as_nao_search(strategy, toy_table, tmp_path):
    options = {"nao": TOY_NAO, "evolution": {"population": 8, "tournament": 3}}[strategy]
    run_search(load_config(None, ["space=toy-asktell", f"strategy={strategy}", "budget=30", "seed=2",
                                  f"evaluator.path={toy_table}", f"{strategy}={json.dumps(options)}"]),
               tmp_path / "search", progress=False)
    metrics = table_metrics(toy_table)
    with nao.Optimizer("toy-asktell", strategy=strategy, budget=30, seed=2, run_dir=tmp_path / "asktell",
                       candidates=toy_table, **options) as opt:
        while not opt.done:
            for trial in opt.ask()[::-1]:  # told in any order: the strategy still sees batch order
                opt.tell(trial, metrics[trial.text])
        best = opt.best
    assert history(tmp_path / "asktell") == sorted(history(tmp_path / "search"),
                                                   key=lambda r: (r["stage"], -r["index"]))
    assert best["metrics"]["score"] == max(r["metrics"]["score"] for r in history(tmp_path / "search"))
    assert (tmp_path / "asktell" / "metrics.jsonl").read_text() == (tmp_path / "search" / "metrics.jsonl").read_text()


def test_reopening_an_ask_tell_run_resumes_it(tmp_path):
    def evaluate(trial):
        return {"valid_acc": float(sum(trial.arch)) + 0.1 * trial.arch[0]}

    def run(run_dir: Path, stop_after: int | None = None) -> None:
        told = 0
        with nao.Optimizer("nao-rnn", budget=24, seed=1, run_dir=run_dir, metric="valid_acc", **TOY_NAO) as opt:
            while not opt.done:
                for trial in opt.ask():
                    if told == stop_after:
                        return
                    opt.tell(trial, evaluate(trial))
                    told += 1

    run(tmp_path / "whole")
    run(tmp_path / "cut", stop_after=11)  # mid-batch, after the controller's first fit
    run(tmp_path / "cut")
    assert history(tmp_path / "cut") == history(tmp_path / "whole")


def test_telling_what_was_not_asked_twice_or_without_the_metric_records_nothing(tmp_path):
    with nao.Optimizer("nb201", strategy="random", budget=4, seed=0, run_dir=tmp_path / "run",
                       metric="valid_acc") as opt:
        first, second, *_ = opt.ask()
        with pytest.raises(TellError, match="must hold 'valid_acc'"):
            opt.tell(first, {"loss": 0.3})
        with pytest.raises(TellError, match="must hold 'valid_acc'"):
            opt.tell(first, {"valid_acc": float("nan")})
        opt.tell(first, {"valid_acc": 91.0})
        with pytest.raises(TellError, match="already told"):
            opt.tell(first, {"valid_acc": 92.0})
        stranger = type(first)(first.arch, first.text, "mine", None, first.stage, 9)
        with pytest.raises(TellError, match="never asked"):
            opt.tell(stranger, {"valid_acc": 92.0})
        opt.tell(second, error="diverged")
        assert len(RunDir(tmp_path / "run").read_history()) == 2
        assert [t.index for t in opt.ask()] == [2, 3]  # asked again before telling: the same trials
    records = RunDir(tmp_path / "run").read_history()
    assert [(r.metrics, r.error) for r in records] == [({"valid_acc": 91.0}, None), ({}, "diverged")]


def test_an_ask_tell_run_directory_is_locked_and_its_config_checked_on_reopening(tmp_path):
    with nao.Optimizer("nb201", strategy="random", budget=4, run_dir=tmp_path / "run") as opt:
        with pytest.raises(UserError, match="in use"):
            nao.Optimizer("nb201", strategy="random", budget=4, run_dir=tmp_path / "run")
        opt.tell(opt.ask()[0], {"score": 1.0})
    with pytest.raises(UserError, match="different config"):
        nao.Optimizer("nb201", strategy="random", budget=4, seed=5, run_dir=tmp_path / "run")
    with pytest.raises(UserError, match=r"evolution\.population"):
        nao.Optimizer("nb201", strategy="evolution", budget=4, run_dir=tmp_path / "other", population=0)
