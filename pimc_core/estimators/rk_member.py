"""The random-kernel member of the series classifier and its mixture with the CNN ensemble.

The member is MiniRocket/MultiRocket-style features of the standardised series
(:class:`~pimc_core.estimators.random_kernels.RandomKernelTransform`, optionally joined by
Hydra-style counts, :class:`~pimc_core.estimators.competing_kernels.CompetingKernelTransform`)
and a ridge classifier whose penalty and softmax temperature come from exact leave-one-out
decision values (:class:`~pimc_core.estimators.ridge.RidgeLOO`). It is fitted first and its
measured time (plus the estimated time to score the series to predict) comes off the CNN
budget. CNN member ``i`` then trains without fold ``i`` of the training series
(:func:`oof_folds`), so every held-out series has an out-of-sample CNN prediction; the CNN
temperature and the mixture weight ``p = w · p_cnn + (1 − w) · p_ridge`` minimise the log-loss
on that evidence (:meth:`RandomKernelMember._choose_mixture`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.special
import torch

from pimc_core.estimators.competing_kernels import CompetingKernelTransform
from pimc_core.estimators.random_kernels import RandomKernelTransform
from pimc_core.estimators.ridge import RidgeLOO, softmax_temperature
from pimc_core.estimators.standardizer import SeriesStandardizer

__all__ = ["RandomKernelMember", "mixture_weight", "oof_folds", "softmax_rows"]


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` scores (float64)."""
    return scipy.special.softmax(np.asarray(z, dtype=np.float64), axis=1)


def mixture_weight(p_cnn: np.ndarray, p_rk: np.ndarray, y_idx: np.ndarray) -> tuple[float, float]:
    """``(log_loss, w)``: the weight ``w`` of 0, 0.05, …, 1 whose mixture ``w · p_cnn + (1 − w) · p_rk``
    (both ``(n, K)`` probabilities) has the least log-loss on class indices ``y_idx (n,)``."""
    best = (float("inf"), 1.0)
    rows = np.arange(len(y_idx))
    for w in np.linspace(0.0, 1.0, 21):
        p = w * p_cnn + (1.0 - w) * p_rk
        loss = float(np.mean(-np.log(np.clip(p[rows, y_idx], 1e-12, None))))
        if loss < best[0] - 1e-9:
            best = (loss, float(w))
    return best


def oof_folds(y_idx: np.ndarray, n_classes: int, n_folds: int, seed: int) -> np.ndarray:
    """Stratified fold ``(n,)`` int64 of each training series: each class spread over the folds
    in turn, in an order drawn with ``seed + 4242``."""
    folds = np.empty(len(y_idx), dtype=np.int64)
    frng = np.random.default_rng(seed + 4242)
    start = 0
    for cls in range(n_classes):
        idx = frng.permutation(np.flatnonzero(y_idx == cls))
        folds[idx] = (start + np.arange(len(idx))) % n_folds
        start += len(idx)
    return folds


