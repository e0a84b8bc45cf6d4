"""Regions of a raster grid: where a map is computed.

A :class:`Region` is a window of the source grid plus, optionally, polygons (in the grid's CRS)
whose inside is processed; pixels outside them are nodata in every output. Regions come from

* the whole raster (:func:`whole_region`);
* a bounding box ``xmin ymin xmax ymax`` in any CRS (:func:`bbox_region`);
* one pixel, from a point in any CRS (:func:`point_region`);
* polygons: WKT (:func:`wkt_region`), GeoJSON text or objects (:func:`geojson_region`), or any
  vector file OGR reads — GeoPackage, Shapefile, GeoJSON, KML … (:func:`vector_file_region`,
  through :func:`pimc_core.io.vector.read_vector`);
  :func:`parse_region` picks the right one for a command-line string.

A pixel is inside a polygon when its centre is (``all_touched=True``: when the polygon touches
it). Masks are rasterised per block on demand, never for the whole raster, so a region of a huge
raster costs only its polygons' vertices in memory; a region pickles (Dask workers).

Coordinates: WKT without a CRS is taken in the raster's CRS; GeoJSON without a ``crs`` member in
EPSG:4326 (RFC 7946); a vector file in its own CRS (the raster's when the file has none). An
explicit ``crs`` argument overrides all of these.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
from rasterio.crs import CRS
from rasterio.windows import Window

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.grid import Grid, crs_name, parse_crs, window_of_bounds
from pimc_core.io.vector import (
    geojson_crs,
    geojson_geometries,
    geometry_coords,
    lonlat_problem,
    read_vector,
    reproject_bounds,
    reproject_geometries,
    reproject_points,
    wkt_geometry,
)

__all__ = [
    "Region",
    "bbox_region",
    "geojson_region",
    "geometry_region",
    "parse_region",
    "point_region",
    "vector_file_region",
    "whole_region",
    "wkt_region",
]

_POLYGONAL = ("Polygon", "MultiPolygon")
_WKT_PREFIXES = ("POLYGON", "MULTIPOLYGON", "GEOMETRYCOLLECTION", "CURVEPOLYGON", "MULTISURFACE", "SRID=")


@dataclass(frozen=True)
class Region:
    """A window of a grid, optionally restricted to the inside of polygons.

    Attributes:
        grid: the source grid.
        window: the bounding window in ``grid`` pixel coordinates; outputs cover exactly it.
        geometries: GeoJSON-like Polygon / MultiPolygon mappings in the grid's CRS, or None when
            every pixel of the window is inside.
        all_touched: rasterise every pixel a polygon touches instead of pixel centres.
        description: a short text for messages ("whole raster", "bbox …", "polygon …").
        n_pixels: number of pixels inside the region.
    """

    grid: Grid
    window: Window
    geometries: tuple[Mapping[str, Any], ...] | None = None
    all_touched: bool = False
    description: str = ""
    n_pixels: int = field(default=-1, compare=False)

    def __post_init__(self) -> None:
        w = self.window
        if not (0 <= w.col_off and 0 <= w.row_off and w.width > 0 and w.height > 0
                and w.col_off + w.width <= self.grid.width and w.row_off + w.height <= self.grid.height):
            raise InputError(f"region window {w} is outside the {self.grid.width}x{self.grid.height} raster")
        object.__setattr__(self, "window", Window(int(w.col_off), int(w.row_off), int(w.width), int(w.height)))
        if self.n_pixels < 0:
            object.__setattr__(self, "n_pixels", self._count_pixels())

    # ---------------------------------------------------------------- geometry of the outputs
    @property
    def width(self) -> int:
        return int(self.window.width)

    @property
    def height(self) -> int:
        return int(self.window.height)

    @property
    def out_grid(self) -> Grid:
        """The grid of the output maps: the region's window of the source grid."""
        return Grid(self.grid.crs, self.grid.window_transform(self.window), self.width, self.height)

    def windows(self, block: int = 256) -> Iterator[Window]:
        """Row-major blocks of at most ``block``×``block`` pixels covering the region's window,
        in source-grid pixel coordinates (blocks of the output grid are aligned to its origin)."""
        if int(block) <= 0:
            raise ConfigError(f"block must be a positive number of pixels (got {block})")
        c0, r0 = int(self.window.col_off), int(self.window.row_off)
        for win in self.out_grid.windows(int(block)):
            yield Window(c0 + int(win.col_off), r0 + int(win.row_off), int(win.width), int(win.height))

    def local(self, win: Window) -> Window:
        """A source-grid window expressed in the output grid's pixel coordinates."""
        return Window(int(win.col_off) - int(self.window.col_off), int(win.row_off) - int(self.window.row_off),
                      int(win.width), int(win.height))

    def mask(self, win: Window) -> np.ndarray | None:
        """(h, w) bool, True inside the region, for a source-grid window; None when the region has
        no polygons (every pixel inside)."""
        if self.geometries is None:
            return None
        from rasterio.features import geometry_mask

        return geometry_mask(
            list(self.geometries), out_shape=(int(win.height), int(win.width)),
            transform=self.grid.window_transform(win), all_touched=self.all_touched, invert=True,
        )

    def _count_pixels(self, block: int = 1024) -> int:
        if self.geometries is None:
            return self.width * self.height
        return int(sum(int(self.mask(w).sum()) for w in self.windows(block)))

    def __repr__(self) -> str:
        w = self.window
        return (f"Region({self.description or 'window'}: cols {int(w.col_off)}..{int(w.col_off + w.width) - 1}, "
                f"rows {int(w.row_off)}..{int(w.row_off + w.height) - 1}, {self.n_pixels} px)")


