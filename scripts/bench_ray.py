"""Ray executor speed-up (issue #6): one batch of CPU-bound standalone evaluations, serial against Ray.

    python scripts/bench_ray.py [CONFIG] [--archs 8] [--workers 2] [--set KEY=VALUE ...]
    python scripts/bench_ray.py configs/ptb_ws_cpu.yaml --set evaluator.type=standalone \
        evaluator.task.data.dir=../shared/data/ptb evaluator.task.data.train_tokens=100000

One batch of ``--archs`` random cells (random search, one batch) evaluated by the search CONFIG's
evaluator (default ``configs/fashion_mnist_standalone.yaml``: each cell trained 2 epochs from scratch on
20,000 Fashion-MNIST images, scored on 1,000 validation images), three ways in this one run:

- ``serial``: in this process with torch's default thread count (all cores: what a user gets),
- ``serial_1_thread``: in this process on one thread,
- ``ray``: ``executor: ray`` with ``--workers`` workers of one CPU each on a local Ray started beforehand
  (its start is timed separately; the workers' own start-up, imports and data loading are inside the time).

Prints one JSON object: the seconds of each, the speed-ups of Ray over both serial runs (target: >= 1.6x
faster than serial with 2 workers on 2 cores), and whether Ray's metrics equal the one-thread serial run's
(same arithmetic, so they should be identical).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from nao.search import load_config, run_search
from nao.search.rundir import RunDir

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fashion_mnist_standalone.yaml"


def config(args: argparse.Namespace, executor: str):
    return load_config(args.config, [*args.set, "strategy=random", f"budget={args.archs}",
                                     f"executor={executor}", f"workers={args.workers}"])


def timed_search(args: argparse.Namespace, executor: str, out: Path) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    run_search(config(args, executor), out, progress=False)
    seconds = time.perf_counter() - started
    return seconds, {r.arch: r.metrics for r in RunDir(out).read_history()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default=str(CONFIG), help="a search config with a standalone evaluator")
    parser.add_argument("--archs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    import ray

    results, threads = {}, torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"serial, {threads} threads ...", file=sys.stderr)
        results["serial"] = timed_search(args, "serial", Path(tmp) / "serial")
        torch.set_num_threads(1)
        print("serial, 1 thread ...", file=sys.stderr)
        results["serial_1_thread"] = timed_search(args, "serial", Path(tmp) / "serial1")
        torch.set_num_threads(threads)
        print(f"ray, {args.workers} workers ...", file=sys.stderr)
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_start = time.perf_counter() - started
        results["ray"] = timed_search(args, "ray", Path(tmp) / "ray")
        ray.shutdown()
    seconds = {name: round(s, 1) for name, (s, _) in results.items()}
    print(json.dumps({
        "benchmark": "ray_executor", "config": args.config, "set": args.set, "archs": args.archs,
        "workers": args.workers, "cpu_cores": os.cpu_count(), "serial_threads": threads,
        "seconds": seconds, "ray_start_seconds": round(ray_start, 1),
        "speedup_over_serial": round(seconds["serial"] / seconds["ray"], 2),
        "speedup_over_serial_1_thread": round(seconds["serial_1_thread"] / seconds["ray"], 2),
        "speedup_over_serial_with_ray_start": round(seconds["serial"] / (seconds["ray"] + ray_start), 2),
        "ray_metrics_equal_serial_1_thread": results["ray"][1] == results["serial_1_thread"][1],
    }))


if __name__ == "__main__":
    main()
