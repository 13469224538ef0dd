"""Ground truth for a weight-sharing search's ranking (issue #17): cells of its space trained standalone.

    python scripts/ws_ground_truth.py [--config configs/fashion_mnist_ws.yaml] [--set KEY=VALUE ...] [--random 60]
        [--top 60] [--runs RUN_DIR ...] [--search-seeds 0 1 2] [--epochs 10] [--out FILE.jsonl]
        [--executor ray --workers 2]

The cells:
- ``--random`` uniformly random cells of the config's space (``space.sample``, drawn with ``--seed``, by default
  none of the search seeds: a search's first archs are drawn the same way);
- ``--top`` cells from the top of finished searches' final supernet rankings: each RUN_DIR's last supernet
  scores every arch of the run's history, and the best-scored archs are taken from the runs in turn
  (round-robin), distinct by canonical form and from the random cells, until ``--top`` are taken.
  ``--search-seeds S ...`` first runs the config's search with ``seed=S`` into SEARCH_DIR/search-seedS (resumed
  where a kill left it, skipped when finished) and adds those runs to ``--runs``.

Each cell is trained from scratch by the ``standalone`` evaluator with the config's own ``evaluator.task`` (same
network, the same ``data.train_images`` training images; ``--set`` changes the config for the trainings and for
``--search-seeds``' searches alike), for ``--epochs`` epochs instead of
``task.train.epochs``, and with the config's seed, as the search's evaluators use it: that seed also picks the
validation split, so every cell is scored on the same images. It is recorded as each line's ``train_seed``.
``--train-seed S`` trains with seed S instead (initial weights, batch order, augmentation) on the same split
(``data.split_seed`` fixed to the config's seed): a second file of the same cells so trained measures the
truth's own noise, the ranking agreement no supernet can beat (``scripts/ws_truth_noise.py``).
Cells are scored on the whole validation split (the task evaluator's ``whole_validation``: image tasks, all
``data.valid_size`` images, or with ``--valid-images N`` its first N; text tasks, the whole validation text), of
which the supernet scores on a part (``task.valid_images``, ``task.valid_windows``): a truth measured on 1,000
images would carry its own noise (a binomial standard deviation of 1.1 points at 85 %, 0.46 at 6,000), as large
as the differences between cells that the supernet is asked to rank.

OUT (JSON Lines: a results file for ``nao predictor fit --metric valid_acc`` and for
``scripts/bench_ws_ranking.py --ground-truth``) gets one line per cell as soon as it is trained: ``arch`` (text
form), the evaluator's metric (``valid_acc``), ``group`` (``random`` or ``top:RUN_NAME``), ``supernet_rank`` (top
cells: 1 = their run's best-scored arch), ``train_seed``, ``epochs``, ``seconds``. OUT's sibling with the suffix
``.json`` is its header: the config, the training settings, and per invocation the command, the git commit and
the selection settings. Rerun the same command after a kill: cells already in OUT are skipped, and a last line
cut short is dropped and its cell trained again. More ``--random``, ``--top`` or runs extend the file (the first
N random cells of a seed stay the same); other training settings are refused.

``--executor ray --workers N`` trains N cells at once in Ray workers (``nao.search.executors``, one CPU each).
Failed trainings are retried (the config's ``retries``), then reported on stderr and left out of OUT: a rerun
tries them again. Bad input (a missing run, a run without a supernet, a bad config) is one line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, replace
from itertools import zip_longest
from pathlib import Path

import numpy as np
from common import load_final_supernet, searched_runs, standalone_config

from nao.config import to_dict
from nao.errors import UserError
from nao.search import SearchConfig, load_config
from nao.search.evaluators import TaskEvaluatorConfig, make_evaluator
from nao.search.executors import EXECUTORS, make_executor
from nao.search.rundir import first_difference
from nao.spaces import get_space
from nao.spaces.base import Arch, SearchSpace

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Cell:
    """A cell to train and why it was chosen."""

    arch: Arch
    group: str  # "random" or "top:RUN_NAME"
    supernet_rank: int | None = None  # top cells: 1 = their run's best-scored arch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "fashion_mnist_ws.yaml",
                        help="the weight-sharing search config (default: the README main job's)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides, for the cells' training and for --search-seeds' searches")
    parser.add_argument("--random", type=int, default=60, help="uniformly random cells")
    parser.add_argument("--top", type=int, default=60, help="cells from the top of the runs' supernet rankings")
    parser.add_argument("--runs", type=Path, nargs="+", default=[], metavar="RUN_DIR",
                        help="finished searches of the config's space with a supernet evaluator")
    parser.add_argument("--search-seeds", type=int, nargs="+", default=[], metavar="S",
                        help="run (or resume) the config's search with these seeds and add them to --runs")
    parser.add_argument("--search-dir", type=Path, default=REPO / "runs" / "ws_ground_truth",
                        help="where --search-seeds' runs go (SEARCH_DIR/search-seedS)")
    parser.add_argument("--epochs", type=int, default=10, help="standalone training epochs per cell")
    parser.add_argument("--valid-images", type=int, metavar="N",
                        help="image tasks: score each cell on the first N validation images "
                             "(default: all, data.valid_size)")
    parser.add_argument("--train-seed", type=int, metavar="S",
                        help="train with seed S on the config's validation split (default: the config's seed)")
    parser.add_argument("--seed", type=int, default=1000,
                        help="draws the random cells (not a search seed: its first archs are drawn the same way)")
    parser.add_argument("--out", type=Path, help="default data/ws_ground_truth/<config name>.jsonl")
    parser.add_argument("--executor", choices=sorted(EXECUTORS), default="serial")
    parser.add_argument("--workers", type=int, default=2, help="cells trained at once with --executor ray")
    args = parser.parse_args(argv)
    args.out = args.out or REPO / "data" / "ws_ground_truth" / f"{args.config.stem}.jsonl"
    command = shlex.join(["python", "scripts/ws_ground_truth.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        generate(args, command)
    except UserError as err:
        print(f"ws_ground_truth: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def generate(args: argparse.Namespace, command: str) -> None:
    """Choose the cells, then train the ones OUT does not hold yet, appending each as it finishes."""
    if args.out.suffix != ".jsonl":
        raise UserError(f"--out {args.out}: must end in .jsonl")
    config = load_config(args.config, args.set)
    if not isinstance(config.evaluator, TaskEvaluatorConfig):
        raise UserError(f"{args.config}: evaluator.type {config.evaluator.type} trains no networks "
                        "(expected a supernet search config)")
    space = get_space(config.space)
    training = standalone_config(config, args.epochs)
    checked = make_evaluator(space, training, seed=config.seed, device=config.device)  # checks the task
    task = training.task | (checked.whole_validation() if args.valid_images is None
                            else {"valid_images": args.valid_images})
    train_seed = config.seed if args.train_seed is None else args.train_seed
    if train_seed != config.seed and hasattr(checked.task.data, "split_seed"):
        # the same validation images as the config's seed draws (a text task's validation text is fixed)
        task["data"] = task.get("data", {}) | {"split_seed": config.seed}
    training = replace(training, task=task)
    trainer = replace(config, seed=train_seed, executor=args.executor, workers=args.workers, evaluator=training)
    evaluator = make_evaluator(space, training, seed=train_seed, device=config.device)
    header = {"config": shown(args.config),
              "training": {"space": config.space, "evaluator": to_dict(trainer.evaluator), "train_seed": train_seed}}
    check_header(args.out, header)

    randoms = random_cells(space, args.random, seed=args.seed)
    rankings = [(run.name, ranked_archs(run, config.space)) for run in args.runs]
    rankings += [(run.name, ranked_archs(run, config.space))
                 for run in searched_runs(args.config, args.search_seeds, args.search_dir, args.set)]
    tops = top_cells(space, rankings, args.top, taken={space.canonical(c.arch) for c in randoms})
    # alternated, so that a file cut short by a kill holds both groups
    cells = [c for pair in zip_longest(randoms, tops) for c in pair if c is not None]

    write_header(args.out, header, {"command": command, "commit": git_commit(), "started": time.strftime("%F %T"),
                                    "random": args.random, "seed": args.seed, "top": args.top,
                                    "runs": [shown(run) for run in args.runs], "search_seeds": args.search_seeds})
    drop_partial_line(args.out)
    done = {space.canonical(space.parse(c["arch"])) for c in read_cells(args.out)}
    todo = [c for c in cells if space.canonical(c.arch) not in done]
    print(f"{len(cells) - len(todo)} of {len(cells)} cells already in {args.out}; training {len(todo)}",
          file=sys.stderr)
    train(todo, space, trainer, evaluator, args.out, done=len(cells) - len(todo))


def random_cells(space: SearchSpace, n: int, *, seed: int) -> list[Cell]:
    """``n`` uniformly random cells, distinct by canonical form; the first ``k`` are the same for any ``n >= k``."""
    rng, seen, cells = np.random.default_rng(seed), set(), []
    while len(cells) < n:
        arch = space.sample(rng)
        if space.canonical(arch) not in seen:
            seen.add(space.canonical(arch))
            cells.append(Cell(arch, "random"))
    return cells


def ranked_archs(run: Path, space_name: str) -> list[Arch]:
    """The archs of ``run``'s history, best first by its last supernet's scores."""
    final = load_final_supernet(run)
    if final.config.space != space_name:
        raise UserError(f"{run}: a search of {final.config.space}, not of the config's {space_name}")
    print(f"{run}: ranked {len(final.pool)} archs with its stage {final.stage} supernet", file=sys.stderr)
    return [arch for arch, _ in final.ranking()]


def top_cells(space: SearchSpace, rankings: list[tuple[str, list[Arch]]], n: int, *, taken: set) -> list[Cell]:
    """Up to ``n`` cells taken round-robin from the rankings (run name, archs best first), each run's next best
    arch whose canonical form is not ``taken`` yet (``taken`` grows)."""
    cells, queues = [], [deque(enumerate(archs, 1)) for _, archs in rankings]
    while len(cells) < n and any(queues):
        for (name, _), queue in zip(rankings, queues, strict=True):
            while queue and space.canonical(queue[0][1]) in taken:
                queue.popleft()
            if queue and len(cells) < n:
                rank, arch = queue.popleft()
                taken.add(space.canonical(arch))
                cells.append(Cell(arch, f"top:{name}", rank))
    return cells


def train(cells: list[Cell], space: SearchSpace, trainer: SearchConfig, evaluator, out: Path, *, done: int) -> None:
    """Each cell trained by the executor of ``trainer``; a line appended to ``out`` as each one finishes. The cells go
    to the executor ``4 * workers`` at a time: it starts a batch's costliest cells first, and the random cells are
    the cheaper ones, so one batch of all would leave a file cut short by a kill with top cells only."""
    executor, started = make_executor(trainer, space, evaluator), time.perf_counter()
    metric, epochs = evaluator.metric, trainer.evaluator.task["train"]["epochs"]
    chunk = 4 * trainer.workers
    outcomes = ((first, outcome) for first in range(0, len(cells), chunk)
                for outcome in executor.run([c.arch for c in cells[first:first + chunk]]))
    try:
        for n, (first, outcome) in enumerate(outcomes, 1):
            cell = cells[first + outcome.position]
            if outcome.error is not None:
                print(f"failed after {outcome.attempts} attempts: {space.format(cell.arch)}: {outcome.error}",
                      file=sys.stderr)
                continue
            rank = {} if cell.supernet_rank is None else {"supernet_rank": cell.supernet_rank}
            append_line(out, {"arch": space.format(cell.arch), metric: outcome.metrics[metric], "group": cell.group,
                              **rank, "train_seed": trainer.seed, "epochs": epochs,
                              "seconds": round(outcome.seconds, 1)})
            print(f"{done + n}/{done + len(cells)} {cell.group} {metric} {outcome.metrics[metric]:.2f} in "
                  f"{outcome.seconds:.0f} s ({(time.perf_counter() - started) / n:.0f} s per cell)", file=sys.stderr)
    finally:
        executor.close()


def read_cells(path: Path) -> list[dict]:
    """The lines of a ground-truth file, without a last line cut short by a kill (it has no newline yet)."""
    if not path.exists():
        return []
    text = path.read_text()
    cells = []
    for number, line in enumerate(text[:text.rfind("\n") + 1].splitlines(), 1):
        try:
            cells.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not JSON ({err.msg})") from None
    return cells


def read_metric_cells(path: Path, metric: str) -> list[dict]:
    """``read_cells`` of a file that must exist and give every cell ``metric`` (``UserError`` naming the line)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    cells = read_cells(path)
    missing = next((n for n, c in enumerate(cells, 1) if metric not in c), None)
    if missing is not None:
        raise UserError(f"{path}:{missing}: no {metric!r}")
    return cells


