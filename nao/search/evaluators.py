"""Evaluators: what an arch scores. One evaluator and one budget are shared by every strategy.

Every ``evaluator.type`` is a registered factory with the dataclass of its ``evaluator:`` section (a subclass of
``EvaluatorConfig``): the built-ins below and in ``nao.search.external_evaluators`` register themselves exactly as
a user's plugin does (``nao.register_evaluator``). ``standalone`` and ``supernet`` train networks with the task of
the searched space (``nao.register_task``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from nao.config import ConfigError, from_dict, to_dict
from nao.errors import UserError
from nao.registry import EVALUATORS, register_evaluator, task_for
from nao.results import load_results
from nao.spaces.base import Arch, SearchSpace
from nao.torchutils import resolve_device


@dataclass
class EvaluatorConfig:
    """The keys of every ``evaluator:`` section; an evaluator's own config dataclass subclasses this one."""

    type: str = "table"  # the registered evaluator (`nao search --help` lists them)
    metric: str | None = None  # searched on
    report_metric: str | None = None  # reported only (e.g. test accuracy), never searched on
    minimize: bool = False  # lower metric is better


def parse_evaluator_config(data: dict | None, *, where: str = "evaluator") -> EvaluatorConfig:
    """The ``evaluator:`` section read into the config dataclass its ``type`` registered."""
    data = dict(data or {})
    if not isinstance(data.get("type", "table"), str):
        raise ConfigError(f"{where}.type: expected a name, got {data['type']!r}")
    entry = EVALUATORS.get(data.setdefault("type", "table"))
    return from_dict(entry.config, data, where=where)


class Evaluator(Protocol):
    """What a search asks of an evaluator. A complete minimal one, registered from a plugin file::

        from dataclasses import dataclass
        import nao

        @dataclass
        class ParamCountConfig(nao.EvaluatorConfig):
            penalty: float = 0.1            # evaluator.penalty in a config; checked when the config loads

        class ParamCount:
            shares_weights = False          # scores never change between stages

            def __init__(self, space, config, *, seed, device, run_path):
                self.space, self.penalty = space, config.penalty
                self.metric, self.report_metric, self.minimize = config.metric or "score", None, config.minimize

            def evaluate(self, arch):       # in the driver, or in a Ray worker (then run_path is the driver's)
                return {"score": -self.penalty * sum(self.space.to_tokens(arch))}

            def candidates(self):           # None: every arch of the space can be evaluated
                return None

            def cost(self, arch):
                return 1.0

            def begin_stage(self, stage, pool):
                pass

        nao.register_evaluator("param-count", ParamCount, config=ParamCountConfig)

    The factory is called once per process that evaluates (the driver; each Ray worker), before any evaluation,
    with the searched space, the config section, the run's seed, the device (``auto`` resolved by the caller as
    it likes) and the run directory (``None`` when the evaluator is built only to check a config). Raise
    ``nao.UserError`` for bad settings (a missing file): the search stops with that line. Any other exception
    from ``evaluate`` is a failed evaluation: retried, then recorded, and the search goes on. For the user's
    own training code, the built-in ``function`` and ``command`` evaluators need no class at all.
    """

    metric: str
    report_metric: str | None
    minimize: bool

    shares_weights: bool  # True: scores change as shared weights train, so the loop re-scores every stage

    def evaluate(self, arch: Arch) -> dict[str, float]:
        """The arch's metrics (``metric`` and, when there is one, ``report_metric``)."""

    def candidates(self) -> list[Arch] | None:
        """Every arch this evaluator can score, or ``None`` when it scores the whole space. Called once, when the
        strategy is built: strategies then sample and mutate only within these archs."""

    def cost(self, arch: Arch) -> float:
        """How long ``evaluate(arch)`` is expected to take, relative to other archs (only compared, never
        shown): the Ray executor starts a batch's costliest evaluations first, so that the batch does not end
        with one worker still busy on a long evaluation and the others idle."""

    def begin_stage(self, stage: int, pool: list[Arch]) -> None:
        """Called before stage ``stage``'s batch is evaluated; ``pool`` = evaluated archs + the batch."""

    # Optional: ``interrupt()``, called from another thread while ``evaluate`` runs in a Ray worker whose search is
    # being stopped, to end what the evaluation started outside the process (the command evaluator's processes).


