"""One search's state in its run directory, advanced by ``ask`` and ``tell``.

``nao search`` (``run_search``) and the ask/tell ``nao.Optimizer`` both drive a ``SearchSession``: the first hands
each batch to an executor, the second to the user's code. So both write the same run directory and, told the
same metrics, make the same decisions.

A stage is one batch: the state (strategy, batch, stage number) is saved atomically when the batch is made; each
evaluation is appended to the history as it is told, in whatever order. A failed evaluation spends budget and is
never proposed again, but gives the strategy no score. The strategy sees results in batch order, so where and in
which order evaluations ran changes nothing it decides. With a weight-sharing evaluator the shared weights train
before each batch (``evaluator.begin_stage``) and every arch evaluated so far is re-scored after it
(deterministic, so simply redone after a resume): the strategy always compares scores from the same weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from nao.errors import UserError
from nao.registry import STRATEGIES
from nao.search.loggers import make_logger
from nao.search.rundir import HISTORY, METRICS, SCORES, Record, RunDir
from nao.search.strategies import Candidate, Evaluated, SearchContext
from nao.spaces import get_space

# a search whose first evaluations all fail has a cause that is not the archs (a device, a path): it stops
STOP_AFTER_FAILURES = 5


@dataclass(frozen=True)
class Pending:
    """A candidate of the current batch that has not been told yet; ``index`` is its place in the batch."""

    stage: int
    index: int
    candidate: Candidate


class SearchSession:
    """The history, the strategy and its current batch, restored from ``run`` (a locked run directory)."""

    def __init__(self, config, run: RunDir, evaluator, *, config_dict: dict) -> None:
        self.config, self.run, self.evaluator = config, run, evaluator
        self.space = space = get_space(config.space)
        context = SearchContext(space=space, seed=config.seed, minimize=evaluator.minimize, run_path=run.path,
                                device=config.device, candidates=evaluator.candidates())
        self.strategy = STRATEGIES.get(config.strategy).component(context, config.options)
        records = run.read_history()
        self.history = [r for r in records if r.error is None]  # succeeded, aligned with `evaluated`
        self.evaluated = [self._as_evaluated(r) for r in self.history]
        self.failed = [space.parse(r.arch) for r in records if r.error is not None]
        self.spent = len(records)
        self.exhausted = False  # the strategy had nothing new to offer (a tiny space, fully evaluated)
        self._done = {space.canonical(space.parse(r.arch)) for r in records}
        self.batch: list[Candidate] = []
        self.stage = 0
        state = run.load_state()
        if state is not None:
            self.strategy.load_state_dict(state["strategy"])
            self.batch = [Candidate(space.parse(c["arch"]), c["source"], c["predicted"]) for c in state["pending"]]
            self.stage = state.get("stage", 0)
        self.logger = make_logger(config.logger, run.path, config_dict)
        path = run.path / METRICS
        self._logged = {json.loads(line)["evaluated"] for line in path.open()
                        if line.endswith("\n")} if path.exists() else set()

    @property
    def done(self) -> bool:
        return self.spent >= self.config.budget or self.exhausted

    def pending(self) -> list[Pending]:
        """The current batch's candidates not yet told."""
        return [Pending(self.stage, i, c) for i, c in enumerate(self.batch)
                if self.space.canonical(c.arch) not in self._done]

    def ask(self) -> list[Pending]:
        """The candidates to evaluate now: the current batch's untold ones, or (when it is complete) a new batch
        from the strategy. Empty when the search is done."""
        if self.done:
            return []
        todo = self.pending()
        if not todo:
            self._end_stage()
            self.batch = self.strategy.next_batch(self.evaluated, self.config.budget - self.spent, self.failed)
            self.stage += 1
            self.run.save_state({"strategy": self.strategy.state_dict(), "stage": self.stage, "pending": [
                {"arch": self.space.format(c.arch), "source": c.source, "predicted": c.predicted}
                for c in self.batch]})
            todo = self.pending()
            if not todo:
                self.exhausted = True
                return []
        self.evaluator.begin_stage(self.stage, [e.arch for e in self.evaluated] + [p.candidate.arch for p in todo])
        return todo

    def tell(self, pending: Pending, *, metrics: dict[str, float] | None, error: str | None = None,
             attempts: int = 1, seconds: float = 0.0, extra: dict | None = None) -> Record:
        """Record one finished evaluation (``error`` set when it failed) and return its history record."""
        candidate = pending.candidate
        record = Record(arch=self.space.format(candidate.arch), metrics=metrics or {},
                        iteration=self.strategy.iteration, source=candidate.source, predicted=candidate.predicted,
                        seconds=round(seconds, 6), stage=pending.stage, index=pending.index, error=error,
                        attempts=attempts, extra=extra or {})
        self.run.append(record)
        self.spent += 1
        self._done.add(self.space.canonical(candidate.arch))
        if error is None:
            self.history.append(record)
            self.evaluated.append(self._as_evaluated(record))
        else:
            self.failed.append(candidate.arch)
            if not self.history and len(self.failed) >= STOP_AFTER_FAILURES:
                raise UserError(f"the first {len(self.failed)} evaluations all failed, the last with: {error} "
                                "(fix the cause, then --resume)")
        return record

    def told(self, pending: Pending) -> bool:
        return self.space.canonical(pending.candidate.arch) in self._done

    def best(self) -> tuple[Record, float]:
        """The best record by current scores (re-scored ones for weight-sharing evaluators)."""
        values = np.array([e.score for e in self.evaluated])
        index = int(np.argmin(values) if self.evaluator.minimize else np.argmax(values))
        return self.history[index], float(values[index])

    def finish(self) -> dict:
        """End the last stage (re-score, log) and return the summary (the CLI's JSON line)."""
        self._end_stage()
        if not self.history:
            raise UserError(f"every evaluation failed ({self.spent}); the errors are in {self.run.path / HISTORY}")
        best, best_value = self.best()
        summary = {"run_dir": str(self.run.path), "strategy": self.config.strategy, "evaluated": self.spent,
                   "failed": len(self.failed), "best_arch": best.arch, "best_metric": best_value}
        if self.evaluator.report_metric:
            summary["best_report_metric"] = best.metrics[self.evaluator.report_metric]
        return summary

    def close(self) -> None:
        self.logger.close()

    # ------------------------------------------------------------------------------------------- internals
    def _as_evaluated(self, record: Record) -> Evaluated:
        return Evaluated(self.space.parse(record.arch), record.metrics[self.evaluator.metric])

    def _end_stage(self) -> None:
        """Put the history in batch order (the order a serial run appends it in), re-score it under shared
        weights, and log the stage once (even across resumes)."""
        order = sorted(range(len(self.history)), key=lambda i: (self.history[i].stage, self.history[i].index))
        self.history = [self.history[i] for i in order]
        self.evaluated = [self.evaluated[i] for i in order]
        if self.evaluator.shares_weights and self.history:
            self.evaluator.begin_stage(self.stage, [e.arch for e in self.evaluated])
            for e in self.evaluated:
                e.score = self.evaluator.evaluate(e.arch)[self.evaluator.metric]
            self.run.write_text(SCORES, json.dumps({"stage": self.stage, "scores": {
                r.arch: e.score for r, e in zip(self.history, self.evaluated, strict=True)}}))
        if self.spent and self.spent not in self._logged and self.history:
            self._log_stage()

    def _log_stage(self) -> None:
        self._logged.add(self.spent)
        best, value = self.best()
        metrics = {"iteration": self.strategy.iteration, "evaluated": self.spent,
                   f"best_{self.evaluator.metric}": value}
        if self.evaluator.report_metric:
            metrics[f"best_{self.evaluator.report_metric}"] = best.metrics[self.evaluator.report_metric]
        metrics.update(self.strategy.metrics())
        with open(self.run.path / METRICS, "a") as f:
            f.write(json.dumps(metrics) + "\n")
        self.logger.log(metrics, step=self.spent)
