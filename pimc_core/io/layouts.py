"""The three layouts a time series is read from, turned into scenes, a radiometry and a grid.

a) a manifest YAML (:mod:`pimc_core.io.manifest`): :func:`from_manifest`;
b) a folder of per-date multi-band rasters with the date in each file name; bands are mapped
   by the ``bands`` argument or, failing that, by the files' band descriptions (``red``,
   ``B04``, ``SR_B4`` …): :func:`from_multiband_folder`;
c) a folder holding one sub-folder per date, each with one file per band (the layout of Landsat
   and Sentinel-2 products); files are matched to bands by the sensor preset's tokens, the preset
   is detected from the file names when not given: :func:`from_date_folders`.

:func:`list_source_folder` sorts a folder's entries into date folders and raster files. Every
raster is probed once (grid, band count, descriptions); all must share one grid. Entries that
look like dates or rasters but are no regular file or folder (a FIFO, a link loop, a broken
link) are refused by name, never opened (:mod:`pimc_core.io.input_files`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import rasterio
from rasterio.errors import RasterioError

from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.io.dates import date_from_name
from pimc_core.io.grid import Grid
from pimc_core.io.input_files import FILE, FOLDER, check_input_file, path_kind
from pimc_core.io.manifest import Manifest
from pimc_core.io.scenes import BandRef, Radiometry, Scene, resolve_radiometry
from pimc_core.io.sensors import (
    PRESETS,
    SensorPreset,
    UnknownSensor,
    detect_preset,
    detect_sensor,
    get_preset,
    match_band_files,
    token_in_name,
)

__all__ = ["RASTER_SUFFIXES", "Layout", "from_date_folders", "from_manifest", "from_multiband_folder",
           "list_source_folder"]

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".img", ".vrt")


class Layout(NamedTuple):
    """What a source holds: the arguments of :class:`~pimc_core.io.timeseries.TimeSeries`."""

    scenes: list[Scene]
    radiometry: Radiometry
    grid: Grid
    source: str
    preset: str | None


def _refuse_odd(path: Path, kind: str) -> None:
    raise InputError(f"{path}: is {kind}, not a raster file or date folder" if not kind.startswith("not ")
                     else f"{path}: {kind}")


def list_source_folder(path: Path) -> tuple[list[Path], list[Path]]:
    """``(date folders, raster files)`` directly in ``path`` (hidden entries skipped), sorted.

    Raises:
        InputError: the folder cannot be listed, or an entry named like a date or a raster is
            neither a regular file nor a folder (named, with what it is).
    """
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise InputError(f"{path}: cannot list the folder ({e.strerror or e})") from None
    subdirs, files = [], []
    for p in entries:
        raster = p.suffix.lower() in RASTER_SUFFIXES
        dated = date_from_name(p.name) is not None
        if not (raster or dated):
            continue
        kind = path_kind(p)
        if kind == FOLDER:
            if dated:
                subdirs.append(p)
        elif kind == FILE:
            if raster:
                files.append(p)
        else:
            _refuse_odd(p, kind)
    return subdirs, files


def _rasters_below(folder: Path) -> list[Path]:
    """The raster files anywhere below ``folder`` (links to folders are not followed), sorted."""
    out = []
    for root, _dirs, names in os.walk(folder, followlinks=False):
        for name in names:
            p = Path(root) / name
            if p.suffix.lower() not in RASTER_SUFFIXES:
                continue
            kind = path_kind(p)
            if kind == FILE:
                out.append(p)
            elif kind != FOLDER:
                _refuse_odd(p, kind)
    return sorted(out)


@dataclass
class _FileInfo:
    path: Path
    grid: Grid
    count: int
    descriptions: tuple[str | None, ...]
    nodata: float | None
    scales: tuple[float, ...] = field(default_factory=tuple)
    offsets: tuple[float, ...] = field(default_factory=tuple)
    dtypes: tuple[str, ...] = field(default_factory=tuple)


def _probe(path: Path) -> _FileInfo:
    """Grid, band count, descriptions and scaling of a raster; only regular files are opened."""
    check_input_file(path)
    try:
        with rasterio.open(path) as ds:
            crs = ds.crs if ds.crs else None
            return _FileInfo(
                path, Grid(crs, ds.transform, ds.width, ds.height), ds.count,
                tuple(ds.descriptions), ds.nodata, tuple(ds.scales), tuple(ds.offsets), tuple(ds.dtypes),
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
    if index < 1:
        raise BandError(f"{info.path}: band '{band}' is mapped to band {index}; band numbers start at 1")
    if index > info.count:
        raise BandError(f"{info.path}: band '{band}' is mapped to band {index}, but the file has {info.count} band(s)")


def _is_float(info: _FileInfo) -> bool:
    return bool(info.dtypes) and info.dtypes[0].startswith(("float", "complex"))


def _sensor(sensor: str | None, infos: Sequence[_FileInfo]) -> SensorPreset | None:
    """The preset given, else the one the file names and the first file's band descriptions
    point to (:func:`~pimc_core.io.sensors.detect_sensor`), else None."""
    if sensor:
        return get_preset(sensor)
    return detect_sensor([i.path.name for i in infos], infos[0].descriptions)


def _band_mapping(info: _FileInfo, preset: SensorPreset | None, bands, mask_band) -> tuple[dict[str, int], int | None]:
    """(band → 1-based index, quality band index or None) inside the multi-band file ``info``:
    the given mapping, else the band descriptions ('red', 'B04', 'SR_B4', 'SCL' …)."""
    mapping = dict(bands) if bands else _bands_from_descriptions(info, preset)
    if not mapping:
        raise ConfigError(
            f"{info.path}: cannot tell which band is which — give --bands red=3,nir=4,... (a manifest: bands:) "
            f"or set band descriptions"
        )
    mband = mask_band or (_mask_from_descriptions(info, preset) if not bands else None)
    return mapping, mband


def _radiometry(where, preset: SensorPreset | None, infos: Sequence[_FileInfo], *, scale, offset, nodata, quality,
                boa_offset, valid_range=None, units=None) -> Radiometry:
    """The radiometry of a source: what is given, then the preset's, then the files' own scale;
    plain reflectance only for floating-point files. Integer DN of an unknown sensor without a
    scale are refused (:class:`UnknownSensor`): nothing is read on a guess."""
    first = infos[0]
    if preset is None and scale is None:
        if first.scales and first.scales[0] not in (0, 1):
            scale = float(first.scales[0])
            offset = float(first.offsets[0]) if offset is None else offset
        elif not _is_float(first):
            raise UnknownSensor(
                f"{where}: cannot tell the sensor from the file names or band descriptions, and {first.path.name} "
                f"holds integer DN ({first.dtypes[0]}) without a scale — give the sensor preset (--sensor "
                f"{', '.join(p for p in PRESETS if p != 'reflectance')}) or the scale (--scale 0.0001, with "
                f"--mask-band and --mask-valid/--mask-invalid for a quality band)"
            )
    return resolve_radiometry(preset, scale=scale, offset=offset, nodata=nodata, quality=quality,
                              boa_offset=boa_offset, file_nodata=first.nodata, valid_range=valid_range, units=units)


def from_manifest(m: Manifest, *, sensor, bands, mask_band, quality, scale, offset, nodata, boa_offset,
                  units=None) -> Layout:
    """Layout (a): the items of a manifest (multi-band files or one file per band). Multi-band
    items are read as a folder of them is (:func:`from_multiband_folder`): the same sensor
    detection, band mapping, quality band and scaling, with the manifest's keys as given values."""
    band_map = dict(bands or m.bands)
    mband = mask_band or m.mask_band
    qual = quality or m.quality
    infos: list[_FileInfo] = []
    probed: dict[Path, _FileInfo] = {}

    def probe(path: Path) -> _FileInfo:
        if path not in probed:
            probed[path] = _probe(path)
            infos.append(probed[path])
        return probed[path]

    for it in m.items:
        for p in ([it.path] if it.path is not None else []) + list(it.band_paths.values()) + (
                [it.mask_path] if it.mask_path is not None else []):
            probe(p)
    preset = _sensor(sensor or m.sensor, infos)
    multi = [it for it in m.items if it.path is not None]
    mapping, mindex = _band_mapping(probed[multi[0].path], preset, band_map, mband) if multi else ({}, None)
    scenes: list[Scene] = []
    for it in m.items:
        refs: dict[str, BandRef] = {}
        mref = None
        if it.path is not None:
            info = probed[it.path]
            for b, ix in mapping.items():
                _check_band_index(info, b, ix)
                refs[b] = BandRef(it.path, ix)
            if mindex:
                _check_band_index(info, "mask", mindex)
                mref = BandRef(it.path, mindex)
        for b, bp in it.band_paths.items():
            refs[b] = BandRef(bp, 1)
        if it.mask_path is not None:
            mref = BandRef(it.mask_path, 1)
        scenes.append(Scene(it.date, refs, mref))
    grid = _common_grid(infos)
    rad = _radiometry(
        m.source, preset, infos, scale=scale if scale is not None else m.scale,
        offset=offset if offset is not None else m.offset, nodata=nodata if nodata is not None else m.nodata,
        quality=qual, boa_offset=boa_offset or m.boa_offset, valid_range=m.valid_range, units=units or m.units,
    )
    if qual is not None and not any(s.mask for s in scenes):
        raise ConfigError(f"{m.source}: mask rule given but no mask band (mask.band) or mask_path")
    if any(s.mask for s in scenes) and rad.quality is None:
        raise ConfigError(f"{m.source}: quality band found but no rule — give mask: {{valid: [...]}} or "
                          f"{{invalid: [...]}} (or a sensor preset)")
    return Layout(scenes, rad, grid, str(m.source), preset.name if preset else None)


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


