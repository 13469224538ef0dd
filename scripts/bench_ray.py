"""Ray executor speed-up (issue #6): batches of CPU-bound standalone evaluations, serial against Ray.

    python scripts/bench_ray.py [CONFIG] [--archs 8] [--workers 2] [--repeats 1] [--seed S] [--set KEY=VALUE ...]
    python scripts/bench_ray.py configs/ptb_ws_cpu.yaml --set evaluator.type=standalone \
        evaluator.task.data.dir=../shared/data/ptb evaluator.task.data.train_tokens=100000

Two batches of ``--archs`` distinct random cells (drawn with ``--seed``, default the config's seed),
evaluated by the search CONFIG's evaluator (default ``configs/fashion_mnist_standalone.yaml``: each cell
trained 2 epochs from scratch on 20,000 Fashion-MNIST images, scored on 1,000 validation images) through
the executor a search uses, as a search uses it:

- the ``first`` batch is timed from the evaluator's construction, so it includes the data loading and, for
  Ray, the workers' start-up (imports, building the evaluator, loading the data in each worker);
- the ``later`` batch runs on the same executor, as every later batch of a search does (Ray's workers live for
  the whole search), so it times the evaluations alone.

Three ways in this one run: ``serial`` (this process, torch's default thread count: what a user gets),
``serial_1_thread``, and ``ray`` (``--workers`` workers of one CPU each, on a local Ray started beforehand and
timed separately). ``--repeats`` rounds of the three, each round starting with the next way (a shared machine's
speed drifts). Prints one JSON object: every time, the speed-ups of Ray over both serial runs from the medians
(target: >= 1.6x faster than serial with 2 workers on 2 cores) and per round, and what the speed-up over serial
is made of (later batch):

- ``serial_second_thread_gain``: serial on 1 thread / serial on torch's threads (what the serial run already
  gets from the other cores);
- ``ray_evaluation_slowdown``: each arch's evaluation seconds in a Ray worker / the same arch's in the
  one-thread serial run (the machine running two evaluations at once; Ray's dispatch is not in it);
- ``ray_utilisation``: evaluation seconds / (workers x wall seconds) (what is left is Ray's dispatch and the
  wait for the batch's last evaluation);

so that speed-up over serial = workers x utilisation / (second_thread_gain x evaluation_slowdown), and
``machine_limit`` = workers / (second_thread_gain x evaluation_slowdown) is what an executor that never waits
would get from this machine. Also ``cost_rank_correlation``, Spearman's between the evaluator's ``cost`` of each
cell (Ray starts the costliest first) and its one-thread training seconds, and whether Ray's metrics equal the
one-thread serial run's (same arithmetic, so they should be identical).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from nao.search import load_config
from nao.search.evaluators import make_evaluator
from nao.search.executors import make_executor
from nao.spaces import get_space
from nao.spaces.base import Arch

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fashion_mnist_standalone.yaml"
WAYS = ("serial", "serial_1_thread", "ray")


def distinct_archs(space, n: int, seed: int) -> list[Arch]:
    rng, archs, seen = np.random.default_rng(seed), [], set()
    while len(archs) < n:
        arch = space.sample(rng)
        if space.canonical(arch) not in seen:
            seen.add(space.canonical(arch))
            archs.append(arch)
    return archs


def run_batches(config, batches: list[list[Arch]]) -> tuple[list[float], list[list[float]], list[dict]]:
    """Wall seconds of each batch (the first one from the evaluator's construction), every evaluation's own
    seconds per batch, and the metrics of every arch in batch order."""
    space = get_space(config.space)
    started = time.perf_counter()
    evaluator = make_evaluator(space, config.evaluator, seed=config.seed, device=config.device)
    executor = make_executor(config, space, evaluator)
    executor.start()
    walls, evaluation_seconds, metrics = [], [], []
    try:
        for archs in batches:
            outcomes = sorted(executor.run(archs), key=lambda outcome: outcome.position)
            walls.append(time.perf_counter() - started)
            failed = [outcome.error for outcome in outcomes if outcome.error is not None]
            if failed:
                raise SystemExit(f"bench_ray: {len(failed)} evaluations failed, first: {failed[0]}")
            evaluation_seconds.append([outcome.seconds for outcome in outcomes])
            metrics.extend(outcome.metrics for outcome in outcomes)
            started = time.perf_counter()
    finally:
        executor.close()
    return walls, evaluation_seconds, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default=str(CONFIG), help="a search config with a standalone evaluator")
    parser.add_argument("--archs", type=int, default=8, help="cells per batch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three ways (medians are compared)")
    parser.add_argument("--seed", type=int, help="seed of the cells' draw (default: the config's seed)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    import ray

    def config(executor: str):
        return load_config(args.config, [*args.set, f"executor={executor}", f"workers={args.workers}"])

    base = config("serial")
    seed = base.seed if args.seed is None else args.seed
    archs = distinct_archs(get_space(base.space), 2 * args.archs, seed=seed)
    batches = [archs[:args.archs], archs[args.archs:]]
    threads = torch.get_num_threads()
    seconds = {way: {"first": [], "later": []} for way in WAYS}
    evaluations = {way: [] for way in WAYS}  # per round: every evaluation's seconds, arch by arch, both batches
    ray_start, metrics = [], {}
    for repeat in range(args.repeats):
        for way in WAYS[repeat % len(WAYS):] + WAYS[:repeat % len(WAYS)]:
            print(f"round {repeat + 1}: {way} ...", file=sys.stderr)
            torch.set_num_threads(1 if way == "serial_1_thread" else threads)
            if way == "ray":  # Ray runs only during its own measurement
                started = time.perf_counter()
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
                ray_start.append(time.perf_counter() - started)
            try:
                walls, evaluation_seconds, metrics[way] = run_batches(config("ray" if way == "ray" else "serial"),
                                                                      batches)
            finally:
                if way == "ray":
                    ray.shutdown()
            for batch, wall in zip(("first", "later"), walls, strict=True):
                seconds[way][batch].append(wall)
            evaluations[way].append(evaluation_seconds[0] + evaluation_seconds[1])
        torch.set_num_threads(threads)
    median = {way: {batch: float(np.median(v)) for batch, v in by_batch.items()} for way, by_batch in seconds.items()}

    def speedup(over: str) -> dict[str, float]:
        return {batch: round(median[over][batch] / median["ray"][batch], 2) for batch in ("first", "later")}

    later = {way: np.array(by_batch["later"]) for way, by_batch in seconds.items()}
    each = {way: np.array(rounds) for way, rounds in evaluations.items()}  # (round, arch)
    ray_later, serial_1_later = each["ray"][:, args.archs:], each["serial_1_thread"][:, args.archs:]
    second_thread_gain = float(np.median(later["serial_1_thread"] / later["serial"]))
    slowdown = float(np.median(ray_later / serial_1_later))
    utilisation = float(np.median(ray_later.sum(axis=1) / (args.workers * later["ray"])))
    evaluator = make_evaluator(get_space(base.space), base.evaluator, seed=seed, device=base.device)
    cost_correlation = spearmanr([evaluator.cost(arch) for arch in archs],
                                 np.median(each["serial_1_thread"], axis=0)).statistic
    print(json.dumps({
        "benchmark": "ray_executor", "config": args.config, "set": args.set, "seed": seed,
        "archs_per_batch": args.archs, "workers": args.workers, "cpu_cores": os.cpu_count(),
        "serial_threads": threads, "repeats": args.repeats,
        "seconds": {way: {batch: [round(v, 1) for v in values] for batch, values in by_batch.items()}
                    for way, by_batch in seconds.items()},
        "ray_start_seconds": round(float(np.median(ray_start)), 1),
        "speedup_over_serial": speedup("serial"),
        "speedup_over_serial_1_thread": speedup("serial_1_thread"),
        "speedup_over_serial_per_round": {
            batch: np.round(np.array(seconds["serial"][batch]) / np.array(seconds["ray"][batch]), 2).tolist()
            for batch in ("first", "later")},
        "later_batch": {"serial_second_thread_gain": round(second_thread_gain, 3),
                        "ray_evaluation_slowdown": round(slowdown, 3),
                        "ray_utilisation": round(utilisation, 3),
                        "machine_limit": round(args.workers / (second_thread_gain * slowdown), 2)},
        "cost_rank_correlation": round(float(cost_correlation), 2),
        "ray_metrics_equal_serial_1_thread": metrics["ray"] == metrics["serial_1_thread"],
    }))


if __name__ == "__main__":
    main()
