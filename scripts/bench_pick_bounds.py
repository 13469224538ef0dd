"""How much a better predictor could give NAO's batches (issue #16): its candidate scheme with perfect and with blind
picks.

NAO with ``nao.mutants`` evaluates, per iteration, the ``new_per_iteration`` best-predicted of ``mutants`` new
mutations of its ``top_k`` best archs (beside a few decoded gradient-step proposals). This script runs that scheme
without a predictor: after the ``seed_archs`` random archs (all four settings read from the benchmark's config
file, changed by KEY=VALUE overrides), each batch is picked among the mutants

- ``oracle``: by the benchmark itself (the table's or the surrogate's searched metric): the upper bound of what any
  predictor can make of these candidates;
- ``random``: uniformly: the lower bound, what a predictor that knows nothing gives.

NAO's own row in ``bench_search.py`` sits between the two; where it sits says how much of the candidates' headroom
its predictor takes. This loop draws its own seed archs (not those of ``bench_search.py``'s runs of the same seed),
so compare means over seeds. Prints one JSON object: per picker and budget, the reported metric of
the best-by-searched-metric arch, mean and standard error over seeds.

    python scripts/bench_pick_bounds.py --benchmark darts --seeds 20 --budgets 50 100 150 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from bench_search import BENCHMARKS, benchmark_config

import nao
from nao.errors import UserError
from nao.search.evaluators import make_evaluator
from nao.search.strategies import distinct_mutations
from nao.spaces.base import Arch, SearchSpace

Measure = Callable[[Sequence[Arch]], list[dict[str, float]]]


def pick_oracle(candidates: list[dict[str, float]], n: int, metric: str, rng: np.random.Generator) -> np.ndarray:
    return np.argsort([-c[metric] for c in candidates], kind="stable")[:n]


def pick_random(candidates: list[dict[str, float]], n: int, metric: str, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(len(candidates), min(n, len(candidates)), replace=False)


PICKERS = {"oracle": pick_oracle, "random": pick_random}


def mutant_search(space: SearchSpace, measure: Measure, pick: Callable, *, seed: int, budget: int, seed_archs: int,
                  top_k: int, batch: int, mutants: int, metric: str,
                  within: Sequence[Arch] | None = None) -> list[dict[str, float]]:
    """The metrics of the ``budget`` archs evaluated, in order: ``seed_archs`` distinct random ones, then batches of
    ``batch`` that ``pick`` chooses among ``mutants`` new mutations of the ``top_k`` best by ``metric`` (higher
    better; topped up with random new archs where the mutations run short of a batch). Every candidate is measured;
    only the picked count against the budget. ``within``: the archs the benchmark can score (a table), where seeds
    are drawn and mutations kept (by canonical form); None: any."""
    rng = np.random.default_rng(seed)
    keys = None if within is None else {space.canonical(a) for a in within}

    def draw() -> Arch:
        return space.sample(rng) if within is None else within[rng.integers(len(within))]

    archs: list[Arch] = []
    seen: set = set()
    while len(archs) < min(seed_archs, budget):
        arch = draw()
        if space.canonical(arch) not in seen:
            seen.add(space.canonical(arch))
            archs.append(arch)
    history = measure(archs)
    while len(history) < budget:
        best = np.argsort([-h[metric] for h in history], kind="stable")[:top_k]
        candidates = distinct_mutations(space, [archs[i] for i in best], mutants, seen, rng,
                                        keep=lambda a: keys is None or space.canonical(a) in keys)
        fill = {space.canonical(a): a for a in candidates}  # as NAO fills a batch with random archs when its
        for _ in range(100 * batch):                           # candidates run short
            if len(fill) >= batch:
                break
            arch = draw()
            if space.canonical(arch) not in seen:
                fill.setdefault(space.canonical(arch), arch)
        candidates = list(fill.values())
        if not candidates:
            raise UserError(f"seed {seed}: no new arch left to evaluate after {len(history)}")
        measured = measure(candidates)
        for i in pick(measured, min(batch, budget - len(history)), metric, rng):
            archs.append(candidates[i])
            seen.add(space.canonical(candidates[i]))
            history.append(measured[i])
    return history


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="darts")
    parser.add_argument("--pickers", nargs="+", choices=sorted(PICKERS), default=sorted(PICKERS))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 150, 300])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="changes to the benchmark's config")
    args = parser.parse_args(argv)
    try:
        result = bounds(args.benchmark, args.pickers, args.seeds, args.budgets, args.overrides)
    except UserError as err:
        print(f"bench_pick_bounds: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(result))


def bounds(benchmark: str, pickers: list[str], seeds: int, budgets: list[int], overrides: list[str]) -> dict:
    """Per picker and budget: mean and standard error over ``seeds`` of the reported metric of the best arch."""
    config = benchmark_config(benchmark, "nao", 0, max(budgets), overrides)
    space, (_, _, search, report) = nao.get_space(config.space), BENCHMARKS[benchmark]
    evaluator = make_evaluator(space, config.evaluator, seed=0)
    measure = evaluator.metrics if hasattr(evaluator, "metrics") else (
        lambda archs: [evaluator.evaluate(a) for a in archs])
    settings = {key: getattr(config.options, key) for key in ("seed_archs", "top_k", "mutants")} | {
        "batch": config.options.new_per_iteration}
    within, found = evaluator.candidates(), {}
    for name in pickers:
        started, best = time.perf_counter(), []
        for seed in range(seeds):
            history = mutant_search(space, measure, PICKERS[name], seed=seed, budget=max(budgets), metric=search,
                                    within=within, **settings)
            best.append([max(history[:b], key=lambda h: h[search])[report] for b in budgets])
        values = np.array(best)
        found[name] = {str(b): {"mean": round(float(values[:, i].mean()), 3),
                                "stderr": round(float(values[:, i].std(ddof=1) / np.sqrt(seeds)), 3) if seeds > 1
                                else None} for i, b in enumerate(budgets)}
        found[name]["seconds_per_run"] = round((time.perf_counter() - started) / seeds, 2)
    return {"benchmark": "pick_bounds", "space": benchmark, "seeds": seeds, "overrides": overrides,
            "settings": settings, "results": found}


if __name__ == "__main__":
    main()
