"""The fused PIMC network: recurrence-plot encoder + patch encoder (+ a 1-D series branch),
projection heads for contrastive pretraining, classifier and forecast heads, modality dropout.

Inputs of one pixel (everything in physical units; the network standardises):

* ``series`` (C, T): its gap-filled vegetation-index series (NDVI, EVI, SAVI, ...);
* ``patches`` (B, k, k): the k x k neighbourhood in a reference image (median composite),
  optional.

Modalities and their encoders (:mod:`pimc_core.models`):

==========  ===============================================================  =================
``rp``      recurrence plots of the standardised series, one channel per     :class:`RPEncoder`
            index, made on the fly on the input's device (never stored)
``series``  the standardised series itself (1-D ResNet). A recurrence plot   :class:`SeriesEncoder`
            ``|x_i - x_j|`` forgets the series *level* (grassland at 0.4 vs
            conifers at 0.7 look alike) and, being nearly shift-invariant,
            the *timing*; this branch gives both back (``level="series"``).
            ``level="channels"`` instead adds "level plots" ``(x_i + x_j)/2``
            as extra RP channels, ``"both"`` does both; ``"none"`` is the bare
            RP.
``patch``   the standardised reference-image patch                           :class:`PatchEncoder`
==========  ===============================================================  =================

Fusion and modality dropout (OmniSat-style): the fused embedding of a pixel is the
concatenation of the modality embeddings, a modality that is absent (no patch given, or
dropped during training) contributing zeros, followed by one presence flag per modality. The
classifier is trained with random modalities dropped (at least one kept), so it works with any
subset at prediction time: series only, patch only, or both.

Contrastive pretraining (:mod:`pimc_core.learn.pretrain`) pulls together the *temporal* view (RP +
series embeddings through ``temporal_proj``) and the *spatial* view (patch embedding through
``patch_proj``) of the same pixel with :class:`pimc_core.models.contrastive.SymmetricInfoNCE`.

Forecasting uses the temporal modalities of the first ``L`` observations and predicts the next
``h`` values of the forecast index as a residual on the last observed value (in standardised
units), so "no change" (persistence) is the zero output. With ``forecast_inputs`` the head also
reads side features next to the temporal embedding (:class:`SeasonalForecastHead`):

* ``"phase"`` — the day of the year of the forecast origin (the last input date) as
  ``sin``/``cos``: the same shape of series means green-up in spring and senescence in autumn;
* ``"seasonal"`` — for every forecast step the input value one season (``forecast_season_steps``)
  earlier, minus the last value (the seasonal-naive forecast, as a residual);
* ``"window"`` — the whole input window of the forecast index minus the last value;
* ``"climatology"`` — the pixel's own mean seasonal cycle from *all* of its history before the
  origin (:func:`seasonal_climatology`: the mean of the values 1, 2, ... seasons before the
  origin and before each forecast step), minus the last value, with the number of years it
  averages. The encoders still read the last ``L`` steps; this input reads the whole series
  (``forecast`` then takes series longer than ``L``, or the climatology precomputed).

Side features enter both a linear skip and the MLP; both start at zero, so an untrained head is
persistence and training learns how far to move towards the seasonal pattern.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.errors import ConfigError
from pimc_core.models.contrastive import SwappedPrototypes, SymmetricInfoNCE
from pimc_core.models.encoders import EncoderConfig, PatchEncoder, RPEncoder, SeriesEncoder
from pimc_core.models.heads import ClassifierHead, ForecastHead, ProjectionHead
from pimc_core.series.recurrence import RecurrencePlotConfig

__all__ = ["FORECAST_INPUTS", "MODALITIES", "PRETRAIN_ONLY", "PimcModelConfig", "PimcNet", "SeasonalForecastHead", "compute_normalisation",
           "modality_mask", "random_modality_mask", "seasonal_climatology"]

#: Modalities in the order of the fused embedding blocks.
MODALITIES: tuple[str, ...] = ("rp", "series", "patch")
#: Sub-modules that exist only for pretraining terms: kept in checkpoints, never in model files.
PRETRAIN_ONLY: tuple[str, ...] = ("reconstructor", "prototypes")
_LEVELS = ("series", "channels", "both", "none")
#: Side inputs the forecast head can read next to the temporal embedding (see the module docstring).
FORECAST_INPUTS: tuple[str, ...] = ("phase", "seasonal", "window", "climatology")

_RP_DEFAULT = {"width": 16, "depth": 3, "embed_dim": 64, "dropout": 0.1}
_SERIES_DEFAULT = {"width": 16, "depth": 2, "embed_dim": 64, "dropout": 0.1, "pool": "bins", "bins": 6,
                   "kernel_size": 5}
_PATCH_DEFAULT = {"width": 16, "depth": 2, "embed_dim": 64, "dropout": 0.1}


def _enc_cfg(d: Mapping[str, Any] | None, default: Mapping[str, Any], in_channels: int, where: str) -> EncoderConfig:
    data = dict(default)
    data.update(dict(d or {}))
    data.pop("in_channels", None)
    try:
        return EncoderConfig.from_dict({**data, "in_channels": int(in_channels)})
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


@dataclass
class PimcModelConfig:
    """Architecture of a :class:`PimcNet` (stored in the model file under ``architecture.pimc``).

    Attributes:
        indices: index channels, in order. n_dates: T of the classification input.
        patch_bands: bands of the patches (empty: no patch encoder). patch_size: k.
        level: how the series level reaches the network: ``"series"`` (1-D branch),
            ``"channels"`` (level plots as extra RP channels), ``"both"`` or ``"none"``.
        rp: :class:`RecurrencePlotConfig` fields (``dimension``, ``time_delay``, ``threshold``,
            ``percentage``, ``size``).
        rp_coords: add two coordinate channels (row and column position, -1..1) to the RP
            images, so that the convolutions can tell *when* a recurrence pattern happens (the
            RP encoder's global pooling is otherwise shift-invariant).
        rp_stem_stride: stride of the RP encoder's stem (2 quarters its cost for long series).
        rp_encoder, series_encoder, patch_encoder: :class:`EncoderConfig` fields (``width``,
            ``depth``, ``embed_dim``, ``dropout``, ...); all modalities share ``embed_dim``.
        proj_dim: size of the contrastive space.
        n_classes: classifier outputs (0: no classifier). classifier_hidden: its hidden layer.
        forecast_horizon: h (0: no forecaster). forecast_input: L, observations it reads.
        forecast_index: the index forecast (one of ``indices``).
        forecast_inputs: side inputs of the forecast head among :data:`FORECAST_INPUTS`
            (empty: the embedding alone, the original head).
        forecast_season_steps: steps in one season (a year) for ``"seasonal"`` (e.g. 23 on a
            16-day grid); ``forecast_input`` must be at least this long.
        forecast_year_steps: steps per year with fractions (365.25 / 16) for ``"climatology"``
            (0: ``forecast_season_steps``).
        forecast_anchor: what the head's output is a change of: ``"last"`` (the last value:
            zero output = persistence) or ``"climatology"`` (the pixel's climatology where it
            has one, else the last value).
        forecast_hidden: hidden units of the forecast head.
        init_temperature: initial InfoNCE temperature.
    """

    indices: tuple[str, ...] = ("ndvi", "evi", "savi")
    n_dates: int = 24
    patch_bands: tuple[str, ...] = ()
    patch_size: int = 9
    level: str = "series"
    rp: dict[str, Any] = field(default_factory=dict)
    rp_coords: bool = False
    rp_stem_stride: int = 1
    rp_encoder: dict[str, Any] = field(default_factory=dict)
    series_encoder: dict[str, Any] = field(default_factory=dict)
    patch_encoder: dict[str, Any] = field(default_factory=dict)
    proj_dim: int = 64
    n_classes: int = 0
    classifier_hidden: int = 0
    forecast_horizon: int = 0
    forecast_input: int = 0
    forecast_index: str = "ndvi"
    forecast_inputs: tuple[str, ...] = ()
    forecast_season_steps: int = 0
    forecast_year_steps: float = 0.0
    forecast_anchor: str = "last"
    forecast_hidden: int = 128
    init_temperature: float = 0.07

    def __post_init__(self) -> None:
        self.indices = tuple(str(i).lower() for i in self.indices)
        self.patch_bands = tuple(str(b).lower() for b in self.patch_bands)
        if not self.indices:
            raise ConfigError("model: give at least one index")
        if self.level not in _LEVELS:
            raise ConfigError(f"model: level must be one of {', '.join(_LEVELS)}; got {self.level!r}")
        for name in ("n_dates", "patch_size", "proj_dim", "rp_stem_stride"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"model: {name} must be a positive integer; got {v!r}")
        for name in ("n_classes", "classifier_hidden", "forecast_horizon", "forecast_input"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"model: {name} must be an integer >= 0; got {v!r}")
        if self.forecast_horizon and self.forecast_index not in self.indices:
            raise ConfigError(f"model: forecast_index {self.forecast_index!r} is not one of the indices {self.indices}")
        self.forecast_inputs = tuple(str(i).lower() for i in self.forecast_inputs)
        bad = [i for i in self.forecast_inputs if i not in FORECAST_INPUTS]
        if bad:
            raise ConfigError(f"model: forecast_inputs {bad} unknown (known: {', '.join(FORECAST_INPUTS)})")
        for name in ("forecast_season_steps", "forecast_hidden"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"model: {name} must be an integer >= 0; got {v!r}")
        self.forecast_year_steps = float(self.forecast_year_steps)
        if self.forecast_anchor not in ("last", "climatology"):
            raise ConfigError(f"model: forecast_anchor must be 'last' or 'climatology'; got {self.forecast_anchor!r}")
        if self.forecast_anchor == "climatology" and "climatology" not in self.forecast_inputs:
            raise ConfigError("model: forecast_anchor 'climatology' needs 'climatology' in forecast_inputs")
        if self.forecast_horizon and "climatology" in self.forecast_inputs:
            if self.year_steps <= self.forecast_horizon:
                raise ConfigError("model: forecast_inputs 'climatology' needs forecast_year_steps (steps in a year) "
                                  f"> forecast_horizon; got {self.year_steps:g}")
        if self.forecast_horizon and "seasonal" in self.forecast_inputs:
            m = self.forecast_season_steps
            if m < 1:
                raise ConfigError("model: forecast_inputs 'seasonal' needs forecast_season_steps (steps in a year) >= 1")
            if self.forecast_input and self.forecast_input < m:
                raise ConfigError(f"model: forecast_inputs 'seasonal' needs forecast_input >= forecast_season_steps; "
                                  f"got {self.forecast_input} < {m}")
        if self.forecast_horizon and "window" in self.forecast_inputs and not self.forecast_input:
            raise ConfigError("model: forecast_inputs 'window' needs forecast_input (L) > 0")
        self.rp = RecurrencePlotConfig.from_dict(self.rp or {}).to_dict()
        # validate encoder sections now (unknown keys are named)
        self.rp_cfg()
        self.series_cfg()
        self.patch_cfg()
        dims = {self.rp_cfg().embed_dim, self.series_cfg().embed_dim, self.patch_cfg().embed_dim}
        if len(dims) != 1:
            raise ConfigError(f"model: rp_encoder, series_encoder and patch_encoder must share embed_dim; got {sorted(dims)}")

    # ---- derived
    @property
    def has_series(self) -> bool:
        return self.level in ("series", "both")

    @property
    def has_patch(self) -> bool:
        return bool(self.patch_bands) and self.patch_size > 0

    @property
    def year_steps(self) -> float:
        """Steps per year of the climatology input."""
        return self.forecast_year_steps or float(self.forecast_season_steps)

    @property
    def forecast_extra_dim(self) -> int:
        """Number of side features of the forecast head (0: the original head)."""
        n = 0
        if "phase" in self.forecast_inputs:
            n += 2
        if "seasonal" in self.forecast_inputs:
            n += self.forecast_horizon
        if "window" in self.forecast_inputs:
            n += self.forecast_input
        if "climatology" in self.forecast_inputs:
            n += self.forecast_horizon + 3  # origin + h steps, available flag, years
        return n

    @property
    def embed_dim(self) -> int:
        return self.rp_cfg().embed_dim

    @property
    def rp_channels(self) -> int:
        return len(self.indices) * (2 if self.level in ("channels", "both") else 1) + (2 if self.rp_coords else 0)

    @property
    def fused_dim(self) -> int:
        """Size of the fused embedding: one block per modality (absent ones are zeros)."""
        return self.embed_dim * len(MODALITIES)

    def rp_cfg(self) -> EncoderConfig:
        return _enc_cfg(self.rp_encoder, _RP_DEFAULT, self.rp_channels, "model.rp_encoder")

    def series_cfg(self) -> EncoderConfig:
        return _enc_cfg(self.series_encoder, _SERIES_DEFAULT, len(self.indices), "model.series_encoder")

    def patch_cfg(self) -> EncoderConfig:
        return _enc_cfg(self.patch_encoder, _PATCH_DEFAULT, max(1, len(self.patch_bands)), "model.patch_encoder")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["indices"] = list(self.indices)
        d["patch_bands"] = list(self.patch_bands)
        d["forecast_inputs"] = list(self.forecast_inputs)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PimcModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise ConfigError(f"model config: unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})")
        d = dict(data)
        for k in ("indices", "patch_bands", "forecast_inputs"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def modality_mask(n: int, present: Sequence[str] | Mapping[str, bool], device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 3) float mask of the modalities in ``present`` (names of :data:`MODALITIES`)."""
    if isinstance(present, Mapping):
        present = [m for m, v in present.items() if v]
    row = torch.tensor([1.0 if m in present else 0.0 for m in MODALITIES], device=device)
    return row.expand(n, -1).clone()


