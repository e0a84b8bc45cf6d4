"""The panel's *Pixel inspector* section: which indices, the minimum of valid observations; a
click with the inspector map tool reads that one pixel of the series, makes its recurrence plots
and shows the core's figure (index curves + plots); *Save figure…* writes it as PNG, SVG or PDF.
The clicked pixel is also the query of the *Similar to inspected pixel* map; both are marked on the
map (:mod:`~qgis_plugin.markers`).

The section follows the *Time series* section: indices whose bands the series lacks (EVI without
a blue band) cannot be ticked, and a figure of another series is cleared."""

from __future__ import annotations

import time
from pathlib import Path

from qgis.core import QgsCoordinateReferenceSystem, QgsCsException, QgsPointXY, QgsSettings
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QCursor
from qgis.PyQt.QtWidgets import QApplication, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QToolButton, QVBoxLayout

from .. import pipeline, source
from ..bootstrap import MissingDependencyError, import_core
from ..figure_view import FigureView
from ..geo import to_series_xy
from ..markers import PixelMarkers
from .common import SETTINGS, UNEXPECTED, Section, check_grid, log_exception, notify, set_status, status_label
from .source_section import SourceSection

DEFAULT_INDICES = ("ndvi", "evi", "savi")
#: Short check-box labels and tooltips of the radar series (the others read as their upper-case names).
INDEX_LABELS = {"vv_db": "VV", "vh_db": "VH", "vh_vv_db": "VH/VV", "rvi": "RVI"}
INDEX_TIPS = {"vv_db": "VV backscatter in dB (a Sentinel-1 source)", "vh_db": "VH backscatter in dB (a Sentinel-1 source)",
              "vh_vv_db": "VH/VV ratio in dB (a Sentinel-1 source)",
              "rvi": "radar vegetation index 4·VH/(VV+VH) (a Sentinel-1 source)"}


