"""Pixel samples for training: gap-filled index series and image patches of sampled pixels.

For every sampled pixel a :class:`PixelSamples` holds

* its gap-filled vegetation-index series ``(C, T)`` (:func:`pimc_core.series.index_series`),
  on the acquisition dates, or resampled onto a fixed date grid (:func:`grid_dates`) when the
  model needs the same ``T`` for stacks acquired on different dates;
* a ``k x k`` patch ``(B, k, k)`` centred on it, cut from a reference image: by default the
  cloud-free **median composite** of the stack (per band, the median of the *valid*
  observations, computed window by window, NaN where a pixel has none); ``seasonal:K``: K such
  composites, one per consecutive period of equal length between the stack's first and last
  date (:func:`seasonal_composite`, ``K x B`` channels named ``s1_<band> … sK_<band>``, so the
  patch shows how the neighbourhood changes over the season); or any raster on the same grid;
  at the raster borders the image is **reflect**-padded (``numpy.pad(mode="reflect")``,
  the border pixel is not repeated);
* its class id (0 = unlabelled) when labels are given, its row / column and valid count.

Recurrence plots are *not* stored: the model makes them per batch on the training device.

Sampling (:func:`sample_pixels`):

* **random**: ``n`` pixels drawn uniformly among the pixels with at least ``min_valid`` valid
  observations (pixels with fewer are excluded, never invented);
* **stratified**: with a label map (:func:`read_labels`, a class raster on the same grid or a
  vector file with a class field, rasterised onto the grid), up to ``per_class`` pixels of
  every class (all labelled pixels when ``per_class`` is None), again excluding few-valid ones.

Reading is windowed (``block`` x ``block`` windows plus a ``k // 2`` margin for the patches), so
memory is bounded by the window and the sample, never by the raster.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from rasterio.windows import Window

from .errors import BandError, ConfigError, InputError
from .indices import required_bands
from .series import DEFAULT_INDICES, index_series
from .timeseries import Grid, Observations, TimeSeries

__all__ = [
    "DEFAULT_PATCH_SIZE",
    "LabelMap",
    "PixelSamples",
    "grid_dates",
    "load_class_table",
    "median_composite",
    "read_labels",
    "reflect_fill_patches",
    "sample_pixels",
    "seasonal_band_names",
    "seasonal_composite",
    "seasonal_source_bands",
    "season_groups",
    "stack_reference",
]

#: Default side of the image patches (9 x 9 pixels = 90 m at 10 m).
DEFAULT_PATCH_SIZE = 9
_VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".kml", ".gml", ".sqlite")


# ============================================================================ samples
@dataclass
class PixelSamples:
    """Sampled pixels of one or more stacks.

    Attributes:
        series: (N, C, T) float32 gap-filled index series (no NaN).
        patches: (N, B, k, k) float32 reference-image patches (NaN only where the reference has
            no valid value), or None when no patches were asked for.
        labels: (N,) int64 class ids, 0 = unlabelled.
        rows, cols: (N,) int64 pixel positions on the grid.
        n_valid: (N,) int64 valid observations of each pixel.
        source_id: (N,) int64 index into ``sources``.
        indices: the C index names. patch_bands: the B patch band names.
        dates: the T dates of the series of the first source (per-source dates in
            ``source_dates``).
        sources: the stacks the pixels come from.
        source_dates: the T dates of each source's series.
        reference: ``"median"``, ``"seasonal:K"`` or the path of the reference raster.
    """

    series: np.ndarray
    patches: np.ndarray | None
    labels: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    n_valid: np.ndarray
    indices: tuple[str, ...]
    patch_bands: tuple[str, ...] = ()
    dates: tuple[dt.date, ...] = ()
    source_id: np.ndarray | None = None
    sources: tuple[str, ...] = ()
    source_dates: tuple[tuple[dt.date, ...], ...] = ()
    reference: str = "median"

    def __post_init__(self) -> None:
        n = self.series.shape[0]
        if self.source_id is None:
            self.source_id = np.zeros(n, np.int64)
        for name in ("labels", "rows", "cols", "n_valid", "source_id"):
            a = getattr(self, name)
            if a.shape != (n,):
                raise ValueError(f"PixelSamples.{name} has shape {a.shape}; expected ({n},)")
        if self.patches is not None and self.patches.shape[0] != n:
            raise ValueError(f"PixelSamples.patches has {self.patches.shape[0]} rows; expected {n}")

    def __len__(self) -> int:
        return int(self.series.shape[0])

    @property
    def n_dates(self) -> int:
        return int(self.series.shape[2])

    @property
    def patch_size(self) -> int:
        return 0 if self.patches is None else int(self.patches.shape[-1])

    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> "PixelSamples":
        """The samples at ``idx`` (an index array, a boolean mask or a slice)."""
        return replace(
            self,
            series=self.series[idx],
            patches=None if self.patches is None else self.patches[idx],
            labels=self.labels[idx],
            rows=self.rows[idx],
            cols=self.cols[idx],
            n_valid=self.n_valid[idx],
            source_id=self.source_id[idx],
        )

    def class_counts(self) -> dict[int, int]:
        """Labelled pixels per class id (unlabelled pixels not counted)."""
        ids, counts = np.unique(self.labels[self.labels > 0], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}

    @classmethod
    def concat(cls, parts: Sequence["PixelSamples"]) -> "PixelSamples":
        """Join samples of several stacks (same indices, T, patch bands and size).

        Raises:
            ConfigError: the parts differ in indices, number of dates or patches.
        """
        if not parts:
            raise ConfigError("no samples to join")
        first = parts[0]
        for p in parts[1:]:
            if p.indices != first.indices:
                raise ConfigError(f"samples with indices {p.indices} and {first.indices} cannot be joined")
            if p.n_dates != first.n_dates:
                raise ConfigError(
                    f"{p.sources[0] if p.sources else 'samples'}: {p.n_dates} dates, but "
                    f"{first.sources[0] if first.sources else 'the first stack'} has {first.n_dates}; "
                    "use a date grid (dates: grid) so every stack has the same T"
                )
            if p.patch_bands != first.patch_bands or p.patch_size != first.patch_size:
                raise ConfigError("samples with different patch bands or sizes cannot be joined")
        offsets = np.cumsum([0] + [len(p.sources) or 1 for p in parts[:-1]])
        patches = None if first.patches is None else np.concatenate([p.patches for p in parts])
        return cls(
            series=np.concatenate([p.series for p in parts]),
            patches=patches,
            labels=np.concatenate([p.labels for p in parts]),
            rows=np.concatenate([p.rows for p in parts]),
            cols=np.concatenate([p.cols for p in parts]),
            n_valid=np.concatenate([p.n_valid for p in parts]),
            source_id=np.concatenate([p.source_id + o for p, o in zip(parts, offsets)]),
            indices=first.indices,
            patch_bands=first.patch_bands,
            dates=first.dates,
            sources=tuple(s for p in parts for s in (p.sources or ("",))),
            source_dates=tuple(d for p in parts for d in (p.source_dates or (p.dates,))),
            reference=first.reference,
        )


# ============================================================================ dates
def grid_dates(first_date: dt.date, n_dates: int, step_days: int, start_doy: int = 1) -> list[dt.date]:
    """The fixed date grid of a model for a season starting in ``first_date``'s year.

    ``n_dates`` dates every ``step_days`` days from day-of-year ``start_doy`` (1-366) of the
    year of ``first_date`` (the model-file schema's ``dates: {"mode": "grid"}``).

    Raises:
        ConfigError: a non-positive size or step, or ``start_doy`` outside 1..366.
    """
    for name, v, lo, hi in (("n_dates", n_dates, 1, None), ("step_days", step_days, 1, None),
                            ("start_doy", start_doy, 1, 366)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi and v > hi):
            raise ConfigError(f"date grid: {name} must be an integer >= {lo}{f' and <= {hi}' if hi else ''}; got {v!r}")
    start = dt.date(first_date.year, 1, 1) + dt.timedelta(days=int(start_doy) - 1)
    return [start + dt.timedelta(days=int(step_days) * i) for i in range(int(n_dates))]


# ============================================================================ classes / labels
def load_class_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``classes.json``: a list of ``{"id": int, "name": str, "color": "#rrggbb"}``.

    Missing names become ``"class N"``, missing colours palette colours.

    Raises:
        InputError: unreadable or not JSON. ConfigError: not a list of classes, bad ids / colours.
    """
    from .styling import normalise_class_table

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: class table not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{p}: not a readable JSON class table ({e})") from None
    if isinstance(data, Mapping) and "classes" in data:
        data = data["classes"]
    if not isinstance(data, list) or not all(isinstance(c, Mapping) for c in data):
        raise ConfigError(f"{p}: a class table is a JSON list of {{\"id\", \"name\", \"color\"}} objects")
    for i, c in enumerate(data):
        unknown = [k for k in c if k not in ("id", "name", "color")]
        if unknown:
            raise ConfigError(f"{p}: class {i} has unknown key(s) {', '.join(map(repr, unknown))} (allowed: id, name, color)")
    try:
        return normalise_class_table(data)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None


def default_class_table(ids: Iterable[int]) -> list[dict[str, Any]]:
    """``class N`` names and palette colours for class ids without a class table."""
    from .styling import normalise_class_table

    return normalise_class_table([{"id": int(i)} for i in sorted(set(int(i) for i in ids))])


@dataclass
class LabelMap:
    """A class id per pixel of a grid (0 = unlabelled).

    Attributes:
        array: (H, W) uint8 class ids (1..255).
        classes: ``[{"id", "name", "color"}]`` of the ids present (from the class table, the
            vector's class names, or ``class N``).
        source: the file the labels came from.
    """

    array: np.ndarray
    classes: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    def counts(self) -> dict[int, int]:
        ids, counts = np.unique(self.array[self.array > 0], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}


def read_labels(
    path: str | os.PathLike,
    grid: Grid,
    *,
    class_field: str | None = None,
    classes: Sequence[Mapping[str, Any]] | None = None,
    all_touched: bool = False,
) -> LabelMap:
    """Class ids per pixel from a label raster (on ``grid``) or a vector file with a class field.

    Args:
        path: a single-band raster of class ids (0 / nodata = unlabelled) on the same grid as
            the series, or a vector file (GeoPackage, shapefile, GeoJSON, ...) whose polygons
            carry the class in ``class_field``.
        grid: the grid of the series.
        class_field: the attribute holding the class (vector files only): integer ids, or class
            names (matched to ``classes`` by name, case-insensitively; without ``classes`` the
            names get ids 1..K in alphabetical order).
        classes: the class table (``load_class_table``); ids outside it are an error.
        all_touched: rasterise every pixel a polygon touches (default: pixel centres inside).

    Raises:
        InputError: unreadable file, a raster on another grid, no features.
        ConfigError: a missing / unknown class field, class ids out of 1..255 or not in ``classes``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: label file not found")
    table = [dict(c) for c in classes] if classes else None
    if p.suffix.lower() in _VECTOR_SUFFIXES or p.is_dir():
        arr, names = _rasterize_vector(p, grid, class_field, table, all_touched)
    else:
        if class_field:
            raise ConfigError(f"--class-field applies to vector label files; {p.name} is a raster")
        arr, names = _read_label_raster(p, grid), {}
    ids = sorted(int(i) for i in np.unique(arr) if i > 0)
    if table is not None:
        known = {int(c["id"]) for c in table}
        extra = [i for i in ids if i not in known]
        if extra:
            raise ConfigError(
                f"{p}: class id(s) {', '.join(map(str, extra[:10]))} are not in the class table "
                f"(ids {', '.join(map(str, sorted(known)))})"
            )
        out_classes = table
    elif names:
        from .styling import normalise_class_table

        out_classes = normalise_class_table([{"id": i, "name": names.get(i)} for i in ids])
    else:
        out_classes = default_class_table(ids)
    return LabelMap(arr, out_classes, str(p))


def _read_label_raster(p: Path, grid: Grid) -> np.ndarray:
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(p) as ds:
            other = Grid(ds.crs if ds.crs else None, ds.transform, ds.width, ds.height)
            diff = grid.difference(other)
            if diff:
                raise InputError(f"{p}: label raster has {diff}; it must be on the grid of the series")
            data = ds.read(1)
            nodata = ds.nodata
    except RasterioError as e:
        raise InputError(f"{p}: not a readable raster ({str(e).splitlines()[0]})") from None
    valid = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= data != nodata
    vals = data[valid]
    if vals.size and (vals.min() < 0 or vals.max() > 255 or (data.dtype.kind == "f" and np.any(vals != np.round(vals)))):
        raise ConfigError(f"{p}: class ids must be integers 0..255 (0 = unlabelled); found {vals.min()}..{vals.max()}")
    out = np.zeros(data.shape, np.uint8)
    out[valid] = vals.astype(np.uint8)
    return out


def _rasterize_vector(
    p: Path, grid: Grid, class_field: str | None, table: list[dict] | None, all_touched: bool
) -> tuple[np.ndarray, dict[int, str]]:
    from rasterio import features

    geoms, values, field_names = _read_vector(p, grid, class_field)
    names: dict[int, str] = {}
    if not geoms:
        raise InputError(f"{p}: no features with a geometry and a '{class_field}' value")
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        ids = []
        for v in values:
            if float(v) != round(float(v)) or not 1 <= v <= 255:
                raise ConfigError(f"{p}: class field '{class_field}' has value {v!r}; class ids are integers 1..255")
            ids.append(int(v))
    else:
        text = [str(v).strip() for v in values]
        if table is not None:
            by_name = {str(c["name"]).strip().lower(): int(c["id"]) for c in table}
            by_id = {str(c["id"]): int(c["id"]) for c in table}
            ids = []
            for t in text:
                cid = by_name.get(t.lower(), by_id.get(t))
                if cid is None:
                    raise ConfigError(
                        f"{p}: class '{t}' of field '{class_field}' is not in the class table "
                        f"({', '.join(str(c['name']) for c in table)})"
                    )
                ids.append(cid)
        else:
            uniq = sorted(set(text))
            if len(uniq) > 255:
                raise ConfigError(f"{p}: {len(uniq)} different classes in '{class_field}'; at most 255")
            lookup = {t: i + 1 for i, t in enumerate(uniq)}
            names = {i: t for t, i in lookup.items()}
            ids = [lookup[t] for t in text]
    arr = features.rasterize(
        zip(geoms, ids), out_shape=(grid.height, grid.width), transform=grid.transform, fill=0,
        all_touched=all_touched, dtype="uint8",
    )
    return arr, names


def _read_vector(p: Path, grid: Grid, class_field: str | None) -> tuple[list[dict], list[Any], list[str]]:
    """GeoJSON-like geometries in the grid's CRS and their class values (via GDAL's OGR)."""
    try:
        from osgeo import ogr, osr
    except ImportError:  # pragma: no cover - GDAL's Python bindings come with QGIS / Debian
        ogr = None
    if ogr is None:  # pragma: no cover
        return _read_geojson(p, grid, class_field)
    ogr.UseExceptions()
    try:
        ds = ogr.Open(str(p))
    except RuntimeError as e:
        raise InputError(f"{p}: not a readable vector file ({e})") from None
    if ds is None or ds.GetLayerCount() == 0:
        raise InputError(f"{p}: not a readable vector file (no layer)")
    layer = ds.GetLayer(0)
    defn = layer.GetLayerDefn()
    field_names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    if not class_field:
        raise ConfigError(f"{p}: give the attribute holding the class with --class-field (fields: {', '.join(field_names) or 'none'})")
    match = [f for f in field_names if f.lower() == class_field.lower()]
    if not match:
        raise ConfigError(f"{p}: no field '{class_field}' (fields: {', '.join(field_names) or 'none'})")
    fname = match[0]
    transform = None
    src_srs = layer.GetSpatialRef()
    if src_srs is not None and grid.crs is not None:
        dst_srs = osr.SpatialReference()
        dst_srs.ImportFromWkt(grid.crs.to_wkt())
        for s in (src_srs, dst_srs):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if not src_srs.IsSame(dst_srs):
            transform = osr.CoordinateTransformation(src_srs, dst_srs)
    geoms, values = [], []
    for feat in layer:
        g = feat.GetGeometryRef()
        v = feat.GetField(fname)
        if g is None or v is None or (isinstance(v, str) and not v.strip()):
            continue
        g = g.Clone()
        if transform is not None:
            g.Transform(transform)
        geoms.append(json.loads(g.ExportToJson()))
        values.append(v)
    return geoms, values, field_names


def _read_geojson(p: Path, grid: Grid, class_field: str | None):  # pragma: no cover - fallback
    from rasterio.warp import transform_geom

    data = json.loads(p.read_text(encoding="utf-8"))
    feats = data.get("features", [])
    fields = sorted({k for f in feats for k in (f.get("properties") or {})})
    if not class_field or class_field not in fields:
        raise ConfigError(f"{p}: no field '{class_field}' (fields: {', '.join(fields) or 'none'})")
    geoms, values = [], []
    for f in feats:
        v = (f.get("properties") or {}).get(class_field)
        if f.get("geometry") is None or v is None:
            continue
        g = f["geometry"]
        if grid.crs is not None:
            g = transform_geom("EPSG:4326", grid.crs, g)
        geoms.append(g)
        values.append(v)
    return geoms, values, fields


# ============================================================================ composite / patches
def composite_of(reflectance: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-band median of the valid observations: (T, B, h, w) → (B, h, w) float32.

    Invalid observations must be NaN in ``reflectance`` (as :meth:`TimeSeries.read` gives them);
    pixels without any valid observation are NaN. This is also what map inference uses by
    default for the patches (``PixelModel.patch_composite``).
    """
    refl = np.asarray(reflectance, np.float32)
    if valid is not None:
        refl = np.where(np.asarray(valid)[:, None], refl, np.float32(np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        return np.nanmedian(refl, axis=0).astype(np.float32)


def stack_reference(reference: str | os.PathLike | None) -> int:
    """Composites a patch reference takes from the stack itself: ``median`` (or None) → 1,
    ``seasonal:K`` → K, anything else (a raster path) → 0.

    Raises:
        ConfigError: ``seasonal:`` without a whole number K between 1 and 12.
    """
    if reference is None or str(reference) == "median":
        return 1
    text = str(reference)
    if text.startswith("seasonal:"):
        k = text.split(":", 1)[1]
        if not k.isdigit() or not 1 <= int(k) <= 12:
            raise ConfigError(f"reference {text!r}: expected seasonal:K with K a whole number from 1 to 12")
        return int(k)
    return 0


def season_groups(dates: Sequence[dt.date], k: int) -> np.ndarray:
    """Period of each date for ``seasonal:K`` composites: (T,) int in ``0 .. k-1``.

    The span from the first to the last date is cut into ``k`` periods of equal length; a date
    belongs to the period it falls in (the last date to the last period). A stack of one year
    and ``k = 4`` gives its quarters, whatever the dates' spacing.
    """
    if k < 1:
        raise ConfigError(f"seasonal composites: k must be >= 1; got {k}")
    days = np.array([d.toordinal() for d in dates], dtype=np.float64)
    if days.size == 0:
        raise InputError("seasonal composites of a stack without dates")
    span = days.max() - days.min()
    if span <= 0:
        return np.zeros(days.size, dtype=np.int64)
    return np.minimum((k * (days - days.min()) / span).astype(np.int64), k - 1)


def seasonal_composite(reflectance: np.ndarray, valid: np.ndarray | None, dates: Sequence[dt.date],
                       k: int) -> np.ndarray:
    """``k`` median composites of consecutive periods: (T, B, h, w) → (k * B, h, w) float32.

    Channel ``g * B + b`` is the median of band ``b`` over the valid observations of period
    ``g`` (:func:`season_groups`); NaN where a pixel has no valid observation in that period.
    ``k = 1`` is :func:`composite_of`.
    """
    refl = np.asarray(reflectance)
    if refl.shape[0] != len(dates):
        raise ConfigError(f"seasonal composites: {refl.shape[0]} observations but {len(dates)} dates")
    if k == 1:
        return composite_of(refl, valid)
    groups = season_groups(dates, k)
    b, h, w = refl.shape[1:]
    out = np.full((k * b, h, w), np.nan, np.float32)
    for g in range(k):
        sel = np.flatnonzero(groups == g)
        if sel.size:
            out[g * b:(g + 1) * b] = composite_of(refl[sel], None if valid is None else np.asarray(valid)[sel])
    return out


def seasonal_band_names(bands: Sequence[str], k: int) -> tuple[str, ...]:
    """Channel names of :func:`seasonal_composite`: the bands for ``k = 1``, else ``s1_<band>`` …"""
    if k == 1:
        return tuple(bands)
    return tuple(f"s{g + 1}_{b}" for g in range(k) for b in bands)


def seasonal_source_bands(names: Sequence[str], k: int) -> tuple[str, ...]:
    """The stack bands behind :func:`seasonal_band_names` (inverse for the first period)."""
    if k == 1:
        return tuple(names)
    if len(names) % k:
        raise ConfigError(f"{len(names)} patch channels cannot be {k} seasonal composites")
    first = names[: len(names) // k]
    if not all(n.startswith("s1_") for n in first):
        raise ConfigError(f"patch channels {', '.join(first)} are not named s1_<band> (seasonal:{k} composites)")
    return tuple(n[3:] for n in first)


def median_composite(ts: TimeSeries, bands: Sequence[str] | None = None, *, block: int = 256,
                     window: Window | None = None) -> np.ndarray:
    """Cloud-free median composite of (a window of) a stack, computed window by window.

    Returns:
        (B, h, w) float32 reflectance, NaN where a pixel has no valid observation.
    """
    bands = tuple(bands or ts.band_names)
    ts.require_bands(bands)
    win = window or ts.grid.full_window()
    c0, r0, w, h = int(win.col_off), int(win.row_off), int(win.width), int(win.height)
    out = np.full((len(bands), h, w), np.nan, np.float32)
    for r in range(0, h, block):
        for c in range(0, w, block):
            sub = Window(c0 + c, r0 + r, min(block, w - c), min(block, h - r))
            obs = ts.read(sub, bands=bands)
            out[:, r:r + int(sub.height), c:c + int(sub.width)] = composite_of(obs.reflectance, obs.valid)
    return out


def _reflect_pad(img: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect-pad the last two axes; falls back to 'symmetric' where a side is too short."""
    if not (top or bottom or left or right):
        return img
    h, w = img.shape[-2:]
    mode = "reflect" if (max(top, bottom) < h and max(left, right) < w) else "symmetric"
    if mode == "symmetric" and (max(top, bottom) > h or max(left, right) > w):
        mode = "edge"
    pad = [(0, 0)] * (img.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(img, pad, mode=mode)


def reflect_fill_patches(patches: np.ndarray) -> np.ndarray:
    """Replace all-NaN border rows / columns of patches by reflection (in place; returned).

    Map inference hands patches NaN-padded outside the raster; training patches are reflect-
    padded there. A row (column) of a patch that is NaN in every band and column, at the top or
    bottom (left or right) edge, is taken to lie outside the raster and becomes the mirror
    image of the row inside, exactly as :func:`numpy.pad` ``mode="reflect"`` does.
    """
    if patches is None or patches.size == 0:
        return patches
    k_r, k_c = patches.shape[-2:]
    nan = np.isnan(patches).all(axis=1)  # (N, k, k): all bands NaN
    rows_bad = nan.all(axis=2)  # (N, k)
    cols_bad = nan.all(axis=1)  # (N, k)
    if not (rows_bad[:, 0].any() or rows_bad[:, -1].any() or cols_bad[:, 0].any() or cols_bad[:, -1].any()):
        return patches
    for n in np.flatnonzero(rows_bad[:, 0] | rows_bad[:, -1] | cols_bad[:, 0] | cols_bad[:, -1]):
        p = patches[n]
        top = _edge_run(rows_bad[n])
        bottom = _edge_run(rows_bad[n][::-1])
        left = _edge_run(cols_bad[n])
        right = _edge_run(cols_bad[n][::-1])
        if top + bottom >= k_r or left + right >= k_c:
            continue
        inner = p[:, top:k_r - bottom, left:k_c - right]
        patches[n] = _reflect_pad(inner, top, bottom, left, right)
    return patches


def _edge_run(flags: np.ndarray) -> int:
    n = 0
    for f in flags:
        if not f:
            break
        n += 1
    return n


def _patches_at(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """(B, H', W') padded image → (N, B, k, k) patches whose top-left corners are (rows, cols)."""
    from numpy.lib.stride_tricks import sliding_window_view

    view = sliding_window_view(img, (k, k), axis=(1, 2))  # (B, H'-k+1, W'-k+1, k, k)
    return np.ascontiguousarray(np.moveaxis(view[:, rows, cols], 0, 1), dtype=np.float32)


class _Reference:
    """Where patches are cut from: composites of the stack (``median``, ``seasonal:K``), or a
    raster on the grid. ``bands`` are the patch channels, ``source_bands`` the stack bands read
    for them."""

    def __init__(self, ts: TimeSeries, reference: str | os.PathLike | None, patch_bands: Sequence[str] | None):
        self.path: Path | None = None
        self.groups = stack_reference(reference)
        if self.groups:
            self.source_bands = tuple(patch_bands or ts.band_names)
            ts.require_bands(self.source_bands)
            self.bands = seasonal_band_names(self.source_bands, self.groups)
            self.name = "median" if self.groups == 1 else f"seasonal:{self.groups}"
            return
        import rasterio
        from rasterio.errors import RasterioError

        p = Path(reference)
        if not p.exists():
            raise InputError(f"{p}: reference raster not found")
        try:
            with rasterio.open(p) as ds:
                other = Grid(ds.crs if ds.crs else None, ds.transform, ds.width, ds.height)
                descr = [((d or "").strip().lower() or f"band{i + 1}") for i, d in enumerate(ds.descriptions)]
                self.nodata = ds.nodata
        except RasterioError as e:
            raise InputError(f"{p}: not a readable raster ({str(e).splitlines()[0]})") from None
        diff = ts.grid.difference(other)
        if diff:
            raise InputError(f"{p}: reference raster has {diff}; it must be on the grid of the series")
        if patch_bands:
            missing = [b for b in patch_bands if b not in descr]
            if missing:
                raise BandError(f"{p}: reference raster lacks band(s) {', '.join(missing)} (has {', '.join(descr)})")
            self.band_idx = [descr.index(b) + 1 for b in patch_bands]
            self.bands = tuple(patch_bands)
        else:
            self.band_idx = list(range(1, len(descr) + 1))
            self.bands = tuple(descr)
        self.path = p
        self.name = str(p)

    def read(self, obs_big: Observations | None, win: Window) -> np.ndarray:
        if self.path is None:
            bi = [obs_big.band_names.index(b) for b in self.source_bands]
            return seasonal_composite(obs_big.reflectance[:, bi], obs_big.valid, obs_big.dates, self.groups)
        import rasterio

        with rasterio.open(self.path) as ds:
            data = ds.read(self.band_idx, window=win).astype(np.float32)
        if self.nodata is not None and not math.isnan(self.nodata):
            data[data == self.nodata] = np.nan
        return data


# ============================================================================ sampling
def _window_of(block: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (r // block) * 1_000_000 + (c // block)


def sample_pixels(
    ts: TimeSeries,
    n: int | None = None,
    *,
    labels: LabelMap | np.ndarray | None = None,
    per_class: int | None = None,
    indices: Sequence[str] = DEFAULT_INDICES,
    min_valid: int = 3,
    target_dates: Sequence[dt.date] | None = None,
    patch_size: int | None = DEFAULT_PATCH_SIZE,
    patch_bands: Sequence[str] | None = None,
    reference: str | os.PathLike | None = "median",
    mask: np.ndarray | None = None,
    seed: int = 0,
    block: int = 256,
    progress: bool | Callable[[float], None] = False,
) -> PixelSamples:
    """Sample pixels of a stack with their index series and reference-image patches.

    Args:
        ts: the time series.
        n: random mode: number of pixels to draw uniformly among the pixels with at least
            ``min_valid`` valid observations (None: all of them).
        labels: stratified mode: a :class:`LabelMap` (or an (H, W) array of class ids, 0 =
            unlabelled); only labelled pixels are sampled.
        per_class: stratified mode: at most this many pixels per class (None: all).
        indices: index channels of the series.
        min_valid: pixels with fewer valid observations are excluded.
        target_dates: resample the series onto these dates (a model's date grid); None keeps the
            acquisition dates.
        patch_size: side k of the patches; 0 / None for no patches.
        patch_bands: bands of the patches (default: every band of the stack, or of the
            reference raster).
        reference: ``"median"`` (the stack's cloud-free median composite, default),
            ``"seasonal:K"`` (K composites of consecutive periods, :func:`seasonal_composite`) or the path
            of a raster on the same grid.
        mask: optional (H, W) bool: random mode draws only where True (e.g. to keep test
            fields out of pretraining).
        seed: the random draw (the same seed gives the same sample).
        block: window side for reading.
        progress: show a tqdm bar (True) or call ``progress(fraction)``.

    Returns:
        :class:`PixelSamples`, pixels in random order (stratified: classes interleaved).

    Raises:
        BandError: the stack lacks a band the indices or patches need.
        ConfigError: bad sizes. InputError: no pixel with enough valid observations.
    """
    indices = tuple(str(i).lower() for i in indices)
    H, W = ts.grid.height, ts.grid.width
    k = int(patch_size or 0)
    if k < 0 or k > 255:
        raise ConfigError(f"patch_size must be between 0 and 255; got {patch_size}")
    if n is not None and (isinstance(n, bool) or int(n) < 1):
        raise ConfigError(f"number of samples must be >= 1; got {n}")
    idx_bands = tuple(b for b in ts.band_names if b in required_bands(indices))
    ts.require_bands(required_bands(indices))
    ref = _Reference(ts, reference, patch_bands) if k else None
    read_bands = tuple(b for b in ts.band_names if b in set(idx_bands) | set(ref.source_bands if ref and ref.path is None else ()))
    rng = np.random.default_rng([int(seed), 0x5A3])

    # ---- candidates (over-sampled: some will turn out to have too few valid observations)
    lab_arr = labels.array if isinstance(labels, LabelMap) else labels
    if lab_arr is not None:
        lab_arr = np.asarray(lab_arr)
        if lab_arr.shape != (H, W):
            raise InputError(f"label array has shape {lab_arr.shape}; the series is {H}x{W}")
        flat = lab_arr.ravel()
        cand_parts, quota = [], {}
        for cid in np.unique(flat[flat > 0]):
            where = np.flatnonzero(flat == cid)
            rng.shuffle(where)
            if per_class is not None:
                quota[int(cid)] = int(per_class)
                where = where[: int(math.ceil(per_class * 1.5)) + 32]
            cand_parts.append(where)
        if not cand_parts:
            raise InputError(f"{getattr(labels, 'source', '') or 'labels'}: no labelled pixel (all 0)")
        cand = np.concatenate(cand_parts)
    else:
        allowed = None if mask is None else np.flatnonzero(np.asarray(mask, bool).ravel())
        pool = H * W if allowed is None else allowed.size
        if pool == 0:
            raise InputError("sampling mask excludes every pixel")
        want = pool if n is None else min(pool, int(math.ceil(int(n) * 1.3)) + 64)
        pick = rng.choice(pool, size=want, replace=False) if want < pool else rng.permutation(pool)
        cand = pick if allowed is None else allowed[pick]
    cr, cc = cand // W, cand % W

    # ---- windowed read of the windows that hold candidates
    wid = _window_of(block, cr, cc)
    order = np.argsort(wid, kind="stable")
    uniq, starts = np.unique(wid[order], return_index=True)
    bounds = list(starts) + [order.size]
    kept_pos: list[np.ndarray] = []
    ser_parts: list[np.ndarray] = []
    patch_parts: list[np.ndarray] = []
    nv_parts: list[np.ndarray] = []
    out_dates: tuple[dt.date, ...] = tuple(target_dates) if target_dates is not None else ts.dates
    report = _progress(progress, len(uniq), "sampling")
    before, after = k // 2, k - 1 - k // 2
    for wi in range(len(uniq)):
        sel = order[bounds[wi]:bounds[wi + 1]]
        br, bc = int(cr[sel[0]] // block) * block, int(cc[sel[0]] // block) * block
        win = Window(bc, br, min(block, W - bc), min(block, H - br))
        h, w = int(win.height), int(win.width)
        if k:
            big = Window(max(0, bc - before), max(0, br - before), 0, 0)
            c1, r1 = min(W, bc + w + after), min(H, br + h + after)
            big = Window(int(big.col_off), int(big.row_off), c1 - int(big.col_off), r1 - int(big.row_off))
        else:
            big = win
        obs_big = ts.read(big, bands=read_bands)
        ro, co = br - int(big.row_off), bc - int(big.col_off)
        obs = Observations(obs_big.reflectance[:, :, ro:ro + h, co:co + w], obs_big.valid[:, ro:ro + h, co:co + w],
                           obs_big.band_names, obs_big.dates, win)
        idx_pos = [obs.band_names.index(b) for b in idx_bands]
        obs_idx = Observations(obs.reflectance[:, idx_pos], obs.valid, idx_bands, obs.dates, win)
        ser = index_series(obs_idx, indices, min_valid=min_valid, target_dates=target_dates)
        lr, lc = cr[sel] - br, cc[sel] - bc
        ok = ser.ok[lr, lc]
        sel, lr, lc = sel[ok], lr[ok], lc[ok]
        if sel.size:
            kept_pos.append(sel)
            ser_parts.append(np.moveaxis(ser.filled[:, :, lr, lc], -1, 0).astype(np.float32))
            nv_parts.append(ser.n_valid[lr, lc].astype(np.int64))
            if k:
                img = ref.read(obs_big, big)
                img = _reflect_pad(
                    img, before - (br - int(big.row_off)), (br + h + after) - (int(big.row_off) + int(big.height)),
                    before - (bc - int(big.col_off)), (bc + w + after) - (int(big.col_off) + int(big.width)),
                )
                patch_parts.append(_patches_at(img, lr, lc, k))
        del obs_big, obs, obs_idx, ser
        report(wi + 1)
    report(None)
    if not kept_pos:
        raise InputError(
            f"{ts.source}: no sampled pixel has {min_valid} or more valid observations "
            f"(lower min_valid, or check the quality mask)"
        )
    pos = np.concatenate(kept_pos)
    series = np.concatenate(ser_parts)
    nvalid = np.concatenate(nv_parts)
    patches = np.concatenate(patch_parts) if k else None

    # ---- back to the random order of the candidates, then trim to the quotas
    back = np.argsort(pos, kind="stable")
    pos, series, nvalid = pos[back], series[back], nvalid[back]
    patches = None if patches is None else patches[back]
    rows, cols = cr[pos], cc[pos]
    labs = lab_arr[rows, cols].astype(np.int64) if lab_arr is not None else np.zeros(pos.size, np.int64)
    if lab_arr is not None:
        keep = np.zeros(pos.size, bool)
        for cid in np.unique(labs):
            where = np.flatnonzero(labs == cid)
            q = quota.get(int(cid))
            keep[where if q is None else where[:q]] = True
        # interleave classes: a random permutation of the kept pixels
        keep_idx = np.flatnonzero(keep)
        keep_idx = keep_idx[rng.permutation(keep_idx.size)]
    else:
        keep_idx = np.arange(pos.size) if n is None else np.arange(min(int(n), pos.size))
    out = PixelSamples(
        series=np.ascontiguousarray(series[keep_idx]),
        patches=None if patches is None else np.ascontiguousarray(patches[keep_idx]),
        labels=labs[keep_idx],
        rows=rows[keep_idx].astype(np.int64),
        cols=cols[keep_idx].astype(np.int64),
        n_valid=nvalid[keep_idx],
        indices=indices,
        patch_bands=ref.bands if ref else (),
        dates=out_dates,
        sources=(str(ts.source),),
        source_dates=(out_dates,),
        reference=ref.name if ref else "",
    )
    return out


def _progress(progress: bool | Callable[[float], None], total: int, desc: str) -> Callable[[int | None], None]:
    if callable(progress):
        return lambda i: progress(1.0 if i is None else i / max(total, 1))
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="window", leave=False)

        def upd(i: int | None) -> None:
            if i is None:
                bar.close()
            else:
                bar.update(i - bar.n)

        return upd
    return lambda i: None
