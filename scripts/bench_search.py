"""Compare strategies on the NAS-Bench-201 CIFAR-10 table (issue #3): search valid_acc, report test_acc.

Every (strategy, seed) runs once at the largest budget; the result at a smaller budget is read
from the history prefix (a run with that budget evaluates exactly that prefix: batches are
functions of the history, and a batch cut by the budget keeps its best-predicted head).
Prints one JSON object: per strategy and budget, the mean and std over seeds of the test
accuracy of the best-by-validation cell. Run directories stay in --out for `nao report`.

    python scripts/bench_search.py --seeds 20 --budgets 50 100 150 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import NB201_CSV

from nao.search import load_config, run_search
from nao.search.rundir import RunDir


def best_test_at(history, budget: int) -> float:
    prefix = history[:budget]
    best = max(prefix, key=lambda r: r.metrics["valid_acc"])
    return best.metrics["test_acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1 "
                        "(split a long benchmark over processes; a last run over all seeds reads the finished runs)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 150, 300])
    parser.add_argument("--strategies", nargs="+", default=["random", "evolution", "nao"])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "nb201.yaml"))
    parser.add_argument("--out", default="runs/bench_search", help="parent of the run directories")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    args = parser.parse_args()
    budget = max(args.budgets)
    table: dict[str, dict] = {}
    seconds: dict[str, list[float]] = {}
    for strategy in args.strategies:
        results = {b: [] for b in args.budgets}
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            out = Path(args.out) / f"{strategy}-seed{seed}"
            config = load_config(args.config, [f"evaluator.path={NB201_CSV}", f"strategy={strategy}", f"seed={seed}",
                                               f"budget={budget}", *args.overrides])
            started = time.perf_counter()
            run_search(config, out, resume=True, progress=False)
            seconds.setdefault(strategy, []).append(time.perf_counter() - started)
            history = RunDir(out).read_history()
            for b in args.budgets:
                results[b].append(best_test_at(history, b))
            print(f"{strategy} seed {seed}: best test {results[budget][-1]:.2f} ({seconds[strategy][-1]:.0f} s)",
                  file=sys.stderr)
        table[strategy] = {str(b): {"mean": round(float(np.mean(v)), 3), "std": round(float(np.std(v)), 3)}
                           for b, v in results.items()}
    print(json.dumps({"benchmark": "search", "table": "nb201/cifar10", "search": "valid_acc", "report": "test_acc",
                      "seeds": args.seeds, "overrides": args.overrides, "best_test_acc": table,
                      "seconds_per_run": {k: round(float(np.mean(v)), 1) for k, v in seconds.items()}}))


if __name__ == "__main__":
    main()
