"""PIMC pixel-series classifier: a scikit-learn estimator that mixes a CNN ensemble (recurrence-plot
+ series encoders, contrastive pretraining, fine-tuning) with a random-kernel ridge member, all
inside a wall-clock budget.

Pipeline of :meth:`SeriesClassifier.fit`:

1. **Preparation** (:mod:`~pimc_core.estimators.standardizer`) — gaps filled linearly in time,
   one mean / std per channel from the *training* series (the series level is kept); long series
   average-pooled to ``max_length`` steps for the CNNs (the random-kernel member sees up to
   ``rk_max_length``).
2. **Random-kernel member** (:mod:`~pimc_core.estimators.rk_member`, ``random_kernels``) —
   fitted first; its measured time comes off the CNN budget.
3. **CNN ensemble** (:mod:`~pimc_core.estimators.cnn_ensemble`, networks in
   :mod:`~pimc_core.estimators.series_net`) — budget plan from measured step times, optional
   PIMC contrastive pretraining, fine-tuning of ``ensemble`` members; probabilities averaged.
4. **Mixture** — the CNN temperature and weight against the random-kernel member chosen on
   out-of-sample evidence.
5. **Self-training** (:mod:`~pimc_core.estimators.self_training`, with unlabelled series) — the
   mixture pseudo-labels the unlabelled series; the ridge is refitted with the most confident,
   class-balanced share of them that clearly lowers the mixture's log-loss on held-out training
   series, judged with a teacher that did not see them (or none), within ``self_train_max_share``
   of the budget.

The parameters are declared by :class:`~pimc_core.estimators.series_config.SeriesModelConfig`
(same names, defaults and constraints); the number of epochs of each phase is chosen from the
data size and a measured throughput, so that the whole fit stays within ``budget_s`` seconds
(give ``epochs`` for a plan that does not depend on time). Deterministic for a given seed on CPU.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from pimc_core.config import check_params
from pimc_core.devices import resolve_device
from pimc_core.errors import InputError
from pimc_core.estimators.cnn_ensemble import CnnEnsemble
from pimc_core.estimators.rk_member import RandomKernelMember, oof_folds
from pimc_core.estimators.self_training import SelfTraining, self_training_rows
from pimc_core.estimators.series_config import SeriesModelConfig, check_series_rules
from pimc_core.estimators.standardizer import SeriesStandardizer
from pimc_core.estimators.trainer import Runtime

__all__ = ["SeriesClassifier"]

_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(SeriesModelConfig))


class SeriesClassifier(CnnEnsemble, RandomKernelMember, SelfTraining, ClassifierMixin, BaseEstimator):
    """PIMC pixel-series classifier (fit / predict), see the module docstring.

    Every parameter of :class:`~pimc_core.estimators.series_config.SeriesModelConfig` is a
    keyword argument of the same name and default (documented there), plus:

    Args:
        verbose: Show tqdm progress bars and phase messages.
        log: Where phase messages go (default ``print``).

    Attributes:
        classes_: ``(K,)`` the training labels, sorted.
        config_: The checked :class:`SeriesModelConfig` the last fit ran with.
        device_: The torch device the networks run on.
        standardizer_: The fitted :class:`~pimc_core.estimators.standardizer.SeriesStandardizer`.
        members_: The fitted networks of the ensemble.
        rk_transform_: The random-kernel transform (``None`` when that member is off / skipped).
        rk_hydra_: The competing-kernel transform whose features join it (``None`` when
            ``rk_hydra_groups`` is 0 or the member is off / skipped).
        rk_ridge_: Its :class:`~pimc_core.estimators.ridge.RidgeLOO` classifier.
        rk_length_: Time steps the random-kernel member sees (0 when off / skipped).
        rk_beta_, cnn_beta_: Inverse softmax temperatures of the ridge's decision values and
            of the CNN members' logits.
        cnn_weight_: Weight of the CNN ensemble's probabilities; ``1 - cnn_weight_`` goes to the
            random-kernel member.
        transductive_: ``(key, {"cnn": (M, K), "rk": (M, K)})`` the unlabelled series'
            digest and each member's probabilities, set by self-training (:meth:`predict_proba_parts`
            returns them for the same series).
        history_: Timings and choices of the last :meth:`fit` (epochs, members, losses).
    """

    _parameter_constraints: dict = {
        **SeriesModelConfig._parameter_constraints,
        "verbose": ["boolean"],
        "log": [callable, None],
    }

    def __init__(
        self, *, branches=("series",), series_width=32, series_depth=3, series_kernel=7, series_bins=4,
        rp_width=16, rp_depth=3, rp_size=64, rp_stem_stride=2, level_plot=True, diff_channel=True,
        embed_dim=128, dropout=0.1, max_length=256, pretrain=True, pretrain_share=0.2,
        pretrain_max_epochs=20, temperature=0.07, proj_dim=64, modality_dropout=0.1, epochs=None,
        min_epochs=20, max_epochs=120, ensemble=5, batch_size=64, pretrain_batch_size=256, lr=3e-3,
        weight_decay=0.05, label_smoothing=0.1, mixup=0.0, augment=1.0, budget_s=540.0, seed=0,
        device="auto", amp=True, threads=0, random_kernels=True, rk_features=10_000, rk_max_share=0.5,
        rk_folds=5, rk_hydra_groups=0, rk_max_length=2048, self_train_shares=(),
        self_train_max_share=0.25,
        verbose: bool = False, log: Callable[[str], None] | None = None,
    ) -> None:
        params = dict(locals())  # every argument stored unchanged (scikit-learn's convention)
        del params["self"]
        vars(self).update(params)

    @classmethod
    def from_config(
        cls, config: SeriesModelConfig | Mapping[str, Any] | None = None, *, verbose: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> SeriesClassifier:
        """A classifier with the parameters of ``config`` (a :class:`SeriesModelConfig`, or a
        mapping for :meth:`SeriesModelConfig.from_dict`, ``preset`` key included)."""
        if not isinstance(config, SeriesModelConfig):
            config = SeriesModelConfig.from_dict(config)
        return cls(**{name: getattr(config, name) for name in _CONFIG_FIELDS}, verbose=verbose, log=log)

    def get_config(self) -> SeriesModelConfig:
        """The parameters as a checked :class:`SeriesModelConfig`.

        Raises:
            ConfigError: a parameter breaks its declared constraint or a rule between them
                (``SeriesClassifier.{name} must be ...; got ...``).
        """
        check_params(self)
        check_series_rules(self, type(self).__name__)
        return SeriesModelConfig(**{name: getattr(self, name) for name in _CONFIG_FIELDS})

    def _message(self, msg: str) -> None:
        if self.verbose:
            (self.log or print)(msg)

    def _runtime(self) -> Runtime:
        return Runtime(self.device_, self.config_.amp, bool(self.verbose), self.log or print)

    # -- public API -------------------------------------------------------------------------

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_unlabelled: np.ndarray | None = None,
        predict_size: int | None = None,
    ) -> SeriesClassifier:
        """Fit on labelled series (and optionally unlabelled ones: pretraining, self-training).

        Args:
            X: ``(N, T)`` or ``(N, C, T)`` training series, NaN for missing values.
            y: ``(N,)`` labels (any sortable type).
            X_unlabelled: ``(M, T)`` / ``(M, C, T)`` extra series without labels (e.g. the
                series to classify), used by contrastive pretraining and self-training.
            predict_size: How many series will be predicted after the fit (default: the number
                of unlabelled series); their inference time is kept inside ``budget_s``.

        Returns:
            ``self``.

        Raises:
            ConfigError: A bad parameter (named, with its value).
            InputError: Inconsistent shapes, fewer than two classes, or no valid values.
        """
        cfg = self.config_ = self.get_config()
        self.device_ = resolve_device(cfg.device)
        rt = self._runtime()
        t_start = time.perf_counter()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        y = np.asarray(y)
        X = np.asarray(X, dtype=np.float32)
        if X.shape[0] != y.shape[0]:
            raise InputError(f"{X.shape[0]} series but {y.shape[0]} labels")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputError(f"need at least two classes to train a classifier; got {len(self.classes_)}")
        self.standardizer_ = SeriesStandardizer().fit(X, cfg.max_length)
        Z_full = self.standardizer_.standardize(X)
        Z = torch.from_numpy(self.standardizer_.pool(Z_full, self.standardizer_.length)).to(self.device_)
        Yt = torch.from_numpy(y_idx.astype(np.int64)).to(self.device_)
        n, c, t = Z.shape
        k = len(self.classes_)
        Zall = Z
        if X_unlabelled is not None and len(X_unlabelled):
            Zu = torch.from_numpy(self.standardizer_.transform(np.asarray(X_unlabelled, dtype=np.float32))).to(self.device_)
            Zall = torch.cat([Z, Zu], dim=0)
        gen = torch.Generator().manual_seed(cfg.seed)
        np_rng = np.random.default_rng(cfg.seed)
        # small training sets: smaller batches, so that an epoch is several optimisation steps
        bs = int(min(cfg.batch_size, max(8, n // 8), n))
        hist: dict[str, Any] = {"n_train": int(n), "n_unlabelled": int(Zall.shape[0] - n), "length": int(t), "channels": int(c)}
        n_pred = int(predict_size if predict_size is not None else (Zall.shape[0] - n))

        # random-kernel member first: its measured time comes off the CNN budget
        self.rk_transform_, self.rk_hydra_, self.rk_ridge_ = None, None, None
        self.rk_beta_, self.cnn_beta_, self.cnn_weight_ = 1.0, 1.0, 1.0
        self.transductive_ = None
        rk_pred_s = self._fit_random_kernels(Z_full, Z, y_idx, k, n_pred, hist) if cfg.random_kernels else 0.0
        feats, self._rk_train_feats = getattr(self, "_rk_train_feats", None), None
        n_u = int(Zall.shape[0] - n)
        self_train = feats is not None and n_u > 0 and bool(cfg.self_train_shares)
        st_rows, st_s = 0, 0.0
        if self_train:  # the most confident unlabelled series that fit self_train_max_share of the budget
            st_rows, st_s = self_training_rows(n, n_u, feats.shape[1], cfg.self_train_shares, cfg.self_train_max_share * cfg.budget_s)
            self_train = st_rows > 0
            hist.update(self_train_rows=st_rows, self_train_estimated_seconds=round(st_s, 1))
        deadline_total = t_start + cfg.budget_s - rk_pred_s - st_s  # keep time to score the predicted series
        # CNN member i trains without fold i: out-of-fold evidence for the mixture
        folds = oof_folds(y_idx, k, int(cfg.rk_folds), cfg.seed) if self.rk_ridge_ is not None else None

        plan = self._plan(rt, Z, Zall, Yt, k, bs, n_pred, deadline_total, np_rng, hist)
        if plan.pretraining is not None:
            self._pretrain(rt, plan, Zall, gen, hist)
        oof_logits, has_oof = self._finetune(rt, plan, Z, Yt, k, bs, folds, deadline_total, hist)
        if self.rk_ridge_ is not None:
            self._choose_mixture(oof_logits, has_oof, y_idx, hist)
        if self_train:
            self._self_train(X_unlabelled, feats, y_idx, folds, oof_logits, has_oof, st_rows, t_start + cfg.budget_s, hist)
        del feats
        hist["members"] = len(self.members_)
        hist["fit_seconds"] = round(time.perf_counter() - t_start, 1)
        self.history_ = hist
        return self

    @torch.no_grad()
    def predict_proba(self, X: np.ndarray, batch_size: int = 1024, keep: tuple[bool, ...] | None = None) -> np.ndarray:
        """Class probabilities ``(N, K)``, columns ordered as ``classes_``: the CNN ensemble's
        mean, mixed with the random-kernel member's by ``cnn_weight_``.

        Args:
            X: ``(N, T)`` / ``(N, C, T)`` series, NaN for missing values.
            batch_size: Inference batch size.
            keep: Optional per-branch flags (order of ``branches``) to run with a branch
                switched off.
        """
        parts = self.predict_proba_parts(X, batch_size, keep)
        if "rk" not in parts:
            return parts["cnn"]
        return self.cnn_weight_ * parts["cnn"] + (1.0 - self.cnn_weight_) * parts["rk"]

    @torch.no_grad()
    def predict_proba_parts(self, X: np.ndarray, batch_size: int = 1024, keep: tuple[bool, ...] | None = None) -> dict[str, np.ndarray]:
        """Each member's class probabilities: ``{"cnn": (N, K), "rk": (N, K)}`` (``"rk"`` only
        when the random-kernel member was fitted); arguments as :meth:`predict_proba`."""
        check_is_fitted(self, "members_")
        cached = getattr(self, "transductive_", None)
        if keep is None and cached is not None and cached[0] == self._series_key(X):
            return {name: p.copy() for name, p in cached[1].items()}
        Z_full = self.standardizer_.standardize(X)
        Zn = self.standardizer_.pool(Z_full, self.standardizer_.length)
        parts = {"cnn": self._cnn_proba(Zn, batch_size, keep)}
        if self.rk_ridge_ is not None:
            parts["rk"] = self._rk_proba(Zn if self.rk_length_ == Zn.shape[-1] else self.standardizer_.pool(Z_full, self.rk_length_))
        return parts

    def _cnn_proba(self, Zn: np.ndarray, batch_size: int = 1024, keep: tuple[bool, ...] | None = None) -> np.ndarray:
        """The CNN ensemble's mean probabilities ``(N, K)`` of standardised, pooled series ``(N, C, T)``."""
        return self._cnn_member_proba(Zn, batch_size, keep).mean(axis=0)

    @torch.no_grad()
    def _cnn_member_proba(self, Zn: np.ndarray, batch_size: int = 1024, keep: tuple[bool, ...] | None = None) -> np.ndarray:
        """Each CNN member's probabilities ``(members, N, K)`` of standardised, pooled series ``(N, C, T)``."""
        rt = self._runtime()
        Z = torch.from_numpy(Zn)
        out = np.zeros((len(self.members_), Z.shape[0], len(self.classes_)), dtype=np.float64)
        for mi, net in enumerate(self.members_):
            net.eval()
            for s in range(0, Z.shape[0], batch_size):
                xb = Z[s : s + batch_size].to(self.device_)
                mask = None
                if keep is not None:
                    mask = torch.tensor([[float(v) for v in keep]], device=self.device_).expand(xb.shape[0], -1)
                with rt.autocast():
                    logits = net(xb, mask)
                out[mi, s : s + xb.shape[0]] = torch.softmax(self.cnn_beta_ * logits.float(), dim=1).cpu().numpy()
        return out

    def predict(self, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Predicted labels ``(N,)`` (values of ``classes_``); ``kwargs`` as :meth:`predict_proba`."""
        proba = self.predict_proba(X, **kwargs)
        return self.classes_[np.argmax(proba, axis=1)]
