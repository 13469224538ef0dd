"""Ray executor speed-up (issue #6): one batch of CPU-bound standalone evaluations, serial against Ray.

    python scripts/bench_ray.py [CONFIG] [--archs 8] [--workers 2] [--repeats 1] [--set KEY=VALUE ...]
    python scripts/bench_ray.py configs/ptb_ws_cpu.yaml --set evaluator.type=standalone \
        evaluator.task.data.dir=../shared/data/ptb evaluator.task.data.train_tokens=100000

One batch of ``--archs`` random cells (random search, one batch) evaluated by the search CONFIG's
evaluator (default ``configs/fashion_mnist_standalone.yaml``: each cell trained 2 epochs from scratch on
20,000 Fashion-MNIST images, scored on 1,000 validation images), three ways in this one run:

- ``serial``: in this process with torch's default thread count (all cores: what a user gets),
- ``serial_1_thread``: in this process on one thread,
- ``ray``: ``executor: ray`` with ``--workers`` workers of one CPU each on a local Ray started beforehand
  (its start is timed separately; the workers' own start-up, imports and data loading are inside the time).

``--repeats`` rounds of the three, interleaved (a shared machine is noisy). Prints one JSON object: every
time, the speed-ups of Ray over both serial runs from the medians (target: >= 1.6x faster than serial with 2
workers on 2 cores), and whether Ray's metrics equal the one-thread serial run's (same arithmetic, so they
should be identical).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
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
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three runs (medians are compared)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    import ray

    threads = torch.get_num_threads()
    seconds: dict[str, list[float]] = {"serial": [], "serial_1_thread": [], "ray": []}
    ray_start, metrics = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            print(f"round {repeat + 1}: serial, {threads} threads ...", file=sys.stderr)
            seconds["serial"].append(timed_search(args, "serial", Path(tmp) / f"serial{repeat}")[0])
            torch.set_num_threads(1)
            print(f"round {repeat + 1}: serial, 1 thread ...", file=sys.stderr)
            took, metrics["serial_1_thread"] = timed_search(args, "serial", Path(tmp) / f"serial1_{repeat}")
            seconds["serial_1_thread"].append(took)
            torch.set_num_threads(threads)
            print(f"round {repeat + 1}: ray, {args.workers} workers ...", file=sys.stderr)
            started = time.perf_counter()  # Ray runs only during its own measurement
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            ray_start.append(time.perf_counter() - started)
            took, metrics["ray"] = timed_search(args, "ray", Path(tmp) / f"ray{repeat}")
            seconds["ray"].append(took)
            ray.shutdown()
    median = {name: float(np.median(values)) for name, values in seconds.items()}
    print(json.dumps({
        "benchmark": "ray_executor", "config": args.config, "set": args.set, "archs": args.archs,
        "workers": args.workers, "cpu_cores": os.cpu_count(), "serial_threads": threads, "repeats": args.repeats,
        "seconds": {name: [round(v, 1) for v in values] for name, values in seconds.items()},
        "ray_start_seconds": round(float(np.median(ray_start)), 1),
        "speedup_over_serial": round(median["serial"] / median["ray"], 2),
        "speedup_over_serial_1_thread": round(median["serial_1_thread"] / median["ray"], 2),
        "ray_metrics_equal_serial_1_thread": metrics["ray"] == metrics["serial_1_thread"],
    }))


if __name__ == "__main__":
    main()
