"""Vector data: reading features of a vector file (or WKT) as GeoJSON-like geometries, with GDAL's OGR.

One reader serves every vector input of PIMC: region polygons (:mod:`pimc_core.io.regions`) and
label polygons or points with a class attribute (:mod:`pimc_core.io.labels`); one writer its one
vector output, the suggested sample points (:mod:`pimc_core.maps.suggest`).

* :func:`read_vector`: the features of one layer of any format OGR reads (GeoPackage,
  Shapefile, GeoJSON, KML, FlatGeobuf …): geometries in the file's CRS, the CRS, the field
  names and, when asked, the value of one field per feature;
* :func:`write_points`: points with attributes as a GeoPackage layer, written atomically
  (:func:`pimc_core.io.atomic.atomic_path`); a NULL value stays NULL;
* :func:`wkt_geometry`: a WKT text as a GeoJSON-like mapping; :func:`geojson_geometries` and
  :func:`geojson_crs`: the geometries and the legacy ``crs`` member of a GeoJSON object;
* :func:`reproject_geometries`, :func:`reproject_points`, :func:`reproject_bounds`: from one CRS
  to another (GDAL's transformer through ``rasterio.warp``), refusing coordinates the source CRS
  cannot hold (metres given as longitude / latitude) in one line instead of a PROJ error.

Curved polygons (CurvePolygon, MultiSurface) are linearised to MultiPolygons. OGR messages are
collected into the error line instead of being printed; OGR's process-wide exception mode is
left as it is (QGIS relies on its own setting).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from rasterio.crs import CRS

from pimc_core.errors import ConfigError, InputError

__all__ = [
    "VectorLayer",
    "geojson_crs",
    "geojson_geometries",
    "geometry_coords",
    "lonlat_problem",
    "placement_error",
    "read_vector",
    "reproject_bounds",
    "reproject_geometries",
    "reproject_points",
    "wkt_geometry",
    "write_points",
]


@dataclass(frozen=True)
class VectorLayer:
    """The features of one layer of a vector file.

    Attributes:
        path: the file.
        name: the layer's name.
        crs: the layer's CRS, or None when the file has none.
        fields: the attribute names of the layer.
        geometries: GeoJSON-like mappings (``{"type", "coordinates"}``) in ``crs``, one per
            feature with a non-empty geometry (and, when a field was asked for, a value).
        values: the value of the asked field for each geometry, or None when no field was asked.
        blank: features with a geometry left out because the asked field is empty (NULL or
            blank text).
    """

    path: Path
    name: str
    crs: CRS | None
    fields: tuple[str, ...]
    geometries: list[dict]
    values: list[Any] | None = None
    blank: int = 0


class _OgrErrors:
    """Collect OGR error messages instead of printing them."""

    def __enter__(self) -> "_OgrErrors":
        from osgeo import gdal

        self.gdal = gdal
        self.messages: list[str] = []

        def handler(cls, code, msg):
            self.messages.append(str(msg).strip())

        self._handler = handler
        gdal.PushErrorHandler(handler)
        return self

    def __exit__(self, *exc) -> bool:
        self.gdal.PopErrorHandler()
        return False

    @property
    def text(self) -> str:
        return "; ".join(m for m in self.messages if m) or "not a vector format GDAL/OGR recognises"


def _linear(geom: Any) -> Any:
    """Curved polygons as MultiPolygons (GeoJSON has no curves)."""
    from osgeo import ogr

    if ogr.GT_Flatten(geom.GetGeometryType()) in (ogr.wkbCurvePolygon, ogr.wkbMultiSurface):
        return ogr.ForceTo(geom.Clone(), ogr.wkbMultiPolygon)
    return geom


def wkt_geometry(text: str) -> dict:
    """A WKT geometry as a GeoJSON-like mapping.

    Raises:
        ConfigError: not valid WKT. InputError: an empty geometry.
    """
    from osgeo import ogr

    with _OgrErrors() as errs:
        try:  # OGR raises or returns None depending on the process-wide exception mode
            geom = ogr.CreateGeometryFromWkt(text)
        except RuntimeError as e:
            errs.messages.append(str(e))
            geom = None
    if geom is None:
        raise ConfigError(f"polygon: not valid WKT ({errs.text}): {text[:60]}")
    if geom.IsEmpty():
        raise InputError("polygon: the WKT polygon is empty")
    return json.loads(_linear(geom).ExportToJson())


def _open_layer(ds: Any, path: Path, layer: str | int | None) -> Any:
    if ds.GetLayerCount() == 0:
        raise InputError(f"{path}: no layer in this vector file")
    if layer is None:
        lyr = ds.GetLayer(0)
    elif isinstance(layer, int) or str(layer).isdigit():
        lyr = ds.GetLayer(int(layer))
    else:
        lyr = ds.GetLayerByName(str(layer))
    if lyr is None:
        names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]
        raise InputError(f"{path}: no layer {layer!r} (layers: {', '.join(names)})")
    return lyr


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_vector(path: str | os.PathLike, *, layer: str | int | None = None, field: str | None = None) -> VectorLayer:
    """The features of one layer of a vector file.

    Args:
        path: any format OGR reads.
        layer: layer name or 0-based index (default: the first layer).
        field: an attribute to return the value of (matched case-insensitively); features
            without a value of it are left out.

    Raises:
        InputError: the file cannot be read, has no such layer, or its CRS is not understood.
        ConfigError: the layer has no attribute ``field``.
    """
    from osgeo import ogr

    path = Path(path)
    with _OgrErrors() as errs:
        try:  # OGR raises or returns None depending on the process-wide exception mode
            ds = ogr.Open(str(path))
        except RuntimeError as e:
            errs.messages.append(str(e))
            ds = None
    if ds is None:
        raise InputError(f"{path}: cannot read as a vector file ({errs.text})")
    try:
        lyr = _open_layer(ds, path, layer)
        defn = lyr.GetLayerDefn()
        fields = tuple(defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount()))
        fname = None
        if field is not None:
            match = [f for f in fields if f.lower() == field.lower()]
            if not match:
                raise ConfigError(f"{path}: no field '{field}' (fields: {', '.join(fields) or 'none'})")
            fname = match[0]
        srs = lyr.GetSpatialRef()
        crs = None
        if srs is not None:
            try:
                crs = CRS.from_wkt(srs.ExportToWkt())
            except Exception:
                raise InputError(f"{path}: the layer's CRS is not understood ({srs.ExportToProj4()})") from None
        geoms: list[dict] = []
        values: list[Any] = []
        blank = 0
        with _OgrErrors() as errs:
            lyr.ResetReading()
            for feat in lyr:
                g = feat.GetGeometryRef()
                if g is None or g.IsEmpty():
                    continue
                if fname is not None:
                    v = feat.GetField(fname)
                    if _blank(v):
                        blank += 1
                        continue
                    values.append(v)
                geoms.append(json.loads(_linear(g).ExportToJson()))
        if errs.messages and not geoms:
            raise InputError(f"{path}: cannot read the features ({errs.text})")
        return VectorLayer(path, lyr.GetName(), crs, fields, geoms, values if fname is not None else None, blank)
    finally:
        ds = None  # noqa: F841 — closes the OGR data source


def geojson_geometries(obj: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The geometries of a GeoJSON object (a geometry, a Feature or a FeatureCollection)."""
    t = obj.get("type")
    if t == "FeatureCollection":
        for f in obj.get("features") or []:
            yield from geojson_geometries(f)
    elif t == "Feature":
        if obj.get("geometry"):
            yield obj["geometry"]
    else:
        yield obj


