"""Helpers shared by the benchmark scripts: the shared data (NB201 table, NB301 surrogate), ``key=value``
hyperparameters, and a finished weight-sharing search's last supernet."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

import nao
from nao.config import apply_overrides
from nao.errors import UserError
from nao.search import SearchConfig, load_config, resolve_config, run_search
from nao.search.evaluators import Evaluator, EvaluatorConfig, make_evaluator
from nao.search.loop import check_resumable
from nao.search.rundir import CONFIG, RunDir
from nao.spaces.base import Arch, SearchSpace

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NB201_CSV = SHARED_DATA / "nb201" / "cifar10.csv"
NB301_DIR = SHARED_DATA / "nb301"  # YAHPO Gym's NB301 surrogate (model_v2.onnx, encoding_v2.json)


def load_nb201(path: Path = NB201_CSV) -> tuple[list, dict[str, np.ndarray]]:
    """All 15,625 NB201 cells as (archs, {column: values}) from the shared CIFAR-10 table."""
    if not path.exists():
        raise SystemExit(f"{path} not found: the benchmarks read ../shared/data beside the repository")
    space = nao.get_space("nb201")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    archs = [space.parse(r["arch"]) for r in rows]
    columns = {c: np.array([float(r[c]) for r in rows]) for c in ("valid_acc", "test_acc")}
    return archs, columns


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=0.01", "augment=false"]`` -> ``{"lr": 0.01, "augment": False}`` (values parsed as JSON)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@dataclass
class FinalSupernet:
    """A weight-sharing search's last supernet, loaded: it scores any arch of the run's space."""

    config: SearchConfig  # the run's saved config
    space: SearchSpace
    pool: list[Arch]  # the archs the run evaluated
    supernet: Evaluator
    stage: int  # whose weights are loaded

    def ranking(self) -> list[tuple[Arch, float]]:
        """The pool with the supernet's scores, best first (ties keep the history's order)."""
        scores = np.array([self.supernet.evaluate(a)[self.supernet.metric] for a in self.pool])
        order = np.argsort(scores if self.supernet.minimize else -scores, kind="stable")
        return [(self.pool[i], float(scores[i])) for i in order]


def load_final_supernet(run: Path, overrides: list[str] = ()) -> FinalSupernet:
    """The last supernet of run directory ``run``, its saved config changed by ``overrides`` (``key=value``, e.g.
    ``evaluator.task.valid_images=6000`` to score on more images than the search did); ``UserError`` for a
    directory that is not a weight-sharing search with a trained supernet."""
    if not run.is_dir():
        raise UserError(f"{run}: no such directory")
    if not (run / CONFIG).is_file():
        raise UserError(f"{run}: not a search run directory (no {CONFIG})")
    config = resolve_config(apply_overrides(yaml.safe_load((run / CONFIG).read_text()), list(overrides)))
    space = nao.get_space(config.space)
    supernet = make_evaluator(space, config.evaluator, seed=config.seed, device=config.device, run_path=run)
    if not supernet.shares_weights:
        raise UserError(f"{run}: not a weight-sharing search (evaluator.type {config.evaluator.type})")
    state = RunDir(run).load_state()
    stage = state["stage"] if state else 0
    if not supernet.checkpoint(stage).exists():  # `begin_stage` would train it
        raise UserError(f"{run}: no supernet checkpoint {supernet.checkpoint(stage).name} (the search has not "
                        "trained its supernet yet)")
    pool = [space.parse(r.arch) for r in RunDir(run).read_history() if r.error is None]
    supernet.begin_stage(stage, pool)  # loads the last stage's weights
    return FinalSupernet(config, space, pool, supernet, stage)


def require_cnn_supernet(final: FinalSupernet, option: str) -> None:
    """``UserError`` naming ``option`` unless ``final``'s supernet scores CNN cells (what training-free proxies
    score)."""
    from nao.tasks.cnn.evaluators import SupernetEvaluator

    if not isinstance(final.supernet, SupernetEvaluator):
        raise UserError(f"{option}: the runs' {type(final.supernet).__name__} is not a CNN supernet (proxies score "
                        "CNN cells)")


def searched_runs(config: Path, seeds: list[int], search_dir: Path, overrides: list[str] = ()) -> list[Path]:
    """The searches of config file ``config`` (changed by ``overrides``) with each of ``seeds``, in
    ``search_dir/search-seedS``: run here, or resumed where a kill left them, unless finished; ``UserError`` for a
    run there made with another config."""
    runs = []
    for seed in seeds:
        settings, out = load_config(config, [*overrides, f"seed={seed}"]), search_dir / f"search-seed{seed}"
        started = (out / CONFIG).exists()
        if started:
            # the evaluator fills in its defaults (the metric) as run_search's would before the run saved its config
            make_evaluator(nao.get_space(settings.space), settings.evaluator, seed=seed, device=settings.device)
            try:
                check_resumable(RunDir(out), settings)
            except UserError as err:
                raise UserError(f"{out}: not a run of this search: {err}") from None
        if not started or len(RunDir(out).read_history()) < settings.budget:
            print(f"searching with seed {seed} into {out}", file=sys.stderr)
            run_search(settings, out, resume=started)
        runs.append(out)
    return runs


def standalone_config(config: SearchConfig, epochs: int) -> EvaluatorConfig:
    """The ``standalone`` evaluator of a supernet search's task (same network, data and validation images), training
    ``epochs`` epochs."""
    task = config.evaluator.task
    return replace(config.evaluator, type="standalone",
                   task=task | {"train": task.get("train", {}) | {"epochs": epochs}})
