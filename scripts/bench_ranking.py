"""Ranking quality of the controller's predictor on NAS-Bench-201 (CIFAR-10 valid_acc).

Protocol (issue #2): for each seed, a random permutation of the 15,625 cells; fit on the first
``n_train``, Kendall tau on the next 5,000 (disjoint). Prints one JSON object.

    python scripts/bench_ranking.py --n-train 100 --epochs 1000
    python scripts/bench_ranking.py --n-train 1000 --epochs 500 --seeds 5 lr=0.002
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from common import load_nb201, parse_overrides

import nao
from nao.predictors.metrics import kendall_tau, spearman

N_TEST = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="controller hyperparameters")
    args = parser.parse_args()
    hyper = parse_overrides(args.overrides)
    archs, columns = load_nb201()
    scores = columns["valid_acc"]
    taus, rhos, seconds = [], [], []
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(archs))
        train, test = order[:args.n_train], order[args.n_train:args.n_train + N_TEST]
        started = time.perf_counter()
        ctrl = nao.Controller("nb201", seed=seed, **hyper)
        ctrl.fit([archs[i] for i in train], scores[train], epochs=args.epochs)
        predicted = ctrl.predict([archs[i] for i in test])
        seconds.append(time.perf_counter() - started)
        taus.append(kendall_tau(scores[test], predicted))
        rhos.append(spearman(scores[test], predicted))
        print(f"seed {seed}: tau {taus[-1]:.4f} ({seconds[-1]:.0f} s)", file=sys.stderr)
    print(json.dumps({"benchmark": "ranking", "n_train": args.n_train, "n_test": N_TEST, "epochs": args.epochs,
                      "hyper": hyper, "kendall_tau_mean": round(float(np.mean(taus)), 4),
                      "kendall_tau_std": round(float(np.std(taus)), 4), "kendall_tau": [round(t, 4) for t in taus],
                      "spearman_mean": round(float(np.mean(rhos)), 4),
                      "seconds_per_fit": round(float(np.mean(seconds)), 1)}))


if __name__ == "__main__":
    main()
