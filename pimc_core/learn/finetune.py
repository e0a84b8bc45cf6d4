"""Downstream training and evaluation of a :class:`~pimc_core.models.pimc_net.PimcNet`.

* :func:`finetune_classifier` — pixel classification by cross-entropy, encoders frozen (only
  the head learns, on embeddings computed once) or fine-tuned (at ``encoder_lr_scale`` times
  the head's learning rate), with modality dropout so the classifier works with any subset of
  inputs, and the pretraining augmentations. ``head_steps`` first trains the head alone on the
  frozen encoders, then fine-tunes everything (LP-FT: Kumar et al., "Fine-Tuning can Distort
  Pretrained Features and Underperform Out-of-Distribution", ICLR 2022).
* :func:`finetune_forecaster` — forecasting: from the first ``L`` observations of a series,
  the next ``h`` values of the forecast index (NDVI). :func:`forecast_plan` chooses ``L → h``:
  32 → 10 when the series have at least 42 steps; otherwise ``h = max(1, min(10, T // 4))`` and
  ``L = T - h`` (e.g. 30 dates: 23 → 7). With longer series every window
  ``[o, o + L + h)`` is a training example.
* :func:`forecast_baselines` — persistence (the last observed value), seasonal-naive (the
  value one season, ``round(365 / median step)`` steps, earlier; when the input is shorter than a
  season, the training split's mean curve of the forecast steps — a climatology — takes its
  place and the result says so) and linear trend (least-squares line through the last
  ``min(L, 5)`` observations, extrapolated), scored with the model on the same split by
  :func:`forecast_metrics` (RMSE, MAE).
* :func:`linear_probe` — scikit-learn ``LogisticRegression`` on frozen embeddings.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pimc_core.errors import ConfigError, InputError
from pimc_core.learn.pretrain import AugmentConfig, _gen, augment_patches, augment_series, lr_lambda
from pimc_core.models.pimc_net import MODALITIES, PimcNet, modality_mask, random_modality_mask

__all__ = [
    "FinetuneConfig",
    "classification_metrics",
    "embed",
    "finetune_classifier",
    "finetune_forecaster",
    "forecast_baselines",
    "forecast_metrics",
    "forecast_plan",
    "linear_probe",
    "predict_forecast",
    "predict_proba",
]


@dataclass
class FinetuneConfig:
    """Hyper-parameters of the downstream training.

    Attributes:
        epochs: passes over the labelled pixels (``max_steps`` caps the total).
        batch_size: pixels per step.
        lr: learning rate of the head; encoders learn at ``lr * encoder_lr_scale``.
        freeze: keep the encoders frozen (only the head learns).
        head_steps: without ``freeze``, steps of training the head alone on the frozen encoders
            (embeddings computed once, at ``head_lr``, no warm-up) before everything is fine-tuned
            (LP-FT); 0: the head and the encoders start together from a random head.
        head_lr: learning rate of those head-only steps.
        modality_dropout: probability of dropping each modality of a pixel (at least one kept).
        augment: augmentations (as in pretraining).
        label_smoothing: cross-entropy label smoothing.
        mixup: Beta(mixup, mixup) mixing of pairs of fused embeddings and their labels before
            the classifier (manifold mixup; 0: off).
        seed: everything random derives from it.
    """

    epochs: int = 20
    max_steps: int = 0
    batch_size: int = 256
    lr: float = 3e-3
    encoder_lr_scale: float = 0.5
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    freeze: bool = False
    head_steps: int = 0
    head_lr: float = 1e-2
    modality_dropout: float = 0.2
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(drop_obs=0.15, series_noise=0.02))
    label_smoothing: float = 0.05
    mixup: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.augment, Mapping):
            self.augment = AugmentConfig(**self.augment)
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"finetune.{name} must be a positive integer; got {v!r}")
        if isinstance(self.head_steps, bool) or not isinstance(self.head_steps, int) or self.head_steps < 0:
            raise ConfigError(f"finetune.head_steps must be a non-negative integer; got {self.head_steps!r}")
        if not self.head_lr > 0:
            raise ConfigError(f"finetune.head_lr must be positive; got {self.head_lr!r}")
        if not 0 <= self.modality_dropout < 1:
            raise ConfigError(f"finetune.modality_dropout must be in [0, 1); got {self.modality_dropout!r}")


# ============================================================================ helpers
def _device(device: str | torch.device | None) -> torch.device:
    """None / ``auto``: a CUDA GPU when there is one, else the CPU (:func:`pimc_core.devices.resolve_device`)."""
    from pimc_core.devices import resolve_device

    return resolve_device(device)


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    g = torch.Generator()
    g.manual_seed(int(seed) * 7919 + int(epoch))
    perm = torch.randperm(n, generator=g).numpy()
    nb = max(1, n // batch_size)  # full batches (BatchNorm); a tiny set is one batch
    return [perm[i * batch_size:(i + 1) * batch_size] if i < nb - 1 else perm[i * batch_size:] for i in range(nb)]


def _progress_bar(progress: Any, total: int, desc: str):
    if progress is True:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="step", leave=False)
    return None


@torch.no_grad()
def _run_batches(fn: Callable[[slice], torch.Tensor], n: int, batch_size: int) -> np.ndarray:
    outs = []
    for s in range(0, n, batch_size):
        outs.append(fn(slice(s, min(n, s + batch_size))).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def _t(a: np.ndarray | None, device: torch.device, sl: slice | np.ndarray | None = None) -> torch.Tensor | None:
    if a is None:
        return None
    a = a if sl is None else a[sl]
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)


# ============================================================================ inference helpers
def predict_proba(net: PimcNet, series: np.ndarray | None, patches: np.ndarray | None, *,
                  batch_size: int = 1024, device: str | torch.device | None = None) -> np.ndarray:
    """Class probabilities (N, K) from whichever inputs are given."""
    dev = _device(device)
    net.to(dev).eval()
    n = (series if series is not None else patches).shape[0]
    return _run_batches(lambda sl: F.softmax(net.classify(_t(series, dev, sl), _t(patches, dev, sl)), dim=1), n, batch_size)


def embed(net: PimcNet, series: np.ndarray | None, patches: np.ndarray | None, *,
          batch_size: int = 1024, device: str | torch.device | None = None) -> np.ndarray:
    """Fused embeddings (N, 3D) (absent modalities are zero blocks)."""
    dev = _device(device)
    net.to(dev).eval()
    n = (series if series is not None else patches).shape[0]
    return _run_batches(lambda sl: net.embed(_t(series, dev, sl), _t(patches, dev, sl)), n, batch_size)


def predict_forecast(net: PimcNet, inputs: np.ndarray, *, batch_size: int = 1024,
                     device: str | torch.device | None = None) -> np.ndarray:
    """(N, C, L) series → (N, h) forecast of the forecast index."""
    dev = _device(device)
    net.to(dev).eval()
    return _run_batches(lambda sl: net.forecast(_t(inputs, dev, sl)), inputs.shape[0], batch_size)


# ============================================================================ classification
def finetune_classifier(
    net: PimcNet,
    series: np.ndarray,
    patches: np.ndarray | None,
    labels: np.ndarray,
    class_ids: Sequence[int],
    cfg: FinetuneConfig,
    *,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int, int, float], None] = False,
) -> dict[str, Any]:
    """Train ``net.classifier`` (and, unless frozen, the encoders) on labelled pixels, in place.

    Args:
        series: (N, C, T); patches: (N, B, k, k) or None; labels: (N,) class ids.
        class_ids: the class ids in the order of the classifier's outputs.

    Returns:
        ``{"steps", "loss_start", "loss_end", "seconds", "frozen"}`` (``steps`` not counting the
        ``head_steps``; with them also ``"head_steps"`` and ``"head_loss_end"``).
    """
    if cfg.head_steps and not cfg.freeze:
        t_head = time.perf_counter()
        head = finetune_classifier(
            net, series, patches, labels, class_ids,
            dataclasses.replace(cfg, freeze=True, epochs=max(cfg.epochs, cfg.head_steps), max_steps=cfg.head_steps,
                                lr=cfg.head_lr, warmup_steps=0, head_steps=0),
            device=device)
        out = finetune_classifier(net, series, patches, labels, class_ids, dataclasses.replace(cfg, head_steps=0),
                                  device=device, progress=progress)
        out.update(head_steps=head["steps"], head_loss_end=head["loss_end"],
                   seconds=round(time.perf_counter() - t_head, 1))
        return out
    if net.classifier is None:
        raise ConfigError("the network has no classifier (n_classes = 0)")
    ids = [int(c) for c in class_ids]
    if len(ids) != net.cfg.n_classes:
        raise ConfigError(f"{len(ids)} class ids for a classifier with {net.cfg.n_classes} outputs")
    lut = {c: i for i, c in enumerate(ids)}
    bad = sorted(set(int(v) for v in np.unique(labels)) - set(ids))
    if bad:
        raise ConfigError(f"labels {bad} are not among the classes {ids}")
    y_all = np.array([lut[int(v)] for v in labels], np.int64)
    dev = _device(device)
    net.to(dev)
    t0 = time.perf_counter()
    n = len(y_all)
    if n == 0:
        raise InputError("no labelled pixel to train the classifier on")
    has_patch = patches is not None and net.patch_encoder is not None
    present = tuple(m for m in MODALITIES if (m != "patch" or has_patch) and (m != "series" or net.series_encoder is not None))
    bs = min(cfg.batch_size, n)
    steps_per_epoch = len(_batches(n, bs, cfg.seed, 0))
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    losses: list[float] = []

    head = list(net.classifier.parameters())
    groups = [{"params": head, "lr": cfg.lr}]
    if cfg.freeze:
        for p in net.parameters():
            p.requires_grad_(False)
        for p in head:
            p.requires_grad_(True)
        # embeddings once; modality dropout on the fixed embeddings
        net.eval()
        with torch.no_grad():
            emb_parts: dict[str, list[torch.Tensor]] = {}
            for s in range(0, n, 1024):
                sl = slice(s, min(n, s + 1024))
                e = net.encode(_t(series, dev, sl), _t(patches, dev, sl) if has_patch else None)
                for k, v in e.items():
                    emb_parts.setdefault(k, []).append(v)
            emb = {k: torch.cat(v) for k, v in emb_parts.items()}
    else:
        encoders = [p for name, p in net.named_parameters()
                    if name.startswith(("rp_encoder.", "series_encoder.", "patch_encoder."))]
        for p in net.parameters():
            p.requires_grad_(False)
        for p in head + encoders:
            p.requires_grad_(True)
        groups.append({"params": encoders, "lr": cfg.lr * cfg.encoder_lr_scale})
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(min(cfg.warmup_steps, total // 5), total, 0.02))
    y_t = torch.from_numpy(y_all).to(dev)
    s_std = net.idx_std.detach().cpu()
    b_std = net.band_std.detach().cpu()
    bar = _progress_bar(progress, total, "fine-tune")
    step = 0
    try:
        for epoch in range(cfg.epochs):
            if step >= total:
                break
            if not cfg.freeze:
                net.train()
            else:
                net.classifier.train()
            for idx in _batches(n, bs, cfg.seed, epoch):
                if step >= total:
                    break
                g = _gen(cfg.seed, 1, step)
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
                ii = torch.from_numpy(idx).to(dev)
                base = modality_mask(len(idx), present, dev)
                mask = random_modality_mask(base, cfg.modality_dropout, g)
                if cfg.freeze:
                    e = {k: v.index_select(0, ii) for k, v in emb.items()}
                else:
                    x = _t(series, dev, idx)
                    x = augment_series(x, cfg.augment, g, noise_scale=s_std.expand(len(idx), -1))
                    p = None
                    if has_patch:
                        p = augment_patches(_t(patches, dev, idx), cfg.augment, g,
                                            noise_scale=b_std.expand(len(idx), -1))
                    e = net.encode(x, p)
                fused = net.fuse(e, mask)
                y = y_t.index_select(0, ii)
                if cfg.mixup > 0:
                    lam = float(torch.distributions.Beta(cfg.mixup, cfg.mixup).sample())
                    perm = torch.randperm(len(idx), generator=g).to(dev)
                    logits = net.classifier(lam * fused + (1 - lam) * fused.index_select(0, perm))
                    loss = lam * F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing) + (1 - lam) * \
                        F.cross_entropy(logits, y.index_select(0, perm), label_smoothing=cfg.label_smoothing)
                else:
                    logits = net.classifier(fused)
                    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for g_ in groups for p in g_["params"]], 5.0)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
                elif callable(progress):
                    progress(step, total, losses[-1])
    finally:
        if bar is not None:
            bar.close()
        for p in net.parameters():
            p.requires_grad_(True)
    net.eval()
    k = max(1, len(losses) // 10)
    return {"steps": step, "loss_start": round(float(np.mean(losses[:k])), 4),
            "loss_end": round(float(np.mean(losses[-k:])), 4), "seconds": round(time.perf_counter() - t0, 1),
            "frozen": bool(cfg.freeze)}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_ids: Sequence[int]) -> dict[str, Any]:
    """Overall accuracy, macro F1, Cohen's kappa, per-class F1 and the confusion matrix."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

    ids = [int(c) for c in class_ids]
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    if yt.size == 0:
        return {"n": 0}
    f1 = f1_score(yt, yp, labels=ids, average=None, zero_division=0)
    return {
        "n": int(yt.size),
        "accuracy": round(float((yt == yp).mean()), 4),
        "macro_f1": round(float(np.mean(f1)), 4),
        "kappa": round(float(cohen_kappa_score(yt, yp)), 4),
        "f1": {str(c): round(float(v), 4) for c, v in zip(ids, f1)},
        "confusion": confusion_matrix(yt, yp, labels=ids).tolist(),
    }


