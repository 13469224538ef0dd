"""How noisy is a ground truth? The same cells trained with two training seeds (issue #17).

    python scripts/ws_truth_noise.py FIRST.jsonl SECOND.jsonl [--metric valid_acc] [--simulations 2000]

FIRST is a ground-truth file of ``scripts/ws_ground_truth.py``; SECOND holds some of its cells trained again
with another ``--train-seed`` on the same validation split. Prints one JSON object:

- ``repeat``: the second seed's accuracies used as a supernet's scores against the first seed's, on the cells both
  files hold (``bench_ws_ranking.ground_truth_metrics``: Kendall tau, Spearman, tau among the top 20 % / 50 %,
  precision@10, the pick). No supernet can be expected to rank a seed's results better than another seed does.
- ``noise_std``: the standard deviation of one cell's metric over training seeds (that of the paired
  differences over the square root of 2, their mean removed), next to ``spread_std``, that of FIRST's cells;
  ``noise_std_interval``: its 95 % bootstrap interval (the shared cells resampled), a few cells' estimate.
- ``reachable``: the same metrics, averaged over ``--simulations`` draws, for a scorer that knows every cell's
  noise-free metric, against a file like FIRST (all its cells): each draw adds Gaussian noise of ``noise_std`` to
  FIRST's values shrunk towards their mean so that their spread, noise included, stays FIRST's. An estimate that
  assumes the noise is Gaussian and the same for every cell; the ``repeat`` numbers assume nothing but count fewer
  cells. ``reachable_interval``: each metric at the noisier and at the quieter end of ``noise_std_interval``.
- ``reachable_mean_of_both``: the same for a truth that is each shared cell's mean over the two files
  (``bench_ws_ranking.py --repeats``), whose noise is ``noise_std`` over the square root of 2.

Bad input (a missing file, fewer than 3 shared cells, a line without the metric) is one line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from bench_ws_ranking import ground_truth_metrics, rounded
from ws_ground_truth import read_metric_cells

from nao.errors import UserError

BOOTSTRAP = 2000  # resamples of the shared cells for noise_std_interval
METRICS = ("kendall_tau", "spearman", "kendall_tau_top20", "kendall_tau_top50", "precision_at_10")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="a ground-truth file (the one a supernet is measured against)")
    parser.add_argument("second", type=Path, help="some of its cells trained with another training seed")
    parser.add_argument("--metric", default="valid_acc")
    parser.add_argument("--simulations", type=int, default=2000, help="draws of the reachable-ranking estimate")
    parser.add_argument("--seed", type=int, default=0, help="seeds the simulation")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(truth_noise(args.first, args.second, args.metric, args.simulations, args.seed)))
    except UserError as err:
        print(f"ws_truth_noise: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def truth_noise(first: Path, second: Path, metric: str, simulations: int, seed: int) -> dict:
    """The module docstring's measures of ``first``'s noise, from the cells ``second`` trained again."""
    first_cells, second_cells = (metric_cells(path, metric) for path in (first, second))
    shared = [arch for arch in second_cells if arch in first_cells]
    if len(shared) < 3:
        raise UserError(f"{second}: {len(shared)} of its cells are in {first}; at least 3 are needed")
    again, once = (np.array([cells[arch][metric] for arch in shared]) for cells in (second_cells, first_cells))
    is_random = np.array([first_cells[arch].get("group") == "random" for arch in shared])
    repeat = ground_truth_metrics(again, once, is_random)
    repeat.pop("picked_index")
    rng, differences = np.random.default_rng(seed), again - once
    noise_std = float(np.std(differences, ddof=1) / math.sqrt(2))
    resampled = rng.integers(0, len(shared), size=(BOOTSTRAP, len(shared)))
    interval = np.percentile(np.std(differences[resampled], axis=1, ddof=1) / math.sqrt(2), [2.5, 97.5])
    values = np.array([cell[metric] for cell in first_cells.values()])
    noisier, quieter = (reachable(values, float(std), simulations, rng) for std in interval[::-1])
    return {"benchmark": "ws_truth_noise", "first": str(first), "second": str(second), "metric": metric,
            "train_seeds": [sorted({c.get("train_seed") for c in cells.values()}, key=str)
                            for cells in (first_cells, second_cells)],
            "shared_cells": len(shared), "repeat": repeat,
            "mean_difference": round(float(np.mean(differences)), 3), "noise_std": round(noise_std, 3),
            "noise_std_interval": [round(float(std), 3) for std in interval],
            "cells": len(values), "spread_std": round(float(np.std(values, ddof=1)), 3),
            "reachable": reachable(values, noise_std, simulations, rng),
            "reachable_interval": {key: [noisier.get(key), quieter.get(key)] for key in METRICS},
            "reachable_mean_of_both": reachable((once + again) / 2, noise_std / math.sqrt(2), simulations, rng)}


def metric_cells(path: Path, metric: str) -> dict[str, dict]:
    """The cells of a ground-truth file by arch text; ``UserError`` for a missing file or metric."""
    return {cell["arch"]: cell for cell in read_metric_cells(path, metric)}


def reachable(values: np.ndarray, noise_std: float, simulations: int, rng: np.random.Generator) -> dict:
    """Mean ranking metrics of the noise-free values against noisy measurements of them (module docstring)."""
    spread = float(np.var(values, ddof=1))
    if spread <= noise_std ** 2:
        return {"note": "the noise is as large as the spread: nothing but noise to rank"}
    noise_free = values.mean() + math.sqrt(1 - noise_std ** 2 / spread) * (values - values.mean())
    no_groups = np.zeros(len(values), dtype=bool)
    draws = [ground_truth_metrics(noise_free, noise_free + rng.normal(0.0, noise_std, len(values)), no_groups)
             for _ in range(simulations)]
    return {key: rounded(float(np.mean([d[key] for d in draws if d[key] is not None]))) for key in METRICS}


if __name__ == "__main__":
    main()
