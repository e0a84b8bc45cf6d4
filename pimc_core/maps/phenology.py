"""The phenology map: the TIMESAT-style metrics of :mod:`pimc_core.series.phenology` computed for
every pixel of a region, written as one multi-band Cloud-Optimised GeoTIFF with a QGIS style.

It runs through the map machinery of every other map (:class:`~pimc_core.maps.run.MapRun`:
windows, Dask, cancel, progress, staged writing) with :class:`PhenologyModel`, a
:class:`~pimc_core.maps.protocol.PixelModel` whose "embeddings" are the seven metrics, and
:class:`PhenologyJob`, which writes them as the bands of ``phenology.tif``:

====  ==============================================================================
band  metric (float32, NaN = nodata: too few valid observations, or no season)
====  ==============================================================================
1     start of season, day of year of the first date's year (1 = 1 January)
2     peak of season, same days
3     end of season, same days
4     peak value (smoothed index)
5     amplitude (peak - mean of the left and right base)
6     length of season (days)
7     integrated index above the base over the season (index x days)
====  ==============================================================================

The series is the index resampled onto a regular grid of ``step_days`` from the first to the
last date (gap filling by linear interpolation between valid observations), one season over the
whole stack. ``phenology.qml`` shows band 1 (start of season) on a ramp over the stack's days.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from pimc_core.errors import ConfigError
from pimc_core.io.regions import Region
from pimc_core.io.timeseries import TimeSeries
from pimc_core.maps.jobs import Job
from pimc_core.maps.products import Product
from pimc_core.maps.run import InferenceResult, MapRun
from pimc_core.series.phenology import METRIC_LABELS, METRICS, PhenologyParams, day_numbers, phenology_metrics

__all__ = ["PhenologyJob", "PhenologyModel", "phenology_map", "phenology_product"]


class PhenologyModel:
    """A :class:`~pimc_core.maps.protocol.PixelModel` whose ``embeddings`` (N, 7) are the
    phenology metrics of :data:`~pimc_core.series.phenology.METRICS` of one index (numpy only:
    it pickles to Dask workers)."""

    outputs: tuple[str, ...] = ("embeddings",)
    n_classes = 0
    class_table: tuple = ()
    forecast_dates = None
    patch_size = None
    patch_bands: tuple[str, ...] = ()
    embed_dim = len(METRICS)

    def __init__(self, index: str = "ndvi", params: PhenologyParams | None = None) -> None:
        from pimc_core.series.indices import INDICES

        index = str(index).strip().lower()
        if index not in INDICES:
            raise ConfigError(f"--index: unknown index '{index}' (known: {', '.join(INDICES)})")
        self.indices = (index,)
        self.params = params if params is not None else PhenologyParams()
        self.min_valid = int(self.params.min_valid)
        self.target_dates: list[dt.date] | None = None
        self.year = 0
        self.days = np.empty(0)

    def prepare(self, source: TimeSeries) -> None:
        """The regular date grid from the first to the last date of ``source``.

        Raises:
            ConfigError: fewer dates than ``min_valid``, or too few grid dates for the filter.
        """
        from pimc_core.series.gapfill import date_grid

        dates = list(source.dates)
        if len(dates) < self.min_valid:
            raise ConfigError(f"{source.source}: {len(dates)} dates are too few for phenology metrics "
                              f"(at least min_valid = {self.min_valid})")
        self.target_dates = date_grid(dates[0], dates[-1], self.params.step_days)
        self.params.window_length(len(self.target_dates))  # too short a span fails here
        self.year = dates[0].year
        self.days = day_numbers(self.target_dates, self.year)

    def predict(self, filled: np.ndarray, patches: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """(N, 1, T) series on the grid → ``embeddings`` (N, 7) float32 metrics (NaN: no season)."""
        m = phenology_metrics(np.asarray(filled)[:, 0, :], self.days, self.params)
        return {"embeddings": np.stack([m[k] for k in METRICS], axis=1)}


@dataclass
class PhenologyJob(Job):
    """Write the metrics of each pixel as the bands of ``phenology``."""

    needs: tuple[str, ...] = ("embeddings",)

    def start(self, win, info):
        return {"phenology": np.full((len(METRICS), int(win.height), int(win.width)), np.nan, np.float32)}

    def add(self, arrays, block, sl, out, info) -> None:
        arrays["phenology"][:, block.rows[sl], block.cols[sl]] = out["embeddings"].T


def phenology_product(source: TimeSeries, model: PhenologyModel) -> Product:
    """``phenology.tif``: float32, one band per metric (NaN = nodata), with band descriptions,
    tags naming the index, the day convention and the parameters, and ``phenology.qml``."""
    from pimc_core.maps.styling import ramp_qml

    index = model.indices[0].upper()
    day = f"day of year {model.year}, 1 = {model.year}-01-01"
    desc = tuple(METRIC_LABELS[m].format(day=day, index=index) for m in METRICS)
    p = model.params
    tags = {"pimc_source": str(source.source), "pimc_product": "phenology", "pimc_indices": model.indices[0],
            "pimc_day_origin": f"{model.year}-01-01", "pimc_metrics": ",".join(METRICS),
            "pimc_phenology": (f"savgol window {p.window_days} d order {p.order} on a {p.step_days}-day grid; "
                               f"thresholds {p.fraction:g} of the amplitude; min amplitude {p.min_amplitude:g}, "
                               f"min amplitude / noise {p.min_snr:g}")}
    lo, hi = float(model.days[0]), float(model.days[-1])
    labels = tuple(f"day {lo + (hi - lo) * i / 4:.0f}" for i in range(5))
    return Product("phenology", "float32", len(METRICS), math.nan, desc, tags,
                   {i + 1: {"metric": m} for i, m in enumerate(METRICS)},
                   qml=ramp_qml(lo, max(hi, lo + 1), labels=labels))


def phenology_map(source: TimeSeries, region: Region | None, out_dir: str | os.PathLike, *, index: str = "ndvi",
                  params: PhenologyParams | None = None, **options: Any) -> InferenceResult:
    """Phenology metrics of every pixel of a region → ``phenology.tif`` + ``phenology.qml``.

    Args:
        source: the time series (:func:`pimc_core.io.timeseries.open_series`).
        region: where to compute; None: the whole raster.
        out_dir: output folder (created if missing).
        index: the index the metrics are of (a name of :data:`pimc_core.series.indices.INDICES`).
        params: :class:`~pimc_core.series.phenology.PhenologyParams`.
        **options: :class:`~pimc_core.maps.run.RunOptions` (``batch_size``, ``block``,
            ``progress``, ``cancel``, ``executor``).

    Raises:
        ConfigError: unknown index, too few dates. BandError: a band the index needs is missing.
        InputError: unreadable data, an unusable output folder, no pixel with enough valid
        observations. Cancelled: cancelled (no file left).
    """
    model = PhenologyModel(index, params)
    run = MapRun(source, model, region, out_dir, options)
    files = run.write_all([phenology_product(source, run.model)], PhenologyJob())
    return run.result(files)
