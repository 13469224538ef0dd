"""Search, then train the best arch found and a few random archs the same way (the README's main job).

    python scripts/search_then_train.py                       # NAO-WS on Fashion-MNIST, 2 CPU cores
    python scripts/search_then_train.py configs/ptb_ws_cpu.yaml configs/ptb_train_cpu.yaml --random 1 --workers 1 \\
        --train-seeds 3 --search-set evaluator.task.data.dir=../shared/data/ptb --train-set data.dir=../shared/data/ptb

1. ``nao search SEARCH.yaml`` into OUT/search;
2. ``nao train TRAIN.yaml`` for the search's best arch (OUT/best) and for ``--random N`` random archs drawn
   with the same seed (OUT/random, OUT/random2, ...): same network, recipe and epochs, so the random archs
   show the spread the searched one has to stand out from; with ``--train-seeds K`` each is trained K times,
   with training seeds SEED, SEED+1, ... (OUT/best-seed1, ...), since one training's result varies with its
   seed. With ``--workers 2`` (the default) the random archs train in a second process while the search and
   then the best arch's trainings run in this one, which then takes the random archs not started yet; each
   process on one thread: a small CNN gains only 1.1-1.2x from torch's second thread (docs/ray.md), two
   processes nearly 2x. ``--workers 1``: all in this process, in order, on torch's threads. Results depend on
   the thread count, not on the order or the process;
3. prints the validation and test metrics of every training (the test set is read once per training, after
   it), each arch's mean over its training seeds, the random archs' mean ± standard deviation, and, as the
   last line, a JSON summary (``best_test_acc``: the searched arch's; ``random_test_acc``: a list, one per
   random arch; both means over training seeds). Every step resumes: run it again after a kill.

A bad setting in either config is one line (exit code 2) before anything runs; a step that fails later (missing
data, a diverged training) is one line too, the finished steps kept for the rerun.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch

import nao
from nao.errors import UserError
from nao.search import SearchConfig, load_config, run_search
from nao.search.evaluators import make_evaluator
from nao.train import load_train_config, run_train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("search", nargs="?", default=str(CONFIGS / "fashion_mnist_ws.yaml"))
    parser.add_argument("train", nargs="?", default=str(CONFIGS / "fashion_mnist_train.yaml"))
    parser.add_argument("--out", help="default runs/<search config name>")
    parser.add_argument("--seed", type=int, default=0, help="search seed, random archs' seed, first training seed")
    parser.add_argument("--random", type=int, default=3, metavar="N", help="random archs trained beside the "
                        "searched one (default 3)")
    parser.add_argument("--train-seeds", type=int, default=1, metavar="K", help="train each arch K times, seeds "
                        "SEED..SEED+K-1, and compare the means")
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread each (default 2): the "
                        "random archs train beside the search; 1: one process, torch's threads")
    parser.add_argument("--search-set", nargs="*", default=[], metavar="KEY=VALUE", help="search config overrides")
    parser.add_argument("--train-set", nargs="*", default=[], metavar="KEY=VALUE", help="train config overrides")
    args = parser.parse_args(argv)
    if min(args.random, args.train_seeds, args.workers) < 1:
        parser.error("--random, --train-seeds and --workers must be at least 1")
    out, started = Path(args.out or f"runs/{Path(args.search).stem}"), time.time()
    try:
        config = load_config(args.search, [f"seed={args.seed}", *args.search_set])
        randoms = {random_name(i): arch for i, arch in
                   enumerate(random_archs(nao.get_space(config.space), args.random, args.seed))}
        check_configs(config, args.train, [f"arch={randoms['random']}", *args.train_set])
    except UserError as err:
        fail(str(err))

    def trainings(name: str, arch: str) -> list[tuple]:
        """``name``'s training jobs (arguments of :func:`train`), one per training seed."""
        return [(f"the {name} arch, training seed {args.seed + k}", args.train,
                 [f"arch={arch}", f"seed={args.seed + k}", *args.train_set], out / run_name(name, k), started)
                for k in range(args.train_seeds)]

    random_jobs = {name: trainings(name, arch) for name, arch in randoms.items()}
    try:
        with TrainingPool([job for jobs in random_jobs.values() for job in jobs], args.workers) as pool:
            stage(f"search ({args.search})", started)
            search = run_search(config, out / "search", resume=True)
            search_seconds = time.time() - started
            trained = {"best": [train(*job) for job in trainings("best", search["best_arch"])]}
            results = iter(pool.finish())
            trained |= {name: [next(results) for _ in jobs] for name, jobs in random_jobs.items()}
    except UserError as err:  # a run that failed (a diverged training, missing data): what finished is kept
        fail(f"{err} (the finished steps are kept in {out}: the same command resumes)")
    archs = {"best": search["best_arch"]} | randoms

    metrics = [k for k in trained["best"][0] if k.startswith(("valid_", "test_"))]
    means = {name: {m: float(np.mean([r[m] for r in results])) for m in metrics} for name, results in trained.items()}
    random_names = [name for name in archs if name != "best"]
    width = max(8, len(run_name(random_names[-1], args.train_seeds - 1)) + 2)
    print(f"{'arch':{width}}{'search ' + (config.evaluator.metric or 'metric'):>18}"
          + "".join(f"{m:>11}" for m in metrics) + f"{'params':>9}  text")
    for name, results in trained.items():
        for k, r in enumerate(results):
            searched = f"{search['best_metric']:.2f}" if name == "best" and k == 0 else "-"
            print(f"{run_name(name, k):{width}}{searched:>18}" + "".join(f"{r[m]:>11.2f}" for m in metrics)
                  + f"{r['params']:>9}  {r['arch']}")
    if args.train_seeds > 1:
        for name, results in trained.items():
            print(f"{name:{width}}over training seeds {args.seed}..{args.seed + args.train_seeds - 1}: " + ", ".join(
                f"{m} {means[name][m]:.2f} ± {np.std([r[m] for r in results], ddof=1):.2f}" for m in metrics))
    spread = {m: (float(np.mean([means[n][m] for n in random_names])),
                  float(np.std([means[n][m] for n in random_names], ddof=1)) if len(random_names) > 1 else float("nan"))
              for m in metrics}
    print(f"{len(random_names)} random arch{'s' if len(random_names) > 1 else ''}: " + ", ".join(
        f"{m} {mean:.2f} ± {std:.2f}" for m, (mean, std) in spread.items()) + "; best: " + ", ".join(
        f"{m} {means['best'][m]:.2f} ({standing(means['best'][m], *spread[m])})" for m in metrics))

    summary = {"search_seconds": round(search_seconds, 1), "total_seconds": round(time.time() - started, 1),
               "evaluated": search["evaluated"], "best_search_metric": search["best_metric"], "train_seeds":
               args.train_seeds, "best_arch": archs["best"], **{f"best_{m}": means["best"][m] for m in metrics},
               "random_arch": [archs[n] for n in random_names], **{f"random_{m}": [means[n][m] for n in random_names]
                                                               for m in metrics}}
    print(json.dumps(summary))
    return summary


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2, as ``nao`` does for a user's error."""
    print(f"search_then_train: error: {message}", file=sys.stderr)
    raise SystemExit(2) from None


