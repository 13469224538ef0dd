"""Do gradient-step proposals find good cells? NAS-Bench-201, CIFAR-10 valid_acc (issue #2).

For each seed: 100 random cells are "known" (fitted on); then compare the mean true valid_acc of
- ``random``: 100 other random cells;
- ``nao``: 100 proposals of ``Controller.propose`` from the known cells (top_k 100);
- ``screening``: the same predictor ranking 2,000 random unseen cells, best 100 kept.
Prints one JSON object with per-seed values and means.

    python scripts/bench_proposals.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from common import load_nb201, parse_overrides

import nao


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-known", type=int, default=100)
    parser.add_argument("--n-propose", type=int, default=100)
    parser.add_argument("--n-screen", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="controller hyperparameters")
    args = parser.parse_args()
    hyper = parse_overrides(args.overrides)
    archs, columns = load_nb201()
    valid = columns["valid_acc"]
    space = nao.get_space("nb201")
    lookup = {arch: float(v) for arch, v in zip(archs, valid, strict=True)}
    per_seed = {"random": [], "nao": [], "screening": [], "nao_best": [], "screening_best": [], "mean_step": []}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(archs))
        known = order[:args.n_known]
        others = order[args.n_known:]
        started = time.perf_counter()
        ctrl = nao.Controller(space, seed=seed, **hyper)
        ctrl.fit([archs[i] for i in known], valid[known], epochs=args.epochs)
        proposals = ctrl.propose([archs[i] for i in known], valid[known], n=args.n_propose, top_k=args.n_known)
        found = np.array([lookup[p.arch] for p in proposals])
        pool = others[:args.n_screen]
        screened = pool[np.argsort(-ctrl.predict([archs[i] for i in pool]), kind="stable")[:args.n_propose]]
        per_seed["random"].append(float(valid[others[-args.n_propose:]].mean()))
        per_seed["nao"].append(float(found.mean()))
        per_seed["nao_best"].append(float(found.max()))
        per_seed["screening"].append(float(valid[screened].mean()))
        per_seed["screening_best"].append(float(valid[screened].max()))
        per_seed["mean_step"].append(float(np.mean([p.step for p in proposals])))
        print(f"seed {seed}: {len(proposals)} proposals, mean valid_acc {found.mean():.2f} "
              f"(screening {per_seed['screening'][-1]:.2f}, random {per_seed['random'][-1]:.2f}) "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    means = {f"{k}_mean": round(float(np.mean(v)), 3) for k, v in per_seed.items()}
    gain = np.array(per_seed["nao"]) - np.array(per_seed["random"])
    print(json.dumps({"benchmark": "proposals", "space": "nb201", "metric": "valid_acc", "epochs": args.epochs,
                      "hyper": hyper, **means, "nao_minus_random": round(float(gain.mean()), 3),
                      "nao_minus_screening": round(means["nao_mean"] - means["screening_mean"], 3),
                      "per_seed": {k: [round(x, 3) for x in v] for k, v in per_seed.items()}}))


if __name__ == "__main__":
    main()
