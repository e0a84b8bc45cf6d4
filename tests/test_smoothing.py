"""Bayesian smoothing of class probabilities (the sits method), checked against the formula
evaluated pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from pimc_core.errors import ConfigError
from pimc_core.maps.smoothing import bayes_smooth


def _direct(prob, window, frac, s):
    k, h, w = prob.shape
    r = window // 2
    ok = np.isfinite(prob).all(axis=0)
    logit = np.log(np.clip(prob, 1e-6, 1 - 1e-6) / np.clip(1 - prob, 1e-6, 1))
    n_top = max(2, int(round(frac * window * window)))
    out = np.full(prob.shape, np.nan)
    for c in range(k):
        for i in range(h):
            for j in range(w):
                if not ok[i, j]:
                    continue
                nb = [(prob[c, a, b], logit[c, a, b]) for a in range(i - r, i + r + 1) for b in range(j - r, j + r + 1)
                      if 0 <= a < h and 0 <= b < w and ok[a, b]]
                nb.sort(key=lambda t: -t[0])
                top = np.array([t[1] for t in nb[:n_top]])
                if top.size < 2:
                    out[c, i, j] = logit[c, i, j]
                    continue
                m, v = top.mean(), top.var(ddof=1)
                out[c, i, j] = v / (s + v) * logit[c, i, j] + s / (s + v) * m
    p = 1 / (1 + np.exp(-out))
    return p / p.sum(axis=0, keepdims=True)


def test_bayes_smooth_is_the_formula_pixel_by_pixel_and_keeps_nodata():
    rng = np.random.default_rng(0)
    prob = rng.dirichlet([1, 1, 1], size=(9, 11)).transpose(2, 0, 1)
    prob[:, 2, 3] = np.nan
    prob[:, 0, :2] = np.nan
    got = bayes_smooth(prob, window=3, neigh_fraction=0.5, smoothness=5, rows=4)
    want = _direct(prob, 3, 0.5, 5)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.isnan(got[:, 2, 3]).all() and np.isnan(got[:, 0, :2]).all()
    np.testing.assert_allclose(np.nansum(got, axis=0)[np.isfinite(got[0])], 1, atol=1e-5)


def test_an_isolated_wrong_pixel_takes_its_field_s_class():
    prob = np.zeros((2, 15, 15))
    prob[0], prob[1] = 0.9, 0.1
    prob[:, 7, 7] = (0.3, 0.7)  # speckle inside a field of class 0
    out = bayes_smooth(prob, window=5, smoothness=10)
    assert out[:, 7, 7].argmax() == 0 and (out.argmax(axis=0) == 0).all()


def test_bad_smoothing_parameters_are_named():
    p = np.full((2, 4, 4), 0.5)
    with pytest.raises(ConfigError, match="window must be an odd integer"):
        bayes_smooth(p, window=4)
    with pytest.raises(ConfigError, match="neigh_fraction"):
        bayes_smooth(p, neigh_fraction=0)
    with pytest.raises(ConfigError, match="smoothness"):
        bayes_smooth(p, smoothness=-1)
