"""Which ops a supernet misjudges (issue #17): per op and cell type, how the op's count in a cell goes with the
ground truth and with the supernets' scores.

    python scripts/ws_op_effects.py RUN_DIR [RUN_DIR ...] --ground-truth data/ws_ground_truth/fashion_mnist_ws.jsonl
        [--score-with KEY=VALUE ...] [--proxies PROXY ...]

For every ground-truth cell (a file of ``scripts/ws_ground_truth.py``) and every op of the space, the number of
branches of the normal cell and of the reduction cell that use the op, and the number of states each cell outputs
(``normal:outputs``, ``reduction:outputs``: NAO's loose ends, which set how many channels the cell passes on in its
child network) and its depth (``normal:depth``, ``reduction:depth``: the most nodes on a path through the cell);
then Pearson's correlation of each count with the cells' measured metric (``truth``) and with each RUN_DIR's last
supernet's scores (``runs``, and their mean ``supernet``). An op whose two correlations differ in sign or size is
one the supernet judges unlike training from scratch: e.g. a supernet whose scores fall with average pooling in the
reduction cell where the truth does not care. ``--proxies`` adds the same correlations with
training-free scores of the cells (``nao.tasks.cnn.proxies``, computed as ``bench_ws_ranking.py --proxies`` does,
on the first run's network and data). Prints a table to stderr and one JSON object to stdout. Cell spaces only
(``space.cells``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from common import load_final_supernet, require_cnn_supernet
from ws_ground_truth import read_cells

from nao.errors import UserError
from nao.spaces.cell import Cell
from nao.tasks.cnn.proxies import PROXIES, proxy_scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="finished weight-sharing searches")
    parser.add_argument("--ground-truth", type=Path, required=True, metavar="FILE")
    parser.add_argument("--score-with", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for scoring, e.g. evaluator.task.valid_images=6000")
    parser.add_argument("--proxies", nargs="+", default=[], choices=sorted(PROXIES), metavar="PROXY",
                        help=f"training-free scores to correlate too ({', '.join(sorted(PROXIES))})")
    args = parser.parse_args(argv)
    try:
        result = op_effects(args.runs, args.ground_truth, args.score_with, args.proxies)
    except UserError as err:
        print(f"ws_op_effects: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    columns = {"truth": result["truth"], "supernet": result["supernet"], **result.get("proxies", {})}
    print(f"{'op':30s}" + "".join(f" {name:>9s}" for name in columns), file=sys.stderr)
    for op in result["truth"]:
        print(f"{op:30s}" + "".join(f" {column[op]:+9.2f}" for column in columns.values()), file=sys.stderr)
    print(json.dumps(result))


def op_effects(runs: list[Path], path: Path, score_with: list[str] = (), proxies: list[str] = ()) -> dict:
    """Correlations of op counts with the truth, the runs' supernet scores and ``proxies`` (see the module
    docstring)."""
    cells = read_cells(path)
    if len(cells) < 3:
        raise UserError(f"{path}: {len(cells)} cells; correlations need at least 3")
    finals = [load_final_supernet(run, score_with) for run in runs]
    space, metric = finals[0].space, finals[0].supernet.metric
    if not hasattr(space, "cells"):
        raise UserError(f"{runs[0]}: space {space.name!r} has no cells to count ops in")
    if proxies:
        require_cnn_supernet(finals[0], "--proxies")
    archs = [space.parse(c["arch"]) for c in cells]
    kinds = ("normal", "reduction")
    names = ([f"{kind}:{op}" for kind in kinds for op in space.op_names] + [f"{kind}:outputs" for kind in kinds]
             + [f"{kind}:depth" for kind in kinds])
    counts = np.array([[sum(o == op for node in cell for _, o in node)
                        for cell in space.cells(arch) for op in range(len(space.op_names))]
                       + [len(space.output_states(cell)) for cell in space.cells(arch)]
                       + [depth(cell) for cell in space.cells(arch)] for arch in archs], dtype=float)
    truth = np.array([c[metric] for c in cells])
    per_run = [correlations(counts, np.array([final.supernet.evaluate(a)[metric] for a in archs]), names)
               for final in finals]
    result = {"ground_truth": str(path), "cells": len(cells), "metric": metric, "score_with": list(score_with),
              "truth": correlations(counts, truth, names),
              "supernet": {op: round(float(np.mean([r[op] for r in per_run])), 3) for op in names},
              "runs": [{"run": str(run), **r} for run, r in zip(runs, per_run, strict=True)]}
    if proxies:
        task, data, seed = finals[0].supernet.task, finals[0].supernet.data, finals[0].config.seed
        result["proxies"] = {name: correlations(counts, proxy_scores(name, space, archs, task.network, data,
                                                                     seed=seed), names) for name in proxies}
    return result


def depth(cell: Cell) -> int:
    """The most nodes on a path from the cell's inputs (states 0 and 1) to its output."""
    depths = [0, 0]
    for node in cell:
        depths.append(1 + max(depths[source] for source, _ in node))
    return max(depths)


def correlations(counts: np.ndarray, values: np.ndarray, names: list[str]) -> dict[str, float]:
    """Pearson's r of each column of ``counts`` with ``values`` (0 for a count that never varies)."""
    out = {}
    for name, column in zip(names, counts.T, strict=True):
        varies = column.std() > 0 and values.std() > 0
        out[name] = round(float(np.corrcoef(column, values)[0, 1]), 3) if varies else 0.0
    return out


if __name__ == "__main__":
    main()