class InspectorSection(Section):
    """The *Pixel inspector* section.

    Args:
        source_box: the *Time series* section (the series, its key).
        iface: QGIS's interface, or None (tests): where messages go.
        inspector_action: the plugin's map-tool action, shown as a button (hidden when None).
    """

    def __init__(self, source_box: SourceSection, iface=None, inspector_action=None, parent=None) -> None:
        super().__init__("Pixel inspector", "PimcInspectorBox", parent)
        self.source_box = source_box
        self.iface = iface
        self.last_result: pipeline.PixelResult | None = None
        self.last_timing: dict[str, float] = {}
        self.last_query_xy: tuple[float, float] | None = None
        self._query_key = None
        self._wanted: set[str] = set(DEFAULT_INDICES)  # ticked by the user, also while unavailable
        self.markers = PixelMarkers(iface.mapCanvas() if iface is not None else None)
        self._build(inspector_action)
        source_box.series_checked.connect(self.follow_series)

    def _build(self, inspector_action) -> None:
        ilay = QVBoxLayout(self)
        irow, self.index_checks = check_grid(
            ((name, INDEX_LABELS.get(name, name.upper()), INDEX_TIPS.get(name), name in DEFAULT_INDICES)
             for name in source.index_names()), columns=3)
        for name, cb in self.index_checks.items():
            cb.clicked.connect(lambda checked, n=name: self._on_index_clicked(n, checked))
        ilay.addLayout(irow)
        mrow = QHBoxLayout()
        min_label = QLabel("Min. valid")
        min_label.setToolTip("Pixels with fewer valid (clear) observations are refused, not invented")
        mrow.addWidget(min_label)
        self.min_valid_spin = QSpinBox()
        self.min_valid_spin.setRange(2, 10000)
        self.min_valid_spin.setValue(3)
        mrow.addWidget(self.min_valid_spin)
        mrow.addStretch(1)
        self.inspect_button = QToolButton()
        self.inspect_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        if inspector_action is not None:
            self.inspect_button.setDefaultAction(inspector_action)
        else:
            self.inspect_button.setVisible(False)
        mrow.addWidget(self.inspect_button)
        ilay.addLayout(mrow)
        self.pixel_label = status_label("Pick the pixel inspector and click the map.", "PimcPixelLabel")
        ilay.addWidget(self.pixel_label)
        self.figure_view = FigureView()
        ilay.addWidget(self.figure_view)
        self.save_button = QPushButton("Save figure…")
        self.save_button.setObjectName("PimcSaveFigureButton")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_figure_dialog)
        ilay.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignRight)

    # ------------------------------------------------------------------ indices
    def selected_indices(self) -> tuple[str, ...]:
        return tuple(n for n, cb in self.index_checks.items() if cb.isChecked())

    def set_indices(self, names) -> None:
        self._wanted = set(names)
        for n, cb in self.index_checks.items():
            cb.setChecked(n in names and cb.isEnabled())

    def _on_index_clicked(self, name: str, checked: bool) -> None:
        (self._wanted.add if checked else self._wanted.discard)(name)

    def follow_series(self, ts) -> None:
        """The source was checked: offer the indices its bands allow; clear a figure (and its
        markers) of another series."""
        if self.last_result is not None and self._query_key != self.source_box.key():
            self.clear_pixel()
        if ts is None:
            return
        indices = import_core("pimc_core.series.indices")
        have = set(ts.band_names)
        for name, cb in self.index_checks.items():
            missing = [b for b in indices.required_bands(name) if b not in have]
            cb.setEnabled(not missing)
            cb.setChecked(not missing and name in self._wanted)
            cb.setToolTip(f"needs the {' and '.join(missing)} band{'s' if len(missing) > 1 else ''}, which this "
                          "series has not" if missing else "")
        if not self.selected_indices():  # e.g. only EVI wanted, and no blue band: NDVI
            first = next((cb for cb in self.index_checks.values() if cb.isEnabled()), None)
            if first is not None:
                first.setChecked(True)

    def clear_pixel(self) -> None:
        """Forget the shown pixel: figure, markers, the similarity query."""
        self.last_result = None
        self.last_query_xy = self._query_key = None
        self.figure_view.set_figure(None)
        self.save_button.setEnabled(False)
        self.markers.clear()
        set_status(self.pixel_label, "Pick the pixel inspector and click the map.", ok=None)

    def mark_query(self, ts) -> None:
        """Mark the last inspected pixel as the query of a similarity map."""
        if self.last_query_xy is not None:
            self.markers.show_query(self.last_query_xy, ts)

    def query_xy(self, key) -> tuple[float, float] | None:
        """The centre of the last inspected pixel (series CRS) if it was inspected in the series
        of ``key`` (:meth:`SourceSection.key`), else None."""
        return self.last_query_xy if self.last_query_xy is not None and self._query_key == key else None

    # ------------------------------------------------------------------ a click
    def inspect_point(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem | None = None) -> bool:
        """Show the index curves and recurrence plots of the pixel under ``point``.

        Args:
            point: map coordinates in ``crs`` (the canvas CRS); the series CRS when None.

        Returns:
            True when a figure is shown; False when the panel shows why not.
        """
        QApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
        try:
            return self._inspect_point(point, crs)
        finally:
            QApplication.restoreOverrideCursor()

    def _inspect_point(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem | None) -> bool:
        t0 = time.perf_counter()
        ts = self.source_box.current_series()
        if ts is None:
            self._pixel_error(self.source_box.why_no_series())
            return False
        errors = import_core("pimc_core.errors")  # importable: the series opened
        try:
            names = self.selected_indices()
            if not names:
                raise errors.ConfigError("tick at least one index")
            x, y = to_series_xy(point, crs, ts)
            row, col = ts.grid.rowcol(x, y)
            t1 = time.perf_counter()
            result = pipeline.pixel_result(ts, row, col, names, min_valid=self.min_valid_spin.value())
            t2 = time.perf_counter()
            fig = result.figure()
            self.figure_view.set_figure(fig)
            t3 = time.perf_counter()
        except MissingDependencyError as e:
            self._pixel_error(str(e))
            return False
        except errors.PimcError as e:
            self._pixel_error(str(e))
            return False
        except QgsCsException as e:
            self._pixel_error(f"cannot transform the clicked point to the series CRS ({e})")
            return False
        except Exception as e:  # noqa: BLE001 - never a traceback in the user's face
            log_exception("inspecting a pixel")
            self._pixel_error(UNEXPECTED.format(e))
            return False
        self.last_result = result
        self.last_query_xy, self._query_key = ts.grid.xy(row, col), self.source_box.key()  # pixel centre, series CRS
        self.last_timing = {"open": t1 - t0, "pixel": t2 - t1, "figure": t3 - t2, "total": t3 - t0}
        self.markers.show_pixel(self.last_query_xy, ts)
        set_status(self.pixel_label,
                   f"{result.title} — {', '.join(n.upper() for n in names)} ({self.last_timing['total']:.2f} s)",
                   ok=None)
        self.save_button.setEnabled(True)
        return True

    def _pixel_error(self, text: str) -> None:
        self.last_result = None
        self.markers.clear()
        self.figure_view.set_figure(None)
        self.save_button.setEnabled(False)
        set_status(self.pixel_label, text, ok=False)

    # ------------------------------------------------------------------ saving
    def _save_figure_dialog(self) -> None:
        if self.last_result is None:
            return
        r = self.last_result
        start = Path(QgsSettings().value(SETTINGS + "last_dir", str(Path.home()))) / f"pimc_row{r.row}_col{r.col}.png"
        path, _ = QFileDialog.getSaveFileName(
            self, "Save figure", str(start), "PNG image (*.png);;SVG image (*.svg);;PDF (*.pdf)"
        )
        if path:
            self.save_figure(path)

    def save_figure(self, path: str | Path) -> Path | None:
        """Save the shown figure (PNG, SVG or PDF by extension; PNG when none)."""
        fig = self.figure_view.figure
        if fig is None:
            return None
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg", ".pdf"):
            path = path.with_name(path.name + ".png")
        try:
            if path.suffix.lower() == ".png":
                import_core("pimc_core.viz.plotting").save_figure(fig, path)
            else:
                with import_core("pimc_core.io.atomic").atomic_path(path) as tmp:
                    fig.savefig(tmp, format=path.suffix[1:].lower())
        except Exception as e:  # noqa: BLE001 - a full disk or a read-only folder
            notify(self.iface, f"cannot save the figure: {e}", ok=False)
            return None
        QgsSettings().setValue(SETTINGS + "last_dir", str(path.parent))
        notify(self.iface, f"figure saved to {path}", ok=True)
        return path

    def cleanup(self) -> None:
        """Let the figure go; take the markers off the map."""
        self.figure_view.set_figure(None)
        self.markers.clear()


__all__ = ["DEFAULT_INDICES", "InspectorSection"]
