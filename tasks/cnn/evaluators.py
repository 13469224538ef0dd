"""Evaluators for CNN cell spaces: train each arch briefly (``standalone``), score it with a
weight-sharing supernet trained between NAO iterations (``supernet``, NAO-WS), or score its freshly
initialised network without training (``proxy``, a zero-cost proxy).

The first two report validation accuracy (%) on a fixed validation subset carved from the training set;
the test set is never looked at during a search.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nao.config import ConfigError
from nao.search.evaluators import SharedWeightsEvaluator, TaskEvaluator
from nao.spaces.base import Arch
from nao.spaces.cell import CellSpace
from nao.tasks.cnn.network import ChildNetwork, NetworkConfig, Supernet
from nao.tasks.cnn.ops import OPS
from nao.tasks.cnn.proxies import PROXIES, proxy_scores
from nao.tasks.cnn.train import DataConfig, TrainConfig, Trainer, model_input, to_device
from nao.tasks.images import ImageData
from nao.torchutils import seeded_init


@dataclass
class ImageTaskConfig:
    """``evaluator.task`` of the CNN evaluators."""

    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=lambda: NetworkConfig(channels=16, cells_per_stage=2,
                                                                         auxiliary=False))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=64, lr=0.05, drop_path=0.0,
                                                                   cutout=0))
    valid_images: int = 1000  # every arch is scored on these (the first of the validation split)
    sampling: str = "uniform"  # supernet: the arch of each mini-batch (SAMPLERS: uniform, params, space, fair, outputs)
    warmup_epochs: int = 0  # supernet: epochs on archs of the whole space ("space") before the first stage
    pool_batch_norm: bool = False  # supernet: a batch norm without affine weights after each pooling op (DARTS')
    concat_output: bool = False  # supernet: cells output the child network's concatenation, not a projection of it
    batch_norm_affine: bool = True  # supernet: False: the cells' batch norms learn no scale and shift (DARTS')
    finetune_steps: int = 0  # supernet: > 0: score each arch after this many SGD steps on it alone (weights restored)
    finetune_lr: float = 0.01  # supernet: the learning rate of those steps
    proxy: str = "naswot"  # proxy: the training-free score (nao.tasks.cnn.proxies: naswot, weights, synflow, snip)
    proxy_images: int = 64  # proxy: the mini-batch it is computed on (the first training images)


def check_trainable(space: CellSpace) -> None:
    """``ConfigError`` for a cell space whose networks this task cannot build: ops without a module here."""
    missing = [name for name in space.op_names if name not in OPS]
    if missing:
        raise ConfigError(f"space: the CNN task cannot build {space.name} cells (no ops {', '.join(missing)})")


class _ImageEvaluator(TaskEvaluator):
    """What the CNN evaluators share: the data, the metric and the task's checks."""

    metric = "valid_acc"
    minimize = False
    shares_weights = False
    TaskConfig = ImageTaskConfig

    def __init__(self, space: CellSpace, config, *, seed: int, device: str, run_path: Path | None):
        check_trainable(space)
        super().__init__(space, config, seed=seed, device=device, run_path=run_path)
        self._data: ImageData | None = None

    def check_task(self, task: ImageTaskConfig) -> None:
        if task.sampling not in SAMPLERS:
            raise ConfigError(f"evaluator.task.sampling: must be one of {', '.join(SAMPLERS)}, got {task.sampling!r}")
        if task.warmup_epochs < 0:
            raise ConfigError(f"evaluator.task.warmup_epochs: must be at least 0, got {task.warmup_epochs}")
        if task.finetune_steps < 0:
            raise ConfigError(f"evaluator.task.finetune_steps: must be at least 0, got {task.finetune_steps}")
        if task.finetune_lr <= 0:
            raise ConfigError(f"evaluator.task.finetune_lr: must be positive, got {task.finetune_lr}")
        if task.proxy not in PROXIES:
            raise ConfigError(f"evaluator.task.proxy: must be one of {', '.join(PROXIES)}, got {task.proxy!r}")
        if task.proxy_images < 2:
            raise ConfigError(f"evaluator.task.proxy_images: must be at least 2, got {task.proxy_images}")

    def whole_validation(self) -> dict:
        return {"valid_images": self.task.data.valid_size}

    @property
    def data(self) -> ImageData:
        """Loaded on first use, so a bad config fails before minutes of loading."""
        if self._data is None:
            self._data = self.task.data.load(self.seed)
        return self._data

    def begin_stage(self, stage: int, pool: list[Arch]) -> None:
        """Called before each batch is evaluated (nothing to do for standalone training)."""


