"""Radar backscatter units: the one place where σ⁰ in dB becomes linear σ⁰ (and back), and where
invalid backscatter (nodata, border noise) is told apart.

A radar source (preset ``sentinel1-grd``) stores σ⁰ either in linear power units or in dB
(``units: linear|db`` in its manifest). Reading always yields linear σ⁰
(:meth:`pimc_core.io.timeseries.TimeSeries.read`); derived series (dB, ratios, the radar
vegetation index, :mod:`pimc_core.series.radar`) start from linear values. An observation is
invalid where its linear σ⁰ is ≤ 0, not finite, or below the σ⁰ floor (about −30 dB for
Sentinel-1 IW: the noise-equivalent σ⁰, reached at the swath borders and over no-data fill).
"""

from __future__ import annotations

import numpy as np

from pimc_core.errors import ConfigError

__all__ = ["UNITS", "backscatter_valid", "check_units", "db_to_linear", "linear_to_db", "to_linear"]

#: The units a radar source may store backscatter in.
UNITS: tuple[str, ...] = ("linear", "db")


def check_units(value: object, where: str) -> str:
    """``value`` as one of :data:`UNITS` (lower-cased); ConfigError ``"{where} must be one of …"`` otherwise."""
    low = str(value).strip().lower() if isinstance(value, str) else None
    if low not in UNITS:
        raise ConfigError(f"{where} must be one of {', '.join(UNITS)} (got {value!r})")
    return low


def db_to_linear(db: np.ndarray) -> np.ndarray:
    """σ⁰ in dB → linear σ⁰, ``10 ** (dB / 10)``; any shape, floating dtype kept."""
    db = np.asarray(db)
    return np.power(db.dtype.type(10.0) if db.dtype.kind == "f" else 10.0, db / 10.0)


def linear_to_db(linear: np.ndarray) -> np.ndarray:
    """Linear σ⁰ → dB, ``10 · log10(σ⁰)``; NaN where σ⁰ ≤ 0 or NaN. Any shape, floating dtype kept."""
    linear = np.asarray(linear)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(np.where(linear > 0, linear, np.nan))
    return out.astype(linear.dtype, copy=False) if linear.dtype.kind == "f" else out


def to_linear(values: np.ndarray, units: str) -> np.ndarray:
    """Stored backscatter ``values`` (any shape) in ``units`` as linear σ⁰ (same shape)."""
    return db_to_linear(values) if units == "db" else np.asarray(values)


def backscatter_valid(linear: np.ndarray, floor_db: float | None) -> np.ndarray:
    """Boolean array, True where linear σ⁰ is finite, > 0 and at or above ``floor_db`` (dB).

    Args:
        linear: linear σ⁰, any shape.
        floor_db: the σ⁰ floor in dB (None: only ≤ 0 and non-finite values are invalid).
    """
    linear = np.asarray(linear)
    ok = np.isfinite(linear) & (linear > 0)
    if floor_db is not None:
        floor = 10.0 ** (floor_db / 10.0)
        ok &= linear >= (linear.dtype.type(floor) if linear.dtype.kind == "f" else floor)
    return ok
