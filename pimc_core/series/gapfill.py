"""Gap filling and temporal resampling of per-pixel time series.

Series run along the LAST axis: an array of shape ``(..., T)`` (e.g. ``(H, W, T)`` or
``(N, T)``) holds one series per leading index. Invalid observations (cloud, shadow, no data)
are NaN (±inf is treated as invalid too). Dates are :class:`datetime.date` objects, one per
time step, strictly increasing.

* :func:`fill_gaps` replaces invalid observations by linear interpolation in time between the
  neighbouring valid ones (by actual date when dates are given, so irregular spacing is
  respected), and by the nearest valid value before the first / after the last valid one.
* :func:`resample_to_dates` interpolates the valid observations onto other dates (e.g. a
  regular :func:`date_grid`), so that stacks acquired on different dates meet a model's fixed T.

Neither ever extrapolates a trend, and neither invents a series: a series with fewer than
``min_valid`` valid observations comes out all-NaN with ``ok = False``.

Both are vectorised (numpy index tricks, processed in blocks of rows to bound memory): a
``(1024 * 1024, 36)`` stack is filled in a few seconds.
"""

from __future__ import annotations

import datetime as _dt
import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError

__all__ = ["GapFillResult", "date_grid", "fill_gaps", "grid_dates", "resample_to_dates"]

# Elements (rows × time steps) processed per block; bounds the temporaries to a few 100 MB.
_BLOCK_ELEMENTS = 1 << 20


@dataclass
class GapFillResult:
    """Outcome of :func:`fill_gaps` or :func:`resample_to_dates`.

    Attributes:
        values: Filled / resampled series, shape ``(..., T_out)``, float32. All-NaN for series
            with ``ok == False``.
        n_valid: Number of valid observations in each input series, shape ``(...)``, int64.
        ok: ``n_valid >= min_valid``, shape ``(...)``, bool.
    """

    values: np.ndarray
    n_valid: np.ndarray
    ok: np.ndarray


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _to_date(value: Any, what: str, position: int | None = None) -> _dt.date:
    where = f" at position {position}" if position is not None else ""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, np.datetime64):
        day = value.astype("datetime64[D]").item()
        if isinstance(day, _dt.date):
            return day
    raise InputError(f"{what} must be datetime.date objects; got {value!r} ({type(value).__name__}){where}")


def _day_numbers(dates: Sequence[Any], what: str) -> np.ndarray:
    """Dates → int64 day numbers (proleptic ordinals), checked strictly increasing."""
    if isinstance(dates, (str, bytes)) or not hasattr(dates, "__len__"):
        raise InputError(f"{what} must be a sequence of datetime.date objects; got {type(dates).__name__}")
    days = np.array([_to_date(d, what, i).toordinal() for i, d in enumerate(dates)], dtype=np.int64)
    if days.size > 1:
        step = np.diff(days)
        bad = np.flatnonzero(step <= 0)
        if bad.size:
            i = int(bad[0])
            a, b = _dt.date.fromordinal(int(days[i])), _dt.date.fromordinal(int(days[i + 1]))
            kind = "duplicate" if a == b else "unsorted"
            raise InputError(
                f"{what} must be strictly increasing; {kind} dates at positions {i} and {i + 1} "
                f"({a.isoformat()}, {b.isoformat()})"
            )
    return days


def _check_min_valid(min_valid: Any) -> int:
    if isinstance(min_valid, bool) or not isinstance(min_valid, (int, np.integer)) or min_valid < 1:
        raise ConfigError(f"min_valid must be an integer >= 1; got {min_valid!r}")
    return int(min_valid)


def _as_series(series: Any) -> np.ndarray:
    arr = np.asarray(series)
    if arr.ndim == 0:
        raise InputError("series must have a time axis (last axis); got a scalar")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"series must be numeric; got dtype {arr.dtype}")
    if arr.shape[-1] == 0:
        raise InputError(f"series has no time steps (shape {arr.shape})")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    return arr


# --------------------------------------------------------------------------------------------
# core
# --------------------------------------------------------------------------------------------


