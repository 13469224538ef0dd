"""``nao search``: one strategy, one evaluator, one budget, one crash-proof run directory."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from nao.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from nao.errors import UserError
from nao.search.evaluators import EvaluatorConfig, make_evaluator
from nao.search.executors import EXECUTORS, RayConfig, make_executor
from nao.search.loggers import make_logger
from nao.search.rundir import CONFIG, HISTORY, METRICS, SCORES, Record, RunDir, first_difference
from nao.search.strategies import STRATEGIES, Candidate, Evaluated, EvolutionConfig, NAOConfig, Strategy
from nao.spaces import get_space


@dataclass
class SearchConfig:
    space: str = "nb201"
    strategy: str = "nao"  # nao | random | evolution
    budget: int = 150  # number of evaluated archs
    seed: int = 0
    device: str = "auto"
    logger: str = "none"  # none | wandb
    executor: str = "serial"  # serial | ray: where evaluations run (see nao.search.executors)
    workers: int = 2  # ray: evaluations at once
    retries: int = 2  # an evaluation that raises, or whose worker dies, is tried again this many times
    ray: RayConfig = field(default_factory=RayConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    nao: NAOConfig = field(default_factory=NAOConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)


def load_config(path: str | Path | None, overrides: list[str]) -> SearchConfig:
    data = load_yaml(path) if path is not None else {}
    config = from_dict(SearchConfig, apply_overrides(data, overrides))
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"strategy: unknown {config.strategy!r} (known: {', '.join(sorted(STRATEGIES))})")
    if config.executor not in EXECUTORS:
        raise ConfigError(f"executor: unknown {config.executor!r} (known: {', '.join(EXECUTORS)})")
    if config.evolution.batch < 1:
        raise ConfigError(f"evolution.batch: must be at least 1, got {config.evolution.batch}")
    if config.workers < 1:
        raise ConfigError(f"workers: must be at least 1, got {config.workers}")
    config.ray.check()
    if config.retries < 0:
        raise ConfigError(f"retries: must be at least 0, got {config.retries}")
    if config.budget < 1:
        raise ConfigError(f"budget: must be at least 1, got {config.budget}")
    return config


def _config_text(config: SearchConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def run_search(config: SearchConfig, out: str | Path, *, resume: bool = False,
               progress: bool = True, on_evaluated: Callable[[Record], None] | None = None) -> dict:
    """Run (or resume) a search into ``out``; returns the final summary (also the CLI's JSON line)."""
    space = get_space(config.space)
    run = RunDir(out)
    # bad paths or metrics fail before anything is written
    evaluator = make_evaluator(space, config.evaluator, seed=config.seed, device=config.device, run_path=run.path)
    executor = make_executor(config, space, evaluator)
    has_run = (run.path / CONFIG).exists()
    if has_run and not resume:
        raise UserError(f"{run.path} already holds a run: add --resume to continue it, or choose another --out")
    run.lock()
    try:
        if has_run:
            _check_resumable(run, config, space)
        executor.start()  # Ray starts or is joined here: its resources are checked before anything is written
        run.write_text(CONFIG, _config_text(config))
        strategy = STRATEGIES[config.strategy](space, evaluator, config, run.path)
        return _loop(config, run, strategy, executor, progress=progress, on_evaluated=on_evaluated)
    finally:
        executor.close()
        run.unlock()


# a search whose first evaluations all fail has a cause that is not the archs (a device, a path): it stops
STOP_AFTER_FAILURES = 5

# where evaluations run changes no result: a run may resume on another executor
FREE_ON_RESUME = ("executor", "workers", "retries", "ray")


def _check_resumable(run: RunDir, config: SearchConfig, space) -> None:
    """A resumed run must have the saved config, except that its budget may grow (extending a finished search)
    and it may run elsewhere (``FREE_ON_RESUME``). Keys added to the config since the run was saved count as
    their defaults, ``evaluator.task`` keys too (the saved evaluator config is resolved like the current one)."""
    saved_config = from_dict(SearchConfig, yaml.safe_load((run.path / CONFIG).read_text()))
    make_evaluator(space, saved_config.evaluator, seed=saved_config.seed, device="cpu")
    saved = to_dict(saved_config)
    if config.budget < saved["budget"]:
        raise UserError(f"--resume with a smaller budget ({saved['budget']} in the run, {config.budget} now): "
                        "a budget can only grow")
    current = to_dict(config)
    saved |= {"budget": config.budget} | {key: current[key] for key in FREE_ON_RESUME}
    difference = first_difference(saved, current)
    if difference:
        raise UserError(f"--resume with a different config ({difference})")


def _loop(config: SearchConfig, run: RunDir, strategy: Strategy, executor, *, progress: bool,
          on_evaluated) -> dict:
    """Batches from the strategy until the budget is spent. A stage = one batch: the state (strategy, batch,
    stage number) is saved when the batch is made; the executor runs the batch's evaluations (concurrently
    with ``executor: ray``) and each is appended to the history as it ends. A failed evaluation spends budget
    and is never proposed again, but gives the strategy no score. The strategy sees results in batch order,
    whatever order they finished in, so where evaluations run changes nothing it decides. With a
    weight-sharing evaluator the shared weights train before each batch and every arch evaluated so far is
    re-scored after it (deterministic, so simply redone after a resume): the strategy always compares scores
    from the same weights."""
    space, evaluator = strategy.space, strategy.evaluator
    records = run.read_history()
    history = [r for r in records if r.error is None]  # succeeded, aligned with `evaluated`
    evaluated = [_as_evaluated(space, evaluator.metric, r) for r in history]
    failed = [space.parse(r.arch) for r in records if r.error is not None]
    spent = len(records)
    done = {space.canonical(space.parse(r.arch)) for r in records}
    state = run.load_state()
    batch: list[Candidate] = []
    stage = 0
    if state is not None:
        strategy.load_state_dict(state["strategy"])
        batch = [Candidate(space.parse(c["arch"]), c["source"], c["predicted"]) for c in state["pending"]]
        stage = state.get("stage", 0)
    logger = make_logger(config.logger, run.path, to_dict(config))
    logged = _logged_stages(run)
    bar = tqdm(total=config.budget, initial=spent, desc=f"{config.strategy} search", unit="arch",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def rescore() -> None:
        """Every evaluated arch scored with the current stage's shared weights (saved: loaded, not retrained)."""
        if evaluator.shares_weights and history:
            evaluator.begin_stage(stage, [e.arch for e in evaluated])
            for e in evaluated:
                e.score = evaluator.evaluate(e.arch)[evaluator.metric]
            run.write_text(SCORES, json.dumps({"stage": stage, "scores": {
                r.arch: e.score for r, e in zip(history, evaluated, strict=True)}}))

    try:
        while spent < config.budget:
            todo = [(i, c) for i, c in enumerate(batch) if space.canonical(c.arch) not in done]
            if not todo:
                history, evaluated = _in_batch_order(history, evaluated)
                rescore()
                if spent:
                    _log_stage(run, logger, logged, strategy, spent, history, evaluated, evaluator)
                batch = strategy.next_batch(evaluated, config.budget - spent, failed)
                stage += 1
                run.save_state({"strategy": strategy.state_dict(), "stage": stage, "pending": [
                    {"arch": space.format(c.arch), "source": c.source, "predicted": c.predicted} for c in batch]})
                todo = list(enumerate(batch))
                if not todo:  # the strategy has nothing new to offer (a tiny space, fully evaluated)
                    break
            evaluator.begin_stage(stage, [e.arch for e in evaluated] + [c.arch for _, c in todo])
            for outcome in executor.run([c.arch for _, c in todo]):
                index, candidate = todo[outcome.position]
                record = Record(arch=space.format(candidate.arch), metrics=outcome.metrics or {},
                                iteration=strategy.iteration, source=candidate.source, predicted=candidate.predicted,
                                seconds=round(outcome.seconds, 6), stage=stage, index=index, error=outcome.error,
                                attempts=outcome.attempts,
                                extra={"traceback": outcome.traceback} if outcome.traceback else {})
                run.append(record)
                spent += 1
                done.add(space.canonical(candidate.arch))
                if record.error is None:
                    history.append(record)
                    evaluated.append(_as_evaluated(space, evaluator.metric, record))
                else:
                    failed.append(candidate.arch)
                    bar.write(f"nao: evaluation failed ({record.attempts} attempts): {record.arch}: {record.error}",
                              file=sys.stderr)
                    if not history and len(failed) >= STOP_AFTER_FAILURES:
                        raise UserError(f"the first {len(failed)} evaluations all failed, the last with: "
                                        f"{record.error} (fix the cause, then --resume)")
                bar.update(1)
                if history:
                    bar.set_postfix(iteration=strategy.iteration, best=f"{_best(history, evaluated, evaluator)[1]:.4g}",
                                    refresh=False)
                if on_evaluated is not None:
                    on_evaluated(record)
        history, evaluated = _in_batch_order(history, evaluated)
        rescore()
        _log_stage(run, logger, logged, strategy, spent, history, evaluated, evaluator)
    finally:
        bar.close()
        logger.close()
    if not history:
        raise UserError(f"every evaluation failed ({spent}); the errors are in {run.path / HISTORY}")
    best, best_value = _best(history, evaluated, evaluator)
    summary = {"run_dir": str(run.path), "strategy": config.strategy, "evaluated": spent, "failed": len(failed),
               "best_arch": best.arch, "best_metric": best_value}
    if evaluator.report_metric:
        summary["best_report_metric"] = best.metrics[evaluator.report_metric]
    return summary


def _in_batch_order(history: list[Record], evaluated: list[Evaluated]) -> tuple[list[Record], list[Evaluated]]:
    """Both lists sorted (stably) by batch and place in the batch: the order a serial run appends them in."""
    order = sorted(range(len(history)), key=lambda i: (history[i].stage, history[i].index))
    return [history[i] for i in order], [evaluated[i] for i in order]


def _logged_stages(run: RunDir) -> set[int]:
    path = run.path / METRICS
    return {json.loads(line)["evaluated"] for line in path.open() if line.endswith("\n")} if path.exists() else set()


def _log_stage(run: RunDir, logger, logged: set[int], strategy: Strategy, spent: int, history: list[Record],
               evaluated: list[Evaluated], evaluator) -> None:
    """One line of ``metrics.jsonl`` (and the logger) per finished stage, once even across resumes."""
    if spent in logged or not history:
        return
    logged.add(spent)
    best, value = _best(history, evaluated, evaluator)
    metrics = {"iteration": strategy.iteration, "evaluated": spent, f"best_{evaluator.metric}": value}
    if evaluator.report_metric:
        metrics[f"best_{evaluator.report_metric}"] = best.metrics[evaluator.report_metric]
    metrics.update({f"controller_{k}": v for k, v in getattr(strategy, "last_fit", {}).items()})
    with open(run.path / METRICS, "a") as f:
        f.write(json.dumps(metrics) + "\n")
    logger.log(metrics, step=spent)


def _as_evaluated(space, metric: str, record: Record) -> Evaluated:
    return Evaluated(space.parse(record.arch), record.metrics[metric])


def _best(history: list[Record], evaluated: list[Evaluated], evaluator) -> tuple[Record, float]:
    """The best record by current scores (re-scored ones for weight-sharing evaluators)."""
    values = np.array([e.score for e in evaluated])
    index = int(np.argmin(values) if evaluator.minimize else np.argmax(values))
    return history[index], float(values[index])
