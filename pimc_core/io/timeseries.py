"""A raster time series: its dates on one grid, read window by window as reflectance with an
invalid-observation mask.

:func:`open_series` opens one of three layouts (:mod:`pimc_core.io.layouts`): a manifest YAML
(:mod:`pimc_core.io.manifest`), a folder of per-date multi-band rasters with the date in each
file name, or a folder holding one sub-folder per date with one file per band (the layout of
Landsat and Sentinel-2 products). All dates must share CRS, transform and shape; otherwise
:class:`InputError` names the first offending file and what differs. Reading is windowed:
nothing reads a whole stack at once (:meth:`TimeSeries.read`, :class:`Observations`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.io.backscatter import backscatter_valid, check_units, to_linear
from pimc_core.io.grid import Grid, crs_name
from pimc_core.io.input_files import FILE, FOLDER, MISSING, local_path, path_kind
from pimc_core.io.layouts import from_date_folders, from_manifest, from_multiband_folder, list_source_folder
from pimc_core.io.manifest import load_manifest
from pimc_core.io.scenes import Radiometry, Scene, describe_reading
from pimc_core.io.sensors import QualityRule, get_preset

__all__ = ["Observations", "TimeSeries", "open_series"]


@dataclass
class Observations:
    """A window of a time series.

    Attributes:
        reflectance: (T, B, H, W) float32 reflectance (linear σ⁰ for the radar bands ``vv``,
            ``vh``), NaN where the observation is invalid.
        valid: (T, H, W) bool, True where every band is present and the quality band says clear.
        band_names: the B band names, canonical.
        dates: the T dates.
        window: the window of the grid that was read.
    """

    reflectance: np.ndarray
    valid: np.ndarray
    band_names: tuple[str, ...]
    dates: tuple[dt.date, ...]
    window: Window

    def band(self, name: str) -> np.ndarray:
        """(T, H, W) reflectance of one band."""
        try:
            return self.reflectance[:, self.band_names.index(name)]
        except ValueError:
            raise BandError(
                f"band '{name}' is not in this data (available: {', '.join(self.band_names)})"
            ) from None

    def bands(self) -> dict[str, np.ndarray]:
        """Band name → (T, H, W) reflectance."""
        return {b: self.reflectance[:, i] for i, b in enumerate(self.band_names)}


class TimeSeries:
    """A raster time series on one grid.

    Use :func:`open_series` to build one. Instances hold no open file handles between calls,
    so they pickle (Dask workers) and never leak descriptors.
    """

    def __init__(
        self,
        scenes: Sequence[Scene],
        radiometry: Radiometry,
        grid: Grid,
        source: str,
        preset: str | None = None,
    ) -> None:
        if not scenes:
            raise InputError(f"{source}: no dated rasters found")
        self.scenes: tuple[Scene, ...] = tuple(sorted(scenes, key=lambda s: s.date))
        for a, b in zip(self.scenes, self.scenes[1:]):
            if a.date == b.date:
                raise InputError(
                    f"{source}: two rasters for {a.date}: {_first_path(a)} and {_first_path(b)}"
                )
        self.radiometry = radiometry
        self.grid = grid
        self.source = source
        self.preset = preset
        names = [tuple(s.bands) for s in self.scenes]
        common = [b for b in names[0] if all(b in n for n in names)]
        self.band_names: tuple[str, ...] = tuple(common)
        for s in self.scenes:
            missing = [b for b in self.band_names if b not in s.bands]
            if missing:
                raise BandError(f"{_first_path(s)}: band(s) {missing} missing on {s.date}")

    @property
    def dates(self) -> tuple[dt.date, ...]:
        """Acquisition dates, sorted."""
        return tuple(s.date for s in self.scenes)

    def __len__(self) -> int:
        return len(self.scenes)

    @property
    def reading(self) -> str:
        """What reading this series assumes: ``"Sentinel-2 L2A, DN × 0.0001, SCL mask"``."""
        return describe_reading(self.preset, self.radiometry, any(s.mask is not None for s in self.scenes))

    def __repr__(self) -> str:
        return (
            f"TimeSeries({self.source!r}, {len(self)} dates {self.dates[0]}..{self.dates[-1]}, "
            f"bands {list(self.band_names)}, {self.grid.height}x{self.grid.width}, {crs_name(self.grid.crs)})"
        )

    def record(self) -> dict:
        """What a model file keeps of the stack it was trained on (JSON): sensor preset, the reading
        line, bands, CRS, pixel size and dates, so a model can be checked against another source."""
        t = self.grid.transform
        return {
            "preset": self.preset, "reading": self.reading, "bands": list(self.band_names),
            "crs": crs_name(self.grid.crs), "geographic": bool(self.grid.crs and self.grid.crs.is_geographic),
            "pixel_size": [abs(float(t.a)), abs(float(t.e))],
            "n_dates": len(self), "first": self.dates[0].isoformat(), "last": self.dates[-1].isoformat(),
        }

    def select(self, start: dt.date | None = None, end: dt.date | None = None) -> "TimeSeries":
        """A new series restricted to dates within [start, end] (inclusive)."""
        keep = [s for s in self.scenes if (start is None or s.date >= start) and (end is None or s.date <= end)]
        if not keep:
            raise InputError(f"{self.source}: no date between {start} and {end}")
        return TimeSeries(keep, self.radiometry, self.grid, self.source, self.preset)

    def files(self) -> list[Path]:
        """Every file the series is read from: its manifest (when it has one), rasters and quality files."""
        out = [Path(self.source)] if Path(self.source).is_file() else []
        for s in self.scenes:
            out += [ref.path for ref in s.bands.values()] + ([s.mask.path] if s.mask is not None else [])
        return list(dict.fromkeys(out))

    def require_bands(self, names: Sequence[str]) -> None:
        """Raise BandError naming the first band of ``names`` this series lacks."""
        for b in names:
            if b not in self.band_names:
                raise BandError(
                    f"{self.source}: band '{b}' is missing (available: {', '.join(self.band_names)})"
                )

    def read(
        self, window: Window | None = None, bands: Sequence[str] | None = None
    ) -> Observations:
        """Read a window of every date as reflectance with an invalid-observation mask.

        Args:
            window: pixel window (default: the whole grid — use only for small rasters).
            bands: band names to read (default: all).

        Returns:
            :class:`Observations` with reflectance (T, B, H, W) and valid (T, H, W).
        """
        window = self._check_window(window or self.grid.full_window())
        bands = tuple(bands) if bands is not None else self.band_names
        self.require_bands(bands)
        h, w = int(window.height), int(window.width)
        t = len(self.scenes)
        refl = np.empty((t, len(bands), h, w), np.float32)
        valid = np.ones((t, h, w), bool)
        rad = self.radiometry
        use_mask = rad.quality is not None
        # GDAL lists a file's folder at every open to look for side-car files; a folder of
        # hundreds of dated rasters made that listing dominate small (pixel) reads. Each window is
        # read once, so GDAL's block cache (5 % of RAM by default) is capped: it cannot help, and
        # would otherwise let memory grow with the number of windows read.
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_CACHEMAX=64):
            for ti, scene in enumerate(self.scenes):
                # every file is opened once per date: bands and quality band read together
                by_file: dict[Path, list[tuple[int, int]]] = {}
                for bi, b in enumerate(bands):
                    ref = scene.bands[b]
                    by_file.setdefault(ref.path, []).append((bi, ref.index))
                if use_mask and scene.mask is not None:
                    by_file.setdefault(scene.mask.path, []).append((-1, scene.mask.index))
                for path, pairs in by_file.items():
                    data = _read(path, [ix for _, ix in pairs], window)
                    for k, (bi, _) in enumerate(pairs):
                        dn = data[k]
                        if bi < 0:
                            valid[ti] &= ~rad.quality.invalid_mask(dn)
                            continue
                        if rad.nodata is not None:
                            valid[ti] &= dn != rad.nodata
                        if rad.valid_range is not None:
                            valid[ti] &= (dn >= rad.valid_range[0]) & (dn <= rad.valid_range[1])
                        refl[ti, bi] = dn.astype(np.float32) * np.float32(rad.scale) + np.float32(rad.offset)
                        if rad.units is not None:  # radar: linear σ⁰, border noise masked
                            refl[ti, bi] = to_linear(refl[ti, bi], rad.units)
                            valid[ti] &= backscatter_valid(refl[ti, bi], rad.floor_db)
        valid &= np.isfinite(refl).all(axis=1)
        refl[np.broadcast_to(~valid[:, None], refl.shape)] = np.nan
        return Observations(refl, valid, bands, self.dates, window)

    def read_pixel(self, row: int, col: int, bands: Sequence[str] | None = None) -> Observations:
        """Read one pixel: reflectance (T, B, 1, 1)."""
        return self.read(Window(col, row, 1, 1), bands)

    def valid_share(self, max_pixels: int = 65536) -> float:
        """Share of valid observations, estimated on a centred window of at most ``max_pixels``."""
        side = int(np.sqrt(max_pixels))
        h, w = min(side, self.grid.height), min(side, self.grid.width)
        win = Window((self.grid.width - w) // 2, (self.grid.height - h) // 2, w, h)
        return float(self.read(win, bands=self.band_names[:1]).valid.mean())

    def _check_window(self, window: Window) -> Window:
        c0, r0 = int(window.col_off), int(window.row_off)
        if (
            window.width <= 0 or window.height <= 0 or c0 < 0 or r0 < 0
            or c0 + window.width > self.grid.width or r0 + window.height > self.grid.height
        ):
            raise InputError(
                f"window {c0},{r0} {int(window.width)}x{int(window.height)} is outside the "
                f"{self.grid.width}x{self.grid.height} raster {self.source}"
            )
        return window


def _first_path(scene: Scene) -> Path:
    return next(iter(scene.bands.values())).path


def _read(path: Path, indexes: list[int], window: Window) -> np.ndarray:
    try:
        with rasterio.open(path) as ds:
            return ds.read(indexes, window=window)
    except RasterioError as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def open_series(
    source: str | os.PathLike,
    *,
    sensor: str | None = None,
    bands: Mapping[str, int] | None = None,
    mask_band: int | None = None,
    quality: QualityRule | Mapping | None = None,
    scale: float | None = None,
    offset: float | None = None,
    nodata: float | None = None,
    boa_offset: bool = False,
    units: str | None = None,
) -> TimeSeries:
    """Open a time series from a manifest, a folder of dated rasters or a folder of date folders.

    Args:
        source: manifest YAML path, or folder.
        sensor: preset name (see :data:`pimc_core.io.sensors.PRESETS`); detected for layout (c).
        bands: band name → 1-based band index inside each multi-band file (layouts a, b).
        mask_band: 1-based index of the quality band inside each multi-band file.
        quality: quality rule, or a mapping such as ``{"valid": [4, 5, 6]}``.
        scale, offset, nodata: override the preset's / manifest's radiometry.
        boa_offset: Sentinel-2 processing baseline 04.00+ (offset −0.1).
        units: a radar source's backscatter units, ``"linear"`` or ``"db"`` (overrides the
            manifest's ``units``; default: the preset's, linear σ⁰). Radar values are read as
            linear σ⁰ whatever the units.

    Raises:
        InputError, ConfigError, BandError: with the file or parameter at fault.
    """
    path = local_path(source, "time series")
    if isinstance(quality, Mapping):
        quality = QualityRule.from_dict(quality)
    if sensor is not None:
        get_preset(sensor)
    if units is not None:
        units = check_units(units, "units")
    kind = path_kind(path)
    if kind == MISSING:
        raise InputError(f"{path}: no such file or folder")
    if kind == FILE:
        if path.suffix.lower() in (".yaml", ".yml"):
            return TimeSeries(*from_manifest(
                load_manifest(path), sensor=sensor, bands=bands, mask_band=mask_band, quality=quality,
                scale=scale, offset=offset, nodata=nodata, boa_offset=boa_offset, units=units,
            ))
        raise InputError(
            f"{path}: give a manifest (.yaml) or a folder of dated rasters; a single raster is not a time series"
        )
    if kind != FOLDER:
        raise InputError(f"{path}: is {kind}, not a manifest or a folder" if not kind.startswith("not ")
                         else f"{path}: {kind}")
    subdirs, files = list_source_folder(path)
    kw = dict(sensor=sensor, quality=quality, scale=scale, offset=offset, nodata=nodata, boa_offset=boa_offset,
              units=units)
    if subdirs:
        if bands:
            raise ConfigError("--bands maps bands inside multi-band files; date folders hold one file per band")
        return TimeSeries(*from_date_folders(path, subdirs, **kw))
    if files:
        return TimeSeries(*from_multiband_folder(path, files, bands=bands, mask_band=mask_band, **kw))
    raise InputError(f"{path}: empty — no dated rasters (*.tif) and no date folders found")
