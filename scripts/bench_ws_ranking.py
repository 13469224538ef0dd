"""Weight-sharing ranking quality (issue #4): supernet scores against short standalone training.

    python scripts/bench_ws_ranking.py RUN_DIR [--archs 20] [--epochs 3] [--out FILE.csv]
    python scripts/bench_ws_ranking.py RUN_DIR --against RESULTS.csv [--metric valid_ppl] [--more-stages N]

RUN_DIR is a finished supernet search of any task (e.g. the main job's runs/fashion_mnist_ws/search,
or a PTB search). Its last supernet scores every arch it evaluated; ``--archs`` of them, evenly
spread over that ranking, are then trained from scratch (the ``standalone`` evaluator with the
search's task settings: same network size, same training data) for ``--epochs`` epochs and scored
on the same validation data. With ``--against``, nothing is trained: the last supernet scores the
archs of a results file (e.g. the validation perplexities of finished ``nao train`` runs, archs
inside or outside the search's pool) and those scores are compared with the file's; ``--more-stages N``
then trains the supernet N more stages on the search's pool (on a copy of the run: the run is left as
it was) and compares again after each. Prints one JSON object with Kendall's tau and Spearman's rho
between the two scores (and writes the pairs to --out).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

import nao
from nao.config import from_dict
from nao.predictors.metrics import kendall_tau, spearman
from nao.results import load_results
from nao.search.evaluators import make_evaluator
from nao.search.loop import SearchConfig
from nao.search.rundir import RunDir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3, help="standalone training epochs per arch")
    parser.add_argument("--against", type=Path, help="a results file: compare with its scores instead of training")
    parser.add_argument("--metric", help="--against's score column (default: its only numeric column)")
    parser.add_argument("--more-stages", type=int, default=0,
                        help="with --against: train the supernet this many more stages, comparing after each")
    parser.add_argument("--out", type=Path, help="CSV of arch, supernet score, standalone score")
    args = parser.parse_args()
    config = from_dict(SearchConfig, yaml.safe_load((args.run / "config.yaml").read_text()))
    space = nao.get_space(config.space)
    run = RunDir(args.run)
    pool = [space.parse(r.arch) for r in run.read_history()]
    supernet = make_evaluator(space, replace(config.evaluator, type="supernet"), seed=config.seed,
                              device=config.device, run_path=args.run)
    stage = run.load_state()["stage"]
    supernet.begin_stage(stage, pool)  # loads the last stage's weights
    metric, started = supernet.metric, time.perf_counter()
    if args.against:
        rows, other = compared_with_results(args, space, pool, supernet, stage)
    else:
        rows = trained_from_scratch(args, config, space, pool, supernet)
        other = {"standalone_epochs": args.epochs, "standalone_seconds": round(time.perf_counter() - started, 1)}
    if args.out:
        with open(args.out, "w", newline="") as f:
            csv.writer(f).writerows([("arch", f"supernet_{metric}", f"standalone_{metric}"), *rows])
    ws, sa = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    print(json.dumps({"benchmark": "ws_ranking", "run": str(args.run), "archs": len(rows), **other,
                      "kendall_tau": round(float(kendall_tau(ws, sa)), 3),
                      "spearman": round(float(spearman(ws, sa)), 3),
                      "supernet_range": [round(float(ws.min()), 1), round(float(ws.max()), 1)],
                      "standalone_range": [round(float(sa.min()), 1), round(float(sa.max()), 1)],
                      "pairs": [[a, round(float(w), 2), round(float(t), 2)] for a, w, t in rows]}))


def compared_with_results(args: argparse.Namespace, space, pool: list, supernet, stage: int) -> tuple[list, dict]:
    """(arch, supernet score, the file's score) for every arch of ``--against``, and with ``--more-stages``
    the rank correlations after each further stage of supernet training (on a copy of the run)."""
    given = load_results(args.against, space, metric=args.metric)

    def compared() -> list[tuple]:
        return [(space.format(a), supernet.evaluate(a)[supernet.metric], float(score))
                for a, score in zip(given.archs, given.scores, strict=True)]

    rows, other = compared(), {"against": str(args.against)}
    if args.more_stages:
        other["more_stages"] = []
        with tempfile.TemporaryDirectory() as tmp:
            supernet.run_path = Path(shutil.copytree(args.run, Path(tmp) / "run"))
            for more in range(1, args.more_stages + 1):
                supernet.begin_stage(stage + more, pool)
                ws = np.array([r[1] for r in compared()])
                other["more_stages"].append({"stages": more,
                                             "kendall_tau": round(float(kendall_tau(ws, given.scores)), 3),
                                             "spearman": round(float(spearman(ws, given.scores)), 3)})
                print(json.dumps(other["more_stages"][-1]), file=sys.stderr)
    return rows, other


def trained_from_scratch(args: argparse.Namespace, config: SearchConfig, space, pool: list, supernet) -> list[tuple]:
    """(arch, supernet score, score after ``--epochs`` of standalone training) for ``--archs`` archs of the
    pool, evenly spread over the supernet's ranking."""
    metric, sign = supernet.metric, 1 if supernet.minimize else -1
    scores = np.array([supernet.evaluate(a)[metric] for a in pool])
    order = np.argsort(sign * scores)  # best first
    picked = [int(order[i]) for i in np.linspace(0, len(pool) - 1, args.archs).round().astype(int)]
    config.evaluator.task = config.evaluator.task | {"train": config.evaluator.task["train"] | {"epochs": args.epochs}}
    standalone = make_evaluator(space, replace(config.evaluator, type="standalone"), seed=config.seed,
                                device=config.device)
    rows = []
    for n, i in enumerate(picked):
        trained = standalone.evaluate(pool[i])[metric]
        rows.append((space.format(pool[i]), float(scores[i]), trained))
        print(f"{n + 1}/{len(picked)} supernet {scores[i]:.1f} standalone {trained:.1f}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
