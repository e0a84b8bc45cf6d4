"""Transductive self-training of the ridge member: the series to classify, pseudo-labelled.

After a fit, the classifier's probabilities on the unlabelled series (those it will be asked to
predict) give each of them a *pseudo-label* (its most probable class) and a confidence (that
probability). :func:`pseudo_label_order` ranks them so that every prefix is class-balanced:
the most confident series of every predicted class first, each class in proportion to how many
series it was predicted for. :func:`pseudo_label_ridges` refits the ridge classifier on the
labelled rows plus the first ``share`` of that order, for several shares. :class:`SelfTraining`
(the classifier's mixin) chooses the share, or none, on held-out labelled series with a teacher
that never saw them (see its docstring).

The refit keeps the labelled rows' feature scaling (:attr:`RidgeLOO.mean_`, ``scale_``) and
the penalty of the leave-one-out choice per row, times the ``N`` rows (the eigenvalues of the
Gram matrix grow with the rows, the penalty keeps its relative size). With more rows than
features it solves the primal system (``p × p``, one Gram accumulated over the order, so every
share costs one Cholesky factorisation), otherwise the dual one (``N × N``). On request it also
returns the labelled rows' leave-one-out decision values (hat matrix diagonal, as in
:class:`~pimc_core.estimators.ridge.RidgeLOO`). Those are out of sample for the ridge but not for
the pseudo-labels, which a model that saw the labelled row made: as evidence for the share they
favour pseudo-labels (every share scored a log-loss near 0 on a small table), which is why the
share is chosen on held-out folds instead.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import time
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from pimc_core.estimators.ridge import RidgeLOO, softmax_temperature
from pimc_core.estimators.rk_member import mixture_weight, oof_folds, softmax_rows

__all__ = ["SelfTraining", "pseudo_label_order", "pseudo_label_ridges", "self_training_rows", "self_training_seconds"]


def pseudo_label_order(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of unlabelled series for pseudo-labelling, class-balanced at every prefix.

    Args:
        proba: ``(M, K)`` class probabilities of the unlabelled series.

    Returns:
        ``(order, labels)``: ``order (M,)`` int64, the rows sorted by their confidence rank within
        their predicted class relative to that class's size (ties by confidence), so that the first
        ``q · M`` rows hold about the most confident share ``q`` of every predicted class;
        ``labels (M,)`` int64, each row's pseudo-label (class index).
    """
    proba = np.asarray(proba, dtype=np.float64)
    labels = proba.argmax(axis=1).astype(np.int64)
    conf = proba.max(axis=1)
    quantile = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        ranked = idx[np.argsort(-conf[idx], kind="stable")]
        quantile[ranked] = (np.arange(len(ranked)) + 1.0) / len(ranked)
    order = np.lexsort((-conf, quantile)).astype(np.int64)
    return order, labels


def _codes(y_idx: np.ndarray, k: int) -> torch.Tensor:
    Y = -torch.ones(len(y_idx), k, dtype=torch.float64)
    Y[torch.arange(len(y_idx)), torch.as_tensor(y_idx, dtype=torch.int64)] = 1.0
    return Y


def _refit(base: RidgeLOO, W: torch.Tensor, mu: torch.Tensor, y_mean: torch.Tensor, loo: torch.Tensor | None,
           y_idx: np.ndarray, alpha: float) -> RidgeLOO:
    """A copy of ``base`` with weights ``W (p, K)`` on its standardised features centred at ``mu (p,)``."""
    out = copy.copy(base)
    scale = torch.from_numpy(base.scale_).double()
    shift = torch.from_numpy(base.mean_).double() * scale + mu
    out.coef_ = (W * scale[:, None]).float().numpy()
    out.intercept_ = (y_mean - shift @ W).numpy()
    out.alpha_ = alpha
    out.loo_decision_ = None if loo is None else loo.numpy()
    out.loo_accuracy_ = float("nan") if loo is None else float(np.mean(out.loo_decision_.argmax(axis=1) == y_idx))
    return out


