"""Search, then train the best arch found and a random arch the same way (the README's main job).

    python scripts/search_then_train.py                       # NAO-WS on Fashion-MNIST, 2 CPU cores
    python scripts/search_then_train.py configs/ptb_ws_cpu.yaml configs/ptb_train_cpu.yaml \\
        --search-set evaluator.task.data.dir=../shared/data/ptb --train-set data.dir=../shared/data/ptb

1. ``nao search SEARCH.yaml`` into OUT/search;
2. ``nao train TRAIN.yaml`` for the search's best arch (OUT/best) and for a random arch drawn with the
   same seed (OUT/random): same network, recipe and epochs; with ``--train-seeds N`` each is trained N
   times, with training seeds SEED, SEED+1, ... (OUT/best-seed1, ...), since one training's result
   varies with its seed;
3. prints the validation and test metrics of both (the test set is read once per arch, after its
   training), with N seeds their means and standard deviations, and, as the last line, a JSON summary.
   Every step resumes: run it again after a kill.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import nao
from nao.search import load_config, run_search
from nao.train import run_train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("search", nargs="?", default=str(CONFIGS / "fashion_mnist_ws.yaml"))
    parser.add_argument("train", nargs="?", default=str(CONFIGS / "fashion_mnist_train.yaml"))
    parser.add_argument("--out", help="default runs/<search config name>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-seeds", type=int, default=1, metavar="N", help="train each arch N times, seeds "
                        "SEED..SEED+N-1, and compare the means")
    parser.add_argument("--search-set", nargs="*", default=[], metavar="KEY=VALUE", help="search config overrides")
    parser.add_argument("--train-set", nargs="*", default=[], metavar="KEY=VALUE", help="train config overrides")
    args = parser.parse_args()
    out, started = Path(args.out or f"runs/{Path(args.search).stem}"), time.perf_counter()

    def stage(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", file=sys.stderr, flush=True)

    stage(f"search ({args.search})")
    config = load_config(args.search, [f"seed={args.seed}", *args.search_set])
    search = run_search(config, out / "search", resume=True)
    search_seconds = time.perf_counter() - started
    space = nao.get_space(config.space)
    archs = {"best": search["best_arch"], "random": space.format(space.sample(np.random.default_rng(args.seed)))}
    trained = {name: [] for name in archs}  # per arch, one result per training seed
    for name, arch in archs.items():
        for k in range(args.train_seeds):
            stage(f"training the {name} arch, training seed {args.seed + k} ({args.train}): {arch}")
            trained[name].append(run_train(args.train, [f"arch={arch}", f"seed={args.seed + k}", *args.train_set],
                                           out / run_name(name, k), resume=True))
    metrics = [k for k in trained["best"][0] if k.startswith(("valid_", "test_"))]
    width = max(8, len(run_name("random", args.train_seeds - 1)) + 2)
    print(f"{'arch':{width}}{'search ' + (config.evaluator.metric or 'metric'):>18}"
          + "".join(f"{m:>11}" for m in metrics) + f"{'params':>9}  text")
    for name, results in trained.items():
        for k, r in enumerate(results):
            searched = f"{search['best_metric']:.2f}" if name == "best" and k == 0 else "-"
            print(f"{run_name(name, k):{width}}{searched:>18}" + "".join(f"{r[m]:>11.2f}" for m in metrics)
                  + f"{r['params']:>9}  {r['arch']}")
    summary = {"search_seconds": round(search_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
               "evaluated": search["evaluated"], "best_search_metric": search["best_metric"],
               **{f"{name}_{m}": trained[name][0][m] for name in archs for m in ("arch", *metrics)}}
    if args.train_seeds > 1:
        for name, results in trained.items():
            cells = []
            for m in metrics:
                values = [r[m] for r in results]
                mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
                summary |= {f"{name}_{m}_seeds": values, f"{name}_{m}_mean": mean, f"{name}_{m}_std": std}
                cells.append(f"{m} {mean:.2f} ± {std:.2f}")
            print(f"{name:{width}}over training seeds {args.seed}..{args.seed + args.train_seeds - 1}: "
                  + ", ".join(cells))
    print(json.dumps(summary))


def run_name(name: str, k: int) -> str:
    """The run directory (and table row) of ``name``'s k-th training seed: OUT/best, OUT/best-seed1, ..."""
    return name if k == 0 else f"{name}-seed{k}"


if __name__ == "__main__":
    main()
