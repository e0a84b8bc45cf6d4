"""Showing a matplotlib Figure in a widget without matplotlib's Qt backend.

The Figure (drawn with the Agg canvas the core attaches) is rasterised once and shown as a
QPixmap, scaled to the widget's width. This avoids ``backend_qtagg`` entirely, whose Qt binding
detection can pick a different binding than QGIS's (PyQt5 in QGIS 3, PyQt6 in QGIS 4).
"""

from __future__ import annotations

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QImage, QPixmap
from qgis.PyQt.QtWidgets import QLabel, QSizePolicy


def figure_to_qimage(fig) -> QImage:
    """Draw ``fig`` with its Agg canvas and copy the pixels into a QImage."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    buf = np.ascontiguousarray(np.asarray(canvas.buffer_rgba()))
    h, w = buf.shape[:2]
    return QImage(buf.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


class FigureView(QLabel):
    """A label that shows a figure, scaled to its width (aspect kept)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("PimcFigureView")
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumHeight(120)
        self._pixmap: QPixmap | None = None
        self.figure = None

    def set_figure(self, fig) -> None:
        """Render and show ``fig`` (None clears the view)."""
        self.figure = fig
        self._pixmap = None if fig is None else QPixmap.fromImage(figure_to_qimage(fig))
        self._rescale()

    def has_figure(self) -> bool:
        return self._pixmap is not None and not self._pixmap.isNull()

    def source_pixmap(self) -> QPixmap | None:
        """The full-resolution rendering."""
        return self._pixmap

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            self.clear()
            return
        w = max(100, self.width())
        if w >= self._pixmap.width():
            self.setPixmap(self._pixmap)
        else:
            self.setPixmap(self._pixmap.scaledToWidth(w, Qt.TransformationMode.SmoothTransformation))
