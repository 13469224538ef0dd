"""Weight-sharing ranking quality (issues #4, #17): supernet scores against standalone training.

    python scripts/bench_ws_ranking.py RUN_DIR [--archs 20] [--epochs 3] [--out FILE.csv]
    python scripts/bench_ws_ranking.py RUN_DIR --against RESULTS.csv [--metric valid_ppl] [--more-stages N]
    python scripts/bench_ws_ranking.py RUN_DIR [RUN_DIR ...] --ground-truth data/ws_ground_truth/fashion_mnist_ws.jsonl
        [--score-with evaluator.task.valid_images=6000] [--repeats data/ws_ground_truth/fashion_mnist_ws_seed1.jsonl]
    python scripts/bench_ws_ranking.py --ground-truth data/ws_ground_truth/fashion_mnist_ws.jsonl
        --search configs/fashion_mnist_ws.yaml --seeds 0 1 2 --set evaluator.task.sampling=space --search-dir DIR

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

With ``--ground-truth`` (a file of ``scripts/ws_ground_truth.py``: cells of the search's space trained standalone
with its task settings), nothing is trained: each run's last supernet scores every cell of the file, and the JSON
object holds, per run and as mean and standard deviation over the runs: Kendall's tau and Spearman's rho over all
cells, tau among the file's top 20 % and top 50 % (by its measured metric) and among its random cells alone (those
no supernet chose), precision@10 (share of the true top 10 among the supernet's top 10), and the true metric of the
supernet's pick (its best-scored cell) beside the file's best and the mean of its ``random`` cells;
``parameter_count`` holds the same metrics for the cells ranked by the weights they use (CNN tasks), a baseline that
needs no supernet, and ``supernet_and_parameter_count`` the same for each run's supernet combined with it (the
sum of a cell's average ranks under both; per run and as mean and std). Two measures say why a supernet misranks
the random cells: tau between its scores and their weights (``kendall_tau_random_with_parameter_count``: does it
see what capacity buys?) and, in the summary, tau between the runs' scores (``kendall_tau_random_between_runs``, per
pair of runs: supernets that agree with each other and not with the truth share a bias; supernets that disagree are
noisy). ``--score-with KEY=VALUE ...`` changes the runs'
saved configs for the scoring only (the supernets' weights are the searches'), e.g.
``evaluator.task.valid_images=6000``: what the ranking would be had the searches scored their archs on more
validation images. ``--repeats FILE ...``: the file's cells trained with other training seeds (``ws_ground_truth.py
--train-seed``); a cell's truth is then its mean over the files that hold it, which halves the truth's noise
variance where every cell has one repeat (``scripts/ws_truth_noise.py`` measures that noise). ``--search
CONFIG`` first runs (or resumes) that config's search, changed by ``--set``, with each of ``--seeds`` into
SEARCH_DIR/search-seedS, and adds those runs to the RUN_DIRs: one command measures one setting of the supernet
over several search seeds (a row of docs/cnn.md's table). ``--proxies NAME ...`` adds, under ``proxies``, the
cells ranked by training-free scores of their freshly initialised networks (``nao.tasks.cnn.proxies``: the
network's ``weights``, ``naswot``, ``synflow``, ``snip``), alone and combined with the supernets and the parameter
count.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from common import FinalSupernet, load_final_supernet, require_cnn_supernet, searched_runs, standalone_config
from ws_ground_truth import read_metric_cells

from nao.errors import UserError
from nao.predictors.metrics import average_ranks, kendall_tau, precision_at_k, spearman
from nao.results import load_results
from nao.search.evaluators import make_evaluator
from nao.tasks.cnn.proxies import PROXIES, proxy_scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="*", metavar="RUN_DIR", help="one, or several with --ground-truth")
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3, help="standalone training epochs per arch")
    parser.add_argument("--against", type=Path, help="a results file: compare with its scores instead of training")
    parser.add_argument("--metric", help="--against's score column (default: its only numeric column)")
    parser.add_argument("--more-stages", type=int, default=0,
                        help="with --against: train the supernet this many more stages, comparing after each")
    parser.add_argument("--ground-truth", type=Path, metavar="FILE",
                        help="a file of scripts/ws_ground_truth.py: every run's supernet scores its cells")
    parser.add_argument("--repeats", type=Path, nargs="+", default=[], metavar="FILE",
                        help="with --ground-truth: its cells trained with other seeds (ws_ground_truth.py "
                             "--train-seed); a cell's truth is its mean over the files")
    parser.add_argument("--rank-by-loss", action="store_true",
                        help="with --ground-truth: rank cells by the supernet's validation cross-entropy (valid_loss, "
                             "lower first) instead of its accuracy (CNN supernets)")
    parser.add_argument("--proxies", nargs="+", default=[], choices=sorted(PROXIES), metavar="PROXY",
                        help="with --ground-truth: also rank the cells by these training-free scores of their "
                             f"freshly initialised networks ({', '.join(sorted(PROXIES))}; CNN tasks), alone and "
                             "combined with the supernets and the parameter count")
    parser.add_argument("--score-with", nargs="+", default=[], metavar="KEY=VALUE",
                        help="with --ground-truth: config overrides for scoring, e.g. evaluator.task.valid_images=6000")
    parser.add_argument("--search", type=Path, metavar="CONFIG",
                        help="with --ground-truth: run this search config with each of --seeds and measure those runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="S", help="--search's seeds")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="--search's config overrides")
    parser.add_argument("--search-dir", type=Path, help="where --search's runs go (SEARCH_DIR/search-seedS)")
    parser.add_argument("--out", type=Path, help="CSV of arch, supernet score, standalone score")
    args = parser.parse_args(argv)
    if not args.ground_truth and (len(args.runs) != 1 or args.score_with or args.search or args.repeats
                                  or args.rank_by_loss or args.proxies):
        parser.error("several RUN_DIRs, --score-with, --repeats, --rank-by-loss, --proxies and --search need "
                     "--ground-truth; without it, one RUN_DIR")
    if bool(args.search) != bool(args.search_dir):
        parser.error("--search and --search-dir go together")
    if not args.runs and not args.search:
        parser.error("no RUN_DIR and no --search")
    try:
        if args.search:
            args.runs += searched_runs(args.search, args.seeds, args.search_dir, args.set)
        result = (against_ground_truth(args.runs, args.ground_truth, args.score_with, args.repeats,
                                       rank_by_loss=args.rank_by_loss, proxies=args.proxies)
                  if args.ground_truth else one_run(args))
    except UserError as err:
        print(f"bench_ws_ranking: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(result))


def one_run(args: argparse.Namespace) -> dict:
    """Supernet scores against short standalone training, or against ``--against``'s scores."""
    final = load_final_supernet(args.runs[0])
    supernet, started = final.supernet, time.perf_counter()
    if args.against:
        rows, other = compared_with_results(args, final)
    else:
        rows = trained_from_scratch(args, final)
        other = {"standalone_epochs": args.epochs, "standalone_seconds": round(time.perf_counter() - started, 1)}
    if args.out:
        with open(args.out, "w", newline="") as f:
            csv.writer(f).writerows([("arch", f"supernet_{supernet.metric}", f"standalone_{supernet.metric}"),
                                     *rows])
    ws, sa = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    return {"benchmark": "ws_ranking", "run": str(args.runs[0]), "archs": len(rows), **other,
            "kendall_tau": round(float(kendall_tau(ws, sa)), 3),
            "spearman": round(float(spearman(ws, sa)), 3),
            "supernet_range": [round(float(ws.min()), 1), round(float(ws.max()), 1)],
            "standalone_range": [round(float(sa.min()), 1), round(float(sa.max()), 1)],
            "pairs": [[a, round(float(w), 2), round(float(t), 2)] for a, w, t in rows]}


