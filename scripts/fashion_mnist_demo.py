"""The README's main job: NAO-WS on Fashion-MNIST, then the best cell and a random cell trained alike.

    python scripts/fashion_mnist_demo.py [--out runs/fashion-demo] [--seed 0]

1. ``nao search configs/fashion_mnist_ws.yaml`` (supernet, NAO controller) into OUT/search;
2. ``nao train configs/fashion_mnist_train.yaml`` for the search's best arch (OUT/best) and for a
   random arch drawn with the same seed (OUT/random), same network, recipe and epochs;
3. prints both test accuracies (the test set is read once per cell, after training) and, as the
   last line, a JSON summary. Every step resumes: run it again after a kill to continue.
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
    parser.add_argument("--out", default="runs/fashion-demo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out, started = Path(args.out), time.perf_counter()
    space = nao.get_space("nao-cnn")

    def stage(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", file=sys.stderr, flush=True)

    stage("NAO-WS search (configs/fashion_mnist_ws.yaml)")
    search = run_search(load_config(CONFIGS / "fashion_mnist_ws.yaml", [f"seed={args.seed}"]), out / "search",
                        resume=True)
    search_seconds = time.perf_counter() - started
    cells = {"best": search["best_arch"], "random": space.format(space.sample(np.random.default_rng(args.seed)))}
    results = {}
    for name, arch in cells.items():
        stage(f"training the {name} cell (configs/fashion_mnist_train.yaml): {arch}")
        results[name] = run_train(CONFIGS / "fashion_mnist_train.yaml", [f"arch={arch}", f"seed={args.seed}"],
                                  out / name, resume=True)
    print(f"{'cell':8}{'supernet valid':>16}{'valid acc':>11}{'test acc':>10}{'params':>9}  arch")
    for name, r in results.items():
        supernet = f"{search['best_metric']:.2f}" if name == "best" else "-"
        print(f"{name:8}{supernet:>16}{r['valid_acc']:>11.2f}{r['test_acc']:>10.2f}{r['params']:>9}  {r['arch']}")
    print(json.dumps({"search_seconds": round(search_seconds, 1),
                      "total_seconds": round(time.perf_counter() - started, 1), "evaluated": search["evaluated"],
                      "best_supernet_valid_acc": search["best_metric"],
                      **{f"{k}_{m}": r[m] for k, r in results.items() for m in ("arch", "valid_acc", "test_acc")}}))


if __name__ == "__main__":
    main()
