"""``nao report``: plots and a summary table from one or more run directories.

Writes ``best_so_far.png`` (best metric vs evaluated archs, mean and spread per strategy),
``predicted_vs_measured.png`` (NAO runs: the controller's prediction of each proposed arch
against its measured metric, per iteration), ``best_arch.png`` (the best arch's cells),
``summary.csv`` and ``summary.md``. For a weight-sharing run the metric of every arch is its score from
the search's last shared weights (``scores.json``), the scores its summary and best arch come from;
the score an arch got when first evaluated stays in ``history.jsonl``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from nao.errors import UserError
from nao.search.rundir import CONFIG, SCORES, Record, RunDir
from nao.spaces import get_space
from nao.spaces.base import CellGraph


@dataclass
class Run:
    path: Path
    config: dict
    history: list[Record]  # every evaluation, failed ones included (they spent budget)

    @property
    def scored(self) -> list[Record]:
        return [r for r in self.history if r.error is None]

    @property
    def metric(self) -> str:
        return self.config["evaluator"]["metric"] or next(iter(self.scored[0].metrics))

    @property
    def report_metric(self) -> str | None:
        return self.config["evaluator"]["report_metric"]

    @property
    def minimize(self) -> bool:
        return self.config["evaluator"]["minimize"]

    def best_so_far(self) -> np.ndarray:
        """Per evaluation, the best metric so far (a failed evaluation scores nothing: NaN until a first score)."""
        values = np.array([r.metrics.get(self.metric, np.nan) for r in self.history])
        return np.fmin.accumulate(values) if self.minimize else np.fmax.accumulate(values)

    def best(self) -> Record:
        values = [r.metrics[self.metric] for r in self.scored]
        return self.scored[int(np.argmin(values) if self.minimize else np.argmax(values))]


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not (path / CONFIG).exists():
        raise UserError(f"{path}: not a run directory (no {CONFIG})")
    history = RunDir(path).read_history()
    if not any(r.error is None for r in history):
        raise UserError(f"{path}: the run has no successful evaluation yet")
    config = yaml.safe_load((path / CONFIG).read_text())
    if (path / SCORES).exists():
        metric = config["evaluator"]["metric"] or next(iter(next(r for r in history if r.error is None).metrics))
        final = json.loads((path / SCORES).read_text())["scores"]
        history = [replace(r, metrics=r.metrics | {metric: final[r.arch]}) if r.arch in final else r for r in history]
    return Run(path=path, config=config, history=history)


def summary_rows(runs: list[Run]) -> list[dict]:
    rows = []
    for run in runs:
        best = run.best()
        row = {"run": str(run.path), "strategy": run.config["strategy"], "seed": run.config["seed"],
               "evaluated": len(run.history), "failed": len(run.history) - len(run.scored),
               f"best_{run.metric}": best.metrics[run.metric]}
        if run.report_metric:
            row[f"best_{run.report_metric}"] = best.metrics[run.report_metric]
        rows.append(row | {"best_arch": best.arch})
    return rows


def _table_text(rows: list[dict]) -> tuple[str, str]:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return buffer.getvalue(), "\n".join(lines) + "\n"


def _cell(value) -> str:
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|")


def _group_table(runs: list[Run]) -> list[dict]:
    """Mean and standard deviation of the final best metric per strategy."""
    rows = []
    for strategy in sorted({r.config["strategy"] for r in runs}):
        group = [r for r in runs if r.config["strategy"] == strategy]
        row = {"strategy": strategy, "runs": len(group)}
        for name in (group[0].metric, group[0].report_metric):
            if name:
                values = [r.best().metrics[name] for r in group]
                row[f"best_{name}_mean"] = float(np.mean(values))
                row[f"best_{name}_std"] = float(np.std(values))
        rows.append(row)
    return rows


def plot_best_so_far(runs: list[Run], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in sorted({r.config["strategy"] for r in runs}):
        curves = [r.best_so_far() for r in runs if r.config["strategy"] == strategy]
        length = min(len(c) for c in curves)
        stacked = np.stack([c[:length] for c in curves])  # (runs, evaluated)
        x = np.arange(1, length + 1)
        mean = stacked.mean(axis=0)
        (line,) = ax.plot(x, mean, label=f"{strategy} ({len(curves)} run{'s' * (len(curves) > 1)})")
        if len(curves) > 1:
            std = stacked.std(axis=0)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("evaluated architectures")
    ax.set_ylabel(f"best {runs[0].metric} so far")
    ax.set_title("best so far (mean ± std over runs)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_predicted_vs_measured(runs: list[Run], path: Path) -> bool:
    import matplotlib.pyplot as plt

    points = [(r.iteration, r.predicted, r.metrics[run.metric]) for run in runs for r in run.scored
              if r.predicted is not None]
    if not points:
        return False
    iterations, predicted, measured = (np.array(v) for v in zip(*points, strict=True))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    scatter = ax.scatter(predicted, measured, c=iterations, cmap="viridis", s=14, alpha=0.8)
    low, high = min(predicted.min(), measured.min()), max(predicted.max(), measured.max())
    ax.plot([low, high], [low, high], color="gray", lw=1, ls="--")
    ax.set_xlabel("predicted before evaluation")
    ax.set_ylabel(f"measured {runs[0].metric}")
    ax.set_title("controller predictions of the archs it chose")
    fig.colorbar(scatter, ax=ax, label="NAO iteration")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def draw_cells(graphs: list[CellGraph], title: str, path: Path) -> None:
    """Each cell as a left-to-right DAG with op names on the edges."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    layouts = [_layered(graph) for graph in graphs]
    height = max(np.ptp(xy[:, 1]) for xy in layouts) + 1.6
    fig, axes = plt.subplots(len(graphs), 1, figsize=(11, 0.9 * height * len(graphs) + 0.6), squeeze=False)
    for ax, graph, xy in zip(axes[:, 0], graphs, layouts, strict=True):
        n = len(graph.nodes)
        ax.set_xlim(-0.5, xy[:, 0].max() + 0.5)
        ax.set_ylim(-height / 2, height / 2)
        ax.set_title(graph.title, fontsize=10)
        ax.axis("off")
        fig.canvas.draw()  # fixes the data -> display transform used to place edge labels
        for src, dst, label in graph.edges:
            twins = [e for e in graph.edges if (e[0], e[1]) == (src, dst)]
            bend = (0.2 + 0.3 * twins.index((src, dst, label))) if len(twins) > 1 else 0.2 * (dst - src > 1)
            ax.add_patch(FancyArrowPatch(xy[src], xy[dst], connectionstyle=f"arc3,rad={bend}", arrowstyle="-|>",
                                         mutation_scale=12, color="0.35", shrinkA=14, shrinkB=14, clip_on=False))
            if label:  # 60% along matplotlib's arc3 curve (a quadratic Bezier), in display space like the curve;
                # past the middle, where edges fanning out of one input have spread apart
                a, b = ax.transData.transform(xy[src]), ax.transData.transform(xy[dst])
                dx, dy = b - a
                control = (a + b) / 2 + bend * np.array([dy, -dx])
                t = 0.6
                point = (1 - t) ** 2 * a + 2 * t * (1 - t) * control + t**2 * b
                ax.text(*ax.transData.inverted().transform(point), label, fontsize=7, ha="center", va="center",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
        targets = {dst for _, dst, _ in graph.edges}
        for k, name in enumerate(graph.nodes):
            io_node = k not in targets or (k == n - 1 and graph.last_is_output)  # cell inputs and the output
            ax.text(*xy[k], name, ha="center", va="center", fontsize=8,
                    bbox={"boxstyle": "circle", "fc": "#f6e3c5" if io_node else "#dbe9f6", "ec": "0.3"})
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _layered(graph: CellGraph) -> np.ndarray:
    """Node positions: x = longest path from a cell input (edges go from lower to higher index), nodes of
    one layer spread evenly on y, so most edges join neighbouring layers and do not cross many others."""
    depth = [0] * len(graph.nodes)
    for src, dst, _ in sorted(graph.edges, key=lambda e: e[1]):
        depth[dst] = max(depth[dst], depth[src] + 1)
    xy = np.zeros((len(graph.nodes), 2))
    for layer in set(depth):
        members = [k for k in range(len(graph.nodes)) if depth[k] == layer]
        for i, k in enumerate(members):
            xy[k] = (layer, (len(members) - 1) / 2 - i)
    return xy


def write_report(run_paths: list[str | Path], out: str | Path) -> dict:
    """Write the report files into ``out``; returns what was written and the best run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        raise UserError("nao report needs matplotlib (pip install 'nao-search[viz]')") from None
    runs = [load_run(p) for p in run_paths]
    metrics = {(r.metric, r.minimize) for r in runs}
    if len(metrics) > 1:
        names = ", ".join(sorted(m for m, _ in metrics))
        raise UserError(f"runs search different metrics ({names}): report them apart")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(runs)
    csv_text, md_text = _table_text(rows)
    _, group_md = _table_text(_group_table(runs))
    (out / "summary.csv").write_text(csv_text)
    (out / "summary.md").write_text(f"## Per strategy\n\n{group_md}\n## Per run\n\n{md_text}")
    files = ["summary.csv", "summary.md", "best_so_far.png"]
    plot_best_so_far(runs, out / "best_so_far.png")
    if plot_predicted_vs_measured(runs, out / "predicted_vs_measured.png"):
        files.append("predicted_vs_measured.png")
    best_run = min(runs, key=lambda r: r.best_so_far()[-1]) if runs[0].minimize else \
        max(runs, key=lambda r: r.best_so_far()[-1])
    best = best_run.best()
    space = get_space(best_run.config["space"])
    graphs = space.graphs(space.parse(best.arch))
    if graphs:
        label = f"best {best_run.metric} {best.metrics[best_run.metric]:.4g} — {best.arch}  ({best_run.path})"
        draw_cells(graphs, label, out / "best_arch.png")
        files.append("best_arch.png")
    return {"out": str(out), "runs": len(runs), "files": files, "best_arch": best.arch,
            "best_metric": best.metrics[best_run.metric]}
