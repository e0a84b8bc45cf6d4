"""The fused PIMC network: recurrence-plot encoder + patch encoder (+ a 1-D series branch),
projection heads for contrastive pretraining, classifier and forecast heads, and the
standardisation of its inputs.

Inputs of one pixel (everything in physical units; the network standardises with the
statistics of :func:`compute_normalisation`, kept in the model file, not in the state dict):

* ``series`` (C, T): its gap-filled vegetation-index series (NDVI, EVI, SAVI, ...);
* ``patches`` (B, k, k): the k x k neighbourhood in a reference image (median composite),
  optional.

Modalities and their encoders (:mod:`pimc_core.models.encoders`):

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
``sar``     with ``radar_modality``: the standardised radar series (VV, VH   :class:`SeriesEncoder`
            in dB, ...), the channels ``cfg.sar_indices`` of ``series``;
            ``rp`` and ``series`` then read the optical channels only
==========  ===============================================================  =================

Fusion and modality dropout (:mod:`pimc_core.models.modalities`): the fused embedding of a
pixel is the concatenation of the modality embeddings, a modality that is absent (no patch
given, or dropped during training) contributing zeros, followed by one presence flag per
modality, so the classifier works with any subset of inputs at prediction time.

Contrastive pretraining (:mod:`pimc_core.learn.pretrain`) pulls together the *temporal* view (RP +
series embeddings through ``temporal_proj``) and the *spatial* view (patch embedding through
``patch_proj``) of the same pixel with :class:`pimc_core.models.contrastive.SymmetricInfoNCE`;
with a radar modality every pair of the three views (temporal, patch, radar through
``sar_proj``) is aligned, as OmniSat aligns every pair of modalities, and the loss is the mean of
the pairs' losses.

Forecasting uses the temporal modalities of the last ``L`` observations and predicts the next
``h`` values of the forecast index as a change of an anchor (the last value: the zero output is
persistence), optionally with side inputs (:mod:`pimc_core.models.forecast_head`).

The architecture is a :class:`~pimc_core.models.pimc_config.PimcModelConfig`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.errors import ConfigError
from pimc_core.models.contrastive import SwappedPrototypes, SymmetricInfoNCE
from pimc_core.models.encoders import PatchEncoder, RPEncoder, SeriesEncoder
from pimc_core.models.forecast_head import FORECAST_INPUTS, SeasonalForecastHead, seasonal_climatology, side_features
from pimc_core.models.heads import ClassifierHead, ForecastHead, ProjectionHead
from pimc_core.models.modalities import MODALITIES, SAR_MODALITIES, modality_mask, random_modality_mask
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.series.recurrence import RecurrencePlotConfig

# the configuration, masks and forecast head live in their own modules; the names stay importable here
__all__ = ["FORECAST_INPUTS", "MODALITIES", "PRETRAIN_ONLY", "SAR_MODALITIES", "PimcModelConfig", "PimcNet", "SeasonalForecastHead",
           "compute_normalisation", "modality_mask", "random_modality_mask", "seasonal_climatology"]

#: Sub-modules that exist only for pretraining terms: kept in checkpoints, never in model files.
PRETRAIN_ONLY: tuple[str, ...] = ("reconstructor", "prototypes")


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
        #: the network's modalities (:data:`MODALITIES`, or :data:`SAR_MODALITIES` with a radar encoder)
        self.modalities: tuple[str, ...] = cfg.modalities
        # channels of the (N, C, T) input each branch reads
        self.optical_channels = [cfg.indices.index(i) for i in cfg.optical_indices]
        self.sar_channels = [cfg.indices.index(i) for i in cfg.sar_indices]
        self.sar_encoder = SeriesEncoder.from_config(cfg.sar_cfg()) if cfg.has_sar else None
        d = cfg.embed_dim
        self.temporal_proj = ProjectionHead(d * (2 if cfg.has_series else 1), cfg.proj_dim)
        self.patch_proj = ProjectionHead(d, cfg.proj_dim) if cfg.has_patch else None
        self.sar_proj = ProjectionHead(d, cfg.proj_dim) if cfg.has_sar else None
        self.contrastive = SymmetricInfoNCE(cfg.init_temperature)
        self.classifier = (
            ClassifierHead(cfg.fused_dim + len(self.modalities), cfg.n_classes, cfg.classifier_hidden)
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
    def optical(self, xs: torch.Tensor) -> torch.Tensor:
        """(N, C, T) → (N, C_opt, T): the channels the RP and series branches read (all of them
        without a radar modality)."""
        return xs if self.sar_encoder is None else xs[:, self.optical_channels]

    def temporal_embeddings(self, xs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Standardised series (N, C, T) → {"rp": (N, D)[, "series": (N, D)][, "sar": (N, D)]}."""
        xo = self.optical(xs)
        out = {"rp": self.rp_encoder(self.rp_images(xo))}
        if self.series_encoder is not None:
            out["series"] = self.series_encoder(xo)
        if self.sar_encoder is not None:
            out["sar"] = self.sar_encoder(xs[:, self.sar_channels])
        return out

    def encode(self, series: torch.Tensor | None, patches: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Raw inputs → modality embeddings (keys among :attr:`modalities`)."""
        out: dict[str, torch.Tensor] = {}
        if series is not None:
            out.update(self.temporal_embeddings(self.standardise_series(series)))
        if patches is not None and self.patch_encoder is not None:
            out["patch"] = self.patch_encoder(self.standardise_patches(patches))
        return out

    def present_mask(self, n: int, emb: Mapping[str, torch.Tensor], device: torch.device) -> torch.Tensor:
        """(n, M) mask of the modalities that have an embedding in ``emb``."""
        return modality_mask(n, [m for m in self.modalities if m in emb], device, self.modalities)

    def modality_mask(self, n: int, present: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        """(n, M) mask of the modalities ``present`` among the network's :attr:`modalities`."""
        return modality_mask(n, present, device, self.modalities)

    def fuse(self, emb: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Concatenate modality embeddings (zeros where ``mask`` is 0) and the mask: (N, M·D + M)."""
        n = mask.shape[0]
        d = self.cfg.embed_dim
        blocks = []
        for j, m in enumerate(self.modalities):
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
        """Class logits (N, K); ``mask`` (N, M) drops modalities (default: all given ones)."""
        if self.classifier is None:
            raise ConfigError("this model has no classifier")
        emb = self.encode(series, patches)
        n = next(iter(emb.values())).shape[0]
        present = self.present_mask(n, emb, next(iter(emb.values())).device)
        mask = present if mask is None else mask * present
        return self.classifier(self.fuse(emb, mask))

    def embed(self, series: torch.Tensor | None, patches: torch.Tensor | None) -> torch.Tensor:
        """Fused embedding without the presence flags: (N, M·D)."""
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
        """Side features (N, n_extra) of the forecast head from standardised (N, C, L) series, or
        None (:func:`pimc_core.models.forecast_head.side_features`)."""
        ci = self.cfg.indices.index(self.cfg.forecast_index)
        return side_features(self.cfg, xs, self.idx_mean[ci], self.idx_std[ci], origin_doy, clim)

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
        """Symmetric InfoNCE between the temporal and the patch view of the same pixels (with a
        radar modality: the mean over the pairs of the temporal, patch and radar views), plus
        (``reconstruct_weight`` > 0) ``reconstruct_weight`` × the mean squared error of the
        standardised ``target`` series decoded from the temporal view by :attr:`reconstructor`,
        plus (``prototype_weight`` > 0) ``prototype_weight`` × the swapped-prototype loss of the
        two projections (:attr:`prototypes`).

        Args:
            series, patches: (already augmented) raw inputs, (N, C, T) and (N, B, k, k).
            mask: (N, M) modality mask; only the temporal columns matter (dropping RP or
                series inside the temporal view).
            gather: optional function (N, P) → (world * N, P) gathering projections across
                processes (DDP), so every rank contrasts against the global batch.
            target: (N, C, T) raw series to reconstruct (the un-augmented inputs).
            reconstruct_weight: weight of the reconstruction term (needs
                :meth:`attach_reconstructor`).
            prototype_weight: weight of the swapped-prototype term (needs
                :meth:`attach_prototypes`).
        """
        if self.patch_encoder is None and self.sar_encoder is None:
            raise ConfigError("contrastive pretraining needs a patch encoder (patch bands) or a radar modality")
        emb = self.encode(series, patches)
        t_view = self.temporal_view(emb, mask)
        views = [self.temporal_proj(t_view)]
        if self.patch_encoder is not None:
            views.append(self.patch_proj(emb["patch"]))
        if self.sar_encoder is not None:
            views.append(self.sar_proj(emb["sar"]))
        if gather is not None:
            views = [gather(z) for z in views]
        pairs = [(a, b) for i, a in enumerate(views) for b in views[i + 1:]]
        loss = sum(self.contrastive(a, b) for a, b in pairs) / len(pairs)
        if prototype_weight > 0:
            if self.prototypes is None:
                raise ConfigError("prototype_weight > 0 needs attach_prototypes()")
            loss = loss + prototype_weight * self.prototypes(views[0], views[1])
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
