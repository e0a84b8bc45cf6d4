"""A class map as the strata of an accuracy assessment: its classes, their pixel counts, the pixel
area, and the class under given points.

A class map is a one-band integer GeoTIFF (``pimc classify``'s ``classes.tif`` or any other); 0
and the band's nodata value are "no class". It is read strip by strip, so a map larger than
memory can be counted and sampled.

The strata of a sample drawn with other strata than the map classes (Stehman 2014) are a second
raster of the same kind on the map's grid (:func:`open_strata`); :func:`strata_counts` counts
the pixels of each stratum that the map classifies, the population such a sample represents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from pimc_core.errors import InputError

__all__ = ["ClassMap", "StrataCounts", "open_class_map", "open_strata", "strata_counts"]

#: rows read at a time
STRIP_ROWS = 512


@dataclass(frozen=True)
class ClassMap:
    """The strata of a class map.

    Attributes:
        path: the GeoTIFF.
        crs, transform: its grid; ``height`` × ``width`` pixels.
        nodata: the band's nodata value (None: none); 0 is never a class either.
        classes: (q,) the class ids present, ascending.
        pixels: (q,) mapped pixels of each class.
        pixel_area_m2: the area of one pixel in square metres (None when the CRS is not
            projected in a linear unit, or missing).
    """

    path: Path
    crs: CRS | None
    transform: Affine
    height: int
    width: int
    nodata: float | None
    classes: np.ndarray
    pixels: np.ndarray
    pixel_area_m2: float | None

    def is_class(self, values: np.ndarray) -> np.ndarray:
        """(…) bool: which map values are classes (not 0, not nodata)."""
        ok = values != 0
        if self.nodata is not None:
            ok &= values != self.nodata
        return ok

    def strips(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, (rows, width) values) of the map, strip by strip."""
        import rasterio
        from rasterio.windows import Window

        with rasterio.open(self.path) as src:
            for r0 in range(0, self.height, STRIP_ROWS):
                h = min(STRIP_ROWS, self.height - r0)
                yield r0, src.read(1, window=Window(0, r0, self.width, h))

    def values_at(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The map value under (n, 2) points in the map's CRS: ((n,) values, (n,) bool inside the map)."""
        import rasterio

        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        colf, rowf = ~self.transform @ (xy[:, 0], xy[:, 1])
        col, row = np.floor(colf).astype(np.int64), np.floor(rowf).astype(np.int64)
        inside = (col >= 0) & (col < self.width) & (row >= 0) & (row < self.height)
        values = np.zeros(len(xy), dtype=np.int64)
        if inside.any():
            with rasterio.open(self.path) as src:
                for k in np.flatnonzero(inside):
                    values[k] = src.read(1, window=((row[k], row[k] + 1), (col[k], col[k] + 1)))[0, 0]
        return values, inside


def _pixel_area(crs: CRS | None, transform: Affine) -> float | None:
    if crs is None or not crs.is_projected:
        return None
    try:
        factor = float(crs.linear_units_factor[1])
    except Exception:
        return None
    return abs(transform.a * transform.e - transform.b * transform.d) * factor**2


def open_class_map(path: str | os.PathLike) -> ClassMap:
    """Read a class map's grid and count the pixels of each class.

    Raises:
        InputError: not a raster, not one integer band, or no classified pixel.
    """
    import rasterio

    path = Path(path)
    try:
        src = rasterio.open(path)
    except Exception as e:  # RasterioIOError, a folder …: one line naming the file
        raise InputError(f"{path}: cannot read as a raster ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    with src:
        if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise InputError(f"{path}: a class map is one integer band; this raster has {src.count} band(s) of "
                             f"{src.dtypes[0]}")
        cmap = ClassMap(path, src.crs, src.transform, src.height, src.width, src.nodata,
                        np.empty(0, np.int64), np.empty(0, np.int64), _pixel_area(src.crs, src.transform))
    total: dict[int, int] = {}
    for _, strip in cmap.strips():
        ids, n = np.unique(strip[cmap.is_class(strip)], return_counts=True)
        for i, c in zip(ids.tolist(), n.tolist()):
            total[i] = total.get(i, 0) + c
    if not total:
        raise InputError(f"{path}: no classified pixel (every pixel is 0 or nodata)")
    classes = np.array(sorted(total), dtype=np.int64)
    return ClassMap(**{**cmap.__dict__, "classes": classes, "pixels": np.array([total[c] for c in classes.tolist()])})


def open_strata(path: str | os.PathLike, cmap: ClassMap) -> ClassMap:
    """Open a strata raster (one integer band; 0 and nodata are no stratum) on the grid of ``cmap``.

    Raises:
        InputError: not a class raster, or another CRS, transform or size than the map.
    """
    strata = open_class_map(path)
    here = (strata.crs, tuple(strata.transform)[:6], strata.height, strata.width)
    there = (cmap.crs, tuple(cmap.transform)[:6], cmap.height, cmap.width)
    if here != there:
        def grid(g):
            return f"{g[3]}x{g[2]} px, {g[0].to_string() if g[0] else 'no CRS'}, origin {g[1][2]:g},{g[1][5]:g}, pixel {g[1][0]:g}"
        raise InputError(f"{strata.path}: the strata raster is on another grid ({grid(here)}) than the map "
                         f"{cmap.path} ({grid(there)}); resample it onto the map's grid")
    return strata


@dataclass(frozen=True)
class StrataCounts:
    """The population of a sample stratified by ``strata``: the pixels with a map class and a stratum.

    Attributes:
        strata: (H,) stratum ids; ``pixels``: (H,) their classified pixels ``N_h``.
        map_pixels: (q,) pixels of each of the map's classes (``cmap.classes``) that have a stratum.
        without_stratum: classified map pixels outside every stratum (not in the population).
    """

    strata: np.ndarray
    pixels: np.ndarray
    map_pixels: np.ndarray
    without_stratum: int


def strata_counts(cmap: ClassMap, strata: ClassMap) -> StrataCounts:
    """Count, strip by strip, the map's classified pixels per stratum and per map class within the strata."""
    import rasterio
    from rasterio.windows import Window

    per_stratum = np.zeros(len(strata.classes), dtype=np.int64)
    per_class = np.zeros(len(cmap.classes), dtype=np.int64)
    without = 0
    with rasterio.open(strata.path) as src:
        for r0, values in cmap.strips():
            s = src.read(1, window=Window(0, r0, cmap.width, values.shape[0]))
            classified = cmap.is_class(values)
            inside = classified & strata.is_class(s)
            without += int((classified & ~inside).sum())
            per_stratum += np.bincount(np.searchsorted(strata.classes, s[inside]), minlength=len(per_stratum))
            per_class += np.bincount(np.searchsorted(cmap.classes, values[inside]), minlength=len(per_class))
    return StrataCounts(strata.classes, per_stratum, per_class, without)
