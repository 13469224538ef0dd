"""Registries of the components a search is made of: evaluators, strategies, tasks.

The built-ins register themselves with the same functions a user's plugin calls, so nothing a user adds needs
an edit inside the package. Each registration names the component and the dataclass of its config section; a
config is checked against that dataclass when it loads (unknown keys, wrong types and out-of-range values are one
line naming the dotted key). Names are looked up when a config is resolved, so a plugin (``--plugin``,
``plugins: [...]``) must be loaded first; ``nao search --resume`` resolves the saved config the same way.

    nao.register_strategy("my-search", MyStrategy, config=MyStrategyConfig)   # section `my-search:` of a config
    nao.register_evaluator("my-eval", MyEvaluator, config=MyEvaluatorConfig)  # `evaluator.type: my-eval`
    nao.register_task("my-task", family=MySpace, evaluators={"standalone": MyTrainer}, final=MyFinalTraining())
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nao.config import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    component: Any  # a class or factory
    config: type  # the dataclass of its config section


class Registry:
    """Name -> (component, config dataclass), filled by ``register``; ``key`` is the config key that names an
    entry (for error messages)."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind, self.key = kind, key
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, component: Any, config: type, *, overwrite: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
            raise TypeError(f"{self.kind} {name!r}: config must be a dataclass, got {config!r}")
        if name in self._entries and not overwrite:
            raise ValueError(f"a {self.kind} named {name!r} is already registered (overwrite=True replaces it)")
        self._entries[name] = Entry(name, component, config)

    def get(self, name: str) -> Entry:
        _register_builtins()
        if name not in self._entries:
            raise ConfigError(f"{self.key}: unknown {self.kind} {name!r} (known: {', '.join(self.names())}; "
                              "a plugin that registers it is loaded with --plugin or plugins: [...])")
        return self._entries[name]

    def names(self) -> list[str]:
        _register_builtins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        _register_builtins()
        return name in self._entries


EVALUATORS = Registry("evaluator", "evaluator.type")
STRATEGIES = Registry("strategy", "strategy")


def register_evaluator(name: str, factory: Callable, *, config: type, overwrite: bool = False) -> Callable:
    """Make ``factory`` the evaluator of ``evaluator.type: name``.

    ``factory(space, config, *, seed, device, run_path)`` returns an evaluator (see
    ``nao.search.evaluators.Evaluator``); ``config`` is a dataclass subclassing
    ``nao.search.evaluators.EvaluatorConfig`` that types the ``evaluator:`` section. Returns ``factory``.
    """
    from nao.search.evaluators import EvaluatorConfig

    if not (isinstance(config, type) and issubclass(config, EvaluatorConfig)):
        raise TypeError(f"evaluator {name!r}: config must subclass nao.EvaluatorConfig, got {config!r}")
    EVALUATORS.register(name, factory, config, overwrite=overwrite)
    return factory


def register_strategy(name: str, cls: type, *, config: type, overwrite: bool = False) -> type:
    """Make ``cls`` (a ``nao.Strategy`` subclass) the strategy of ``strategy: name``; ``config`` (a dataclass)
    types its section ``name:`` of a search config (the keyword arguments of ``nao.Optimizer``). Returns ``cls``."""
    from nao.search.strategies import Strategy

    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"strategy {name!r}: {cls!r} is not a nao.Strategy subclass")
    STRATEGIES.register(name, cls, config, overwrite=overwrite)
    return cls


# ----------------------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """What evaluates and finally trains the archs of one space family.

    ``family``: the search-space class whose instances (subclasses included) this task trains. ``evaluators``:
    evaluator kinds (``standalone``, ``supernet``, or new ones) -> evaluator classes built as
    ``cls(space, config, seed=, device=, run_path=)``; each kind becomes an ``evaluator.type`` that trains with
    the task of the searched space. ``final``: the ``nao train`` recipe (a ``nao.FinalTraining``), or None.
    """

    name: str
    family: type
    evaluators: Mapping[str, Callable] = field(default_factory=dict)
    final: Any = None


_TASKS: dict[str, Task] = {}


def register_task(name: str, *, family: type, evaluators: Mapping[str, Callable] | None = None, final: Any = None,
                  overwrite: bool = False) -> Task:
    """Register the task that evaluates (``evaluator.type: standalone`` ...) and trains (``nao train``) the archs
    of spaces of class ``family``. Where several tasks train a space, the one registered last wins."""
    from nao.search.evaluators import TaskEvaluatorConfig, task_evaluator
    from nao.spaces.base import SearchSpace

    if not (isinstance(family, type) and issubclass(family, SearchSpace)):
        raise TypeError(f"task {name!r}: family must be a SearchSpace subclass, got {family!r}")
    if name in _TASKS and not overwrite:
        raise ValueError(f"a task named {name!r} is already registered (overwrite=True replaces it)")
    task = Task(name, family, dict(evaluators or {}), final)
    _TASKS.pop(name, None)
    _TASKS[name] = task
    for kind in task.evaluators:
        if kind not in EVALUATORS._entries:
            EVALUATORS.register(kind, task_evaluator(kind), TaskEvaluatorConfig)
    return task


def task_for(space, *, needs: str, key: str) -> Task:
    """The task that trains ``space``'s archs and provides ``needs`` (an evaluator kind, or "final")."""
    _register_builtins()
    for task in reversed(_TASKS.values()):
        if isinstance(space, task.family) and (task.final if needs == "final" else needs in task.evaluators):
            return task
    what = "" if needs == "final" else f" with a {needs!r} evaluator"
    known = ", ".join(f"{t.name} ({t.family.__name__})" for t in _TASKS.values())
    raise ConfigError(f"{key}: no task trains {space.name} archs{what} (tasks: {known}; nao.register_task adds "
                      "one)")


_BUILTINS_REGISTERED = False


def _register_builtins() -> None:
    """Import the modules whose import registers nao's own components (on first lookup, so that ``import nao``
    stays light and the modules may import this one)."""
    global _BUILTINS_REGISTERED
    if _BUILTINS_REGISTERED:
        return
    _BUILTINS_REGISTERED = True
    import nao.search.bananas
    import nao.search.evaluators
    import nao.search.external_evaluators
    import nao.search.local_search
    import nao.search.reinforce
    import nao.search.strategies
    import nao.search.surrogates
    import nao.tasks.cnn
    import nao.tasks.rnn  # noqa: F401 - imported for their registrations
