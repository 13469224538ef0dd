"""Per-arch fine-tuning as a ranking (issue #17): a supernet's ranking of ground-truth cells after 0, 20, 60, ...
SGD steps on each cell alone, several step counts in one pass, and the same steps from untrained weights.

    python scripts/ws_finetune_curve.py RUN_DIR [RUN_DIR ...] --ground-truth data/ws_ground_truth/fashion_mnist_ws.jsonl
        [--repeats data/ws_ground_truth/fashion_mnist_ws_seed1.jsonl] --steps 0 20 60 120 --out DIR
        [--scratch] [--random-only] [--score-with evaluator.task.finetune_lr=0.05]

Each run's last supernet scores every cell of the ground truth (a file of ``scripts/ws_ground_truth.py``) after each
of ``--steps`` steps of one run of fine-tuning on that cell alone (``SupernetEvaluator.finetuned_scores``: the
same mini-batches for every cell, at ``evaluator.task.finetune_lr``, the shared weights restored after). Where
``bench_ws_ranking.py --score-with evaluator.task.finetune_steps=N`` measures one N at the cost of a pass over the
cells, this measures the whole curve at the cost of the largest N; the largest N's scores are the same in both.

``--scratch`` replaces each run's weights by the untrained supernet's (the run's config and seed): the same steps
from scratch, the baseline that fine-tuning from the shared weights must beat for the supernet to be worth its
training. ``--random-only`` scores only the truth's random cells (those no supernet chose).

Per cell a JSON line in ``DIR/RUN_NAME.jsonl`` (``DIR/RUN_NAME-scratch.jsonl``), so a killed run continues where it
stopped (``DIR/settings.json`` keeps the settings; other settings in the same DIR are refused). Prints one JSON object:
for each step count, the cells' mean score and ``bench_ws_ranking``'s ground-truth metrics per run, and their mean
and standard deviation over the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from bench_ws_ranking import add_truth_arguments, ground_truth_metrics, mean_and_std, picked_named, read_truth
from common import FinalSupernet, load_final_supernet
from tqdm import tqdm
from ws_ground_truth import drop_partial_line, read_cells

from nao.errors import UserError
from nao.search.evaluators import make_evaluator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="finished CNN supernet searches")
    add_truth_arguments(parser)
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 20, 60, 120], metavar="N",
                        help="score each cell after these numbers of fine-tuning steps (0: the supernet's own score)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="one JSON-lines file per run")
    parser.add_argument("--scratch", action="store_true", help="fine-tune from untrained weights instead")
    parser.add_argument("--random-only", action="store_true", help="only the ground truth's random cells")
    parser.add_argument("--score-with", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for the scoring, e.g. evaluator.task.finetune_lr=0.05")
    args = parser.parse_args(argv)
    if min(args.steps) < 0:
        parser.error("--steps must be at least 0")
    names = [out_name(run, args.scratch) for run in args.runs]
    if len(set(names)) < len(names):
        parser.error(f"two RUN_DIRs of the same name would share a file in --out: {names}")
    try:
        print(json.dumps(finetune_curve(args, names)))
    except UserError as err:
        print(f"ws_finetune_curve: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def out_name(run: Path, scratch: bool) -> str:
    return f"{run.name}-scratch" if scratch else run.name


def finetune_curve(args: argparse.Namespace, names: list[str]) -> dict:
    steps = sorted(set(args.steps))
    check_settings(args.out, {"steps": steps, "score_with": args.score_with, "ground_truth": str(args.ground_truth)})
    finals = [load_final_supernet(run, args.score_with) for run in args.runs]
    metric = finals[0].supernet.metric
    cells, truth, is_random, _ = read_truth(args.ground_truth, args.repeats, metric)
    keep = is_random if args.random_only else np.ones(len(cells), dtype=bool)
    cells, truth, is_random = [c for c, k in zip(cells, keep, strict=True) if k], truth[keep], is_random[keep]
    if len(cells) < 2:
        raise UserError(f"{args.ground_truth}: {len(cells)} cells to score; a ranking needs at least 2")
    per_steps: dict[int, list[dict]] = {n: [] for n in steps}
    for run, final, name in zip(args.runs, finals, names, strict=True):
        if not hasattr(final.supernet, "finetuned_scores"):
            raise UserError(f"{run}: its supernet ({final.config.evaluator.type}) cannot fine-tune per arch")
        if args.scratch:
            untrained(final)
        scores = scored_cells(final, cells, steps, args.out / f"{name}.jsonl", metric)
        for n in steps:
            found = ground_truth_metrics(scores[n], truth, is_random, minimize=final.supernet.minimize)
            per_steps[n].append({"run": str(run), "mean_score": round(float(scores[n].mean()), 2),
                                 **picked_named(found, cells)})
    return {"benchmark": "ws_finetune_curve", "ground_truth": str(args.ground_truth), "cells": len(cells),
            "metric": metric, "scratch": args.scratch, "score_with": args.score_with,
            "steps": {str(n): {"runs": runs, "summary": mean_and_std(runs)} for n, runs in per_steps.items()}}


def check_settings(out: Path, settings: dict) -> None:
    """``out/settings.json`` written on the first run, and a later run with other settings refused in one line."""
    path = out / "settings.json"
    if path.exists():
        before = json.loads(path.read_text())
        if before != settings:
            changed = next(key for key in settings if before.get(key) != settings[key])
            raise UserError(f"{path}: made with {changed} {before.get(changed)}, not {settings[changed]}; "
                            "use another --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings) + "\n")


def untrained(final: FinalSupernet) -> None:
    """Replace ``final``'s supernet weights by the untrained supernet of its config and seed."""
    fresh = make_evaluator(final.space, final.config.evaluator, seed=final.config.seed, device=final.config.device)
    final.supernet.supernet.load_state_dict(fresh.supernet.state_dict())
    final.supernet.weights_changed()


def scored_cells(final: FinalSupernet, cells: list[dict], steps: list[int], path: Path,
                 metric: str) -> dict[int, np.ndarray]:
    """Every cell's score after each of ``steps``, read from ``path`` where an earlier run wrote it, else computed
    and appended (one line per cell, written as it comes)."""
    drop_partial_line(path)
    done = {line["arch"]: line["scores"] for line in read_cells(path)}
    scores = []
    with tqdm(total=len(cells), desc=path.stem, file=sys.stderr, leave=False) as bar:
        for cell in cells:
            if cell["arch"] not in done:
                found = final.supernet.finetuned_scores(final.space.parse(cell["arch"]), steps)
                done[cell["arch"]] = {str(n): found[n][metric] for n in steps}
                with path.open("a") as f:
                    f.write(json.dumps({"arch": cell["arch"], "group": cell.get("group"),
                                        "scores": done[cell["arch"]]}) + "\n")
            scores.append(done[cell["arch"]])
            bar.update(1)
    return {n: np.array([s[str(n)] for s in scores]) for n in steps}


if __name__ == "__main__":
    main()
