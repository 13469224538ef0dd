"""Few-shot supernets against the ground truth (issue #17): does splitting a search's final supernet into
sub-supernets, each trained further on one part of the space, rank the ground-truth cells better than training
the one supernet as long?

    python scripts/ws_few_shot.py RUN_DIR [RUN_DIR ...] --ground-truth data/ws_ground_truth/fashion_mnist_ws.jsonl
        [--repeats data/ws_ground_truth/fashion_mnist_ws_seed1.jsonl] --split params:3 --epochs 3 --out DIR

Few-shot NAS (Zhao et al. 2021) splits a one-shot supernet into sub-supernets that start from its weights, each
trained only on the archs of one part of the space (theirs: one per op of one edge), and scores each arch with the
sub-supernet of its part: archs that interfere in the shared weights no longer share them. ``--split`` says how the
space is cut (:data:`SPLITS`): ``op:P``, by the op at token position ``P`` (Zhao et al.'s edge; position 1 is the
normal cell's first op); ``params:K``, into ``K`` bins of equal probability of the weights an arch uses in the
supernet (what the ground truth follows and the supernets do not see, docs/cnn.md); ``none``, one part: the
control, the one supernet trained on. For a control as long as a split of K parts at E epochs each, give ``none``
``--epochs`` E times K yourself (the script does not scale it).

Each part's sub-supernet trains ``--epochs`` epochs (one cosine cycle, as a search's stage) on archs drawn uniformly
from its part of the whole space, then scores the ground-truth cells of its part. One JSON file per run in ``DIR``
(``RUN_NAME-SPLIT-eE.json``: its scores, with the run and the cells they are for; an existing one is read, not
trained again, and refused if it holds another run's or other cells' scores); prints one JSON object:
``bench_ws_ranking``'s ground-truth metrics per run, τ between the scores of the truth's random cells and the weights
they use (``kendall_tau_random_with_parameter_count``: does the split let the supernets see capacity?), their mean
and standard deviation over the runs, and the seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bench_ws_ranking import (
    add_truth_arguments,
    ground_truth_metrics,
    mean_and_std,
    picked_named,
    read_truth,
    rounded,
    signed_parameter_counts,
)
from common import FinalSupernet, load_final_supernet

from nao.errors import UserError
from nao.predictors.metrics import kendall_tau
from nao.spaces.base import Arch

DRAWS_PER_PART = 3000  # archs a part's sub-supernet draws from, at most and on average (the split's draws are
#                        DRAWS_PER_PART times its parts); more than its mini-batches: nearly all unique

Split = Callable[[FinalSupernet], Callable[[Arch], int]]


def _one_part(final: FinalSupernet, arg: str) -> Callable[[Arch], int]:
    if arg:
        raise UserError("--split none takes no argument")
    return lambda arch: 0


def _by_op(final: FinalSupernet, arg: str) -> Callable[[Arch], int]:
    position = int(arg) if arg.isdigit() else -1
    if position % 2 != 1 or position >= final.space.seq_len:  # an arch is ``input op input op`` per node
        raise UserError(f"--split op:{arg}: not an op position of {final.space.name} (odd, below "
                        f"{final.space.seq_len})")
    return lambda arch: int(arch[position])


def _by_parameters(final: FinalSupernet, arg: str) -> Callable[[Arch], int]:
    parts = int(arg) if arg.isdigit() else 0
    if parts < 2:
        raise UserError(f"--split params:{arg}: the number of parts must be at least 2")
    rng = np.random.default_rng(0)
    sizes = [final.supernet.parameters_of(final.space.sample(rng)) for _ in range(2000)]
    edges = np.quantile(sizes, np.arange(1, parts) / parts)
    return lambda arch: int(np.searchsorted(edges, final.supernet.parameters_of(arch), side="right"))


SPLITS: dict[str, Callable[[FinalSupernet, str], Callable[[Arch], int]]] = {
    "none": _one_part,  # the control: one part
    "op": _by_op,  # op:P, by the op at token position P (Zhao et al. 2021: one edge)
    "params": _by_parameters,  # params:K, K bins of the weights an arch uses
}
"""``--split NAME[:ARG]``: given the loaded run, the function from an arch to its part (0, 1, ...)."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="finished CNN supernet searches")
    add_truth_arguments(parser)
    parser.add_argument("--split", default="params:3", help=f"NAME[:ARG], NAME one of {', '.join(SPLITS)}")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of each sub-supernet")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="one JSON file of scores per run")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.split.partition(":")[0] not in SPLITS:
        parser.error(f"--split: {args.split!r} is not one of {', '.join(SPLITS)} (NAME[:ARG])")
    try:
        print(json.dumps(few_shot(args)))
    except UserError as err:
        print(f"ws_few_shot: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def few_shot(args: argparse.Namespace) -> dict:
    finals = [load_final_supernet(run) for run in args.runs]
    metric = finals[0].supernet.metric
    cells, truth, is_random, _ = read_truth(args.ground_truth, args.repeats, metric)
    per_run, seconds = [], []
    args.out.mkdir(parents=True, exist_ok=True)
    for run, final in zip(args.runs, finals, strict=True):
        if not hasattr(final.supernet, "parameters_of"):
            raise UserError(f"{run}: not a CNN supernet search")
        path = args.out / f"{run.name}-{args.split.replace(':', '')}-e{args.epochs}.json"
        archs = [c["arch"] for c in cells]
        parsed = [final.space.parse(a) for a in archs]
        if not path.exists():
            found = split_scores(final, parsed, args.split, args.epochs)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps({"run": str(run.resolve()), "archs": archs, **found}))
            tmp.replace(path)
        found = json.loads(path.read_text())
        if (found.get("run"), found.get("archs")) != (str(run.resolve()), archs):
            raise UserError(f"{path}: the scores of {found.get('run', 'another run')} on other cells or of another "
                            f"run than {run}; give another --out or remove it")
        seconds.append(found["seconds"])
        scores = np.array(found["scores"])
        metrics = ground_truth_metrics(scores, truth, is_random, minimize=final.supernet.minimize)
        weights = signed_parameter_counts(final.supernet, parsed)
        per_run.append({"run": str(run), "parts": found["parts"], **picked_named(metrics, cells),
                        "kendall_tau_random_with_parameter_count": rounded(kendall_tau(weights[is_random],
                                                                                       scores[is_random]))})
        print(json.dumps(per_run[-1]), file=sys.stderr)
    return {"benchmark": "ws_few_shot", "split": args.split, "epochs_per_part": args.epochs,
            "ground_truth": str(args.ground_truth), "repeats": list(map(str, args.repeats)),
            "seconds_per_run": seconds, "runs": per_run, "summary": mean_and_std(per_run)}