def against_ground_truth(runs: list[Path], path: Path, score_with: list[str] = (), repeats: list[Path] = (), *,
                         rank_by_loss: bool = False, proxies: list[str] = ()) -> dict:
    """Each run's last supernet (its config changed by ``score_with`` overrides) scored on every cell of
    ground-truth file ``path``: the metrics of ``ground_truth_metrics`` per run, and their mean and standard
    deviation over the runs (of the metrics every run has: a tau among tied values has none). Where the task counts
    an arch's weights (the CNN supernet's ``parameters_of``), ``parameter_count`` holds the same metrics for the
    ranking by that count: the baseline a supernet must beat, since it needs no training at all; and
    ``supernet_and_parameter_count`` those of each run's supernet combined with it (the sum of a cell's two average
    ranks: equal weights, nothing fitted to the truth), which says whether the two carry different information
    (White et al. 2021 combine predictor families this way). With several runs, ``all_supernets`` holds the
    metrics of the cells ranked by the sum of their average ranks over every run's supernet (an ensemble of
    supernets: each one's own noise averages out, their shared bias does not), alone and with the parameter count.
    ``repeats``: files of the same cells trained with other seeds; a cell's truth is its mean over the files that
    hold it. ``rank_by_loss``: supernets rank cells by their validation cross-entropy (``valid_loss``, lower
    first) instead of ``metric``. ``proxies``: names of :data:`PROXIES` (CNN tasks); ``proxies[name]`` holds the
    metrics of the cells ranked by that training-free score (``proxy_ranking_metrics``)."""
    finals = [load_final_supernet(run, score_with) for run in runs]
    metric = finals[0].supernet.metric
    if proxies:  # refused before minutes of scoring
        require_cnn_supernet(finals[0], "--proxies")
    cells, truth, is_random, repeated = read_truth(path, repeats, metric)
    if len(cells) < 2:
        raise UserError(f"{path}: {len(cells)} cells; a ranking needs at least 2")
    per_run, parameter_count, all_scores, weights, with_weights = [], None, [], None, []
    for run, final in zip(runs, finals, strict=True):
        supernet = final.supernet
        if supernet.metric != metric:
            raise UserError(f"{run}: its supernet scores {supernet.metric!r}, {runs[0]}'s {metric!r}")
        archs = [final.space.parse(c["arch"]) for c in cells]
        all_scores.append(supernet_scores(supernet, archs, rank_by_loss))
        found = ground_truth_metrics(all_scores[-1], truth, is_random, minimize=supernet.minimize)
        per_run.append({"run": str(run), **picked_named(found, cells)})
        if weights is None and hasattr(supernet, "parameters_of"):
            weights = signed_parameter_counts(supernet, archs)
            parameter_count = picked_named(ground_truth_metrics(weights, truth, is_random,
                                                                minimize=supernet.minimize), cells)
        if weights is not None:
            if is_random.sum() >= 2:
                per_run[-1]["kendall_tau_random_with_parameter_count"] = rounded(
                    kendall_tau(weights[is_random], all_scores[-1][is_random]))
            with_weights.append({"run": str(run), **picked_named(ground_truth_metrics(
                average_ranks(all_scores[-1]) + average_ranks(weights), truth, is_random,
                minimize=supernet.minimize), cells)})
        print(json.dumps(per_run[-1]), file=sys.stderr)
    summary = mean_and_std(per_run)
    if len(runs) > 1 and is_random.sum() >= 2:
        pairs = [rounded(kendall_tau(a[is_random], b[is_random])) for a, b in itertools.combinations(all_scores, 2)]
        known = [tau for tau in pairs if tau is not None]
        summary["kendall_tau_random_between_runs"] = {"mean": rounded(float(np.mean(known))) if known else None,
                                                      "pairs": pairs}
    together, minimize = {}, finals[0].supernet.minimize
    if len(runs) > 1:
        ensemble = sum(average_ranks(scores) for scores in all_scores)
        together["all_supernets"] = {"supernets": picked_named(ground_truth_metrics(
            ensemble, truth, is_random, minimize=minimize), cells)}
        if weights is not None:
            together["all_supernets"]["with_parameter_count"] = picked_named(ground_truth_metrics(
                ensemble + len(runs) * average_ranks(weights), truth, is_random, minimize=minimize), cells)
    if proxies:
        together["proxies"] = {name: proxy_ranking_metrics(name, finals[0], cells, truth, is_random, all_scores,
                                                           weights) for name in proxies}
    return {"benchmark": "ws_ground_truth", "ground_truth": str(path), "cells": len(cells), "metric": metric,
            "ranked_by": "valid_loss" if rank_by_loss else metric, "repeats": list(map(str, repeats)),
            "repeated_cells": repeated, "score_with": list(score_with), "runs": per_run, "summary": summary,
            **together,
            **({"parameter_count": parameter_count,
                "supernet_and_parameter_count": {"runs": with_weights, "summary": mean_and_std(with_weights)}}
               if parameter_count else {})}


