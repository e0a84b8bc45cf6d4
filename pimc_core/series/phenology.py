"""Phenology metrics of index series, TIMESAT-style: start, peak and end of the growing season,
peak value, amplitude, length and the integrated index, one season per series.

Each series is the gap-filled index on a regular date grid (``x`` in days); it is smoothed with a
Savitzky-Golay filter (:func:`scipy.signal.savgol_filter`, ``window_days`` wide, polynomial
``order``), then, as in TIMESAT (Jönsson & Eklundh 2004):

* the peak is the maximum of the smoothed series; the left base is its minimum before the peak,
  the right base its minimum after it; the amplitude is the peak minus the mean of both bases;
* the start of season is where the curve, rising from the left base to the peak, first reaches
  ``left base + fraction × (peak − left base)``; the end of season is where, falling from the
  peak to the right base, it last is at ``right base + fraction × (peak − right base)``
  (``fraction`` 0.2, TIMESAT's usual setting); both are interpolated linearly between grid days;
* the length is end − start; the integral is the sum over the season (start..end) of the
  smoothed index above the base level (the mean of both bases), in index × days (trapezoids on
  the grid).

A series has no season (every metric NaN) when its amplitude is below ``min_amplitude`` or
below ``min_snr`` times the standard deviation of the series about its smoothed curve (the
noise: a flat, noisy series of bare soil or water otherwise shows a small spurious season).
Everything is vectorised numpy over pixels: (N, T) in, a dict of (N,) arrays out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from pimc_core.config import NON_NEGATIVE, POSITIVE_INT, Checked, Integral, Interval, Real, declared, param
from pimc_core.errors import ConfigError

__all__ = ["METRICS", "METRIC_LABELS", "PhenologyParams", "day_numbers", "phenology_metrics", "series_season",
           "smooth_series"]

#: The metrics, in band order of the phenology map.
METRICS: tuple[str, ...] = ("sos", "pos", "eos", "peak", "amplitude", "length", "integral")
#: What each metric is (band descriptions; ``{day}`` is replaced by what the day counts).
METRIC_LABELS: dict[str, str] = {
    "sos": "start of season ({day})",
    "pos": "peak of season ({day})",
    "eos": "end of season ({day})",
    "peak": "peak value (smoothed {index})",
    "amplitude": "seasonal amplitude (peak - mean of the left and right base, {index})",
    "length": "length of season (days, end - start)",
    "integral": "integrated {index} above the base over the season ({index} x days)",
}


@declared
@dataclass
class PhenologyParams(Checked):
    """How the phenology metrics are computed.

    Attributes:
        step_days: spacing of the regular date grid the series is resampled onto (days).
        window_days: width of the Savitzky-Golay window (days; rounded to an odd number of grid
            steps, at least ``order + 2``).
        order: polynomial order of the Savitzky-Golay filter.
        fraction: start and end thresholds as a fraction of the left / right amplitude (0.2).
        min_amplitude: a smaller amplitude (index units) means no season: NaN metrics.
        min_snr: an amplitude below this many standard deviations of the series about its
            smoothed curve means no season (0: off).
        min_valid: pixels with fewer valid observations are nodata.
    """

    step_days: int = param(5, Interval(Integral, 1, 60, closed="both"))
    window_days: int = param(60, Interval(Integral, 1, 365, closed="both"))
    order: int = param(3, Interval(Integral, 1, 5, closed="both"))
    fraction: float = param(0.2, Interval(Real, 0, 1, closed="neither"))
    min_amplitude: float = param(0.1, NON_NEGATIVE)
    min_snr: float = param(10.0, NON_NEGATIVE)
    min_valid: int = param(5, POSITIVE_INT)

    _config_name: ClassVar[str] = "phenology"

    def window_length(self, n_dates: int) -> int:
        """The Savitzky-Golay window in grid steps for a series of ``n_dates`` grid dates: odd,
        > ``order``, at most ``n_dates`` (ConfigError when the series is too short for it)."""
        w = max(self.order + 2, int(round(self.window_days / self.step_days)))
        w += 1 - w % 2
        if n_dates < self.order + 2:
            raise ConfigError(f"phenology: {n_dates} grid dates are too few for a Savitzky-Golay filter of order "
                              f"{self.order} (at least {self.order + 2})")
        if w > n_dates:
            w = n_dates - (1 - n_dates % 2)
        return w


def smooth_series(y: np.ndarray, params: PhenologyParams) -> np.ndarray:
    """(N, T) series on a regular grid → (N, T) float64 Savitzky-Golay smoothed series."""
    from scipy.signal import savgol_filter

    y = np.asarray(y, np.float64)
    w = params.window_length(y.shape[1])
    if w <= params.order:
        return y.copy()
    return savgol_filter(y, w, params.order, axis=1, mode="interp")


_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it


def _crossing(x: np.ndarray, y: np.ndarray, i0: np.ndarray, i1: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Days where the line from ``(x[i0], y[n, i0])`` to ``(x[i1], y[n, i1])`` reaches ``thr``."""
    n = np.arange(y.shape[0])
    y0, y1 = y[n, i0], y[n, i1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(y1 != y0, (thr - y0) / (y1 - y0), 0.0)
    return x[i0] + np.clip(f, 0.0, 1.0) * (x[i1] - x[i0])


def phenology_metrics(y: np.ndarray, x: np.ndarray, params: PhenologyParams | None = None) -> dict[str, np.ndarray]:
    """The phenology metrics of many series.

    Args:
        y: (N, T) gap-filled index series (no NaN) on the regular grid ``x``.
        x: (T,) increasing days of the grid dates (the days the time metrics are counted in).
        params: :class:`PhenologyParams` (default: the defaults).

    Returns:
        ``{metric: (N,) float32}`` for every name of :data:`METRICS` (``sos``, ``pos``, ``eos``
        in the days of ``x``); NaN where the series has no season (``min_amplitude``,
        ``min_snr``) or holds a NaN.
    """
    params = params if params is not None else PhenologyParams()
    y = np.asarray(y, np.float64)
    x = np.asarray(x, np.float64)
    if y.ndim != 2 or x.shape != (y.shape[1],):
        raise ConfigError(f"phenology: series of shape {y.shape} do not match {x.shape[0]} grid days")
    n, t = y.shape
    if n == 0:
        return {m: np.empty(0, np.float32) for m in METRICS}
    bad = ~np.isfinite(y).all(axis=1)
    s = smooth_series(np.where(bad[:, None], 0.0, y), params)
    rows, idx = np.arange(n), np.arange(t)[None, :]
    p = np.argmax(s, axis=1)
    peak = s[rows, p]
    before, after = idx <= p[:, None], idx >= p[:, None]
    i_lmin = np.argmin(np.where(before, s, np.inf), axis=1)
    i_rmin = t - 1 - np.argmin(np.where(after, s, np.inf)[:, ::-1], axis=1)
    lmin, rmin = s[rows, i_lmin], s[rows, i_rmin]
    base = 0.5 * (lmin + rmin)
    amplitude = peak - base
    thr_l = lmin + params.fraction * (peak - lmin)
    thr_r = rmin + params.fraction * (peak - rmin)
    # start: the first grid day from the left base to the peak at or above its threshold
    up = (idx >= i_lmin[:, None]) & before & (s >= thr_l[:, None])
    i_s = np.argmax(up, axis=1)
    sos = _crossing(x, s, np.maximum(i_s - 1, i_lmin), i_s, thr_l)
    # end: the last grid day from the peak to the right base at or above its threshold
    down = after & (idx <= i_rmin[:, None]) & (s >= thr_r[:, None])
    i_e = t - 1 - np.argmax(down[:, ::-1], axis=1)
    eos = _crossing(x, s, i_e, np.minimum(i_e + 1, i_rmin), thr_r)
    inside = (x[None, :] >= sos[:, None]) & (x[None, :] <= eos[:, None])
    above = np.where(inside, np.maximum(s - base[:, None], 0.0), 0.0)
    integral = _trapezoid(above, x, axis=1)
    out = {"sos": sos, "pos": x[p], "eos": eos, "peak": peak, "amplitude": amplitude, "length": eos - sos,
           "integral": integral}
    noise = np.sqrt(np.mean((np.where(bad[:, None], 0.0, y) - s) ** 2, axis=1))
    none = bad | ~(amplitude >= max(params.min_amplitude, 1e-12)) | ~(amplitude >= params.min_snr * noise)
    return {m: np.where(none, np.nan, out[m]).astype(np.float32) for m in METRICS}


def day_numbers(dates: Sequence[dt.date], year: int) -> np.ndarray:
    """(T,) float64 day of year of ``year`` of each date (1 = 1 January; beyond 365 in the next year)."""
    jan1 = dt.date(int(year), 1, 1).toordinal()
    return np.array([d.toordinal() - jan1 + 1 for d in dates], np.float64)


def series_season(raw: np.ndarray, dates: Sequence[dt.date],
                  params: PhenologyParams | None = None) -> dict[str, np.ndarray]:
    """The metrics of series with gaps at their observation dates, as the phenology map computes
    them: resampled onto the regular grid of ``params.step_days`` from the first to the last date
    (linear between valid observations), then :func:`phenology_metrics`.

    Args:
        raw: (N, T) index values, NaN at invalid observations.
        dates: the T observation dates.

    Returns:
        ``{metric: (N,) float32}``, days of year of the first date's year; NaN for series with
        fewer than ``params.min_valid`` valid observations or no season.
    """
    from pimc_core.series.gapfill import date_grid, resample_to_dates

    params = params if params is not None else PhenologyParams()
    dates = list(dates)
    grid = date_grid(dates[0], dates[-1], params.step_days)
    res = resample_to_dates(np.asarray(raw, np.float64), dates, grid, min_valid=params.min_valid)
    values = np.where(res.ok[:, None], res.values, np.nan)
    return phenology_metrics(values, day_numbers(grid, dates[0].year), params)
