"""The ``nao`` command line. Results go to stdout (or ``--out``), progress to stderr.

User errors print one line ``nao: error: ...`` and exit with code 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nao.errors import UserError
from nao.plugins import load_plugins
from nao.registry import EVALUATORS, STRATEGIES
from nao.spaces import get_space, list_spaces

EXIT_USER_ERROR = 2


# --------------------------------------------------------------------------------- output helpers
def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, so ``path`` is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def csv_text(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def emit_csv(header: list[str], rows: list[list], out: str | None) -> None:
    """CSV to ``--out`` (atomically) or to stdout."""
    text = csv_text(header, rows)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(Path(out), text)


def emit_result(result: dict) -> None:
    """The command's result as one JSON object on the last line of stdout (NaN -> null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
    print(json.dumps(clean))


class EpochProgress:
    """A tqdm bar on stderr, opened at the first epoch (so an early user error prints alone)."""

    def __init__(self, epochs: int, label: str) -> None:
        self.epochs, self.label, self.bar = epochs, label, None

    def __call__(self, epoch: int, loss: float) -> None:
        if self.bar is None:
            self.bar = tqdm(total=self.epochs, desc=self.label, unit="epoch", file=sys.stderr, mininterval=1.0,
                            dynamic_ncols=True)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fmt_score(value: float) -> str:
    return f"{value:.6g}"


# --------------------------------------------------------------------------------- commands
def cmd_spaces(args: argparse.Namespace) -> None:
    rows = []
    for name in list_spaces():
        space = get_space(name)
        rows.append([name, space.seq_len, space.vocab_size, space.format(space.sample(np.random.default_rng(0)))])
    width = max(len(r[0]) for r in rows)
    print(f"{'name':<{width}}  seq_len  vocab  example")
    for name, seq_len, vocab, example in rows:
        print(f"{name:<{width}}  {seq_len:>7}  {vocab:>5}  {example}")


def cmd_sample(args: argparse.Namespace) -> None:
    space = get_space(args.space)
    rng = np.random.default_rng(args.seed)
    seen: set = set()
    out = []
    for _ in range(100 * args.n + 1000):
        if len(out) == args.n:
            break
        arch = space.sample(rng)
        if space.canonical(arch) not in seen:
            seen.add(space.canonical(arch))
            out.append(space.format(arch))
    if len(out) < args.n:
        print(f"nao: only {len(out)} distinct archs found in {args.space}", file=sys.stderr)
    sys.stdout.write("".join(line + "\n" for line in out))


OWN_OPTIONS = {"epochs": "--epochs", "device": "--device"}  # controller settings `predictor fit` has options for


def controller_hyperparameters(pairs: list[str]) -> dict:
    """``--set``'s ``KEY=VALUE`` pairs (values parsed as YAML), checked against ``ControllerConfig``; a key with an
    option of its own (``OWN_OPTIONS``) is refused, so no setting is given twice."""
    from nao.config import ConfigError, apply_overrides, from_dict
    from nao.controller import ControllerConfig

    try:
        data = apply_overrides({}, pairs)
        config = from_dict(ControllerConfig, data)
    except ConfigError as err:
        raise ConfigError(f"--set: {err}") from None
    clashes = sorted(data.keys() & OWN_OPTIONS.keys())
    if clashes:
        raise ConfigError(f"--set: {clashes[0]!r} has an option of its own: use {OWN_OPTIONS[clashes[0]]}")
    return {key: getattr(config, key) for key in data}


def cmd_predictor_fit(args: argparse.Namespace) -> None:
    from nao.controller import ControllerConfig
    from nao.predictors.fit import fit_predictor
    from nao.results import load_results

    hyper = controller_hyperparameters(args.set)
    if args.epochs is not None:
        hyper["epochs"] = args.epochs
    space = get_space(args.space)
    results = load_results(args.results, space, metric=args.metric)
    epochs = hyper.get("epochs", ControllerConfig.epochs)
    members = f" x {args.members} controllers" if args.members > 1 else ""
    progress = EpochProgress(epochs * args.members, f"fit {len(results.archs)} archs{members}")
    try:
        ctrl, report = fit_predictor(space, results.archs, results.scores, holdout=args.holdout, seed=args.seed,
                                     minimize=args.minimize, members=args.members, progress=progress,
                                     device=args.device, **hyper)
    finally:
        progress.close()
    out = Path(args.out)
    ctrl.save(out)
    write_atomic(out / "metrics.json", json.dumps(report, indent=2) + "\n")
    emit_result({"model": str(out), "metric": results.metric, **report})