def split_scores(final: FinalSupernet, archs: list[Arch], split: str, epochs: int) -> dict:
    """Scores of ``archs``, each by the sub-supernet of its part after ``epochs`` epochs from the final weights
    (restored after); the parts' sizes among ``archs``; seconds."""
    started = time.perf_counter()
    name, _, arg = split.partition(":")
    part_of = SPLITS[name](final, arg)
    evaluator, rng = final.supernet, np.random.default_rng(final.config.seed)
    parts = [part_of(a) for a in archs]
    by_part: dict[int, list[Arch]] = {}
    while (sum(map(len, by_part.values())) < DRAWS_PER_PART * len(set(parts))  # the whole space's draws, sorted
           or not by_part.keys() >= set(parts)):  # and at least one of every part the cells fall in
        arch = final.space.sample(rng)
        by_part.setdefault(part_of(arch), []).append(arch)
    scores = np.zeros(len(archs))
    one_shot = copy.deepcopy(evaluator.supernet.state_dict())
    for part in sorted(set(parts)):
        evaluator.supernet.load_state_dict(one_shot)
        evaluator.train(by_part[part][:DRAWS_PER_PART], seed=final.config.seed * 100 + part, desc=f"part {part}",
                        epochs=epochs, sampling="uniform")
        evaluator.weights_changed()
        for i in np.flatnonzero(np.array(parts) == part):
            scores[i] = evaluator.evaluate(archs[i])[evaluator.metric]
    evaluator.supernet.load_state_dict(one_shot)
    evaluator.weights_changed()
    return {"scores": scores.round(3).tolist(), "parts": {str(p): parts.count(p) for p in sorted(set(parts))},
            "seconds": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    main()
