"""What each date of a time series is made of, and how its digital numbers become reflectance.

A :class:`Scene` is one acquisition date: the file and band holding each reflectance band
(:class:`BandRef`) and the quality band. :class:`Radiometry` turns digital numbers into
reflectance and says which ones are invalid; :func:`resolve_radiometry` combines what the user,
the manifest, the sensor preset and the files say.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pimc_core.errors import ConfigError
from pimc_core.io.sensors import PRESETS, QualityRule, SensorPreset

__all__ = ["BandRef", "Radiometry", "Scene", "describe_reading", "resolve_radiometry"]


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
    ``quality`` band mark invalid data. A radar source has ``units`` (``"linear"`` or ``"db"``):
    its values are backscatter, read as linear σ⁰, invalid where ≤ 0 or below ``floor_db``
    (:mod:`pimc_core.io.backscatter`)."""

    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    quality: QualityRule | None = None
    valid_range: tuple[float, float] | None = None
    units: str | None = None
    floor_db: float | None = None


def resolve_radiometry(
    preset: SensorPreset | None,
    *,
    scale: float | None,
    offset: float | None,
    nodata: float | None,
    quality: QualityRule | None,
    boa_offset: bool,
    file_nodata: float | None,
    valid_range: tuple[float, float] | None = None,
    units: str | None = None,
) -> Radiometry:
    """The radiometry in force: given values first, then the preset's, then the file's nodata.
    ``units`` (``"linear"``/``"db"``) applies to a radar preset only; its default is the preset's.

    Raises:
        ConfigError: ``units`` for an optical preset or none.
        ConfigError: ``boa_offset`` without a preset that has one (Sentinel-2 L2A); a scale that is
            0 or not finite, an offset that is not finite (every reflectance would be 0 or NaN).
    """
    s = scale if scale is not None else (preset.scale if preset else 1.0)
    if offset is not None:
        o = offset
    elif preset is not None:
        o = preset.offset + (preset.extra.get("boa_offset", 0.0) if boa_offset else 0.0)
    else:
        o = 0.0
    if boa_offset and (preset is None or "boa_offset" not in preset.extra):
        raise ConfigError("boa_offset applies to the sentinel2-l2a preset only")
    if not (math.isfinite(s) and s != 0):
        raise ConfigError(f"scale must be a finite, non-zero number (reflectance = DN * scale + offset); got {s!r}")
    if not math.isfinite(o):
        raise ConfigError(f"offset must be a finite number (reflectance = DN * scale + offset); got {o!r}")
    nd = nodata if nodata is not None else (preset.nodata if preset and preset.nodata is not None else file_nodata)
    q = quality if quality is not None else (preset.quality if preset else None)
    vr = valid_range if valid_range is not None else (preset.valid_range if preset else None)
    if units is not None and (preset is None or preset.units is None):
        raise ConfigError(f"units: {units!r} applies to radar presets only "
                          f"({', '.join(p.name for p in PRESETS.values() if p.units)}); give sensor: sentinel1-grd")
    u = units if units is not None else (preset.units if preset else None)
    return Radiometry(float(s), float(o), nd, q, vr, u, preset.floor_db if preset and u else None)


def describe_reading(preset: str | None, radiometry: Radiometry, masked: bool) -> str:
    """What a source's reading assumes, in one line for status lines and ``pimc info``:
    ``"Sentinel-2 L2A, DN × 0.0001, SCL mask"``, ``"Landsat 8/9 C2 L2, DN × 2.75e-05 − 0.2, QA_PIXEL
    mask"``, ``"no sensor preset, reflectance as stored (× 1), no quality mask"``.

    Args:
        preset: the preset's name (``TimeSeries.preset``), or None.
        radiometry: the radiometry in force.
        masked: whether any date has a quality band.
    """
    p = PRESETS.get(preset) if preset else None
    who = p.title if p is not None else "no sensor preset"
    r = radiometry
    if r.units is not None:
        floor = f" (values below {r.floor_db:g} dB masked)" if r.floor_db is not None else ""
        return f"{who}, σ⁰ stored {'in dB' if r.units == 'db' else 'linear'}, read as linear σ⁰{floor}, no quality mask"
    if r.scale == 1 and r.offset == 0:
        scaling = "reflectance as stored (× 1)"
    else:
        scaling = f"DN × {r.scale:g}" + (f" {'−' if r.offset < 0 else '+'} {abs(r.offset):g}" if r.offset else "")
    if masked and r.quality is not None:
        mask = f"{p.mask_tokens[0]} mask" if p is not None and p.mask_tokens and p.name != "reflectance" \
            else f"quality mask {r.quality.to_dict()}"
    else:
        mask = "no quality mask"
    return f"{who}, {scaling}, {mask}"
