"""A class map as the strata of an accuracy assessment: its classes, their pixel counts, the pixel
area, and the class under given points.

A class map is a one-band integer GeoTIFF (``pimc classify``'s ``classes.tif`` or any other); 0
and the band's nodata value are "no class". It is read strip by strip, so a map larger than
memory can be counted and sampled.
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

__all__ = ["ClassMap", "open_class_map"]

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