def cmd_predictor_score(args: argparse.Namespace) -> None:
    from nao.controller import load_predictor
    from nao.results import load_archs

    ctrl = load_predictor(args.model, device=args.device)
    archs = load_archs(args.archs, ctrl.space)
    predicted = ctrl.predict(archs)
    rows = [[ctrl.space.format(a), fmt_score(p)] for a, p in zip(archs, predicted, strict=True)]
    emit_csv(["arch", "predicted"], rows, args.out)


def cmd_propose(args: argparse.Namespace) -> None:
    from nao.controller import Controller
    from nao.results import load_results

    ctrl = Controller.load(args.model, device=args.device)
    results = load_results(args.results, ctrl.space, metric=args.metric)
    proposals = ctrl.propose(results.archs, results.scores, n=args.n, top_k=args.top_k)
    if len(proposals) < args.n:
        print(f"nao: found {len(proposals)} new archs of the {args.n} asked for", file=sys.stderr)
    rows = [[ctrl.space.format(p.arch), fmt_score(p.predicted), f"{p.step:g}"] for p in proposals]
    emit_csv(["arch", "predicted", "step"], rows, args.out)
    if args.out is not None:
        best = proposals[0] if proposals else None
        emit_result({"out": args.out, "proposed": len(proposals),
                     "best_arch": ctrl.space.format(best.arch) if best else None,
                     "best_predicted": best.predicted if best else None})


def cmd_search(args: argparse.Namespace) -> None:
    from nao.search import load_config, run_search

    config = load_config(args.config, args.overrides, plugins=getattr(args, "plugin", []))
    out = args.out or str(Path("runs") / f"{Path(args.config).stem}-{config.strategy}-seed{config.seed}")
    emit_result(run_search(config, out, resume=args.resume))


def cmd_train(args: argparse.Namespace) -> None:
    from nao.train import run_train

    out = args.out or str(Path("runs") / f"train-{Path(args.config).stem}")
    emit_result(run_train(args.config, args.overrides, out, resume=args.resume))


def cmd_report(args: argparse.Namespace) -> None:
    from nao.report import write_report

    emit_result(write_report(args.runs, args.out))


def cmd_export(args: argparse.Namespace) -> None:
    from nao.export import parse_settings, run_export

    named = {"n_classes": args.classes, "in_channels": args.in_channels, "vocab_size": args.vocab_size,
             "channels": args.channels, "cells_per_stage": args.cells_per_stage}
    options = {k: v for k, v in named.items() if v is not None} | parse_settings(args.settings)
    emit_result(run_export(args.source, args.out, space=args.space, arch=args.arch, options=options))


