"""Which time series to read: the one place where the panel and the Processing algorithms turn
their inputs into a :class:`pimc_core.io.timeseries.TimeSeries`.

A source is a manifest file, a folder of dated rasters / date folders, or a list of
(date, raster file) pairs taken from project layers; the latter is written to a manifest in a
temporary folder, so every case is opened by :func:`pimc_core.io.timeseries.open_series` (one code
path in the core: the same sensor detection, scaling and quality mask). When the files do not
tell their sensor, the core refuses (``UnknownSensor``) and the panel asks for a preset, or a DN
scale and a quality band (:attr:`SourceSpec.scale`, :attr:`SourceSpec.mask`). A model chosen for
the source is checked against it by :func:`check_model` before anything runs. No Qt and no qgis
here: the panel and the algorithms translate their widgets and parameters into a
:class:`SourceSpec`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .bootstrap import import_core

#: Label of "no preset" in sensor choosers.
AUTO_SENSOR = "auto (manifest / file names)"


def core_names(module: str, attr: str) -> list[str]:
    """``list(module.attr)`` of a core module, for a chooser (empty if the core is unusable)."""
    try:
        return list(getattr(import_core(module), attr))
    except Exception:  # noqa: BLE001 - a broken install must not break the GUI; reported elsewhere
        return []


def sensor_names() -> list[str]:
    """The sensor preset names of ``pimc_core.io.sensors.PRESETS`` (empty if the core is unusable)."""
    return core_names("pimc_core.io.sensors", "PRESETS")


def sensor_descriptions() -> dict[str, str]:
    """Preset name → one-line description."""
    try:
        return {k: p.description for k, p in import_core("pimc_core.io.sensors").PRESETS.items()}
    except Exception:  # noqa: BLE001
        return {}


def index_names() -> list[str]:
    """The names of ``pimc_core.series.indices.INDICES``."""
    try:
        return list(import_core("pimc_core.series.indices").INDICES)
    except Exception:  # noqa: BLE001
        return ["ndvi", "evi", "savi", "evi2"]


def parse_bands(text: str | None) -> dict[str, int] | None:
    """``"blue=1, red=3, nir=4"`` → ``{"blue": 1, "red": 3, "nir": 4}``; empty → None.

    Raises:
        ConfigError: not name=index pairs, an unknown band name, or an index below 1.
    """
    errors = import_core("pimc_core.errors")
    sensors = import_core("pimc_core.io.sensors")
    if not text or not text.strip():
        return None
    out: dict[str, int] = {}
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        name, sep, idx = part.partition("=")
        try:
            value = int(idx)
        except ValueError:
            value = 0
        if not sep or value < 1:
            raise errors.ConfigError(
                f"band mapping: expected name=index pairs with 1-based indices, like red=3,nir=4 (got '{part.strip()}')"
            )
        out[sensors.check_band_name(name.strip(), "band mapping")] = value
    return out


def parse_scale(text: str | None) -> float | None:
    """``"0.0001"`` → 0.0001 (reflectance = DN × scale); empty → None.

    Raises:
        ConfigError: not a finite, non-zero number.
    """
    errors = import_core("pimc_core.errors")
    if not text or not text.strip():
        return None
    try:
        value = float(text.strip())
    except ValueError:
        value = float("nan")
    if not (value == value and value not in (0.0, float("inf"), float("-inf"))):
        raise errors.ConfigError(f"DN scale: expected a finite, non-zero number like 0.0001 (got '{text.strip()}')")
    return value


def parse_mask(text: str | None) -> tuple[int, dict[str, list[int]]] | None:
    """``"6=4,5,6"`` → ``(6, {"valid": [4, 5, 6]})``: the quality band inside each multi-band file and
    the quality values that are valid; ``"6"`` alone → ``(6, {})`` (the preset's rule); empty → None.

    Raises:
        ConfigError: not ``band`` or ``band=values`` with a 1-based band and integer values.
    """
    errors = import_core("pimc_core.errors")
    if not text or not text.strip():
        return None
    band, sep, values = text.strip().partition("=")
    try:
        index = int(band)
        valid = [int(v) for v in values.replace(";", ",").split(",") if v.strip()] if sep else []
    except ValueError:
        index = 0
    if index < 1 or (sep and not valid):
        raise errors.ConfigError(
            f"quality band: expected band=valid values with a 1-based band, like 6=4,5,6 (got '{text.strip()}')")
    return index, ({"valid": valid} if valid else {})


def parse_indices(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"ndvi, evi"`` (or a list) → ``("ndvi", "evi")``, validated by the core.

    Raises:
        ConfigError: no index, or an unknown one (the message lists the known ones).
    """
    indices = import_core("pimc_core.series.indices")
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(n.strip().lower() for n in items if n and n.strip()))
    indices.required_bands(names)  # raises ConfigError naming the unknown index / empty list
    return names


def check_indices(ts, names: Sequence[str]) -> None:
    """Raise the core's BandError (naming the index, the band, and an alternative index) when
    the series lacks a band the indices need — before any pixel is read."""
    import numpy as np

    indices = import_core("pimc_core.series.indices")
    indices.compute_indices({b: np.zeros(1, np.float32) for b in ts.band_names}, tuple(names))