def proxy_ranking_metrics(name: str, final: FinalSupernet, cells: list[dict], truth: np.ndarray,
                          is_random: np.ndarray, all_scores: list[np.ndarray], weights: np.ndarray | None) -> dict:
    """The metrics of ``ground_truth_metrics`` for the cells ranked by proxy ``name`` (computed on the search's
    network and training images, weights initialised from its seed): ``alone``; ``supernet_and_proxy``, each
    run's supernet with it (the sum of a cell's average ranks, per run and as mean and std); ``all_supernets_and_proxy``
    every run's supernet with it (the proxy's ranks weighted by the number of runs, as the parameter count's in
    ``all_supernets``); and where the task counts weights, the same with the parameter count added
    (``with_parameter_count``, ``supernet_parameter_count_and_proxy``, ``all_supernets_parameter_count_and_proxy``)
    and tau between the proxy and the parameter count over all cells (does the proxy see more than the weights?)."""
    supernet, minimize = final.supernet, final.supernet.minimize
    started = time.perf_counter()
    values = proxy_scores(name, final.space, [final.space.parse(c["arch"]) for c in cells], supernet.task.network,
                          supernet.data, seed=final.config.seed)
    signed = -values if minimize else values  # in the metric's direction, as the supernets' scores and weights
    proxy_ranks = average_ranks(signed)

    def metrics(ranks: np.ndarray) -> dict:
        return picked_named(ground_truth_metrics(ranks, truth, is_random, minimize=minimize), cells)

    def with_each_supernet(extra: np.ndarray) -> dict:
        per_run = [metrics(average_ranks(scores) + extra) for scores in all_scores]
        return {"runs": per_run, "summary": mean_and_std(per_run)}

    ensemble = sum(average_ranks(scores) for scores in all_scores)
    found = {"seconds": round(time.perf_counter() - started, 1), "alone": metrics(proxy_ranks),
             "supernet_and_proxy": with_each_supernet(proxy_ranks),
             "all_supernets_and_proxy": metrics(ensemble + len(all_scores) * proxy_ranks)}
    if weights is not None:
        both = proxy_ranks + average_ranks(weights)
        found |= {"kendall_tau_with_parameter_count": rounded(kendall_tau(signed, weights)),
                  "with_parameter_count": metrics(both),
                  "supernet_parameter_count_and_proxy": with_each_supernet(both),
                  "all_supernets_parameter_count_and_proxy": metrics(ensemble + len(all_scores) * both)}
    return found