def check_configs(search: SearchConfig, train: str, train_overrides: list[str]) -> None:
    """The search's evaluator built from its config (on a copy: building it resolves the config) and the training
    config read, before anything runs: a bad key or value is one line at once, not a traceback minutes later."""
    make_evaluator(nao.get_space(search.space), copy.deepcopy(search.evaluator), seed=search.seed, device="cpu")
    load_train_config(train, train_overrides)


def stage(text: str, started: float) -> None:
    """A progress line on stderr: seconds since ``started`` (``time.time()``, shared by the processes)."""
    print(f"[{time.time() - started:6.0f} s] {text}", file=sys.stderr, flush=True)


def train(label: str, recipe: str, overrides: list[str], out: Path, started: float, progress: bool = True) -> dict:
    """One ``nao train`` run (resumed where it stopped), announced on stderr."""
    stage(f"training {label} ({recipe}): {overrides[0].removeprefix('arch=')}", started)
    return run_train(recipe, overrides, out, resume=True, progress=progress)


class TrainingPool:
    """The random archs' trainings, shared by ``workers - 1`` background processes (one thread each), which start
    at once, and this process (one thread too, until the end of the ``with``), which takes what is left when
    :meth:`finish` is called after its own work. Each background process is fed by a thread here that hands it
    the next job when it finishes one. With one worker, :meth:`finish` trains them all here, in order, on torch's
    threads. Spawned, not forked: a fork of a process whose torch threads have started can hang. After an error
    no further training starts; one a background process is running finishes first (the process exits after it).
    Interrupting it instead was tried: a signal that reaches a process still starting up kills it with a fatal
    error of its own, and a terminated one leaks a semaphore warning."""

    def __init__(self, jobs: list[tuple], workers: int):
        self.pending, self.results = deque(enumerate(jobs)), [None] * len(jobs)
        self.workers, self.threads = workers, torch.get_num_threads()
        self.lock, self.feeders, self.failure = threading.Lock(), [], None
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> TrainingPool:
        if self.workers > 1:
            torch.set_num_threads(1)
            self.executor = ProcessPoolExecutor(self.workers - 1, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=torch.set_num_threads, initargs=(1,))
            self.feeders = [threading.Thread(target=self._feed, daemon=True) for _ in range(self.workers - 1)]
            for feeder in self.feeders:
                feeder.start()
        return self

    def _next(self) -> tuple[int, tuple] | None:
        with self.lock:
            return self.pending.popleft() if self.pending and self.failure is None else None

    def _feed(self) -> None:
        while (item := self._next()) is not None:
            try:
                self.results[item[0]] = self.executor.submit(train, *item[1], progress=False).result()
            except BaseException as err:  # raised by finish(), in the main thread
                self.failure = err

    def finish(self) -> list[dict]:
        """Train the jobs no background process has taken, wait for the others; the results in job order."""
        while (item := self._next()) is not None:
            self.results[item[0]] = train(*item[1])
        for feeder in self.feeders:
            feeder.join()
        if self.failure is not None:
            raise self.failure
        return self.results

    def __exit__(self, exc_type, *exc) -> None:
        with self.lock:
            self.pending.clear()
        if self.executor is not None:
            self.executor.shutdown(wait=exc_type is None, cancel_futures=True)
            torch.set_num_threads(self.threads)


def random_archs(space: nao.SearchSpace, n: int, seed: int) -> list[str]:
    """``n`` distinct random archs (by canonical form), drawn in turn from one generator seeded ``seed``: the
    first is the same for every ``n``, so asking for more random archs later trains only the new ones."""
    rng, archs, seen = np.random.default_rng(seed), [], set()
    while len(archs) < n:
        arch = space.sample(rng)
        if (key := space.canonical(arch)) not in seen:
            seen.add(key)
            archs.append(space.format(arch))
    return archs


def random_name(i: int) -> str:
    """OUT/random for the first random arch, then OUT/random2, OUT/random3, ..."""
    return "random" if i == 0 else f"random{i + 1}"


def run_name(name: str, k: int) -> str:
    """The run directory (and table row) of ``name``'s k-th training seed: OUT/best, OUT/best-seed1, ..."""
    return name if k == 0 else f"{name}-seed{k}"


def standing(value: float, mean: float, std: float) -> str:
    """How far ``value`` lies from the random archs' mean, in their standard deviations where there are two."""
    gap = f"{value - mean:+.2f} vs their mean"
    return gap if not std > 0 else f"{gap}, {(value - mean) / std:+.1f} std"


if __name__ == "__main__":
    main()
