"""PIMC pixel models in ``.pimc`` files: :func:`save_pixel_model` and :func:`load_pixel_model`.

A loaded :class:`PimcPixelModel` implements the ``PixelModel`` protocol of
:mod:`pimc_core.maps.engine` (``indices``, ``target_dates``, ``min_valid``, ``outputs``,
``n_classes``, ``class_table``, ``forecast_dates``, ``embed_dim``, ``patch_size``,
``patch_bands``, ``forecast_index``, ``prepare(source)``, ``patch_composite(...)``,
``predict(filled, patches)``), so map inference, the QGIS plugin and scripts use it unchanged.

What the file holds (schema: :mod:`pimc_core.models.model_metadata`):

* weights: the modules of :class:`~pimc_core.models.pimc_net.PimcNet` (``rp_encoder``,
  ``series_encoder``, ``patch_encoder``, ``temporal_proj``, ``patch_proj``, ``contrastive``,
  ``classifier``, ``forecaster``) as safetensors;
* ``architecture.pimc``: the :class:`~pimc_core.models.pimc_config.PimcModelConfig` that rebuilds the
  network (one entry per module documents its constructor settings);
* ``indices``, ``n_dates``, ``dates`` (``observed``: the stack's acquisition dates, data must
  have exactly ``n_dates``; ``grid``: series are resampled onto ``n_dates`` dates every
  ``step_days`` from day-of-year ``start_doy`` of the season's first year), ``recurrence``,
  ``bands`` (= the patch bands), ``patch_size``, ``normalisation``, ``classes``,
  ``forecast_horizon``;
* ``training``: ``min_valid``, ``patch_reference`` (``median``), ``classify_modalities`` (what
  the classifier reads: all of ``rp``, ``series``, ``patch`` by default, or without ``patch`` when
  ``pimc fit`` found that better on held-out labelled regions), ``forecast_input`` (L),
  ``forecast_index``, ``dates`` (the training series' dates), ``step_days`` and the training
  summary (configuration, losses, metrics, seconds).

Patches: map inference cuts them from the per-band median of the valid observations
(:func:`pimc_core.series.composites.composite_of`, as in training), or from ``K`` such composites of
consecutive periods of the stack for a model trained with ``seasonal:K`` patches
(``training.patch_reference``; ``bands`` then lists the stack bands read, the network's patch
channels ``s1_<band> … sK_<band>`` and their statistics are in ``training.patch_bands`` /
``training.patch_normalisation``), NaN outside the raster; the
model reflects those border rows / columns back (training used reflect padding) and treats
any other NaN as the band mean. A model trained on patches of an external reference raster
cannot get them from a stack, so in map inference it reports ``patch_size = None`` and
predicts from the series alone (modality dropout makes that a supported input).

A model with a radar modality (``architecture.pimc.radar_modality``, trained on an optical source
with ``--sar``) classifies from what :meth:`PimcPixelModel.prepare` is given: the optical source
with its radar source (every modality), the optical source alone (``indices`` become the optical
ones; the ``sar`` block is absent) or the radar source alone (the radar indices; no patches, no
forecast; the optical blocks are absent). The absent channels are filled with their training mean
and masked out of the fused embedding, as source dropout did in training; the forest member,
which reads every channel, is used only when both sources are given.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.timeseries import TimeSeries
from pimc_core.models.compatibility import check_compatible
from pimc_core.models.forest import ArrayForest
from pimc_core.models.inference_net import graph_supported
from pimc_core.models.model_file import load_model, save_model
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet
from pimc_core.models.source_inputs import SourceInputs
from pimc_core.models.text_encoder import TEXT_MODULES
from pimc_core.series.composites import composite_of, reflect_fill_patches, seasonal_composite, seasonal_source_bands, stack_reference
from pimc_core.series.gapfill import grid_dates
from pimc_core.series.indices import INDEX_BOUNDS

__all__ = ["PimcPixelModel", "load_pixel_model", "save_pixel_model"]

_BATCH = 2048


def _median_step(dates: Sequence[dt.date]) -> int:
    if len(dates) < 2:
        return 10
    return max(1, int(np.median(np.diff([d.toordinal() for d in dates]))))


class PimcPixelModel(SourceInputs):
    """A PIMC network with everything needed to feed it pixels (a ``PixelModel``).

    Build it with :func:`load_pixel_model` or directly from a trained :class:`PimcNet` and its
    metadata (:meth:`from_net`).
    """

    def __init__(self, net: PimcNet, metadata: Mapping[str, Any], *, device: str | torch.device | None = None,
                 forest: ArrayForest | None = None) -> None:
        self.net = net.eval()
        self.metadata = dict(metadata)
        #: the series member of the classifier ensemble (None: the network alone) and its weight:
        #: probabilities = (1 - w) * network + w * forest (``training.ensemble.forest_weight``)
        self.forest = forest
        ens = (self.metadata.get("training") or {}).get("ensemble") or {}
        self.forest_weight = float(ens.get("forest_weight", 0.0)) if forest is not None else 0.0
        if forest is not None and not 0.0 <= self.forest_weight <= 1.0:
            raise InputError(f"model metadata: training.ensemble.forest_weight must be in [0, 1]; got {self.forest_weight}")
        #: torch CPU threads used by :meth:`predict` (0: the cores not busy with other processes,
        #: see :func:`pimc_core.devices.auto_threads`; restored after each call).
        self.threads = 0
        from pimc_core.devices import resolve_device

        #: where :meth:`predict` runs (``auto``: a CUDA GPU when there is one); float16 autocast on CUDA
        self.device = resolve_device(device if device is not None else "cpu")
        cfg = net.cfg
        tr = self.metadata.get("training") or {}
        self.indices: tuple[str, ...] = tuple(cfg.indices)
        self.n_dates = int(cfg.n_dates)
        self.min_valid = int(tr.get("min_valid", 3))
        self.dates_spec: dict[str, Any] = dict(self.metadata.get("dates") or {"mode": "observed"})
        self.training_dates = tuple(dt.date.fromisoformat(d) for d in tr.get("dates", []) or [])
        self.patch_reference = str(tr.get("patch_reference", "median"))
        #: composites of the stack the patches are cut from (1: median, K: seasonal:K, 0: a raster)
        self.patch_groups = stack_reference(self.patch_reference)
        can_patch = cfg.has_patch and self.patch_groups > 0
        self.patch_size: int | None = int(cfg.patch_size) if can_patch else None
        #: the stack bands read for the patches; the network sees ``patch_channels`` channels
        self.patch_bands: tuple[str, ...] = seasonal_source_bands(cfg.patch_bands, self.patch_groups) if can_patch else ()
        self.patch_channels: int = len(cfg.patch_bands) if can_patch else 0
        #: modalities the classifier reads (``training.classify_modalities``; default all); the
        #: embeddings always fuse every modality given
        cm = tr.get("classify_modalities")
        self.classify_modalities: tuple[str, ...] = tuple(cm) if cm else net.modalities
        if net.sar_encoder is not None and "sar" not in self.classify_modalities:  # the input choice is about the patch
            self.classify_modalities += ("sar",)
        bad = set(self.classify_modalities) - set(net.modalities)
        if bad:
            raise InputError(f"model metadata: training.classify_modalities has unknown modalities {sorted(bad)}")
        #: the modalities the bound source gives (:meth:`prepare`; every one until then)
        self.given: tuple[str, ...] = net.modalities
        self._full = {"indices": self.indices, "patch_size": self.patch_size, "patch_bands": self.patch_bands,
                      "patch_channels": self.patch_channels}
        self._stack_dates: tuple[dt.date, ...] | None = None
        #: how :meth:`predict` computes probabilities and embeddings: ``torch`` (default: the map
        #: graph, :mod:`pimc_core.models.inference_net`), ``onnx`` (that graph in ONNX Runtime),
        #: ``auto`` (``onnx`` on a CPU with onnxruntime, else ``torch``) or ``reference`` (the
        #: network as trained); see :mod:`pimc_core.models.graph_engine`
        self.engine = "torch"
        #: torch CPU threads of the last :meth:`predict` (0: none yet)
        self.last_threads = 0
        self._engines: dict[tuple, Any] = {}
        self.class_table: list[dict[str, Any]] = [dict(c) for c in self.metadata.get("classes") or []]
        self.n_classes = len(self.class_table) if net.classifier is not None else 0
        if net.classifier is not None and self.n_classes != cfg.n_classes:
            raise InputError(f"model has {cfg.n_classes} classifier outputs but {self.n_classes} classes in its metadata")
        self.forecast_index = cfg.forecast_index
        self.forecast_input = int(tr.get("forecast_input") or cfg.forecast_input or 0)
        self.forecast_horizon = int(cfg.forecast_horizon)
        self.embed_dim: int | None = cfg.fused_dim
        outs = ["embeddings"]
        if net.classifier is not None:
            outs = ["classes", "confidence", "probabilities"] + outs
        if net.forecaster is not None:
            outs.append("forecast")
        self.outputs: tuple[str, ...] = tuple(outs)
        self._full["outputs"] = self.outputs
        self.target_dates: list[dt.date] | None = None
        self.forecast_dates: list[dt.date] | None = None
        self.step_days = int(tr.get("step_days") or self.dates_spec.get("step_days") or _median_step(self.training_dates))
        if self.dates_spec.get("mode") == "grid":
            first = self.training_dates[0] if self.training_dates else (
                dt.date.fromisoformat(self.dates_spec["start"]) if self.dates_spec.get("start") else None)
            if first is not None:
                self._bind(grid_dates(first, self.n_dates, int(self.dates_spec["step_days"]), int(self.dates_spec["start_doy"])))
        elif self.training_dates:
            self._bind(list(self.training_dates), set_targets=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_net(cls, net: PimcNet, metadata: Mapping[str, Any], **kw: Any) -> "PimcPixelModel":
        return cls(net, metadata, **kw)

    def _bind(self, dates: Sequence[dt.date], set_targets: bool = True) -> None:
        dates = list(dates)
        if set_targets:
            self.target_dates = dates
        #: the dates of the series :meth:`predict` receives (the last one is the forecast origin)
        self.series_dates: list[dt.date] | None = dates
        if self.forecast_horizon:
            step = self.step_days if self.dates_spec.get("mode") == "grid" else _median_step(dates)
            self.forecast_dates = [dates[-1] + dt.timedelta(days=step * (i + 1)) for i in range(self.forecast_horizon)]

    def prepare(self, source: TimeSeries) -> None:
        """Bind to a stack: check its bands (BandError) and dates; set the target / forecast dates.

        A model with a radar modality is bound to what ``source`` gives (:meth:`select_inputs`).

        Raises:
            BandError: the stack lacks a band the indices or the patches need.
            ConfigError: an ``observed``-dates model and a stack with another number of dates.
        """
        if self.net.sar_encoder is not None:  # the indices and patch bands of the sources given
            self.select_inputs(source)
            check_compatible({"indices": list(self.indices), "bands": list(self.patch_bands)}, bands=source.band_names)
        else:
            check_compatible(self.metadata, bands=source.band_names)
        self._stack_dates = tuple(source.dates)
        if self.dates_spec.get("mode") == "grid":
            self._bind(grid_dates(source.dates[0], self.n_dates, int(self.dates_spec["step_days"]),
                                  int(self.dates_spec["start_doy"])))
        else:
            if len(source.dates) != self.n_dates:
                raise ConfigError(
                    f"model expects {self.n_dates} dates (it uses the observed dates); {source.source} has "
                    f"{len(source.dates)} — it maps only stacks of its dates: train a model on this stack (or one on "
                    "a fixed date grid, which maps any stack of the season)"
                )
            self.target_dates = None
            self._bind(source.dates, set_targets=False)

    def patch_composite(self, reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """The image the patches are cut from, as in training: (T, B, h, w) → (patch_channels, h, w).

        The per-band median of the valid observations (``median``), or one such composite per
        period of the stack bound by :meth:`prepare` (``seasonal:K``,
        :func:`pimc_core.series.composites.seasonal_composite`).
        """
        if self.patch_groups <= 1:
            return composite_of(reflectance, valid)
        if self._stack_dates is None:
            raise ConfigError(f"model with {self.patch_reference} patches: call prepare(source) first (the composites need the dates)")
        return seasonal_composite(reflectance, valid, self._stack_dates, self.patch_groups)

    # ------------------------------------------------------------------ prediction
    def needs_patches(self, outputs: Sequence[str]) -> bool:
        """Whether :meth:`predict` reads patches for ``outputs``: the embeddings fuse every
        modality, the probabilities only those of ``classify_modalities``, the forecast none."""
        if not self.patch_size:
            return False
        outs = set(outputs)
        return "embeddings" in outs or ("probabilities" in outs and "patch" in self.classify_modalities)

    def _engine(self, outputs: tuple[str, ...], patches: bool):
        """The graph engine (:mod:`pimc_core.models.graph_engine`) for these outputs and inputs, made once."""
        from pimc_core.models.graph_engine import make_engine

        key = (self.engine, outputs, patches, str(self.device))
        eng = self._engines.get(key)
        if eng is None:
            eng = make_engine(self.engine, self.net, self.classify_modalities, outputs, patches, self.device,
                              torch.get_num_threads())
            self._engines[key] = eng
        return eng

    @torch.no_grad()  # not inference_mode: recurrence plots are computed in worker threads
    def predict(self, filled: np.ndarray, patches: np.ndarray | None = None, *,
                outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Predict a batch of pixels.

        Args:
            filled: (N, C, T) float32 gap-filled index series (C = ``len(indices)``, T = ``n_dates``).
            patches: (N, B, k, k) reference patches (NaN outside the raster / without data), or
                None: the series alone are used.
            outputs: restrict to some of ``probabilities``, ``forecast``, ``embeddings`` (default:
                all the model has; the forecast costs a second pass of the temporal encoders).

        Returns:
            ``probabilities`` (N, K), ``embeddings`` (N, D), ``forecast`` (N, h) of the model's.

        Raises:
            ConfigError: wrong shapes. InputError: NaN in ``filled``.
        """
        x = np.asarray(filled, dtype=np.float32)
        c = len(self.indices)
        if x.ndim != 3 or x.shape[1] != c:
            raise ConfigError(f"model expects series of shape (N, {c}, {self.n_dates}) ({','.join(self.indices)}); got {x.shape}")
        if x.shape[2] != self.n_dates:
            raise ConfigError(f"model expects {self.n_dates} dates; got series of {x.shape[2]}")
        groups = self.channel_groups
        pixel_mask = None
        if groups is not None:  # a source's channels may all be NaN: that source is absent for the pixel
            x, pixel_mask = self._absent_sources(x, groups)
        if not np.isfinite(x).all():
            raise InputError("series contain NaN / inf; give gap-filled series (pimc_core.series.pixel.index_series)")
        x = self._expand(x)
        p = None
        if patches is not None and self.net.patch_encoder is not None:
            p = np.array(patches, dtype=np.float32, copy=True)
            want = (x.shape[0], len(self.net.cfg.patch_bands), self.net.cfg.patch_size, self.net.cfg.patch_size)
            if p.shape != want:
                raise ConfigError(f"model expects patches of shape {want}; got {p.shape}")
            reflect_fill_patches(p)
        wanted = set(outputs) if outputs is not None else {"probabilities", "embeddings", "forecast"}
        if "forecast" not in self.outputs:
            wanted.discard("forecast")
        prev_threads = torch.get_num_threads()
        if self.device.type == "cpu":
            from pimc_core.devices import auto_threads

            self.last_threads = auto_threads(self.threads)
        try:
            return self._predict(x, p, wanted, pixel_mask)
        finally:
            if torch.get_num_threads() != prev_threads:
                torch.set_num_threads(prev_threads)

    def _predict(self, x: np.ndarray, p: np.ndarray | None, wanted: set[str],
                 pixel_mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        from pimc_core.devices import autocast

        with autocast(self.device):
            return self._predict_batches(x, p, wanted, pixel_mask)

    def _predict_batches(self, x: np.ndarray, p: np.ndarray | None, wanted: set[str],
                         pixel_mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        net = self.net.to(self.device)
        graph_outs = tuple(o for o in ("probabilities", "embeddings")
                           if o in wanted and (o == "embeddings" or net.classifier is not None))
        if self.engine != "reference" and graph_outs and x.shape[0] and graph_supported(net) is None:
            mods = None
            if net.sar_encoder is not None:  # what each pixel has: the sources given, and per pixel (pixel_mask)
                mods = np.repeat(net.modality_mask(1, self.given).numpy(), x.shape[0], axis=0)
                if pixel_mask is not None:
                    mods = mods * pixel_mask
            out = self._engine(graph_outs, p is not None).run(x, p, mods)
            if "probabilities" in out:
                self._mix_forest(out["probabilities"], x, pixel_mask)
            if "forecast" in wanted:
                out.update(self._predict_batches_reference(x, None, {"forecast"}))
            return out
        return self._predict_batches_reference(x, p, wanted, pixel_mask)

    def _mix_forest(self, prob: np.ndarray, x: np.ndarray, pixel_mask: np.ndarray | None) -> None:
        """Mix the forest member into ``prob`` (N, K) in place, on the pixels that have every
        modality: the forest reads every channel, so only when both sources are given and, per
        pixel, present (``pixel_mask`` (N, M), :meth:`_absent_sources`)."""
        if self.forest is None or self.given != self.net.modalities:
            return
        whole = slice(None) if pixel_mask is None else pixel_mask.all(axis=1)
        prob[whole] = self.forest.mix(prob[whole], x[whole], self.forest_weight)

    def _predict_batches_reference(self, x: np.ndarray, p: np.ndarray | None, wanted: set[str],
                                   pixel_mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The network as trained, batch by batch; ``pixel_mask`` (N, M): modalities each pixel
        lacks (:meth:`_absent_sources`)."""
        net = self.net.to(self.device)
        n = x.shape[0]
        probs, embs, fcs = [], [], []
        for s in range(0, n, _BATCH):
            xb = torch.from_numpy(x[s:s + _BATCH]).to(self.device)
            pb = None if p is None else torch.from_numpy(p[s:s + _BATCH]).to(self.device)
            if wanted & {"probabilities", "embeddings"}:
                emb = net.encode(xb, pb)
                mask = net.present_mask(xb.shape[0], emb, self.device) * net.modality_mask(1, self.given, self.device)
                if pixel_mask is not None:
                    mask = mask * torch.from_numpy(pixel_mask[s:s + _BATCH]).to(self.device)
                fused = net.fuse(emb, mask)
                if "probabilities" in wanted and net.classifier is not None:
                    cls_in = fused if self.classify_modalities == net.modalities else \
                        net.fuse(emb, mask * net.modality_mask(1, self.classify_modalities, self.device))
                    pr = torch.softmax(net.classifier(cls_in).float(), dim=1).cpu().numpy()
                    self._mix_forest(pr, x[s:s + _BATCH], None if pixel_mask is None else pixel_mask[s:s + _BATCH])
                    probs.append(pr)
                if "embeddings" in wanted:
                    embs.append(fused[:, : net.cfg.fused_dim].float().cpu().numpy())
            if "forecast" in wanted and net.forecaster is not None:
                L = self.forecast_input or xb.shape[2]
                xf = xb if net.needs_history else xb[:, :, -L:]  # the climatology input reads the whole series
                fcs.append(net.forecast(xf, self._origin_doy(xb.shape[0])).float().cpu().numpy())
        out: dict[str, np.ndarray] = {}
        if probs:
            out["probabilities"] = np.concatenate(probs).astype(np.float32)
        if embs:
            out["embeddings"] = np.concatenate(embs).astype(np.float32)
        if fcs:
            out["forecast"] = np.concatenate(fcs).astype(np.float32)
            bounds = INDEX_BOUNDS.get(self.forecast_index)
            if bounds is not None:  # the head extrapolates; an index cannot leave its range
                np.clip(out["forecast"], *bounds, out=out["forecast"])
        if n == 0:
            k = self.n_classes
            if "probabilities" in wanted and k:
                out["probabilities"] = np.zeros((0, k), np.float32)
            if "embeddings" in wanted:
                out["embeddings"] = np.zeros((0, self.embed_dim), np.float32)
            if "forecast" in wanted and self.forecast_horizon:
                out["forecast"] = np.zeros((0, self.forecast_horizon), np.float32)
        return out

    def _origin_doy(self, n: int) -> torch.Tensor | None:
        """Day of the year of the forecast origin (the series' last date) for ``n`` pixels, when
        the forecaster reads the season phase; None otherwise."""
        if not self.net.needs_origin:
            return None
        dates = getattr(self, "series_dates", None)
        if not dates:
            raise ConfigError("this forecaster needs the dates of the series: call prepare(source) first")
        doy = float(dates[-1].timetuple().tm_yday)
        return torch.full((n,), doy, dtype=torch.float32, device=self.device)

    def device_summary(self) -> str:
        """Where and how :meth:`predict` ran, for a status line: ``CPU, 2 threads, torch map graph``
        or ``CUDA NVIDIA H100 (cuda:0), float16 autocast, torch map graph``."""
        from pimc_core.devices import describe_device
        from pimc_core.models.graph_engine import resolve_engine

        engine = resolve_engine(self.engine, self.device) if graph_supported(self.net) is None else "reference"
        how = {"torch": "torch map graph", "onnx": "ONNX Runtime", "reference": "reference network"}[engine]
        return f"{describe_device(self.device, self.last_threads)}, {how}"

    def __repr__(self) -> str:
        return (f"PimcPixelModel(indices={','.join(self.indices)}, T={self.n_dates}, classes={self.n_classes}, "
                f"patch={self.patch_size}, outputs={','.join(self.outputs)})")


# ============================================================================ file I/O
def _architecture(cfg: PimcModelConfig, net: PimcNet) -> dict[str, dict[str, Any]]:
    arch: dict[str, dict[str, Any]] = {"pimc": cfg.to_dict()}
    arch["rp_encoder"] = {"kind": "rp", **cfg.rp_cfg().to_dict(), "stem_stride": cfg.rp_stem_stride}
    if net.series_encoder is not None:
        arch["series_encoder"] = {"kind": "series", **cfg.series_cfg().to_dict()}
    if net.patch_encoder is not None:
        arch["patch_encoder"] = {"kind": "patch", **cfg.patch_cfg().to_dict()}
    if net.sar_encoder is not None:
        arch["sar_encoder"] = {"kind": "series", **cfg.sar_cfg().to_dict(), "indices": list(cfg.sar_indices)}
    arch["temporal_proj"] = {"kind": "projection", "proj_dim": cfg.proj_dim}
    if net.patch_proj is not None:
        arch["patch_proj"] = {"kind": "projection", "proj_dim": cfg.proj_dim}
    if net.sar_proj is not None:
        arch["sar_proj"] = {"kind": "projection", "proj_dim": cfg.proj_dim}
    arch["contrastive"] = {"kind": "symmetric_infonce", "init_temperature": cfg.init_temperature}
    if net.classifier is not None:
        arch["classifier"] = {"kind": "classifier", "n_classes": cfg.n_classes, "hidden_dim": cfg.classifier_hidden,
                              "input": f"fused {'|'.join(net.modalities)} embeddings + presence flags"}
    if net.forecaster is not None:
        arch["forecaster"] = {"kind": "forecast", "horizon": cfg.forecast_horizon, "input_length": cfg.forecast_input,
                              "index": cfg.forecast_index, "output": "residual on the last value, standardised"}
        if cfg.forecast_inputs:  # version 2: side features (older files have none and load unchanged)
            arch["forecaster"].update({"version": 2, "side_inputs": list(cfg.forecast_inputs),
                                       "season_steps": cfg.forecast_season_steps,
                                       "origin": "day of year of the last input date"})
    return arch


def save_pixel_model(
    path: str | os.PathLike,
    net: PimcNet,
    *,
    classes: Sequence[Mapping[str, Any]] | None = None,
    dates: Mapping[str, Any] | None = None,
    training_dates: Sequence[dt.date] = (),
    min_valid: int = 3,
    patch_reference: str = "median",
    training: Mapping[str, Any] | None = None,
    forest: ArrayForest | None = None,
) -> Path:
    """Write ``net`` and its metadata to a ``.pimc`` file (safetensors; atomic).

    Args:
        net: the trained network (normalisation set).
        classes: ``[{"id", "name", "color"}]`` in the classifier's output order.
        dates: ``{"mode": "observed"}`` (default) or ``{"mode": "grid", "start_doy", "step_days"}``.
        training_dates: the dates of the training series (for the forecast dates).
        min_valid: pixels with fewer valid observations are nodata in maps.
        patch_reference: ``"median"``, ``"seasonal:K"`` or the path of the reference raster the
            patches came from.
        training: free-form training summary (``ensemble.forest_weight``: the forest's share of
            the probabilities, with ``forest``).
        forest: the series member of the classifier ensemble (:mod:`pimc_core.models.forest`),
            stored as the weights group ``forest``.
    """
    cfg = net.cfg
    groups = stack_reference(patch_reference)
    if net.classifier is not None and (classes is None or len(classes) != cfg.n_classes):
        raise ConfigError(f"the classifier has {cfg.n_classes} outputs; give as many classes")
    task = "pixel_classification" if net.classifier is not None else ("forecast" if net.forecaster is not None else "embedding")
    tr = dict(training or {})
    tr.update({
        "min_valid": int(min_valid),
        "patch_reference": str(patch_reference),
        "forecast_input": int(cfg.forecast_input),
        "forecast_index": cfg.forecast_index,
        "dates": [d.isoformat() for d in training_dates],
        "step_days": int((dates or {}).get("step_days") or _median_step(list(training_dates))),
    })
    meta = {
        "task": task,
        "architecture": _architecture(cfg, net),
        "indices": list(cfg.indices),
        "bands": list(seasonal_source_bands(cfg.patch_bands, groups)) if cfg.has_patch and groups else [],
        "n_dates": int(cfg.n_dates),
        "dates": dict(dates or {"mode": "observed"}),
        "recurrence": dict(cfg.rp),
        "normalisation": net.normalisation() if (cfg.has_patch and groups == 1) else
        {"indices": net.normalisation()["indices"]},
        "patch_size": int(cfg.patch_size) if cfg.has_patch else None,
        "classes": [dict(c) for c in classes] if classes else [],
        "forecast_horizon": int(cfg.forecast_horizon) or None,
        "training": tr,
    }
    if cfg.has_patch and groups != 1:  # patch channels are not stack bands: their statistics live here
        tr["patch_normalisation"] = net.normalisation().get("bands")
        tr["patch_bands"] = list(cfg.patch_bands)
    weights = net.module_state()
    if forest is not None:
        if net.classifier is None or forest.n_classes != cfg.n_classes:
            raise ConfigError(f"the forest gives {forest.n_classes} classes; the classifier {cfg.n_classes}")
        weights["forest"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in forest.tensors().items()}
    return save_model(path, weights, meta)


def load_pixel_model(path: str | os.PathLike, *, device: str | torch.device | None = None,
                     engine: str = "torch") -> PimcPixelModel:
    """Load a ``.pimc`` PIMC pixel model (no pickle, no code execution).

    ``device``: where it predicts (``cpu`` by default; ``auto``, ``cuda``, ``cuda:N``; see
    :func:`pimc_core.devices.resolve_device`). ``engine``: ``torch`` (default), ``onnx``, ``auto``
    or ``reference`` (:attr:`PimcPixelModel.engine`).

    Raises:
        InputError: not a model file, or not a PIMC pixel model (no ``architecture.pimc``), or
            weights that do not fit the architecture.
    """
    from pimc_core.models.graph_engine import ENGINES

    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    weights, meta = load_model(path)
    forest_arrays = weights.pop("forest", None)
    for name in TEXT_MODULES:  # a text head (pimc text-fit) rides along; the pixel model ignores it
        weights.pop(name, None)
    arch = (meta.get("architecture") or {}).get("pimc")
    if not isinstance(arch, Mapping):
        raise InputError(f"{path}: not a PIMC pixel model (no architecture.pimc in its metadata; task {meta.get('task')})")
    try:
        cfg = PimcModelConfig.from_dict(arch)
        net = PimcNet(cfg)
        net.load_module_state(weights, strict=True)
    except (ConfigError, RuntimeError, KeyError) as e:
        raise InputError(f"{path}: weights do not match the model's architecture ({str(e).splitlines()[0][:300]})") from None
    norm = dict(meta.get("normalisation") or {})
    tr = meta.get("training") or {}
    if "bands" not in norm and tr.get("patch_normalisation"):
        norm["bands"] = tr["patch_normalisation"]
    net.set_normalisation(norm)
    forest = None
    if forest_arrays is not None:
        forest = ArrayForest.from_tensors(forest_arrays, str(path))
        if forest.n_classes != cfg.n_classes or forest.n_features != len(cfg.indices) * cfg.n_dates:
            raise InputError(f"{path}: the forest reads {forest.n_features} features into {forest.n_classes} classes; "
                             f"the model has {len(cfg.indices)} indices x {cfg.n_dates} dates and {cfg.n_classes} classes")
    try:
        model = PimcPixelModel(net, meta, device=device, forest=forest)
    except InputError as e:  # inconsistent metadata: say which file
        raise InputError(f"{path}: {e}") from None
    model.engine = engine
    return model
