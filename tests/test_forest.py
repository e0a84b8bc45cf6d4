"""The forest member of the classifier ensemble: arrays that predict as scikit-learn does."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from pimc_core.errors import InputError
from pimc_core.models.forest import ArrayForest, series_features, train_forest


def _data(seed=0, n=300, c=3, t=12, k=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(0, 1, (n, c, t)).astype(np.float32) + y[:, None, None] * 0.3
    return series_features(x), y


def test_array_forest_gives_scikit_learns_probabilities():
    x, y = _data()
    rf = RandomForestClassifier(n_estimators=25, random_state=3).fit(x, y)
    forest = ArrayForest.from_sklearn(rf, 4)
    xt, _ = _data(seed=1, n=500)
    np.testing.assert_allclose(forest.predict_proba(xt), rf.predict_proba(xt), atol=1e-6)
    assert forest.n_trees == 25 and forest.n_classes == 4 and x.shape[1] == forest.n_features == 36


def test_classes_missing_from_the_labels_get_probability_zero_and_the_same_seed_the_same_forest():
    x, y = _data()
    y = np.where(y == 2, 1, y)  # class 2 of 5 never labelled
    a = train_forest(x, y, 5, trees=10, seed=4)
    b = train_forest(x, y, 5, trees=10, seed=4, threads=2)
    p = a.predict_proba(x)
    assert p.shape == (300, 5) and np.all(p[:, 2] == 0) and np.all(p[:, 4] == 0)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    for k, v in a.tensors().items():
        np.testing.assert_array_equal(v, b.tensors()[k])


def test_tensors_round_trip_and_broken_arrays_are_refused_by_name():
    x, y = _data()
    a = train_forest(x, y, 4, trees=5, seed=0)
    t = a.tensors()
    b = ArrayForest.from_tensors(t)
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    with pytest.raises(InputError, match="m.pimc: the forest lacks its array 'value'"):
        ArrayForest.from_tensors({k: v for k, v in t.items() if k != "value"}, "m.pimc")
    loop = dict(t, left=np.where(t["left"] >= 0, 0, -1).astype(np.int32))  # a child pointing back at the root
    with pytest.raises(InputError, match="do not fit together"):
        ArrayForest.from_tensors(loop, "m.pimc")
    with pytest.raises(InputError, match="reads 36 features per pixel"):
        a.predict_proba(x[:, :5])
