"""An optical series and a radar series of the same grid read as one: the optical bands and the
radar polarisations side by side, each on its own dates.

:func:`with_sar` checks that the radar source (``--sar S1_SOURCE``, preset ``sentinel1-grd``) is
a radar source on the optical source's grid (same CRS, transform and size; otherwise an
:class:`InputError` names both files) and returns a :class:`SarSeries`. Its dates are the union
of both sources' dates; on a date only one source has, the other's bands are missing (NaN, as
cloudy observations are), so every index is computed from its own source's valid observations
and gap-filled onto the model's date grid as usual (:mod:`pimc_core.series.pixel`). A radar
source opened alone (``pimc fit S1_SOURCE``) is an ordinary :class:`TimeSeries`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence

import numpy as np
from rasterio.windows import Window

from pimc_core.errors import InputError
from pimc_core.io.timeseries import Observations, TimeSeries

__all__ = ["SarSeries", "is_radar", "with_sar"]


def is_radar(ts: TimeSeries) -> bool:
    """True for a radar source (its radiometry has backscatter units, e.g. ``sentinel1-grd``)."""
    return getattr(ts.radiometry, "units", None) is not None


class SarSeries(TimeSeries):
    """An optical :class:`TimeSeries` and a radar one on the same grid, read as one series.

    Attributes:
        optical, sar: the two sources.
        band_names: the optical bands, then the radar polarisations (``vv``, ``vh``).
        dates: the union of both sources' dates, sorted.
    """

    def __init__(self, optical: TimeSeries, sar: TimeSeries) -> None:
        # the attributes of TimeSeries, set from the two sources (its __init__ checks one source's scenes)
        self.optical, self.sar = optical, sar
        self.scenes = tuple(sorted(optical.scenes + sar.scenes, key=lambda s: s.date))
        self.radiometry = optical.radiometry
        self.grid = optical.grid
        self.source = optical.source
        self.preset = optical.preset
        self.band_names = tuple(optical.band_names) + tuple(sar.band_names)
        self._dates = tuple(sorted(set(optical.dates) | set(sar.dates)))

    @property
    def dates(self) -> tuple[dt.date, ...]:
        """The union of the optical and radar dates, sorted."""
        return self._dates

    def __len__(self) -> int:
        return len(self._dates)

    @property
    def reading(self) -> str:
        """The optical reading, then the radar one: ``"Sentinel-2 L2A, …; radar: Sentinel-1 GRD, …"``."""
        return f"{self.optical.reading}; radar: {self.sar.reading}"

    def __repr__(self) -> str:
        return f"SarSeries({self.optical!r}, sar={self.sar!r})"

    def record(self) -> dict:
        """The optical source's record (bands of both) with the radar source's under ``"sar"``."""
        rec = self.optical.record()
        rec["bands"] = list(self.band_names)
        rec["sar"] = self.sar.record()
        return rec

    def select(self, start: dt.date | None = None, end: dt.date | None = None) -> "SarSeries":
        """Both sources restricted to dates within [start, end]."""
        return SarSeries(self.optical.select(start, end), self.sar.select(start, end))

    def files(self) -> list[Path]:
        """Every file of both sources."""
        return list(dict.fromkeys(self.optical.files() + self.sar.files()))

    def read(self, window: Window | None = None, bands: Sequence[str] | None = None) -> Observations:
        """Read a window of both sources onto the union of their dates.

        Returns:
            :class:`Observations` with reflectance (T, B, H, W) (linear σ⁰ for ``vv``, ``vh``),
            NaN where a source has no observation on a date or it is invalid, and valid (T, H, W)
            True where the observation of either source on that date is valid.
        """
        window = self._check_window(window or self.grid.full_window())
        bands = tuple(bands) if bands is not None else self.band_names
        self.require_bands(bands)
        h, w = int(window.height), int(window.width)
        index = {d: i for i, d in enumerate(self._dates)}
        refl = np.full((len(self._dates), len(bands), h, w), np.nan, np.float32)
        valid = np.zeros((len(self._dates), h, w), bool)
        for src in (self.optical, self.sar):
            mine = [b for b in bands if b in src.band_names]
            if not mine:
                continue
            obs = src.read(window, mine)
            rows = [index[d] for d in obs.dates]
            for k, b in enumerate(mine):
                refl[rows, bands.index(b)] = obs.reflectance[:, k]
            valid[rows] |= obs.valid
        return Observations(refl, valid, bands, self._dates, window)


def with_sar(optical: TimeSeries, sar: TimeSeries) -> SarSeries:
    """The optical series with the radar series beside it (:class:`SarSeries`).

    Raises:
        InputError: ``sar`` is not a radar source, ``optical`` is one, or the two are not on the
            same grid (the message names both files and what differs).
    """
    if not is_radar(sar):
        raise InputError(f"--sar {sar.source}: not a radar source ({sar.reading}); give a Sentinel-1 manifest "
                         f"(sensor: sentinel1-grd) or a folder of VV/VH rasters")
    if is_radar(optical):
        raise InputError(f"{optical.source}: is a radar source already; give the optical source first and the "
                         f"radar one with --sar (or the radar source alone)")
    diff = optical.grid.difference(sar.grid)
    if diff:
        raise InputError(f"--sar {sar.source} is not on the grid of the optical source {optical.source}: {diff}; "
                         f"the radar source must be on the same grid (resample it first)")
    return SarSeries(optical, sar)
