"""Reading a raster time series: dates, band mapping, grid, and windows of reflectance with an
invalid-observation mask.

Three layouts open with :func:`open_series`:

a) a manifest YAML (:mod:`pimc_core.io.manifest`);
b) a folder of per-date multi-band GeoTIFFs with the date in each file name; bands are mapped
   by the ``bands`` argument or, failing that, by the files' band descriptions (``red``,
   ``B04``, ``SR_B4`` …);
c) a folder holding one sub-folder per date, each with one file per band (the layout of Landsat
   and Sentinel-2 products); files are matched to bands by the sensor preset's tokens, the preset
   is detected from the file names when not given.

All dates must share CRS, transform and shape; otherwise :class:`InputError` names the first
offending file and what differs. Reading is windowed: nothing reads a whole stack at once.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.io.dates import date_from_name
from pimc_core.io.manifest import Manifest, load_manifest
from pimc_core.io.sensors import (
    PRESETS,
    QualityRule,
    SensorPreset,
    detect_preset,
    get_preset,
    match_band_files,
    token_in_name,
)

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".img", ".vrt")


@dataclass(frozen=True)
class Grid:
    """The pixel grid shared by every date: CRS, affine transform and shape."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid's CRS."""
        return _bounds(self)

    def difference(self, other: "Grid") -> str | None:
        """A short description of how ``other`` differs from this grid, or None if equal."""
        if (self.crs is None) != (other.crs is None) or (
            self.crs is not None and other.crs is not None and self.crs != other.crs
        ):
            return f"CRS {_crs_name(other.crs)} instead of {_crs_name(self.crs)}"
        if (self.height, self.width) != (other.height, other.width):
            return f"shape {other.height}x{other.width} instead of {self.height}x{self.width}"
        if not self.transform.almost_equals(other.transform, precision=1e-6 * abs(self.transform.a or 1)):
            return f"transform {tuple(other.transform)[:6]} instead of {tuple(self.transform)[:6]}"
        return None

    def full_window(self) -> Window:
        """The window covering the whole grid."""
        return Window(0, 0, self.width, self.height)

    def window_transform(self, window: Window) -> Affine:
        """The affine transform of a window of this grid."""
        return rasterio.windows.transform(window, self.transform)

    def windows(self, block: int = 256) -> Iterator[Window]:
        """Row-major blocks of at most ``block``×``block`` pixels covering the grid."""
        for r in range(0, self.height, block):
            for c in range(0, self.width, block):
                yield Window(c, r, min(block, self.width - c), min(block, self.height - r))

    def rowcol(self, x: float, y: float, crs: str | CRS | None = None) -> tuple[int, int]:
        """Row and column of the pixel holding point (x, y).

        Args:
            x, y: coordinates in ``crs`` (the grid's CRS when None).

        Raises:
            ConfigError: unknown CRS. InputError: the point lies outside the raster.
        """
        if crs is not None:
            dst = self.crs
            src = _parse_crs(crs)
            if dst is not None and src != dst:
                from rasterio.warp import transform as warp_transform

                try:
                    xs, ys = warp_transform(src, dst, [x], [y])
                except RasterioError as e:
                    raise ConfigError(f"cannot transform from {crs} to the raster CRS: {e}") from None
                x, y = xs[0], ys[0]
        col_f, row_f = ~self.transform @ (x, y)
        row, col = int(np.floor(row_f)), int(np.floor(col_f))
        if not (0 <= row < self.height and 0 <= col < self.width):
            xmin, ymin, xmax, ymax = self.bounds
            raise InputError(
                f"point ({x:.6g}, {y:.6g}) is outside the raster "
                f"(bounds {xmin:.6g}, {ymin:.6g}, {xmax:.6g}, {ymax:.6g} in {_crs_name(self.crs)})"
            )
        return row, col

    def xy(self, row: int, col: int) -> tuple[float, float]:
        """Coordinates of the centre of pixel (row, col) in the grid's CRS."""
        x, y = self.transform @ (col + 0.5, row + 0.5)
        return float(x), float(y)


def _bounds(g: Grid) -> tuple[float, float, float, float]:
    xs, ys = [], []
    for c, r in ((0, 0), (g.width, 0), (0, g.height), (g.width, g.height)):
        x, y = g.transform @ (c, r)
        xs.append(x)
        ys.append(y)
    return min(xs), min(ys), max(xs), max(ys)


def _crs_name(crs: CRS | None) -> str:
    if crs is None:
        return "none"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def _parse_crs(crs: str | CRS) -> CRS:
    if isinstance(crs, CRS):
        return crs
    try:
        return CRS.from_user_input(crs)
    except Exception:  # rasterio raises CRSError; any failure means the same to the user
        raise ConfigError(f"unknown CRS '{crs}' (use e.g. EPSG:4326)") from None


