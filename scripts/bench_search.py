"""Compare every strategy at equal budget (issue #16): NB201 CIFAR-10 table and the DARTS space on the NB301
surrogate.

- ``nb201``: search valid_acc, report the test_acc of the best-by-validation cell (configs/nb201.yaml).
- ``darts``: search and report the surrogate's valid_acc at epoch 98 (configs/nb301.yaml; it has no test set).

Every (benchmark, strategy, seed) runs once at the largest budget; the result at a smaller budget is read from the
history prefix (a run with that budget evaluates exactly that prefix: batches are functions of the history, and a
batch cut by the budget keeps its head). Each finished run is appended to ``OUT/results.jsonl`` as it ends, so an
interrupted benchmark picks up where it stopped (finished runs are read back, not run again). Prints one JSON
object: per benchmark, strategy and budget, the mean and standard error over seeds, and seconds per run; writes
the README's markdown table to ``OUT/table.md`` and the ``nao report`` of every run to ``OUT/report-<benchmark>``.

    python scripts/bench_search.py --benchmarks nb201 darts --seeds 20 --budgets 50 100 150 300
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import NB201_CSV, NB301_DIR

from nao.errors import UserError
from nao.search import load_config, run_search
from nao.search.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ["random", "evolution", "local", "reinforce", "bananas", "nao"]
BENCHMARKS = {  # config, its data override, searched metric, reported metric
    "nb201": (ROOT / "configs" / "nb201.yaml", f"evaluator.path={NB201_CSV}", "valid_acc", "test_acc"),
    "darts": (ROOT / "configs" / "nb301.yaml", f"evaluator.path={NB301_DIR}", "valid_acc", "valid_acc"),
}


def best_at(history, budget: int, search: str, report: str) -> float:
    """The reported metric of the best-by-``search`` arch among the first ``budget`` evaluations."""
    best = max(history[:budget], key=lambda r: r.metrics[search])
    return best.metrics[report]


def benchmark_config(benchmark: str, strategy: str, seed: int, budget: int, overrides: list[str]):
    """The search config of one run: the benchmark's config file, its data, and ``overrides``."""
    config_path, data, _, _ = BENCHMARKS[benchmark]
    return load_config(config_path, [data, f"strategy={strategy}", f"seed={seed}", f"budget={budget}", *overrides])


def run_one(benchmark: str, strategy: str, seed: int, budgets: list[int], out: Path, overrides: list[str]) -> dict:
    _, _, search, report = BENCHMARKS[benchmark]
    run_dir = out / benchmark / f"{strategy}-seed{seed}"
    config, digest = benchmark_config(benchmark, strategy, seed, max(budgets), overrides), config_digest(benchmark)
    started = time.perf_counter()
    run_search(config, run_dir, resume=True, progress=False)
    seconds = time.perf_counter() - started
    history = RunDir(run_dir).read_history()
    return {"benchmark": benchmark, "strategy": strategy, "seed": seed, "overrides": overrides,
            "config_sha256": digest,
            "seconds": round(seconds, 2), "best": {str(b): best_at(history, b, search, report) for b in budgets}}


def config_digest(benchmark: str) -> str:
    """The first 16 hex digits of the SHA-256 of the benchmark's config file as it is now."""
    return hashlib.sha256(BENCHMARKS[benchmark][0].read_bytes()).hexdigest()[:16]


def same_config_files(rows: list[dict], results: Path, benchmarks: list[str] | None) -> None:
    """A ``UserError`` where rows of one benchmark were run from different versions of its config file, or (for
    ``benchmarks`` about to run) from another version than the file's present one: a config edited while a
    benchmark runs would otherwise change only the runs that start after the edit."""
    for benchmark in sorted({r["benchmark"] for r in rows} | set(benchmarks or ())):
        found = {r["config_sha256"] for r in rows if r["benchmark"] == benchmark and "config_sha256" in r}
        if benchmarks and benchmark in benchmarks:
            found.add(config_digest(benchmark))
        if len(found) > 1:
            raise UserError(f"{results}: {benchmark} runs from different versions of {BENCHMARKS[benchmark][0].name} "
                            "would be mixed in one table; give each version its own --out")


