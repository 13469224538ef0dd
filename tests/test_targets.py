"""Target transforms of the controller's predictor, and prediction over equivalent sequences."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SMALL

import nao
from nao.controller.targets import TargetScaler


@pytest.mark.parametrize("minimize", [False, True])
def test_rank_transform_is_monotone_invertible_and_tie_aware(minimize):
    scores = np.array([10.0, 50.0, 50.0, 80.0, 90.0, 91.0])
    scaler = TargetScaler.fit(scores, minimize=minimize, kind="rank")
    targets = scaler.transform(scores)
    assert targets[1] == targets[2]  # tied scores share a target
    oriented = np.diff(targets) * (-1 if minimize else 1)
    assert np.all(oriented[[0, 2, 3, 4]] > 0)
    np.testing.assert_allclose([targets.min(), targets.max()], [-1.383, 1.383], atol=1e-3)  # Phi^-1(1/12), ..
    np.testing.assert_allclose(scaler.inverse(targets), scores)
    wide = np.linspace(-50.0, 150.0, 201)  # beyond the training scores too: strictly monotone, no clamping
    steps = np.diff(scaler.transform(wide)) * (-1 if minimize else 1)
    assert np.all(steps > 0)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(wide)), wide, atol=1e-9)


def test_scalers_survive_a_json_round_trip():
    scores = np.array([1.0, 3.0, 2.0, 7.0])
    for kind in ("zscore", "rank"):
        scaler = TargetScaler.fit(scores, minimize=False, kind=kind)
        assert TargetScaler.from_dict(json.loads(json.dumps(scaler.to_dict()))) == scaler


def test_unknown_target_transform_is_refused():
    with pytest.raises(ValueError, match="target transform"):
        TargetScaler.fit(np.array([1.0, 2.0]), minimize=False, kind="minmax")


def test_rank_targets_train_save_and_load(nb201_table, tmp_path):
    archs, scores = zip(*nb201_table, strict=True)
    ctrl = nao.Controller("nb201", seed=0, target_transform="rank", predict_equivalents=True, **SMALL)
    losses = ctrl.fit(archs, scores, epochs=5)
    assert set(losses) == {"mse", "nll"}
    predicted = ctrl.predict(archs)
    assert np.all(np.isfinite(predicted))
    ctrl.save(tmp_path / "model")
    np.testing.assert_array_equal(nao.Controller.load(tmp_path / "model").predict(archs), predicted)


def test_predicting_over_equivalents_scores_equivalent_archs_alike(nb201_table):
    archs, scores = zip(*nb201_table[:40], strict=True)
    ctrl = nao.Controller("nb201", seed=0, predict_equivalents=True, max_equivalents=10**6, **SMALL)
    ctrl.fit(archs, scores, epochs=5)
    space = ctrl.space
    arch = next(a for a in archs if len(space.equivalents(a)) > 1)
    others = [e for e in space.equivalents(arch) if e != arch][:3]
    np.testing.assert_allclose(ctrl.predict(others), ctrl.predict([arch]).repeat(len(others)), rtol=1e-5)
