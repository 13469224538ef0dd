"""Executors: where the evaluations of one batch run.

``serial`` evaluates in this process, one arch after another. ``ray`` hands them to Ray workers, up to
``workers`` at once, on this machine or on a cluster: one Ray actor per worker, each building its own
evaluator once (so a worker loads its data once) with the resources of one evaluation (``ray.num_cpus``,
``ray.num_gpus``); a batch's costliest evaluations (``evaluator.cost``) start first. Both yield each result as
soon as it finishes, retry an evaluation that raises, or whose worker process dies, up to ``retries`` more
times, and then report it failed with its error. A ``UserError`` (a missing dataset, a bad key) is not an
evaluation failure: it stops the search.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from nao.config import ConfigError, to_dict
from nao.errors import UserError
from nao.spaces import get_space
from nao.spaces.base import Arch


@dataclass
class RayConfig:
    """``ray:`` section of a search config (used with ``executor: ray``)."""

    address: str | None = None  # None: start Ray on this machine; "auto" or "ray://HEAD:10001": join a cluster
    num_cpus: float = 1.0  # CPUs per evaluation (Ray also sets each worker's OMP_NUM_THREADS to it)
    num_gpus: float = 0.0  # GPUs per evaluation (a fraction shares a GPU between workers); 0: workers use the CPU
    resources: dict[str, float] = field(default_factory=dict)  # custom Ray resources per evaluation

    def check(self) -> None:
        """``ConfigError`` for what Ray would refuse with an error of its own, after the run has begun."""
        for key in ("num_cpus", "num_gpus"):
            if getattr(self, key) < 0:
                raise ConfigError(f"ray.{key}: must be at least 0, got {getattr(self, key):g}")
        for name, need in self.resources.items():
            if name in ("CPU", "GPU"):
                raise ConfigError(f"ray.resources.{name}: CPUs and GPUs are asked for with ray.num_{name.lower()}s")
            if not isinstance(need, numbers.Real) or isinstance(need, bool) or need < 0:
                raise ConfigError(f"ray.resources.{name}: must be a number at least 0, got {need!r}")


@dataclass
class Outcome:
    """One finished evaluation: ``metrics`` when it succeeded, else ``error`` (after ``attempts`` tries)."""

    position: int  # in the list given to ``run``
    metrics: dict[str, float] | None
    error: str | None
    attempts: int
    seconds: float  # of the last attempt
    traceback: str | None = None  # of the last failure, where there is one


def describe(err: BaseException) -> str:
    """One line for a record: the exception type and message."""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def announce_retry(attempt: int, error: str) -> None:
    tqdm.write(f"nao: evaluation failed (attempt {attempt}), retrying: {error}", file=sys.stderr)


@dataclass
class EvaluatorRecipe:
    """What a worker needs to build the search's evaluator in its own process: plain data only (user classes
    are found through the registries once the worker has imported the plugins)."""

    plugins: list[str]
    space: str
    config: dict  # the evaluator section, `type` included
    seed: int
    device: str
    run_path: str | None  # working directories of evaluations (function / command evaluators)

    def build(self):
        from nao.plugins import load_plugins
        from nao.search.evaluators import make_evaluator, parse_evaluator_config

        load_plugins(self.plugins)
        config = parse_evaluator_config(self.config)
        return make_evaluator(get_space(self.space), config, seed=self.seed, device=self.device,
                              run_path=Path(self.run_path) if self.run_path else None)


def evaluate_checked(evaluator, arch: Arch) -> tuple[dict[str, float], float]:
    """``evaluator.evaluate(arch)`` and its duration; a metric that is not a finite number is an error."""
    started = time.perf_counter()
    metrics = evaluator.evaluate(arch)
    value = metrics.get(evaluator.metric)
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise FloatingPointError(f"{evaluator.metric} is {value!r}")
    return metrics, time.perf_counter() - started


class SerialExecutor:
    """Every evaluation in this process, in order."""

    def __init__(self, evaluator, *, retries: int) -> None:
        self.evaluator, self.retries = evaluator, retries

    def run(self, archs: list[Arch]) -> Iterator[Outcome]:
        for index, arch in enumerate(archs):
            for attempt in range(1, self.retries + 2):
                try:
                    metrics, seconds = evaluate_checked(self.evaluator, arch)
                except UserError:
                    raise
                except Exception as err:  # any failure of one evaluation: retried, then recorded
                    error, trace = describe(err), traceback.format_exc()
                    if attempt <= self.retries:
                        announce_retry(attempt, error)
                    continue
                yield Outcome(index, metrics, None, attempt, seconds)
                break
            else:
                yield Outcome(index, None, error, self.retries + 1, 0.0, trace)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Worker:
    """A Ray actor: the search's evaluator, built once in the worker process."""

    def __init__(self, recipe: EvaluatorRecipe, cwd: str) -> None:
        if os.path.isdir(cwd):  # relative data paths mean what they mean to the driver (same machine)
            os.chdir(cwd)
        self.evaluator, self.user_error = None, None
        try:
            self.evaluator = recipe.build()
        except UserError as err:  # e.g. the data is missing on this node: reported by the first evaluation
            self.user_error = err

    def interrupt(self) -> None:
        """Stop what the running evaluation started outside this process (a command's processes), called from a
        second thread of the actor while ``evaluate`` runs: Ray cannot interrupt an actor's running task, and
        killing the actor would leave those processes behind."""
        stop = getattr(self.evaluator, "interrupt", None)
        if stop is not None:
            stop()

    def evaluate(self, arch: Arch) -> tuple[dict[str, float], float] | UserError:
        """The metrics and seconds, or the ``UserError`` that stops the search (returned, not raised, so that
        the driver does not mistake it for a failed evaluation)."""
        if self.user_error is not None:
            return self.user_error
        try:
            return evaluate_checked(self.evaluator, arch)
        except UserError as err:
            return err


