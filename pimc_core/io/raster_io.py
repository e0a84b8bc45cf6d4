"""Writing GeoTIFFs safely: to a temporary file beside the target, renamed only on success, so
a cancelled or failed job never leaves a half-written output at the path a user sees.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from pimc_core.errors import InputError
from pimc_core.io.atomic import atomic_path, os_error_message
from pimc_core.io.grid import Grid


def geotiff_profile(grid: Grid, count: int, dtype: str, nodata: float | None, window: Window | None = None) -> dict:
    """A tiled, deflate-compressed GeoTIFF profile on ``grid`` (or one of its windows)."""
    transform = grid.transform if window is None else grid.window_transform(window)
    height = grid.height if window is None else int(window.height)
    width = grid.width if window is None else int(window.width)
    prof = dict(
        driver="GTiff", width=width, height=height, count=count, dtype=dtype, crs=grid.crs,
        transform=transform, nodata=nodata, compress="deflate", interleave="band", BIGTIFF="IF_SAFER",
    )
    if width >= 16 and height >= 16:
        bs = 256 if min(width, height) >= 256 else 16 * max(1, min(width, height) // 16)
        prof.update(tiled=True, blockxsize=bs, blockysize=bs)
    if np.dtype(dtype).kind == "f":
        prof["predictor"] = 2 if np.dtype(dtype).itemsize <= 4 else 1
    return prof


@contextlib.contextmanager
def open_geotiff_writer(
    path: str | os.PathLike,
    grid: Grid,
    count: int,
    dtype: str,
    *,
    nodata: float | None = None,
    window: Window | None = None,
    descriptions: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> Iterator[rasterio.io.DatasetWriter]:
    """Open a GeoTIFF for windowed writing; it appears at ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp:
        try:
            with rasterio.open(tmp, "w", **geotiff_profile(grid, count, dtype, nodata, window)) as dst:
                if descriptions:
                    for i, d in enumerate(descriptions, start=1):
                        dst.set_band_description(i, d)
                if tags:
                    dst.update_tags(**tags)
                if colormap:
                    dst.write_colormap(1, colormap)
                yield dst
        except RasterioError as e:
            raise InputError(os_error_message(e, path)) from None


def write_geotiff(path: str | os.PathLike, array: np.ndarray, grid: Grid, **options: Any) -> Path:
    """Write a (B, H, W) or (H, W) array as a GeoTIFF on ``grid`` (or a window of it), atomically.

    ``options``: the keywords of :func:`open_geotiff_writer` (``nodata``, ``window``,
    ``descriptions``, ``tags``, ``colormap``).
    """
    arr = array[None] if array.ndim == 2 else array
    with open_geotiff_writer(path, grid, arr.shape[0], arr.dtype.name, **options) as dst:
        dst.write(arr)
    return Path(path)
