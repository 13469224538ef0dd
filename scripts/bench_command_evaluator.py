"""What the command evaluator costs beyond the command itself (issue #15: at most 0.1 s per evaluation).

Runs a search of N evaluations whose command only prints its metrics, and times the same command lines run
directly with ``subprocess.run`` in a loop (the command's own cost: a shell and the program). The difference per
evaluation is what nao adds: formatting and quoting, a working directory, log files, reading the metrics, the
history line (fsynced), the strategy. Both ways alternate over ``--repeats`` rounds; medians are compared.

    python scripts/bench_command_evaluator.py --evaluations 200 --repeats 3

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nao.search import load_config, run_search
from nao.spaces import get_space

COMMAND = "printf '{\"score\": %s}\\n' {seed}; : {arch} {workdir}"


def through_nao(evaluations: int, root: Path, round_: int) -> float:
    config = load_config(None, ["space=nao-cnn", "strategy=random", f"budget={evaluations}", f"seed={round_}",
                                "evaluator.type=command", f"evaluator.command={json.dumps(COMMAND)}",
                                "evaluator.metric=score"])
    started = time.perf_counter()
    summary = run_search(config, root / f"nao{round_}", progress=False)
    seconds = time.perf_counter() - started
    if summary["evaluated"] != evaluations or summary["failed"]:
        raise SystemExit(f"the benchmark's search did not evaluate every arch: {summary}")
    return seconds


def directly(evaluations: int, root: Path, round_: int) -> float:
    """The same command lines (the same archs' texts, quoted the same way) run one after another."""
    space = get_space("nao-cnn")
    rng = np.random.default_rng(round_)
    texts = [space.format(space.sample(rng)) for _ in range(evaluations)]
    started = time.perf_counter()
    for text in texts:
        line = COMMAND.replace("{seed}", str(round_)).replace("{arch}", shlex.quote(text)) \
            .replace("{workdir}", shlex.quote(str(root)))
        subprocess.run(["/bin/sh", "-c", line], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nao_seconds, raw_seconds = [], []
        for round_ in range(args.repeats):
            nao_seconds.append(through_nao(args.evaluations, root, round_))
            raw_seconds.append(directly(args.evaluations, root, round_))
            print(f"round {round_ + 1}: nao {nao_seconds[-1]:.2f} s, the commands alone {raw_seconds[-1]:.2f} s",
                  file=sys.stderr)
    per_eval_nao = statistics.median(nao_seconds) / args.evaluations
    per_eval_raw = statistics.median(raw_seconds) / args.evaluations
    print(json.dumps({
        "evaluations": args.evaluations, "repeats": args.repeats,
        "seconds_per_evaluation_through_nao": round(per_eval_nao, 5),
        "seconds_per_evaluation_command_alone": round(per_eval_raw, 5),
        "overhead_seconds_per_evaluation": round(per_eval_nao - per_eval_raw, 5),
        "target_seconds": 0.1, "met": per_eval_nao - per_eval_raw <= 0.1,
    }))


if __name__ == "__main__":
    main()
