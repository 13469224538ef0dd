"""The controller: joint training, prediction, gradient-step proposals, determinism, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL

import nao
from nao.errors import ScoreError
from nao.predictors.metrics import kendall_tau
from nao.spaces import NB201Space


def test_fitted_controller_ranks_its_training_archs(fitted, nb201_table):
    archs, scores = zip(*nb201_table, strict=True)
    predicted = fitted.predict(archs)
    assert predicted.shape == (len(archs),)
    assert kendall_tau(np.array(scores), predicted) > 0.6
    assert abs(predicted.mean() - np.mean(scores)) < np.std(scores)  # same scale as the scores


def test_predict_accepts_text_forms(fitted, nb201_table):
    archs = [arch for arch, _ in nb201_table[:5]]
    texts = [fitted.space.format(a) for a in archs]
    np.testing.assert_array_equal(fitted.predict(texts), fitted.predict(archs))


def test_proposals_are_valid_distinct_unknown_and_best_first(fitted, nb201_table):
    archs, scores = zip(*nb201_table, strict=True)
    proposals = fitted.propose(archs, scores, n=30, top_k=20)
    space = fitted.space
    assert 0 < len(proposals) <= 30
    known = {space.canonical(a) for a in archs}
    keys = [space.canonical(p.arch) for p in proposals]
    assert len(set(keys)) == len(keys)
    assert not known & set(keys)
    for p in proposals:
        assert space.from_tokens(space.to_tokens(p.arch)) == p.arch
        assert np.isclose(fitted.config.step_sizes(), p.step).any()
    predicted = [p.predicted for p in proposals]
    assert predicted == sorted(predicted, reverse=True)
    np.testing.assert_allclose(predicted, fitted.predict([p.arch for p in proposals]))


def test_later_hops_start_from_the_previous_hops_best_and_reach_further(fitted, nb201_table):
    """With hops=3 the candidates include archs more edits away from every seed than one hop reaches."""
    archs, scores = zip(*nb201_table, strict=True)
    space = fitted.space
    top = [archs[i] for i in np.argsort(scores)[::-1][:5]]

    def distance(arch) -> int:  # edits from the nearest seed
        return min(sum(a != b for a, b in zip(arch, seed, strict=True)) for seed in top)

    one = fitted.propose(archs, scores, n=30, top_k=5)
    fitted.config.hops = 3
    try:
        three = fitted.propose(archs, scores, n=30, top_k=5)
    finally:
        fitted.config.hops = 1
    known = {space.canonical(a) for a in archs}
    assert len({space.canonical(p.arch) for p in three}) == len(three) and not known & {
        space.canonical(p.arch) for p in three}
    assert max(map(distance, (p.arch for p in three))) > max(map(distance, (p.arch for p in one)))


def test_proposals_beat_the_average_known_arch(fitted, nb201_table):
    from nao.tasks.synthetic import SyntheticBenchmark

    bench = SyntheticBenchmark(fitted.space)
    archs, scores = zip(*nb201_table, strict=True)
    proposals = fitted.propose(archs, scores, n=20, top_k=20)
    assert np.mean([bench.score(p.arch) for p in proposals]) > np.mean(scores)


def test_minimize_treats_lower_scores_as_better(nb201_table):
    archs, scores = zip(*nb201_table, strict=True)
    errors = 100.0 - np.array(scores)
    ctrl = nao.Controller("nb201", seed=3, minimize=True, **SMALL)
    ctrl.fit(archs, errors, epochs=300)
    assert kendall_tau(errors, ctrl.predict(archs)) > 0.6
    proposals = ctrl.propose(archs, errors, n=10, top_k=20)
    predicted = [p.predicted for p in proposals]
    assert predicted == sorted(predicted)  # best (lowest error) first


def test_same_seed_gives_the_same_model_and_proposals(nb201_table):
    archs, scores = zip(*nb201_table[:40], strict=True)
    runs = []
    for _ in range(2):
        ctrl = nao.Controller("nb201", seed=7, **SMALL)
        ctrl.fit(archs, scores, epochs=20)
        runs.append((ctrl.predict(archs), ctrl.propose(archs, scores, n=10, top_k=10)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_fit_leaves_the_global_torch_rng_alone(nb201_table):
    archs, scores = zip(*nb201_table[:20], strict=True)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    nao.Controller("nb201", seed=0, **SMALL).fit(archs, scores, epochs=2)
    assert torch.equal(torch.rand(3), expected)


def test_saved_and_loaded_controller_predicts_and_proposes_identically(fitted, nb201_table, tmp_path):
    archs, scores = zip(*nb201_table, strict=True)
    fitted.save(tmp_path / "model")
    loaded = nao.Controller.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(archs), fitted.predict(archs))
    assert loaded.propose(archs, scores, n=10) == fitted.propose(archs, scores, n=10)
    assert loaded.config == fitted.config


def test_teacher_forced_decoding_agrees_with_greedy_decoding(fitted, nb201_table):
    """Training runs the decoder in one call; it must see what step-by-step decoding sees."""
    archs = [arch for arch, _ in nb201_table[:50]]
    model = fitted.model
    with torch.no_grad():
        outputs, embedding = model.encoder(fitted._tokens(archs))
        greedy = model.decoder.greedy(embedding, outputs, fitted.mask_fn())
        logits = model.decoder(greedy, embedding, outputs)  # (B, T, V)
    masks = torch.tensor(fitted.space.position_masks())
    forced = logits.masked_fill(~masks, float("-inf")).argmax(dim=-1)
    assert torch.equal(forced, greedy)


def test_fitting_long_enough_reconstructs_the_training_archs(nb201_table):
    archs = [arch for arch, _ in nb201_table[:32]]
    ctrl = nao.Controller("nb201", seed=0, **SMALL)
    ctrl.fit(archs, np.arange(len(archs), dtype=float), epochs=600)
    tokens = np.array([ctrl.space.to_tokens(a) for a in archs])
    assert (ctrl.reconstruct(archs) == tokens).all(axis=1).mean() > 0.9


@pytest.mark.parametrize("scores, message", [
    ([90.0, 90.0, 90.0], "all 3 scores are equal"),
    ([90.0, float("nan"), 80.0], "NaN"),
    ([90.0], "at least 2"),
])
def test_unusable_scores_are_refused_clearly(nb201_table, scores, message):
    archs = [arch for arch, _ in nb201_table[:len(scores)]]
    with pytest.raises(ScoreError, match=message):
        nao.Controller("nb201", **SMALL).fit(archs, scores, epochs=1)


def test_unknown_hyperparameter_is_rejected():
    with pytest.raises(TypeError, match="hiden_dim"):
        nao.Controller("nb201", hiden_dim=3)


def test_a_user_space_works_without_touching_the_controller():
    space = NB201Space(n_nodes=3, name="tiny-nb201")
    nao.register_space(space, overwrite=True)
    rng = np.random.default_rng(0)
    archs = list({space.sample(rng) for _ in range(60)})
    scores = [sum(a) + 0.1 * a[0] for a in archs]
    ctrl = nao.Controller("tiny-nb201", seed=0, **SMALL)
    ctrl.fit(archs, scores, epochs=50)
    assert all(space.canonical(p.arch) not in {space.canonical(a) for a in archs}
               for p in ctrl.propose(archs, scores, n=5))


def test_predictor_heads_predict_their_mean_and_spread_on_one_shared_encoder(nb201_table):
    archs, scores = zip(*nb201_table, strict=True)
    train, held_out = (archs[:80], scores[:80]), archs[80:]
    ctrl = nao.Controller("nb201", seed=3, predictor_heads=4, **SMALL)
    ctrl.fit(*train, epochs=200)
    assert kendall_tau(np.array(train[1]), ctrl.predict(train[0])) > 0.6  # every head learns the scores
    mean, std = ctrl.predict_targets(held_out)
    np.testing.assert_allclose(ctrl.predict(held_out), ctrl.scaler.inverse(mean))  # the prediction is the mean
    heads = ctrl.model.predict_heads(ctrl._tokens(ctrl._archs(held_out))).detach().numpy()
    assert heads.shape == (len(held_out), 4)
    np.testing.assert_allclose(std, heads.std(axis=1), rtol=1e-5)
    assert np.all(std > 0)  # independently initialised heads disagree on archs they were not fitted on


def test_one_head_has_no_spread_and_the_weights_of_a_controller_without_heads(nb201_table, fitted):
    archs, _ = zip(*nb201_table, strict=True)
    np.testing.assert_array_equal(fitted.predict_targets(archs)[1], 0.0)
    assert all(not key.startswith("more_predictors") for key in fitted.model.state_dict())  # old checkpoints load


def test_an_ensemble_predicts_the_mean_of_controllers_fitted_from_seeds_a_thousand_apart(nb201_table, tmp_path):
    archs, scores = zip(*nb201_table, strict=True)
    ensemble = nao.ControllerEnsemble("nb201", members=3, seed=2, **SMALL)
    ensemble.fit(archs[:80], scores[:80], epochs=5)
    alone = []
    for seed in (2, 1002, 2002):
        ctrl = nao.Controller("nb201", seed=seed, **SMALL)
        ctrl.fit(archs[:80], scores[:80], epochs=5)
        alone.append(ctrl.predict(archs[80:]))
    np.testing.assert_allclose(ensemble.predict(archs[80:]), np.mean(alone, axis=0))
    assert not np.allclose(alone[0], alone[1])  # the members differ
    np.testing.assert_array_equal(ensemble.reconstruct(archs[:5]), ensemble.members[0].reconstruct(archs[:5]))

    ensemble.save(tmp_path / "ensemble")
    loaded = nao.controller.load_predictor(tmp_path / "ensemble")
    assert isinstance(loaded, nao.ControllerEnsemble) and len(loaded.members) == 3
    np.testing.assert_array_equal(loaded.predict(archs[80:]), ensemble.predict(archs[80:]))
    with pytest.raises(nao.UserError, match=r"an ensemble of controllers .* e.g. .*member0"):
        nao.Controller.load(tmp_path / "ensemble")
    np.testing.assert_array_equal(nao.Controller.load(tmp_path / "ensemble" / "member0").predict(archs[80:]),
                                  alone[0])
    ensemble.members[1].save(tmp_path / "ensemble")  # a controller saved over the ensemble replaces it
    np.testing.assert_array_equal(nao.controller.load_predictor(tmp_path / "ensemble").predict(archs[80:]), alone[1])
    assert sorted(p.name for p in (tmp_path / "ensemble").iterdir()) == ["controller.json", "weights.pt"]


def test_saving_replaces_what_was_saved_in_the_directory_before_and_keeps_everything_else(tmp_path):
    out = tmp_path / "model"
    nao.ControllerEnsemble("nb201", members=3, seed=0, **SMALL).save(out)
    (out / "notes.txt").write_text("mine")
    (out / "member2" / "plot.png").write_bytes(b"mine")
    smaller = nao.ControllerEnsemble("nb201", members=2, seed=7, **SMALL)
    smaller.save(out)  # two members over three: the third goes, but not what a user put beside it
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member0", "member1", "member2", "notes.txt"]
    assert sorted(p.name for p in (out / "member2").iterdir()) == ["plot.png"]
    loaded = nao.ControllerEnsemble.load(out)
    assert len(loaded.members) == 2 and loaded.seed == 7
    nao.Controller("nb201", seed=3, **SMALL).save(out)  # one controller over the ensemble
    assert sorted(p.name for p in out.iterdir()) == ["controller.json", "member2", "notes.txt", "weights.pt"]
    nao.ControllerEnsemble("nb201", members=2, seed=5, **SMALL).save(out)  # and an ensemble over the controller
    assert not (out / "controller.json").exists() and nao.controller.load_predictor(out).seed == 5


@pytest.mark.parametrize("content", ["{}", '{"members": [], "seed": 0}', '{"members": [1], "seed": 0}', "[1]", "{"])
def test_a_malformed_ensemble_file_is_one_clear_error(tmp_path, content):
    (tmp_path / "ensemble.json").write_text(content)
    with pytest.raises(nao.UserError, match=r"not a saved controller ensemble"):
        nao.ControllerEnsemble.load(tmp_path)