@dataclass
class SourceSpec:
    """What to open: ``path`` (manifest or folder) or ``layers`` (date, raster file, name) rows.

    Attributes:
        path: manifest .yaml or folder; ignored when ``layers`` is given.
        layers: (date or None, file, layer name) rows from project layers, written to a
            manifest in ``manifest_dir`` (a new temporary folder when None) on :meth:`open`.
        sensor: preset name, or None for the manifest's / detected one.
        bands: band name → 1-based band index inside multi-band files, or None.
        scale: reflectance = DN × scale, when neither a preset nor the files say it (or None).
        mask: (quality band, rule) from :func:`parse_mask`, or None.
        sar: a Sentinel-1 source (manifest or folder) on the same grid, read beside the series
            (:func:`pimc_core.io.sar_source.with_sar`), or None.
    """

    path: str | None = None
    layers: Sequence[tuple[dt.date | None, str, str]] | None = None
    sensor: str | None = None
    bands: dict[str, int] | None = None
    manifest_dir: str | None = field(default=None, repr=False)
    scale: float | None = None
    mask: tuple[int, dict[str, list[int]]] | None = None
    sar: str | None = None

    def resolve_path(self) -> Path:
        """The manifest or folder :func:`open_series` will read (writing one for layers)."""
        errors = import_core("pimc_core.errors")
        if self.layers is not None:
            return write_layers_manifest(self.layers, self.manifest_dir)
        if not self.path or not str(self.path).strip():
            raise errors.InputError("no time series chosen: give a manifest (.yaml) or a folder of dated rasters")
        return Path(str(self.path).strip()).expanduser()

    def open(self):
        """Open the series with :func:`pimc_core.io.timeseries.open_series`.

        Raises:
            PimcError: with the file or parameter at fault (show its message as is).
        """
        ts_mod = import_core("pimc_core.io.timeseries")
        band, rule = self.mask if self.mask else (None, None)
        ts = ts_mod.open_series(self.resolve_path(), sensor=self.sensor or None, bands=self.bands or None,
                                scale=self.scale, mask_band=band, quality=rule or None)
        if self.sar and str(self.sar).strip():
            sar_source = import_core("pimc_core.io.sar_source")
            ts = sar_source.with_sar(ts, ts_mod.open_series(Path(str(self.sar).strip()).expanduser()))
        return ts


def write_layers_manifest(rows: Iterable[tuple[dt.date | None, str, str]], folder: str | None = None) -> Path:
    """Write a manifest listing raster files by date; return its path.

    Args:
        rows: (date, file path, label) — the label (a layer name) is used in error messages.
        folder: where to write ``manifest.yaml`` (default: a new temporary folder).

    Raises:
        InputError: no rows, a row without a date, or a file that does not exist.
    """
    errors = import_core("pimc_core.errors")
    manifest = import_core("pimc_core.io.manifest")
    rows = list(rows)
    if not rows:
        raise errors.InputError("no raster layers chosen: tick the layers of the time series in the table")
    items = []
    for date, path, label in rows:
        if date is None:
            raise errors.InputError(f"layer '{label}': no date — type one as YYYY-MM-DD in the table")
        if not path or not os.path.isfile(path):
            raise errors.InputError(f"layer '{label}': {path or 'its source'} is not a raster file on disk")
        items.append((date, str(Path(path).resolve())))
    items.sort(key=lambda it: it[0])
    out = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="pimc_layers_"))
    out.mkdir(parents=True, exist_ok=True)
    return manifest.write_manifest(out / "manifest.yaml", items, description="written by the PIMC QGIS plugin from project layers")


def describe_series(ts) -> str:
    """One line about an opened series, for status labels and logs."""
    g = ts.grid
    crs = g.crs.to_string() if g.crs else "no CRS"
    epsg = g.crs.to_epsg() if g.crs else None
    crs = f"EPSG:{epsg}" if epsg else crs[:40]
    return (
        f"{len(ts)} dates {ts.dates[0]} … {ts.dates[-1]}; bands {', '.join(ts.band_names)}; "
        f"{g.width}×{g.height} px; {crs}; read as {ts.reading}"
    )


def is_unknown_sensor(error: BaseException) -> bool:
    """Whether ``error`` is the core's refusal to read files whose sensor cannot be told."""
    try:
        return isinstance(error, import_core("pimc_core.io.sensors").UnknownSensor)
    except Exception:  # noqa: BLE001 - a broken install: not that refusal
        return False


def check_model(spec, ts) -> str:
    """Check the model choice against an opened series before anything runs
    (:func:`pimc_core.maps.suitability.check_model_source`: bands, season and date grid, pixel size).

    Args:
        spec: a ``.pimc`` path, ``builtin:nearest-centroid``, or a model object.
        ts: the opened :class:`~pimc_core.io.timeseries.TimeSeries`.

    Returns:
        One line: ``"model m.pimc fits …: ndvi, evi, savi from blue, red, nir; …"``.

    Raises:
        PimcError: one sentence naming the model and the source (show it as is).
    """
    suitability = import_core("pimc_core.maps.suitability")
    if isinstance(spec, (str, os.PathLike)):
        text = str(spec).strip()
        if text.startswith("builtin:"):
            from .mapping import resolve_model

            return suitability.check_model_source(resolve_model(text), ts, text).summary
        return suitability.check_model_source(Path(text).expanduser(), ts).summary
    return suitability.check_model_source(spec, ts).summary
