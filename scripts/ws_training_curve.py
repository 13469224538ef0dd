"""Does a supernet rank better the longer it trains? (issue #17) A supernet of a search config, trained outside any
search in cosine cycles, scores the ground-truth cells after each cycle.

    python scripts/ws_training_curve.py --config configs/fashion_mnist_ws.yaml --set evaluator.task.sampling=space \
        --ground-truth data/ws_ground_truth/fashion_mnist_ws.jsonl \
        [--repeats data/ws_ground_truth/fashion_mnist_ws_seed1.jsonl] --cycles 8 --cycle-epochs 5 --out FILE.jsonl

The config's supernet (its task, sampling rule and seed; ``--set KEY=VALUE`` changes them) trains ``--cycles``
cycles of ``--cycle-epochs`` epochs, each a cosine cycle of the learning rate as a search's stage is. A search's
supernet trains on its pool of evaluated archs; here there is no search, so rules that draw from a pool draw from
``--pool`` uniformly random archs (the main job evaluates 300); ``space`` and ``fair`` ignore it. After each cycle
the supernet scores every cell of the ground truth and one JSON line is written to ``--out`` and printed: total
epochs, seconds, the mean score, and ``bench_ws_ranking``'s ground-truth metrics (τ over all cells, among the top
20 % / 50 % and among the random cells, precision@10, the pick's true accuracy). A search's supernet is trained
5 stages of 3 epochs in the main job; this asks what 10 or 40 epochs would change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from bench_ws_ranking import add_truth_arguments, ground_truth_metrics, read_truth

import nao
from nao.errors import UserError
from nao.search import load_config
from nao.search.evaluators import make_evaluator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="a weight-sharing search config")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="config overrides")
    add_truth_arguments(parser)
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--cycle-epochs", type=int, default=5)
    parser.add_argument("--pool", type=int, default=300, help="random archs the pool-drawing rules draw from")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="one JSON line per cycle")
    args = parser.parse_args(argv)
    if min(args.cycles, args.cycle_epochs, args.pool) < 1:
        parser.error("--cycles, --cycle-epochs and --pool must be at least 1")
    if args.out.exists():
        parser.error(f"{args.out} exists: a curve starts from an untrained supernet, so it is not continued")
    try:
        for line in training_curve(args):
            print(json.dumps(line), flush=True)
    except UserError as err:
        print(f"ws_training_curve: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def training_curve(args: argparse.Namespace):
    """Yield (and append to ``args.out``) each cycle's line."""
    config = load_config(args.config, args.set)
    space = nao.get_space(config.space)
    supernet = make_evaluator(space, config.evaluator, seed=config.seed, device=config.device)
    if not supernet.shares_weights or not hasattr(supernet, "train"):
        raise UserError(f"{args.config}: evaluator.type {config.evaluator.type} has no supernet to train")
    metric = supernet.metric
    cells, truth, is_random, _ = read_truth(args.ground_truth, args.repeats, metric)
    archs = [space.parse(c["arch"]) for c in cells]
    pool = [space.sample(np.random.default_rng(i)) for i in range(args.pool)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for cycle in range(args.cycles):
        supernet.train(pool, seed=cycle, epochs=args.cycle_epochs, progress=False)
        supernet.weights_changed()
        scores = np.array([supernet.evaluate(a)[metric] for a in archs])
        found = ground_truth_metrics(scores, truth, is_random, minimize=supernet.minimize)
        found.pop("picked_index")
        line = {"epochs": (cycle + 1) * args.cycle_epochs, "seconds": round(time.perf_counter() - started),
                "mean_score": round(float(scores.mean()), 2), **found}
        with args.out.open("a") as f:
            f.write(json.dumps(line) + "\n")
        yield line


if __name__ == "__main__":
    main()
