"""Raw-series baselines for the evaluation report: a 1-D CNN trained from scratch on the
gap-filled index series of a pixel.

:class:`CNN1DClassifier` is a TempCNN-style network (Pelletier, Webb, Petitjean, "Temporal
convolutional neural network for the classification of satellite image time series", Remote
Sensing 2019): ``depth`` blocks of 1-D convolution + batch norm + ReLU + dropout over the
``(C, T)`` series, then the feature map is *flattened* (so the network knows *when* a pattern
happens, which separates crops with the same shape of season) and passed through one hidden
dense layer to the class logits. It sees no recurrence plot, no image patch and no unlabelled
pixel: it is the "supervised on the raw series" reference next to PIMC.

Conventions follow scikit-learn: ``fit(X, y)`` returns ``self``; learned attributes end in
``_``; ``predict`` returns class labels as given to ``fit``. Inputs are standardised per channel
with the training mean / standard deviation. Training is deterministic on CPU for a given
``seed`` (batch order, initialisation, dropout).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.config import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Checked, declared, param
from pimc_core.errors import ConfigError, InputError

__all__ = ["CNN1DClassifier", "CNN1DConfig", "TempCNN"]


@declared
@dataclass
class CNN1DConfig(Checked):
    """Architecture and training of :class:`CNN1DClassifier`.

    Attributes:
        filters: channels of every convolution block.
        depth: convolution blocks.
        kernel_size: odd kernel of the convolutions ('same' padding).
        hidden: units of the dense layer after flattening.
        dropout: dropout after every block and the dense layer.
        steps: optimisation steps (batches); small training sets get at least
            ``min_epochs`` passes, whichever is more, capped at ``max_steps``.
        min_epochs, max_steps: see ``steps``.
        batch_size: series per step (the whole set when it is smaller).
        lr, weight_decay: AdamW; the learning rate follows a short warm-up and a cosine decay.
        label_smoothing: cross-entropy label smoothing.
        noise: Gaussian noise added to the standardised series while training (std; 0: off).
        seed: everything random derives from it.
    """

    filters: int = param(32, POSITIVE_INT)
    depth: int = param(3, POSITIVE_INT)
    kernel_size: int = param(5, POSITIVE_INT)  # odd: _check
    hidden: int = param(128, POSITIVE_INT)
    dropout: float = param(0.2, FRACTION)
    steps: int = param(300, POSITIVE_INT)
    min_epochs: int = param(10, COUNT)
    max_steps: int = param(1500, POSITIVE_INT)
    batch_size: int = param(128, POSITIVE_INT)
    lr: float = param(2e-3, POSITIVE)
    weight_decay: float = param(1e-4, NON_NEGATIVE)
    label_smoothing: float = param(0.0, FRACTION)
    noise: float = param(0.02, NON_NEGATIVE)
    seed: int = param(0, COUNT)

    _config_name: ClassVar[str] = "cnn1d"

    def _check(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"cnn1d.kernel_size must be odd; got {self.kernel_size}")


class TempCNN(nn.Module):
    """``(N, C, T)`` → ``(N, n_classes)`` logits (see the module docstring)."""

    def __init__(self, in_channels: int, n_dates: int, n_classes: int, cfg: CNN1DConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(cfg.depth):
            layers += [nn.Conv1d(c, cfg.filters, cfg.kernel_size, padding=cfg.kernel_size // 2, bias=False),
                       nn.BatchNorm1d(cfg.filters), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout)]
            c = cfg.filters
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(cfg.filters * n_dates, cfg.hidden, bias=False), nn.BatchNorm1d(cfg.hidden),
            nn.ReLU(inplace=True), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class CNN1DClassifier:
    """A 1-D CNN (TempCNN-style) trained from scratch on ``(N, C, T)`` series.

    Args:
        config: :class:`CNN1DConfig` (default values when None); keyword arguments override
            its fields, e.g. ``CNN1DClassifier(steps=200, seed=1)``.
        device: torch device (default CPU).

    Attributes (after :meth:`fit`):
        classes_: the sorted class labels. mean_, std_: (C,) standardisation.
        net_: the trained :class:`TempCNN`. history_: steps, first / last loss, seconds.
    """

    def __init__(self, config: CNN1DConfig | None = None, *, device: str | torch.device = "cpu", **overrides: Any) -> None:
        cfg = config or CNN1DConfig()
        if overrides:
            known = {f.name for f in dataclasses.fields(CNN1DConfig)}
            bad = sorted(k for k in overrides if k not in known)
            if bad:
                raise ConfigError(f"CNN1DClassifier: unknown option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
            cfg = dataclasses.replace(cfg, **overrides)
        self.config = cfg
        self.device = torch.device(device)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check_x(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float32)
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3:
            raise InputError(f"series must be (N, C, T) or (N, T); got shape {X.shape}")
        if not np.isfinite(X).all():
            raise InputError("series contain NaN or infinite values: gap-fill them first")
        return X

    def _standardise(self, X: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((X - self.mean_[None, :, None]) / self.std_[None, :, None])

    # ------------------------------------------------------------------ API
    def fit(self, X: np.ndarray, y: np.ndarray) -> "CNN1DClassifier":
        """Train on series ``X`` (N, C, T) and labels ``y`` (N,); returns ``self``."""
        cfg = self.config
        X = self._check_x(X)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise InputError(f"labels have shape {y.shape}; expected ({X.shape[0]},)")
        if X.shape[0] < 2:
            raise InputError("the 1-D CNN needs at least 2 training series")
        t0 = time.perf_counter()
        self.classes_ = np.unique(y)
        yi = torch.from_numpy(np.searchsorted(self.classes_, y).astype(np.int64))
        self.mean_ = X.mean(axis=(0, 2)).astype(np.float32)
        self.std_ = np.maximum(X.std(axis=(0, 2)), 1e-6).astype(np.float32)
        xs = self._standardise(X)
        n, c, t = X.shape
        bs = min(cfg.batch_size, n)
        per_epoch = max(1, n // bs)
        total = min(cfg.max_steps, max(cfg.steps, cfg.min_epochs * per_epoch))
        g = torch.Generator().manual_seed(int(cfg.seed))
        torch.manual_seed(int(cfg.seed))
        net = TempCNN(c, t, len(self.classes_), cfg).to(self.device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        warm = max(1, min(20, total // 10))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
        net.train()
        losses: list[float] = []
        step = 0
        while step < total:
            perm = torch.randperm(n, generator=g)
            for b in range(per_epoch):
                if step >= total:
                    break
                idx = perm[b * bs:(b + 1) * bs] if b < per_epoch - 1 else perm[b * bs:]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                xb = xs.index_select(0, idx)
                if cfg.noise > 0:
                    xb = xb + torch.randn(xb.shape, generator=g) * cfg.noise
                logits = net(xb.to(self.device))
                loss = F.cross_entropy(logits, yi.index_select(0, idx).to(self.device), label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                step += 1
        net.eval()
        self.net_ = net
        k = max(1, len(losses) // 10)
        self.history_ = {"steps": step, "loss_start": round(float(np.mean(losses[:k])), 4),
                         "loss_end": round(float(np.mean(losses[-k:])), 4), "seconds": round(time.perf_counter() - t0, 2)}
        return self

    def predict_proba(self, X: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Class probabilities (N, K), columns in the order of ``classes_``."""
        if not hasattr(self, "net_"):
            raise InputError("CNN1DClassifier: call fit() first")
        X = self._check_x(X)
        if X.shape[1:] != (len(self.mean_), self.net_.head[1].in_features // self.config.filters):
            raise InputError(f"series of shape {X.shape[1:]} do not match the training shape "
                             f"({len(self.mean_)}, {self.net_.head[1].in_features // self.config.filters})")
        xs = self._standardise(X)
        out = []
        with torch.no_grad():
            for s in range(0, len(xs), batch_size):
                out.append(F.softmax(self.net_(xs[s:s + batch_size].to(self.device)), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (N,)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