class StandaloneEvaluator(_ImageEvaluator):
    """Each arch trained from scratch for ``task.train.epochs``, scored on the validation subset."""

    def evaluate(self, arch: Arch) -> dict[str, float]:
        net_config, data = self.task.network, self.data
        model = seeded_init(lambda: ChildNetwork(self.space, arch, in_channels=data.shape[0],
                                                 n_classes=data.n_classes, config=net_config), self.seed)
        trainer = Trainer(model, data, self.task.train, seed=self.seed, device=self.device,
                          train_images=self.task.data.train_images)
        for _ in range(self.task.train.epochs):
            trainer.train_epoch()
        return {self.metric: trainer.accuracy("valid", limit=self.task.valid_images)}

    def cost(self, arch: Arch) -> float:
        """The weights of the arch's cells (built on the meta device: no memory, no data): the cells' convolutions
        are most of a training's time and rank the archs' training times well (``scripts/bench_ray.py`` reports
        the rank correlation)."""
        with torch.device("meta"):
            net = ChildNetwork(self.space, arch, in_channels=1, n_classes=2, config=self.task.network)
        return float(sum(p.numel() for p in net.cells.parameters()))


class ProxyEvaluator(_ImageEvaluator):
    """Each arch scored by ``task.proxy``, a training-free score of its child network (``task.network``'s size,
    freshly initialised from the run seed) on the first ``task.proxy_images`` training images (at most the
    training split), computed on the evaluator's ``device``: no training (``nao.tasks.cnn.proxies``; a fraction of
    a second per arch on one CPU thread). The zero-cost baseline a supernet search should be compared with
    (Abdelfattah et al. 2021; docs/cnn.md). The score is the proxy's own (``proxy_score``, higher is better); a
    non-finite one (NASWOT of identical images) is a failed evaluation."""

    metric = "proxy_score"

    def evaluate(self, arch: Arch) -> dict[str, float]:
        [score] = proxy_scores(self.task.proxy, self.space, [arch], self.task.network, self.data, seed=self.seed,
                               batch_size=self.task.proxy_images, device=self.device)
        return {self.metric: float(score)}