def random_modality_mask(base: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each present modality with probability ``p``, keeping at least one per row."""
    if p <= 0:
        return base
    r = torch.rand(base.shape, generator=generator, device="cpu").to(base.device)
    keep = base * (r >= p).float()
    empty = keep.sum(dim=1) == 0
    if empty.any():
        # restore one present modality at random for rows that lost them all
        scores = torch.rand(base.shape, generator=generator, device="cpu").to(base.device) * base
        pick = F.one_hot(scores.argmax(dim=1), base.shape[1]).float()
        keep = torch.where(empty[:, None], pick, keep)
    return keep


def seasonal_climatology(x: torch.Tensor, horizon: int, season: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A pixel's mean seasonal cycle at the origin and the next ``horizon`` steps.

    Args:
        x: (N, T) series on a regular grid whose last step is the forecast origin.
        horizon: h.
        season: steps per year, fractions allowed (365.25 / 16 on a 16-day grid): a value
            ``k`` years earlier is interpolated linearly between the two grid steps around it.

    Returns:
        ``clim`` (N, h + 1): for step ``j`` (0 = the origin, position ``T - 1 + j``) the mean of
        the values at ``T - 1 + j - k * season`` over every ``k >= 1`` that lies in the series
        (NaN when none does), and ``years`` (N,): how many years the last step's mean averages.
    """
    n, T = x.shape
    season = float(season)
    if season <= horizon:
        raise ConfigError(f"seasonal climatology: a season ({season:g} steps) must be longer than the horizon ({horizon})")
    vals, counts = [], []
    for j in range(horizon + 1):
        pos = [T - 1 + j - k * season for k in range(1, int(T // season) + 2)]
        pos = [p for p in pos if p >= 0]
        acc = x.new_zeros(n)
        for p in pos:
            lo = int(math.floor(p))
            w = p - lo
            hi = min(lo + 1, T - 1)
            acc = acc + (1 - w) * x[:, lo] + w * x[:, hi]
        vals.append(acc / len(pos) if pos else torch.full((n,), float("nan"), dtype=x.dtype, device=x.device))
        counts.append(len(pos))
    years = torch.full((n,), float(counts[-1]), dtype=x.dtype, device=x.device)
    return torch.stack(vals, dim=1), years


class SeasonalForecastHead(nn.Module):
    """Forecast head with side features: ``delta = MLP([z, f]) + W f + b``.

    ``z`` (N, embed_dim) is the temporal embedding, ``f`` (N, n_extra) the side features (season
    phase, seasonal-naive residuals, the input window; see the module docstring). The MLP's last
    layer and the linear skip start at zero: an untrained head predicts no change (persistence).

    Args:
        embed_dim: size of the temporal embedding.
        n_extra: number of side features.
        horizon: forecast steps.
        hidden_dim: hidden units of the MLP.
    """

    def __init__(self, embed_dim: int, n_extra: int, horizon: int, hidden_dim: int = 128) -> None:
        super().__init__()
        if horizon < 1 or n_extra < 1:
            raise ValueError(f"SeasonalForecastHead needs horizon >= 1 and n_extra >= 1; got {horizon}, {n_extra}")
        self.horizon = horizon
        self.net = nn.Sequential(nn.Linear(embed_dim + n_extra, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, horizon))
        self.skip = nn.Linear(n_extra, horizon)
        for lin in (self.net[-1], self.skip):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, z: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """``(N, embed_dim)``, ``(N, n_extra)`` → ``(N, horizon)`` residual (standardised units)."""
        return self.net(torch.cat([z, extra], dim=1)) + self.skip(extra)


class PimcNet(nn.Module):
    """The PIMC network (see the module docstring).

    Args:
        cfg: the architecture.

    Normalisation (per-index mean/std of the series, per-band mean/std of the patches) lives in
    buffers that are *not* in the state dict: it is stored in the model file's metadata and set
    with :meth:`set_normalisation`.
    """

    def __init__(self, cfg: PimcModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = len(cfg.indices)
        self.rp_config = RecurrencePlotConfig.from_dict(cfg.rp)
        self.rp_encoder = RPEncoder.from_config(cfg.rp_cfg(), stem_stride=cfg.rp_stem_stride)
        self.series_encoder = SeriesEncoder.from_config(cfg.series_cfg()) if cfg.has_series else None
        self.patch_encoder = PatchEncoder.from_config(cfg.patch_cfg()) if cfg.has_patch else None
        d = cfg.embed_dim
        self.temporal_proj = ProjectionHead(d * (2 if cfg.has_series else 1), cfg.proj_dim)
        self.patch_proj = ProjectionHead(d, cfg.proj_dim) if cfg.has_patch else None
        self.contrastive = SymmetricInfoNCE(cfg.init_temperature)
        self.classifier = (
            ClassifierHead(cfg.fused_dim + len(MODALITIES), cfg.n_classes, cfg.classifier_hidden)
            if cfg.n_classes else None
        )
        d_t = d * (2 if cfg.has_series else 1)
        if not cfg.forecast_horizon:
            self.forecaster = None
        elif cfg.forecast_extra_dim:
            self.forecaster = SeasonalForecastHead(d_t, cfg.forecast_extra_dim, cfg.forecast_horizon,
                                                   cfg.forecast_hidden or 128)
        else:
            self.forecaster = ForecastHead(d_t, cfg.forecast_horizon, hidden_dim=cfg.forecast_hidden or 128)
        #: pretraining-only modules (:meth:`attach_reconstructor`, :meth:`attach_prototypes`);
        #: in checkpoints, never in model files (see :data:`PRETRAIN_ONLY`)
        self.reconstructor: nn.Module | None = None
        self.prototypes: SwappedPrototypes | None = None
        b = max(1, len(cfg.patch_bands))
        self.register_buffer("idx_mean", torch.zeros(c), persistent=False)
        self.register_buffer("idx_std", torch.ones(c), persistent=False)
        self.register_buffer("band_mean", torch.zeros(b), persistent=False)
        self.register_buffer("band_std", torch.ones(b), persistent=False)

    def attach_reconstructor(self) -> nn.Module:
        """Add (once) the pretraining decoder: temporal view (N, D or 2D) → standardised series
        (N, C, T), a two-layer MLP. It exists for the reconstruction term of pretraining
        (``PretrainConfig.reconstruct``); :meth:`module_state` leaves it out of model files."""
        if self.reconstructor is None:
            d_t = self.cfg.embed_dim * (2 if self.cfg.has_series else 1)
            dev = self.idx_mean.device
            self.reconstructor = ForecastHead(d_t, self.cfg.n_dates, channels=len(self.cfg.indices),
                                              hidden_dim=128).to(dev)
        return self.reconstructor

    def attach_prototypes(self, n_prototypes: int) -> SwappedPrototypes:
        """Add (once) the K prototypes of the swapped-prototype term of pretraining
        (``PretrainConfig.prototypes``): :class:`SwappedPrototypes` on the (N, proj_dim)
        projections; :meth:`module_state` leaves them out of model files."""
        if self.prototypes is None:
            self.prototypes = SwappedPrototypes(self.cfg.proj_dim, n_prototypes).to(self.idx_mean.device)
        elif self.prototypes.prototypes.shape[0] != n_prototypes:
            raise ConfigError(f"the network already has {self.prototypes.prototypes.shape[0]} prototypes, not {n_prototypes}")
        return self.prototypes

    # ------------------------------------------------------------------ normalisation
    def set_normalisation(self, norm: Mapping[str, Mapping[str, Sequence[float]]]) -> None:
        """Set ``{"indices": {"mean", "std"}, "bands": {"mean", "std"}}`` (either optional)."""
        for key, mean_buf, std_buf in (("indices", self.idx_mean, self.idx_std), ("bands", self.band_mean, self.band_std)):
            st = norm.get(key) if norm else None
            if st is None or (key == "bands" and not self.cfg.has_patch):
                continue
            m = torch.as_tensor(st["mean"], dtype=torch.float32)
            s = torch.as_tensor(st["std"], dtype=torch.float32)
            if m.shape != mean_buf.shape or s.shape != std_buf.shape:
                raise ConfigError(f"normalisation.{key}: {m.numel()} values; the model has {mean_buf.numel()} channels")
            mean_buf.copy_(m)
            std_buf.copy_(s.clamp_min(1e-6))

    def normalisation(self) -> dict[str, dict[str, list[float]]]:
        out = {"indices": {"mean": self.idx_mean.tolist(), "std": self.idx_std.tolist()}}
        if self.cfg.has_patch:
            out["bands"] = {"mean": self.band_mean.tolist(), "std": self.band_std.tolist()}
        return out

    # ------------------------------------------------------------------ inputs
    def standardise_series(self, series: torch.Tensor) -> torch.Tensor:
        return (series - self.idx_mean[:, None]) / self.idx_std[:, None]

    def standardise_patches(self, patches: torch.Tensor) -> torch.Tensor:
        p = (patches - self.band_mean[:, None, None]) / self.band_std[:, None, None]
        return torch.nan_to_num(p, nan=0.0)  # no valid value: the band mean

    def rp_images(self, xs: torch.Tensor) -> torch.Tensor:
        """(N, C, T) standardised series → (N, C', T', T') recurrence (+ level) images."""
        with torch.no_grad():
            rp = self.rp_config.apply(xs.detach().float().contiguous())
            if self.cfg.level in ("channels", "both"):
                lv = 0.5 * (xs[:, :, :, None] + xs[:, :, None, :])
                if lv.shape[-1] != rp.shape[-1]:
                    lv = F.interpolate(lv, size=rp.shape[-2:], mode="bilinear", align_corners=False)
                rp = torch.cat([rp, lv.float()], dim=1)
            if self.cfg.rp_coords:
                s = rp.shape[-1]
                lin = torch.linspace(-1.0, 1.0, s, device=rp.device, dtype=rp.dtype)
                rows = lin[:, None].expand(s, s)
                coords = torch.stack([rows, rows.t()])[None].expand(rp.shape[0], 2, s, s)
                rp = torch.cat([rp, coords], dim=1)
        return rp

    # ------------------------------------------------------------------ encoders
    def temporal_embeddings(self, xs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Standardised series (N, C, T) → {"rp": (N, D)[, "series": (N, D)]}."""
        out = {"rp": self.rp_encoder(self.rp_images(xs))}
        if self.series_encoder is not None:
            out["series"] = self.series_encoder(xs)
        return out

    def encode(self, series: torch.Tensor | None, patches: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Raw inputs → modality embeddings (keys among :data:`MODALITIES`)."""
        out: dict[str, torch.Tensor] = {}
        if series is not None:
            out.update(self.temporal_embeddings(self.standardise_series(series)))
        if patches is not None and self.patch_encoder is not None:
            out["patch"] = self.patch_encoder(self.standardise_patches(patches))
        return out

    def present_mask(self, n: int, emb: Mapping[str, torch.Tensor], device: torch.device) -> torch.Tensor:
        return modality_mask(n, [m for m in MODALITIES if m in emb], device)

    def fuse(self, emb: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Concatenate modality embeddings (zeros where ``mask`` is 0) and the mask: (N, 3D + 3)."""
        n = mask.shape[0]
        d = self.cfg.embed_dim
        blocks = []
        for j, m in enumerate(MODALITIES):
            e = emb.get(m)
            if e is None:
                blocks.append(mask.new_zeros(n, d))
            else:
                blocks.append(e * mask[:, j:j + 1].to(e.dtype))
        return torch.cat(blocks + [mask.to(blocks[0].dtype)], dim=1)

    def temporal_view(self, emb: Mapping[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D or 2D) input of ``temporal_proj`` / ``forecaster`` (dropped modalities zeroed)."""
        parts = [emb["rp"] if mask is None else emb["rp"] * mask[:, 0:1].to(emb["rp"].dtype)]
        if self.series_encoder is not None:
            s = emb["series"]
            parts.append(s if mask is None else s * mask[:, 1:2].to(s.dtype))
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ tasks
    def classify(self, series: torch.Tensor | None, patches: torch.Tensor | None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits (N, K); ``mask`` (N, 3) drops modalities (default: all given ones)."""
        if self.classifier is None:
            raise ConfigError("this model has no classifier")
        emb = self.encode(series, patches)
        n = next(iter(emb.values())).shape[0]
        present = self.present_mask(n, emb, next(iter(emb.values())).device)
        mask = present if mask is None else mask * present
        return self.classifier(self.fuse(emb, mask))

    def embed(self, series: torch.Tensor | None, patches: torch.Tensor | None) -> torch.Tensor:
        """Fused embedding without the presence flags: (N, 3D)."""
        emb = self.encode(series, patches)
        n = next(iter(emb.values())).shape[0]
        present = self.present_mask(n, emb, next(iter(emb.values())).device)
        return self.fuse(emb, present)[:, : self.cfg.fused_dim]

    @property
    def needs_origin(self) -> bool:
        """True when :meth:`forecast` needs the day of the year of the forecast origin."""
        return "phase" in self.cfg.forecast_inputs

    @property
    def needs_history(self) -> bool:
        """True when :meth:`forecast` reads the whole series (``"climatology"``), not just the last L steps."""
        return "climatology" in self.cfg.forecast_inputs

    def forecast_climatology(self, series: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, T) raw series ending at the origin → :func:`seasonal_climatology` of the forecast index."""
        ci = self.cfg.indices.index(self.cfg.forecast_index)
        return seasonal_climatology(series[:, ci], self.cfg.forecast_horizon, self.cfg.year_steps)

    def forecast_features(self, xs: torch.Tensor, origin_doy: torch.Tensor | None = None,
                          clim: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor | None:
        """Side features of the forecast head from standardised (N, C, L) series: (N, n_extra) or None.

        Args:
            xs: standardised input windows.
            origin_doy: (N,) day of the year (1..366, fractions allowed) of each window's last
                date; required with ``"phase"``.
            clim: ``(values (N, h + 1), years (N,))`` of :meth:`forecast_climatology` (physical
                units); required with ``"climatology"``.

        Raises:
            ConfigError: ``"phase"`` without ``origin_doy``; a window shorter than a season.
        """
        cfg = self.cfg
        if not cfg.forecast_extra_dim:
            return None
        ci = cfg.indices.index(cfg.forecast_index)
        x = xs[:, ci]
        last = x[:, -1:]
        feats = []
        if "phase" in cfg.forecast_inputs:
            if origin_doy is None:
                raise ConfigError("this forecaster reads the season phase: give the day of the year of the forecast origin")
            a = torch.as_tensor(origin_doy, dtype=xs.dtype, device=xs.device).reshape(-1, 1) * (2 * np.pi / 365.25)
            feats += [torch.sin(a), torch.cos(a)]
        if "seasonal" in cfg.forecast_inputs:
            m, L = cfg.forecast_season_steps, x.shape[1]
            if L < m:
                raise ConfigError(f"this forecaster reads the value one season ({m} steps) earlier; got {L} input steps")
            idx = torch.tensor([L - m + (i % m) for i in range(cfg.forecast_horizon)], device=xs.device)
            feats.append(x.index_select(1, idx) - last)
        if "window" in cfg.forecast_inputs:
            L = cfg.forecast_input
            if x.shape[1] < L:
                raise ConfigError(f"this forecaster reads {L} input steps; got {x.shape[1]}")
            feats.append(x[:, -L:] - last)
        if "climatology" in cfg.forecast_inputs:
            if clim is None:
                raise ConfigError("this forecaster reads the pixel's climatology: give the whole series or its climatology")
            cv, years = clim
            cs = (torch.as_tensor(cv, dtype=xs.dtype, device=xs.device) - self.idx_mean[ci]) / self.idx_std[ci]
            ok = torch.isfinite(cs).all(dim=1, keepdim=True)
            feats.append(torch.where(ok, cs - last, torch.zeros_like(cs)))
            feats.append(ok.to(xs.dtype))
            feats.append(torch.as_tensor(years, dtype=xs.dtype, device=xs.device).reshape(-1, 1).clamp(max=10) / 4.0)
        return torch.cat(feats, dim=1)

    def forecast_delta(self, xs: torch.Tensor, origin_doy: torch.Tensor | None = None,
                       emb: Mapping[str, torch.Tensor] | None = None,
                       clim: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Standardised (N, C, L) series → (N, h) change over the last value (standardised units)."""
        if self.forecaster is None:
            raise ConfigError("this model has no forecaster")
        z = self.temporal_view(emb if emb is not None else self.temporal_embeddings(xs))
        extra = self.forecast_features(xs, origin_doy, clim)
        return self.forecaster(z) if extra is None else self.forecaster(z, extra)

    def forecast(self, series: torch.Tensor, origin_doy: torch.Tensor | None = None,
                 clim: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(N, C, T) raw series → (N, h) forecast of the forecast index (physical units).

        The encoders read the last ``forecast_input`` steps (all of them when it is 0).
        ``origin_doy`` (N,): day of the year of the last input date, needed when the head reads
        the season phase (:attr:`needs_origin`). ``clim``: the pixel's climatology
        (:meth:`forecast_climatology`), computed from ``series`` when not given (the head then
        needs the whole history, :attr:`needs_history`).
        """
        if self.forecaster is None:
            raise ConfigError("this model has no forecaster")
        if self.needs_history and clim is None:
            clim = self.forecast_climatology(series)
        L = self.cfg.forecast_input
        if L and series.shape[-1] > L:
            series = series[:, :, -L:]
        xs = self.standardise_series(series)
        ci = self.cfg.indices.index(self.cfg.forecast_index)
        return self.forecast_standardised(xs, origin_doy, clim=clim) * self.idx_std[ci] + self.idx_mean[ci]

    def forecast_standardised(self, xs: torch.Tensor, origin_doy: torch.Tensor | None = None,
                              emb: Mapping[str, torch.Tensor] | None = None,
                              clim: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Standardised (N, C, L) windows → (N, h) forecast in standardised units: the anchor
        (the last value, or the climatology with ``forecast_anchor: climatology``) plus the head's change."""
        ci = self.cfg.indices.index(self.cfg.forecast_index)
        anchor = xs[:, ci, -1:].expand(-1, self.cfg.forecast_horizon)
        if self.cfg.forecast_anchor == "climatology":
            if clim is None:
                raise ConfigError("this forecaster is anchored on the pixel's climatology: give it")
            cs = (torch.as_tensor(clim[0], dtype=xs.dtype, device=xs.device)[:, 1:] - self.idx_mean[ci]) / self.idx_std[ci]
            anchor = torch.where(torch.isfinite(cs).all(dim=1, keepdim=True), cs, anchor)
        return anchor + self.forecast_delta(xs, origin_doy, emb=emb, clim=clim)

    def contrastive_loss(self, series: torch.Tensor, patches: torch.Tensor,
                         mask: torch.Tensor | None = None, gather: Any = None,
                         target: torch.Tensor | None = None, reconstruct_weight: float = 0.0,
                         prototype_weight: float = 0.0) -> torch.Tensor:
        """Symmetric InfoNCE between the temporal and the patch view of the same pixels, plus
        (``reconstruct_weight`` > 0) ``reconstruct_weight`` × the mean squared error of the
        standardised ``target`` series decoded from the temporal view by :attr:`reconstructor`,
        plus (``prototype_weight`` > 0) ``prototype_weight`` × the swapped-prototype loss of the
        two projections (:attr:`prototypes`).

        Args:
            series, patches: (already augmented) raw inputs, (N, C, T) and (N, B, k, k).
            mask: (N, 3) modality mask; only the temporal columns matter (dropping RP or
                series inside the temporal view).
            gather: optional function (N, P) → (world * N, P) gathering projections across
                processes (DDP), so every rank contrasts against the global batch.
            target: (N, C, T) raw series to reconstruct (the un-augmented inputs).
            reconstruct_weight: weight of the reconstruction term (needs
                :meth:`attach_reconstructor`).
            prototype_weight: weight of the swapped-prototype term (needs
                :meth:`attach_prototypes`).
        """
        if self.patch_encoder is None:
            raise ConfigError("contrastive pretraining needs a patch encoder (patch bands)")
        emb = self.encode(series, patches)
        t_view = self.temporal_view(emb, mask)
        z_t = self.temporal_proj(t_view)
        z_p = self.patch_proj(emb["patch"])
        if gather is not None:
            z_t, z_p = gather(z_t), gather(z_p)
        loss = self.contrastive(z_t, z_p)
        if prototype_weight > 0:
            if self.prototypes is None:
                raise ConfigError("prototype_weight > 0 needs attach_prototypes()")
            loss = loss + prototype_weight * self.prototypes(z_t, z_p)
        if reconstruct_weight > 0:
            if self.reconstructor is None or target is None:
                raise ConfigError("reconstruct_weight > 0 needs attach_reconstructor() and a target series")
            rec = self.reconstructor(t_view).float()
            loss = loss + reconstruct_weight * F.mse_loss(rec, self.standardise_series(target).float())
        return loss

    def forward(self, series: torch.Tensor | None, patches: torch.Tensor | None = None, *,
                mask: torch.Tensor | None = None, task: str = "classify", gather: Any = None,
                origin_doy: torch.Tensor | None = None, **extra: Any) -> torch.Tensor:
        """One entry point for wrappers (DDP): ``task`` is ``classify``, ``contrastive``,
        ``forecast`` (``origin_doy``: see :meth:`forecast`) or ``embed``; ``extra`` passes
        ``target`` / ``reconstruct_weight`` / ``prototype_weight`` to :meth:`contrastive_loss`."""
        if task == "classify":
            return self.classify(series, patches, mask)
        if task == "contrastive":
            return self.contrastive_loss(series, patches, mask, gather, **extra)
        if task == "forecast":
            return self.forecast(series, origin_doy)
        if task == "embed":
            return self.embed(series, patches)
        raise ConfigError(f"unknown task {task!r}")

    # ------------------------------------------------------------------ file form
    def module_state(self, include: Sequence[str] | None = None) -> dict[str, dict[str, torch.Tensor]]:
        """``{module: state_dict}`` of the sub-modules (the ``.pimc`` weights layout)."""
        out = {}
        for name, mod in self.named_children():
            if mod is None or name in PRETRAIN_ONLY or (include is not None and name not in include):
                continue
            sd = mod.state_dict()
            if sd:
                out[name] = sd
        return out

    def load_module_state(self, weights: Mapping[str, Mapping[str, torch.Tensor]], strict: bool = True) -> None:
        """Inverse of :meth:`module_state`. With ``strict``, every module of the net must be given."""
        for name, mod in self.named_children():
            if mod is None or name in PRETRAIN_ONLY:
                continue
            sd = weights.get(name)
            if sd is None:
                if strict and mod.state_dict():
                    raise ConfigError(f"model file lacks the weights of module '{name}'")
                continue
            mod.load_state_dict(dict(sd))
        unknown = [k for k in weights if getattr(self, k, None) is None]
        if strict and unknown:
            raise ConfigError(f"model file has weights of unknown module(s) {', '.join(unknown)}")


def compute_normalisation(series: np.ndarray, patches: np.ndarray | None) -> dict[str, dict[str, list[float]]]:
    """Per-index mean/std of (N, C, T) series and per-band nan-mean/std of (N, B, k, k) patches."""
    s = np.asarray(series, np.float64)
    mean = s.mean(axis=(0, 2))
    std = s.std(axis=(0, 2))
    out = {"indices": {"mean": mean.tolist(), "std": np.maximum(std, 1e-4).tolist()}}
    if patches is not None and patches.size:
        p = np.asarray(patches, np.float64)
        centre = p.shape[-1] // 2
        vals = p[:, :, centre, centre]  # one value per pixel: not dominated by overlapping patches
        bm = np.nanmean(vals, axis=0)
        bs = np.nanstd(vals, axis=0)
        bm = np.where(np.isfinite(bm), bm, 0.0)
        bs = np.where(np.isfinite(bs) & (bs > 1e-4), bs, 1.0)
        out["bands"] = {"mean": bm.tolist(), "std": bs.tolist()}
    return out