def geojson_crs(obj: Mapping[str, Any]) -> str | None:
    """The legacy (GeoJSON 2008) ``crs`` member, e.g. ``urn:ogc:def:crs:EPSG::32631``."""
    c = obj.get("crs")
    if not isinstance(c, Mapping):
        return None
    name = (c.get("properties") or {}).get("name")
    if not isinstance(name, str):
        return None
    if "CRS84" in name.upper():
        return "OGC:CRS84"
    if "EPSG" in name.upper():
        code = name.replace("::", ":").split(":")[-1]
        return f"EPSG:{code}"
    return name


def geometry_coords(geom: Mapping[str, Any]) -> np.ndarray:
    """All vertices of a GeoJSON-like geometry as an (n, 2) float array."""
    out: list[np.ndarray] = []

    def walk(c):
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)) and not isinstance(c[0], bool):
            out.append(np.asarray(c[:2], dtype=float)[None])
        elif isinstance(c, (list, tuple)):
            for x in c:
                walk(x)

    walk(geom.get("coordinates", []))
    if geom.get("type") == "GeometryCollection":
        out.extend(geometry_coords(g) for g in geom.get("geometries", []))
    return np.concatenate(out) if out else np.empty((0, 2))


def lonlat_problem(crs: CRS, xy: np.ndarray) -> str | None:
    """Why (n, 2) coordinates cannot be in a geographic ``crs`` (None when they can, or when the CRS
    is projected): longitudes outside -180..360 or latitudes outside -90..90."""
    if not crs.is_geographic or xy.size == 0:
        return None
    xy = np.asarray(xy, dtype=float)
    bad_lon = ~((xy[:, 0] >= -180) & (xy[:, 0] <= 360))
    bad_lat = ~((xy[:, 1] >= -90) & (xy[:, 1] <= 90))
    if not (bad_lon.any() or bad_lat.any()):
        return None
    return "they are not longitude/latitude degrees (longitude -180..180, latitude -90..90)"


