"""The manifest: a YAML file listing the dates of a time series and how to read them.

Schema (unknown keys anywhere are an error that names them)::

    sensor: sentinel2-l2a          # optional preset (see pimc_core.io.sensors.PRESETS)
    boa_offset: false              # optional, Sentinel-2 baseline 04.00+: offset -0.1
    scale: 0.0001                  # optional, overrides the preset
    offset: 0.0
    nodata: 0
    valid_range: [1, 65534]        # optional, DN range of valid data (saturation excluded)
    bands: {blue: 1, green: 2, red: 3, nir: 4, swir1: 5}   # 1-based band index in each file
    mask: {band: 6, valid: [4, 5, 6]}                      # or invalid: [...] or bits: [...]
    items:
      - {date: 2023-01-05, path: S2_20230105.tif}          # relative to the manifest

A radar manifest reads the same (``sensor: sentinel1-grd``, ``nodata: 0``, ``bands: {vv: 1,
vh: 2}``) and says the units of its backscatter: ``units: linear`` (σ⁰) or ``units: db``.

Items may also give ``bands`` as a mapping band → path of a single-band file (one file per
band), and ``mask_path`` for a separate quality file.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.atomic import atomic_path
from pimc_core.io.backscatter import check_units
from pimc_core.io.dates import parse_date
from pimc_core.io.input_files import FILE, MISSING, check_input_file, local_path, path_kind
from pimc_core.io.sensors import QualityRule, check_band_name

_TOP_KEYS = {
    "sensor", "boa_offset", "scale", "offset", "nodata", "valid_range", "bands", "mask", "items", "description",
    "units",
}
_ITEM_KEYS = {"date", "path", "bands", "mask_path"}
_MASK_KEYS = {"band", "valid", "invalid", "bits"}


@dataclass(frozen=True)
class ManifestItem:
    """One date: a multi-band file (``path``) or one file per band (``band_paths``)."""

    date: dt.date
    path: Path | None
    band_paths: Mapping[str, Path] = field(default_factory=dict)
    mask_path: Path | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; paths are absolute."""

    source: Path
    items: tuple[ManifestItem, ...]
    sensor: str | None = None
    boa_offset: bool = False
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None
    valid_range: tuple[float, float] | None = None
    bands: Mapping[str, int] = field(default_factory=dict)
    mask_band: int | None = None
    quality: QualityRule | None = None
    description: str = ""
    units: str | None = None


class _NoDatesLoader(yaml.SafeLoader):
    """Safe YAML loader that leaves dates as strings, so a bad date is reported with its item."""


_NoDatesLoader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _reject_unknown(d: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(allowed))})"
        )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number (got {value!r})")
    return float(value)


def _item_file(base: Path, value: Any, what: str) -> Path:
    """The absolute path of a file an item names, checked (by ``stat``, never opened) to be a
    regular file: ``"{what} not found: {path}"``, ``"{what} {path} is a FIFO (named pipe) ..."``."""
    try:
        given = base / local_path(str(value), "raster")
    except InputError as e:
        raise InputError(f"{what} {e}") from None
    kind = path_kind(given)
    if kind == MISSING:
        raise InputError(f"{what} not found: {given.resolve()}")
    if kind != FILE:
        raise InputError(f"{what} {given}: {kind if kind.startswith('not ') else 'is ' + kind}, not a raster file")
    return given.resolve()


