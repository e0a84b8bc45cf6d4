"""The classifier ensemble of ``pimc fit``: the network and a self-trained random forest on the
index series, stored in the model file and mixed by the map."""

from __future__ import annotations

import numpy as np
import pytest

from pimc_core.errors import ConfigError
from pimc_core.fit import fit
from pimc_core.learn.ensemble import EnsembleConfig, pseudo_labels
from pimc_core.models.forest import series_features
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

    off = fit(stack.manifest, stack.labels_sparse, tmp_path / "n.pimc", config={**cfg, "ensemble": {"forest_weight": 0}},
              progress=False).path
    assert "forest" not in load_model(off)[0] and load_pixel_model(off).forest is None