@dataclass(frozen=True)
class BandRef:
    """Band ``index`` (1-based) of raster file ``path``."""

    path: Path
    index: int = 1


@dataclass(frozen=True)
class Scene:
    """One acquisition date: where each band and the quality band live."""

    date: dt.date
    bands: Mapping[str, BandRef]
    mask: BandRef | None = None


@dataclass(frozen=True)
class Radiometry:
    """reflectance = DN × scale + offset; ``nodata`` DNs, DNs outside ``valid_range`` and the
    ``quality`` band mark invalid data."""

    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    quality: QualityRule | None = None
    valid_range: tuple[float, float] | None = None


@dataclass
class Observations:
    """A window of a time series.

    Attributes:
        reflectance: (T, B, H, W) float32 reflectance, NaN where the observation is invalid.
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

    def __repr__(self) -> str:
        return (
            f"TimeSeries({self.source!r}, {len(self)} dates {self.dates[0]}..{self.dates[-1]}, "
            f"bands {list(self.band_names)}, {self.grid.height}x{self.grid.width}, {_crs_name(self.grid.crs)})"
        )

    def select(self, start: dt.date | None = None, end: dt.date | None = None) -> "TimeSeries":
        """A new series restricted to dates within [start, end] (inclusive)."""
        keep = [s for s in self.scenes if (start is None or s.date >= start) and (end is None or s.date <= end)]
        if not keep:
            raise InputError(f"{self.source}: no date between {start} and {end}")
        return TimeSeries(keep, self.radiometry, self.grid, self.source, self.preset)

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


@dataclass
class _FileInfo:
    path: Path
    grid: Grid
    count: int
    descriptions: tuple[str | None, ...]
    nodata: float | None
    scales: tuple[float, ...] = field(default_factory=tuple)
    offsets: tuple[float, ...] = field(default_factory=tuple)


def _probe(path: Path) -> _FileInfo:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        with rasterio.open(path) as ds:
            crs = ds.crs if ds.crs else None
            return _FileInfo(
                path, Grid(crs, ds.transform, ds.width, ds.height), ds.count,
                tuple(ds.descriptions), ds.nodata, tuple(ds.scales), tuple(ds.offsets),
            )
    except RasterioError as e:
        msg = str(e).split("\n")[0]
        raise InputError(f"{path}: not a readable raster ({msg})") from None


def _common_grid(infos: Sequence[_FileInfo]) -> Grid:
    ref = infos[0]
    for info in infos[1:]:
        diff = ref.grid.difference(info.grid)
        if diff:
            raise InputError(f"{info.path}: {diff} (than {ref.path.name}); all dates must share one grid")
    return ref.grid


def _check_band_index(info: _FileInfo, band: str, index: int) -> None:
    if index > info.count:
        raise BandError(f"{info.path}: band '{band}' is mapped to band {index}, but the file has {info.count} band(s)")


def _radiometry(
    preset: SensorPreset | None,
    *,
    scale: float | None,
    offset: float | None,
    nodata: float | None,
    quality: QualityRule | None,
    boa_offset: bool,
    file_nodata: float | None,
    valid_range: tuple[float, float] | None = None,
) -> Radiometry:
    s = scale if scale is not None else (preset.scale if preset else 1.0)
    if offset is not None:
        o = offset
    elif preset is not None:
        o = preset.offset + (preset.extra.get("boa_offset", 0.0) if boa_offset else 0.0)
    else:
        o = 0.0
    if boa_offset and (preset is None or "boa_offset" not in preset.extra):
        raise ConfigError("boa_offset applies to the sentinel2-l2a preset only")
    nd = nodata if nodata is not None else (preset.nodata if preset and preset.nodata is not None else file_nodata)
    q = quality if quality is not None else (preset.quality if preset else None)
    vr = valid_range if valid_range is not None else (preset.valid_range if preset else None)
    return Radiometry(float(s), float(o), nd, q, vr)


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

    Raises:
        InputError, ConfigError, BandError: with the file or parameter at fault.
    """
    path = Path(source)
    if isinstance(quality, Mapping):
        quality = QualityRule.from_dict(quality)
    if sensor is not None:
        get_preset(sensor)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return _from_manifest(
                load_manifest(path), sensor=sensor, bands=bands, mask_band=mask_band, quality=quality,
                scale=scale, offset=offset, nodata=nodata, boa_offset=boa_offset,
            )
        raise InputError(
            f"{path}: give a manifest (.yaml) or a folder of dated rasters; a single raster is not a time series"
        )
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    subdirs = [p for p in entries if p.is_dir() and date_from_name(p.name)]
    files = [p for p in entries if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES]
    kw = dict(sensor=sensor, quality=quality, scale=scale, offset=offset, nodata=nodata, boa_offset=boa_offset)
    if subdirs:
        if bands:
            raise ConfigError("--bands maps bands inside multi-band files; date folders hold one file per band")
        return _from_date_folders(path, subdirs, **kw)
    if files:
        return _from_multiband_folder(path, files, bands=bands, mask_band=mask_band, **kw)
    raise InputError(f"{path}: empty — no dated rasters (*.tif) and no date folders found")