def from_multiband_folder(
    folder: Path, files: list[Path], *, bands, mask_band, sensor, quality, scale, offset, nodata, boa_offset,
    units=None,
) -> Layout:
    """Layout (b): per-date multi-band files, bands mapped by ``bands`` or the band descriptions;
    the sensor is the one given or detected from the file names and band descriptions."""
    dated = [(date_from_name(f.name), f) for f in files]
    undated = [f.name for d, f in dated if d is None]
    if undated:
        raise InputError(
            f"{folder / undated[0]}: no date in the file name (use YYYY-MM-DD, YYYYMMDD, YYYYDOY or a "
            f"Landsat/Sentinel-2 product id){f'; {len(undated) - 1} more' if len(undated) > 1 else ''}"
        )
    infos = [_probe(f) for _, f in dated]
    grid = _common_grid(infos)
    preset = _sensor(sensor, infos)
    mapping, mband = _band_mapping(infos[0], preset, bands, mask_band)
    scenes = []
    for (d, f), info in zip(dated, infos):
        for b, ix in mapping.items():
            _check_band_index(info, b, ix)
        if mband:
            _check_band_index(info, "mask", mband)
        scenes.append(Scene(d, {b: BandRef(f, ix) for b, ix in mapping.items()}, BandRef(f, mband) if mband else None))
    if quality is not None and not mband:
        raise ConfigError(f"{folder}: a quality rule is given but no quality band — give --mask-band")
    rad = _radiometry(folder, preset, infos, scale=scale, offset=offset, nodata=nodata, quality=quality,
                      boa_offset=boa_offset, units=units)
    if mband and rad.quality is None:
        raise ConfigError(f"{folder}: quality band {mband} found but no rule — give --mask-valid or --mask-invalid "
                          f"(or --sensor)")
    return Layout(scenes, rad, grid, str(folder), preset.name if preset else None)


def from_date_folders(folder: Path, subdirs: list[Path], *, sensor, quality, scale, offset, nodata,
                      boa_offset, units=None) -> Layout:
    """Layout (c): one folder per date, one file per band, matched by the sensor preset's tokens."""
    raster_names = _rasters_below
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
    rad = resolve_radiometry(preset, scale=scale, offset=offset, nodata=nodata, quality=quality,
                      boa_offset=boa_offset, file_nodata=infos[0].nodata, units=units)
    if quality is not None and not any(s.mask for s in scenes):
        raise ConfigError(f"{folder}: a quality rule is given but no date folder holds a quality file "
                          f"({', '.join(preset.mask_tokens) or 'none'} for preset '{preset.name}')")
    return Layout(scenes, rad, grid, str(folder), preset.name)
