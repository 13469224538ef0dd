"""Evaluators around the user's own code: a Python function (``function``), any program (``command``), and the
placeholder of runs that ``nao.Optimizer`` feeds (``ask-tell``).

Each evaluation gets a fresh working directory, ``RUN/evaluations/<arch digest>-<random>``, kept after the
evaluation (a command's output log, whatever the user's code saves there). They run through the same executors
(serial, Ray), retries, failure records, history and resume as every other evaluator.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import re
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nao.config import ConfigError, ConfigValueError, at_least
from nao.errors import UserError
from nao.plugins import load_object
from nao.registry import register_evaluator
from nao.search.evaluators import EvaluatorConfig, StaticEvaluator
from nao.spaces.base import Arch, SearchSpace

EVALUATIONS = "evaluations"


class WorkdirEvaluator(StaticEvaluator):
    """Base: the metric named in the config, and a fresh working directory per evaluation."""

    def __init__(self, space: SearchSpace, config: EvaluatorConfig, *, seed: int, run_path: Path | None) -> None:
        if not config.metric:
            raise ConfigError(f"evaluator.metric: required for evaluator.type={config.type} (the key of the "
                              "returned metrics that is searched on)")
        self.space, self.seed = space, seed
        self.metric, self.report_metric, self.minimize = config.metric, config.report_metric, config.minimize
        self._root = Path(run_path) / EVALUATIONS if run_path is not None else None

    def workdir(self, text: str) -> Path:
        """A new, empty directory for one evaluation of the arch written ``text``."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="nao-evaluations-"))
        self._root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        return Path(tempfile.mkdtemp(prefix=f"{digest}-", dir=self._root))

    def candidates(self) -> None:
        return None

    def checked(self, metrics: object, origin: str) -> dict[str, float]:
        """The numeric entries of ``metrics`` (a mapping); a missing or non-finite searched metric is an error
        (a failed evaluation)."""
        if not isinstance(metrics, dict):
            raise TypeError(f"{origin} returned {type(metrics).__name__}, not a dict of metrics")
        numbers_only = {str(k): float(v) for k, v in metrics.items()
                        if isinstance(v, numbers.Real) and not isinstance(v, bool)}
        for key in filter(None, (self.metric, self.report_metric)):
            if key not in numbers_only:
                raise KeyError(f"{origin} gave no number for {key!r} (keys: {', '.join(map(str, metrics)) or 'none'})")
        if not math.isfinite(numbers_only[self.metric]):
            raise FloatingPointError(f"{origin} gave {self.metric} = {numbers_only[self.metric]}")
        return numbers_only


# ----------------------------------------------------------------------------------------------- function
@dataclass
class FunctionConfig(EvaluatorConfig):
    function: str | None = None  # "package.module:fn" or "path/to/file.py:fn"


class FunctionEvaluator(WorkdirEvaluator):
    """``evaluator.function`` called once per evaluation as ``fn(arch, text=, seed=, workdir=)``: the arch object,
    its text form, the run's seed and a fresh working directory (a ``pathlib.Path``); it returns a dict of
    metrics that holds ``evaluator.metric``. An exception it raises is a failed evaluation (retried, then
    recorded); raise ``nao.UserError`` to stop the search instead."""

    def __init__(self, space: SearchSpace, config: FunctionConfig, *, seed: int, device: str,
                 run_path: Path | None) -> None:
        super().__init__(space, config, seed=seed, run_path=run_path)
        if not config.function:
            raise ConfigError("evaluator.function: required for evaluator.type=function "
                              "('package.module:fn' or 'path/to/file.py:fn')")
        self.function: Callable = load_object(config.function, key="evaluator.function")
        if not callable(self.function):
            raise ConfigError(f"evaluator.function: {config.function!r} is not callable")
        self.name = config.function

    def evaluate(self, arch: Arch) -> dict[str, float]:
        text = self.space.format(arch)
        metrics = self.function(arch, text=text, seed=self.seed, workdir=self.workdir(text))
        return self.checked(metrics, self.name)


# ----------------------------------------------------------------------------------------------- command
PLACEHOLDERS = ("arch", "workdir", "seed")
LOG_TAIL_LINES = 5


@dataclass
class CommandConfig(EvaluatorConfig):
    command: str | None = None  # e.g. "python train.py --arch {arch} --out {workdir}"; {seed} too
    timeout: float | None = None  # seconds; an evaluation that runs longer is killed (a failed evaluation)

    def __post_init__(self) -> None:
        at_least(self, timeout=0.001)
        for name in PLACEHOLDERS:
            if self.command and re.search(rf"""(['"])\{{{name}\}}\1""", self.command):
                raise ConfigValueError("command", f"write {{{name}}} without quotes: nao quotes the value itself")