def pseudo_label_ridges(
    base: RidgeLOO, X: np.ndarray, y_idx: np.ndarray, X_unlabelled: np.ndarray, order: np.ndarray,
    labels: np.ndarray, shares: Sequence[float], loo: bool = True,
) -> Iterator[tuple[float, RidgeLOO]]:
    """Ridge classifiers refitted with pseudo-labelled rows, one per share (see the module doc).

    Args:
        base: The ridge fitted on the labelled rows (its scaling and penalty are kept).
        X: ``(n, p)`` features of the labelled rows; ``y_idx (n,)`` their class indices.
        X_unlabelled: ``(M, p)`` features of the unlabelled rows.
        order, labels: from :func:`pseudo_label_order` (``(M,)`` each).
        shares: Increasing shares in ``[0, 1]`` of ``order`` to add.
        loo: Compute the leave-one-out decision values (``False``: ``loo_decision_`` is ``None``,
            and the primal path skips its triangular solve).

    Yields:
        ``(share, ridge)``: a copy of ``base`` refitted on the labelled rows and the first
        ``round(share · M)`` rows of ``order`` with their pseudo-labels; its ``loo_decision_``
        ``(n, K)`` holds the labelled rows' leave-one-out decision values. Its penalty is
        ``base.alpha_ · N / n_base`` for ``N`` rows, ``n_base`` the rows ``base`` was fitted on.
    """
    k = len(base.classes_)
    n, p = X.shape
    per_row = float(base.alpha_) / len(base.loo_decision_)
    mean, scale = torch.from_numpy(base.mean_), torch.from_numpy(base.scale_)
    Zl = (torch.from_numpy(np.asarray(X, dtype=np.float32)) - mean) * scale
    Yl = _codes(y_idx, k)
    counts = [int(round(s * len(order))) for s in shares]
    dual = n + max(counts, default=0) <= p
    if dual:
        for share, m in zip(shares, counts):
            rows = order[:m]
            Zu = (torch.from_numpy(np.asarray(X_unlabelled[rows], dtype=np.float32)) - mean) * scale
            Z = torch.cat([Zl, Zu]).double()
            Y = torch.cat([Yl, _codes(labels[rows], k)])
            N = Z.shape[0]
            alpha = per_row * N
            mu, y_mean = Z.mean(0), Y.mean(0)
            Zc = Z - mu
            L = torch.linalg.cholesky(Zc @ Zc.T + alpha * torch.eye(N, dtype=torch.float64))
            dual_coef = torch.cholesky_solve(Y - y_mean, L)
            held = None
            if loo:
                fit = (Yl - y_mean) - alpha * dual_coef[:n] + y_mean  # K (K + aI)^-1 Yc = Yc - a (K + aI)^-1 Yc
                h = 1.0 - alpha * torch.diagonal(torch.cholesky_inverse(L))[:n] + 1.0 / N
                held = Yl - (Yl - fit) / (1.0 - h).clamp(min=1e-6)[:, None]
            yield share, _refit(base, Zc.T @ dual_coef, mu, y_mean, held, y_idx, alpha)
        return
    S = (Zl.T @ Zl).double()
    s, SY, sy = Zl.sum(0).double(), (Zl.T @ Yl.float()).double(), Yl.sum(0)
    done = 0
    for share, m in zip(shares, counts):
        for a in range(done, m, 4096):  # add the next rows of the order to the sums
            rows = order[a : min(a + 4096, m)]
            Zu = (torch.from_numpy(np.asarray(X_unlabelled[rows], dtype=np.float32)) - mean) * scale
            Yu = _codes(labels[rows], k)
            S += (Zu.T @ Zu).double()
            s += Zu.sum(0).double()
            SY += (Zu.T @ Yu.float()).double()
            sy += Yu.sum(0)
        done = max(done, m)
        N = n + m
        alpha = per_row * N
        mu, y_mean = s / N, sy / N
        A = S - N * torch.outer(mu, mu)
        A.diagonal().add_(alpha)
        L = torch.linalg.cholesky(A)
        W = torch.cholesky_solve(SY - N * torch.outer(mu, y_mean), L)  # (p, K)
        held = None
        if loo:
            Zc = Zl.double() - mu
            h = (torch.linalg.solve_triangular(L, Zc.T, upper=False) ** 2).sum(0) + 1.0 / N
            held = Yl - (Yl - (Zc @ W + y_mean)) / (1.0 - h).clamp(min=1e-6)[:, None]
        yield share, _refit(base, W, mu, y_mean, held, y_idx, alpha)


@functools.lru_cache(maxsize=1)
def _float64_rate() -> float:
    """Multiply-adds per second of a float64 matrix product here (timed once per process)."""
    a = torch.randn(384, 1024, dtype=torch.float64)
    a @ a.T  # warm-up
    t0 = time.perf_counter()
    a @ a.T
    return 384 * 384 * 1024 / max(time.perf_counter() - t0, 1e-6)