class SupernetEvaluator(SharedWeightsEvaluator, _ImageEvaluator):
    """NAO-WS: shared weights trained on the pool between iterations; all archs scored on the same images.

    Before each batch the supernet trains ``task.train.epochs`` epochs (a fresh cosine cycle, as NAO-V2's
    phases), each mini-batch running one arch drawn by ``task.sampling`` (:data:`SAMPLERS`; by default
    uniformly from the pool: every arch evaluated so far plus the new batch). Its weights after each stage
    are saved in the run directory (``supernet/stageNNNN.pt``), so a resumed search reloads them instead of
    training again. Batch norm always uses the batch's own statistics and every arch sees the same images in
    the same order, so a score depends on the arch and the weights only — not on which arch ran before (the
    original's bug, nao-facts §8.1).
    """

    def __init__(self, space: CellSpace, config, *, seed: int, device: str, run_path: Path | None):
        _ImageEvaluator.__init__(self, space, config, seed=seed, device=device, run_path=run_path)
        SharedWeightsEvaluator.__init__(self, seed=seed, device=self.device, run_path=run_path)
        self._supernet: Supernet | None = None
        self._stem: torch.Tensor | None = None  # stem output of the validation subset for the loaded weights

    @property
    def supernet(self) -> Supernet:
        if self._supernet is None:
            data = self.data
            self._supernet = to_device(seeded_init(lambda: Supernet(
                self.space, in_channels=data.shape[0], n_classes=data.n_classes, config=self.task.network,
                pool_batch_norm=self.task.pool_batch_norm, concat_output=self.task.concat_output,
                batch_norm_affine=self.task.batch_norm_affine), self.seed),
                self.device)
        return self._supernet

    def weights_changed(self) -> None:
        self._stem = None

    def train(self, pool: list[Arch], *, seed: int, desc: str = "supernet", progress: bool = True,
              epochs: int | None = None, sampling: str | None = None) -> list[dict]:
        """``task.train.epochs`` epochs (or ``epochs``: a cosine cycle of that length), each mini-batch with one arch
        drawn by ``task.sampling`` (or ``sampling``) from ``pool``; per-epoch stats."""
        net, recipe = self.supernet, replace(self.task.train, epochs=epochs or self.task.train.epochs)
        draws = SAMPLERS[sampling or self.task.sampling](self, pool, np.random.default_rng(seed))
        trainer = Trainer(net, self.data, recipe, seed=seed, device=self.device,
                          train_images=self.task.data.train_images)

        def forward(x: torch.Tensor):
            return net.head(net.stem(x), self.space.cells(next(draws)))

        stats = []
        with tqdm(total=recipe.epochs, desc=desc, file=sys.stderr, disable=not progress, leave=False) as bar:
            for _ in range(recipe.epochs):
                stats.append(trainer.train_epoch(forward))
                bar.update(1)
                bar.set_postfix(loss=f"{stats[-1]['train_loss']:.3f}", acc=f"{stats[-1]['train_acc']:.1f}")
        return stats

    def warm_up(self, seed: int) -> None:
        """``task.warmup_epochs`` on archs drawn uniformly from the whole space, so that the ops every arch of the
        seed pool uses have trained before the pool's first scores (the search's first stage)."""
        if self.task.warmup_epochs:
            self.train([], seed=seed, desc="supernet warm-up", epochs=self.task.warmup_epochs, sampling="space")

    def parameters_of(self, arch: Arch) -> int:
        """Weights the arch uses in the supernet (NAO-V2 samples in proportion to this)."""
        total = 0
        for cell_module, reduction in zip(self.supernet.cells, self.supernet.reductions, strict=True):
            cell = self.space.cells(arch)[int(reduction)]
            modules = [cell_module.op(j, b, s, o) for j, node in enumerate(cell) for b, (s, o) in enumerate(node)]
            if reduction:
                modules += [cell_module.reduce_input[str(k)] for k in self.space.output_states(cell) if k < 2]
            total += sum(p.numel() for m in modules for p in m.parameters())
        return total

    def evaluate(self, arch: Arch) -> dict[str, float]:
        """The arch's accuracy on the first ``task.valid_images`` validation images with the shared weights (and
        its cross-entropy there, ``valid_loss``: recorded, never searched on), or, with ``task.finetune_steps``,
        with those weights after that many SGD steps on the arch alone (:meth:`finetuned_scores`): a few steps let
        each arch adapt the weights it shares before it is judged (a few-step form of the fine-tuning that one-shot
        rankings are known to gain from), at the cost of the steps per scored arch."""
        if not self.task.finetune_steps:
            return self._score(arch)
        return self.finetuned_scores(arch, [self.task.finetune_steps])[self.task.finetune_steps]

    def finetuned_scores(self, arch: Arch, steps: list[int]) -> dict[int, dict[str, float]]:
        """The arch's scores after each of ``steps`` SGD steps (0: before any) of one run of fine-tuning on it
        alone, at ``task.finetune_lr`` on the first ``max(steps)`` mini-batches' images of the training split,
        shuffled: every arch gets the same mini-batches, and the shared weights are restored after (the search never
        sees the steps). ``finetuned_scores(arch, [n])[n]`` is ``evaluate``'s score with ``task.finetune_steps``
        ``n``; in a call with more steps, the scores before the last come from other mini-batches."""
        net, cells, task = self.supernet, self.space.cells(arch), self.task
        recipe = replace(task.train, epochs=1, lr=task.finetune_lr, lr_min=task.finetune_lr, drop_path=0.0)
        images = max(steps) * recipe.batch_size
        available = min(len(self.data.train[1]), task.data.train_images or images)
        if max(steps) > -(-available // recipe.batch_size):
            raise ConfigError(f"evaluator.task.finetune_steps: {max(steps)} steps of {recipe.batch_size} images "
                              f"need {images} training images; there are {available}")
        scores = {0: self._score(arch)} if 0 in steps else {}
        shared = copy.deepcopy(net.state_dict())

        def score_at(step: int, _: int) -> None:
            if step in steps:
                self.weights_changed()
                scores[step] = self._score(arch)
                net.train()

        try:
            if images:
                trainer = Trainer(net, self.data, recipe, seed=self.seed, device=self.device,
                                  train_images=min(images, available))
                trainer.train_epoch(lambda x: net.head(net.stem(x), cells), on_step=score_at)
        finally:
            net.load_state_dict(shared)
            self.weights_changed()
        return scores

    @torch.no_grad()
    def _score(self, arch: Arch) -> dict[str, float]:
        net = self.supernet.eval()
        if self._stem is None:
            images, labels = self.data.valid
            x = model_input(images[: self.task.valid_images].to(self.device), self.data)
            self._stem, self._labels = net.stem(x), labels[: self.task.valid_images].to(self.device)
            self._memos = net.arch_independent()
        logits, _ = net.head(self._stem, self.space.cells(arch), self._memos)
        return {self.metric: float((logits.argmax(1) == self._labels).float().mean()) * 100.0,
                "valid_loss": float(torch.nn.functional.cross_entropy(logits, self._labels))}


# ----------------------------------------------------------------------------- supernet sampling rules
Draws = Iterator[Arch]


def _from_pool(weights: Callable[[SupernetEvaluator, list[Arch]], np.ndarray]):
    def draws(evaluator: SupernetEvaluator, pool: list[Arch], rng: np.random.Generator) -> Draws:
        p = weights(evaluator, pool)
        while True:
            yield pool[rng.choice(len(pool), p=p)]
    return draws


def _uniform(evaluator: SupernetEvaluator, pool: list[Arch]) -> np.ndarray:
    return np.full(len(pool), 1.0 / len(pool))


def _params_proportional(evaluator: SupernetEvaluator, pool: list[Arch]) -> np.ndarray:
    sizes = np.array([evaluator.parameters_of(a) for a in pool], dtype=float)
    return sizes / sizes.sum()


def _whole_space(evaluator: SupernetEvaluator, pool: list[Arch], rng: np.random.Generator) -> Draws:
    while True:
        yield evaluator.space.sample(rng)


def _fair_ops(evaluator: SupernetEvaluator, pool: list[Arch], rng: np.random.Generator) -> Draws:
    """FairNAS's strict fairness (Chu et al. 2021) for the ops: in every run of ``m`` mini-batches (``m`` ops), each
    op position of the cells takes every op exactly once (an independent permutation per position); inputs are
    drawn as ``space.sample`` draws them. FairNAS sums the ``m`` archs' gradients into one update; here each
    mini-batch is an update, so the ops get equal numbers of updates in a random order."""
    space = evaluator.space
    op_positions = np.flatnonzero(np.arange(space.seq_len) % 2 == 1)  # an arch is ``in op in op`` per node
    while True:
        runs = np.stack([rng.permutation(len(space.op_names)) for _ in op_positions], axis=1)
        for ops in runs:
            values = np.array(space.sample(rng))
            values[op_positions] = ops
            yield tuple(int(v) for v in values)


def _fair_outputs(evaluator: SupernetEvaluator, pool: list[Arch], rng: np.random.Generator) -> Draws:
    """The whole space, the states (cell inputs and nodes) output more equally: per mini-batch and cell type a state
    is drawn uniformly and cells are drawn as ``space.sample`` draws them until one outputs it. Under uniform
    sampling a ``nao-cnn`` cell outputs each input in 3 % of the draws, its first node in 11 % and its last in all,
    so the weights that read the early states (the output projection's columns, or the next cells' with
    ``concat_output``) train far less than the rest, and the wide cells that output them are judged with them;
    here the least output state is output in about 15 % of the draws (docs/cnn.md)."""
    space = evaluator.space
    half = space.seq_len // 2  # an arch is its normal cell's tokens, then its reduction cell's
    states = space.possible_output_states()  # drawing one no cell outputs would never end

    def cell_outputting(kind: int) -> tuple[int, ...]:
        state = states[rng.integers(len(states))]
        while True:
            arch = space.sample(rng)
            if state in space.output_states(space.cells(arch)[kind]):
                return tuple(arch[kind * half:(kind + 1) * half])

    while True:
        yield cell_outputting(0) + cell_outputting(1)


SAMPLERS: dict[str, Callable[[SupernetEvaluator, list[Arch], np.random.Generator], Draws]] = {
    "uniform": _from_pool(_uniform),  # uniformly from the pool (NAO-WS)
    "params": _from_pool(_params_proportional),  # from the pool, in proportion to the arch's weights (NAO-V2)
    "space": _whole_space,  # uniformly from the whole space (single-path one-shot, Guo et al. 2020)
    "fair": _fair_ops,  # the whole space, every op equally often (FairNAS)
    "outputs": _fair_outputs,  # the whole space, the states a cell outputs drawn more equally
}
"""``evaluator.task.sampling``: the archs a supernet stage trains, one per mini-batch, endless; each rule gets the
evaluator, the pool (every arch evaluated so far plus the new batch) and the stage's generator."""
