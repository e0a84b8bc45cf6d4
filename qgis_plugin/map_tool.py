"""The pixel inspector map tool: a click on the map hands the point, with the canvas CRS, on."""

from __future__ import annotations

from typing import Callable

from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY
from qgis.gui import QgsMapCanvas, QgsMapToolEmitPoint
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QCursor

PointHandler = Callable[[QgsPointXY, QgsCoordinateReferenceSystem], None]


class PixelInspectorTool(QgsMapToolEmitPoint):
    """Left click → ``handler(point, canvas_crs)``; the handler transforms and reads the pixel."""

    def __init__(self, canvas: QgsMapCanvas, handler: PointHandler) -> None:
        super().__init__(canvas)
        self._handler = handler
        self.setObjectName("PimcPixelInspectorTool")
        self.setCursor(QCursor(Qt.CursorShape.CrossCursor))
        self.canvasClicked.connect(self._on_clicked)

    def _on_clicked(self, point: QgsPointXY, button) -> None:
        if button == Qt.MouseButton.LeftButton:
            self.handle_point(point)

    def handle_point(self, point: QgsPointXY) -> None:
        """Inspect the pixel under ``point`` (map coordinates of the canvas)."""
        self._handler(QgsPointXY(point), self.canvas().mapSettings().destinationCrs())
