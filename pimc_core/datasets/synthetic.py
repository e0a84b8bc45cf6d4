"""The synthetic sample: a deterministic Sentinel-2 L2A-like time series of a field mosaic,
written as a stack for tests, the demo and benchmarks (``pimc sample-data``).

:func:`make_synthetic` checks its parameters, simulates the scene
(:mod:`pimc_core.datasets.synthetic_scene`; the classes, band names and SCL codes of
:mod:`pimc_core.datasets.synthetic_classes` are re-exported here) and writes one 6-band uint16
GeoTIFF per date (blue, green, red, nir, swir1 as DN = reflectance x 10000, band 6 an SCL-like
scene classification), a ``manifest.yaml``,
the full truth ``labels.tif``, the field ids ``fields.tif``, a sparse training subset
``labels_sparse.tif`` and ``classes.json``; with ``sar=True`` also a Sentinel-1-like radar stack of
the same fields on the same grid in ``s1/`` (:mod:`pimc_core.datasets.synthetic_s1`: one 2-band
float32 GeoTIFF of linear σ⁰ VV, VH per radar date, and its ``s1/manifest.yaml``). All files are written under temporary names and
renamed together at the end (:class:`~pimc_core.io.atomic.Staging`): a full disk or an
interrupt leaves the folder as it was. The real Landsat sample is in
:mod:`pimc_core.datasets.landsat_sample`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from pimc_core.config import Interval, check_params
from pimc_core.datasets.synthetic_classes import (
    BAND_NAMES,
    CLASSES,
    SCL_BARE,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_NODATA,
    SCL_SHADOW,
    SCL_VALID,
    SCL_VEGETATION,
    SCL_WATER,
    ClassSpec,
    class_ndvi,
)
from pimc_core.datasets.synthetic_s1 import SyntheticRadar, simulate_radar
from pimc_core.datasets.synthetic_scene import SyntheticScene, simulate_scene
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.atomic import Staging, os_error_message, output_folder
from pimc_core.io.classes import hex_to_rgba
from pimc_core.io.input_files import FILE, MISSING, path_kind

__all__ = [
    "BAND_NAMES",
    "CLASSES",
    "ClassSpec",
    "SCL_BARE",
    "SCL_CIRRUS",
    "SCL_CLOUD_HIGH",
    "SCL_CLOUD_MEDIUM",
    "SCL_NODATA",
    "SCL_SHADOW",
    "SCL_VALID",
    "SCL_VEGETATION",
    "SCL_WATER",
    "SyntheticSample",
    "class_ndvi",
    "make_synthetic",
]

_DEFAULT_ORIGIN = (600_000.0, 4_900_000.0)  # upper-left corner, UTM 31N: south-west France

#: What each parameter of :func:`make_synthetic` accepts (``crs`` and ``origin`` are checked
#: when read).
PARAMETERS: dict[str, list] = {
    "size": [Interval(Integral, 8, 4096, closed="both")],
    "n_dates": [Interval(Integral, 2, 365, closed="both")],
    "seed": [Interval(Integral, 0, None, closed="left")],
    "year": [Interval(Integral, 1900, 2200, closed="both")],
    "n_classes": [None, Interval(Integral, 2, len(CLASSES), closed="both")],
    "cloud_fraction": [Interval(Real, 0.0, 0.9, closed="both")],
    "noise": [Interval(Real, 0.0, 0.2, closed="both")],
    "pixel_size": [Interval(Real, 0, None, closed="right")],
    "sparse_label_fraction": [Interval(Real, 0, 1, closed="right")],
    "variability": [Interval(Real, 0, 4, closed="both")],
    "mask_leak": [Interval(Real, 0, 4, closed="both")],
    "haze": [Interval(Real, 0, 0.1, closed="both")],
    "mowing": ["boolean"],
}


@dataclass(frozen=True)
class SyntheticSample:
    """Paths and facts of a sample written by :func:`make_synthetic` (all paths absolute)."""

    outdir: Path
    manifest: Path
    labels: Path
    labels_sparse: Path
    fields: Path
    classes_json: Path
    dates: list[dt.date]
    class_names: list[str]
    images: list[Path] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    n_fields: int = 0
    crs: str = ""
    #: the simulated scene (its truth: :meth:`SyntheticScene.season`, ``field_ndvi``), or None
    scene: SyntheticScene | None = field(default=None, repr=False, compare=False)
    #: the radar stack's manifest (``s1/manifest.yaml``) when written (``sar=True``), else None
    sar_manifest: Path | None = None
    #: the simulated radar view (its dates, noise-free σ⁰, soil moisture), or None
    radar: SyntheticRadar | None = field(default=None, repr=False, compare=False)


def _check_parameters(**values: Any) -> int:
    """Check :data:`PARAMETERS`; returns the number of classes k."""
    check_params(SimpleNamespace(**values), PARAMETERS, where="synthetic")
    k = len(CLASSES) if values["n_classes"] is None else int(values["n_classes"])
    if values["size"] * values["size"] < 3 * k:
        raise ConfigError(f"size={values['size']} is too small for {k} classes")
    return k


def _transform(crs: str, pixel_size: float, origin: tuple[float, float] | None):
    """``(CRS, north-up Affine)`` of the sample; ConfigError for an unknown CRS or a bad origin."""
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        with rasterio.Env():  # PROJ's message goes to Python logging, not printed on stderr
            crs_obj = CRS.from_user_input(crs)
    except CRSError as e:
        raise ConfigError(f"crs: unknown coordinate reference system {crs!r} ({e})") from None
    if origin is None:
        x0, y0 = _DEFAULT_ORIGIN
    else:
        try:
            x0, y0 = (float(v) for v in origin)
        except (TypeError, ValueError):
            raise ConfigError(f"origin must be an (x, y) pair of numbers (got {origin!r})") from None
        if not (math.isfinite(x0) and math.isfinite(y0)):
            raise ConfigError(f"origin must be finite (got {origin!r})")
    return crs_obj, Affine(float(pixel_size), 0.0, x0, 0.0, -float(pixel_size), y0)


def _write_tif(path: Path, data: np.ndarray, crs, transform, *, nodata=None, descriptions=None,
               colormap=None, tags=None) -> None:
    import rasterio

    count, h, w = data.shape
    bs = min(256, 16 * max(1, min(h, w) // 32))  # 16 px for tiny images ... 256 px from 512 on
    profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=data.dtype.name, crs=crs,
                   transform=transform, tiled=True, blockxsize=bs, blockysize=bs,
                   compress="deflate", predictor=2, zlevel=1, num_threads="ALL_CPUS")
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            for i, d in enumerate(descriptions, start=1):
                dst.set_band_description(i, d)
        if colormap:
            dst.write_colormap(1, colormap)
        if tags:
            dst.update_tags(**tags)


def _previous_images(manifest: Path, sensor: str = "sentinel2-l2a", prefix: str = "S2") -> set[str]:
    """Image names listed by an earlier synthetic manifest of ``sensor`` in the same folder (to
    remove stale dates); only plain ``{prefix}_YYYYMMDD.tif`` names next to the manifest are ever
    returned."""
    import yaml

    if path_kind(manifest) != FILE:  # never read a FIFO or the like
        return set()
    try:
        raw = yaml.safe_load(manifest.read_text())
        items = raw["items"] if raw.get("sensor") == sensor else []
        names = {str(it["path"]) for it in items}
    except Exception:  # no manifest, or not one of ours: remove nothing
        return set()
    return {n for n in names if re.fullmatch(rf"{prefix}_\d{{8}}\.tif", n)}


def _writing(final: Path, write: Callable[[], None]) -> None:
    """Run ``write()`` (which writes the temporary file of ``final``); a failed write (disk full,
    permission, GDAL error) becomes one InputError naming ``final``."""
    from rasterio.errors import RasterioError

    try:
        write()
    except (OSError, RasterioError) as e:
        raise InputError(os_error_message(e, final)) from None


def _manifest_text(dates: list[dt.date], images: list[Path]) -> str:
    lines = [
        "sensor: sentinel2-l2a",
        "scale: 0.0001",
        "offset: 0.0",
        "nodata: 0",
        "bands: {blue: 1, green: 2, red: 3, nir: 4, swir1: 5}",
        f"mask: {{band: 6, valid: [{', '.join(str(v) for v in SCL_VALID)}]}}",
        "items:",
        *(f"  - {{date: {d.isoformat()}, path: {p.name}}}" for d, p in zip(dates, images)),
    ]
    return "\n".join(lines) + "\n"


def make_synthetic(
    outdir: str | Path,
    *,
    size: int = 64,
    n_dates: int = 24,
    seed: int = 0,
    year: int = 2023,
    n_classes: int | None = None,
    cloud_fraction: float = 0.15,
    noise: float = 0.01,
    crs: str = "EPSG:32631",
    pixel_size: float = 10.0,
    sparse_label_fraction: float = 0.3,
    origin: tuple[float, float] | None = None,
    sar: bool = False,
    variability: float = 1.0,
    mask_leak: float = 0.0,
    haze: float = 0.0,
    mowing: bool = False,
) -> SyntheticSample:
    """Write a deterministic Sentinel-2 L2A-like time series of a field mosaic into ``outdir``.

    Files: ``S2_YYYYMMDD.tif`` per date (6 x uint16, tiled, deflate; bands blue, green, red,
    nir, swir1 as reflectance x 10000 with nodata 0, band 6 SCL codes), ``manifest.yaml``,
    ``labels.tif`` (uint8 class ids 1..K), ``labels_sparse.tif`` (the same on a
    ``sparse_label_fraction`` of the fields, at least one per class, 0 elsewhere),
    ``fields.tif`` (field ids 1..F) and ``classes.json``. The same arguments give identical
    files. ``origin`` is the upper-left corner in ``crs`` units (default: a UTM 31N spot).
    ``sar=True`` also writes ``s1/``: ``S1_YYYYMMDD.tif`` per radar date (2 x float32 linear σ⁰,
    VV and VH, nodata 0, every 6–12 days whatever the clouds) and ``s1/manifest.yaml``
    (``sensor: sentinel1-grd``, ``units: linear``); the optical files are the same with or without it.
    Every file appears at the end, all together, or none does; dates of an earlier sample in
    the same folder that this one does not have are then removed. ``variability`` scales how
    much the fields of one class differ (crop calendar timing, amplitude, base level; 1.0: the
    default scenes, unchanged; :func:`~pimc_core.datasets.synthetic_scene.simulate_scene`).
    ``mask_leak`` > 0 leaves thin cloud along every cloud's edge unflagged in the SCL band (a band
    whose width grows with ``mask_leak`` and whose opacity rises to the flagged cloud's at the edge),
    as real scene classifications miss cloud edges; 0 (default): every contaminated pixel is
    flagged, and the files are those of earlier versions. ``haze`` > 0 adds each date's residual of
    an imperfect atmospheric correction (an aerosol error: reflectance falling off with wavelength,
    ``haze`` its standard deviation in blue, smooth over the scene, unflagged;
    :meth:`~pimc_core.datasets.synthetic_scene.SyntheticScene.haze_residual`); 0 (default): none.
    ``mowing=True`` gives every grassland field a management of its own (0 to 3 cuts on its own
    dates, or grazing) instead of the class's one cut at a jittered date; False (default): the
    files of earlier versions.

    Raises:
        ConfigError: an out-of-range parameter or an unknown CRS.
        InputError: ``outdir`` cannot be created or written (the message names the file).
    """
    k = _check_parameters(size=size, n_dates=n_dates, seed=seed, year=year, n_classes=n_classes,
                          cloud_fraction=cloud_fraction, noise=noise, pixel_size=pixel_size,
                          sparse_label_fraction=sparse_label_fraction, variability=variability,
                          mask_leak=mask_leak, haze=haze, mowing=mowing)
    crs_obj, transform = _transform(crs, pixel_size, origin)
    outdir = output_folder(Path(outdir).expanduser().resolve())
    scene = simulate_scene(int(size), n_dates, seed, year, k, cloud_fraction, noise, float(sparse_label_fraction),
                           float(variability), float(mask_leak), float(haze), bool(mowing))
    radar = simulate_radar(scene, seed) if sar else None
    sar_dir = outdir / "s1" if sar else None
    new_sar_dir = sar_dir is not None and path_kind(sar_dir) == MISSING
    try:
        with Staging(outdir) as stage:
            images = _write_sample(stage, scene, crs_obj, transform)
            manifest = outdir / "manifest.yaml"
            stale = [outdir / n for n in sorted(_previous_images(manifest) - {p.name for p in images})]
            if radar is not None:
                with Staging(output_folder(sar_dir)) as sar_stage:
                    sar_images = _write_radar(sar_stage, radar, crs_obj, transform)
                    stale += [sar_dir / n for n in sorted(_previous_images(sar_dir / "manifest.yaml", "sentinel1-grd",
                                                                           "S1") - {p.name for p in sar_images})]
                    sar_stage.commit()
            stage.commit()
    except BaseException:
        if new_sar_dir:  # the radar folder this call created, emptied by its staging
            with contextlib.suppress(OSError):
                sar_dir.rmdir()
        raise
    for path in stale:  # dates of an earlier run into the same folder
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise InputError(f"{path}: cannot remove this date of an earlier sample ({e.strerror or e})") from None
    return SyntheticSample(
        outdir=outdir,
        manifest=manifest,
        labels=outdir / "labels.tif",
        labels_sparse=outdir / "labels_sparse.tif",
        fields=outdir / "fields.tif",
        classes_json=outdir / "classes.json",
        dates=list(scene.dates),
        class_names=[c.name for c in CLASSES[:k]],
        images=images,
        class_ids=[c.id for c in CLASSES[:k]],
        n_fields=scene.n_fields,
        crs=crs_obj.to_string(),
        scene=scene,
        sar_manifest=sar_dir / "manifest.yaml" if sar_dir is not None else None,
        radar=radar,
    )


def _write_radar(stage: Staging, radar: SyntheticRadar, crs, transform) -> list[Path]:
    """Write the radar stack (one 2-band float32 GeoTIFF per date and its manifest) to ``stage``."""
    folder = stage.folder
    images = [folder / f"S1_{d:%Y%m%d}.tif" for d in radar.dates]
    for t, final in enumerate(images):
        tmp = stage.path(final.name)
        tags = {"ACQUISITION_DATE": radar.dates[t].isoformat(), "SENSOR": "synthetic sentinel1-grd"}
        sigma0 = radar.render(t)
        _writing(final, lambda: _write_tif(tmp, sigma0, crs, transform, nodata=0, descriptions=["VV", "VH"], tags=tags))
    text = "\n".join([
        "sensor: sentinel1-grd", "units: linear", "nodata: 0", "bands: {vv: 1, vh: 2}", "items:",
        *(f"  - {{date: {d.isoformat()}, path: {p.name}}}" for d, p in zip(radar.dates, images)),
    ]) + "\n"
    tmp_manifest = stage.path("manifest.yaml")
    _writing(folder / "manifest.yaml", lambda: tmp_manifest.write_text(text))
    return images


def _write_sample(stage: Staging, scene: SyntheticScene, crs, transform) -> list[Path]:
    """Write every file of the sample to ``stage`` (renamed by its commit); returns the images."""
    from concurrent.futures import ThreadPoolExecutor

    folder, k = stage.folder, scene.k
    cmap = {0: (0, 0, 0, 0), **{c.id: hex_to_rgba(c.color) for c in CLASSES[:k]}}
    for name, data, extra in (
        ("labels", scene.labels(), dict(colormap=cmap, descriptions=["class"])),
        ("labels_sparse", scene.sparse_labels(), dict(colormap=cmap, descriptions=["class (sparse, 0 = unlabelled)"])),
        ("fields", scene.field_ids(), dict(descriptions=["field id"])),
    ):
        tmp = stage.path(f"{name}.tif")
        _writing(folder / f"{name}.tif", lambda: _write_tif(tmp, data[None], crs, transform, nodata=0, **extra))
    classes = [{"id": c.id, "name": c.name, "color": c.color} for c in CLASSES[:k]]
    tmp_json = stage.path("classes.json")
    _writing(folder / "classes.json", lambda: tmp_json.write_text(json.dumps(classes, indent=2) + "\n"))

    # one file per date (rendering overlaps the compression/writing of the previous)
    images = [folder / f"S2_{d:%Y%m%d}.tif" for d in scene.dates]
    descriptions = list(BAND_NAMES) + ["SCL"]

    def write(t: int, dn: np.ndarray) -> None:
        tmp = stage.path(images[t].name)
        tags = {"ACQUISITION_DATE": scene.dates[t].isoformat(), "SENSOR": "synthetic sentinel2-l2a"}
        _writing(images[t], lambda: _write_tif(tmp, dn, crs, transform, nodata=0, descriptions=descriptions, tags=tags))

    pending = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        for t in range(len(scene.dates)):
            dn = scene.render(t)
            if pending is not None:
                pending.result()
            pending = pool.submit(write, t, dn)
        if pending is not None:
            pending.result()
    tmp_manifest = stage.path("manifest.yaml")
    _writing(folder / "manifest.yaml", lambda: tmp_manifest.write_text(_manifest_text(scene.dates, images)))
    return images
