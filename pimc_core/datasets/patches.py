"""Image patches around pixels: the ``k x k`` window around each pixel of a ``(C, H, W)`` image,
reflect-padded at the borders (the spatial input of the patch encoders).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.series.composites import patches_at

__all__ = ["extract_patches"]


def extract_patches(image: np.ndarray, rows: Any, cols: Any, size: int) -> np.ndarray:
    """The ``size × size`` window around each pixel, reflect-padded at the image borders.

    The window of pixel ``(r, c)`` covers rows ``r - size // 2 .. r - size // 2 + size - 1``
    (likewise for columns), so the pixel is at the centre for odd ``size`` and at index
    ``size // 2`` for even ``size``. Outside the image, values are mirrored without repeating
    the edge (``numpy.pad(mode="reflect")``; a 1-pixel-wide axis repeats its only value).

    Args:
        image: ``(C, H, W)`` array.
        rows: ``(N,)`` row indices.
        cols: ``(N,)`` column indices.
        size: Window side k >= 1.

    Returns:
        ``(N, C, k, k)`` array, dtype of ``image``.

    Raises:
        ConfigError: ``size`` < 1.
        InputError: ``image`` is not 3-D, or a row/column is outside the image.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"patch size must be an integer >= 1; got {size!r}")
    size = int(size)
    img = np.asarray(image)
    if img.ndim != 3:
        raise InputError(f"image must have shape (C, H, W); got {img.shape}")
    C, H, W = img.shape
    r = np.asarray(rows, dtype=np.int64).reshape(-1)
    c = np.asarray(cols, dtype=np.int64).reshape(-1)
    if r.shape != c.shape:
        raise InputError(f"rows and cols differ in length ({r.size} vs {c.size})")
    bad = (r < 0) | (r >= H) | (c < 0) | (c >= W)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"pixel (row {r[i]}, col {c[i]}) is outside the {H}x{W} image")
    before, after = size // 2, size - 1 - size // 2
    mode = "reflect" if min(H, W) > 1 else "edge"
    padded = np.pad(img, ((0, 0), (before, after), (before, after)), mode=mode)
    return patches_at(padded, r, c, size, dtype=None)

