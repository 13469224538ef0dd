"""Search, then train the best arch found and a random arch the same way (the README's main job).

    python scripts/search_then_train.py                       # NAO-WS on Fashion-MNIST, 2 CPU cores
    python scripts/search_then_train.py configs/ptb_ws_cpu.yaml configs/ptb_train_cpu.yaml \\
        --search-set evaluator.task.data.dir=../shared/data/ptb --train-set data.dir=../shared/data/ptb

1. ``nao search SEARCH.yaml`` into OUT/search;
2. ``nao train TRAIN.yaml`` for the search's best arch (OUT/best) and for a random arch drawn with the
   same seed (OUT/random): same network, recipe and epochs;
3. prints the validation and test metrics of both (the test set is read once per arch, after its
   training) and, as the last line, a JSON summary. Every step resumes: run it again after a kill.
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
    results = {}
    for name, arch in archs.items():
        stage(f"training the {name} arch ({args.train}): {arch}")
        results[name] = run_train(args.train, [f"arch={arch}", f"seed={args.seed}", *args.train_set], out / name,
                                  resume=True)
    metrics = [k for k in results["best"] if k.startswith(("valid_", "test_"))]
    print(f"{'arch':8}{'search ' + (config.evaluator.metric or 'metric'):>18}"
          + "".join(f"{m:>11}" for m in metrics) + f"{'params':>9}  text")
    for name, r in results.items():
        searched = f"{search['best_metric']:.2f}" if name == "best" else "-"
        print(f"{name:8}{searched:>18}" + "".join(f"{r[m]:>11.2f}" for m in metrics) + f"{r['params']:>9}  {r['arch']}")
    print(json.dumps({"search_seconds": round(search_seconds, 1),
                      "total_seconds": round(time.perf_counter() - started, 1), "evaluated": search["evaluated"],
                      "best_search_metric": search["best_metric"],
                      **{f"{k}_{m}": r[m] for k, r in results.items() for m in ("arch", *metrics)}}))


if __name__ == "__main__":
    main()
