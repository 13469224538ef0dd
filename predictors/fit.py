"""Fit a controller on existing (arch, score) results and measure how it ranks held-out archs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from nao.controller import Controller, ControllerEnsemble
from nao.errors import UserError
from nao.predictors.metrics import ranking_report, reconstruction_accuracy
from nao.spaces.base import Arch, SearchSpace


def split_holdout(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, holdout) index split; ``holdout`` is a fraction in [0, 1)."""
    if not 0.0 <= holdout < 1.0:
        raise UserError(f"--holdout must be in [0, 1), got {holdout}")
    order = np.random.default_rng(seed).permutation(n)
    n_holdout = round(holdout * n)
    if holdout > 0 and (n_holdout < 2 or n - n_holdout < 2):
        raise UserError(f"--holdout {holdout} of {n} rows leaves {n - n_holdout} to fit and {n_holdout} "
                        "to test; each needs at least 2 (use --holdout 0 to fit on every row)")
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


def evaluate(ctrl: Controller | ControllerEnsemble, archs: Sequence[Arch], scores: np.ndarray, *, k: int = 10) -> dict:
    """Ranking metrics and decoder reconstruction accuracy of ``ctrl`` on (archs, scores).

    Scores and predictions are oriented so that higher is better before ranking, so
    ``precision_at_k`` always asks about the best archs.
    """
    sign = -1.0 if ctrl.minimize else 1.0
    predicted = ctrl.predict(archs)
    report = ranking_report(sign * np.asarray(scores), sign * predicted, k=min(k, len(archs)))
    true_tokens = np.asarray([ctrl.space.to_tokens(a) for a in archs])
    report["reconstruction_acc"] = reconstruction_accuracy(true_tokens, ctrl.reconstruct(archs))
    return report


def fit_predictor(space: SearchSpace, archs: Sequence[Arch], scores: Sequence[float], *, holdout: float = 0.1,
                  seed: int = 0, minimize: bool = False, k: int = 10, members: int = 1,
                  progress: Callable[[int, float], None] | None = None,
                  **hyper) -> tuple[Controller | ControllerEnsemble, dict]:
    """Fit on a random ``1 - holdout`` share, report metrics on the rest (``nao predictor fit``); ``members`` > 1:
    an ensemble of that many controllers (``ControllerEnsemble``), its ranking reported on the mean prediction and
    its ``reconstruction_acc`` on the first member's decoder (the one ``propose`` would use)."""
    started = time.perf_counter()
    scores = np.asarray(scores, dtype=np.float64)
    train, test = split_holdout(len(archs), holdout, seed)
    ctrl = (Controller(space, seed=seed, minimize=minimize, **hyper) if members == 1
            else ControllerEnsemble(space, members=members, seed=seed, minimize=minimize, **hyper))
    ctrl.fit([archs[i] for i in train], scores[train], progress=progress)
    names = ["kendall_tau", "spearman", "pairwise_acc", "precision_at_k", "mae", "reconstruction_acc"]
    report = dict.fromkeys(names)
    if len(test):
        report.update(evaluate(ctrl, [archs[i] for i in test], scores[test], k=k))
    report.update(k=min(k, len(test)), n_train=len(train), n_holdout=len(test), members=members,
                  seconds=round(time.perf_counter() - started, 2))
    return ctrl, report
