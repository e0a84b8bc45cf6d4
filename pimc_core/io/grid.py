"""The pixel grid of a raster time series: CRS, affine transform and shape, and where a point or a
box falls on it (:meth:`Grid.rowcol`, :func:`window_of_bounds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from pimc_core.errors import ConfigError, InputError

__all__ = ["Grid", "crs_name", "parse_crs", "window_of_bounds"]


@dataclass(frozen=True)
class Grid:
    """The pixel grid shared by every date: CRS, affine transform and shape."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid's CRS."""
        return _bounds(self)

    def difference(self, other: "Grid") -> str | None:
        """A short description of how ``other`` differs from this grid, or None if equal."""
        if (self.crs is None) != (other.crs is None) or (
            self.crs is not None and other.crs is not None and self.crs != other.crs
        ):
            return f"CRS {crs_name(other.crs)} instead of {crs_name(self.crs)}"
        if (self.height, self.width) != (other.height, other.width):
            return f"shape {other.height}x{other.width} instead of {self.height}x{self.width}"
        if not self.transform.almost_equals(other.transform, precision=1e-6 * abs(self.transform.a or 1)):
            return f"transform {tuple(other.transform)[:6]} instead of {tuple(self.transform)[:6]}"
        return None

    def full_window(self) -> Window:
        """The window covering the whole grid."""
        return Window(0, 0, self.width, self.height)

    def window_transform(self, window: Window) -> Affine:
        """The affine transform of a window of this grid."""
        return rasterio.windows.transform(window, self.transform)

    def windows(self, block: int = 256) -> Iterator[Window]:
        """Row-major blocks of at most ``block``×``block`` pixels covering the grid."""
        for r in range(0, self.height, block):
            for c in range(0, self.width, block):
                yield Window(c, r, min(block, self.width - c), min(block, self.height - r))

    def rowcol(self, x: float, y: float, crs: str | CRS | None = None) -> tuple[int, int]:
        """Row and column of the pixel holding point (x, y).

        Args:
            x, y: coordinates in ``crs`` (the grid's CRS when None).

        Raises:
            ConfigError: unknown CRS. InputError: (x, y) are not coordinates of ``crs`` (e.g.
                metres given with ``EPSG:4326``), or the point lies outside the raster; the
                message names the values and the CRS.
        """
        if not (np.isfinite(x) and np.isfinite(y)):
            raise InputError(f"point ({x}, {y}): coordinates must be finite numbers")
        given = format_xy(x, y) + (f" in {crs_name(parse_crs(crs))}" if crs is not None else "")
        if crs is not None:
            src = parse_crs(crs)
            if self.crs is not None and src != self.crs:
                x, y = _to_crs(x, y, src, self.crs)
                given += f", {format_xy(x, y)} in {crs_name(self.crs)}"
        col_f, row_f = ~self.transform @ (x, y)
        row, col = int(np.floor(row_f)), int(np.floor(col_f))
        if not (0 <= row < self.height and 0 <= col < self.width):
            xmin, ymin, xmax, ymax = self.bounds
            raise InputError(
                f"point {given} is outside the raster "
                f"(bounds {', '.join(format_coord(v) for v in (xmin, ymin, xmax, ymax))} in {crs_name(self.crs)})"
            )
        return row, col

    def xy(self, row: int, col: int) -> tuple[float, float]:
        """Coordinates of the centre of pixel (row, col) in the grid's CRS."""
        x, y = self.transform @ (col + 0.5, row + 0.5)
        return float(x), float(y)


def format_coord(v: float) -> str:
    """A coordinate for a message: metres to 0.1 ("4900190.5", "600050"; never "4.90019e+06"),
    small values (degrees) with up to 6 decimals."""
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    text = f"{v:.1f}" if abs(v) >= 1000 else f"{v:.6f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_xy(x: float, y: float) -> str:
    """``(x, y)`` with :func:`format_coord`."""
    return f"({format_coord(x)}, {format_coord(y)})"


