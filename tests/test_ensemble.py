"""The classifier ensemble of ``pimc fit``: the network and a self-trained random forest on the
index series, stored in the model file and mixed by the map."""

from __future__ import annotations

import numpy as np
import pytest

from pimc_core.errors import ConfigError
from pimc_core.fit import fit
from pimc_core.learn.ensemble import EnsembleConfig, pseudo_labels, train_forest_member
from pimc_core.learn.sampling import PixelSamples
from pimc_core.models.forest import series_features, train_forest
from pimc_core.models.model_file import load_model, read_metadata
from pimc_core.models.pixel_model import load_pixel_model
from tests.test_fit import TINY, stack  # noqa: F401 - the module fixture


def test_pseudo_labels_are_confident_agreed_and_balanced_over_classes():
    prob = np.array([[0.9, 0.1], [0.95, 0.05], [0.99, 0.01], [0.2, 0.8], [0.1, 0.9], [0.5, 0.5]])
    agree = np.array([True, True, True, True, False, True])
    idx, cls = pseudo_labels(prob, agree, threshold=0.8, most=4)  # 2 per class at most
    np.testing.assert_array_equal(idx, [1, 2, 3])  # the two most confident of class 0; 4 disagrees; 5 is unsure
    np.testing.assert_array_equal(cls, [0, 0, 1])
    assert pseudo_labels(prob, agree, threshold=0.999, most=4)[0].size == 0


def _samples(series: np.ndarray, labels: np.ndarray) -> PixelSamples:
    n = len(series)
    return PixelSamples(series=series, patches=None, labels=labels, rows=np.arange(n), cols=np.zeros(n, np.int64),
                        n_valid=np.full(n, series.shape[2]), indices=("ndvi",))


def test_a_later_round_draws_its_pseudo_labels_from_the_teacher_forest():
    rng = np.random.default_rng(0)
    level = np.r_[np.full(20, 0.2), np.full(20, 0.7)]  # class 1 low, class 2 high
    lab = _samples((level[:, None, None] + rng.normal(0, 0.02, (40, 1, 8))).astype(np.float32), np.r_[[1] * 20, [2] * 20])
    scene = _samples(rng.uniform(0, 0.9, (200, 1, 8)).astype(np.float32), np.zeros(200, np.int64))
    cfg = EnsembleConfig(trees=10, pseudo_threshold=0.6, pseudo_max=1000)

    def says_2(s):  # a network sure that every pixel is class 2
        return np.tile([0.0, 1.0], (len(s), 1))

    _, first, pseudo = train_forest_member(says_2, lab, scene, [1, 2], cfg, seed=0)
    # the forest on the labels calls the low pixels 1: they disagree with the network, no pseudo-label
    low = scene.series.mean(axis=(1, 2)) < 0.35
    assert first["pseudo_labelled"] > 0 and set(pseudo.labels) == {2} and not low[pseudo.rows].any()
    teacher = train_forest(series_features(scene.series), np.ones(200, np.int64), 2, trees=5, seed=0)  # all class 2
    _, later, pseudo = train_forest_member(says_2, lab, scene, [1, 2], cfg, seed=0, teacher=teacher)
    assert later["pseudo_labelled"] == 200 and set(pseudo.labels) == {2}  # the low pixels too, now


def test_a_later_round_trains_no_labels_only_forest(monkeypatch):
    from pimc_core.learn import ensemble

    rng = np.random.default_rng(0)
    lab = _samples(rng.uniform(0, 0.9, (40, 1, 8)).astype(np.float32), np.r_[[1] * 20, [2] * 20])
    scene = _samples(rng.uniform(0, 0.9, (200, 1, 8)).astype(np.float32), np.zeros(200, np.int64))
    teacher = train_forest(series_features(scene.series), np.zeros(200, np.int64), 2, trees=5, seed=0)  # all class 1
    trained = []

    def counting(x, y, *a, **k):
        trained.append(len(y))
        return train_forest(x, y, *a, **k)

    monkeypatch.setattr(ensemble, "train_forest", counting)
    cfg = EnsembleConfig(trees=5, pseudo_threshold=0.6, pseudo_max=1000)
    _, summary, _ = train_forest_member(lambda s: np.tile([0.0, 1.0], (len(s), 1)), lab, scene, [1, 2], cfg, seed=0,
                                        teacher=teacher)
    # the teacher calls every pixel 1, the network 2: no pseudo-label, so the labels-only forest is the member
    assert summary["pseudo_labelled"] == 0 and trained == [40]
    trained.clear()
    _, summary, _ = train_forest_member(lambda s: np.tile([1.0, 0.0], (len(s), 1)), lab, scene, [1, 2], cfg, seed=0,
                                        teacher=teacher)
    # they agree: one forest, on the labels and the pseudo-labels, none on the labels alone
    assert summary["pseudo_labelled"] > 0 and trained == [40 + summary["pseudo_labelled"]]
    trained.clear()
    level = np.r_[np.full(20, 0.2), np.full(20, 0.7)]  # class 1 low, class 2 high
    lab = _samples((level[:, None, None] + rng.normal(0, 0.02, (40, 1, 8))).astype(np.float32), np.r_[[1] * 20, [2] * 20])
    low = _samples(np.full((50, 1, 8), 0.2, np.float32), np.zeros(50, np.int64))
    _, summary, _ = train_forest_member(lambda s: np.tile([0.0, 1.0], (len(s), 1)), lab, low, [1, 2], cfg, seed=0)
    # a first round without pseudo-labels: its teacher, the labels-only forest, is the member, trained once
    assert summary["pseudo_labelled"] == 0 and trained == [40]