class StaticEvaluator:
    """An evaluator whose scores never change (no weights to train between stages)."""

    shares_weights = False

    def begin_stage(self, stage: int, pool: list[Arch]) -> None:
        pass

    def cost(self, arch: Arch) -> float:
        return 1.0  # every lookup costs the same


@dataclass
class TableConfig(EvaluatorConfig):
    path: str | None = None  # the results file used as a benchmark


class TableEvaluator(StaticEvaluator):
    """A results file used as a benchmark: evaluating an arch is a lookup, of the arch itself or, when the table
    does not hold it, of the first row equivalent to it (same canonical form): a table may keep one
    representative per network, as NAS-Bench-101 does."""

    def __init__(self, space: SearchSpace, config: TableConfig, **_) -> None:
        if not config.path:
            raise UserError("evaluator.path is required for evaluator.type=table (a results file)")
        extra = [config.report_metric] if config.report_metric else []
        results = load_results(Path(config.path).expanduser(), space, metric=config.metric, extra=extra)
        self.metric = results.metric
        self.report_metric = config.report_metric
        self.minimize = config.minimize
        reported = results.extra.get(config.report_metric)
        self._rows = {
            arch: {self.metric: float(score)} | ({self.report_metric: float(reported[i])} if extra else {})
            for i, (arch, score) in enumerate(zip(results.archs, results.scores, strict=True))
        }
        self._archs = list(self._rows)
        self.space = space
        self._representative: dict = {}
        for arch in self._archs:
            self._representative.setdefault(space.canonical(arch), arch)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        row = self._rows.get(arch) or self._rows.get(self._representative.get(self.space.canonical(arch)))
        if row is None:
            raise KeyError(f"{self.space.format(arch)} is not in the table, nor is any arch equivalent to it")
        return dict(row)

    def candidates(self) -> list[Arch]:
        return self._archs


class SyntheticEvaluator(StaticEvaluator):
    """The synthetic benchmark of ``nao.tasks.synthetic``: any arch of any space, no data needed."""

    def __init__(self, space: SearchSpace, config: EvaluatorConfig, **_) -> None:
        from nao.tasks.synthetic import SyntheticBenchmark

        if config.metric not in (None, "score"):
            raise UserError(f"evaluator.metric: the synthetic evaluator has one metric, 'score'; got {config.metric!r}")
        if config.report_metric is not None:
            raise UserError("evaluator.report_metric: the synthetic evaluator has no metric to report")
        self.benchmark = SyntheticBenchmark(space)
        self.metric, self.report_metric, self.minimize = "score", None, config.minimize

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return {"score": self.benchmark.score(arch)}

    def candidates(self) -> None:
        return None


@dataclass
class TaskEvaluatorConfig(EvaluatorConfig):
    task: dict = field(default_factory=dict)  # data, network, training: the task's own config (its ``TaskConfig``)