class RandomKernelMember:
    """Mixin of :class:`~pimc_core.estimators.series_classifier.SeriesClassifier`: fits and
    scores the random-kernel member and chooses its weight in the mixture.

    Uses the classifier's ``config_``, ``classes_`` and ``_message``; sets ``rk_transform_``,
    ``rk_hydra_``, ``rk_ridge_``, ``rk_beta_``, ``cnn_beta_`` and ``cnn_weight_``.
    """

    @staticmethod
    def _ridge_seconds_estimate(n: int, p: int) -> float:
        """Rough seconds of :meth:`RidgeLOO.fit` on ``(n, p)`` features: one small Gram product
        and one 512-square eigendecomposition timed on this machine, scaled by ``n²p`` and by
        ``m^2.7`` (``m = min(n, p)``; measured: a 7200-square float32 eigh of random-kernel
        features takes ~1200× the 512-square one, not the 2800× of the cubic count)."""
        m = min(n, p)
        s = 512
        a = torch.randn(s, min(p, 2048))
        t0 = time.perf_counter()
        g = a @ a.T
        dt = time.perf_counter() - t0  # s² × a.shape[1] multiply-adds
        t_gram = dt * (n / s) ** 2 * (p / a.shape[1]) if n <= p else dt * (p / s) ** 2 * (n / a.shape[1])
        g = g.double() if m <= RidgeLOO().double_limit else g
        torch.linalg.eigh(g)  # warm-up
        t0 = time.perf_counter()
        torch.linalg.eigh(g)
        t_eig = (time.perf_counter() - t0) * max(m / s, 1.0) ** 2.7
        return t_gram + t_eig + 2e-8 * n * p * 10  # + standardising and the products of the fit

    def _fit_random_kernels(self, Z_full: np.ndarray, Z: torch.Tensor, y_idx: np.ndarray, k: int, n_pred: int,
                            hist: dict[str, Any]) -> float:
        """Fit the random-kernel member on the training series, standardised: unpooled
        ``Z_full (n, C, T_raw)`` and the CNNs' pooled ``Z (n, C, T)``. The member sees ``Z_full``
        pooled to at most ``rk_max_length`` steps, or ``Z`` when that would not fit
        ``rk_max_share`` of the budget.

        Returns:
            Estimated seconds it will need to score the ``n_pred`` series to predict (0 when
            the member was skipped).
        """
        cfg = self.config_
        t0 = time.perf_counter()
        n = Z.shape[0]
        lengths = [min(Z_full.shape[-1], cfg.rk_max_length)]
        if lengths[0] > Z.shape[-1]:
            lengths.append(Z.shape[-1])  # fallback: the CNNs' (pooled) length
        for length in lengths:
            Zn = Z.detach().cpu().numpy() if length == Z.shape[-1] else SeriesStandardizer.pool(Z_full, length)
            tr = RandomKernelTransform(cfg.rk_features, seed=cfg.seed).fit(Zn)
            hy = CompetingKernelTransform(cfg.rk_hydra_groups, seed=cfg.seed).fit(Zn[: min(n, 4096)]) if cfg.rk_hydra_groups else None
            sps = tr.seconds_per_series(Zn, 64) + (hy.seconds_per_series(Zn, 64) if hy is not None else 0.0)
            p_out = tr.n_features_out_ + (hy.n_features_out_ if hy is not None else 0)
            est = sps * (n + n_pred) + self._ridge_seconds_estimate(n, p_out)
            hist["rk_estimated_seconds"] = round(est, 1)
            if est <= cfg.rk_max_share * cfg.budget_s:
                break
            self._message(f"[plan] random-kernel member on {length} steps: ~{est:.0f}s > {cfg.rk_max_share:.0%} of the budget")
        else:
            self._message("[plan] random-kernel member skipped")
            return 0.0
        self.rk_transform_, self.rk_hydra_ = tr, hy
        hist["rk_length"] = self.rk_length_
        feats = self._rk_features(Zn)
        t_feat = time.perf_counter() - t0
        ridge = RidgeLOO().fit(feats, y_idx, k)
        self._rk_train_feats = feats if cfg.self_train_shares else None  # kept for self-training
        del feats
        beta, loss = softmax_temperature(ridge.loo_decision_, y_idx)
        self.rk_ridge_, self.rk_beta_ = ridge, beta
        hist.update(
            rk_features=int(p_out),
            rk_hydra_features=int(hy.n_features_out_) if hy is not None else 0,
            rk_loo_accuracy=round(ridge.loo_accuracy_, 4),
            rk_loo_log_loss=round(loss, 4),
            rk_beta=round(beta, 4),
            rk_seconds_features=round(t_feat, 1),
            rk_seconds=round(time.perf_counter() - t0, 1),
        )
        self._message(f"[rk] {p_out} features, ridge alpha {ridge.alpha_:.3g}: leave-one-out accuracy "
                      f"{ridge.loo_accuracy_:.3f} ({time.perf_counter() - t0:.0f}s)")
        return sps * n_pred

    @property
    def rk_length_(self) -> int:
        """Time steps of the series the random-kernel member sees (``rk_max_length`` or the
        CNNs' ``max_length``); 0 when the member is off or skipped."""
        return self.rk_transform_.length_ if self.rk_transform_ is not None else 0

    def _rk_features(self, Z: np.ndarray) -> np.ndarray:
        """Random-kernel (and competing-kernel) features ``(N, p)`` of standardised series ``(N, C, T)``."""
        assert self.rk_transform_ is not None
        if self.rk_hydra_ is None:
            return self.rk_transform_.transform(Z)
        return np.concatenate([self.rk_transform_.transform(Z), self.rk_hydra_.transform(Z)], axis=1)

    def _rk_proba(self, Z: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Random-kernel member's probabilities ``(N, K)`` of standardised series ``(N, C, T)``."""
        assert self.rk_transform_ is not None and self.rk_ridge_ is not None
        out = np.empty((Z.shape[0], len(self.classes_)), dtype=np.float64)
        for s in range(0, Z.shape[0], batch_size):
            d = self.rk_ridge_.decision_function(self._rk_features(Z[s : s + batch_size]))
            out[s : s + batch_size] = softmax_rows(self.rk_beta_ * d)
        return out

    def _choose_mixture(self, oof_logits: np.ndarray, has_oof: np.ndarray, y_idx: np.ndarray, hist: dict[str, Any]) -> None:
        """CNN temperature and mixture weight from out-of-sample evidence.

        Args:
            oof_logits: ``(n, K)`` CNN logits of each training series from the member that did
                not train on it (rows without one are ignored).
            has_oof: ``(n,)`` bool, rows that have such logits.
            y_idx: ``(n,)`` class indices.
        """
        assert self.rk_ridge_ is not None and self.rk_ridge_.loo_decision_ is not None
        rows = np.flatnonzero(has_oof)
        if len(rows) < 2:
            self.cnn_beta_, self.cnn_weight_ = 1.0, 0.5
            hist["mix_cnn_weight"] = 0.5
            return
        y = y_idx[rows]
        self.cnn_beta_, _ = softmax_temperature(oof_logits[rows], y)
        p_cnn = softmax_rows(self.cnn_beta_ * oof_logits[rows])
        p_rk = softmax_rows(self.rk_beta_ * self.rk_ridge_.loo_decision_[rows])
        best = mixture_weight(p_cnn, p_rk, y)
        self.cnn_weight_ = best[1]
        mix = self.cnn_weight_ * p_cnn + (1.0 - self.cnn_weight_) * p_rk
        hist.update(
            mix_evidence_rows=int(len(rows)),
            mix_cnn_weight=round(self.cnn_weight_, 3),
            mix_cnn_beta=round(self.cnn_beta_, 4),
            cnn_oof_accuracy=round(float(np.mean(p_cnn.argmax(1) == y)), 4),
            rk_loo_accuracy_same_rows=round(float(np.mean(p_rk.argmax(1) == y)), 4),
            mix_oof_accuracy=round(float(np.mean(mix.argmax(1) == y)), 4),
            mix_oof_log_loss=round(best[0], 4),
        )
        self._message(
            f"[mix] out-of-sample accuracy on {len(rows)} series: CNN member {hist['cnn_oof_accuracy']:.3f}, "
            f"random kernels {hist['rk_loo_accuracy_same_rows']:.3f}, "
            f"mixture {hist['mix_oof_accuracy']:.3f} (CNN weight {self.cnn_weight_:.2f})"
        )