def supernet_scores(supernet, archs: list, rank_by_loss: bool) -> np.ndarray:
    """Each arch's supernet score in the metric's direction: its ``metric``, or with ``rank_by_loss`` its negated
    (or, where the metric is minimised, its) validation cross-entropy, so that the cells rank the same way."""
    if not rank_by_loss:
        return np.array([supernet.evaluate(a)[supernet.metric] for a in archs])
    losses = []
    for arch in archs:
        scores = supernet.evaluate(arch)
        if "valid_loss" not in scores:
            raise UserError(f"--rank-by-loss: the {type(supernet).__name__} reports no valid_loss")
        losses.append(scores["valid_loss"])
    return (1.0 if supernet.minimize else -1.0) * np.array(losses)


def signed_parameter_counts(supernet, archs: list) -> np.ndarray:
    """The weights each arch uses in ``supernet``, as scores in its metric's direction (negated where lower scores
    are better): ranked like scores, the biggest cell comes first."""
    sign = -1.0 if supernet.minimize else 1.0
    return np.array([sign * supernet.parameters_of(a) for a in archs], dtype=float)


def mean_and_std(per_run: list[dict]) -> dict:
    """Mean and standard deviation over the runs of each metric that every run has (a tau among tied values has
    none)."""
    summary = {}
    for key in per_run[0]:
        values = [r[key] for r in per_run]
        if all(isinstance(v, float) for v in values):
            summary[key] = {"mean": round(float(np.mean(values)), 3),
                            "std": round(float(np.std(values, ddof=1)), 3) if len(values) > 1 else None}
    return summary


class GroundTruth(NamedTuple):
    """A ground-truth file's cells, each cell's truth (averaged over the repeat files), which cells are ``random``,
    and how many cells had a repeat."""

    cells: list[dict]
    truth: np.ndarray
    is_random: np.ndarray
    repeated: int


def add_truth_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ground-truth FILE`` (required) and ``--repeats FILE ...``, as the diagnostic scripts take them."""
    parser.add_argument("--ground-truth", type=Path, required=True, metavar="FILE")
    parser.add_argument("--repeats", type=Path, nargs="+", default=[], metavar="FILE",
                        help="the cells trained with other seeds; a cell's truth is its mean over the files")


def read_truth(path: Path, repeats: list[Path], metric: str) -> GroundTruth:
    """Ground-truth file ``path`` with each cell's ``metric`` averaged over the ``repeats`` files that hold it."""
    cells = read_metric_cells(path, metric)
    truth, repeated = averaged_truth(cells, [read_metric_cells(p, metric) for p in repeats], metric)
    return GroundTruth(cells, truth, np.array([c.get("group") == "random" for c in cells]), repeated)


def averaged_truth(cells: list[dict], repeats: list[list[dict]], metric: str) -> tuple[np.ndarray, int]:
    """Each cell's ``metric`` averaged with its value in each repeat file that holds its arch; and how many cells
    had at least one repeat."""
    by_arch = [{c["arch"]: c[metric] for c in repeat} for repeat in repeats]
    values = [[cell[metric], *(r[cell["arch"]] for r in by_arch if cell["arch"] in r)] for cell in cells]
    return np.array([np.mean(v) for v in values]), sum(len(v) > 1 for v in values)


