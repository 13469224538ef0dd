"""``nao.Controller``: fit the encoder-predictor-decoder, predict scores, propose new archs."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nao.config import ConfigValueError, at_least, one_of
from nao.controller.model import EncoderPredictorDecoder
from nao.controller.proposals import Proposal, propose
from nao.controller.targets import TRANSFORMS, TargetScaler
from nao.encoders.attention_decoder import grammar_mask_fn
from nao.errors import ModelDirError, ScoreError
from nao.spaces import get_space
from nao.spaces.base import Arch, SearchSpace
from nao.torchutils import resolve_device, seeded

CONFIG_FILE = "controller.json"
WEIGHTS_FILE = "weights.pt"
ENSEMBLE_FILE = "ensemble.json"  # written by ControllerEnsemble.save beside its members' directories
FORMAT_VERSION = 1


@dataclass
class ControllerConfig:
    """Hyperparameters of the controller (defaults: NAO-V1 sizes, see nao-facts.md section 3)."""

    embedding_dim: int = 48
    hidden_dim: int = 96
    mlp_layers: int = 3
    mlp_dim: int = 200
    dropout: float = 0.0  # encoder and MLP; 0.1 costs ~0.03 Kendall tau on NB201 (docs/benchmarks.md)
    predictor_heads: int = 1  # > 1: an ensemble of MLP heads on the embedding, its spread the uncertainty that
    #                           Thompson sampling needs (NAOConfig.acquisition); the prediction is the heads' mean
    trade_off: float = 0.8  # lambda in  lambda * MSE + (1 - lambda) * NLL
    target_transform: str = "rank"  # "rank" (normal quantiles of the ranks) or "zscore"; see TargetScaler
    lr: float = 2e-3  # NAO uses 1e-3; 2e-3 ranks better on NB201 at the same cost (docs/benchmarks.md)
    weight_decay: float = 1e-4
    batch_size: int = 100
    epochs: int = 1000
    grad_clip: float = 5.0
    augment: bool = True  # train on a random equivalent token sequence of each arch every epoch
    max_equivalents: int = 64  # equivalents kept per arch for augmentation
    predict_equivalents: bool = False  # predict() averages over up to max_equivalents equivalent sequences (slower)
    max_step: float = 2.0  # proposals move encoder outputs by up to this (RMS, on the unit sphere)
    n_steps: int = 20  # step sizes max_step/n_steps, 2*max_step/n_steps, ..., max_step
    candidate_factor: float = 5.0  # decode up to factor * n new archs, keep the n best predicted (docs/benchmarks.md)
    hops: int = 1  # > 1: step again from the best-predicted new archs of the previous hop (proposals that leave
    #                the seeds' neighbourhood: several edits away where the predictor says it is better)
    device: str = "auto"  # "auto" = CUDA when present, else CPU

    def __post_init__(self) -> None:
        at_least(self, embedding_dim=1, hidden_dim=1, mlp_layers=0, mlp_dim=1, dropout=0.0, trade_off=0.0, lr=0.0,
                 weight_decay=0.0, batch_size=1, epochs=1, grad_clip=0.0, max_equivalents=1, max_step=0.0,
                 n_steps=1, candidate_factor=1.0, hops=1, predictor_heads=1)
        for key in ("dropout", "trade_off"):
            if getattr(self, key) > 1:
                raise ConfigValueError(key, f"must be at most 1, got {getattr(self, key)!r}")
        one_of(self, "target_transform", TRANSFORMS)

    def step_sizes(self) -> np.ndarray:
        return np.linspace(self.max_step / self.n_steps, self.max_step, self.n_steps)


class Controller:
    """NAO's encoder-predictor-decoder with the workflow around it.

    >>> ctrl = Controller(get_space("nb201"), seed=0, epochs=200)
    >>> ctrl.fit(archs, scores); ctrl.predict(archs); ctrl.propose(archs, scores, n=10)
    """

    def __init__(self, space: SearchSpace | str, *, seed: int = 0, minimize: bool = False, **hyper) -> None:
        self.space = get_space(space) if isinstance(space, str) else space
        self.seed = seed
        self.minimize = minimize
        known = {f.name for f in fields(ControllerConfig)}
        unknown = sorted(set(hyper) - known)
        if unknown:
            raise TypeError(f"unknown controller hyperparameter(s): {', '.join(unknown)}")
        self.config = ControllerConfig(**hyper)
        self.device = resolve_device(self.config.device)
        self.scaler: TargetScaler | None = None
        self._fits = 0  # number of fit() calls so far: warm starts draw fresh randomness
        with seeded(seed):
            self.model = EncoderPredictorDecoder(
                vocab_size=self.space.vocab_size, seq_len=self.space.seq_len,
                group_size=self.space.group_size, embedding_dim=self.config.embedding_dim,
                hidden_dim=self.config.hidden_dim, mlp_layers=self.config.mlp_layers,
                mlp_dim=self.config.mlp_dim, dropout=self.config.dropout,
                predictor_heads=self.config.predictor_heads,
            ).to(self.device)

    # ----------------------------------------------------------------------------- helpers
    def _archs(self, archs: Iterable[Arch | str]) -> list[Arch]:
        return [self.space.parse(a) if isinstance(a, str) else a for a in archs]

    def _tokens(self, archs: Sequence[Arch]) -> torch.Tensor:
        rows = [self.space.to_tokens(a) for a in archs]
        return torch.tensor(np.asarray(rows, dtype=np.int64).reshape(len(rows), self.space.seq_len),
                            device=self.device)

    def _augmentation_pool(self, archs: Sequence[Arch], rng: np.random.Generator) -> list[np.ndarray]:
        """Per arch, an array (n_equivalents, T) of token sequences of the same network."""
        pools = []
        for arch in archs:
            variants = self.space.equivalents(arch) if self.config.augment else [arch]
            if len(variants) > self.config.max_equivalents:
                picked = rng.choice(len(variants), self.config.max_equivalents - 1, replace=False)
                variants = [arch] + [variants[i] for i in picked]
            pools.append(np.asarray([self.space.to_tokens(v) for v in variants], dtype=np.int64))
        return pools

    # ----------------------------------------------------------------------------- training
    def fit(self, archs: Iterable[Arch | str], scores: Sequence[float], *, epochs: int | None = None,
            progress: Callable[[int, float], None] | None = None) -> dict:
        """Train jointly on (arch, score) pairs; a second call warm-starts from the current weights.

        ``progress(epoch, loss)`` is called after every epoch. Returns the last epoch's losses.
        """
        archs = self._archs(archs)
        scores = np.asarray(scores, dtype=np.float64)
        if len(archs) != len(scores):
            raise ScoreError(f"{len(archs)} archs but {len(scores)} scores")
        self.scaler = TargetScaler.fit(scores, minimize=self.minimize, kind=self.config.target_transform)
        targets = torch.tensor(self.scaler.transform(scores), dtype=torch.float32, device=self.device)
        cfg = self.config
        rng = np.random.default_rng([self.seed, self._fits])
        pools = self._augmentation_pool(archs, rng)
        pool_sizes = np.array([len(p) for p in pools])
        flat = torch.tensor(np.concatenate(pools), device=self.device)  # (sum of pool sizes, T)
        offsets = np.concatenate([[0], np.cumsum(pool_sizes)[:-1]])
        optimizer = _adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        n = len(archs)
        losses = {}
        with seeded(int(rng.integers(2**62))):
            self.model.train()
            for epoch in range(epochs if epochs is not None else cfg.epochs):
                choice = torch.tensor(offsets + (rng.random(n) * pool_sizes).astype(np.int64), device=self.device)
                order = torch.tensor(rng.permutation(n), device=self.device)
                total = {"mse": 0.0, "nll": 0.0}
                for start in range(0, n, cfg.batch_size):
                    index = order[start:start + cfg.batch_size]
                    tokens = flat[choice[index]]  # (B, T)
                    predicted, logits = self.model(tokens)
                    mse = F.mse_loss(predicted, targets[index, None].expand_as(predicted))  # every head
                    nll = F.cross_entropy(logits.flatten(0, 1), tokens.flatten())
                    loss = cfg.trade_off * mse + (1 - cfg.trade_off) * nll
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip, foreach=True)
                    optimizer.step()
                    total["mse"] += mse.item() * len(index)
                    total["nll"] += nll.item() * len(index)
                losses = {k: v / n for k, v in total.items()}
                if progress is not None:
                    progress(epoch, cfg.trade_off * losses["mse"] + (1 - cfg.trade_off) * losses["nll"])
        self.model.eval()
        self._fits += 1
        return losses

    # ----------------------------------------------------------------------------- inference
    def _require_fitted(self) -> TargetScaler:
        if self.scaler is None:
            raise RuntimeError("the controller is not fitted yet: call fit() first")
        return self.scaler

    def predict(self, archs: Iterable[Arch | str], *, batch_size: int = 4096) -> np.ndarray:
        """Predicted scores (the heads' mean), on the scale of the training scores.

        With ``predict_equivalents`` (and ``augment``), each arch's prediction is the mean over its
        equivalent token sequences (at most ``max_equivalents``), the ones training sees.
        """
        return self._require_fitted().inverse(self.predict_targets(archs, batch_size=batch_size)[0])

    @torch.no_grad()
    def predict_targets(self, archs: Iterable[Arch | str], *, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Each arch's mean and standard deviation over the predictor heads, on the training targets' scale
        (higher is better; the standard deviation is 0 with one head). Thompson sampling draws from these."""
        self._require_fitted()
        archs = self._archs(archs)
        self.model.eval()
        if not archs:
            return np.zeros(0), np.zeros(0)
        sizes = None
        if self.config.predict_equivalents and self.config.augment:
            pools = self._augmentation_pool(archs, np.random.default_rng(self.seed))
            sizes = np.array([len(p) for p in pools])
            tokens = torch.tensor(np.concatenate(pools), device=self.device)
        else:
            tokens = self._tokens(archs)
        heads = np.concatenate([self.model.predict_heads(tokens[i:i + batch_size]).cpu().numpy()
                                for i in range(0, len(tokens), batch_size)]).astype(np.float64)  # (rows, heads)
        if sizes is not None:  # mean over each arch's equivalent sequences
            heads = np.add.reduceat(heads, np.concatenate([[0], np.cumsum(sizes)[:-1]]), axis=0) / sizes[:, None]
        return heads.mean(axis=1), heads.std(axis=1)

    @torch.no_grad()
    def reconstruct(self, archs: Iterable[Arch | str]) -> np.ndarray:
        """Greedy decoding of each arch from its own embedding: (N, T) tokens."""
        archs = self._archs(archs)
        self.model.eval()
        outputs, embedding = self.model.encoder(self._tokens(archs))
        return self.model.decoder.greedy(embedding, outputs, self.mask_fn()).cpu().numpy()

    def mask_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The space's grammar as a batched mask function for the decoder."""
        return grammar_mask_fn(self.space, self.device)

    def propose(self, archs: Iterable[Arch | str], scores: Sequence[float], *, n: int = 100,
                top_k: int = 100) -> list[Proposal]:
        """New archs (not equivalent to any in ``archs``) by gradient steps from the top ``top_k``.

        Step sizes grow until ``candidate_factor * n`` new archs are decoded (or the largest step
        is reached); with ``hops`` > 1, the same again from the ``top_k`` best-predicted new archs,
        ``hops`` times. The ``n`` with the best predicted scores among all are returned, best first,
        each with its predicted score and the step size that produced it.
        """
        scaler = self._require_fitted()
        archs = self._archs(archs)
        scores = np.asarray(scores, dtype=np.float64)
        if len(archs) != len(scores):
            raise ScoreError(f"{len(archs)} archs but {len(scores)} scores")
        order = np.argsort(scaler.transform(scores), kind="stable")[::-1][:top_k]
        wanted = max(n, int(np.ceil(self.config.candidate_factor * n)))
        seeds, known, found = [archs[i] for i in order], list(archs), []
        for hop in range(self.config.hops):
            new = propose(self, seeds, known=known, n=wanted, step_sizes=self.config.step_sizes())
            if not new:
                break
            found += new
            known += [p.arch for p in new]
            if hop + 1 < self.config.hops:  # the next hop starts from this hop's best-predicted archs
                predicted = scaler.transform(self.predict([p.arch for p in new]))
                seeds = [new[i].arch for i in np.argsort(predicted, kind="stable")[::-1][:top_k]]
        predicted = self.predict([p.arch for p in found]) if found else np.zeros(0)
        ranked = sorted(zip(found, predicted, strict=True), key=lambda pair: scaler.transform(pair[1]), reverse=True)
        return [Proposal(arch=p.arch, predicted=float(score), step=p.step) for p, score in ranked[:n]]

    # ----------------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write ``weights.pt`` then ``controller.json`` (last, so a half-written dir never loads); a controller or an
        ensemble saved in ``path`` before is removed first (:func:`remove_saved`)."""
        path = Path(path)
        remove_saved(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write(path / WEIGHTS_FILE, lambda f: torch.save(self.model.state_dict(), f))
        meta = {"format": FORMAT_VERSION, "space": self.space.name, "seed": self.seed,
                "minimize": self.minimize, "fits": self._fits, "config": asdict(self.config),
                "scaler": self.scaler.to_dict() if self.scaler else None}
        atomic_write(path / CONFIG_FILE, lambda f: f.write(json.dumps(meta, indent=2).encode()))

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> Controller:
        path = Path(path)
        if (path / ENSEMBLE_FILE).exists():
            raise ModelDirError(f"{path}: an ensemble of controllers (nao predictor fit --members), which predicts "
                                f"but does not propose; use one of its members, e.g. {path / 'member0'}")
        try:
            meta = json.loads((path / CONFIG_FILE).read_text())
            state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        except (OSError, ValueError, RuntimeError) as err:
            raise ModelDirError(f"{path}: not a saved controller ({err})") from None
        config = dict(meta["config"])
        if device is not None:
            config["device"] = device
        ctrl = cls(meta["space"], seed=meta["seed"], minimize=meta["minimize"], **config)
        ctrl.model.load_state_dict(state)
        ctrl.model.eval()
        ctrl.scaler = TargetScaler.from_dict(meta["scaler"]) if meta["scaler"] else None
        ctrl._fits = meta["fits"]
        return ctrl


def _adam(params, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel (4x faster steps on CPU than the per-tensor loop), where torch has it."""
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # torch < 2.4 has no fused Adam on CPU
        return torch.optim.Adam(params, foreach=True, **kwargs)


def remove_saved(path: Path) -> None:
    """Remove what ``Controller.save`` or ``ControllerEnsemble.save`` wrote in ``path`` (nothing else): the file that
    makes it load first (``ensemble.json``, ``controller.json``), so an interrupted removal or the save that follows
    never leaves a mix of old and new that loads; then the weights and an ensemble's member directories."""
    try:
        members = json.loads((path / ENSEMBLE_FILE).read_text()).get("members", [])
    except (OSError, ValueError, AttributeError):
        members = []
    for name in (ENSEMBLE_FILE, CONFIG_FILE, WEIGHTS_FILE):
        (path / name).unlink(missing_ok=True)
    for name in members:
        if isinstance(name, str) and re.fullmatch(r"member\d+", name):
            remove_saved(path / name)
            with contextlib.suppress(OSError):  # keeps what a user put there
                (path / name).rmdir()


def atomic_write(path: Path, write: Callable) -> None:
    """``write(f)`` into a temporary file beside ``path``, then renamed onto it: ``path`` is never half-written."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)