def self_training_seconds(n: int, m: int, p: int, shares: Sequence[float]) -> float:
    """Rough seconds of :meth:`SelfTraining._self_train`'s ridge fits with one held-out fold:
    ``n`` labelled rows, ``m`` unlabelled ones, ``p`` features. Multiply-adds counted (the
    teacher's fit, one :func:`pseudo_label_ridges` pass over the shares and the final refit: Gram
    sums and a Cholesky factorisation per fit, or the dual ``N × N`` systems) at the float64 rate
    of a matrix product timed here."""
    rate = _float64_rate()
    counts = [int(round(s * m)) for s in (0.0, 0.0, *shares, max(shares, default=0.0))]

    def fit_ops(rows: int) -> float:
        return rows * rows * p + rows**3 if rows <= p else rows * p * p + p**3 / 3

    ops = sum(fit_ops(n + c) for c in counts) if n + max(counts) <= p else (
        2 * (n + max(counts)) * p * p + len(counts) * p**3 / 3)
    return 1.5 * ops / rate


def self_training_rows(n: int, m: int, p: int, shares: Sequence[float], seconds: float) -> tuple[int, float]:
    """How many of ``m`` unlabelled rows self-training can consider within ``seconds``
    (:func:`self_training_seconds`; the shares then apply to that many of the most confident).

    Returns:
        ``(rows, estimated_seconds)``: ``rows`` 0 when not even a tenth of ``m`` (at least 1) fits.
    """
    est = self_training_seconds(n, m, p, shares)
    if est <= seconds:
        return m, est
    lo, hi = 0, m  # the estimate grows with the rows: bisect
    while hi - lo > max(1, m // 100):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if self_training_seconds(n, mid, p, shares) <= seconds else (lo, mid)
    return (lo, self_training_seconds(n, lo, p, shares)) if lo >= max(1, m // 10) else (0, 0.0)


def _clear_winner(losses: np.ndarray) -> int:
    """Index of the least mean of ``losses (choices, rows)`` among row 0 (the safe choice) and the
    choices whose mean is below row 0's by more than one standard error of the paired differences."""
    diff = losses - losses[0]
    n = losses.shape[1]
    se = diff.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.full(len(losses), np.inf)
    mean = losses.mean(axis=1)
    ok = np.flatnonzero((diff.mean(axis=1) < -se) | (np.arange(len(losses)) == 0))
    return int(ok[np.argmin(mean[ok])])


class SelfTraining:
    """Mixin of :class:`~pimc_core.estimators.series_classifier.SeriesClassifier`: after the fit,
    pseudo-labels the unlabelled series with the mixture and refits the random-kernel ridge with
    the share of them (``self_train_shares``, or none) that predicts held-out labelled series
    best. Uses the classifier's ``config_``, ``standardizer_``, the random-kernel member's state and
    ``_cnn_member_proba``; sets ``rk_ridge_``, ``rk_beta_``, ``cnn_weight_`` and ``transductive_``
    (the unlabelled series' key and probabilities, which :meth:`predict_proba_parts` returns for
    the same series without recomputing them).

    A share is kept only when it wins clearly: its held-out log-loss must be below the one
    without pseudo-labels by more than one standard error of the paired per-series differences
    (:func:`_clear_winner`); when the check cannot tell, the ridge stays as it was.

    The held-out check is cross-fitted, so that no pseudo-label was made by a model that saw the
    series it is judged on: for a fold ``f`` of the CNN members' folds, a teacher made of the CNN
    members that trained without ``f`` and a ridge fitted without ``f`` pseudo-labels the
    unlabelled series; for every share, a ridge on the other folds plus that share of
    pseudo-labels predicts fold ``f``, mixed with those CNN members' out-of-fold logits (softmax
    temperature and mixture weight chosen on the fold, for every share alike). The log-losses are
    pooled over the folds that time allows (at least one), the share with the least wins clearly (below), and
    the final ridge is refitted on all labelled series plus that share of the full mixture's
    pseudo-labels, with the temperature and weight found on the folds (their mean).
    """

    @staticmethod
    def _series_key(X: np.ndarray) -> str:
        """A digest of series ``X`` (their float32 values and shape)."""
        x = np.ascontiguousarray(X, dtype=np.float32)
        return f"{x.shape}:{hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest()}"

    def _self_train(self, X_unlabelled: np.ndarray, feats: np.ndarray, y_idx: np.ndarray, folds: np.ndarray | None,
                    oof_logits: np.ndarray, has_oof: np.ndarray, rows: int, deadline: float, hist: dict[str, Any]) -> None:
        """Self-training of the ridge member (see the class doc).

        Args:
            X_unlabelled: ``(M, T)`` / ``(M, C, T)`` raw unlabelled series.
            feats: ``(n, p)`` random-kernel features of the training series.
            y_idx: ``(n,)`` their class indices.
            folds: ``(n,)`` the CNN members' folds (``None``: one stratified split is made).
            oof_logits, has_oof: the CNN members' out-of-fold logits ``(n, K)`` and which rows have them.
            rows: How many unlabelled series to consider (the shares apply to that many of the
                most confident; :func:`self_training_rows`).
            deadline: ``time.perf_counter()`` value by which it must be done (after the first
                fold, folds that would pass it are skipped).
        """
        cfg = self.config_
        t0 = time.perf_counter()
        k = len(self.classes_)
        z_full = self.standardizer_.standardize(X_unlabelled)
        z = self.standardizer_.pool(z_full, self.standardizer_.length)
        f_u = self._rk_features(z if self.rk_length_ == z.shape[-1] else self.standardizer_.pool(z_full, self.rk_length_))
        p_members = self._cnn_member_proba(z)  # (members, M, K)
        p_cnn_u = p_members.mean(axis=0)
        if folds is None:
            folds = oof_folds(y_idx, k, int(cfg.rk_folds), cfg.seed)
        shares = (0.0, *(v * min(rows, len(f_u)) / len(f_u) for v in cfg.self_train_shares))
        row_losses: list[list[np.ndarray]] = [[] for _ in shares]  # per share: each held-out series' log-loss
        done, per_fold, evidence_by_fold = 0, 0.0, []
        # folds whose series have the CNN members' out-of-fold logits (all folds when none has)
        eval_folds = [f for f in range(int(cfg.rk_folds)) if has_oof[folds == f].all()] or list(range(int(cfg.rk_folds)))
        for f in eval_folds:
            held, rest = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
            if done and time.perf_counter() + per_fold > deadline - 0.5 * per_fold:
                break
            t_fold = time.perf_counter()
            teachers = [i for i in range(len(p_members)) if i % int(cfg.rk_folds) == f]
            cnn_ok = bool(teachers) and bool(has_oof[held].all())
            evidence = []
            none = np.zeros(0, np.int64)
            (_, ridge), = pseudo_label_ridges(self.rk_ridge_, feats[rest], y_idx[rest], f_u, none, none, (0.0,), loo=False)
            p_rk = softmax_rows(self.rk_beta_ * ridge.decision_function(f_u))
            teacher = self.cnn_weight_ * p_members[teachers].mean(axis=0) + (1.0 - self.cnn_weight_) * p_rk if cnn_ok else p_rk
            order, labels = pseudo_label_order(teacher)
            p_cnn_held = softmax_rows(self.cnn_beta_ * oof_logits[held]) if cnn_ok else None
            fits = pseudo_label_ridges(self.rk_ridge_, feats[rest], y_idx[rest], f_u, order, labels, shares, loo=False)
            for j, (_, ridge) in enumerate(fits):
                d = ridge.decision_function(feats[held])
                beta, loss = softmax_temperature(d, y_idx[held])
                p, w = softmax_rows(beta * d), 0.0
                if p_cnn_held is not None:
                    _, w = mixture_weight(p_cnn_held, p, y_idx[held])
                    p = w * p_cnn_held + (1.0 - w) * p
                row_losses[j].append(-np.log(np.clip(p[np.arange(len(held)), y_idx[held]], 1e-12, None)))
                evidence.append((beta, w))
            done += len(held)
            per_fold = time.perf_counter() - t_fold
            evidence_by_fold.append(evidence)
        best = _clear_winner(np.array([np.concatenate(r) for r in row_losses]))
        losses = np.array([np.concatenate(r).sum() for r in row_losses])
        share = shares[best]
        if best:
            p_rk = softmax_rows(self.rk_beta_ * self.rk_ridge_.decision_function(f_u))
            order, labels = pseudo_label_order(self.cnn_weight_ * p_cnn_u + (1.0 - self.cnn_weight_) * p_rk)
            (_, self.rk_ridge_), = pseudo_label_ridges(self.rk_ridge_, feats, y_idx, f_u, order, labels, (share,), loo=False)
            beta, w = np.mean([ev[best] for ev in evidence_by_fold], axis=0)  # over the folds checked
            self.rk_beta_ = float(beta)
            if has_oof.any():
                self.cnn_weight_ = float(w)
        p_rk_u = softmax_rows(self.rk_beta_ * self.rk_ridge_.decision_function(f_u))
        self.transductive_ = (self._series_key(X_unlabelled), {"cnn": p_cnn_u, "rk": p_rk_u})
        tried = {round(sh, 4): round(float(v / max(done, 1)), 4) for sh, v in zip(shares, losses)}
        share = round(share, 4)
        hist.update(self_train_held_out_log_loss=tried, self_train_held_out_series=int(done), self_train_share=share,
                    self_train_cnn_weight=round(self.cnn_weight_, 3), self_train_seconds=round(time.perf_counter() - t0, 1))
        self._message(f"[self-training] pseudo-labelled share {share} of {len(f_u)} unlabelled series "
                      f"(held-out log-loss by share on {done} series: {tried}; {time.perf_counter() - t0:.0f}s)")
