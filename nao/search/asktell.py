"""``nao.Optimizer``: NAO (or any registered strategy) as an ask/tell optimizer inside the user's own code.

    opt = nao.Optimizer("nb201", strategy="nao", budget=150, seed=0, run_dir="runs/mine", metric="valid_acc")
    while not opt.done:
        for trial in opt.ask():
            opt.tell(trial, {"valid_acc": my_train(trial.arch)})
    opt.best

It drives the same ``SearchSession`` as ``nao search`` and writes the same run directory (``nao report`` reads
it; reopening it resumes). Told the metrics a table holds, it decides exactly what ``nao search`` decides on that
table with the same seed (pass the table as ``candidates``, the archs the search may propose).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from nao.errors import UserError
from nao.search.evaluators import make_evaluator
from nao.search.loop import check_resumable, config_dict, resolve_config
from nao.search.rundir import CONFIG, RunDir
from nao.search.session import Pending, SearchSession
from nao.spaces import get_space
from nao.spaces.base import Arch, SearchSpace

CANDIDATES_FILE = "candidates.txt"


class TellError(UserError):
    """A ``tell`` that cannot be recorded: an unknown or already told trial, or metrics without the metric."""


@dataclass(frozen=True)
class Trial:
    """One arch to evaluate: ``arch`` (the space's object), ``text`` (its text form), which strategy step made it
    (``source``) and the controller's prediction where there is one."""

    arch: Arch
    text: str
    source: str
    predicted: float | None
    stage: int
    index: int


class Optimizer:
    """Ask/tell over a run directory (keyword-only options; ``options`` are the strategy's config section, e.g.
    ``seed_archs=30`` or ``controller={"epochs": 200}`` for ``nao``). ``candidates``: the only archs the search
    may propose, as a list (archs or text forms; saved in the run directory) or a results / arch-per-line file.
    ``plugins``: modules or ``.py`` files to import first (a user space or strategy)."""

    def __init__(self, space: str | SearchSpace, *, strategy: str = "nao", budget: int, seed: int = 0,
                 run_dir: str | Path, metric: str = "score", minimize: bool = False,
                 candidates: str | Path | Sequence[Arch | str] | None = None, device: str = "auto",
                 plugins: Sequence[str] = (), **options) -> None:
        name = space.name if isinstance(space, SearchSpace) else space
        if isinstance(space, SearchSpace) and get_space(name) is not space:
            raise UserError(f"space {name!r}: register it first (nao.register_space) so the run can be reopened")
        self.run = RunDir(run_dir)
        listed = candidates is not None and not isinstance(candidates, str | Path)
        if listed:
            texts = [a if isinstance(a, str) else get_space(name).format(a) for a in candidates]
            candidates = (self.run.path / CANDIDATES_FILE).resolve()
        self.config = resolve_config({
            "space": name, "strategy": strategy, "budget": budget, "seed": seed, "device": device,
            "plugins": list(plugins), strategy: options,
            "evaluator": {"type": "ask-tell", "metric": metric, "minimize": minimize,
                          "candidates": str(candidates) if candidates is not None else None}})
        self.space = get_space(name)
        self.run.lock()
        try:
            if listed:
                self.run.write_text(CANDIDATES_FILE, "".join(t + "\n" for t in texts))
            self._evaluator = make_evaluator(self.space, self.config.evaluator, seed=seed, run_path=self.run.path)
            if (self.run.path / CONFIG).exists():
                check_resumable(self.run, self.config)
            data = config_dict(self.config)
            self.run.write_text(CONFIG, yaml.safe_dump(data, sort_keys=False))
            self._session = SearchSession(self.config, self.run, self._evaluator, config_dict=data)
        except BaseException:
            self.run.unlock()
            raise
        self._asked: dict[tuple[int, int], float] = {}  # (stage, index) -> when it was asked
        self._summary: dict | None = None

    # ------------------------------------------------------------------------------------------- ask / tell
    @property
    def done(self) -> bool:
        """True once the budget is spent (or the strategy has nothing new to offer)."""
        return self._session.done

    def ask(self) -> list[Trial]:
        """The archs to evaluate now: every untold trial of the current batch (the same ones again if asked twice
        before telling), or the next batch once all are told. Empty when done."""
        pending = self._session.ask()
        now = time.perf_counter()
        for p in pending:
            self._asked.setdefault((p.stage, p.index), now)
        return [Trial(p.candidate.arch, self.space.format(p.candidate.arch), p.candidate.source,
                      p.candidate.predicted, p.stage, p.index) for p in pending]

    def tell(self, trial: Trial, metrics: dict[str, float] | None = None, *, error: str | None = None) -> None:
        """Record the metrics of ``trial`` (they must hold ``metric`` as a finite number), or with ``error`` that
        its evaluation failed (it spends budget, and is never proposed again)."""
        pending = self._pending(trial)
        if error is None:
            metrics = self._checked(metrics)
        elif metrics is not None:
            raise TellError("tell: give metrics or error=, not both")
        seconds = time.perf_counter() - self._asked.pop((trial.stage, trial.index), time.perf_counter())
        self._session.tell(pending, metrics=metrics, error=error, seconds=seconds)
        if self._session.done and self._session.spent >= self.config.budget:
            self._summary = self._session.finish()

    @property
    def best(self) -> dict:
        """The best evaluated arch so far: ``{"arch": text, "metrics": {...}, "score": searched metric}``."""
        if not self._session.history:
            raise UserError("nothing has been evaluated yet")
        record, value = self._session.best()
        return {"arch": record.arch, "metrics": dict(record.metrics), "score": value}

    def summary(self) -> dict:
        """The summary ``nao search`` prints at its end (the last stage logged to ``metrics.jsonl``)."""
        if self._summary is None:
            self._summary = self._session.finish()
        return self._summary

    def close(self) -> None:
        """Release the run directory (it can then be reopened, here or by another process)."""
        self._session.close()
        self.run.unlock()

    def __enter__(self) -> Optimizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- internals
    def _pending(self, trial: Trial) -> Pending:
        if not isinstance(trial, Trial):
            raise TellError(f"tell: expected a Trial from ask(), got {type(trial).__name__}")
        batch = self._session.batch
        if trial.stage != self._session.stage or not 0 <= trial.index < len(batch) \
                or batch[trial.index].arch != trial.arch:
            told = trial.stage < self._session.stage
            raise TellError(f"tell: {trial.text} was {'already told' if told else 'never asked'} (only the trials "
                            "of the latest ask() can be told)")
        pending = Pending(trial.stage, trial.index, batch[trial.index])
        if self._session.told(pending):
            raise TellError(f"tell: {trial.text} was already told")
        return pending

    def _checked(self, metrics: dict | None) -> dict[str, float]:
        metric = self.config.evaluator.metric
        if not isinstance(metrics, dict):
            raise TellError(f"tell: expected a dict of metrics holding {metric!r}, got {metrics!r}")
        value = metrics.get(metric)
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            raise TellError(f"tell: the metrics must hold {metric!r} as a finite number, got {value!r}")
        return {str(k): float(v) for k, v in metrics.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}
