"""Index series of pixels: observations → vegetation indices → gap-filled series.

This is the one place where the data path (read → indices → gaps) is assembled, shared by the
CLI, the pixel inspector of the QGIS plugin, training and map inference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pimc_core.io.timeseries import Observations, TimeSeries
from pimc_core.series.gapfill import fill_gaps, resample_to_dates
from pimc_core.series.indices import compute_indices, required_bands

DEFAULT_INDICES: tuple[str, ...] = ("ndvi", "evi", "savi")


@dataclass
class IndexSeries:
    """Index series of a block of pixels.

    Attributes:
        raw: (C, T, H, W) float32 index values, NaN at invalid observations.
        filled: (C, T', H, W) float32 gap-filled (and resampled, when target dates were given)
            values; NaN for pixels flagged by ``ok``.
        ok: (H, W) bool, True where the pixel had at least ``min_valid`` valid observations.
        n_valid: (H, W) int, number of valid observations per pixel.
        index_names: the C index names.
        dates: the T observation dates. out_dates: the T' dates of ``filled``.
    """

    raw: np.ndarray
    filled: np.ndarray
    ok: np.ndarray
    n_valid: np.ndarray
    index_names: tuple[str, ...]
    dates: tuple[dt.date, ...]
    out_dates: tuple[dt.date, ...]


def index_series(
    obs: Observations,
    indices: Sequence[str] = DEFAULT_INDICES,
    *,
    min_valid: int = 3,
    target_dates: Sequence[dt.date] | None = None,
    groups: Sequence[Sequence[int]] | None = None,
) -> IndexSeries:
    """Compute indices of a window of observations and fill the gaps in time.

    Args:
        obs: observations with reflectance (T, B, H, W).
        indices: index names (see :data:`pimc_core.series.indices.INDICES`).
        min_valid: pixels with fewer valid observations are flagged (``ok`` False), not invented.
        target_dates: resample onto these dates (a model's fixed date grid) instead of keeping
            the observation dates.
        groups: positions of ``indices`` that stand or fall together, e.g. the optical and the
            radar channels of a model with a radar modality: a pixel is ``ok`` when every
            channel of at least one group has ``min_valid`` valid observations, and the channels
            of a group that has not are NaN. None: one group, every channel.

    Returns:
        :class:`IndexSeries`.
    """
    raw = compute_indices(obs.bands(), tuple(indices), invalid=~obs.valid).astype(np.float32)  # (C,T,H,W)
    series = np.moveaxis(raw, 1, -1)  # (C, H, W, T)
    if target_dates is None:
        res = fill_gaps(series, list(obs.dates), min_valid=min_valid)
        out_dates = tuple(obs.dates)
    else:
        res = resample_to_dates(series, list(obs.dates), list(target_dates), min_valid=min_valid)
        out_dates = tuple(target_dates)
    filled = np.moveaxis(res.values.astype(np.float32), -1, 1)  # (C, T', H, W)
    n_valid = res.n_valid.min(axis=0)
    ok = np.zeros(res.ok.shape[1:], bool)
    for g in groups or (range(len(indices)),):
        g_ok = res.ok[list(g)].all(axis=0)
        ok |= g_ok
        for c in g:
            filled[c, :, ~g_ok] = np.nan
    return IndexSeries(raw, filled, ok, n_valid, tuple(indices), tuple(obs.dates), out_dates)


def pixel_index_series(
    ts: TimeSeries,
    row: int,
    col: int,
    indices: Sequence[str] = DEFAULT_INDICES,
    *,
    min_valid: int = 3,
    target_dates: Sequence[dt.date] | None = None,
) -> IndexSeries:
    """Index series of one pixel (reads that pixel only). Arrays have H = W = 1."""
    needed = required_bands(tuple(indices))
    # Read only the bands the indices need; a missing one is reported by compute_indices,
    # whose message names the band and suggests an alternative index.
    obs = ts.read_pixel(row, col, bands=[b for b in ts.band_names if b in needed] or None)
    return index_series(obs, indices, min_valid=min_valid, target_dates=target_dates)