class RayExecutor:
    """Evaluations on Ray actors, ``workers`` at once; results in the order they finish."""

    def __init__(self, recipe: EvaluatorRecipe, *, workers: int, retries: int, config: RayConfig,
                 cost: Callable[[Arch], float]) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("executor: ray needs Ray, an optional extra: pip install 'nao-search[ray]'") from None
        if workers < 1:
            raise ConfigError(f"workers: must be at least 1, got {workers}")
        self.ray, self.retries, self.ray_config, self.recipe, self.cost = ray, retries, config, recipe, cost
        self._started_ray = False
        self._actor_class = self._recipe_ref = None  # set by `start`
        self._actors: list = [None] * workers  # started when first needed, replaced when one dies

    def start(self) -> None:
        """Start Ray on this machine, or join ``ray.address``; check that the workers' resources exist."""
        if self._actor_class is not None:
            return
        if not self.ray.is_initialized():
            try:
                self.ray.init(address=self.ray_config.address or "local", include_dashboard=False, log_to_driver=False,
                              logging_level="ERROR")
            except ConnectionError as err:
                raise UserError(f"ray.address: cannot join a Ray cluster at {self.ray_config.address!r} "
                                f"({err})") from None
            self._started_ray = True
        self._check_fit()
        options = {"num_cpus": self.ray_config.num_cpus, "num_gpus": self.ray_config.num_gpus, "max_restarts": 0,
                   "max_concurrency": 2}  # a second thread for `interrupt`; the driver sends one evaluation at a time
        if self.ray_config.resources:
            options["resources"] = dict(self.ray_config.resources)
        self._actor_class = self.ray.remote(**options)(_Worker)
        self._recipe_ref = self.ray.put(self.recipe)

    def _check_fit(self) -> None:
        """Fewer workers when the cluster cannot hold them all (an actor keeps its resources while it lives, so
        a worker waiting for them would wait for ever), said in a warning; an error on a local Ray where not even
        one evaluation fits (a cluster's autoscaler may still add the nodes: there, one worker waits)."""
        needs = {"CPU": self.ray_config.num_cpus, "GPU": self.ray_config.num_gpus, **self.ray_config.resources}
        asked = {name: need for name, need in needs.items() if need > 0}
        if not asked:
            return
        nodes = [node["Resources"] for node in self.ray.nodes() if node["Alive"]]
        fits = sum(min(math.floor(node.get(name, 0) / need + 1e-6) for name, need in asked.items()) for node in nodes)
        if fits >= len(self._actors):
            return
        have = ", ".join(f"{sum(node.get(name, 0) for node in nodes):g} {name}" for name in asked)
        ask = ", ".join(f"{need:g} {name}" for name, need in asked.items())
        message = f"the Ray cluster has {have}; an evaluation asks for {ask}, so {fits} of {len(self._actors)} " \
                  "workers can run at once"
        if fits == 0 and self.ray_config.address is None:
            raise UserError(f"ray: {message} (lower ray.num_cpus / ray.num_gpus / ray.resources)")
        self._actors = self._actors[:max(fits, 1)]
        print(f"nao: warning: {message}; running {len(self._actors)}", file=sys.stderr)

    def _actor(self, slot: int):
        if self._actors[slot] is None:
            self._actors[slot] = self._actor_class.remote(self._recipe_ref, os.getcwd())
        return self._actors[slot]

    def _discard(self, slot: int) -> None:
        if self._actors[slot] is not None:
            self.ray.kill(self._actors[slot])
            self._actors[slot] = None

    def run(self, archs: list[Arch]) -> Iterator[Outcome]:
        from ray.exceptions import RayActorError, RayError, RayTaskError

        self.start()
        # costliest first: the batch then ends with short evaluations, not one long one (LPT scheduling);
        # the sort is stable, so equal costs keep the batch's order
        queue = deque((index, 1) for index in sorted(range(len(archs)), key=lambda i: -self.cost(archs[i])))
        idle = list(range(len(self._actors)))[::-1]
        running: dict = {}  # object ref -> (slot, index, attempt)
        try:
            while queue or running:
                while queue and idle:
                    slot = idle.pop()
                    index, attempt = queue.popleft()
                    running[self._actor(slot).evaluate.remote(archs[index])] = (slot, index, attempt)
                [ref], _ = self.ray.wait(list(running), num_returns=1)
                slot, index, attempt = running.pop(ref)
                idle.append(slot)
                try:
                    result = self.ray.get(ref)
                except RayTaskError as err:  # the evaluation raised: retried on a fresh worker (a failed CUDA
                    self._discard(slot)      # context or leaked memory must not fail the next arch too)
                    error = describe(err.cause) if err.cause is not None else str(err).splitlines()[-1]
                    trace = str(err)  # the worker's formatted traceback
                except RayActorError as err:
                    if err.actor_init_failed:
                        raise UserError(f"a Ray worker could not build the evaluator: {describe(err)}") from None
                    self._discard(slot)  # the worker process died: a new one takes its place
                    error, trace = f"worker died: {describe(err)}", None
                except RayError as err:  # out of memory, node lost, ...: the same
                    self._discard(slot)
                    error, trace = describe(err), None
                else:
                    if isinstance(result, UserError):
                        raise result
                    metrics, seconds = result
                    yield Outcome(index, metrics, None, attempt, seconds)
                    continue
                if attempt <= self.retries:
                    announce_retry(attempt, error)
                    queue.appendleft((index, attempt + 1))
                else:
                    yield Outcome(index, None, error, attempt, 0.0, trace)
        finally:  # interrupted (Ctrl-C, an error): stop the evaluations still running
            slots = [slot for slot, _, _ in running.values()]
            with contextlib.suppress(Exception):  # best effort: the actors are killed whatever happens
                self.ray.get([self._actors[slot].interrupt.remote() for slot in slots], timeout=10)
            for slot in slots:
                self._discard(slot)

    def close(self) -> None:
        for slot in range(len(self._actors)):
            self._discard(slot)
        if self._started_ray:
            self.ray.shutdown()