# --------------------------------------------------------------------------------- parser
def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class CommandsWithPlugins(argparse._SubParsersAction):
    """Every command takes ``--plugin MODULE_OR_FILE.py`` (repeatable): user code imported before the command
    runs, to register spaces, evaluators, strategies or tasks."""

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        parser = super().add_parser(name, **kwargs)
        parser.register("action", "parsers", CommandsWithPlugins)  # sub-commands (predictor fit) get it too
        parser.add_argument("--plugin", action="append", default=argparse.SUPPRESS, metavar="MODULE_OR_FILE.py",
                            help="import this module or file first (user spaces, evaluators, strategies, tasks); "
                            "repeatable")
        return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nao", description="Neural Architecture Optimization: fit an encoder-predictor-decoder on "
        "architecture results, rank architectures, and propose new ones by gradient steps in embedding space.")
    parser.register("action", "parsers", CommandsWithPlugins)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("spaces", help="list the search spaces", description="List the registered search "
                            "spaces with their token sequence length, vocabulary size and an example arch.")
    p.set_defaults(run=cmd_spaces)

    p = commands.add_parser("sample", help="print random archs", description="Print N distinct random archs "
                            "of SPACE, one per line, in the space's text form.")
    p.add_argument("space", metavar="SPACE", help="search space name (see `nao spaces`)")
    p.add_argument("-n", type=positive_int, default=10, help="how many archs (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=cmd_sample)

    predictor = commands.add_parser("predictor", help="fit or apply a performance predictor",
                                    description="Fit the encoder-predictor-decoder on a results file, or "
                                    "score archs with a fitted one.")
    sub = predictor.add_subparsers(dest="predictor_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("fit", help="fit on a results file and report held-out ranking quality",
                       description="Fit the controller on (arch, score) rows of FILE, report kendall_tau, "
                       "spearman, pairwise_acc, precision_at_k, mae and the decoder's reconstruction_acc on "
                       "a random held-out share, and save the model to DIR.")
    p.add_argument("--space", required=True, help="search space name (see `nao spaces`)")
    p.add_argument("--results", required=True, metavar="FILE",
                   help="CSV or JSON Lines with an `arch` column, or an `arch_pool` file with `arch_pool.perf`")
    p.add_argument("--metric", metavar="COL", help="score column (needed when the file has several)")
    p.add_argument("--minimize", action="store_true", help="lower scores are better (e.g. error, loss)")
    p.add_argument("--holdout", type=float, default=0.1, metavar="FRAC",
                   help="share of rows held out for the report (default 0.1; 0 fits on every row)")
    p.add_argument("--epochs", type=positive_int, help="training epochs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, initialisation and batches")
    p.add_argument("--members", type=positive_int, default=1, metavar="K",
                   help="fit K controllers (seeds SEED, SEED+1000, ...) and predict their mean: K times the "
                   "fitting time, a better ranking (K=5: Kendall tau +0.01 to +0.02 measured, docs/benchmarks.md); "
                   "`predictor score` uses them all; `propose` needs one member: --model DIR/member0")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="controller hyperparameters (README, Reference), e.g. hidden_dim=192 embedding_dim=96 "
                   "predict_equivalents=true (epochs and device: --epochs, --device)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the fitted model")
    p.set_defaults(run=cmd_predictor_fit)

    p = sub.add_parser("score", help="predict scores of archs with a fitted model",
                       description="Write CSV `arch,predicted` for every arch of FILE.")
    p.add_argument("--model", required=True, metavar="DIR", help="directory written by `nao predictor fit`")
    p.add_argument("--archs", required=True, metavar="FILE",
                   help="a results file (its `arch` column) or a text file with one arch per line")
    p.add_argument("--out", metavar="FILE", help="CSV to write (default: stdout)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.set_defaults(run=cmd_predictor_score)

    p = commands.add_parser("propose", help="propose new archs by gradient steps from the best known ones",
                            description="Move the embeddings of the top-K archs of FILE along the gradient of "
                            "the predicted score, decode them, and write CSV `arch,predicted,step` of up to N "
                            "archs not in FILE, best predicted first.")
    p.add_argument("--model", required=True, metavar="DIR", help="directory written by `nao predictor fit`")
    p.add_argument("--results", required=True, metavar="FILE", help="known archs and their scores")
    p.add_argument("--metric", metavar="COL", help="score column (needed when the file has several)")
    p.add_argument("-n", type=positive_int, default=100, help="how many new archs (default 100)")
    p.add_argument("--top-k", type=positive_int, default=100, metavar="K",
                   help="start from the K best archs (default 100)")
    p.add_argument("--out", metavar="FILE", help="CSV to write (default: stdout)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.set_defaults(run=cmd_propose)
    p = commands.add_parser("search", help="run (or resume) a search", description="Run a search from a YAML "
                            "config with `key=value` overrides (dotted keys, e.g. evaluator.path=FILE). The run "
                            "directory holds config.yaml, history.jsonl (one line per evaluated arch), state.json "
                            "and controller checkpoints; a killed or interrupted run continues with --resume. "
                            "executor=ray workers=N runs a batch's standalone evaluations in parallel on Ray "
                            "(ray.address=auto joins a cluster; ray.num_gpus=1 gives each evaluation a GPU). "
                            "Your own training code: evaluator.type=function with evaluator.function=FILE.py:fn "
                            "(called with the arch, text=, seed=, workdir=; returns a dict of metrics), or "
                            "evaluator.type=command with evaluator.command='python train.py --arch {arch} --out "
                            "{workdir}' (its last stdout line is a JSON object of metrics; evaluator.timeout in "
                            "seconds). Registered strategies: " + ", ".join(STRATEGIES.names()) + "; evaluator "
                            "types: " + ", ".join(EVALUATORS.names()) + " (a --plugin or plugins: [...] adds more).")
    p.add_argument("config", metavar="CONFIG.yaml", help="search config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. budget=100 seed=3")
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/CONFIG-STRATEGY-seedSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (or start it if empty)")
    p.set_defaults(run=cmd_search)

    p = commands.add_parser("train", help="train one arch from scratch (final training)",
                            description="Train the config's `arch` from scratch with its recipe (see "
                            "configs/*train*.yaml). --out holds config.yaml, checkpoint.pt (every epoch; it carries "
                            "the arch), metrics.jsonl and result.json; a killed run continues with --resume. The test "
                            "set is read once, at the end; the last line of stdout is the result as JSON.")
    p.add_argument("config", metavar="CONFIG.yaml", help="training config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. arch='0 1 ...' "
                   "train.epochs=20")
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/train-CONFIG)")
    p.add_argument("--resume", action="store_true", help="continue the training in --out")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("report", help="plots and a summary table of search runs",
                            description="Write best_so_far.png (grouped by strategy, mean and spread), "
                            "predicted_vs_measured.png (NAO runs), best_arch.png (the best arch's cells), "
                            "summary.csv and summary.md for one or more run directories.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by `nao search`")
    p.add_argument("--out", default="report", metavar="DIR", help="where to write the report (default report/)")
    p.set_defaults(run=cmd_report)

    p = commands.add_parser("export", help="write a found network as one plain PyTorch file",
                            description="Write the network of an arch as ONE Python file that imports only torch "
                            "(`build()` gives the network; its state dict is the one `nao train` trains), with the "
                            "trained weights beside it as FILE.pt when there are any. From a `nao train` directory: "
                            "its arch, sizes and weights. From a `nao search` run: its best arch, at the sizes of "
                            "the run's evaluator.task (the final-training defaults when it has none), no weights. "
                            "Or from --space and --arch (final-training defaults). CNN cell spaces (nao-cnn, "
                            "nao-cnn-large) and recurrent cell spaces (nao-rnn) can be exported.")
    p.add_argument("source", nargs="?", metavar="RUN_DIR|TRAIN_DIR",
                   help="a `nao search` run directory or a `nao train` output directory")
    p.add_argument("--space", help="search space name (with --arch, instead of a directory)")
    p.add_argument("--arch", help="the arch in the space's text form (with --space)")
    p.add_argument("--out", required=True, metavar="FILE.py", help="the Python file to write")
    p.add_argument("--classes", type=int, metavar="N", help="CNN: number of classes (default: the dataset's)")
    p.add_argument("--in-channels", type=int, metavar="N", help="CNN: input image channels (default: the dataset's)")
    p.add_argument("--channels", type=int, metavar="C", help="CNN: channels of the first stage")
    p.add_argument("--cells-per-stage", type=int, metavar="N", help="CNN: normal cells per stage")
    p.add_argument("--vocab-size", type=int, metavar="N", help="RNN: vocabulary size (default: the corpus's)")
    p.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                   help="any other size, repeatable: CNN stem_multiplier, stem_stride, auxiliary, dropout; RNN "
                   "size, dropout, dropouth, dropoutx, dropouti, dropoute (not for a trained network)")
    p.set_defaults(run=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "overrides", None) is not None and all("=" in e and e[0] != "-" for e in extra):
        args.overrides += extra  # key=value overrides written after an option such as --out
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        load_plugins(getattr(args, "plugin", []))
        args.run(args)
    except UserError as err:
        print(f"nao: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("nao: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