class TaskEvaluator:
    """Base of the evaluators of a task's networks (``standalone``, ``supernet``, ``proxy``): the metric is the task's
    own, the test set is never a search metric, and ``config.task`` is read into the subclass's
    ``TaskConfig`` dataclass (the resolved form is written back, so the saved config shows every default,
    with the metric and its direction)."""

    metric: str
    minimize: bool
    report_metric = None
    TaskConfig: type

    def __init__(self, space: SearchSpace, config: TaskEvaluatorConfig, *, seed: int, device: str,
                 run_path: Path | None) -> None:
        if config.metric not in (None, self.metric):
            raise ConfigError(f"evaluator.metric: the {config.type} evaluator measures {self.metric!r}, "
                              f"got {config.metric!r}")
        if config.report_metric is not None:
            raise ConfigError("evaluator.report_metric: a search never looks at the test set; "
                              "train the best arch with `nao train` for its test score")
        self.space, self.seed, self.run_path = space, seed, run_path
        self.task = from_dict(self.TaskConfig, config.task or {}, where="evaluator.task")
        self.check_task(self.task)
        config.task = to_dict(self.task)
        config.metric, config.minimize = self.metric, self.minimize  # saved: readers of the run need them
        self.device = resolve_device(device)

    def check_task(self, task) -> None:
        """Raise ``ConfigError`` for values the dataclass types cannot rule out."""

    def whole_validation(self) -> dict:
        """``task`` overrides that score on the whole validation split rather than the subset a search scores its
        archs on (a ground truth's cells, scripts/ws_ground_truth.py); ``{}`` where there is no subset."""
        return {}

    def candidates(self) -> None:
        return None

    def cost(self, arch: Arch) -> float:
        return 1.0  # no estimate: the batch's order is kept


class SharedWeightsEvaluator:
    """Base of the weight-sharing evaluators (NAO-WS): the supernet trains on the pool before each
    batch, and its weights after stage ``k`` are saved as ``RUN/supernet/stageNNNN.pt``, so a resumed
    search reloads them instead of training again (training is seeded by the run seed and the stage,
    so a stage cut short by a kill trains again to the same weights). Subclasses give ``supernet``
    (the module), ``train(pool, seed=, desc=)`` and ``evaluate``, and clear their caches in
    ``weights_changed``."""

    shares_weights = True

    def __init__(self, *, seed: int, device, run_path: Path | None) -> None:
        self.seed, self.device, self.run_path = seed, device, run_path
        self._stage: int | None = None  # the stage whose weights are loaded

    def checkpoint(self, stage: int) -> Path:
        if self.run_path is None:
            raise ValueError("a weight-sharing evaluator needs a run directory for its checkpoints")
        return self.run_path / "supernet" / f"stage{stage:04d}.pt"

    def begin_stage(self, stage: int, pool: list[Arch]) -> None:
        import torch

        if self._stage == stage:  # already loaded (re-scoring after the batch): nothing to reload or recompute
            return
        self.weights_changed()
        path = self.checkpoint(stage)
        if path.exists():
            self.supernet.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
            self._stage = stage
            return
        earlier = sorted(path.parent.glob("stage*.pt"))
        if not earlier:
            self.warm_up(seed=self.seed * 100_003)
        elif self._stage != int(earlier[-1].stem[5:]):
            self.supernet.load_state_dict(torch.load(earlier[-1], map_location=self.device, weights_only=True))
        self.train(pool, seed=self.seed * 100_003 + stage, desc=f"supernet stage {stage}")
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(self.supernet.state_dict(), tmp)
        os.replace(tmp, path)
        self._stage = stage

    def warm_up(self, seed: int) -> None:
        """Called once, before the first stage trains from the fresh supernet (not when a checkpoint is reloaded):
        training before the pool's first arch is scored. Nothing by default."""

    def weights_changed(self) -> None:
        """Drop whatever was cached for the previous weights."""


def task_evaluator(kind: str) -> Callable[..., Evaluator]:
    """The factory of ``evaluator.type: kind``: the ``kind`` evaluator of the task that trains the space's archs."""
    def make(space: SearchSpace, config: TaskEvaluatorConfig, **kwargs) -> Evaluator:
        return task_for(space, needs=kind, key=f"evaluator.type={kind}").evaluators[kind](space, config, **kwargs)
    return make


register_evaluator("table", TableEvaluator, config=TableConfig)
register_evaluator("synthetic", SyntheticEvaluator, config=EvaluatorConfig)


def make_evaluator(space: SearchSpace, config: EvaluatorConfig, *, seed: int = 0, device: str = "auto",
                   run_path: Path | None = None) -> Evaluator:
    """The evaluator of ``config.type``; ``run_path`` is where an evaluator with state keeps its checkpoints and
    where evaluations get their working directories."""
    return EVALUATORS.get(config.type).component(space, config, seed=seed, device=device, run_path=run_path)
