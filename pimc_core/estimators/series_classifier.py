"""PIMC pixel-series classifier: recurrence-plot + series encoders, contrastive pretraining,
supervised fine-tuning, all inside a wall-clock budget.

Pipeline (:class:`SeriesClassifier`):

1. **Preparation** — gaps (NaN) are filled linearly in time (:func:`pimc_core.series.gapfill.fill_gaps`);
   values are standardised with one mean / std per channel computed on the *training* series, so
   the series level is kept (NDVI 0.8 and 0.3 stay different). Very long series are
   average-pooled to ``max_length`` steps for the CNNs (the random-kernel member sees up to
   ``rk_max_length`` steps).
2. **Model** (:class:`PixelSeriesNet`) — two encoders of the same pixel:

   * an :class:`~pimc_core.models.RPEncoder` over recurrence plots ``|x_i - x_j|`` computed on the
     fly (pyts semantics: ``dimension=1, time_delay=1, threshold=None``), plus a *level plot*
     ``(x_i + x_j) / 2`` channel: a recurrence plot forgets the series level, the level plot
     gives it back;
   * a :class:`~pimc_core.models.SeriesEncoder` (1-D ResNet) over the series and its first
     differences, with time-binned pooling (keeps *when* things happen).

   Their embeddings are concatenated and classified by a
   :class:`~pimc_core.models.ClassifierHead`. Modality dropout (OmniSat-style) zeroes a whole
   branch for some samples during training, so the model also works with one branch only.
3. **Pretraining** (PIMC, optional) — symmetric InfoNCE (:class:`~pimc_core.models.contrastive.SymmetricInfoNCE`)
   between the RP embedding of one augmented view and the series embedding of another view of
   the same pixel, on all training *and* unlabelled series.
4. **Fine-tuning** — cross-entropy with label smoothing, AdamW, one-cycle schedule, light
   augmentation (jitter, scaling, level shift, masked-and-interpolated segments); an ensemble of
   ``ensemble`` members (different seeds) when the budget allows; probabilities averaged.

5. **Random-kernel member** (``random_kernels``, optional) — MiniRocket/MultiRocket-style
   features of the standardised series (:class:`~pimc_core.estimators.random_kernels.RandomKernelTransform`)
   and a ridge classifier whose penalty and softmax temperature come from exact leave-one-out
   decision values (:class:`~pimc_core.estimators.random_kernels.RidgeLOO`). It is fitted first and its
   measured time (plus the estimated time to score the series to predict) comes off the CNN
   budget. CNN member ``i`` then trains without fold ``i`` of the training series, so every
   held-out series has an out-of-sample CNN prediction; the CNN temperature and the mixture
   weight ``p = w · p_cnn + (1 − w) · p_ridge`` minimise the log-loss on that evidence.

The number of epochs of each phase is chosen from the data size and a measured throughput so
that the whole fit stays within ``budget_s`` seconds. Deterministic for a given seed on CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.devices import resolve_device
from pimc_core.errors import ConfigError, InputError
from pimc_core.estimators.random_kernels import CompetingKernelTransform, RandomKernelTransform, RidgeLOO, softmax_temperature
from pimc_core.models.contrastive import SymmetricInfoNCE
from pimc_core.models.encoders import RPEncoder, SeriesEncoder
from pimc_core.models.heads import ClassifierHead, ProjectionHead

__all__ = [
    "PRESETS",
    "SeriesModelConfig",
    "SeriesStandardizer",
    "PixelSeriesNet",
    "SeriesClassifier",
    "recurrence_plots_torch",
    "level_plots_torch",
]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass
class SeriesModelConfig:
    """Everything that defines a :class:`SeriesClassifier` run.

    Attributes:
        branches: Encoders used: any non-empty subset of ``("series", "rp")``. The default is the
            series encoder alone: on our benchmarks the fused RP + series model (with or
            without contrastive pretraining) was no more accurate and costs ~2.5× the time, which
            the budget then takes away from the ensemble (see ``PRESETS["pimc"]`` for the full
            PIMC model).
        series_width: First-stage width of the 1-D series encoder.
        series_depth: Residual stages of the series encoder.
        series_kernel: First kernel size of the series encoder (odd).
        series_bins: Temporal bins of the series encoder's pooling.
        rp_width: First-stage width of the 2-D RP encoder.
        rp_depth: Residual stages of the RP encoder.
        rp_size: Largest recurrence-plot side; longer series are average-pooled to this many
            steps before the plot is built.
        rp_stem_stride: Stride of the RP encoder's stem (2 quarters its cost).
        level_plot: Add the level plot ``(x_i + x_j) / 2`` as an extra RP channel.
        diff_channel: Feed first differences to the series encoder as an extra channel.
        embed_dim: Embedding size of each encoder.
        dropout: Dropout in the encoders and the classifier.
        max_length: Longest series fed to the CNNs; longer ones are average-pooled.
        pretrain: Run PIMC contrastive pretraining (needs both branches).
        pretrain_share: Share of the training budget given to pretraining.
        pretrain_max_epochs: Cap on pretraining epochs (over train + unlabelled series).
        temperature: Initial InfoNCE temperature.
        proj_dim: Size of the contrastive projection space.
        modality_dropout: Probability, per sample, of zeroing one branch during training.
        epochs: Fine-tuning epochs per member; ``None`` chooses them from the budget.
        min_epochs: Fewest fine-tuning epochs per member when the budget is short.
        max_epochs: Most fine-tuning epochs per member.
        ensemble: Most ensemble members (fewer if the budget does not allow ``min_epochs``
            for each).
        batch_size: Fine-tuning batch size.
        pretrain_batch_size: Contrastive batch size (negatives per anchor + 1).
        lr: Peak learning rate (one-cycle).
        weight_decay: AdamW weight decay.
        label_smoothing: Cross-entropy label smoothing.
        mixup: Mixup alpha for fine-tuning (0 disables).
        augment: Strength multiplier of the fine-tuning augmentations (0 disables).
        budget_s: Wall-clock seconds for the whole fit (pretraining + fine-tuning).
        seed: Random seed.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        amp: Use automatic mixed precision on CUDA (ignored on CPU).
        threads: Torch CPU threads (``0``: leave torch's default).
        random_kernels: Add a random-kernel member (:mod:`pimc_core.estimators.random_kernels`:
            MiniRocket/MultiRocket-style features + ridge with leave-one-out penalty choice).
            Its probabilities are mixed with the CNN ensemble's, the weight chosen on
            out-of-sample evidence: the ridge's leave-one-out decision values and the CNN
            members' predictions on the fold each member did not train on (with this member on,
            CNN member ``i`` trains on all but fold ``i mod rk_folds`` of the training series).
        rk_features: Target number of random-kernel features.
        rk_max_share: Skip the random-kernel member when its estimated cost (features of the
            training and predicted series + ridge fit) exceeds this share of ``budget_s``.
        rk_folds: Folds for the CNN members' out-of-fold predictions (random-kernel member on).
        rk_hydra_groups: Groups of competing kernels (Hydra-style counts,
            :class:`~pimc_core.estimators.random_kernels.CompetingKernelTransform`, 8 kernels a group) whose
            features join the random-kernel features before the ridge; ``0`` (default) leaves them out:
            on the generated 24-class table they did not help (0.846 with 64 groups vs 0.848 without).
        rk_max_length: Longest series the random-kernel member sees (longer ones are
            average-pooled to this many steps). It is separate from ``max_length`` because the
            kernel features cost only linearly in the length: long series keep their detail for
            this member while the CNNs see them pooled. When the full-length estimate exceeds
            ``rk_max_share`` of the budget, the member falls back to the CNNs' length.
    """

    branches: tuple[str, ...] = ("series",)
    series_width: int = 32
    series_depth: int = 3
    series_kernel: int = 7
    series_bins: int = 4
    rp_width: int = 16
    rp_depth: int = 3
    rp_size: int = 64
    rp_stem_stride: int = 2
    level_plot: bool = True
    diff_channel: bool = True
    embed_dim: int = 128
    dropout: float = 0.1
    max_length: int = 256
    pretrain: bool = True
    pretrain_share: float = 0.2
    pretrain_max_epochs: int = 20
    temperature: float = 0.07
    proj_dim: int = 64
    modality_dropout: float = 0.1
    epochs: int | None = None
    min_epochs: int = 20
    max_epochs: int = 120
    ensemble: int = 5
    batch_size: int = 64
    pretrain_batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    mixup: float = 0.0
    augment: float = 1.0
    budget_s: float = 540.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    threads: int = 0
    random_kernels: bool = True
    rk_features: int = 10_000
    rk_max_share: float = 0.5
    rk_folds: int = 5
    rk_hydra_groups: int = 0
    rk_max_length: int = 2048

    def __post_init__(self) -> None:
        if isinstance(self.branches, str):
            self.branches = (self.branches,)
        self.branches = tuple(self.branches)
        if not self.branches or any(b not in ("series", "rp") for b in self.branches) or len(set(self.branches)) != len(self.branches):
            raise ConfigError(f"branches must be a non-empty subset of ('series', 'rp'); got {self.branches!r}")
        ints = {
            "series_width": 1, "series_depth": 1, "series_kernel": 1, "series_bins": 1, "rp_width": 1,
            "rp_depth": 1, "rp_size": 2, "rp_stem_stride": 1, "embed_dim": 1, "max_length": 2,
            "pretrain_max_epochs": 0, "proj_dim": 1, "min_epochs": 1, "max_epochs": 1, "ensemble": 1,
            "batch_size": 2, "pretrain_batch_size": 2, "seed": 0, "threads": 0, "rk_features": 336, "rk_folds": 2, "rk_hydra_groups": 0,
            "rk_max_length": 9,
        }
        for name, lo in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ConfigError(f"{name} must be an integer >= {lo}; got {v!r}")
        if self.series_kernel % 2 == 0:
            raise ConfigError(f"series_kernel must be odd; got {self.series_kernel}")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1):
            raise ConfigError(f"epochs must be a positive integer or null; got {self.epochs!r}")
        floats = {
            "dropout": (0.0, 0.99), "pretrain_share": (0.0, 0.9), "temperature": (1e-4, 10.0),
            "modality_dropout": (0.0, 0.9), "lr": (1e-7, 10.0), "weight_decay": (0.0, 10.0),
            "label_smoothing": (0.0, 0.9), "mixup": (0.0, 10.0), "augment": (0.0, 10.0), "budget_s": (1.0, 1e7),
            "rk_max_share": (0.0, 0.9),
        }
        for name, (lo, hi) in floats.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ConfigError(f"{name} must be a number in [{lo}, {hi}]; got {v!r}")
        if self.rk_hydra_groups % 2:
            raise ConfigError(f"rk_hydra_groups must be even (half see the first differences); got {self.rk_hydra_groups}")
        if not isinstance(self.random_kernels, bool):
            raise ConfigError(f"random_kernels must be true or false; got {self.random_kernels!r}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda; got {self.device!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SeriesModelConfig:
        """Build from a mapping; unknown keys raise :class:`ConfigError` naming the key.

        A ``preset`` key (a name of :data:`PRESETS`) gives the starting values.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"series model config must be a mapping; got {type(data).__name__}")
        data = dict(data)
        preset = data.pop("preset", None)
        base: dict[str, Any] = {}
        if preset is not None:
            if preset not in PRESETS:
                raise ConfigError(f"series model config: unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
            base = dict(PRESETS[preset])
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"series model config: unknown key {key!r} (known: preset, {', '.join(sorted(known))})")
        base.update(data)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["branches"] = list(self.branches)
        return d

    def replace(self, **changes: Any) -> SeriesModelConfig:
        return dataclasses.replace(self, **changes)