def test_a_round_without_pseudo_labels_keeps_the_round_before(monkeypatch):
    from pimc_core.fit import pipeline

    given = iter([("forest 1", {"round": 1}, "pseudo 1"), ("labels-only forest", {"round": 2}, None)])
    tuned = []
    monkeypatch.setattr(pipeline, "train_forest", lambda *a, **k: next(given))
    monkeypatch.setattr(pipeline.sampling.PixelSamples, "concat", staticmethod(lambda parts: parts[1]))
    monkeypatch.setattr(pipeline, "train_classifier", lambda net, samples, *a, **k: tuned.append(samples))
    forest, summary = pipeline.self_train(None, "labelled", "scene", [1, 2], EnsembleConfig(network_rounds=3), None,
                                          seed=0, device=None)
    assert forest == "forest 1" and summary == {"round": 1, "rounds": 1} and tuned == ["pseudo 1"]


def test_ensemble_settings_are_checked():
    with pytest.raises(ConfigError, match="ensemble.forest_weight"):
        EnsembleConfig(forest_weight=1.5)
    with pytest.raises(ConfigError, match="ensemble.trees"):
        EnsembleConfig(trees=0)


def test_fit_stores_a_self_trained_forest_and_the_map_mixes_it(stack, tmp_path):  # noqa: F811
    cfg = {**TINY, "forecast": {"enabled": False}, "ensemble": {"forest_weight": 0.5, "trees": 8, "pseudo_threshold": 0.3,
                                                                         "network_rounds": 0}}
    out = fit(stack.manifest, stack.labels_sparse, tmp_path / "m.pimc", classes=stack.classes_json, config=cfg,
              progress=False).path
    ens = read_metadata(out)["training"]["ensemble"]
    assert ens["forest_weight"] == 0.5 and ens["trees"] == 8 and ens["pseudo_labelled"] > 0
    assert sum(ens["pseudo_per_class"].values()) == ens["pseudo_labelled"]
    weights = load_model(out)[0]
    assert set(weights["forest"]) >= {"feature", "threshold", "left", "right", "value", "roots"}

    model = load_pixel_model(out)
    assert model.forest is not None and model.forest.n_trees == 8 and model.forest_weight == 0.5
    x = np.random.default_rng(0).uniform(0, 0.8, (20, 3, 10)).astype(np.float32)
    mixed = model.predict(x, outputs=("probabilities",))["probabilities"]
    model.forest_weight = 0.0
    net_only = model.predict(x, outputs=("probabilities",))["probabilities"]
    want = 0.5 * net_only + 0.5 * model.forest.predict_proba(series_features(x))
    np.testing.assert_allclose(mixed, want, atol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1, atol=1e-5)

    # forest_weight 0: the network alone, as before the ensemble (no forest in the file)
    # a round of the network on the labelled and pseudo-labelled pixels changes its classifier
    again = fit(stack.manifest, stack.labels_sparse, tmp_path / "r.pimc", classes=stack.classes_json,
                config={**cfg, "ensemble": {**cfg["ensemble"], "network_rounds": 1}}, progress=False).path
    w1, w2 = load_model(out)[0]["classifier"], load_model(again)[0]["classifier"]
    assert any(not np.array_equal(w1[k].numpy(), w2[k].numpy()) for k in w1)
    np.testing.assert_array_equal(load_model(again)[0]["forest"]["value"].numpy(), weights["forest"]["value"].numpy())
    # a second round draws pseudo-labels afresh from the first round's network and forest: both change
    twice = fit(stack.manifest, stack.labels_sparse, tmp_path / "r2.pimc", classes=stack.classes_json,
                config={**cfg, "ensemble": {**cfg["ensemble"], "network_rounds": 2}}, progress=False).path
    w3 = load_model(twice)[0]
    assert any(not np.array_equal(w2[k].numpy(), w3["classifier"][k].numpy()) for k in w2)
    assert not np.array_equal(w3["forest"]["value"].numpy(), weights["forest"]["value"].numpy())
    assert read_metadata(twice)["training"]["ensemble"]["rounds"] == 2

    off = fit(stack.manifest, stack.labels_sparse, tmp_path / "n.pimc", config={**cfg, "ensemble": {"forest_weight": 0}},
              progress=False).path
    assert "forest" not in load_model(off)[0] and load_pixel_model(off).forest is None