def _serial(config, space, evaluator, run_path: Path | None) -> SerialExecutor:
    return SerialExecutor(evaluator, retries=config.retries)


def _ray(config, space, evaluator, run_path: Path | None) -> RayExecutor:
    if evaluator.shares_weights:
        raise ConfigError(f"executor: ray runs independent evaluations in worker processes; the "
                          f"{config.evaluator.type} evaluator scores every arch with one shared network in this "
                          f"process (use executor: serial)")
    # a worker without a GPU of its own must not take one Ray does not count (Ray leaves CUDA visible to it)
    device = "cpu" if config.device == "auto" and config.ray.num_gpus == 0 else config.device
    recipe = EvaluatorRecipe(list(config.plugins), space.name, to_dict(config.evaluator), config.seed, device,
                             str(Path(run_path).resolve()) if run_path is not None else None)
    return RayExecutor(recipe, workers=config.workers, retries=config.retries, config=config.ray,
                       cost=evaluator.cost)


EXECUTORS: dict[str, Callable] = {"serial": _serial, "ray": _ray}


def make_executor(config, space, evaluator, *, run_path: Path | None = None) -> SerialExecutor | RayExecutor:
    """The executor of ``config.executor`` (``config`` is the whole ``SearchConfig``)."""
    return EXECUTORS[config.executor](config, space, evaluator, run_path)