#: Named configurations for :meth:`SeriesModelConfig.from_dict` (key ``preset``):
#: ``series`` — the 1-D series encoder ensemble (the default, best accuracy per CPU second);
#: ``pimc`` — the full PIMC model: RP encoder (+ level plot) fused with the series encoder,
#: contrastive pretraining on train + unlabelled series, modality dropout.
PRESETS: dict[str, dict[str, Any]] = {
    "series": {},
    "pimc": {"branches": ["series", "rp"], "pretrain": True, "ensemble": 3, "modality_dropout": 0.1},
}


# --------------------------------------------------------------------------------------------
# preparation
# --------------------------------------------------------------------------------------------


def _fill_gaps(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear gap filling along the last axis; returns (filled, ok) — rows with no valid value
    stay NaN and are flagged ``ok = False``."""
    try:
        from pimc_core.series.gapfill import fill_gaps
    except ImportError:  # pragma: no cover - gapfill ships with the package
        fill_gaps = None
    if fill_gaps is not None:
        res = fill_gaps(X, min_valid=1)
        return np.asarray(res.values, dtype=np.float32), np.asarray(res.ok)
    X = np.array(X, dtype=np.float32, copy=True)  # pragma: no cover
    t = np.arange(X.shape[-1])
    flat = X.reshape(-1, X.shape[-1])
    ok = np.isfinite(flat).any(axis=1)
    for row, good in zip(flat, ok):
        m = np.isfinite(row)
        if good and not m.all():
            row[:] = np.interp(t, t[m], row[m])
    return X, ok.reshape(X.shape[:-1])


@dataclass
class SeriesStandardizer:
    """Gap filling, length capping and global standardisation fitted on training series.

    One mean and one standard deviation per channel over all training values (not per series),
    so the level and amplitude of each series are kept relative to the training data.

    Attributes:
        mean: ``(C,)`` training means.
        std: ``(C,)`` training standard deviations.
        length: Time steps after length capping.
        raw_length: Time steps of the training series.
    """

    mean: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))
    length: int = 0
    raw_length: int = 0

    @staticmethod
    def _as_3d(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3 or X.shape[-1] < 1 or X.shape[0] < 1:
            raise InputError(f"series must have shape (N, T) or (N, C, T); got {X.shape}")
        return X

    def fit(self, X: np.ndarray, max_length: int = 512) -> SeriesStandardizer:
        """Fit on training series ``(N, T)`` or ``(N, C, T)`` (NaN = missing)."""
        X = self._as_3d(X)
        filled, _ = _fill_gaps(X)
        with np.errstate(all="ignore"):
            mean = np.nanmean(filled, axis=(0, 2))
            std = np.nanstd(filled, axis=(0, 2))
        if not np.all(np.isfinite(mean)):
            raise InputError("training series have no valid (finite) values")
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.raw_length = X.shape[-1]
        self.length = min(X.shape[-1], max_length)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(N, T)`` / ``(N, C, T)`` raw series → ``(N, C, length)`` float32 standardised
        (:meth:`standardize`, then :meth:`pool` to :attr:`length`)."""
        return self.pool(self.standardize(X), self.length)

    def standardize(self, X: np.ndarray) -> np.ndarray:
        """``(N, T)`` / ``(N, C, T)`` raw series → ``(N, C, raw_length)`` float32, gaps filled and
        standardised, not pooled.

        Series without any valid value become all-zero (the training mean).

        Raises:
            InputError: The number of channels or time steps differs from the training series.
        """
        X = self._as_3d(X)
        if X.shape[1] != self.mean.shape[0]:
            raise InputError(f"series have {X.shape[1]} channel(s) but the model was trained on {self.mean.shape[0]}")
        if X.shape[-1] != self.raw_length:
            raise InputError(f"series have {X.shape[-1]} time steps but the model was trained on {self.raw_length}")
        filled, _ = _fill_gaps(X)
        Z = (filled - self.mean[None, :, None]) / self.std[None, :, None]
        return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    @staticmethod
    def pool(Z: np.ndarray, length: int) -> np.ndarray:
        """``(N, C, T)`` → ``(N, C, min(length, T))`` float32, average-pooled when shorter."""
        if length < Z.shape[-1]:
            Z = F.adaptive_avg_pool1d(torch.from_numpy(Z), int(length)).numpy()
        return np.ascontiguousarray(Z, dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "length": self.length, "raw_length": self.raw_length}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeriesStandardizer:
        return cls(np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32),
                   int(state["length"]), int(state["raw_length"]))


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