# ----------------------------------------------------------------------------- constructors
def whole_region(grid: Grid) -> Region:
    """Every pixel of the raster."""
    return Region(grid, grid.full_window(), description="whole raster")


def bbox_region(grid: Grid, bounds: Sequence[float], crs: str | CRS | None = None) -> Region:
    """The pixels of the smallest window covering ``bounds`` = (xmin, ymin, xmax, ymax).

    Args:
        bounds: in ``crs`` (the raster's CRS when None). A box in another CRS is reprojected to
            its enclosing box in the raster's CRS.

    Raises:
        ConfigError: unknown CRS, not four numbers, xmin ≥ xmax / ymin ≥ ymax, or numbers that
            cannot be coordinates in ``crs`` (metres given as longitude / latitude).
        InputError: the box does not overlap the raster.
    """
    try:
        b = tuple(float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ConfigError(f"bbox must be four numbers xmin ymin xmax ymax (got {bounds!r})") from None
    if len(b) != 4 or not all(np.isfinite(b)):
        raise ConfigError(f"bbox must be four finite numbers xmin ymin xmax ymax (got {bounds!r})")
    if not (b[0] < b[2] and b[1] < b[3]):
        raise ConfigError(f"bbox must have xmin < xmax and ymin < ymax (got {b})")
    crs = parse_crs(crs) if crs is not None else None
    where = f" ({crs_name(crs)})" if crs is not None else ""
    name = f"bbox {', '.join(f'{v:.12g}' for v in b)}{where}"
    in_grid = b
    if crs is not None and grid.crs is not None and crs != grid.crs:
        in_grid = reproject_bounds(b, crs, grid.crs, name, "--bbox-crs")
    try:
        win = window_of_bounds(grid, in_grid)
    except InputError:
        gx = grid.bounds
        raise InputError(f"{name} does not overlap the raster (bounds {', '.join(f'{v:.12g}' for v in gx)} "
                         f"in {crs_name(grid.crs)})") from None
    return Region(grid, win, description=name)


def point_region(grid: Grid, x: float, y: float, crs: str | CRS | None = None) -> Region:
    """The one pixel holding point (x, y) in ``crs`` (the raster's CRS when None).

    Raises:
        ConfigError: an unknown CRS, or numbers that cannot be coordinates in ``crs``.
        InputError: the point lies outside the raster.
    """
    x, y = float(x), float(y)
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ConfigError(f"point ({x:.12g}, {y:.12g}): the coordinates must be finite numbers")
    if crs is not None:
        src = parse_crs(crs)
        if grid.crs is not None and src != grid.crs:
            x, y = reproject_points([[x, y]], src, grid.crs, f"point ({x:.12g}, {y:.12g})", "--crs")[0]
    row, col = grid.rowcol(x, y)
    return Region(grid, Window(col, row, 1, 1), description=f"pixel row {row}, col {col}")


def geometry_region(
    grid: Grid,
    geometries: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    crs: str | CRS | None = None,
    *,
    all_touched: bool = False,
    name: str = "polygon",
) -> Region:
    """The pixels inside GeoJSON-like polygon geometries.

    Args:
        geometries: one Polygon / MultiPolygon mapping (``{"type": ..., "coordinates": ...}``) or
            an iterable of them; GeometryCollections are unpacked.
        crs: CRS of the coordinates (the raster's when None).
        all_touched: include every pixel the polygons touch, not only those whose centre is inside.
        name: how messages call the polygons (e.g. the file name).

    Raises:
        ConfigError: a geometry that is not a polygon, or an unknown CRS.
        InputError: empty polygons, polygons outside the raster, or covering no pixel centre.
    """
    if isinstance(geometries, Mapping):
        geometries = [geometries]
    geoms = _polygons(list(geometries), name)
    if crs is not None:
        src = parse_crs(crs)
        if grid.crs is not None and src != grid.crs:
            geoms = reproject_geometries(geoms, src, grid.crs, name, "--polygon-crs")
    pts = np.concatenate([geometry_coords(g) for g in geoms])
    pts = pts[np.isfinite(pts).all(axis=1)]
    if pts.size == 0:
        raise InputError(f"{name}: the polygon is empty (or cannot be placed in {crs_name(grid.crs)})")
    xmin, ymin = pts.min(axis=0)
    xmax, ymax = pts.max(axis=0)
    gx = grid.bounds
    if xmax <= gx[0] or xmin >= gx[2] or ymax <= gx[1] or ymin >= gx[3] or xmin >= xmax or ymin >= ymax:
        raise InputError(
            f"{name} (bounds {xmin:.12g}, {ymin:.12g}, {xmax:.12g}, {ymax:.12g} in {crs_name(grid.crs)}) "
            f"does not overlap the raster (bounds {', '.join(f'{v:.12g}' for v in gx)})"
        )
    win = window_of_bounds(grid, (xmin, ymin, xmax, ymax))
    region = Region(grid, win, tuple(geoms), bool(all_touched), description=name)
    if region.n_pixels == 0:
        raise InputError(
            f"{name} covers no pixel centre of the raster (it is smaller than a pixel); "
            f"use a larger polygon or all_touched"
        )
    return region


def wkt_region(grid: Grid, wkt: str, crs: str | CRS | None = None, *, all_touched: bool = False) -> Region:
    """The pixels inside a WKT polygon (coordinates in ``crs``, default the raster's).

    An EWKT prefix ``SRID=4326;`` sets the CRS when ``crs`` is None.
    """
    text = wkt.strip()
    if text.upper().startswith("SRID="):
        srid, _, text = text.partition(";")
        if crs is None:
            crs = f"EPSG:{srid.split('=', 1)[1].strip()}"
    geom = wkt_geometry(text)
    short = text if len(text) <= 40 else text[:37] + "..."
    return geometry_region(grid, geom, crs, all_touched=all_touched, name=f"polygon {short}")


def geojson_region(
    grid: Grid, geojson: str | Mapping[str, Any], crs: str | CRS | None = None, *, all_touched: bool = False
) -> Region:
    """The pixels inside the polygons of a GeoJSON text or object (geometry, Feature or
    FeatureCollection).

    Coordinates are EPSG:4326 (RFC 7946) unless ``crs`` is given or the object carries a legacy
    ``crs`` member.

    Raises:
        ConfigError: not GeoJSON; coordinates that cannot be longitude/latitude with no CRS given.
    """
    if isinstance(geojson, str):
        try:
            obj = json.loads(geojson)
        except json.JSONDecodeError as e:
            raise ConfigError(f"polygon: not valid GeoJSON ({e.msg} at character {e.pos})") from None
    else:
        obj = geojson
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise ConfigError("polygon: GeoJSON must be an object with a 'type'")
    geoms = list(geojson_geometries(obj))
    if crs is None:
        crs = geojson_crs(obj)
        if crs is None:
            crs = "EPSG:4326"
            pts = np.concatenate([geometry_coords(g) for g in geoms]) if geoms else np.empty((0, 2))
            if lonlat_problem(CRS.from_epsg(4326), pts):
                raise ConfigError(
                    "polygon: GeoJSON coordinates are longitude/latitude (EPSG:4326, RFC 7946) unless a CRS "
                    "is given; these are not — give the polygon's CRS (--polygon-crs EPSG:XXXX)"
                )
    return geometry_region(grid, geoms, crs, all_touched=all_touched, name="GeoJSON polygon")


def vector_file_region(
    grid: Grid,
    path: str | os.PathLike,
    *,
    layer: str | int | None = None,
    crs: str | CRS | None = None,
    all_touched: bool = False,
) -> Region:
    """The pixels inside the polygons of a vector file (all features of one layer).

    Args:
        path: any format OGR reads (GeoPackage, Shapefile, GeoJSON, KML, FlatGeobuf …).
        layer: layer name or 0-based index (default: the first layer).
        crs: override the file's CRS (a file without one is taken in the raster's CRS).

    Raises:
        InputError: the file cannot be read, has no such layer or no polygon.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    vec = read_vector(path, layer=layer)
    if not vec.geometries:
        raise InputError(f"{path}: the layer '{vec.name}' has no polygon (empty or no geometries)")
    crs = vec.crs if crs is None else crs  # None → the raster's CRS
    return geometry_region(grid, vec.geometries, crs, all_touched=all_touched, name=path.name)


def parse_region(
    grid: Grid,
    *,
    bbox: Sequence[float] | None = None,
    bbox_crs: str | None = None,
    polygon: str | os.PathLike | None = None,
    polygon_crs: str | None = None,
    layer: str | None = None,
    all_touched: bool = False,
) -> Region:
    """The region named by command-line style options; the whole raster when none is given.

    ``polygon`` is a vector file path, a GeoJSON text (starting with ``{``) or WKT.

    Raises:
        ConfigError: both a bbox and a polygon, an unknown CRS, text that is none of the above.
        InputError: the region does not overlap the raster, is empty, or a file is unreadable.
    """
    if bbox is not None and polygon is not None:
        raise ConfigError("give a bbox or a polygon, not both")
    if bbox is not None:
        return bbox_region(grid, bbox, bbox_crs)
    if polygon is None:
        if bbox_crs is not None:
            raise ConfigError("--bbox-crs needs --bbox")
        return whole_region(grid)
    text = str(polygon).strip()
    if not text:
        raise ConfigError("polygon: empty text (give a vector file, GeoJSON or WKT)")
    if text.startswith("{"):
        return geojson_region(grid, text, polygon_crs, all_touched=all_touched)
    if text.upper().startswith(_WKT_PREFIXES) or text.upper().startswith(("POINT", "LINESTRING", "MULTIPOINT", "MULTILINESTRING")):
        return wkt_region(grid, text, polygon_crs, all_touched=all_touched)
    return vector_file_region(grid, text, layer=layer, crs=polygon_crs, all_touched=all_touched)


# ----------------------------------------------------------------------------- helpers
def _polygons(geoms: list, name: str) -> list[dict]:
    """Unpack collections, check every part is a non-empty polygon."""
    flat: list[dict] = []

    def add(g):
        if not isinstance(g, Mapping) or "type" not in g:
            raise ConfigError(f"{name}: not a geometry ({str(g)[:60]})")
        t = g["type"]
        if t == "GeometryCollection":
            for sub in g.get("geometries", []):
                add(sub)
        elif t in _POLYGONAL:
            if geometry_coords(g).size:
                flat.append({"type": t, "coordinates": g["coordinates"]})
        else:
            raise ConfigError(f"{name}: a {t} is not a polygon; the region must be polygons")

    for g in geoms:
        add(g)
    if not flat:
        raise InputError(f"{name}: the polygon is empty")
    return flat
