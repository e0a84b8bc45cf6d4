"""A ridge classifier with exact leave-one-out decision values, and softmax calibration.

:class:`RidgeLOO` — one-vs-rest ridge regression on standardised features with the penalty
chosen by the exact leave-one-out error (closed form from one eigendecomposition), which also
yields *leave-one-out decision values* for every training row: out-of-sample scores that
calibrate a softmax temperature (:func:`softmax_temperature`) and weigh this classifier against
others without any refit.

Measured against scikit-learn's ``RidgeClassifierCV`` (the same closed-form leave-one-out
idea) on 2400 × 9408 random-kernel features of the generated 24-class table
(``benchmarks/bench_series_table.py``), one thread: 7.2 s against 10.3 s (float64) and 8.4 s
(float32), held-out accuracy 0.8125 against 0.8121. Kept because it gives the leave-one-out
decision values of every class at the chosen penalty directly (:attr:`RidgeLOO.loo_decision_`),
which the series classifier needs for its temperature and mixture weight, and because its
penalties are relative to the mean eigenvalue, so one grid serves any number of features. The
leave-one-out values are checked against refitting without each row in
``tests/test_random_kernels.py``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Sequence

import numpy as np
import scipy.special
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from pimc_core.config import Interval, check_params
from pimc_core.errors import ConfigError, InputError

__all__ = ["RidgeLOO", "softmax_temperature"]

#: Candidate penalties of :class:`RidgeLOO` when ``alphas`` is ``None``.
DEFAULT_ALPHAS = tuple(np.logspace(-6, 2, 17))


class RidgeLOO(ClassifierMixin, BaseEstimator):
    """One-vs-rest ridge classifier; penalty chosen by exact leave-one-out error.

    Targets are ``±1`` codes per class; features are centred and scaled by their training mean
    and standard deviation (constant features dropped to zero); an unpenalised intercept. With
    ``n`` training rows and ``p`` features the work is one ``min(n, p)``-sized symmetric
    eigendecomposition (Gram matrix ``F Fᵀ`` when ``n <= p``, covariance ``Fᵀ F`` otherwise);
    every penalty of ``alphas`` is then cheap, and so are the leave-one-out predictions
    ``ŷ₋ᵢ = yᵢ - (yᵢ - ŷᵢ) / (1 - hᵢᵢ)`` of the hat matrix ``H``.

    Args:
        alphas: Candidate penalties (relative to the mean eigenvalue, so they do not depend on
            the number of features), numbers ``>= 0``; ``None``: 17 from ``1e-6`` to ``100``.
        double_limit: Largest eigenproblem (``min(n, p)``) solved in float64; larger ones use
            float32 (about twice as fast: 7200 rows take ~65 s instead of ~110 s on one core),
            and penalties below float32's eigenvalue resolution (``1e-5 × largest``) are then
            skipped, since their leave-one-out values would be noise.

    Attributes:
        classes_: ``(K,)`` the class labels, columns of the decision values.
        alpha_: Chosen penalty (absolute).
        loo_decision_: ``(n, K)`` leave-one-out decision values of the training rows.
        loo_accuracy_: Leave-one-out accuracy at ``alpha_``.
        coef_: ``(p, K)`` float32 weights on the raw features; ``intercept_`` ``(K,)``.
        mean_, scale_: ``(p,)`` float32 feature centring and scaling.
    """

    _parameter_constraints: dict = {
        "alphas": ["array-like", None],
        "double_limit": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, alphas: Sequence[float] | None = None, double_limit: int = 4096) -> None:
        self.alphas = alphas
        self.double_limit = double_limit

    def _candidate_alphas(self) -> tuple:
        if self.alphas is None:
            return DEFAULT_ALPHAS
        alphas = tuple(self.alphas)
        if not alphas or any(isinstance(a, bool) or not isinstance(a, Real) or not a >= 0 for a in alphas):
            raise ConfigError(f"RidgeLOO.alphas must be a non-empty list of numbers >= 0; got {self.alphas!r}")
        return alphas

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int | None = None) -> RidgeLOO:
        """Fit on features ``X (n, p)`` and labels ``y (n,)``.

        Args:
            X: ``(n, p)`` feature rows.
            y: ``(n,)`` class labels (any sortable type; ``classes_`` are the sorted distinct
                ones), or with ``n_classes`` class indices in ``[0, n_classes)``.
            n_classes: When given, ``classes_`` is ``arange(n_classes)`` and ``y`` holds indices
                into it (classes without rows still get a column).

        Memory: about three ``(n, p)`` float32 arrays at the peak (the input, its standardised
        copy, one product) plus a ``min(n, p)``-square matrix and its eigenvectors.

        Raises:
            ConfigError: bad parameters. InputError: fewer than two rows or classes, not one
                label per row, or an index out of range.
        """
        check_params(self)
        alphas = self._candidate_alphas()
        Xf = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        if Xf.ndim != 2 or y.shape != Xf.shape[:1]:
            raise InputError(f"RidgeLOO needs (n, p) features and one label per row; got {Xf.shape} and {y.shape}")
        if n_classes is None:
            self.classes_, y_idx = np.unique(y, return_inverse=True)
        else:
            y_idx = y.astype(np.int64)
            if len(y_idx) and (y_idx.min() < 0 or y_idx.max() >= n_classes or not np.array_equal(y_idx, y)):
                raise InputError(f"RidgeLOO: with n_classes={n_classes}, labels must be indices in [0, {n_classes})")
            self.classes_ = np.arange(n_classes)
        self._fit_indices(Xf, y_idx.astype(np.int64), len(self.classes_), alphas)
        return self

    def _fit_indices(self, Xf: np.ndarray, y_idx: np.ndarray, n_classes: int, alphas_rel: tuple) -> None:
        """The fit on float32 features ``(n, p)`` and class indices ``(n,)`` in ``[0, n_classes)``."""
        n, p = Xf.shape
        if n < 2 or n_classes < 2:
            raise InputError(f"RidgeLOO needs >= 2 rows, one label per row and >= 2 classes; got {Xf.shape}, {y_idx.shape}, {n_classes}")
        self.mean_ = Xf.mean(axis=0, dtype=np.float64).astype(np.float32)
        sd = Xf.std(axis=0, dtype=np.float64)
        self.scale_ = np.where(sd > 1e-8, 1.0 / np.maximum(sd, 1e-8), 0.0).astype(np.float32)
        Zn = np.subtract(Xf, self.mean_)  # one (n, p) copy, scaled in place
        Zn *= self.scale_
        Z = torch.from_numpy(Zn)  # centred: intercept = mean target
        Y = -np.ones((n, n_classes), dtype=np.float64)
        Y[np.arange(n), y_idx] = 1.0
        y_mean = Y.mean(axis=0)
        Yc = torch.from_numpy(Y - y_mean)
        dual = n <= p
        G = (Z @ Z.T) if dual else (Z.T @ Z)
        double = min(n, p) <= self.double_limit
        evals, evecs = torch.linalg.eigh(G.double() if double else G)
        del G
        evals, evecs = evals.double().clamp(min=0.0), evecs.double()
        a_floor = 0.0 if double else 1e-5 * float(evals.max())
        if dual:
            U, s2 = evecs, evals  # H = U diag(s2/(s2+a)) Uᵀ
        else:
            keep = evals > evals.max() * 1e-10
            s2 = evals[keep]
            U = (Z @ evecs[:, keep].float()).double() / s2.sqrt()  # left singular vectors (n, r)
        UtY = U.T @ Yc  # (r, K)
        U2 = U * U
        scale = float(s2.mean()) if s2.numel() else 1.0
        best = None
        alphas = [a for a in alphas_rel if a * max(scale, 1e-12) >= a_floor] or [max(alphas_rel)]
        for a_rel in alphas:
            a = max(a_rel * max(scale, 1e-12), a_floor)
            shrink = s2 / (s2 + a)
            fit = U @ (shrink[:, None] * UtY)  # centred predictions
            h = U2 @ shrink + 1.0 / n  # + intercept's leverage
            resid = (Yc - fit) / (1.0 - h).clamp(min=1e-6)[:, None]
            loo = (torch.from_numpy(Y) - resid).numpy()
            err = float((resid**2).mean())
            if best is None or err < best[0] - 1e-12:
                best = (err, a, loo, shrink)
        assert best is not None
        _, self.alpha_, self.loo_decision_, shrink = best
        self.loo_accuracy_ = float(np.mean(np.argmax(self.loo_decision_, axis=1) == y_idx))
        # weights in feature space: w = Zᵀ U diag(1/(s2+a)) Uᵀ Yc (dual) or V diag(1/(s2+a)) Vᵀ Zᵀ Yc
        inv = 1.0 / (s2 + self.alpha_)
        dual_coef = (U @ (inv[:, None] * UtY)).float()  # (n, K); in both cases w = Zᵀ U diag(1/(s2+a)) Uᵀ Yc
        coef = (Z.T @ dual_coef).double()
        self.coef_ = (coef.numpy() * self.scale_[:, None]).astype(np.float32)
        self.intercept_ = (y_mean - (self.mean_.astype(np.float64) * self.scale_) @ coef.numpy()).astype(np.float64)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Decision values ``(m, K)`` of feature rows ``X (m, p)``."""
        check_is_fitted(self)
        return np.asarray(X, dtype=np.float32) @ self.coef_ + self.intercept_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels ``(m,)`` (values of ``classes_``) of feature rows ``X (m, p)``."""
        decision = self.decision_function(X)
        return self.classes_[np.argmax(decision, axis=1)]


def softmax_temperature(decision: np.ndarray, y_idx: np.ndarray, grid: Sequence[float] | None = None) -> tuple[float, float]:
    """Inverse temperature ``β`` minimising the log-loss of ``softmax(β · decision)``.

    Args:
        decision: ``(n, K)`` decision values (e.g. :attr:`RidgeLOO.loo_decision_`).
        y_idx: ``(n,)`` class indices in ``[0, K)``.
        grid: Candidate ``β`` (default: 57 from 0.1 to ~316).

    Returns:
        ``(beta, log_loss)``.
    """
    d = np.asarray(decision, dtype=np.float64)
    y_idx = np.asarray(y_idx, dtype=np.int64)
    grid = tuple(grid) if grid is not None else tuple(np.logspace(-1, 2.5, 57))
    best = (1.0, float("inf"))
    for beta in grid:
        loss = float(-np.mean(scipy.special.log_softmax(beta * d, axis=1)[np.arange(len(d)), y_idx]))
        if loss < best[1]:
            best = (float(beta), loss)
    return best