def recurrence_plots_torch(x: torch.Tensor) -> torch.Tensor:
    """Unthresholded recurrence plots ``|x_i - x_j|`` (pyts ``RecurrencePlot()`` defaults).

    Args:
        x: ``(..., T)`` series.

    Returns:
        ``(..., T, T)`` plots, same dtype and device.
    """
    return (x.unsqueeze(-1) - x.unsqueeze(-2)).abs()


def level_plots_torch(x: torch.Tensor) -> torch.Tensor:
    """Level plots ``(x_i + x_j) / 2``: the series level that a recurrence plot forgets.

    Args:
        x: ``(..., T)`` series.

    Returns:
        ``(..., T, T)`` plots.
    """
    return 0.5 * (x.unsqueeze(-1) + x.unsqueeze(-2))


class PixelSeriesNet(nn.Module):
    """Fused per-pixel network: RP encoder + series encoder → classifier.

    Args:
        n_channels: Series channels ``C`` (e.g. 1 for NDVI only, 3 for NDVI/EVI/SAVI).
        n_classes: Number of classes.
        cfg: Architecture settings (see :class:`SeriesModelConfig`).

    Shape:
        ``forward``: ``(N, C, T)`` standardised series → ``(N, n_classes)`` logits.
    """

    def __init__(self, n_channels: int, n_classes: int, cfg: SeriesModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_channels = n_channels
        self.branches = tuple(cfg.branches)
        self.encoders = nn.ModuleDict()
        if "series" in self.branches:
            c_in = n_channels * (2 if cfg.diff_channel else 1)
            self.encoders["series"] = SeriesEncoder(
                c_in, cfg.series_width, cfg.series_depth, cfg.embed_dim, cfg.dropout, "bins", cfg.series_bins, cfg.series_kernel
            )
        if "rp" in self.branches:
            c_in = n_channels * (2 if cfg.level_plot else 1)
            self.encoders["rp"] = RPEncoder(c_in, cfg.rp_width, cfg.rp_depth, cfg.embed_dim, cfg.dropout, cfg.rp_stem_stride)
        self.classifier = ClassifierHead(cfg.embed_dim * len(self.branches), n_classes, hidden_dim=0, dropout=cfg.dropout)

    # -- inputs of each branch ------------------------------------------------------------

    def series_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T)`` → series-encoder input ``(N, C or 2C, T)``."""
        if not self.cfg.diff_channel:
            return x
        d = torch.diff(x, dim=-1, prepend=x[..., :1])
        return torch.cat([x, d], dim=1)

    def rp_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T)`` → RP-encoder input ``(N, C or 2C, T', T')`` with ``T' <= rp_size``."""
        if x.shape[-1] > self.cfg.rp_size:
            x = F.adaptive_avg_pool1d(x, self.cfg.rp_size)
        planes = [recurrence_plots_torch(x)]
        if self.cfg.level_plot:
            planes.append(level_plots_torch(x))
        return torch.cat(planes, dim=1)

    def embed(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        """Embedding ``(N, embed_dim)`` of one branch for series ``(N, C, T)``."""
        if branch == "series":
            return self.encoders["series"](self.series_input(x))
        return self.encoders["rp"](self.rp_input(x))

    def features(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated branch embeddings ``(N, B * embed_dim)``.

        Args:
            x: ``(N, C, T)`` standardised series.
            keep: Optional ``(N, B)`` 0/1 mask; a 0 zeroes that branch's embedding for that
                sample (modality dropout / a missing modality).
        """
        zs = [self.embed(x, b) for b in self.branches]
        if keep is not None:
            zs = [z * keep[:, i : i + 1].to(z.dtype) for i, z in enumerate(zs)]
        return torch.cat(zs, dim=1)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N, n_classes)`` for standardised series ``(N, C, T)``."""
        return self.classifier(self.features(x, keep))


# --------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------


def _augment(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Random, label-preserving perturbations of standardised series ``(N, C, T)``.

    Amplitude scaling (±5 %), level shift (±0.05 std), Gaussian jitter (0.03 std) and, for half
    of the series, one segment of up to 15 % of the length replaced by the straight line between
    its ends (what gap filling does to a cloudy stretch). ``strength`` scales all of it.
    """
    if strength <= 0:
        return x
    n, c, t = x.shape
    dev = x.device

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dev)

    def uni(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen).to(dev)

    x = x * (1 + 0.05 * strength * rnd(n, 1, 1)) + 0.05 * strength * rnd(n, 1, 1)
    x = x + 0.03 * strength * rnd(n, c, t)
    if t >= 8:
        seg = (uni(n) * 0.15 * min(strength, 2.0) * t).long().clamp(min=0)
        start = (uni(n) * (t - seg).clamp(min=1)).long()
        active = (uni(n) < 0.5) & (seg >= 2)
        if bool(active.any()):
            pos = torch.arange(t, device=dev)[None, :]
            s, e = start[:, None], (start + seg)[:, None].clamp(max=t - 1)
            inside = (pos > s) & (pos < e) & active[:, None]
            w = ((pos - s).float() / (e - s).clamp(min=1).float()).clamp(0, 1)
            xs = torch.gather(x, 2, s.expand(n, 1)[:, None, :].expand(n, c, 1))
            xe = torch.gather(x, 2, e.expand(n, 1)[:, None, :].expand(n, c, 1))
            line = xs + (xe - xs) * w[:, None, :]
            x = torch.where(inside[:, None, :], line, x)
    return x


def _contrastive_views(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently (and more strongly) augmented views for contrastive pretraining."""
    return _augment(x, 2.0, gen), _augment(x, 2.0, gen)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def _one_cycle(progress: float, warmup: float = 0.2, floor: float = 1e-3) -> float:
    """Learning-rate factor at training progress ``[0, 1]``: linear warm-up, cosine decay."""
    if progress < warmup:
        return 0.04 + 0.96 * progress / warmup
    q = (progress - warmup) / (1.0 - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(q, 1.0)))


#: Seconds of fine-tuning granted even when the budget is used up (so a model always trains).
_MIN_FINETUNE_S = 5.0


def _round_epochs(epochs: float) -> int:
    """Round an affordable number of epochs *down* onto a coarse grid (1, 2, 3, 4, 5, 6, 8, 10,
    12, 15, 20, 25, 30, 40, 50, 60, 80, 100, ...), so that small differences in measured speed
    give the same plan (and hence the same, seeded, result)."""
    grid = [1, 2, 3, 4, 5, 6, 8]
    scale = 10
    while grid[-1] < epochs:
        grid += [scale, int(scale * 1.2), int(scale * 1.5), 2 * scale, int(scale * 2.5),
                 3 * scale, 4 * scale, 5 * scale, 6 * scale, 8 * scale]
        scale *= 10
    best = 1
    for g in grid:
        if g <= epochs:
            best = g
    return best


def _softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` scores (float64)."""
    return scipy.special.softmax(np.asarray(z, dtype=np.float64), axis=1)


class _Progress:
    """tqdm progress bar when ``verbose``; a no-op otherwise."""

    def __init__(self, total: int, desc: str, verbose: bool) -> None:
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="ep", leave=False, dynamic_ncols=True, mininterval=1.0)

    def update(self, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(**postfix, refresh=False)
            self.bar.update(1)

    def set_total(self, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class SeriesClassifier:
    """PIMC pixel-series classifier (fit / predict), see the module docstring.

    Args:
        config: A :class:`SeriesModelConfig` or a mapping for :meth:`SeriesModelConfig.from_dict`.
        verbose: Show tqdm progress bars and phase messages.
        log: Where phase messages go (default ``print``).

    Attributes:
        classes_: ``(K,)`` the training labels, sorted.
        members: The fitted networks of the ensemble.
        rk_transform: The random-kernel transform (``None`` when that member is off / skipped).
        rk_hydra: The competing-kernel transform whose features join it (``None`` when
            ``rk_hydra_groups`` is 0 or the member is off / skipped).
        rk_ridge: Its :class:`~pimc_core.estimators.random_kernels.RidgeLOO` classifier.
        cnn_weight: Weight of the CNN ensemble's probabilities; ``1 - cnn_weight`` goes to the
            random-kernel member.
        history: Timings and choices of the last :meth:`fit` (epochs, members, losses).
    """

    def __init__(
        self,
        config: SeriesModelConfig | dict[str, Any] | None = None,
        verbose: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config if isinstance(config, SeriesModelConfig) else SeriesModelConfig.from_dict(config)
        self.verbose = verbose
        self._log = log or print
        self.classes_: np.ndarray | None = None
        self.standardizer: SeriesStandardizer | None = None
        self.members: list[PixelSeriesNet] = []
        self.history: dict[str, Any] = {}
        self.device = resolve_device(self.config.device)
        self.rk_transform: RandomKernelTransform | None = None
        self.rk_hydra: CompetingKernelTransform | None = None
        self.rk_ridge: RidgeLOO | None = None
        self.rk_beta = 1.0  # inverse temperature of the ridge's decision values
        self.cnn_beta = 1.0  # inverse temperature of the CNN members' logits
        self.cnn_weight = 1.0  # weight of the CNN ensemble in the mixture (1 - it: ridge)

    def log(self, msg: str) -> None:
        if self.verbose:
            self._log(msg)

    # -- helpers ----------------------------------------------------------------------------

    def _autocast(self) -> Any:
        if self.device.type == "cuda" and self.config.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cpu", enabled=False)

    def _new_net(self, n_channels: int, n_classes: int, seed: int) -> PixelSeriesNet:
        torch.manual_seed(seed)
        net = PixelSeriesNet(n_channels, n_classes, self.config).to(self.device)
        return net

    def _keep_mask(self, n: int, n_branches: int, gen: torch.Generator) -> torch.Tensor | None:
        p = self.config.modality_dropout
        if p <= 0 or n_branches < 2:
            return None
        drop = torch.rand(n, generator=gen) < p
        which = torch.randint(0, n_branches, (n,), generator=gen)
        keep = torch.ones(n, n_branches)
        keep[drop, which[drop]] = 0.0
        return keep.to(self.device)

    # -- phases -----------------------------------------------------------------------------

    def _pretrain_step_fn(self, net: PixelSeriesNet, heads: nn.ModuleDict, loss_fn: SymmetricInfoNCE) -> Callable:
        def step(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            va, vb = _contrastive_views(xb, gen)
            with self._autocast():
                za = heads["rp"](net.embed(va, "rp"))
                zb = heads["series"](net.embed(vb, "series"))
            return loss_fn(za.float(), zb.float())

        return step

    def _finetune_loss(self, net: PixelSeriesNet, xb: torch.Tensor, yb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        cfg = self.config
        xb = _augment(xb, cfg.augment, gen)
        keep = self._keep_mask(xb.shape[0], len(net.branches), gen)
        with self._autocast():
            if cfg.mixup > 0:
                lam = float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen))).beta(cfg.mixup, cfg.mixup))
                perm = torch.randperm(xb.shape[0], generator=gen).to(self.device)
                logits = net(lam * xb + (1 - lam) * xb[perm], keep)
                loss = lam * F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing) + (1 - lam) * F.cross_entropy(
                    logits.float(), yb[perm], label_smoothing=cfg.label_smoothing
                )
            else:
                logits = net(xb, keep)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
        return loss

    def _time_steps(
        self, step: Callable[[], torch.Tensor], params: list[nn.Parameter], modules: list[nn.Module], n_steps: int = 2
    ) -> float:
        """Seconds per optimisation step (median, after warm-up); weights and BN statistics restored."""
        saved = [copy.deepcopy(m.state_dict()) for m in modules]
        opt = torch.optim.SGD(params, lr=0.0)
        times = []
        warmup = 2  # the first steps pay one-off costs (kernel selection, allocations)
        for i in range(n_steps + warmup):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            step().backward()
            opt.step()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        for m, state in zip(modules, saved):
            m.load_state_dict(state)
        return float(np.median(times))

    def _run_epochs(
        self,
        params: list[nn.Parameter],
        modules: list[nn.Module],
        loss_of_batch: Callable[[np.ndarray, torch.Generator], torch.Tensor],
        n: int,
        batch_size: int,
        epochs: int,
        lr: float,
        seconds: float,
        gen: torch.Generator,
        desc: str,
        replan: Callable[[float], tuple[int, float]] | None = None,
        time_driven: bool = False,
    ) -> list[float]:
        """AdamW over up to ``epochs`` shuffled passes of ``n`` samples within ``seconds``.

        ``replan(first_epoch_seconds) -> (epochs, seconds)``, when given, is called once after
        the first epoch to correct the plan with the measured speed. With ``time_driven`` the
        run uses all of ``seconds`` (``epochs`` is then only a cap): the schedule follows the
        elapsed time from the first step, so a machine that is busier or quieter than it was
        when the plan was made still gets a fully annealed model, on time.

        The learning rate follows a one-cycle curve (linear warm-up over the first 20 %, cosine
        decay to ~0) of the *progress* ``max(step / total_steps, elapsed / seconds)``: when the
        machine is slower than planned, the schedule still anneals fully and training stops on
        time instead of being cut at a high learning rate.
        """
        cfg = self.config
        steps_per_epoch = max(1, n // batch_size)  # drop the last partial batch (BatchNorm)
        total = steps_per_epoch * epochs
        decay, no_decay = [], []
        for p in params:
            (no_decay if p.ndim <= 1 else decay).append(p)
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
        )
        scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and cfg.amp)
        for m in modules:
            m.train()
        losses: list[float] = []
        bar = _Progress(epochs, desc, self.verbose)
        t0 = time.perf_counter()
        step = 0
        progress = 0.0
        ep = 0
        try:
            while ep < epochs:
                perm = torch.randperm(n, generator=gen).numpy()
                tot, cnt = 0.0, 0
                for s in range(steps_per_epoch):
                    progress = step / total
                    if time_driven or step >= steps_per_epoch:  # past the first epoch, time may end the run
                        progress = max(progress, (time.perf_counter() - t0) / max(seconds, 1e-9))
                    if progress >= 1.0:
                        break
                    for group in opt.param_groups:
                        group["lr"] = lr * _one_cycle(progress)
                    idx = perm[s * batch_size : (s + 1) * batch_size] if n >= batch_size else perm
                    loss = loss_of_batch(idx, gen)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(params, 5.0)
                    scaler.step(opt)
                    scaler.update()
                    step += 1
                    tot += float(loss.detach())
                    cnt += 1
                if cnt:
                    losses.append(tot / cnt)
                bar.update(loss=f"{losses[-1]:.3f}" if losses else "nan")
                ep += 1
                if progress >= 1.0:
                    if ep < epochs:
                        self.log(f"[{desc}] time share used after {ep}/{epochs} epochs (schedule annealed)")
                    break
                if replan is not None and ep == 1:
                    epochs, seconds = replan(time.perf_counter() - t0)
                    epochs = max(epochs, 1)
                    total = steps_per_epoch * epochs
                    bar.set_total(epochs)
                    replan = None
        finally:
            bar.close()
        return losses

    @torch.no_grad()
    def _time_inference(self, net: PixelSeriesNet, xb: torch.Tensor) -> float:
        """Seconds per series of an eval-mode forward pass (median of 3 after a warm-up)."""
        was_training = net.training
        net.eval()
        times = []
        for i in range(4):
            t0 = time.perf_counter()
            with self._autocast():
                net(xb)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - t0)
        net.train(was_training)
        return float(np.median(times)) / max(1, xb.shape[0])

    @torch.no_grad()
    def _recalibrate_bn(self, net: PixelSeriesNet, Z: torch.Tensor, max_samples: int = 8192, batch: int = 512) -> None:
        """Re-estimate BatchNorm running statistics with the final weights on clean training series.

        The running averages kept during training mix statistics of earlier weights and of
        augmented inputs; with few optimisation steps (small data, short budgets) that bias
        hurts evaluation. One cumulative pass over (up to ``max_samples``) training series fixes it.
        """
        bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not bns:
            return
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        net.train()
        n = min(Z.shape[0], max_samples)
        order = torch.randperm(Z.shape[0], generator=torch.Generator().manual_seed(self.config.seed))[:n]
        step = max(2, min(batch, n))
        with self._autocast():
            for s in range(0, n, step):
                xb = Z[order[s : s + step].to(Z.device)]
                if xb.shape[0] >= 2:
                    net(xb)
        for m, mom in zip(bns, saved):
            m.momentum = mom
        net.eval()

    # -- random-kernel member --------------------------------------------------------------

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
        cfg = self.config
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
            self.log(f"[plan] random-kernel member on {length} steps: ~{est:.0f}s > {cfg.rk_max_share:.0%} of the budget")
        else:
            self.log("[plan] random-kernel member skipped")
            return 0.0
        self.rk_transform, self.rk_hydra = tr, hy
        hist["rk_length"] = self.rk_length
        feats = self._rk_features(Zn)
        t_feat = time.perf_counter() - t0
        ridge = RidgeLOO().fit(feats, y_idx, k)
        del feats
        beta, loss = softmax_temperature(ridge.loo_decision_, y_idx)
        self.rk_ridge, self.rk_beta = ridge, beta
        hist.update(
            rk_features=int(p_out),
            rk_hydra_features=int(hy.n_features_out_) if hy is not None else 0,
            rk_loo_accuracy=round(ridge.loo_accuracy_, 4),
            rk_loo_log_loss=round(loss, 4),
            rk_beta=round(beta, 4),
            rk_seconds_features=round(t_feat, 1),
            rk_seconds=round(time.perf_counter() - t0, 1),
        )
        self.log(f"[rk] {p_out} features, ridge alpha {ridge.alpha_:.3g}: leave-one-out accuracy "
                 f"{ridge.loo_accuracy_:.3f} ({time.perf_counter() - t0:.0f}s)")
        return sps * n_pred

    @property
    def rk_length(self) -> int:
        """Time steps of the series the random-kernel member sees (``rk_max_length`` or the
        CNNs' ``max_length``); 0 when the member is off or skipped."""
        return self.rk_transform.length_ if self.rk_transform is not None else 0

    def _rk_features(self, Z: np.ndarray) -> np.ndarray:
        """Random-kernel (and competing-kernel) features ``(N, p)`` of standardised series ``(N, C, T)``."""
        assert self.rk_transform is not None
        if self.rk_hydra is None:
            return self.rk_transform.transform(Z)
        return np.concatenate([self.rk_transform.transform(Z), self.rk_hydra.transform(Z)], axis=1)

    def _rk_proba(self, Z: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Random-kernel member's probabilities ``(N, K)`` of standardised series ``(N, C, T)``."""
        assert self.rk_transform is not None and self.rk_ridge is not None
        out = np.empty((Z.shape[0], len(self.classes_)), dtype=np.float64)
        for s in range(0, Z.shape[0], batch_size):
            d = self.rk_ridge.decision_function(self._rk_features(Z[s : s + batch_size]))
            out[s : s + batch_size] = _softmax(self.rk_beta * d)
        return out

    def _choose_mixture(self, oof_logits: np.ndarray, has_oof: np.ndarray, y_idx: np.ndarray, hist: dict[str, Any]) -> None:
        """CNN temperature and mixture weight from out-of-sample evidence.

        Args:
            oof_logits: ``(n, K)`` CNN logits of each training series from the member that did
                not train on it (rows without one are ignored).
            has_oof: ``(n,)`` bool, rows that have such logits.
            y_idx: ``(n,)`` class indices.
        """
        assert self.rk_ridge is not None and self.rk_ridge.loo_decision_ is not None
        rows = np.flatnonzero(has_oof)
        if len(rows) < 2:
            self.cnn_beta, self.cnn_weight = 1.0, 0.5
            hist["mix_cnn_weight"] = 0.5
            return
        y = y_idx[rows]
        self.cnn_beta, _ = softmax_temperature(oof_logits[rows], y)
        p_cnn = _softmax(self.cnn_beta * oof_logits[rows])
        p_rk = _softmax(self.rk_beta * self.rk_ridge.loo_decision_[rows])
        best = (float("inf"), 1.0)
        for w in np.linspace(0.0, 1.0, 21):
            p = w * p_cnn + (1.0 - w) * p_rk
            loss = float(np.mean(-np.log(np.clip(p[np.arange(len(rows)), y], 1e-12, None))))
            if loss < best[0] - 1e-9:
                best = (loss, float(w))
        self.cnn_weight = best[1]
        mix = self.cnn_weight * p_cnn + (1.0 - self.cnn_weight) * p_rk
        hist.update(
            mix_evidence_rows=int(len(rows)),
            mix_cnn_weight=round(self.cnn_weight, 3),
            mix_cnn_beta=round(self.cnn_beta, 4),
            cnn_oof_accuracy=round(float(np.mean(p_cnn.argmax(1) == y)), 4),
            rk_loo_accuracy_same_rows=round(float(np.mean(p_rk.argmax(1) == y)), 4),
            mix_oof_accuracy=round(float(np.mean(mix.argmax(1) == y)), 4),
            mix_oof_log_loss=round(best[0], 4),
        )
        self.log(
            f"[mix] out-of-sample accuracy on {len(rows)} series: CNN member {hist['cnn_oof_accuracy']:.3f}, "
            f"random kernels {hist['rk_loo_accuracy_same_rows']:.3f}, "
            f"mixture {hist['mix_oof_accuracy']:.3f} (CNN weight {self.cnn_weight:.2f})"
        )

    # -- public API -------------------------------------------------------------------------

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_unlabelled: np.ndarray | None = None,
        predict_size: int | None = None,
    ) -> SeriesClassifier:
        """Fit on labelled series (and optionally unlabelled ones, used for pretraining only).

        Args:
            X: ``(N, T)`` or ``(N, C, T)`` training series, NaN for missing values.
            y: ``(N,)`` labels (any sortable type).
            X_unlabelled: ``(M, T)`` / ``(M, C, T)`` extra series without labels (e.g. the
                series to classify), used by contrastive pretraining.
            predict_size: How many series will be predicted after the fit (default: the number
                of unlabelled series); their inference time is kept inside ``budget_s``.

        Returns:
            ``self``.

        Raises:
            InputError: Inconsistent shapes, fewer than two classes, or no valid values.
        """
        cfg = self.config
        t_start = time.perf_counter()
        deadline_total = t_start + cfg.budget_s
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        y = np.asarray(y)
        X = np.asarray(X, dtype=np.float32)
        if X.shape[0] != y.shape[0]:
            raise InputError(f"{X.shape[0]} series but {y.shape[0]} labels")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputError(f"need at least two classes to train a classifier; got {len(self.classes_)}")
        self.standardizer = SeriesStandardizer().fit(X, cfg.max_length)
        Z_full = self.standardizer.standardize(X)
        Z = torch.from_numpy(self.standardizer.pool(Z_full, self.standardizer.length)).to(self.device)
        Yt = torch.from_numpy(y_idx.astype(np.int64)).to(self.device)
        n, c, t = Z.shape
        k = len(self.classes_)
        Zall = Z
        if X_unlabelled is not None and len(X_unlabelled):
            Zu = torch.from_numpy(self.standardizer.transform(np.asarray(X_unlabelled, dtype=np.float32))).to(self.device)
            Zall = torch.cat([Z, Zu], dim=0)
        gen = torch.Generator().manual_seed(cfg.seed)
        np_rng = np.random.default_rng(cfg.seed)
        # small training sets: smaller batches, so that an epoch is several optimisation steps
        bs = int(min(cfg.batch_size, max(8, n // 8), n))
        hist: dict[str, Any] = {"n_train": int(n), "n_unlabelled": int(Zall.shape[0] - n), "length": int(t), "channels": int(c)}
        n_pred = int(predict_size if predict_size is not None else (Zall.shape[0] - n))

        # ---- random-kernel member first: its measured time comes off the CNN budget --------
        self.rk_transform, self.rk_hydra, self.rk_ridge, self.rk_beta, self.cnn_beta, self.cnn_weight = None, None, None, 1.0, 1.0, 1.0
        rk_pred_s = self._fit_random_kernels(Z_full, Z, y_idx, k, n_pred, hist) if cfg.random_kernels else 0.0
        deadline_total = t_start + cfg.budget_s - rk_pred_s  # keep time to score the predicted series
        folds = None
        if self.rk_ridge is not None:  # CNN member i trains without fold i: out-of-fold evidence
            n_folds = int(cfg.rk_folds)
            folds = np.empty(n, dtype=np.int64)
            frng = np.random.default_rng(cfg.seed + 4242)
            start = 0
            for cls in range(k):  # stratified: each class spread over the folds in turn
                idx = frng.permutation(np.flatnonzero(y_idx == cls))
                folds[idx] = (start + np.arange(len(idx))) % n_folds
                start += len(idx)
            oof_logits = np.zeros((n, k), dtype=np.float64)
            has_oof = np.zeros(n, dtype=bool)

        # ---- plan the budget: time one pretraining and one fine-tuning step ----------------
        base = self._new_net(c, k, cfg.seed)
        do_pretrain = cfg.pretrain and len(base.branches) == 2 and cfg.pretrain_max_epochs > 0 and cfg.pretrain_share > 0
        pbs = min(cfg.pretrain_batch_size, max(2, Zall.shape[0]))
        if do_pretrain:
            heads = nn.ModuleDict({b: ProjectionHead(cfg.embed_dim, cfg.proj_dim) for b in ("rp", "series")}).to(self.device)
            loss_fn = SymmetricInfoNCE(cfg.temperature).to(self.device)
            pstep = self._pretrain_step_fn(base, heads, loss_fn)
            pparams = list(base.encoders.parameters()) + list(heads.parameters()) + list(loss_fn.parameters())
            idx0 = torch.from_numpy(np_rng.choice(Zall.shape[0], pbs, replace=Zall.shape[0] < pbs))
            tgen = torch.Generator().manual_seed(cfg.seed + 999)
            sec_p = self._time_steps(lambda: pstep(Zall[idx0.to(self.device)], tgen), pparams, [base, heads, loss_fn])
            base.train()
        fparams = list(base.parameters())
        idx1 = np_rng.choice(n, bs, replace=n < bs)
        tgen = torch.Generator().manual_seed(cfg.seed + 998)
        sec_f = self._time_steps(lambda: self._finetune_loss(base, Z[idx1], Yt[idx1], tgen), fparams, [base])
        torch.manual_seed(cfg.seed)
        # inference cost: forward only is ~1/3 of a training step; one pass per member
        remaining = max(1.0, deadline_total - time.perf_counter()) * 0.95
        steps_ft_epoch = max(1, n // bs)
        sec_ft_epoch = sec_f * steps_ft_epoch
        if do_pretrain:
            steps_pt_epoch = max(1, Zall.shape[0] // pbs)
            sec_pt_epoch = sec_p * steps_pt_epoch
            pt_epochs = _round_epochs(min(cfg.pretrain_max_epochs, remaining * cfg.pretrain_share / max(sec_pt_epoch, 1e-9)))
            if pt_epochs * sec_pt_epoch > remaining * cfg.pretrain_share:
                pt_epochs = 0
            if pt_epochs < 1:
                do_pretrain = False
                self.log("[plan] budget too short for contrastive pretraining; skipped")
        pt_time = pt_epochs * sec_pt_epoch if do_pretrain else 0.0
        ft_budget = remaining - pt_time
        # one inference pass of a member over the series to predict, measured on one batch
        inf_member = n_pred * self._time_inference(base, Zall[: min(256, Zall.shape[0])])
        if cfg.epochs is not None:
            ft_epochs = cfg.epochs
            members = cfg.ensemble
        else:
            # each member costs its epochs plus one inference pass over the series to predict
            per_member_min = cfg.min_epochs * sec_ft_epoch + inf_member
            members = int(max(1, min(cfg.ensemble, 0.9 * ft_budget // max(per_member_min, 1e-9))))
            per_member = 0.9 * ft_budget / members - inf_member
            # never less than what fits in a few seconds (tiny data on a slow or busy machine)
            per_member = max(per_member, _MIN_FINETUNE_S)
            ft_epochs = _round_epochs(min(cfg.max_epochs, per_member / max(sec_ft_epoch, 1e-9)))
        hist.update(
            plan_seconds_per_pretrain_epoch=round(sec_pt_epoch, 3) if do_pretrain else None,
            plan_seconds_per_finetune_epoch=round(sec_ft_epoch, 3),
            pretrain_epochs=pt_epochs if do_pretrain else 0,
            finetune_epochs=ft_epochs,
            members=members,
        )
        self.log(
            f"[plan] {n} train series × {t} steps, {k} classes, {Zall.shape[0] - n} unlabelled; "
            f"pretrain {hist['pretrain_epochs']} ep (~{pt_time:.0f}s), fine-tune {members} member(s) × {ft_epochs} ep "
            f"(~{members * ft_epochs * sec_ft_epoch:.0f}s) on {self.device}"
        )

        # ---- PIMC contrastive pretraining ------------------------------------------------
        if do_pretrain:
            t0 = time.perf_counter()
            m_all = Zall.shape[0]
            losses = self._run_epochs(
                pparams,
                [base, heads],
                lambda idx, g: pstep(Zall[torch.from_numpy(idx).to(self.device)], g),
                m_all,
                pbs,
                pt_epochs,
                cfg.lr,
                pt_time * 1.3 + 2.0,
                gen,
                "pretrain",
            )
            hist["pretrain_loss"] = [round(v, 4) for v in losses]
            hist["pretrain_seconds"] = round(time.perf_counter() - t0, 1)
            hist["temperature"] = round(loss_fn.temperature, 4)
            del heads, loss_fn

        # ---- supervised fine-tuning (ensemble) ------------------------------------------
        self.members = []
        hist["finetune_loss"] = []
        t_ft = time.perf_counter()
        deadline_fit = deadline_total - members * inf_member  # keep time to predict
        pretrained_state = copy.deepcopy(base.state_dict()) if do_pretrain else None
        plan = {"members": members, "epochs": cfg.max_epochs if cfg.epochs is None else ft_epochs,
                "inf_member": inf_member, "deadline_fit": deadline_fit}

        time_driven = cfg.epochs is None

        def replan_first(epoch_s: float) -> tuple[int, float]:
            """After member 1's first epoch: re-plan members / epochs with the measured speed."""
            if not time_driven:
                return plan["epochs"], max(plan["deadline_fit"] - time.perf_counter() + epoch_s, _MIN_FINETUNE_S) / plan["members"]
            inf_m = plan["inf_member"]
            budget_left = deadline_total - time.perf_counter() + epoch_s  # this member's first epoch included
            m = int(max(1, min(cfg.ensemble, 0.9 * budget_left // max(cfg.min_epochs * epoch_s + inf_m, 1e-9))))
            per = max(0.9 * budget_left / m - inf_m, _MIN_FINETUNE_S)
            e = _round_epochs(min(cfg.max_epochs, per / max(epoch_s, 1e-9)))
            if m != plan["members"]:
                self.log(f"[plan] measured {epoch_s:.1f}s per epoch: {m} member(s) of ~{e} epochs")
            plan.update(members=m, epochs=cfg.max_epochs, inf_member=inf_m, deadline_fit=deadline_total - m * inf_m)
            hist.update(plan_seconds_per_finetune_epoch=round(epoch_s, 3), finetune_epochs_planned=e, members_planned=m)
            return cfg.max_epochs, max(plan["deadline_fit"] - time.perf_counter() + epoch_s, _MIN_FINETUNE_S) / m

        mi = 0
        while mi < plan["members"]:
            members, ft_epochs, deadline_fit = plan["members"], plan["epochs"], plan["deadline_fit"]
            net = base
            if mi:
                net = self._new_net(c, k, cfg.seed + 1000 * mi)
                if do_pretrain:
                    net.load_state_dict(pretrained_state)
            if do_pretrain:
                torch.manual_seed(cfg.seed + 1000 * mi)
                net.classifier = ClassifierHead(cfg.embed_dim * len(net.branches), k, 0, cfg.dropout).to(self.device)
            mgen = torch.Generator().manual_seed(cfg.seed + 7919 * (mi + 1))
            left = deadline_fit - time.perf_counter()
            share = max(left / (members - mi), _MIN_FINETUNE_S)
            Zm, Ym, held = Z, Yt, None
            if folds is not None:
                fold = mi % int(cfg.rk_folds)
                held = np.flatnonzero(folds == fold) if mi < int(cfg.rk_folds) else None
                rows = torch.from_numpy(np.flatnonzero(folds != fold)).to(self.device)
                Zm, Ym = Z[rows], Yt[rows]
            losses = self._run_epochs(
                list(net.parameters()),
                [net],
                lambda idx, g, net=net, Zm=Zm, Ym=Ym: self._finetune_loss(
                    net, Zm[torch.from_numpy(idx).to(self.device)], Ym[torch.from_numpy(idx).to(self.device)], g),
                Zm.shape[0],
                bs,
                ft_epochs,
                cfg.lr,
                share,
                mgen,
                f"fine-tune {mi + 1}/{members}",
                replan_first if mi == 0 else None,
                time_driven,
            )
            hist.setdefault("finetune_epochs_done", []).append(len(losses))
            self._recalibrate_bn(net, Zm)
            net.eval()
            self.members.append(net)
            if held is not None and len(held):
                oof_logits[held] = self._logits(net, Z[torch.from_numpy(held).to(self.device)])
                has_oof[held] = True
            hist["finetune_loss"].append([round(v, 4) for v in losses[-3:]])
            mi += 1
            if time.perf_counter() > plan["deadline_fit"] - 1.0 and mi < plan["members"]:
                self.log(f"[fit] budget reached: {mi} of {plan['members']} members trained")
                break
        hist["finetune_seconds"] = round(time.perf_counter() - t_ft, 1)
        if self.rk_ridge is not None:
            self._choose_mixture(oof_logits, has_oof, y_idx, hist)
        hist["members"] = len(self.members)
        hist["fit_seconds"] = round(time.perf_counter() - t_start, 1)
        self.history = hist
        return self

    @torch.no_grad()
    def predict_proba(self, X: np.ndarray, batch_size: int = 1024, keep: tuple[bool, ...] | None = None) -> np.ndarray:
        """Class probabilities ``(N, K)`` (ensemble mean), columns ordered as ``classes_``.

        Args:
            X: ``(N, T)`` / ``(N, C, T)`` series, NaN for missing values.
            batch_size: Inference batch size.
            keep: Optional per-branch flags (order of ``config.branches``) to run with a branch
                switched off.
        """
        parts = self.predict_proba_parts(X, batch_size, keep)
        if "rk" not in parts:
            return parts["cnn"]
        return self.cnn_weight * parts["cnn"] + (1.0 - self.cnn_weight) * parts["rk"]

    @torch.no_grad()
    def predict_proba_parts(self, X: np.ndarray, batch_size: int = 1024, keep: tuple[bool, ...] | None = None) -> dict[str, np.ndarray]:
        """Each member's class probabilities: ``{"cnn": (N, K), "rk": (N, K)}`` (``"rk"`` only
        when the random-kernel member was fitted); arguments as :meth:`predict_proba`."""
        if not self.members or self.standardizer is None:
            raise RuntimeError("SeriesClassifier is not fitted")
        Z_full = self.standardizer.standardize(X)
        Zn = self.standardizer.pool(Z_full, self.standardizer.length)
        Z = torch.from_numpy(Zn)
        out = np.zeros((Z.shape[0], len(self.classes_)), dtype=np.float64)
        for net in self.members:
            net.eval()
            for s in range(0, Z.shape[0], batch_size):
                xb = Z[s : s + batch_size].to(self.device)
                mask = None
                if keep is not None:
                    mask = torch.tensor([[float(v) for v in keep]], device=self.device).expand(xb.shape[0], -1)
                with self._autocast():
                    logits = net(xb, mask)
                out[s : s + xb.shape[0]] += torch.softmax(self.cnn_beta * logits.float(), dim=1).cpu().numpy()
        parts = {"cnn": out / len(self.members)}
        if self.rk_ridge is not None:
            parts["rk"] = self._rk_proba(Zn if self.rk_length == Zn.shape[-1] else self.standardizer.pool(Z_full, self.rk_length))
        return parts

    @torch.no_grad()
    def _logits(self, net: PixelSeriesNet, Z: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
        """Eval-mode logits ``(N, K)`` float64 of one member on standardised series ``(N, C, T)``."""
        net.eval()
        out = []
        for s in range(0, Z.shape[0], batch_size):
            with self._autocast():
                out.append(net(Z[s : s + batch_size]).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def predict(self, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Predicted labels ``(N,)`` (values of ``classes_``)."""
        return self.classes_[np.argmax(self.predict_proba(X, **kwargs), axis=1)]