def same_overrides(rows: list[dict], results: Path, overrides: list[str] | None) -> list[str]:
    """The overrides every row of ``results`` was run with (a row from before they were recorded: none); a
    ``UserError`` where rows differ, or differ from ``overrides`` (None: any)."""
    found = {tuple(r.get("overrides", [])) for r in rows} | ({tuple(overrides)} if overrides is not None else set())
    if len(found) > 1:
        raise UserError(f"{results}: runs with different config overrides ({' / '.join(map(str, map(list, found)))}) "
                        "would be mixed in one table; give each setting its own --out")
    return list(found.pop()) if found else []


def summarize(rows: list[dict], budgets: list[int]) -> dict:
    table: dict = {}
    for row in rows:
        table.setdefault(row["benchmark"], {}).setdefault(row["strategy"], []).append(row)
    summary: dict = {}
    for benchmark, per_strategy in table.items():
        for strategy, runs in per_strategy.items():
            entry = {"seeds": len(runs), "seconds_per_run": round(float(np.mean([r["seconds"] for r in runs])), 2)}
            for b in budgets:
                values = np.array([r["best"][str(b)] for r in runs])
                stderr = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
                entry[str(b)] = {"mean": round(float(values.mean()), 3), "stderr": round(float(stderr), 3)}
            summary.setdefault(benchmark, {})[strategy] = entry
    return summary


def markdown(summary: dict, budgets: list[int]) -> str:
    lines = []
    for benchmark, per_strategy in summary.items():
        reported = BENCHMARKS[benchmark][3]
        lines += [f"**{benchmark}** ({reported} of the best-by-validation cell, mean ± standard error over seeds)", "",
                  "| strategy | seeds | " + " | ".join(f"{b} evals" for b in budgets) + " | s / run |",
                  "|---|---|" + "---|" * len(budgets) + "---|"]
        for strategy, entry in per_strategy.items():
            cells = [f"{entry[str(b)]['mean']:.2f} ± {entry[str(b)]['stderr']:.2f}" for b in budgets]
            lines.append(f"| {strategy} | {entry['seeds']} | " + " | ".join(cells) + f" | {entry['seconds_per_run']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", nargs="+", choices=sorted(BENCHMARKS), default=sorted(BENCHMARKS))
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--seeds", type=int, default=20, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 150, 300])
    parser.add_argument("--out", default="runs/bench_search", help="run directories, results.jsonl, table.md")
    parser.add_argument("--no-report", action="store_true", help="skip the `nao report` plots")
    parser.add_argument("--finished-only", action="store_true",
                        help="summarize the runs in OUT/results.jsonl, run nothing (a benchmark still under way)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    args = parser.parse_args(argv)
    try:
        run_benchmark(args)
    except UserError as err:
        print(f"bench_search: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def run_benchmark(args: argparse.Namespace) -> None:
    """Every (benchmark, strategy, seed) not yet in OUT/results.jsonl, then the summary; every config is checked
    before the first run starts."""
    out = Path(args.out)
    results = out / "results.jsonl"
    done = [json.loads(line) for line in results.open()] if results.exists() else []
    overrides = same_overrides(done, results, None if args.finished_only else args.overrides)
    same_config_files(done, results, None if args.finished_only else args.benchmarks)
    if not args.finished_only:
        for benchmark in args.benchmarks:
            for strategy in args.strategies:
                benchmark_config(benchmark, strategy, args.first_seed, max(args.budgets), args.overrides)
    out.mkdir(parents=True, exist_ok=True)
    key = {(r["benchmark"], r["strategy"], r["seed"]): r for r in done}
    rows = []
    for benchmark in args.benchmarks:
        for strategy in args.strategies:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                row = key.get((benchmark, strategy, seed))
                if args.finished_only and row is None:
                    continue
                if row is None or any(str(b) not in row["best"] for b in args.budgets):
                    row = run_one(benchmark, strategy, seed, args.budgets, out, args.overrides)
                    with results.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                print(f"{benchmark} {strategy} seed {seed}: {row['best'][str(max(args.budgets))]:.2f} "
                      f"({row['seconds']:.1f} s)", file=sys.stderr)
                rows.append(row)
    summary = summarize(rows, args.budgets)
    (out / "table.md").write_text(markdown(summary, args.budgets))
    if not args.no_report:
        from nao.report import write_report

        for benchmark in args.benchmarks:
            runs = [out / benchmark / f"{r['strategy']}-seed{r['seed']}" for r in rows if r["benchmark"] == benchmark]
            write_report(runs, out / f"report-{benchmark}")
    print(json.dumps({"benchmark": "search", "budgets": args.budgets, "overrides": overrides,
                      "summary": summary}))


if __name__ == "__main__":
    main()
