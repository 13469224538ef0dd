"""``nao search``: one strategy, one evaluator, one budget, one crash-proof run directory."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from nao.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from nao.errors import UserError
from nao.search.evaluators import EvaluatorConfig, make_evaluator
from nao.search.loggers import make_logger
from nao.search.rundir import CONFIG, METRICS, Record, RunDir, first_difference
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
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    nao: NAOConfig = field(default_factory=NAOConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)


def load_config(path: str | Path | None, overrides: list[str]) -> SearchConfig:
    data = load_yaml(path) if path is not None else {}
    config = from_dict(SearchConfig, apply_overrides(data, overrides))
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"strategy: unknown {config.strategy!r} (known: {', '.join(sorted(STRATEGIES))})")
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
    has_run = (run.path / CONFIG).exists()
    if has_run and not resume:
        raise UserError(f"{run.path} already holds a run: add --resume to continue it, or choose another --out")
    run.lock()
    try:
        if has_run:
            _check_resumable(run, config)
        run.write_text(CONFIG, _config_text(config))
        strategy = STRATEGIES[config.strategy](space, evaluator, config, run.path)
        return _loop(config, run, strategy, progress=progress, on_evaluated=on_evaluated)
    finally:
        run.unlock()


def _check_resumable(run: RunDir, config: SearchConfig) -> None:
    """A resumed run must have the saved config, except that its budget may grow (extending a finished search).
    Keys added to the config since the run was saved count as their defaults."""
    saved = to_dict(from_dict(SearchConfig, yaml.safe_load((run.path / CONFIG).read_text())))
    if config.budget < saved["budget"]:
        raise UserError(f"--resume with a smaller budget ({saved['budget']} in the run, {config.budget} now): "
                        "a budget can only grow")
    difference = first_difference({**saved, "budget": config.budget}, to_dict(config))
    if difference:
        raise UserError(f"--resume with a different config ({difference})")


def _loop(config: SearchConfig, run: RunDir, strategy: Strategy, *, progress: bool, on_evaluated) -> dict:
    """Batches from the strategy until the budget is spent. A stage = one batch: the state (strategy, batch,
    stage number) is saved when the batch is made; each evaluation is appended as it ends. With a
    weight-sharing evaluator the shared weights train before each batch and every arch evaluated so far is
    re-scored after it (deterministic, so simply redone after a resume): the strategy always compares scores
    from the same weights."""
    space, evaluator = strategy.space, strategy.evaluator
    history = run.read_history()
    evaluated = [_as_evaluated(space, evaluator.metric, r) for r in history]
    done = {space.canonical(e.arch) for e in evaluated}
    state = run.load_state()
    pending: list[Candidate] = []
    stage = 0
    if state is not None:
        strategy.load_state_dict(state["strategy"])
        pending = [Candidate(space.parse(c["arch"]), c["source"], c["predicted"]) for c in state["pending"]]
        stage = state.get("stage", 0)
    logger = make_logger(config.logger, run.path, to_dict(config))
    logged = _logged_stages(run)
    bar = tqdm(total=config.budget, initial=len(history), desc=f"{config.strategy} search", unit="arch",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def rescore() -> None:
        """Every evaluated arch scored with the current stage's shared weights (saved: loaded, not retrained)."""
        if evaluator.shares_weights and history:
            evaluator.begin_stage(stage, [e.arch for e in evaluated])
            for e in evaluated:
                e.score = evaluator.evaluate(e.arch)[evaluator.metric]

    try:
        while len(history) < config.budget:
            pending = [c for c in pending if space.canonical(c.arch) not in done]
            if not pending:
                rescore()
                if history:
                    _log_stage(run, logger, logged, strategy, history, evaluated, evaluator)
                pending = strategy.next_batch(evaluated, config.budget - len(history))
                stage += 1
                run.save_state({"strategy": strategy.state_dict(), "stage": stage, "pending": [
                    {"arch": space.format(c.arch), "source": c.source, "predicted": c.predicted} for c in pending]})
            evaluator.begin_stage(stage, [e.arch for e in evaluated] + [c.arch for c in pending])
            for candidate in pending:
                started = time.perf_counter()
                metrics = evaluator.evaluate(candidate.arch)
                record = Record(arch=space.format(candidate.arch), metrics=metrics, iteration=strategy.iteration,
                                source=candidate.source, predicted=candidate.predicted,
                                seconds=round(time.perf_counter() - started, 6))
                run.append(record)
                history.append(record)
                evaluated.append(_as_evaluated(space, evaluator.metric, record))
                done.add(space.canonical(candidate.arch))
                bar.update(1)
                bar.set_postfix(iteration=strategy.iteration, best=f"{_best(history, evaluated, evaluator)[1]:.4g}",
                                refresh=False)
                if on_evaluated is not None:
                    on_evaluated(record)
            pending = []
        rescore()
        _log_stage(run, logger, logged, strategy, history, evaluated, evaluator)
    finally:
        bar.close()
        logger.close()
    best, best_value = _best(history, evaluated, evaluator)
    summary = {"run_dir": str(run.path), "strategy": config.strategy, "evaluated": len(history),
               "best_arch": best.arch, "best_metric": best_value}
    if evaluator.report_metric:
        summary["best_report_metric"] = best.metrics[evaluator.report_metric]
    return summary


def _logged_stages(run: RunDir) -> set[int]:
    path = run.path / METRICS
    return {json.loads(line)["evaluated"] for line in path.open() if line.endswith("\n")} if path.exists() else set()


def _log_stage(run: RunDir, logger, logged: set[int], strategy: Strategy, history: list[Record],
               evaluated: list[Evaluated], evaluator) -> None:
    """One line of ``metrics.jsonl`` (and the logger) per finished stage, once even across resumes."""
    if len(history) in logged:
        return
    logged.add(len(history))
    best, value = _best(history, evaluated, evaluator)
    metrics = {"iteration": strategy.iteration, "evaluated": len(history), f"best_{evaluator.metric}": value}
    if evaluator.report_metric:
        metrics[f"best_{evaluator.report_metric}"] = best.metrics[evaluator.report_metric]
    metrics.update({f"controller_{k}": v for k, v in getattr(strategy, "last_fit", {}).items()})
    with open(run.path / METRICS, "a") as f:
        f.write(json.dumps(metrics) + "\n")
    logger.log(metrics, step=len(history))


def _as_evaluated(space, metric: str, record: Record) -> Evaluated:
    return Evaluated(space.parse(record.arch), record.metrics[metric])


def _best(history: list[Record], evaluated: list[Evaluated], evaluator) -> tuple[Record, float]:
    """The best record by current scores (re-scored ones for weight-sharing evaluators)."""
    values = np.array([e.score for e in evaluated])
    index = int(np.argmin(values) if evaluator.minimize else np.argmax(values))
    return history[index], float(values[index])
