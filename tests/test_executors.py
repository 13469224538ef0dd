"""Where evaluations run: ``executor: serial`` and ``executor: ray`` (a real local Ray with 2 CPUs), retries,
failed evaluations, and runs that survive Ctrl-C and a killed driver."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import faulty_evaluator
import numpy as np
import pytest
import torch
import yaml
from conftest import SMALL
from faulty_evaluator import FaultyEvaluator

from nao.config import ConfigError
from nao.errors import UserError
from nao.report import load_run, summary_rows
from nao.search import load_config, run_search
from nao.search.evaluators import make_evaluator
from nao.search.executors import make_executor
from nao.search.rundir import RunDir
from nao.spaces import get_space

TOY_NAO = {"seed_archs": 4, "new_per_iteration": 4, "top_k": 4, "epochs": 30, "controller": SMALL}
VOLATILE = ("seconds", "started", "ended", "pid")  # what differs between two runs of the same search


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting one takes seconds); workers import the faulty evaluator as a
    plugin, as they would a user's."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def settings(strategy: str = "random", budget: int = 6, executor: str = "serial", retries: int = 2,
             ray: dict | None = None, **task) -> dict:
    return {"space": "nb201", "strategy": strategy, "budget": budget, "seed": 0, "executor": executor,
            "workers": 2, "retries": retries, "ray": ray or {}, "evaluator": {"type": "faulty", "task": task},
            "plugins": [faulty_evaluator.__file__],
            "nao": TOY_NAO}


def search(out: Path, **kwargs) -> dict:
    config = load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings(**kwargs).items()])
    return run_search(config, out, progress=False)


def records(path: Path) -> list[dict]:
    return [asdict(r) for r in RunDir(path).read_history()]


def comparable(path: Path) -> list[dict]:
    """The history in batch order, without timings and attempt counts."""
    rows = sorted(records(path), key=lambda r: (r["stage"], r["index"]))
    return [{k: v for k, v in r.items() if k not in ("seconds", "attempts")}
            | {"metrics": {k: v for k, v in r["metrics"].items() if k not in VOLATILE}} for r in rows]


def first_archs(tmp_path: Path, n: int, **kwargs) -> list[str]:
    """The first ``n`` archs a fault-free run evaluates (the same seed proposes the same first batch)."""
    search(tmp_path / "plain", **kwargs)
    return [r["arch"] for r in records(tmp_path / "plain")[:n]]


# ------------------------------------------------------------------------------------------ serial
def test_a_failing_evaluation_is_retried_then_recorded_failed_and_the_search_goes_on(tmp_path):
    doomed = first_archs(tmp_path, 2, strategy="nao", budget=12)
    summary = search(tmp_path / "run", strategy="nao", budget=12, fail=doomed)
    history = records(tmp_path / "run")
    failed = [r for r in history if r["error"] is not None]
    assert [r["arch"] for r in failed] == doomed
    assert all(r["error"].startswith("RuntimeError: boom") and r["attempts"] == 3 and r["metrics"] == {}
               and "faulty_evaluator.py" in r["extra"]["traceback"] for r in failed)
    assert len(history) == 12 and len({r["arch"] for r in history}) == 12  # budget spent, on distinct archs
    assert summary["evaluated"] == 12 and summary["failed"] == 2 and summary["best_arch"] not in doomed
    assert any(r["source"] == "nao" for r in history)  # the controller went on without the failed archs
    [row] = summary_rows([load_run(tmp_path / "run")])  # `nao report` counts them too
    assert (row["evaluated"], row["failed"], row["best_arch"]) == (12, 2, summary["best_arch"])


def test_a_metric_that_is_not_a_number_counts_as_a_failed_evaluation(tmp_path):
    [bad] = first_archs(tmp_path, 1)
    summary = search(tmp_path / "run", retries=0, nan=[bad])
    [failed] = [r for r in records(tmp_path / "run") if r["error"] is not None]
    assert failed["arch"] == bad and failed["error"] == "FloatingPointError: score is nan" and failed["attempts"] == 1
    assert summary["failed"] == 1 and summary["evaluated"] == 6


def test_a_user_error_stops_the_search_and_keeps_what_finished(tmp_path):
    archs = first_archs(tmp_path, 3)
    with pytest.raises(UserError, match="no data for"):
        search(tmp_path / "run", user_error=[archs[2]])
    assert [r["arch"] for r in records(tmp_path / "run")] == archs[:2]


def test_a_search_whose_first_evaluations_all_fail_stops_with_the_error(tmp_path):
    archs = first_archs(tmp_path, 6)
    with pytest.raises(UserError, match=r"the first 5 evaluations all failed, the last with: RuntimeError: boom"):
        search(tmp_path / "run", retries=0, fail=archs)
    assert len(records(tmp_path / "run")) == 5


def test_executor_settings_are_checked_and_may_change_on_resume(tmp_path):
    with pytest.raises(ConfigError, match="executor: must be one of serial, ray, got 'dask'"):
        search(tmp_path / "bad", executor="dask")
    search(tmp_path / "run", budget=4)
    config = load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings(budget=6, retries=0).items()]
                         + ["workers=8", "ray.num_cpus=2"])
    assert run_search(config, tmp_path / "run", resume=True, progress=False)["evaluated"] == 6


def test_asking_for_ray_without_it_installed_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(UserError, match=r"executor: ray needs Ray.*pip install 'nao-search\[ray\]'"):
        search(tmp_path / "run", executor="ray")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("ray.num_gpus=-1", "ray.num_gpus: must be at least 0, got -1"),
    ("ray.resources={\"GPU\": 1}", "ray.resources.GPU: CPUs and GPUs are asked for with ray.num_gpus"),
    ("ray.resources={\"large_memory\": -2}", "ray.resources.large_memory: must be a number at least 0, got -2"),
    ("ray.resources={\"large_memory\": \"lots\"}", "ray.resources.large_memory: must be a number at least 0"),
])
def test_ray_resources_ray_would_refuse_are_config_errors_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, ["executor=ray", override])


def test_a_supernet_evaluator_refuses_the_ray_executor(tmp_path):
    config = load_config(None, ["space=nao-rnn", "evaluator.type=supernet", "executor=ray"])
    with pytest.raises(ConfigError, match="one shared network"):
        run_search(config, tmp_path / "run", progress=False)


# ------------------------------------------------------------------------------------------ ray
def test_ray_runs_a_batch_concurrently_and_appends_each_result_as_it_finishes(local_ray, tmp_path):
    appended, meeting = [], tmp_path / "meeting"
    meeting.mkdir()
    config = load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings(
        budget=4, executor="ray", sleep=1.0, rendezvous=str(meeting)).items()])
    summary = run_search(config, tmp_path / "run", progress=False, on_evaluated=lambda r: appended.append(time.time()))
    history = records(tmp_path / "run")
    assert summary["evaluated"] == 4 and summary["failed"] == 0
    spans = [(r["metrics"]["started"], r["metrics"]["ended"], r["metrics"]["pid"]) for r in history]
    assert len({pid for _, _, pid in spans}) == 2  # two worker processes
    overlaps = [min(a[1], b[1]) - max(a[0], b[0]) for i, a in enumerate(spans) for b in spans[i + 1:]]
    assert max(overlaps) > 0.5  # the first two evaluations waited for each other, then slept 1 s side by side
    assert min(appended) < max(end for _, end, _ in spans) - 0.5  # the first result did not wait for the batch


def test_ray_and_serial_make_the_same_search(local_ray, tmp_path):
    search(tmp_path / "serial", strategy="nao", budget=12, sleep=0.05)
    search(tmp_path / "ray", strategy="nao", budget=12, executor="ray", sleep=0.05)
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "serial")


def test_ray_starts_the_costliest_evaluations_of_a_batch_first_and_equal_costs_in_batch_order(local_ray):
    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng(seed)) for seed in range(5)]
    costs = dict(zip((space.format(arch) for arch in archs), (1.0, 3.0, 2.0, 3.0, 1.0), strict=True))
    config = load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings(executor="ray", costs=costs).items()]
                         + ["workers=1"])  # one worker: results come in the order evaluations start
    executor = make_executor(config, space, make_evaluator(space, config.evaluator))
    try:
        assert [outcome.position for outcome in executor.run(archs)] == [1, 3, 2, 0, 4]
    finally:
        executor.close()


def test_a_worker_killed_mid_evaluation_is_replaced_and_the_evaluation_retried(local_ray, tmp_path):
    victim = first_archs(tmp_path, 2)[1]
    summary = search(tmp_path / "run", executor="ray", die_once=[victim], markers=str(tmp_path))
    [record] = [r for r in records(tmp_path / "run") if r["arch"] == victim]
    assert record["error"] is None and record["attempts"] == 2 and summary["failed"] == 0
    assert comparable(tmp_path / "run") == comparable(tmp_path / "plain")


def test_an_evaluation_that_raises_on_a_worker_is_retried_then_recorded_failed(local_ray, tmp_path):
    doomed = first_archs(tmp_path, 1)[0]
    summary = search(tmp_path / "run", executor="ray", retries=1, fail=[doomed])
    [record] = [r for r in records(tmp_path / "run") if r["error"] is not None]
    assert record["arch"] == doomed and record["attempts"] == 2 and record["error"].startswith("RuntimeError: boom")
    assert "raise RuntimeError" in record["extra"]["traceback"]  # the worker's traceback, kept in the history
    assert summary["evaluated"] == 6 and summary["failed"] == 1


def test_a_search_interrupted_then_killed_resumes_to_the_uninterrupted_result(local_ray, tmp_path):
    """Ctrl-C stops a Ray run cleanly (exit 130); SIGKILL loses at most the evaluations in flight; --resume
    finishes the same search as a run that was never stopped. The driver joins the test's Ray cluster
    (``ray.address``)."""
    config = tmp_path / "search.yaml"
    address = local_ray.get_runtime_context().gcs_address  # the driver joins it: nothing of Ray dies with it
    config.write_text(yaml.safe_dump(settings(strategy="nao", budget=12, executor="ray", sleep=0.4,
                                              ray={"address": address})))
    out = tmp_path / "run"
    command = [sys.executable, str(Path(faulty_evaluator.__file__)), "search", str(config), "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for stop, resume in ((signal.SIGINT, []), (signal.SIGKILL, ["--resume"])):
        seen = len(records(out)) if out.exists() else 0
        proc = subprocess.Popen(command + resume, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while (not out.exists() or len(records(out)) < seen + 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(stop)
        _, stderr = proc.communicate(timeout=60)
        if stop == signal.SIGINT:
            assert proc.returncode == 130 and "nao: interrupted" in stderr
        else:
            assert proc.returncode == -signal.SIGKILL
        assert seen + 2 <= len(records(out)) < 12
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the driver processes: the controller's arithmetic is the same
    try:
        resumed = load_config(config, [])
        assert run_search(resumed, out, resume=True, progress=False)["evaluated"] == 12
        search(tmp_path / "straight", strategy="nao", budget=12)
    finally:
        torch.set_num_threads(threads)
    assert comparable(out) == comparable(tmp_path / "straight")


def test_asking_for_resources_a_local_ray_lacks_is_an_error_and_too_many_workers_a_warning(local_ray, tmp_path,
                                                                                          capsys):
    with pytest.raises(UserError, match=r"has 2 CPU, 0 GPU; an evaluation asks for 1 CPU, 1 GPU, so 0 of 2 work"):
        search(tmp_path / "gpu", executor="ray", ray={"num_gpus": 1})
    assert not (tmp_path / "gpu" / "config.yaml").exists()
    search(tmp_path / "cpus", budget=2, executor="ray", ray={"num_cpus": 2})
    assert "warning: the Ray cluster has 2 CPU; an evaluation asks for 2 CPU, so 1 of 2 workers can run at once; " \
        "running 1" in capsys.readouterr().err


def test_ray_workers_without_a_gpu_of_their_own_evaluate_on_the_cpu(tmp_path):
    pytest.importorskip("ray")
    from nao.search.executors import make_executor
    from nao.spaces import get_space

    for num_gpus, device in ((0, "cpu"), (1, "auto")):  # Ray leaves CUDA visible to a worker that asked for none
        config = load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings(
            executor="ray", ray={"num_gpus": num_gpus}).items()])
        executor = make_executor(config, get_space("nb201"), FaultyEvaluator(get_space("nb201"), config.evaluator))
        assert executor.recipe.device == device