def drop_partial_line(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so that the next line starts on a line of its own."""
    if path.exists():
        data = path.read_bytes()
        if not data.endswith(b"\n") and data:
            os.truncate(path, data.rfind(b"\n") + 1)
            print(f"{path}: dropped a last line cut short", file=sys.stderr)


def append_line(path: Path, row: dict) -> None:
    """One whole line, on disk before the next cell starts."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def check_header(out: Path, header: dict) -> None:
    """``UserError`` when ``out``'s header records other training settings than ``header``'s. Settings the header
    does not record are not compared: a later version's new config key defaults to what came before it."""
    path = out.with_suffix(".json")
    if path.exists():
        saved = json.loads(path.read_text())["training"]
        difference = first_difference(saved, recorded_part(header["training"], saved))
        if difference:
            raise UserError(f"{out} holds cells trained otherwise ({difference}): choose another --out")


def recorded_part(settings: dict, recorded: dict) -> dict:
    """``settings`` restricted to the keys ``recorded`` has, at every level."""
    return {key: recorded_part(value, recorded[key]) if isinstance(value, dict) and isinstance(recorded[key], dict)
            else value for key, value in settings.items() if key in recorded}


def write_header(out: Path, header: dict, invocation: dict) -> None:
    """``out``'s header (written atomically) with this invocation added to its list."""
    path = out.with_suffix(".json")
    invocations = json.loads(path.read_text())["invocations"] if path.exists() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(header | {"invocations": [*invocations, invocation]}, indent=1) + "\n")
    os.replace(tmp, path)


def git_commit() -> str | None:
    """The repository's commit, with ``-dirty`` when its files differ from it."""
    try:
        found = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=REPO,
                               capture_output=True, text=True)
    except OSError:  # no git
        return None
    return found.stdout.strip() or None


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (the header reads the same on any machine)."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


if __name__ == "__main__":
    main()
