"""Which ops a supernet misjudges (issue #17): per op and cell type, how the op's count in a cell goes with the
ground truth and with the supernets' scores.

    python scripts/ws_op_effects.py RUN_DIR [RUN_DIR ...] --ground-truth data/ws_ground_truth/fashion_mnist_ws.jsonl
        [--score-with KEY=VALUE ...]

For every ground-truth cell (a file of ``scripts/ws_ground_truth.py``) and every op of the space, the number of
branches of the normal cell and of the reduction cell that use the op; then Pearson's correlation of each count
with the cells' measured metric (``truth``) and with each RUN_DIR's last supernet's scores (``runs``, and their
mean ``supernet``). An op whose two correlations differ in sign or size is one the supernet judges unlike training
from scratch: e.g. a supernet whose scores fall with average pooling in the reduction cell where the truth does not
care. Prints a table to stderr and one JSON object to stdout. Cell spaces only (``space.cells``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from common import load_final_supernet
from ws_ground_truth import read_cells

from nao.errors import UserError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="finished weight-sharing searches")
    parser.add_argument("--ground-truth", type=Path, required=True, metavar="FILE")
    parser.add_argument("--score-with", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for scoring, e.g. evaluator.task.valid_images=6000")
    args = parser.parse_args(argv)
    try:
        result = op_effects(args.runs, args.ground_truth, args.score_with)
    except UserError as err:
        print(f"ws_op_effects: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{'op':30s} {'truth':>7s} {'supernet':>9s}", file=sys.stderr)
    for op, truth in result["truth"].items():
        print(f"{op:30s} {truth:+7.2f} {result['supernet'][op]:+9.2f}", file=sys.stderr)
    print(json.dumps(result))


def op_effects(runs: list[Path], path: Path, score_with: list[str] = ()) -> dict:
    """Correlations of op counts with the truth and with the runs' supernet scores (see the module docstring)."""
    cells = read_cells(path)
    if len(cells) < 3:
        raise UserError(f"{path}: {len(cells)} cells; correlations need at least 3")
    finals = [load_final_supernet(run, score_with) for run in runs]
    space, metric = finals[0].space, finals[0].supernet.metric
    if not hasattr(space, "cells"):
        raise UserError(f"{runs[0]}: space {space.name!r} has no cells to count ops in")
    archs = [space.parse(c["arch"]) for c in cells]
    names = [f"{kind}:{op}" for kind in ("normal", "reduction") for op in space.op_names]
    counts = np.array([[sum(o == op for node in cell for _, o in node)
                        for cell in space.cells(arch) for op in range(len(space.op_names))] for arch in archs],
                      dtype=float)
    truth = np.array([c[metric] for c in cells])
    per_run = [correlations(counts, np.array([final.supernet.evaluate(a)[metric] for a in archs]), names)
               for final in finals]
    return {"ground_truth": str(path), "cells": len(cells), "metric": metric, "score_with": list(score_with),
            "truth": correlations(counts, truth, names),
            "supernet": {op: round(float(np.mean([r[op] for r in per_run])), 3) for op in names},
            "runs": [{"run": str(run), **r} for run, r in zip(runs, per_run, strict=True)]}


def correlations(counts: np.ndarray, values: np.ndarray, names: list[str]) -> dict[str, float]:
    """Pearson's r of each column of ``counts`` with ``values`` (0 for a count that never varies)."""
    out = {}
    for name, column in zip(names, counts.T, strict=True):
        varies = column.std() > 0 and values.std() > 0
        out[name] = round(float(np.corrcoef(column, values)[0, 1]), 3) if varies else 0.0
    return out


if __name__ == "__main__":
    main()