def _crs_label(crs: CRS | None) -> str:
    if crs is None:
        return "none"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def placement_error(name: str, src: CRS, dst: CRS | None, why: str, flag: str | None = None) -> ConfigError:
    """The one line for coordinates that cannot be taken from ``src`` to ``dst``: names the input,
    both CRSs, why, and the option that sets the coordinates' CRS."""
    where = f" (set their CRS with {flag})" if flag else ""
    return ConfigError(f"{name}: cannot be placed in {_crs_label(dst)}: {why}; are these coordinates in "
                       f"{_crs_label(src)}?{where}")


def _failure(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def reproject_geometries(geoms: Sequence[Mapping[str, Any]], src: CRS, dst: CRS, name: str,
                         flag: str | None = None) -> list[dict]:
    """GeoJSON-like geometries from ``src`` to ``dst`` (``{"type", "coordinates"}`` each).

    Raises:
        ConfigError: coordinates ``src`` cannot hold (degrees beyond ±90 latitude …), or a
            transformation GDAL/PROJ refuses (:func:`placement_error`, naming ``name`` and ``flag``).
    """
    from rasterio.warp import transform_geom

    if src == dst:
        return [dict(g) for g in geoms]
    pts = np.concatenate([geometry_coords(g) for g in geoms]) if geoms else np.empty((0, 2))
    why = lonlat_problem(src, pts)
    if why is None:
        try:
            out = [transform_geom(src, dst, g) for g in geoms]
        except Exception as e:  # RasterioError, ValueError, GDAL's CPLE_* errors: all mean the same here
            why = _failure(e)
        else:
            moved = np.concatenate([geometry_coords(g) for g in out]) if out else np.empty((0, 2))
            if np.isfinite(moved).all():
                return [{"type": g["type"], "coordinates": g["coordinates"]} for g in out]
            why = "some vertices have no place there"
    raise placement_error(name, src, dst, why, flag)


def reproject_points(xy: np.ndarray, src: CRS, dst: CRS, name: str, flag: str | None = None) -> np.ndarray:
    """(n, 2) coordinates from ``src`` to ``dst``.

    Raises:
        ConfigError: as :func:`reproject_geometries`.
    """
    from rasterio.warp import transform

    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    why = lonlat_problem(src, xy)
    if why is None:
        try:
            xs, ys = transform(src, dst, xy[:, 0].tolist(), xy[:, 1].tolist())
        except Exception as e:  # RasterioError, ValueError, GDAL's CPLE_* errors: all mean the same here
            why = _failure(e)
        else:
            out = np.column_stack([xs, ys]).astype(float)
            if np.isfinite(out).all():
                return out
            why = "some points have no place there"
    raise placement_error(name, src, dst, why, flag)


def reproject_bounds(bounds: Sequence[float], src: CRS, dst: CRS, name: str, flag: str | None = None) -> tuple[float, ...]:
    """(xmin, ymin, xmax, ymax) in ``src`` as the enclosing box in ``dst`` (edges densified).

    Raises:
        ConfigError: as :func:`reproject_geometries`.
    """
    from rasterio.warp import transform_bounds

    b = tuple(float(v) for v in bounds)
    why = lonlat_problem(src, np.array([[b[0], b[1]], [b[2], b[3]]]))
    if why is None:
        try:
            out = transform_bounds(src, dst, *b)
        except Exception as e:  # RasterioError, ValueError, GDAL's CPLE_* errors: all mean the same here
            why = _failure(e)
        else:
            if all(np.isfinite(out)):
                return tuple(float(v) for v in out)
            why = "the box has no place there"
    raise placement_error(name, src, dst, why, flag)


#: OGR field types of :func:`write_points` by the names it takes.
_FIELD_TYPES = {"int": "OFTInteger", "real": "OFTReal", "str": "OFTString"}


def write_points(path: str | os.PathLike, xy: np.ndarray, crs: CRS | None,
                 fields: Sequence[tuple[str, str, Sequence[Any]]], *, layer: str = "points") -> Path:
    """Write points with attributes as one GeoPackage layer, atomically (the file appears whole
    or not at all).

    Args:
        path: the ``.gpkg`` file (its folder must exist; an existing file is replaced).
        xy: (n, 2) coordinates in ``crs``.
        crs: the layer's CRS (None: none).
        fields: ``(name, type, values)`` per attribute, ``type`` one of ``int``, ``real``,
            ``str``; ``values`` n values, None for NULL.
        layer: the layer's name.

    Raises:
        InputError: the file cannot be written (naming it).
    """
    from osgeo import ogr, osr

    from pimc_core.io.atomic import atomic_path

    path = Path(path)
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    with atomic_path(path) as tmp, _OgrErrors() as errs:
        try:
            drv = ogr.GetDriverByName("GPKG")
            ds = drv.CreateDataSource(str(tmp)) if drv is not None else None
            if ds is None:
                raise InputError(f"{path}: cannot write ({errs.text})")
            srs = None
            if crs is not None:
                srs = osr.SpatialReference()
                srs.ImportFromWkt(crs.to_wkt())
                srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)  # x, y whatever the CRS says
            lyr = ds.CreateLayer(layer, srs, ogr.wkbPoint)
            for name, kind, _ in fields:
                lyr.CreateField(ogr.FieldDefn(name, getattr(ogr, _FIELD_TYPES[kind])))
            defn = lyr.GetLayerDefn()
            lyr.StartTransaction()
            for i, (x, y) in enumerate(xy):
                feat = ogr.Feature(defn)
                for name, kind, values in fields:
                    v = values[i]
                    if v is None:
                        feat.SetFieldNull(name)
                    else:
                        feat.SetField(name, int(v) if kind == "int" else float(v) if kind == "real" else str(v))
                pt = ogr.Geometry(ogr.wkbPoint)
                pt.AddPoint_2D(float(x), float(y))
                feat.SetGeometry(pt)
                if lyr.CreateFeature(feat) != 0:
                    raise InputError(f"{path}: cannot write ({errs.text})")
            if lyr.CommitTransaction() != 0:
                raise InputError(f"{path}: cannot write ({errs.text})")
        except RuntimeError as e:  # OGR's exception mode (QGIS turns it on)
            raise InputError(f"{path}: cannot write ({str(e).splitlines()[0] if str(e) else errs.text})") from None
        finally:
            lyr = ds = None  # noqa: F841 — closes (and flushes) the data source
    return path
