"""Markers on the map canvas: the pixel the inspector shows (a yellow box with a cross) and the
query pixel of the last similarity map (a magenta circle), so one sees on the map what the
figure and the similarity map refer to. Both go when the series changes or the panel closes."""

from __future__ import annotations

from qgis.core import QgsCsException
from qgis.gui import QgsVertexMarker
from qgis.PyQt.QtGui import QColor

from .geo import from_series_xy


class PixelMarkers:
    """The inspected pixel and the similarity query on ``canvas`` (None: no markers at all)."""

    def __init__(self, canvas) -> None:
        self.canvas = canvas
        self.pixel: QgsVertexMarker | None = None
        self.query: QgsVertexMarker | None = None

    def _place(self, marker: QgsVertexMarker | None, xy, ts, *, icon, colour: str, size: int):
        if self.canvas is None:
            return None
        try:
            point = from_series_xy(xy[0], xy[1], ts, self.canvas.mapSettings().destinationCrs())
        except QgsCsException:
            return marker
        if marker is None:
            marker = QgsVertexMarker(self.canvas)
            marker.setIconType(icon)
            marker.setColor(QColor(colour))
            marker.setFillColor(QColor(0, 0, 0, 0))
            marker.setIconSize(size)
            marker.setPenWidth(3)
        marker.setCenter(point)
        marker.show()
        return marker

    def show_pixel(self, xy: tuple[float, float], ts) -> None:
        """Mark the inspected pixel's centre ``xy`` (series CRS)."""
        self.pixel = self._place(self.pixel, xy, ts, icon=QgsVertexMarker.IconType.ICON_BOX, colour="#ffd600", size=16)

    def show_query(self, xy: tuple[float, float], ts) -> None:
        """Mark the query pixel of a similarity map (series CRS)."""
        self.query = self._place(self.query, xy, ts, icon=QgsVertexMarker.IconType.ICON_CIRCLE, colour="#e040fb",
                                 size=22)

    def clear(self) -> None:
        """Take both markers off the map."""
        for name in ("pixel", "query"):
            marker = getattr(self, name)
            if marker is not None and self.canvas is not None:
                scene = self.canvas.scene()
                if scene is not None and marker.scene() is scene:
                    scene.removeItem(marker)
            setattr(self, name, None)


__all__ = ["PixelMarkers"]