def _bounds(g: Grid) -> tuple[float, float, float, float]:
    xs, ys = [], []
    for c, r in ((0, 0), (g.width, 0), (0, g.height), (g.width, g.height)):
        x, y = g.transform @ (c, r)
        xs.append(x)
        ys.append(y)
    return min(xs), min(ys), max(xs), max(ys)


def _to_crs(x: float, y: float, src: CRS, dst: CRS) -> tuple[float, float]:
    """Point (x, y) of ``src`` in ``dst``; InputError when (x, y) are not coordinates of ``src``."""
    from rasterio.warp import transform as warp_transform

    where = f"point {format_xy(x, y)} is not a valid position in {crs_name(src)}"
    if src.is_geographic and not (-180 <= x <= 180 and -90 <= y <= 90):
        raise InputError(f"{where}: longitude must lie in [-180, 180] and latitude in [-90, 90] degrees "
                         "(are x and y in another CRS? give that one with --crs)")
    try:
        xs, ys = warp_transform(src, dst, [x], [y])
    except Exception as e:  # noqa: BLE001 - GDAL/PROJ raise CPLE_* errors: the point is not in src's domain
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{where}: it cannot be placed in the raster's {crs_name(dst)} ({text})") from None
    if not (np.isfinite(xs[0]) and np.isfinite(ys[0])):
        raise InputError(f"{where}: it cannot be placed in the raster's {crs_name(dst)}")
    return float(xs[0]), float(ys[0])


def crs_name(crs: CRS | None) -> str:
    if crs is None:
        return "none"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def parse_crs(crs: str | CRS) -> CRS:
    if isinstance(crs, CRS):
        return crs
    try:
        with rasterio.Env():  # PROJ's "crs not found" goes to Python logging, not printed on stderr
            return CRS.from_user_input(crs)
    except Exception:  # rasterio raises CRSError; any failure means the same to the user
        raise ConfigError(f"unknown CRS '{crs}' (use e.g. EPSG:4326)") from None


def window_of_bounds(grid: Grid, bounds: tuple[float, float, float, float], crs: str | CRS | None = None) -> Window:
    """The smallest window of ``grid`` covering ``bounds`` (xmin, ymin, xmax, ymax) in ``crs``.

    Raises:
        InputError: the box does not overlap the raster. ConfigError: unknown CRS or xmin ≥ xmax.
    """
    xmin, ymin, xmax, ymax = bounds
    if not (xmin < xmax and ymin < ymax):
        raise ConfigError(f"bbox must have xmin < xmax and ymin < ymax (got {bounds})")
    if crs is not None and grid.crs is not None and parse_crs(crs) != grid.crs:
        from rasterio.warp import transform_bounds

        try:
            xmin, ymin, xmax, ymax = transform_bounds(parse_crs(crs), grid.crs, xmin, ymin, xmax, ymax)
        except Exception as e:  # noqa: BLE001 - GDAL/PROJ CPLE_* errors: the box is not in that CRS's domain
            text = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"bbox {bounds} is not a valid box in {crs_name(parse_crs(crs))} ({text})") from None
        if not np.isfinite([xmin, ymin, xmax, ymax]).all():
            raise InputError(f"bbox {bounds} is not a valid box in {crs_name(parse_crs(crs))}")
    win = rasterio.windows.from_bounds(xmin, ymin, xmax, ymax, grid.transform)
    c0 = max(0, int(np.floor(win.col_off + 1e-9)))
    r0 = max(0, int(np.floor(win.row_off + 1e-9)))
    c1 = min(grid.width, int(np.ceil(win.col_off + win.width - 1e-9)))
    r1 = min(grid.height, int(np.ceil(win.row_off + win.height - 1e-9)))
    if c1 <= c0 or r1 <= r0:
        gx = grid.bounds
        raise InputError(f"bbox {bounds} does not overlap the raster (bounds {tuple(round(v, 3) for v in gx)})")
    return Window(c0, r0, c1 - c0, r1 - r0)
