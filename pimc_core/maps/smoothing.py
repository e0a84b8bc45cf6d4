"""Bayesian smoothing of class probabilities: a pixel's class logits pulled towards those of its
neighbourhood, the more so where the neighbourhood agrees.

The method of the sits package (Camara et al., ``sits_smooth``; bayesEO's ``bayes_smooth``): for
each class k and pixel, with ``x`` the logit ``log(p / (1 - p))`` of the pixel's probability,
``m`` and ``v`` the mean and variance of the logits of the ``neigh_fraction`` neighbours of a
``window`` × ``window`` neighbourhood with the highest probability of k, and ``s`` the
``smoothness`` (the prior variance of a class logit)::

    x' = v / (s + v) * x + s / (s + v) * m

A homogeneous neighbourhood (small ``v``) pulls the pixel to its mean; a mixed one (a field
border) leaves the pixel as it is. The smoothed probabilities are ``sigmoid(x')`` renormalised to
sum to one over the classes. Pixels without a probability (NaN: nodata) are neither smoothed nor
used as neighbours. Written here with numpy because sits is an R package; checked in
``tests/test_smoothing.py`` against a direct per-pixel evaluation of the formula.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from pimc_core.config import Checked, Integral, Real, config_from_mapping, declared, param
from pimc_core.errors import ConfigError

__all__ = ["SmoothConfig", "bayes_smooth", "check_smoothing"]

_EPS = 1e-6


def check_smoothing(window: int, neigh_fraction: float, smoothness: float) -> None:
    """ConfigError naming the parameter unless ``window`` is an odd integer >= 3, ``neigh_fraction``
    in (0, 1] and ``smoothness`` > 0."""
    if int(window) != window or window < 3 or window % 2 == 0:
        raise ConfigError(f"smoothing window must be an odd integer >= 3; got {window}")
    if not 0 < neigh_fraction <= 1:
        raise ConfigError(f"smoothing neigh_fraction must be in (0, 1]; got {neigh_fraction}")
    if not (np.isfinite(smoothness) and smoothness > 0):
        raise ConfigError(f"smoothing smoothness must be a positive number; got {smoothness}")


@declared
@dataclass(frozen=True)
class SmoothConfig(Checked):
    """The Bayesian smoothing of a class map (:func:`bayes_smooth`'s parameters), checked by
    :func:`check_smoothing` when made.

    Attributes:
        window: neighbourhood side in pixels (odd, >= 3).
        neigh_fraction: share of the neighbourhood whose logits give the mean and variance, (0, 1].
        smoothness: prior variance of a class logit (> 0; larger: smoother).
    """

    window: int = param(7, Integral)
    neigh_fraction: float = param(0.5, Real)
    smoothness: float = param(10.0, Real)

    _config_name: ClassVar[str] = "smoothing"

    def _check(self) -> None:
        check_smoothing(self.window, self.neigh_fraction, self.smoothness)

    @property
    def halo(self) -> int:
        """Pixels of neighbourhood needed on each side of a window: ``window // 2``."""
        return int(self.window) // 2

    @classmethod
    def of(cls, value: Any) -> "SmoothConfig | None":
        """None (no smoothing) for None or False; the defaults for True; a mapping's keys over
        the defaults; a SmoothConfig as it is. ConfigError for anything else."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return config_from_mapping(cls, value, where="smoothing")
        raise ConfigError(f"smooth must be None, True or a mapping of window, neigh_fraction, smoothness; "
                          f"got {type(value).__name__}")

    def tag(self) -> str:
        """How the outputs record the smoothing (the ``pimc_smoothing`` tag), as JSON."""
        return json.dumps({"method": "bayes", "window": int(self.window), "neigh_fraction": float(self.neigh_fraction),
                           "smoothness": float(self.smoothness)}, separators=(",", ":"))

    def __call__(self, prob: np.ndarray) -> np.ndarray:
        """:func:`bayes_smooth` of a (K, H, W) probability raster with these parameters."""
        return bayes_smooth(prob, window=int(self.window), neigh_fraction=float(self.neigh_fraction),
                            smoothness=float(self.smoothness))


def bayes_smooth(prob: np.ndarray, *, window: int = 7, neigh_fraction: float = 0.5, smoothness: float = 10.0,
                 rows: int = 256) -> np.ndarray:
    """Smooth a (K, H, W) probability raster (NaN: nodata) → (K, H, W) float32.

    Args:
        prob: class probabilities, NaN where there is no prediction.
        window: neighbourhood side (odd).
        neigh_fraction: share of the neighbourhood (those with the highest probability of the
            class) whose logits give the mean and variance.
        smoothness: prior variance of a class logit (larger: smoother).
        rows: rows processed at once (memory: about ``rows * W * window**2`` floats).
    """
    check_smoothing(window, neigh_fraction, smoothness)
    p = np.asarray(prob, np.float64)
    k, h, w = p.shape
    r = window // 2
    logit = np.log(np.clip(p, _EPS, 1 - _EPS) / np.clip(1 - p, _EPS, 1))
    ok = np.isfinite(p).all(axis=0)
    n_top = max(2, int(round(neigh_fraction * window * window)))
    out = np.full(p.shape, np.nan)
    for c in range(k):
        # neighbours ranked by probability: NaN (outside, nodata) sorted last and left out
        padded = np.pad(np.where(ok, p[c], -np.inf), r, constant_values=-np.inf)
        padded_logit = np.pad(np.where(ok, logit[c], 0.0), r)
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            win_p = np.lib.stride_tricks.sliding_window_view(padded[r0:r1 + 2 * r], (window, window))
            win_l = np.lib.stride_tricks.sliding_window_view(padded_logit[r0:r1 + 2 * r], (window, window))
            win_p = win_p.reshape(r1 - r0, w, -1)
            win_l = win_l.reshape(r1 - r0, w, -1)
            order = np.argsort(-win_p, axis=2, kind="stable")[:, :, :n_top]
            top_l = np.take_along_axis(win_l, order, axis=2)
            valid = np.isfinite(np.take_along_axis(win_p, order, axis=2))
            n = valid.sum(axis=2)
            mean = np.where(valid, top_l, 0).sum(axis=2) / np.maximum(n, 1)
            var = np.where(valid, (top_l - mean[..., None]) ** 2, 0).sum(axis=2) / np.maximum(n - 1, 1)
            x = logit[c, r0:r1]
            smoothed = var / (smoothness + var) * x + smoothness / (smoothness + var) * mean
            out[c, r0:r1] = np.where(n >= 2, smoothed, x)
    sig = 1.0 / (1.0 + np.exp(-out))
    sig /= sig.sum(axis=0, keepdims=True)
    sig[:, ~ok] = np.nan
    return sig.astype(np.float32)
