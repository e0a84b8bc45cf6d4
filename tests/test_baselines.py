"""The 1-D CNN baseline of the evaluation report (pimc_core.models.tempcnn)."""

from __future__ import annotations

import numpy as np
import pytest

from pimc_core.errors import ConfigError, InputError
from pimc_core.models.tempcnn import CNN1DClassifier, CNN1DConfig


def _phenologies(n_per_class: int, seed: int, t: int = 20):
    """Three classes with the same curve shape but green-up at different times (+ noise)."""
    rng = np.random.default_rng(seed)
    days = np.linspace(0, 1, t)
    xs, ys = [], []
    for k, onset in enumerate((0.25, 0.45, 0.65)):
        shift = rng.normal(0, 0.03, (n_per_class, 1))
        curve = 0.2 + 0.6 / (1 + np.exp(-(days[None] - onset - shift) / 0.04))
        curve = curve + rng.normal(0, 0.03, curve.shape)
        xs.append(np.stack([curve, 0.8 * curve + 0.05], axis=1))  # two "indices"
        ys.append(np.full(n_per_class, 10 + k))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def test_learns_timing_and_returns_given_labels():
    X, y = _phenologies(40, 0)
    Xt, yt = _phenologies(60, 1)
    clf = CNN1DClassifier(steps=120, batch_size=32, seed=0).fit(X, y)
    assert list(clf.classes_) == [10, 11, 12]
    pred = clf.predict(Xt)
    assert set(np.unique(pred)) <= {10, 11, 12}
    assert (pred == yt).mean() > 0.9
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert clf.history_["steps"] == 120


def test_same_seed_same_model_and_min_epochs():
    X, y = _phenologies(10, 2)
    a = CNN1DClassifier(steps=5, min_epochs=3, batch_size=8, seed=3).fit(X, y)
    b = CNN1DClassifier(steps=5, min_epochs=3, batch_size=8, seed=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # 30 series in batches of 8 → 3 full batches per epoch; 3 epochs beat 5 steps
    assert a.history_["steps"] == 9


def test_univariate_input_and_errors():
    X, y = _phenologies(8, 4)
    clf = CNN1DClassifier(steps=3, batch_size=8).fit(X[:, 0], y)  # (N, T) is one channel
    assert clf.predict(X[:, 0]).shape == (len(X),)
    with pytest.raises(InputError, match="do not match"):
        clf.predict(X[:, :, :10])
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        CNN1DClassifier(steps=1).fit(bad, y)
    with pytest.raises(InputError, match="labels"):
        CNN1DClassifier(steps=1).fit(X, y[:-1])
    with pytest.raises(InputError, match="fit"):
        CNN1DClassifier().predict(X)
    with pytest.raises(ConfigError, match="unknown option"):
        CNN1DClassifier(widht=3)
    with pytest.raises(ConfigError, match="odd"):
        CNN1DConfig(kernel_size=4)