def _from_manifest(m: Manifest, *, sensor, bands, mask_band, quality, scale, offset, nodata, boa_offset) -> TimeSeries:
    preset = get_preset(sensor or m.sensor) if (sensor or m.sensor) else None
    band_map = dict(bands or m.bands)
    mband = mask_band or m.mask_band
    qual = quality or m.quality
    scenes: list[Scene] = []
    infos: list[_FileInfo] = []
    for it in m.items:
        refs: dict[str, BandRef] = {}
        mref = None
        if it.path is not None:
            info = _probe(it.path)
            infos.append(info)
            mapping = band_map or _bands_from_descriptions(info, preset)
            if not mapping:
                raise ConfigError(
                    f"{m.source}: no 'bands' mapping, and {it.path.name} has no band descriptions to map from"
                )
            for b, ix in mapping.items():
                _check_band_index(info, b, ix)
                refs[b] = BandRef(it.path, ix)
            if mband:
                _check_band_index(info, "mask", mband)
                mref = BandRef(it.path, mband)
        for b, bp in it.band_paths.items():
            infos.append(_probe(bp))
            refs[b] = BandRef(bp, 1)
        if it.mask_path is not None:
            infos.append(_probe(it.mask_path))
            mref = BandRef(it.mask_path, 1)
        scenes.append(Scene(it.date, refs, mref))
    grid = _common_grid(infos)
    rad = _radiometry(
        preset, scale=scale if scale is not None else m.scale, offset=offset if offset is not None else m.offset,
        nodata=nodata if nodata is not None else m.nodata, quality=qual,
        boa_offset=boa_offset or m.boa_offset, file_nodata=infos[0].nodata, valid_range=m.valid_range,
    )
    if qual is not None and not any(s.mask for s in scenes):
        raise ConfigError(f"{m.source}: mask rule given but no mask band (mask.band) or mask_path")
    return TimeSeries(scenes, rad, grid, str(m.source), preset.name if preset else None)


def _bands_from_descriptions(info: _FileInfo, preset: SensorPreset | None) -> dict[str, int]:
    """Map canonical bands from band descriptions ('red', 'B04', 'SR_B4' …)."""
    out: dict[str, int] = {}
    presets = [preset] if preset else list(PRESETS.values())
    for i, desc in enumerate(info.descriptions, start=1):
        if not desc:
            continue
        low = desc.strip().lower()
        if low in PRESETS["reflectance"].band_tokens:
            out.setdefault(low, i)
            continue
        for p in presets:
            for b, toks in p.band_tokens.items():
                if any(token_in_name(t, desc) for t in toks):
                    out.setdefault(b, i)
    return out


def _mask_from_descriptions(info: _FileInfo, preset: SensorPreset | None) -> int | None:
    tokens = preset.mask_tokens if preset else tuple(t for p in PRESETS.values() for t in p.mask_tokens)
    for i, desc in enumerate(info.descriptions, start=1):
        if desc and any(token_in_name(t, desc) for t in tokens):
            return i
    return None