def load_manifest(path: str | Path) -> Manifest:
    """Parse and validate a manifest file.

    Raises:
        InputError: the file is missing, not YAML, or lists files that do not exist.
        ConfigError: unknown keys, wrong types, unknown band names.
    """
    path = check_input_file(path, "manifest", missing=f"{path}: manifest not found")
    try:
        raw = yaml.load(path.read_text(), Loader=_NoDatesLoader)  # noqa: S506 (a SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a valid YAML manifest ({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the manifest ({e.strerror or e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a manifest is a YAML mapping with an 'items' list")
    _reject_unknown(raw, _TOP_KEYS, str(path))
    where = str(path)
    base = path.parent

    bands: dict[str, int] = {}
    raw_bands = raw.get("bands") or {}
    if not isinstance(raw_bands, dict):
        raise ConfigError(f"{where}: 'bands' must map band names to 1-based band indices")
    for name, idx in raw_bands.items():
        b = check_band_name(name, f"{where}: bands")
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 1:
            raise ConfigError(f"{where}: bands.{name} must be a 1-based band index (got {idx!r})")
        bands[b] = idx

    mask_band = None
    quality = None
    if raw.get("mask") is not None:
        m = raw["mask"]
        if not isinstance(m, dict):
            raise ConfigError(f"{where}: 'mask' must be a mapping like {{band: 6, valid: [4, 5, 6]}}")
        _reject_unknown(m, _MASK_KEYS, f"{where}: mask")
        if "band" in m:
            if isinstance(m["band"], bool) or not isinstance(m["band"], int) or m["band"] < 1:
                raise ConfigError(f"{where}: mask.band must be a 1-based band index (got {m['band']!r})")
            mask_band = int(m["band"])
        quality = QualityRule.from_dict({k: v for k, v in m.items() if k != "band"}, f"{where}: mask")

    raw_items = raw.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise ConfigError(f"{where}: 'items' must be a non-empty list of {{date, path}}")
    items = []
    for i, it in enumerate(raw_items):
        iw = f"{where}: items[{i}]"
        if not isinstance(it, dict):
            raise ConfigError(f"{iw} must be a mapping with 'date' and 'path'")
        _reject_unknown(it, _ITEM_KEYS, iw)
        if "date" not in it:
            raise ConfigError(f"{iw}: missing 'date'")
        date = parse_date(it["date"], f"{iw}.date")
        p = None
        if it.get("path") is not None:
            p = _item_file(base, it["path"], f"{iw}: file")
        band_paths: dict[str, Path] = {}
        if it.get("bands") is not None:
            if not isinstance(it["bands"], dict):
                raise ConfigError(f"{iw}.bands must map band names to file paths")
            for name, bp in it["bands"].items():
                b = check_band_name(name, f"{iw}.bands")
                band_paths[b] = _item_file(base, bp, f"{iw}: file for band '{b}'")
        if p is None and not band_paths:
            raise ConfigError(f"{iw}: give 'path' (multi-band file) or 'bands' (one file per band)")
        mp = None
        if it.get("mask_path") is not None:
            mp = _item_file(base, it["mask_path"], f"{iw}: mask file")
        items.append(ManifestItem(date=date, path=p, band_paths=band_paths, mask_path=mp))

    valid_range = None
    if raw.get("valid_range") is not None:
        vr = raw["valid_range"]
        if not isinstance(vr, list) or len(vr) != 2:
            raise ConfigError(f"{where}: valid_range must be [min, max] in DN")
        valid_range = (_number(vr[0], f"{where}: valid_range"), _number(vr[1], f"{where}: valid_range"))
        if valid_range[0] > valid_range[1]:
            raise ConfigError(f"{where}: valid_range min {vr[0]} > max {vr[1]}")

    scale = _number(raw["scale"], f"{where}: scale") if raw.get("scale") is not None else None
    if scale is not None and not (math.isfinite(scale) and scale != 0):
        raise ConfigError(f"{where}: scale must be a finite, non-zero number (reflectance = DN * scale + offset); "
                          f"got {raw['scale']!r}")
    offset = _number(raw["offset"], f"{where}: offset") if raw.get("offset") is not None else None
    if offset is not None and not math.isfinite(offset):
        raise ConfigError(f"{where}: offset must be a finite number; got {raw['offset']!r}")
    boa = raw.get("boa_offset", False)
    if not isinstance(boa, bool):
        raise ConfigError(f"{where}: boa_offset must be true or false")
    return Manifest(
        source=path.resolve(),
        items=tuple(items),
        sensor=raw.get("sensor"),
        boa_offset=boa,
        scale=scale,
        offset=offset,
        nodata=_number(raw["nodata"], f"{where}: nodata") if raw.get("nodata") is not None else None,
        valid_range=valid_range,
        bands=bands,
        mask_band=mask_band,
        quality=quality,
        description=str(raw.get("description", "")),
        units=check_units(raw["units"], f"{where}: units") if raw.get("units") is not None else None,
    )


def write_manifest(path: str | Path, items: list[tuple[dt.date, str]], **top: Any) -> Path:
    """Write a manifest (multi-band items) with the given top-level keys, atomically; returns the path."""
    _reject_unknown(top, _TOP_KEYS - {"items"}, "write_manifest")
    doc = dict(top)
    doc["items"] = [{"date": d.isoformat(), "path": p} for d, p in items]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
