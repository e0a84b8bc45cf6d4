"""Coordinates between QGIS (canvas, Processing points) and a series grid (rasterio CRS)."""

from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject


def series_crs(ts) -> QgsCoordinateReferenceSystem:
    """The series CRS as a QGIS CRS (invalid when the rasters have none)."""
    crs = ts.grid.crs
    if crs is None:
        return QgsCoordinateReferenceSystem()
    epsg = crs.to_epsg()
    if epsg:
        return QgsCoordinateReferenceSystem(f"EPSG:{epsg}")
    return QgsCoordinateReferenceSystem.fromWkt(crs.to_wkt())


def to_series_xy(point: QgsPointXY, crs: QgsCoordinateReferenceSystem | None, ts) -> tuple[float, float]:
    """``point`` (in ``crs``; the series CRS when None or invalid) in the series CRS.

    Raises:
        QgsCsException: the point cannot be transformed.
    """
    dst = series_crs(ts)
    if crs is None or not crs.isValid() or not dst.isValid() or crs == dst:
        return point.x(), point.y()
    p = QgsCoordinateTransform(crs, dst, QgsProject.instance()).transform(QgsPointXY(point))
    return p.x(), p.y()


def from_series_xy(x: float, y: float, ts, crs: QgsCoordinateReferenceSystem | None) -> QgsPointXY:
    """(x, y) of the series CRS as a point in ``crs`` (e.g. the canvas CRS; unchanged when None).

    Raises:
        QgsCsException: the point cannot be transformed.
    """
    src = series_crs(ts)
    if crs is None or not crs.isValid() or not src.isValid() or crs == src:
        return QgsPointXY(x, y)
    return QgsCoordinateTransform(src, crs, QgsProject.instance()).transform(QgsPointXY(x, y))