def _from_multiband_folder(
    folder: Path, files: list[Path], *, bands, mask_band, sensor, quality, scale, offset, nodata, boa_offset
) -> TimeSeries:
    dated = [(date_from_name(f.name), f) for f in files]
    undated = [f.name for d, f in dated if d is None]
    if undated:
        raise InputError(
            f"{folder / undated[0]}: no date in the file name (use YYYY-MM-DD, YYYYMMDD, YYYYDOY or a "
            f"Landsat/Sentinel-2 product id){f'; {len(undated) - 1} more' if len(undated) > 1 else ''}"
        )
    preset = get_preset(sensor) if sensor else None
    infos = [_probe(f) for _, f in dated]
    grid = _common_grid(infos)
    first = infos[0]
    mapping = dict(bands) if bands else _bands_from_descriptions(first, preset)
    if not mapping:
        raise ConfigError(
            f"{first.path}: cannot tell which band is which — give --bands red=3,nir=4,... "
            f"or set band descriptions"
        )
    mband = mask_band or (_mask_from_descriptions(first, preset) if not bands else None)
    if preset is None and sensor is None and scale is None and first.scales and first.scales[0] not in (0, 1):
        scale = float(first.scales[0])
        offset = float(first.offsets[0]) if offset is None else offset
    scenes = []
    for (d, f), info in zip(dated, infos):
        for b, ix in mapping.items():
            _check_band_index(info, b, ix)
        if mband:
            _check_band_index(info, "mask", mband)
        scenes.append(Scene(d, {b: BandRef(f, ix) for b, ix in mapping.items()}, BandRef(f, mband) if mband else None))
    rad = _radiometry(preset, scale=scale, offset=offset, nodata=nodata, quality=quality,
                      boa_offset=boa_offset, file_nodata=first.nodata)
    if mband and rad.quality is None:
        raise ConfigError(f"{folder}: quality band {mband} found but no rule — give --mask-valid or --mask-invalid")
    return TimeSeries(scenes, rad, grid, str(folder), preset.name if preset else None)


def _from_date_folders(folder: Path, subdirs: list[Path], *, sensor, quality, scale, offset, nodata, boa_offset) -> TimeSeries:
    def raster_names(d: Path) -> list[Path]:
        return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES)

    first_files = raster_names(subdirs[0])
    if not first_files:
        raise InputError(f"{subdirs[0]}: no raster files in this date folder")
    preset = get_preset(sensor) if sensor else detect_preset(p.name for p in first_files)
    if preset is None:
        raise ConfigError(
            f"{subdirs[0]}: cannot tell which file is which band — give --sensor "
            f"({', '.join(PRESETS)})"
        )
    scenes, infos = [], []
    band_set: tuple[str, ...] | None = None
    for d in subdirs:
        files = raster_names(d)
        by_name = {p.name: p for p in files}
        found, mask_name = match_band_files(list(by_name), preset)
        if not found:
            raise BandError(f"{d}: no band files matching preset '{preset.name}'")
        if band_set is None:
            band_set = tuple(found)
        missing = [b for b in band_set if b not in found]
        if missing:
            raise BandError(f"{d}: band(s) {', '.join(missing)} missing (found: {', '.join(found)})")
        refs = {b: BandRef(by_name[found[b]], 1) for b in band_set}
        for ref in refs.values():
            infos.append(_probe(ref.path))
        mref = None
        if mask_name:
            mref = BandRef(by_name[mask_name], 1)
            infos.append(_probe(mref.path))
        date = date_from_name(d.name)
        scenes.append(Scene(date, refs, mref))
    grid = _common_grid(infos)
    rad = _radiometry(preset, scale=scale, offset=offset, nodata=nodata, quality=quality,
                      boa_offset=boa_offset, file_nodata=infos[0].nodata)
    return TimeSeries(scenes, rad, grid, str(folder), preset.name)


def window_of_bounds(grid: Grid, bounds: tuple[float, float, float, float], crs: str | CRS | None = None) -> Window:
    """The smallest window of ``grid`` covering ``bounds`` (xmin, ymin, xmax, ymax) in ``crs``.

    Raises:
        InputError: the box does not overlap the raster. ConfigError: unknown CRS or xmin ≥ xmax.
    """
    xmin, ymin, xmax, ymax = bounds
    if not (xmin < xmax and ymin < ymax):
        raise ConfigError(f"bbox must have xmin < xmax and ymin < ymax (got {bounds})")
    if crs is not None and grid.crs is not None and _parse_crs(crs) != grid.crs:
        from rasterio.warp import transform_bounds

        xmin, ymin, xmax, ymax = transform_bounds(_parse_crs(crs), grid.crs, xmin, ymin, xmax, ymax)
    win = rasterio.windows.from_bounds(xmin, ymin, xmax, ymax, grid.transform)
    c0 = max(0, int(np.floor(win.col_off + 1e-9)))
    r0 = max(0, int(np.floor(win.row_off + 1e-9)))
    c1 = min(grid.width, int(np.ceil(win.col_off + win.width - 1e-9)))
    r1 = min(grid.height, int(np.ceil(win.row_off + win.height - 1e-9)))
    if c1 <= c0 or r1 <= r0:
        gx = grid.bounds
        raise InputError(f"bbox {bounds} does not overlap the raster (bounds {tuple(round(v, 3) for v in gx)})")
    return Window(c0, r0, c1 - c0, r1 - r0)


__all__ = [
    "Grid", "BandRef", "Scene", "Radiometry", "Observations", "TimeSeries", "open_series",
    "window_of_bounds",
]
