"""Ranking quality of predictors: NAO's controller, BANANAS' ensemble and gradient-boosted trees (issue #16).

Protocol: for each seed, ``n_train`` cells to fit on and 5,000 disjoint held-out cells; Kendall tau (and Spearman)
between the held-out cells' true and predicted scores. ``nb201``: a random permutation of the 15,625 cells of the
CIFAR-10 table (valid_acc). ``darts``: uniformly random distinct DARTS cells scored by the NB301 surrogate
(valid_acc at epoch 98). Predictors:

- ``nao``: the controller (configs' defaults; ``--epochs``, ``KEY=VALUE`` controller hyperparameters); with
  ``--members K``, the mean prediction of K controllers fitted from K seeds (``nao.ControllerEnsemble``: an
  ensemble as BANANAS' 5 networks, each a whole controller);
- ``bananas``: BANANAS' ensemble (5 MLPs, one-hot of the canonical tokens), the ``bananas`` strategy's predictor;
- ``xgboost``: XGBoost on the same one-hot encoding (dev extra; benchmark only), 500 trees of depth 6, learning
  rate 0.05, subsample 0.8 (a standard strong setting for a few hundred rows).

Prints one JSON object.

    python scripts/bench_ranking.py --space darts --n-train 100 1000 --predictors nao bananas xgboost
    python scripts/bench_ranking.py --n-train 1000 --epochs 500 --seeds 5 lr=0.002
    python scripts/bench_ranking.py --space darts --n-train 1000 --epochs 200 --members 5 predict_equivalents=true
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np
from common import NB301_DIR, load_nb201, parse_overrides

import nao
from nao.predictors.ensemble import EnsembleConfig, EnsemblePredictor
from nao.predictors.metrics import kendall_tau, spearman

N_TEST = 5000


def nb201_cells(seed: int, n_train: int) -> tuple[list, np.ndarray, list, np.ndarray]:
    archs, columns = load_nb201()
    scores = columns["valid_acc"]
    order = np.random.default_rng(seed).permutation(len(archs))
    train, test = order[:n_train], order[n_train:n_train + N_TEST]
    return [archs[i] for i in train], scores[train], [archs[i] for i in test], scores[test]


def darts_cells(seed: int, n_train: int) -> tuple[list, np.ndarray, list, np.ndarray]:
    from nao.search.evaluators import make_evaluator, parse_evaluator_config

    space = nao.get_space("darts")
    rng = np.random.default_rng(seed)
    cells: dict = {}
    while len(cells) < n_train + N_TEST:
        arch = space.sample(rng)
        cells.setdefault(space.canonical(arch), arch)
    archs = list(cells.values())
    surrogate = make_evaluator(space, parse_evaluator_config({"type": "nb301", "path": str(NB301_DIR)}))
    scores = np.array([m["valid_acc"] for m in surrogate.metrics(archs)])
    return archs[:n_train], scores[:n_train], archs[n_train:], scores[n_train:]


CELLS: dict[str, Callable] = {"nb201": nb201_cells, "darts": darts_cells}


def fit_nao(space, train, y, test, *, seed: int, epochs: int, hyper: dict, members: int = 1) -> np.ndarray:
    """The controller's prediction; with ``members`` > 1 the mean of that many (``nao.ControllerEnsemble``)."""
    ensemble = nao.ControllerEnsemble(space, members=members, seed=seed, **hyper)
    ensemble.fit(train, y, epochs=epochs)
    return ensemble.predict(test)


def fit_bananas(space, train, y, test, *, seed: int, **_) -> np.ndarray:
    ensemble = EnsemblePredictor(space, EnsembleConfig(), seed=seed)
    ensemble.fit(train, y)
    return ensemble.predict(test)[0]


def fit_xgboost(space, train, y, test, *, seed: int, **_) -> np.ndarray:
    import xgboost

    encode = EnsemblePredictor(space).encode  # the same one-hot of the canonical tokens
    params = {"max_depth": 6, "eta": 0.05, "subsample": 0.8, "seed": seed, "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(encode(train).numpy(), label=y), num_boost_round=500)
    return booster.predict(xgboost.DMatrix(encode(test).numpy()))


PREDICTORS: dict[str, Callable] = {"nao": fit_nao, "bananas": fit_bananas, "xgboost": fit_xgboost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", choices=sorted(CELLS), default="nb201")
    parser.add_argument("--n-train", type=int, nargs="+", default=[100])
    parser.add_argument("--predictors", nargs="+", choices=sorted(PREDICTORS), default=["nao"])
    parser.add_argument("--epochs", type=int, default=1000, help="controller epochs (nao)")
    parser.add_argument("--members", type=int, default=1, help="controllers averaged (nao)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="controller hyperparameters (nao)")
    args = parser.parse_args()
    if args.members < 1:
        parser.error("--members must be at least 1")
    hyper = parse_overrides(args.overrides)
    space = nao.get_space(args.space)
    results: dict = {}
    for n_train in args.n_train:
        for seed in range(args.seeds):
            train, y, test, truth = CELLS[args.space](seed, n_train)
            for name in args.predictors:
                started = time.perf_counter()
                predicted = PREDICTORS[name](space, train, y, test, seed=seed, epochs=args.epochs, hyper=hyper,
                                             members=args.members)
                entry = results.setdefault(f"{name}@{n_train}", {"tau": [], "spearman": [], "seconds": []})
                entry["seconds"].append(time.perf_counter() - started)
                entry["tau"].append(kendall_tau(truth, predicted))
                entry["spearman"].append(spearman(truth, predicted))
                print(f"{args.space} n={n_train} seed {seed} {name}: tau {entry['tau'][-1]:.4f} "
                      f"({entry['seconds'][-1]:.0f} s)", file=sys.stderr)
    summary = {key: {"kendall_tau_mean": round(float(np.mean(v["tau"])), 4),
                     "kendall_tau_std": round(float(np.std(v["tau"])), 4),
                     "kendall_tau": [round(t, 4) for t in v["tau"]],
                     "spearman_mean": round(float(np.mean(v["spearman"])), 4),
                     "seconds_per_fit": round(float(np.mean(v["seconds"])), 1)} for key, v in results.items()}
    print(json.dumps({"benchmark": "ranking", "space": args.space, "n_test": N_TEST, "epochs": args.epochs,
                      "nao_members": args.members, "hyper": hyper, "results": summary}))


if __name__ == "__main__":
    main()