class CommandFailed(RuntimeError):
    """The command exited non-zero, timed out, or printed no metrics: a failed evaluation."""


class CommandEvaluator(WorkdirEvaluator):
    """``evaluator.command`` run once per evaluation by ``/bin/sh`` from the directory nao was started in (so
    ``python train.py`` means what it means on the command line), with ``{arch}``, ``{workdir}`` (the
    evaluation's own fresh directory, for its outputs) and ``{seed}`` replaced by the values quoted for the shell
    (any arch text reaches the program as one argument, never as shell syntax) and also given as ``NAO_ARCH``,
    ``NAO_WORKDIR``, ``NAO_SEED`` in its environment. Its last line of stdout is a JSON object of metrics; stdout
    and stderr are kept in ``stdout.log`` and ``stderr.log`` in the working directory. The command runs in its own
    process group, killed whole on a timeout or when the search is interrupted (in a Ray worker through
    ``interrupt``)."""

    def __init__(self, space: SearchSpace, config: CommandConfig, *, seed: int, device: str,
                 run_path: Path | None) -> None:
        super().__init__(space, config, seed=seed, run_path=run_path)
        if not config.command:
            raise ConfigError("evaluator.command: required for evaluator.type=command "
                              "(e.g. 'python train.py --arch {arch} --out {workdir}')")
        self.template, self.timeout = config.command, config.timeout
        self._running: subprocess.Popen | None = None

    def interrupt(self) -> None:
        """Kill the running command's process group (called from another thread: a Ray worker being stopped)."""
        process = self._running
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def command_line(self, text: str, workdir: Path) -> str:
        values = {"arch": text, "workdir": str(workdir), "seed": str(self.seed)}
        return re.sub(r"\{(arch|workdir|seed)\}", lambda m: shlex.quote(values[m.group(1)]), self.template)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        text = self.space.format(arch)
        workdir = self.workdir(text)
        env = os.environ | {"NAO_ARCH": text, "NAO_WORKDIR": str(workdir), "NAO_SEED": str(self.seed)}
        stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(["/bin/sh", "-c", self.command_line(text, workdir)], env=env,
                                       stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                       start_new_session=True)
            self._running = process
            try:
                code = process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise CommandFailed(f"timed out after {self.timeout:g} s{_tail(stderr_path, stdout_path)}") from None
            finally:  # timed out, interrupted (Ctrl-C), or finished: nothing of the command is left running
                self._running = None
                _kill_group(process)
        if code != 0:
            raise CommandFailed(f"exit code {code}{_tail(stderr_path, stdout_path)}")
        lines = [line for line in stdout_path.read_text(errors="replace").splitlines() if line.strip()]
        try:
            metrics = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise CommandFailed(f"the last line of stdout is not a JSON object of metrics"
                                f"{_tail(stderr_path, stdout_path)}") from None
        return self.checked(metrics, "the command")


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(*paths: Path) -> str:
    """The last lines of the first non-empty log, for a failure record."""
    for path in paths:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return f"; {path.name} ends: " + " | ".join(lines[-LOG_TAIL_LINES:])
    return ""


# ----------------------------------------------------------------------------------------------- ask/tell
@dataclass
class AskTellConfig(EvaluatorConfig):
    candidates: str | None = None  # a results file or arch-per-line file: the only archs the search may propose


class AskTellEvaluator(StaticEvaluator):
    """The evaluator of a run fed by ``nao.Optimizer``: the user's code evaluates, ``tell`` records."""

    def __init__(self, space: SearchSpace, config: AskTellConfig, **_) -> None:
        from nao.results import load_archs

        self.metric, self.report_metric, self.minimize = config.metric or "score", config.report_metric, \
            config.minimize
        self._candidates = load_archs(config.candidates, space) if config.candidates else None

    def evaluate(self, arch: Arch) -> dict[str, float]:
        raise UserError("this run is evaluated by the code that drives nao.Optimizer (ask/tell); reopen it with "
                        "nao.Optimizer(..., run_dir=...) to continue it")

    def candidates(self) -> list[Arch] | None:
        return self._candidates


register_evaluator("function", FunctionEvaluator, config=FunctionConfig)
register_evaluator("command", CommandEvaluator, config=CommandConfig)
register_evaluator("ask-tell", AskTellEvaluator, config=AskTellConfig)
