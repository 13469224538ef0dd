"""``nao search``: one strategy, one evaluator, one budget, one crash-proof run directory.

The config's top level holds the keys of ``SearchConfig``, the ``evaluator:`` section (typed by the dataclass its
``type`` registered) and a section per strategy (typed by the dataclass the strategy registered; only the chosen
strategy's section is kept in the run's ``config.yaml``). User components come from ``plugins: [...]``, imported
before anything is resolved.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from nao.config import ConfigError, apply_overrides, at_least, from_dict, load_yaml, one_of, to_dict
from nao.errors import UserError
from nao.plugins import load_plugins
from nao.registry import STRATEGIES
from nao.search.evaluators import EvaluatorConfig, make_evaluator, parse_evaluator_config
from nao.search.executors import EXECUTORS, RayConfig, make_executor
from nao.search.loggers import LOGGERS
from nao.search.rundir import CONFIG, Record, RunDir, first_difference
from nao.search.session import SearchSession


@dataclass
class SearchConfig:
    space: str = "nb201"
    strategy: str = "nao"  # a registered strategy; its settings are the section of the same name
    budget: int = 150  # number of evaluated archs
    seed: int = 0
    device: str = "auto"
    logger: str = "none"  # none | wandb
    executor: str = "serial"  # serial | ray: where evaluations run (see nao.search.executors)
    workers: int = 2  # ray: evaluations at once
    retries: int = 2  # an evaluation that raises, or whose worker dies, is tried again this many times
    plugins: list[str] = field(default_factory=list)  # modules or .py files imported first (user components)
    ray: RayConfig = field(default_factory=RayConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)  # the `type`'s own dataclass once resolved
    options: Any = field(default=None, init=False)  # the strategy's section, read into its registered dataclass

    def __post_init__(self) -> None:
        at_least(self, budget=1, workers=1, retries=0)
        one_of(self, "executor", EXECUTORS)
        one_of(self, "logger", LOGGERS)
        self.ray.check()


CORE_KEYS = tuple(f.name for f in fields(SearchConfig) if f.init)


def resolve_config(data: dict, *, plugins: list[str] | tuple[str, ...] = ()) -> SearchConfig:
    """A search config mapping (YAML + overrides) checked and read into its dataclasses, after importing its
    ``plugins`` and the extra ``plugins`` (``--plugin``; they are added to the config's list)."""
    data = dict(data)
    listed = data.get("plugins") or []
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise ConfigError(f"plugins: expected a list of module names or .py files, got {listed!r}")
    data["plugins"] = listed + [p for p in plugins if p not in listed]
    load_plugins(data["plugins"])
    evaluator = data.pop("evaluator", None)
    sections = {name: data.pop(name) for name in list(data) if name not in CORE_KEYS and name in STRATEGIES}
    unknown = sorted(set(data) - set(CORE_KEYS))
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}' (known: {', '.join(CORE_KEYS)}, and a section per "
                          f"strategy: {', '.join(STRATEGIES.names())})")
    config = from_dict(SearchConfig, data)
    config.evaluator = parse_evaluator_config(evaluator)
    entry = STRATEGIES.get(config.strategy)
    for name, section in sections.items():  # every section is checked, the chosen one kept
        options = from_dict(STRATEGIES.get(name).config, section or {}, where=name)
        if name == config.strategy:
            config.options = options
    if config.options is None:
        config.options = from_dict(entry.config, {}, where=config.strategy)
    return config


def load_config(path: str | Path | None, overrides: list[str], *, plugins: list[str] | tuple[str, ...] = ()
                ) -> SearchConfig:
    """The search config of YAML file ``path`` (None: all defaults) with ``key=value`` overrides."""
    data = load_yaml(path) if path is not None else {}
    return resolve_config(apply_overrides(data, overrides), plugins=plugins)


def config_dict(config: SearchConfig) -> dict:
    """The config as saved in ``config.yaml``: the strategy's section under its name."""
    data = to_dict(config)
    data[config.strategy] = data.pop("options")
    return data


