"""Where to map: a rectangle or a polygon drawn on the canvas (:mod:`.draw_tools`), the canvas
extent, or the selected polygons of a vector layer — turned into a
:class:`~qgis_plugin.mapping.RegionSpec` in the CRS of the series (on the main thread; the core
builds the pixel region in the background task). No qgis.gui here: the Processing algorithms use
it headless too.

* :class:`RegionChoice` — a QGIS geometry, its CRS, and how it was made;
* :func:`canvas_extent_choice`, :func:`selected_features_choice` — the other two sources;
* :func:`to_region_spec` — a :class:`RegionChoice` (QGIS geometry + CRS) → ``RegionSpec`` in the
  series CRS (rectangles and extents become the enclosing box, polygons stay polygons).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)

from .bootstrap import import_core
from .geo import series_crs
from .mapping import RegionSpec


def _geometry_type(name: str):
    """QgsWkbTypes.GeometryType (3.22) or Qgis.GeometryType (3.30+) member: Point, Line, Polygon."""
    new = getattr(Qgis, "GeometryType", None)
    if new is not None and hasattr(new, name):
        return getattr(new, name)
    return getattr(QgsWkbTypes.GeometryType, f"{name}Geometry")


POLYGON_GEOMETRY = _geometry_type("Polygon")
_COLLECTION = getattr(getattr(Qgis, "WkbType", None), "GeometryCollection", None) or QgsWkbTypes.Type.GeometryCollection


@dataclass
class RegionChoice:
    """A region as the user gave it: a geometry in ``crs`` and how it was made.

    Attributes:
        geometry: polygon geometry in ``crs``.
        crs: its CRS (the canvas CRS, or the layer's); invalid → taken as the series CRS.
        kind: ``rectangle``, ``polygon``, ``extent`` or ``features``.
        description: for messages and layer names.
    """

    geometry: QgsGeometry
    crs: QgsCoordinateReferenceSystem
    kind: str
    description: str

    @property
    def is_box(self) -> bool:
        return self.kind in ("rectangle", "extent")


# ----------------------------------------------------------------------------- other sources
def canvas_extent_choice(canvas) -> RegionChoice:
    """The visible extent of the canvas."""
    return RegionChoice(QgsGeometry.fromRect(canvas.extent()), canvas.mapSettings().destinationCrs(), "extent",
                        "canvas extent")


def selected_features_choice(layer: QgsVectorLayer | None, *, selected_only: bool = True) -> RegionChoice:
    """The union of the selected polygons of ``layer`` (all of them with ``selected_only`` False).

    Raises:
        ConfigError: no polygon layer, nothing selected, or no polygon geometry.
    """
    errors = import_core("pimc_core.errors")
    if layer is None or not isinstance(layer, QgsVectorLayer) or not layer.isValid():
        raise errors.ConfigError("choose a polygon layer for the region")
    if layer.geometryType() != POLYGON_GEOMETRY:
        raise errors.ConfigError(f"layer '{layer.name()}' has no polygons; choose a polygon layer")
    if selected_only and layer.selectedFeatureCount() == 0:
        raise errors.ConfigError(f"no feature of '{layer.name()}' is selected: select the polygons to map")
    feats = layer.getSelectedFeatures() if selected_only else layer.getFeatures(QgsFeatureRequest())
    geoms = [f.geometry() for f in feats if f.hasGeometry() and not f.geometry().isEmpty()]
    if not geoms:
        raise errors.ConfigError(f"the chosen features of '{layer.name()}' have no geometry")
    geom = QgsGeometry.unaryUnion(geoms) if len(geoms) > 1 else QgsGeometry(geoms[0])
    n = len(geoms)
    what = "selected feature" if selected_only else "feature"
    return RegionChoice(geom, layer.crs(), "features", f"{n} {what}{'s' if n != 1 else ''} of {layer.name()}")


# ----------------------------------------------------------------------------- to the series CRS
def transform_to(geometry: QgsGeometry, src: QgsCoordinateReferenceSystem, dst: QgsCoordinateReferenceSystem,
                 project: QgsProject | None = None) -> QgsGeometry:
    """``geometry`` from ``src`` to ``dst`` (unchanged when either is invalid or both are equal).

    Raises:
        QgsCsException: the geometry cannot be transformed.
    """
    g = QgsGeometry(geometry)
    if src is None or not src.isValid() or not dst.isValid() or src == dst:
        return g
    ct = QgsCoordinateTransform(src, dst, project or QgsProject.instance())
    g.transform(ct)
    return g


def geometry_to_geojson(geometry: QgsGeometry) -> list[dict]:
    """Polygon / MultiPolygon mappings of a (possibly curved or collected) polygon geometry."""
    g = QgsGeometry(geometry)
    if QgsWkbTypes.isCurvedType(g.wkbType()):
        g = QgsGeometry(g.constGet().segmentize())
    out = []
    parts = g.asGeometryCollection() if QgsWkbTypes.flatType(g.wkbType()) == _COLLECTION else [g]
    for part in parts:
        if part.type() != POLYGON_GEOMETRY or part.isEmpty():
            continue
        obj = json.loads(part.asJson())
        if obj.get("type") in ("Polygon", "MultiPolygon"):
            out.append(obj)
    return out


def to_region_spec(choice: RegionChoice, ts, *, all_touched: bool = False) -> RegionSpec:
    """The region in the series CRS: a box for rectangles / extents, polygons otherwise.

    Raises:
        InputError: the region cannot be placed in the series CRS, or does not overlap the raster.
    """
    errors = import_core("pimc_core.errors")
    dst = series_crs(ts)
    src = choice.crs if choice.crs is not None and choice.crs.isValid() else dst
    try:
        if choice.is_box:
            rect = choice.geometry.boundingBox()
            if src.isValid() and dst.isValid() and src != dst:
                rect = QgsCoordinateTransform(src, dst, QgsProject.instance()).transformBoundingBox(rect)
            bbox = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
            _check_overlap(bbox, ts, choice.description)
            return RegionSpec(bbox=bbox, description=choice.description)
        g = transform_to(choice.geometry, src, dst)
    except QgsCsException as e:
        raise errors.InputError(f"the {choice.description} cannot be transformed to the series CRS ({e})") from None
    geoms = geometry_to_geojson(g)
    if not geoms:
        raise errors.InputError(f"the {choice.description} has no polygon area")
    rect = g.boundingBox()
    _check_overlap((rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()), ts, choice.description)
    return RegionSpec(geometries=tuple(geoms), description=choice.description, all_touched=all_touched)


def _check_overlap(bbox, ts, what: str) -> None:
    errors = import_core("pimc_core.errors")
    gx = ts.grid.bounds
    if bbox[2] <= gx[0] or bbox[0] >= gx[2] or bbox[3] <= gx[1] or bbox[1] >= gx[3]:
        raise errors.InputError(
            f"the {what} does not overlap the time series (series bounds {', '.join(f'{v:.10g}' for v in gx)} "
            f"in its CRS): pan to the series or draw over it"
        )


__all__ = [
    "POLYGON_GEOMETRY", "RegionChoice", "canvas_extent_choice",
    "geometry_to_geojson", "selected_features_choice", "to_region_spec", "transform_to",
]
