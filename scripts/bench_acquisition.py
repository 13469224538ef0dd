"""How well predictors choose among mutations of the best archs, at the states a search really reaches (issue #16).

NAO and BANANAS on the DARTS space both evaluate, per iteration, the 10 best-predicted of a few hundred mutations
of the 10 best archs so far. Held-out random cells (``bench_ranking.py``) measure a predictor elsewhere: here the
pools are those of finished NAO searches on the NB301 surrogate. For each run directory and each iteration asked
for, the pool is what the search had evaluated before that iteration; ``--mutants`` distinct new mutations of its
10 best archs are scored by the surrogate and by each predictor fitted on the pool:

- ``nao-search``: the controller the search itself used at that iteration (its checkpoint: warm-started fits);
- ``nao``: a controller fitted from scratch on the pool (the run's controller settings, ``--epochs``, and
  ``--set KEY=VALUE`` overrides);
- ``bananas``: BANANAS' ensemble (the ``bananas`` strategy's predictor);
- ``nao-search+bananas``: both, a candidate ranked by the sum of its ranks under the two.

Per predictor: Kendall tau among the candidates, the true accuracy of its 10 best-predicted candidates (their best
and their mean: the batch a search would evaluate) and of the best candidate, next to what 10 random mutants and
the best mutant reach. ``--hops H`` makes the candidates in H rounds of mutations, each round mutating the
best-predicted candidates of the rounds before (a predictor-guided local search that leaves the one-edit
neighbourhood of the pool's best archs). ``--spread D ...`` also picks diverse batches: greedily by prediction,
skipping each candidate whose canonical token sequence differs in fewer than D positions from one already picked
(mutations of one parent differ in about two; batch Bayesian optimisation spreads a batch so that one wrong
prediction does not waste it all); their metrics carry the suffix ``_spreadD``, and ``batch_size_spreadD`` says how
many candidates such a batch holds (fewer than 10 where too few are far enough apart).
Prints one JSON object.

    python scripts/bench_search.py --benchmarks darts --strategies nao --seeds 10 --budgets 300 --no-report \
        --out runs/acq
    python scripts/bench_acquisition.py runs/acq/darts/nao-seed* --iterations 5 15 29
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from common import NB301_DIR, parse_overrides

import nao
from nao.predictors.ensemble import EnsembleConfig, EnsemblePredictor
from nao.predictors.metrics import average_ranks, kendall_tau
from nao.search.evaluators import make_evaluator, parse_evaluator_config
from nao.search.rundir import CONFIG, RunDir
from nao.search.strategies import distinct_mutations
from nao.spaces.base import Arch

BATCH = 10  # archs a search evaluates per iteration (configs/nb301.yaml: nao.new_per_iteration, bananas.batch)
PARENTS = 10  # mutations of the best PARENTS archs (nao.top_k, bananas.parents)


def run_config(run: Path) -> dict:
    return yaml.safe_load((run / CONFIG).read_text())


Predict = Callable[[list[Arch]], np.ndarray]


def from_search(run: Path, iteration: int, pool, scores, **_) -> Predict:
    return nao.Controller.load(run / "controller" / f"iter{iteration:03d}", device="cpu").predict


def fresh_nao(run: Path, iteration: int, pool, scores, *, epochs: int, hyper: dict, seed: int) -> Predict:
    settings = run_config(run)["nao"]["controller"] | {"device": "cpu"} | hyper
    ctrl = nao.Controller(nao.get_space("darts"), seed=seed, **settings)
    ctrl.fit(pool, scores, epochs=epochs)
    return ctrl.predict


def bananas(run: Path, iteration: int, pool, scores, *, seed: int, **_) -> Predict:
    ensemble = EnsemblePredictor(nao.get_space("darts"), EnsembleConfig(), seed=seed)
    ensemble.fit(pool, scores)
    return lambda archs: ensemble.predict(archs)[0]


def search_and_bananas(run: Path, iteration: int, pool, scores, **settings) -> Predict:
    """The search's controller and BANANAS' ensemble together: the sum of a candidate's ranks under both (White et
    al. 2021 combine predictor families; nothing is fitted to weigh them)."""
    controller, ensemble = from_search(run, iteration, pool, scores), bananas(run, iteration, pool, scores, **settings)
    return lambda archs: average_ranks(controller(archs)) + average_ranks(ensemble(archs))


PREDICTORS: dict[str, Callable[..., Predict]] = {"nao-search": from_search, "nao": fresh_nao, "bananas": bananas,
                                                 "nao-search+bananas": search_and_bananas}


def candidates(space, parents: list[Arch], predict: Predict, n: int, hops: int, seen: set,
               rng: np.random.Generator) -> list[Arch]:
    """``n`` new archs in ``hops`` rounds of mutations: the first mutates ``parents``, each later one the
    best-predicted candidates so far (a predictor-guided local search; ``hops`` 1: the strategies' mutants)."""
    found: list[Arch] = []
    for hop in range(hops):
        found += distinct_mutations(space, parents, n // hops, seen | {space.canonical(a) for a in found}, rng)
        if hop + 1 < hops:
            parents = [found[i] for i in np.argsort(-predict(found), kind="stable")[:PARENTS]]
    return found


def diverse_batch(predicted: np.ndarray, tokens: np.ndarray, spread: int) -> np.ndarray:
    """Indices of the ``BATCH`` best-predicted candidates, skipping any whose tokens differ from an already chosen
    one's in fewer than ``spread`` positions (0: the plain best-predicted)."""
    chosen: list[int] = []
    for i in np.argsort(-predicted, kind="stable"):
        if all((tokens[i] != tokens[j]).sum() >= spread for j in chosen):
            chosen.append(int(i))
            if len(chosen) == BATCH:
                break
    return np.array(chosen)


def averages(rows: list[dict]) -> dict[str, float]:
    return {key: round(float(np.mean([r[key] for r in rows])), 4) for key in rows[0] if key != "iteration"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="finished NAO run directories on the darts space")
    parser.add_argument("--iterations", type=int, nargs="+", default=[5, 15, 29])
    parser.add_argument("--mutants", type=int, default=300)
    parser.add_argument("--predictors", nargs="+", choices=sorted(PREDICTORS), default=sorted(PREDICTORS))
    parser.add_argument("--hops", type=int, default=1, help="rounds of mutations that make the candidates")
    parser.add_argument("--spread", type=int, nargs="+", default=[0], metavar="D",
                        help="also pick batches whose members differ in at least D tokens (0: best predicted)")
    parser.add_argument("--epochs", type=int, default=1000, help="epochs of the fresh controller fit (nao)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="controller settings (fresh fit)")
    args = parser.parse_args()
    if min(args.spread) < 0:
        parser.error(f"--spread: a number of tokens, 0 or more, got {min(args.spread)}")
    hyper = parse_overrides(args.set)
    space = nao.get_space("darts")
    surrogate = make_evaluator(space, parse_evaluator_config({"type": "nb301", "path": str(NB301_DIR)}))
    rows: dict[str, list[dict]] = {name: [] for name in [*args.predictors, "random", "best"]}
    for run_index, run in enumerate(args.runs):
        history = sorted(RunDir(run).read_history(), key=lambda r: (r.stage, r.index))
        settings = run_config(run)["nao"]
        seeds, per_iteration = settings["seed_archs"], settings["new_per_iteration"]
        for iteration in args.iterations:
            records = history[:seeds + per_iteration * (iteration - 1)]
            pool = [space.parse(r.arch) for r in records]
            scores = np.array([r.metrics["valid_acc"] for r in records])
            parents = [pool[i] for i in np.argsort(-scores, kind="stable")[:PARENTS]]
            seen = {space.canonical(a) for a in pool}
            rng = np.random.default_rng([run_index, iteration])
            mutants = distinct_mutations(space, parents, args.mutants, seen, rng)
            truth = np.array([m["valid_acc"] for m in surrogate.metrics(mutants)])
            for name in args.predictors:
                started = time.perf_counter()
                predict = PREDICTORS[name](run, iteration, pool, scores, epochs=args.epochs, hyper=hyper,
                                           seed=run_index)
                found = candidates(space, parents, predict, args.mutants, args.hops, seen,
                                   np.random.default_rng([run_index, iteration]))
                predicted = predict(found)
                true = np.array([m["valid_acc"] for m in surrogate.metrics(found)])
                tokens = np.array([space.to_tokens(space.canonical(a)) for a in found])
                row = {"iteration": iteration, "tau": kendall_tau(true, predicted)}
                for spread in sorted(set(args.spread) | {0}):
                    chosen = true[diverse_batch(predicted, tokens, spread)]
                    suffix = f"_spread{spread}" if spread else ""
                    row |= {f"batch_best{suffix}": chosen.max(), f"batch_mean{suffix}": chosen.mean()}
                    if spread:  # fewer than BATCH where the candidates are too close together
                        row[f"batch_size{suffix}"] = len(chosen)
                rows[name].append(row | {"candidates_best": true.max(), "seconds": time.perf_counter() - started})
                print(f"{run.name} iteration {iteration} (pool {len(pool)}) {name}: tau {row['tau']:.3f}"
                      f" batch best {row['batch_best']:.3f} (best candidate {true.max():.3f})", file=sys.stderr)
            rng = np.random.default_rng(run_index)
            draws = np.array([rng.choice(truth, BATCH, replace=False) for _ in range(1000)])
            rows["random"].append({"iteration": iteration, "batch_best": draws.max(axis=1).mean(),
                                   "batch_mean": truth.mean()})
            rows["best"].append({"iteration": iteration, "batch_best": truth.max(),
                                 "batch_mean": np.sort(truth)[-BATCH:].mean()})
    summary = {name: {f"iteration {i}": averages([r for r in entries if r["iteration"] == i])
                      for i in args.iterations} | {"all": averages(entries)} for name, entries in rows.items()}
    print(json.dumps({"benchmark": "acquisition", "runs": len(args.runs), "iterations": args.iterations,
                      "mutants": args.mutants, "hops": args.hops, "spread": args.spread, "epochs": args.epochs,
                      "hyper": hyper, "results": summary}))


if __name__ == "__main__":
    main()