def linear_probe(train_emb: np.ndarray, train_y: np.ndarray, test_emb: np.ndarray, test_y: np.ndarray,
                 *, C: float = 1.0, max_iter: int = 2000) -> dict[str, Any]:
    """Logistic regression on frozen (standardised) embeddings; accuracy and macro F1 on the test set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    clf.fit(train_emb, train_y)
    pred = clf.predict(test_emb)
    ids = sorted(set(int(v) for v in np.unique(train_y)) | set(int(v) for v in np.unique(test_y)))
    m = classification_metrics(test_y, pred, ids)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n_train": int(len(train_y)), "n_test": int(len(test_y))}


# ============================================================================ forecasting
def forecast_plan(n_dates: int, horizon: int | None = None, input_len: int | None = None) -> tuple[int, int]:
    """``(L, h)``: observations read and steps forecast for series of ``n_dates`` steps.

    Default 32 → 10 when ``n_dates >= 42``; otherwise ``h = max(1, min(10, n_dates // 4))`` and
    ``L = n_dates - h``. Explicit values are checked (``L + h <= n_dates``, ``L >= 2``).

    Raises:
        ConfigError: the series are too short.
    """
    T = int(n_dates)
    if horizon is None and input_len is None:
        if T >= 42:
            return 32, 10
        h = max(1, min(10, T // 4))
        L = T - h
    else:
        h = int(horizon) if horizon is not None else max(1, min(10, T // 4))
        L = int(input_len) if input_len is not None else min(32, T - h)
    if h < 1 or L < 2 or L + h > T:
        raise ConfigError(f"forecast: {L} input steps + {h} forecast steps do not fit in series of {T} dates")
    return L, h


def forecast_windows(series: np.ndarray, input_len: int, horizon: int, channel: int,
                     max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All windows ``[o, o + L + h)`` of (N, C, T) series: inputs (M, C, L), targets (M, h)."""
    n, c, t = series.shape
    offs = list(range(0, t - input_len - horizon + 1))
    if max_windows is not None and len(offs) > max_windows:
        offs = offs[-max_windows:]
    xs = np.concatenate([series[:, :, o:o + input_len] for o in offs])
    ys = np.concatenate([series[:, channel, o + input_len:o + input_len + horizon] for o in offs])
    return np.ascontiguousarray(xs, np.float32), np.ascontiguousarray(ys, np.float32)


def forecaster_optimizer(net: PimcNet, cfg: FinetuneConfig, total: int):
    """AdamW + warm-up/cosine schedule over ``total`` steps for the forecast head, and the
    temporal encoders (at ``encoder_lr_scale``) unless ``cfg.freeze``; every other parameter is
    frozen. Returns ``(optimizer, scheduler, param_groups)``."""
    head = list(net.forecaster.parameters())
    groups = [{"params": head, "lr": cfg.lr}]
    temporal = [p for name, p in net.named_parameters() if name.startswith(("rp_encoder.", "series_encoder."))]
    if not cfg.freeze:
        groups.append({"params": temporal, "lr": cfg.lr * cfg.encoder_lr_scale})
    for p in net.parameters():
        p.requires_grad_(False)
    for g_ in groups:
        for p in g_["params"]:
            p.requires_grad_(True)
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(min(cfg.warmup_steps, total // 5), total, 0.02))
    return opt, sched, groups


def finetune_forecaster(
    net: PimcNet,
    inputs: np.ndarray,
    targets: np.ndarray,
    cfg: FinetuneConfig,
    *,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int, int, float], None] = False,
) -> dict[str, Any]:
    """Train ``net.forecaster`` (and, unless frozen, the temporal encoders) by MSE, in place.

    Args:
        inputs: (M, C, L) series windows; targets: (M, h) values of the forecast index.
    """
    if net.forecaster is None:
        raise ConfigError("the network has no forecaster (forecast_horizon = 0)")
    dev = _device(device)
    net.to(dev)
    t0 = time.perf_counter()
    n = inputs.shape[0]
    ci = net.cfg.indices.index(net.cfg.forecast_index)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = len(_batches(n, bs, cfg.seed, 0))
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    opt, sched, groups = forecaster_optimizer(net, cfg, total)
    std = float(net.idx_std[ci])
    aug = dataclasses.replace(cfg.augment, drop_obs=0.0)  # keep the last observation real
    s_std = net.idx_std.detach().cpu()
    frozen_emb = None
    if cfg.freeze:  # the encoders do not change: their features once, the head many times
        net.eval()
        with torch.no_grad():
            parts, lasts = [], []
            for s in range(0, n, 1024):
                xs = net.standardise_series(_t(inputs[s:s + 1024], dev))
                parts.append(net.temporal_view(net.temporal_embeddings(xs)))
                lasts.append(xs[:, ci, -1:])
            frozen_emb, frozen_last = torch.cat(parts), torch.cat(lasts)
        mean_ci = float(net.idx_mean[ci])
    losses: list[float] = []
    bar = _progress_bar(progress, total, "forecast")
    step = 0
    try:
        for epoch in range(cfg.epochs):
            if step >= total:
                break
            if cfg.freeze:
                net.forecaster.train()
            else:
                net.train()
            for idx in _batches(n, bs, cfg.seed + 17, epoch):
                if step >= total:
                    break
                g = _gen(cfg.seed, 2, step)
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
                if frozen_emb is not None:
                    ii = torch.from_numpy(idx).to(dev)
                    delta = net.forecaster(frozen_emb.index_select(0, ii))
                    pred = (frozen_last.index_select(0, ii) + delta) * std + mean_ci
                else:
                    x = _t(inputs, dev, idx)
                    x = augment_series(x, aug, g, noise_scale=s_std.expand(len(idx), -1) * 0.5)
                    pred = net.forecast(x)
                loss = F.mse_loss(pred / std, _t(targets, dev, idx) / std)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for g_ in groups for p in g_["params"]], 5.0)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
                elif callable(progress):
                    progress(step, total, losses[-1])
    finally:
        if bar is not None:
            bar.close()
        for p in net.parameters():
            p.requires_grad_(True)
    net.eval()
    k = max(1, len(losses) // 10)
    return {"steps": step, "loss_start": round(float(np.mean(losses[:k])), 5),
            "loss_end": round(float(np.mean(losses[-k:])), 5), "seconds": round(time.perf_counter() - t0, 1),
            "frozen": bool(cfg.freeze)}


def forecast_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """RMSE and MAE over every pixel and step."""
    d = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    return {"rmse": round(float(np.sqrt(np.mean(d ** 2))), 5), "mae": round(float(np.mean(np.abs(d))), 5)}


def forecast_baselines(inputs: np.ndarray, horizon: int, *, step_days: float | None = None,
                       train_targets: np.ndarray | None = None, trend_points: int = 5) -> dict[str, dict[str, Any]]:
    """Baseline forecasts of (N, L) input series of the forecast index.

    Returns:
        ``{name: {"pred": (N, h), "note": str}}`` for ``persistence``, ``seasonal_naive`` and
        ``linear_trend`` (see the module docstring).
    """
    x = np.asarray(inputs, np.float64)
    n, L = x.shape
    h = int(horizon)
    out: dict[str, dict[str, Any]] = {}
    out["persistence"] = {"pred": np.repeat(x[:, -1:], h, axis=1), "note": "last observed value"}
    m = int(round(365.0 / step_days)) if step_days else 0
    if m >= 1 and L >= m:
        pred = np.empty((n, h))
        for i in range(h):
            j = L - m + (i % m)
            pred[:, i] = x[:, j]
        out["seasonal_naive"] = {"pred": pred, "note": f"value {m} steps (one year) earlier"}
    elif train_targets is not None and len(train_targets):
        clim = np.asarray(train_targets, np.float64).mean(axis=0)
        out["seasonal_naive"] = {
            "pred": np.repeat(clim[None], n, axis=0),
            "note": f"climatology: training mean of the forecast steps (one season = {m or '?'} steps is longer than the {L}-step input)",
        }
    k = max(2, min(L, int(trend_points)))
    t = np.arange(k, dtype=np.float64)
    tc = t - t.mean()
    y = x[:, -k:]
    slope = ((y - y.mean(axis=1, keepdims=True)) * tc).sum(axis=1) / (tc ** 2).sum()
    intercept = y.mean(axis=1) - slope * t.mean()
    tf = np.arange(k, k + h, dtype=np.float64)
    out["linear_trend"] = {"pred": intercept[:, None] + slope[:, None] * tf[None], "note": f"line through the last {k} observations"}
    return out