def _interpolate(data: np.ndarray, x: np.ndarray, u: np.ndarray, min_valid: int) -> GapFillResult:
    """Interpolate each series' valid observations at positions ``u``.

    Args:
        data: ``(..., T)`` float32/float64, NaN/inf = invalid.
        x: ``(T,)`` float64 strictly increasing positions of the observations.
        u: ``(U,)`` float64 target positions.
        min_valid: Minimum number of valid observations for a series to be filled.

    Returns:
        GapFillResult with values ``(..., U)``.
    """
    lead = data.shape[:-1]
    T = data.shape[-1]
    U = u.shape[0]
    flat = data.reshape(-1, T)
    P = flat.shape[0]

    values = np.empty((P, U), dtype=np.float32)
    n_valid = np.empty(P, dtype=np.int64)

    # For target j: kl = last observation at or before u[j] (-1 if none), kr = kl + 1.
    kl = np.searchsorted(x, u, side="right") - 1
    kr = kl + 1
    kl_c = np.clip(kl, 0, T - 1)
    kr_c = np.clip(kr, 0, T - 1)
    before_all = kl < 0  # targets before the first observation date
    after_all = kr >= T  # targets after the last observation date
    identity = U == T and bool(np.all(kl == np.arange(T)))

    itype = np.int16 if T < np.iinfo(np.int16).max else np.int32
    steps = np.arange(T, dtype=itype)
    rows = max(1, _BLOCK_ELEMENTS // max(T, U))

    for start in range(0, P, rows):
        blk = flat[start : start + rows]
        n = blk.shape[0]
        valid = np.isfinite(blk)
        nv = np.count_nonzero(valid, axis=1)
        n_valid[start : start + n] = nv
        out = values[start : start + n]

        if identity and valid.all():  # common fast path: nothing to fill
            out[...] = blk
            out[nv < min_valid] = np.nan
            continue

        # prev_at[:, t]: last valid index <= t (-1 if none); next_at[:, t]: first valid >= t (T if none).
        prev_at = np.where(valid, steps, itype(-1))
        np.maximum.accumulate(prev_at, axis=1, out=prev_at)
        next_at = np.where(valid, steps, itype(T))[:, ::-1]
        next_at = np.minimum.accumulate(next_at, axis=1)[:, ::-1]

        if identity:
            prev = prev_at
            nxt = np.empty_like(next_at)
            nxt[:, :-1] = next_at[:, 1:]
            nxt[:, -1] = T
        else:
            prev = prev_at[:, kl_c]
            nxt = next_at[:, kr_c]
            prev[:, before_all] = -1
            nxt[:, after_all] = T

        # Nearest valid value at the ends: no previous → use next; no next → use previous.
        no_prev = prev < 0
        prev[no_prev] = nxt[no_prev]
        no_next = nxt >= T
        nxt[no_next] = prev[no_next]
        # Series without any valid observation now index T; clamp (they are blanked below).
        np.clip(prev, 0, T - 1, out=prev)
        np.clip(nxt, 0, T - 1, out=nxt)

        xp = x[prev]
        den = x[nxt] - xp
        num = u - xp
        w = np.zeros_like(den)
        np.divide(num, den, out=w, where=den > 0)

        vp = np.take_along_axis(blk, prev.astype(np.intp), axis=1)
        vn = np.take_along_axis(blk, nxt.astype(np.intp), axis=1)
        res = vn - vp
        res *= w
        res += vp
        out[...] = res
        out[nv < min_valid] = np.nan

    return GapFillResult(
        values=values.reshape(lead + (U,)),
        n_valid=n_valid.reshape(lead),
        ok=(n_valid >= min_valid).reshape(lead),
    )


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def fill_gaps(series: Any, dates: Sequence[_dt.date] | None = None, *, min_valid: int = 3) -> GapFillResult:
    """Fill invalid observations by linear interpolation in time.

    Each invalid (NaN) observation is replaced by linear interpolation between the nearest
    valid observations before and after it, weighted by date (when ``dates`` are given) or by
    position ``0..T-1`` (otherwise). Before the first / after the last valid observation the
    nearest valid value is repeated (no extrapolation). Valid observations are kept as they are.

    Args:
        series: Array of shape ``(..., T)``, time along the last axis; float32/float64 with NaN
            marking invalid observations (integer arrays are accepted and have no gaps).
        dates: Optional ``T`` strictly increasing :class:`datetime.date` objects, the
            acquisition date of each time step.
        min_valid: Minimum number of valid observations a series needs to be filled; series
            with fewer are left all-NaN and flagged ``ok = False``.

    Returns:
        GapFillResult with ``values`` ``(..., T)`` float32, ``n_valid`` ``(...)`` int64 and
        ``ok`` ``(...)`` bool.

    Raises:
        InputError: ``dates`` are not dates, are unsorted or duplicated, or their number differs
            from the series length T.
        ConfigError: ``min_valid`` is not an integer >= 1.
    """
    min_valid = _check_min_valid(min_valid)
    data = _as_series(series)
    T = data.shape[-1]
    if dates is None:
        x = np.arange(T, dtype=np.float64)
    else:
        days = _day_numbers(dates, "dates")
        if days.size != T:
            raise InputError(
                f"series has {T} time steps (last axis of shape {data.shape}) but {days.size} dates were given"
            )
        x = (days - days[0]).astype(np.float64)
    return _interpolate(data, x, x, min_valid)


def date_grid(start: _dt.date | str, end: _dt.date | str, step_days: int) -> list[_dt.date]:
    """Regular dates from ``start`` to ``end`` (inclusive when it falls on the grid).

    Args:
        start: First date (a :class:`datetime.date` or an ISO ``"YYYY-MM-DD"`` string).
        end: Last allowed date, ``>= start``.
        step_days: Spacing in days, an integer >= 1.

    Returns:
        ``[start, start + step_days, ...]`` up to ``end``; at least ``[start]``.

    Raises:
        ConfigError: Bad dates, ``end < start`` or ``step_days < 1``.
    """

    def parse(value: Any, name: str) -> _dt.date:
        if isinstance(value, str):
            try:
                return _dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ConfigError(f"{name} must be a date as YYYY-MM-DD; got {value!r}") from None
        try:
            return _to_date(value, name)
        except InputError as exc:
            raise ConfigError(str(exc)) from None

    s, e = parse(start, "start"), parse(end, "end")
    if isinstance(step_days, bool) or not isinstance(step_days, (int, np.integer)) or step_days < 1:
        raise ConfigError(f"step_days must be an integer >= 1; got {step_days!r}")
    if e < s:
        raise ConfigError(f"end ({e.isoformat()}) is before start ({s.isoformat()})")
    n = (e - s).days // int(step_days) + 1
    step = _dt.timedelta(days=int(step_days))
    return [s + i * step for i in range(n)]


def resample_to_dates(
    series: Any,
    dates: Sequence[_dt.date],
    target_dates: Sequence[_dt.date],
    *,
    min_valid: int = 3,
) -> GapFillResult:
    """Interpolate each series' valid observations onto other dates.

    For each target date the value is interpolated linearly between the valid observations
    just before and just after it (by date); target dates before the first / after the last
    valid observation get that observation's value (nearest; trends are never extrapolated).
    A target date equal to the date of a valid observation gets exactly that observation.

    Args:
        series: Array of shape ``(..., T)``, time along the last axis; NaN marks invalid
            observations.
        dates: ``T`` strictly increasing acquisition dates (:class:`datetime.date`).
        target_dates: ``T'`` strictly increasing output dates, e.g. from :func:`date_grid`.
        min_valid: Minimum number of valid observations a series needs; series with fewer are
            all-NaN and flagged ``ok = False``.

    Returns:
        GapFillResult with ``values`` ``(..., T')`` float32, ``n_valid`` ``(...)`` int64 (valid
        observations in the input series) and ``ok`` ``(...)`` bool.

    Raises:
        InputError: Dates are not dates, unsorted or duplicated, ``target_dates`` is empty, or
            the number of ``dates`` differs from the series length T.
        ConfigError: ``min_valid`` is not an integer >= 1.
    """
    min_valid = _check_min_valid(min_valid)
    data = _as_series(series)
    T = data.shape[-1]
    days = _day_numbers(dates, "dates")
    if days.size != T:
        raise InputError(
            f"series has {T} time steps (last axis of shape {data.shape}) but {days.size} dates were given"
        )
    target = _day_numbers(target_dates, "target_dates")
    if target.size == 0:
        raise InputError("target_dates is empty")
    origin = days[0]
    return _interpolate(data, (days - origin).astype(np.float64), (target - origin).astype(np.float64), min_valid)


def grid_dates(first_date: dt.date, n_dates: int, step_days: int, start_doy: int = 1) -> list[dt.date]:
    """The fixed date grid of a model for a season starting in ``first_date``'s year.

    ``n_dates`` dates every ``step_days`` days from day-of-year ``start_doy`` (1-366) of the
    year of ``first_date`` (the model-file schema's ``dates: {"mode": "grid"}``): the
    :func:`date_grid` from that day to the ``n_dates``-th step.

    Raises:
        ConfigError: a non-positive size or step, or ``start_doy`` outside 1..366.
    """
    for name, v, lo, hi in (("n_dates", n_dates, 1, None), ("step_days", step_days, 1, None),
                            ("start_doy", start_doy, 1, 366)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi and v > hi):
            raise ConfigError(f"date grid: {name} must be an integer >= {lo}{f' and <= {hi}' if hi else ''}; got {v!r}")
    start = dt.date(first_date.year, 1, 1) + dt.timedelta(days=int(start_doy) - 1)
    return date_grid(start, start + dt.timedelta(days=int(step_days) * (int(n_dates) - 1)), int(step_days))