def picked_named(found: dict, cells: list[dict]) -> dict:
    """``ground_truth_metrics``' result with the picked cell's arch in place of its index."""
    index = found.pop("picked_index")
    return {"picked_arch": cells[index]["arch"], **found}


def ground_truth_metrics(scores: np.ndarray, truth: np.ndarray, is_random: np.ndarray, *,
                         minimize: bool = False) -> dict:
    """How supernet ``scores`` rank cells whose measured metric is ``truth`` (``is_random``: the cells drawn
    uniformly, whose mean is what a search must beat). ``picked`` is the true metric of the best-scored cell
    (``picked_index``), ``best`` the best true metric; the taus ``top20``/``top50`` are among the truly best
    20 % / 50 % of the cells (at least 2); ``kendall_tau_random`` is tau among the random cells alone, the part of
    the truth that no supernet chose (the top cells were chosen by supernets, which rank them high by
    construction)."""
    sign = -1.0 if minimize else 1.0
    higher_scores, higher_truth = sign * scores, sign * truth  # higher is better in both from here
    truly_best = np.argsort(-higher_truth, kind="stable")

    def tau_among_top(share: float) -> float | None:
        top = truly_best[:max(2, round(share * len(truth)))]
        return rounded(kendall_tau(higher_truth[top], higher_scores[top]))

    picked = int(np.argmax(higher_scores))
    return {"kendall_tau": rounded(kendall_tau(higher_truth, higher_scores)),
            "spearman": rounded(spearman(higher_truth, higher_scores)),
            "kendall_tau_top20": tau_among_top(0.2), "kendall_tau_top50": tau_among_top(0.5),
            "kendall_tau_random": rounded(kendall_tau(higher_truth[is_random], higher_scores[is_random]))
            if is_random.sum() >= 2 else None,
            "precision_at_10": rounded(precision_at_k(higher_truth, higher_scores, 10)),
            "picked": round(float(truth[picked]), 3), "picked_index": picked,
            "best": round(float(truth[truly_best[0]]), 3),
            "random_mean": round(float(truth[is_random].mean()), 3) if is_random.any() else None}


def rounded(value: float) -> float | None:
    """``value`` to 3 decimals; ``None`` for NaN (a correlation of tied values), which JSON has no word for."""
    return None if math.isnan(value) else round(value, 3)


def compared_with_results(args: argparse.Namespace, final: FinalSupernet) -> tuple[list, dict]:
    """(arch, supernet score, the file's score) for every arch of ``--against``, and with ``--more-stages``
    the rank correlations after each further stage of supernet training (on a copy of the run)."""
    space, supernet = final.space, final.supernet
    given = load_results(args.against, space, metric=args.metric)

    def compared() -> list[tuple]:
        return [(space.format(a), supernet.evaluate(a)[supernet.metric], float(score))
                for a, score in zip(given.archs, given.scores, strict=True)]

    rows, other = compared(), {"against": str(args.against)}
    if args.more_stages:
        other["more_stages"] = []
        with tempfile.TemporaryDirectory() as tmp:
            supernet.run_path = Path(shutil.copytree(args.runs[0], Path(tmp) / "run"))
            for more in range(1, args.more_stages + 1):
                supernet.begin_stage(final.stage + more, final.pool)
                ws = np.array([r[1] for r in compared()])
                other["more_stages"].append({"stages": more,
                                             "kendall_tau": round(float(kendall_tau(ws, given.scores)), 3),
                                             "spearman": round(float(spearman(ws, given.scores)), 3)})
                print(json.dumps(other["more_stages"][-1]), file=sys.stderr)
    return rows, other


def trained_from_scratch(args: argparse.Namespace, final: FinalSupernet) -> list[tuple]:
    """(arch, supernet score, score after ``--epochs`` of standalone training) for ``--archs`` archs of the
    pool, evenly spread over the supernet's ranking."""
    config, space, metric = final.config, final.space, final.supernet.metric
    ranking = final.ranking()
    picked = [ranking[i] for i in np.linspace(0, len(ranking) - 1, args.archs).round().astype(int)]
    standalone = make_evaluator(space, standalone_config(config, args.epochs), seed=config.seed, device=config.device)
    rows = []
    for n, (arch, score) in enumerate(picked):
        trained = standalone.evaluate(arch)[metric]
        rows.append((space.format(arch), score, trained))
        print(f"{n + 1}/{len(picked)} supernet {score:.1f} standalone {trained:.1f}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
