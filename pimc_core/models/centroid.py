"""A documented baseline per-pixel model, **not PIMC**: the nearest class-mean NDVI curve.

It implements the ``PixelModel`` protocol of :mod:`pimc_core.maps.protocol` with numpy alone
(it pickles to Dask workers and needs no model file), so map tests, demos and benchmarks measure
the map engine around a trivial model (``pimc classify --model builtin:nearest-centroid``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pimc_core.errors import ConfigError
from pimc_core.io.timeseries import TimeSeries

__all__ = ["NearestCentroidModel"]


class NearestCentroidModel:
    """A documented baseline, **not PIMC**: nearest class-mean NDVI curve.

    * classes: softmax of ``-mean squared distance / temperature`` between a pixel's NDVI series
      and each class's centroid curve;
    * forecast: persistence (the last value, repeated for ``horizon`` steps of the median
      date spacing);
    * embeddings: the pixel's NDVI series standardised to mean 0, standard deviation 1.

    Centroids are either given (``centroids`` (K, T) on ``target_dates``) or computed from
    ``curves(class_id, doy)`` on the dates of the series when :meth:`prepare` binds the model to
    a source. :meth:`for_synthetic` builds it from the classes of
    :mod:`pimc_core.datasets.synthetic`. Everything is numpy: the model pickles (Dask workers).
    """

    indices: tuple[str, ...] = ("ndvi",)
    outputs: tuple[str, ...] = ("classes", "confidence", "probabilities", "forecast", "embeddings")
    forecast_index = "ndvi"
    patch_size = None
    patch_bands: tuple[str, ...] = ()

    def __init__(
        self,
        class_table: Sequence[Mapping[str, Any]],
        *,
        curves: Callable[[int, np.ndarray], np.ndarray] | None = None,
        centroids: np.ndarray | None = None,
        target_dates: Sequence[dt.date] | None = None,
        min_valid: int = 3,
        temperature: float = 0.01,
        horizon: int = 3,
    ) -> None:
        if (curves is None) == (centroids is None):
            raise ConfigError("give either class curves or centroids")
        if centroids is not None and target_dates is None:
            raise ConfigError("centroids need the target_dates they are sampled on")
        self.class_table = [dict(c) for c in class_table]
        self.n_classes = len(self.class_table)
        self.curves = curves
        self.centroids = None if centroids is None else np.asarray(centroids, np.float32)
        self.target_dates = list(target_dates) if target_dates is not None else None
        self.min_valid = int(min_valid)
        self.temperature = float(temperature)
        self.horizon = int(horizon)
        self.forecast_dates: list[dt.date] | None = None
        self.embed_dim: int | None = None
        if self.centroids is not None:
            self._bind(self.target_dates)

    @classmethod
    def for_synthetic(cls, n_classes: int | None = None, **kw) -> "NearestCentroidModel":
        """The baseline for :func:`pimc_core.datasets.synthetic.make_synthetic` data (its class curves)."""
        from pimc_core.datasets import synthetic as sample_data

        specs = sample_data.CLASSES[: n_classes or len(sample_data.CLASSES)]
        table = [{"id": c.id, "name": c.name, "color": c.color} for c in specs]
        return cls(table, curves=sample_data.class_ndvi, **kw)

    def prepare(self, source: TimeSeries) -> None:
        """Sample the class curves on the series' dates (or the target dates)."""
        dates = self.target_dates if self.target_dates is not None else list(source.dates)
        if self.curves is not None:
            doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
            self.centroids = np.stack([np.asarray(self.curves(c["id"], doy), np.float32) for c in self.class_table])
        self._bind(dates)

    def _bind(self, dates: Sequence[dt.date]) -> None:
        dates = list(dates)
        if self.centroids is None or self.centroids.shape != (self.n_classes, len(dates)):
            raise ConfigError(f"centroids must have shape ({self.n_classes}, {len(dates)})")
        step = int(np.median(np.diff([d.toordinal() for d in dates]))) if len(dates) > 1 else 1
        self.forecast_dates = [dates[-1] + dt.timedelta(days=step * (i + 1)) for i in range(self.horizon)]
        self.embed_dim = len(dates)

    def predict(self, filled: np.ndarray, patches: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """(N, C, T) series (NDVI first) → ``probabilities`` (N, K), ``forecast`` (N, horizon),
        ``embeddings`` (N, T); ``patches`` are ignored."""
        x = np.asarray(filled, np.float32)[:, 0, :]  # (N, T) NDVI
        d2 = ((x[:, None, :] - self.centroids[None]) ** 2).mean(axis=-1)  # (N, K)
        logits = -d2 / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        sd = x.std(axis=1, keepdims=True)
        emb = (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 1e-6, sd, 1.0)
        return {
            "probabilities": p.astype(np.float32),
            "forecast": np.repeat(x[:, -1:], self.horizon, axis=1),
            "embeddings": emb.astype(np.float32),
        }
