"""Label maps: a class id per pixel of the series' grid.

Labels come from a single-band raster of class ids on the grid of the series (0 / nodata =
unlabelled), or from a vector file (GeoPackage, shapefile, GeoJSON, ...) whose polygons or points
carry the class in a field, rasterised onto the grid (:func:`read_labels`; a point labels the
pixel it falls in; features whose class is empty, such as the points ``pimc suggest`` writes
before the analyst fills them in, are skipped with a warning). Several files are merged onto the
grid by :func:`read_label_files`; a pixel two files give different classes is an error naming it.
Class ids are 1..255; names and colours come from a class table (:mod:`pimc_core.io.classes`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.classes import default_class_table, normalise_class_table
from pimc_core.io.grid import Grid
from pimc_core.io.input_files import local_path
from pimc_core.io.vector import read_vector, reproject_geometries

__all__ = ["LabelMap", "read_label_files", "read_labels"]

_VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".kml", ".gml", ".sqlite")


@dataclass
class LabelMap:
    """A class id per pixel of a grid (0 = unlabelled).

    Attributes:
        array: (H, W) uint8 class ids (1..255).
        classes: ``[{"id", "name", "color"}]`` of the ids present (from the class table, the
            vector's class names, or ``class N``).
        source: the file the labels came from (files: joined with ", ").
        named: the file gave class names, numbered here (not ids).
        warnings: lines about what was skipped (features without a class).
    """

    array: np.ndarray
    classes: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    named: bool = False
    warnings: list[str] = field(default_factory=list)

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
    p = local_path(path, "label file")
    if not p.exists():
        raise InputError(f"{p}: label file not found")
    table = [dict(c) for c in classes] if classes else None
    warnings: list[str] = []
    if _is_vector(p):
        arr, names = _rasterize_vector(p, grid, class_field, table, all_touched, warnings)
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
        out_classes = normalise_class_table([{"id": i, "name": names.get(i)} for i in ids])
    else:
        out_classes = default_class_table(ids)
    return LabelMap(arr, out_classes, str(p), named=bool(names), warnings=warnings)


def _is_vector(p: Path) -> bool:
    return p.suffix.lower() in _VECTOR_SUFFIXES or p.is_dir()


def read_label_files(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    grid: Grid,
    *,
    class_field: str | None = None,
    classes: Sequence[Mapping[str, Any]] | None = None,
    all_touched: bool = False,
) -> LabelMap:
    """The labels of one or several files (rasters and vectors mixed), merged onto ``grid``.

    Each file is read by :func:`read_labels` (``class_field`` applies to the vector files). A
    pixel labelled by several files must have the same class in each. Without a class table,
    files of class ids keep their ids and files of class names share one numbering (ids 1..K in
    alphabetical order of all their names); mixing the two needs ``classes``.

    Raises:
        ConfigError: a pixel given two different classes (naming its row / column, map x / y
            and both files), names mixed with ids without a class table; as :func:`read_labels`.
    """
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not files:
        raise InputError("no label file given")
    vector = [_is_vector(Path(local_path(f, "label file"))) for f in files]
    if class_field and not any(vector):
        return read_labels(files[0], grid, class_field=class_field, classes=classes, all_touched=all_touched)
    maps = [read_labels(f, grid, class_field=class_field if v else None, classes=classes, all_touched=all_touched)
            for f, v in zip(files, vector)]
    if len(maps) == 1:
        return maps[0]
    table = _merged_classes(maps, classes)
    out = np.zeros((grid.height, grid.width), np.uint8)
    owner = np.full(out.shape, -1, np.int16)  # which file labelled each pixel
    for i, lm in enumerate(maps):
        clash = (out > 0) & (lm.array > 0) & (out != lm.array)
        if clash.any():
            r, c = (int(v[0]) for v in np.nonzero(clash))
            x, y = grid.xy(r, c)
            names = {int(t["id"]): t["name"] for t in table}
            a, b = int(out[r, c]), int(lm.array[r, c])
            raise ConfigError(
                f"labels disagree at row {r}, col {c} (x {x:.6g}, y {y:.6g}): class {a} ({names.get(a)}) in "
                f"{maps[owner[r, c]].source}, class {b} ({names.get(b)}) in {lm.source}"
                + (f"; {int(clash.sum())} pixels disagree" if clash.sum() > 1 else "")
            )
        new = (lm.array > 0) & (out == 0)
        out[new] = lm.array[new]
        owner[new] = i
    present = {int(i) for i in np.unique(out) if i > 0}
    return LabelMap(out, [t for t in table if int(t["id"]) in present] if classes is None else table,
                    ", ".join(m.source for m in maps), named=any(m.named for m in maps),
                    warnings=[w for m in maps for w in m.warnings])


def _merged_classes(maps: list[LabelMap], classes: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The class table of merged label maps; renumbers the maps of class names in place."""
    if classes:
        return [dict(c) for c in classes]
    named = [m for m in maps if m.named]
    if not named:
        ids = sorted({i for m in maps for i in m.counts()})
        return default_class_table(ids)
    ided = [m for m in maps if not m.named]
    if ided:
        raise ConfigError(f"{named[0].source} gives class names and {ided[0].source} class ids; give a class table "
                          f"(--classes) to match them")
    names = sorted({str(c["name"]) for m in named for c in m.classes})
    if len(names) > 255:
        raise ConfigError(f"{len(names)} different class names in {', '.join(m.source for m in named)}; at most 255")
    new_id = {n: i + 1 for i, n in enumerate(names)}
    for m in named:
        lut = np.zeros(256, np.uint8)
        for c in m.classes:
            lut[int(c["id"])] = new_id[str(c["name"])]
        m.array = lut[m.array]
    return normalise_class_table([{"id": i, "name": n} for n, i in new_id.items()])


def _read_label_raster(p: Path, grid: Grid) -> np.ndarray:
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(p) as ds:
            other = Grid(ds.crs if ds.crs else None, ds.transform, ds.width, ds.height)
            diff = grid.difference(other)
            if diff:
                raise InputError(f"{p}: label raster has {diff}; it must be on the grid of the series")
            if ds.count != 1:
                raise InputError(f"{p}: label raster has {ds.count} bands; give a single-band raster of class ids")
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
    p: Path, grid: Grid, class_field: str | None, table: list[dict] | None, all_touched: bool, warnings: list[str]
) -> tuple[np.ndarray, dict[int, str]]:
    from rasterio import features

    geoms, values, blank = _read_vector(p, grid, class_field)
    names: dict[int, str] = {}
    if not geoms and blank:
        raise InputError(f"{p}: the '{class_field}' of every feature ({blank}) is empty; fill in the classes first "
                         f"(e.g. of the points pimc suggest wrote)")
    if not geoms:
        raise InputError(f"{p}: no features with a geometry and a '{class_field}' value")
    if blank:
        warnings.append(f"{p}: {blank} of {blank + len(geoms)} features have no '{class_field}' value; "
                        f"they are left unlabelled")
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


def _read_vector(p: Path, grid: Grid, class_field: str | None) -> tuple[list[dict], list[Any], int]:
    """GeoJSON-like geometries in the grid's CRS, their class values, and how many features had none."""
    if not class_field:
        fields = read_vector(p).fields
        raise ConfigError(f"{p}: give the attribute holding the class with --class-field (fields: {', '.join(fields) or 'none'})")
    vec = read_vector(p, field=class_field)
    geoms = vec.geometries
    if vec.crs is not None and grid.crs is not None:
        geoms = reproject_geometries(geoms, vec.crs, grid.crs, p.name)
    return geoms, list(vec.values or []), vec.blank
