"""Map tools that draw a region on the canvas: a rectangle or a polygon → a
:class:`~qgis_plugin.region_tools.RegionChoice` (canvas CRS) handed to a handler.

* :class:`RectangleRegionTool` — press, drag, release: a rectangle (a rubber band follows the mouse;
  Esc drops it);
* :class:`PolygonRegionTool` — left clicks add vertices, a right click, a double click or Enter
  closes the polygon (3 vertices or more), Backspace removes the last vertex, Esc starts again.

The rubber band of the last region stays on the map (its outline only, once chosen: a fill would
tint the maps under it) until the tool is deactivated, so one sees
what is being mapped.
"""

from __future__ import annotations

from typing import Callable

from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsPointXY, QgsRectangle
from qgis.gui import QgsMapCanvas, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QCursor

from .region_tools import POLYGON_GEOMETRY, RegionChoice

_FILL = QColor(255, 140, 0, 50)
_STROKE = QColor(255, 110, 0, 230)

RegionHandler = Callable[[RegionChoice], None]


def _new_rubber_band(canvas: QgsMapCanvas) -> QgsRubberBand:
    rb = QgsRubberBand(canvas, POLYGON_GEOMETRY)
    rb.setFillColor(_FILL)
    rb.setStrokeColor(_STROKE)
    rb.setWidth(2)
    return rb


class _RegionTool(QgsMapTool):
    """Shared parts: a rubber band, the handler, cleaning up on deactivation."""

    def __init__(self, canvas: QgsMapCanvas, handler: RegionHandler) -> None:
        super().__init__(canvas)
        self._handler = handler
        self.rubber_band = _new_rubber_band(canvas)
        self.setCursor(QCursor(Qt.CursorShape.CrossCursor))

    def canvas_crs(self) -> QgsCoordinateReferenceSystem:
        return self.canvas().mapSettings().destinationCrs()

    def reset(self) -> None:
        self.rubber_band.reset(POLYGON_GEOMETRY)
        self.rubber_band.setFillColor(_FILL)  # filled while drawing …

    def show_chosen(self, geom: QgsGeometry) -> None:
        """… and only its outline once chosen: the fill would tint the maps drawn under it."""
        self.rubber_band.setToGeometry(geom, None)
        self.rubber_band.setFillColor(QColor(0, 0, 0, 0))

    def deactivate(self) -> None:  # noqa: D401 (QGIS API)
        self.reset()
        super().deactivate()

    def emit(self, choice: RegionChoice) -> None:
        self._handler(choice)

    def release(self) -> None:
        """Take the rubber band off the canvas (before the tool is deleted)."""
        self.reset()
        scene = self.canvas().scene() if self.canvas() is not None else None
        if scene is not None and self.rubber_band.scene() is scene:
            scene.removeItem(self.rubber_band)


class RectangleRegionTool(_RegionTool):
    """Press, drag and release on the map: a rectangle in the canvas CRS → the handler."""

    def __init__(self, canvas: QgsMapCanvas, handler: RegionHandler) -> None:
        super().__init__(canvas, handler)
        self.setObjectName("PimcRectangleTool")
        self._start: QgsPointXY | None = None

    def canvasPressEvent(self, e) -> None:  # noqa: N802 (QGIS API)
        if e.button() != Qt.MouseButton.LeftButton:
            return
        self._start = self.toMapCoordinates(e.pos())
        self.reset()

    def canvasMoveEvent(self, e) -> None:  # noqa: N802
        if self._start is None:
            return
        self.rubber_band.setToGeometry(QgsGeometry.fromRect(QgsRectangle(self._start, self.toMapCoordinates(e.pos()))), None)

    def canvasReleaseEvent(self, e) -> None:  # noqa: N802
        if self._start is None or e.button() != Qt.MouseButton.LeftButton:
            return
        start, self._start = self._start, None
        self.finish(QgsRectangle(start, self.toMapCoordinates(e.pos())))

    def finish(self, rect: QgsRectangle) -> bool:
        """Use ``rect`` (map coordinates of the canvas) as the region; False when it is empty."""
        rect = QgsRectangle(rect)
        rect.normalize()
        if rect.width() <= 0 or rect.height() <= 0:
            self.reset()
            return False
        geom = QgsGeometry.fromRect(rect)
        self.show_chosen(geom)
        self.emit(RegionChoice(geom, self.canvas_crs(), "rectangle", "rectangle"))
        return True

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Escape:
            self._start = None
            self.reset()


class PolygonRegionTool(_RegionTool):
    """Left clicks add vertices; a right click or a double click closes the polygon → the handler."""

    def __init__(self, canvas: QgsMapCanvas, handler: RegionHandler) -> None:
        super().__init__(canvas, handler)
        self.setObjectName("PimcPolygonTool")
        self.points: list[QgsPointXY] = []

    def _show(self, hover: QgsPointXY | None = None) -> None:
        pts = self.points + ([hover] if hover is not None else [])
        self.rubber_band.reset(POLYGON_GEOMETRY)
        for i, p in enumerate(pts):
            self.rubber_band.addPoint(p, i == len(pts) - 1)

    def add_point(self, p: QgsPointXY) -> None:
        self.points.append(QgsPointXY(p))
        self._show()

    def canvasPressEvent(self, e) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self.add_point(self.toMapCoordinates(e.pos()))
        elif e.button() == Qt.MouseButton.RightButton:
            self.finish()

    def canvasDoubleClickEvent(self, e) -> None:  # noqa: N802
        self.finish()

    def canvasMoveEvent(self, e) -> None:  # noqa: N802
        if self.points:
            self._show(self.toMapCoordinates(e.pos()))

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Escape:
            self.points = []
            self.reset()
        elif e.key() in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete) and self.points:
            self.points.pop()
            self._show()
        elif e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish()

    def finish(self) -> bool:
        """Close the polygon of the clicked vertices; False (and keep them) when it has no area."""
        pts = []
        for p in self.points:  # a double click adds its point twice
            if not pts or (p.x(), p.y()) != (pts[-1].x(), pts[-1].y()):
                pts.append(p)
        if len(pts) < 3:
            return False
        geom = QgsGeometry.fromPolygonXY([pts + [pts[0]]])
        if geom.isEmpty() or geom.area() <= 0:
            return False
        if not geom.isGeosValid():
            fixed = geom.makeValid()
            if not fixed.isEmpty() and fixed.area() > 0:
                geom = fixed
        self.points = []
        self.show_chosen(geom)
        self.emit(RegionChoice(geom, self.canvas_crs(), "polygon", "polygon"))
        return True


__all__ = ["PolygonRegionTool", "RectangleRegionTool"]