def run_search(config: SearchConfig, out: str | Path, *, resume: bool = False,
               progress: bool = True, on_evaluated: Callable[[Record], None] | None = None) -> dict:
    """Run (or resume) a search into ``out``; returns the final summary (also the CLI's JSON line)."""
    from nao.spaces import get_space

    space = get_space(config.space)
    run = RunDir(out)
    # bad paths or metrics fail before anything is written
    evaluator = make_evaluator(space, config.evaluator, seed=config.seed, device=config.device, run_path=run.path)
    executor = make_executor(config, space, evaluator, run_path=run.path)
    has_run = (run.path / CONFIG).exists()
    if has_run and not resume:
        raise UserError(f"{run.path} already holds a run: add --resume to continue it, or choose another --out")
    run.lock()
    try:
        if has_run:
            check_resumable(run, config)
        executor.start()  # Ray starts or is joined here: its resources are checked before anything is written
        run.write_text(CONFIG, yaml.safe_dump(config_dict(config), sort_keys=False))
        session = SearchSession(config, run, evaluator, config_dict=config_dict(config))
        try:
            return _drive(session, executor, progress=progress, on_evaluated=on_evaluated)
        finally:
            session.close()
    finally:
        executor.close()
        run.unlock()


# where evaluations run and where user code lives change no result: a run may resume elsewhere
FREE_ON_RESUME = ("executor", "workers", "retries", "ray", "plugins")


def check_resumable(run: RunDir, config: SearchConfig) -> None:
    """A resumed run must have the saved config, except that its budget may grow (extending a finished search)
    and it may run elsewhere (``FREE_ON_RESUME``). Keys added to the config since the run was saved count as
    their defaults, ``evaluator.task`` keys too (the saved evaluator config is resolved like the current one)."""
    from nao.spaces import get_space

    try:
        saved_data = yaml.safe_load((run.path / CONFIG).read_text())
        saved_config = resolve_config(_without_retired_keys(saved_data))
    except (yaml.YAMLError, ConfigError, AttributeError, TypeError) as err:
        raise UserError(f"{run.path / CONFIG}: cannot resume this run: {err}") from None
    make_evaluator(get_space(saved_config.space), saved_config.evaluator, seed=saved_config.seed, device="cpu")
    saved = config_dict(saved_config)
    if config.budget < saved["budget"]:
        raise UserError(f"--resume with a smaller budget ({saved['budget']} in the run, {config.budget} now): "
                        "a budget can only grow")
    current = config_dict(config)
    saved |= {"budget": config.budget} | {key: current[key] for key in FREE_ON_RESUME}
    difference = first_difference(saved, current)
    if difference:
        raise UserError(f"--resume with a different config ({difference})")


def _without_retired_keys(data: dict) -> dict:
    """A config saved by an earlier version, which saved every evaluator key whatever the type (``path: null``,
    ``task: {}``): keys the evaluator's type does not have are dropped where empty."""
    evaluator = dict(data.get("evaluator") or {})
    known = {f.name for f in fields(parse_evaluator_config({"type": evaluator.get("type", "table")}))}
    return data | {"evaluator": {k: v for k, v in evaluator.items() if k in known or v not in (None, {})}}


def _drive(session: SearchSession, executor, *, progress: bool, on_evaluated) -> dict:
    """Batches from the session handed to the executor until the budget is spent (concurrently with
    ``executor: ray``); each result is told to the session as it ends."""
    config = session.config
    bar = tqdm(total=config.budget, initial=session.spent, desc=f"{config.strategy} search", unit="arch",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        while not session.done:
            todo = session.ask()
            if not todo:
                break
            for outcome in executor.run([p.candidate.arch for p in todo]):
                record = session.tell(todo[outcome.position], metrics=outcome.metrics, error=outcome.error,
                                      attempts=outcome.attempts, seconds=outcome.seconds,
                                      extra={"traceback": outcome.traceback} if outcome.traceback else {})
                if record.error is not None:
                    bar.write(f"nao: evaluation failed ({record.attempts} attempts): {record.arch}: {record.error}",
                              file=sys.stderr)
                bar.update(1)
                if session.history:
                    bar.set_postfix(iteration=session.strategy.iteration, best=f"{session.best()[1]:.4g}",
                                    refresh=False)
                if on_evaluated is not None:
                    on_evaluated(record)
        return session.finish()
    finally:
        bar.close()

