"""The PIMC time-series panel: choose a series, check it, inspect pixels.

Sections (QGroupBox each, so later tools — fit, classify, forecast, cluster, similarity — add
their own section under the same source):

* **Time series** — a manifest or folder (QgsFileWidget), or raster layers of the project (a
  table of layer + date, dates read from the layer or file name, editable, sorted by date); the
  sensor preset; an optional band mapping; a model file (used by the model tools, later). The
  source is checked as soon as it changes: :func:`pimc_core.timeseries.open_series` runs and its
  message (a :class:`~pimc_core.errors.PimcError`) shows in the status line.
* **Pixel inspector** — indices and the minimum of valid observations; a click with the map tool
  reads that one pixel, makes its recurrence plots and shows the core's figure; "Save figure…".
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
import time
import traceback
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCsException,
    QgsMapLayer,
    QgsMessageLog,
    QgsPointXY,
    QgsProject,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsSettings,
)
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSignal
from qgis.PyQt.QtGui import QCursor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import pipeline, source
from .bootstrap import MissingDependencyError, import_core
from .figure_view import FigureView
from .geo import to_series_xy

LOG_TAG = "PIMC"
SETTINGS = "pimc/dock/"
_OK_STYLE = "color: #1a7f37;"
_ERR_STYLE = "color: #c62828;"
DEFAULT_INDICES = ("ndvi", "evi", "savi")


def _date_of(text: str) -> dt.date | None:
    dates = import_core("pimc_core.dates")
    text = (text or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return dates.date_from_name(text)


def layer_file(layer: QgsMapLayer) -> str | None:
    """The file behind a GDAL raster layer, or None (web services, memory layers …)."""
    if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
        return None
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = parts.get("path") or layer.source()
    return path if Path(path).is_file() else None


def layer_date(layer: QgsMapLayer, path: str | None) -> dt.date | None:
    """The acquisition date in the layer's name, else in its file name."""
    dates = import_core("pimc_core.dates")
    return dates.date_from_name(layer.name()) or (dates.date_from_name(Path(path).name) if path else None)


class LayersTable(QTableWidget):
    """Raster layers of the project with their dates: tick to use, edit the date, sorted by date."""

    COL_LAYER, COL_DATE = 0, 1
    changed = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(0, 2, parent)
        self.setObjectName("PimcLayersTable")
        self.setHorizontalHeaderLabels(["Layer", "Date (YYYY-MM-DD)"])
        self.horizontalHeader().setSectionResizeMode(self.COL_LAYER, QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setSectionResizeMode(self.COL_DATE, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setMinimumHeight(110)
        self.itemChanged.connect(self._on_item_changed)
        self._filling = False

    def reload(self, project: QgsProject | None = None) -> None:
        """List the project's GDAL raster layers (ticked when a date was found), keeping edits."""
        project = project or QgsProject.instance()
        previous = {r["layer_id"]: r for r in self.rows(all_rows=True)}
        self._filling = True
        self.setSortingEnabled(False)
        self.setRowCount(0)
        for layer in project.mapLayers().values():
            path = layer_file(layer)
            if path is None:
                continue
            old = previous.get(layer.id())
            date = old["date"] if old else layer_date(layer, path)
            checked = old["checked"] if old else date is not None
            r = self.rowCount()
            self.insertRow(r)
            name = QTableWidgetItem(layer.name())
            name.setData(Qt.ItemDataRole.UserRole, layer.id())
            name.setData(Qt.ItemDataRole.UserRole + 1, path)
            name.setToolTip(path)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable)
            name.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.setItem(r, self.COL_LAYER, name)
            self.setItem(r, self.COL_DATE, QTableWidgetItem(date.isoformat() if date else ""))
        self.setSortingEnabled(True)
        self.sortItems(self.COL_DATE, Qt.SortOrder.AscendingOrder)
        self._filling = False
        self.changed.emit()

    def rows(self, all_rows: bool = False) -> list[dict]:
        """The ticked rows (or all) as dicts: layer_id, name, path, date (or None), checked."""
        out = []
        for r in range(self.rowCount()):
            name, date = self.item(r, self.COL_LAYER), self.item(r, self.COL_DATE)
            if name is None:
                continue
            checked = name.checkState() == Qt.CheckState.Checked
            if checked or all_rows:
                out.append(dict(
                    layer_id=name.data(Qt.ItemDataRole.UserRole), name=name.text(),
                    path=name.data(Qt.ItemDataRole.UserRole + 1),
                    date=_date_of(date.text() if date else ""), checked=checked,
                ))
        return out

    def set_date(self, row: int, text: str) -> None:
        """Edit the date of a row (as a user typing it)."""
        self.item(row, self.COL_DATE).setText(text)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        if item.column() == self.COL_DATE:
            d = _date_of(item.text())
            if d is not None and item.text() != d.isoformat():
                item.setText(d.isoformat())  # normalise 20230105 → 2023-01-05 (re-enters once)
                return
        self.changed.emit()


class PimcDock(QDockWidget):
    """The PIMC panel. ``iface`` may be None (tests, or QGIS without a GUI)."""

    def __init__(self, iface=None, parent=None, inspector_action=None) -> None:
        super().__init__("PIMC time series", parent)
        self.setObjectName("PimcDock")
        self.iface = iface
        self.series = None
        self.last_result: pipeline.PixelResult | None = None
        self.last_timing: dict[str, float] = {}
        self._series_key = None
        self._tmpdir = tempfile.mkdtemp(prefix="pimc_panel_")
        self._warmed = False
        self._project_connected = False

        self._validate_timer = QTimer(self)
        self._validate_timer.setSingleShot(True)
        self._validate_timer.setInterval(400)
        self._validate_timer.timeout.connect(self.validate)
        self._build(inspector_action)
        self._restore_settings()
        self._connect_project()
        self._on_mode_changed()

    # ------------------------------------------------------------------ building
    def _build(self, inspector_action) -> None:
        body = QWidget()
        lay = QVBoxLayout(body)

        # --- time series
        box = QGroupBox("Time series")
        form = QVBoxLayout(box)
        modes = QVBoxLayout()
        self.mode_path = QRadioButton("File or folder")
        self.mode_layers = QRadioButton("Project layers")
        self.mode_path.setToolTip("A manifest (.yaml), a folder of dated rasters, or a folder of date folders")
        self.mode_layers.setToolTip("Raster layers of the project, one per date (dates read from their names)")
        self.mode_path.setChecked(True)
        self._mode_group = QButtonGroup(self)
        self._mode_group.addButton(self.mode_path)
        self._mode_group.addButton(self.mode_layers)
        modes.addWidget(self.mode_path)
        modes.addWidget(self.mode_layers)
        form.addLayout(modes)

        self.path_row = QWidget()
        prow = QHBoxLayout(self.path_row)
        prow.setContentsMargins(0, 0, 0, 0)
        self.source_widget = QgsFileWidget()
        self.source_widget.setObjectName("PimcSourceWidget")
        self.source_widget.setStorageMode(QgsFileWidget.StorageMode.GetFile)
        self.source_widget.setFilter("Manifest (*.yaml *.yml);;All files (*)")
        self.source_widget.setDialogTitle("Time series manifest")
        self.source_widget.lineEdit().setPlaceholderText("manifest .yaml, or a folder of dated rasters")
        self.folder_button = QToolButton()
        self.folder_button.setText("Folder…")
        self.folder_button.setToolTip("Choose a folder of dated rasters or of date folders")
        self.folder_button.clicked.connect(self._choose_folder)
        prow.addWidget(self.source_widget, 1)
        prow.addWidget(self.folder_button)
        form.addWidget(self.path_row)

        self.layers_box = QWidget()
        lrow = QVBoxLayout(self.layers_box)
        lrow.setContentsMargins(0, 0, 0, 0)
        self.layers_table = LayersTable()
        self.reload_layers_button = QPushButton("Reload project layers")
        self.reload_layers_button.clicked.connect(lambda: self.layers_table.reload())
        lrow.addWidget(self.layers_table)
        lrow.addWidget(self.reload_layers_button)
        form.addWidget(self.layers_box)

        opts = QFormLayout()
        opts.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.sensor_combo = QComboBox()
        self.sensor_combo.setObjectName("PimcSensorCombo")
        self.sensor_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.sensor_combo.setMinimumContentsLength(8)
        self.sensor_combo.addItem("auto", None)
        self.sensor_combo.setItemData(0, source.AUTO_SENSOR, Qt.ItemDataRole.ToolTipRole)
        for name, desc in source.sensor_descriptions().items():
            self.sensor_combo.addItem(name, name)
            self.sensor_combo.setItemData(self.sensor_combo.count() - 1, desc, Qt.ItemDataRole.ToolTipRole)
        opts.addRow("Sensor preset", self.sensor_combo)
        self.bands_edit = QLineEdit()
        self.bands_edit.setPlaceholderText("e.g. blue=1,red=3,nir=4")
        self.bands_edit.setToolTip(
            "Which band of each multi-band file is which; empty: from the manifest or the band names")
        opts.addRow("Band mapping", self.bands_edit)
        self.model_widget = QgsFileWidget()
        self.model_widget.setObjectName("PimcModelWidget")
        self.model_widget.setFilter("PIMC model (*.safetensors *.pimc);;All files (*)")
        self.model_widget.setEnabled(False)
        self.model_widget.setToolTip("A trained PIMC model, for the model tools (fit, classify, forecast): coming later")
        opts.addRow("Model file", self.model_widget)
        form.addLayout(opts)

        self.status_label = QLabel("Choose a time series.")
        self.status_label.setObjectName("PimcStatusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addWidget(self.status_label)
        lay.addWidget(box)

        # --- pixel inspector
        ibox = QGroupBox("Pixel inspector")
        ilay = QVBoxLayout(ibox)
        irow = QGridLayout()
        self.index_checks: dict[str, QCheckBox] = {}
        for i, name in enumerate(source.index_names()):
            cb = QCheckBox(name.upper())
            cb.setChecked(name in DEFAULT_INDICES)
            self.index_checks[name] = cb
            irow.addWidget(cb, i // 3, i % 3)
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
        self.pixel_label = QLabel("Pick the pixel inspector and click the map.")
        self.pixel_label.setObjectName("PimcPixelLabel")
        self.pixel_label.setWordWrap(True)
        self.pixel_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        ilay.addWidget(self.pixel_label)
        self.figure_view = FigureView()
        ilay.addWidget(self.figure_view)
        self.save_button = QPushButton("Save figure…")
        self.save_button.setObjectName("PimcSaveFigureButton")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_figure_dialog)
        ilay.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(ibox)
        lay.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)

        # any change of the source → check it again (debounced)
        self.mode_path.toggled.connect(self._on_mode_changed)
        self.source_widget.fileChanged.connect(self._schedule_validation)
        self.sensor_combo.currentIndexChanged.connect(self._schedule_validation)
        self.bands_edit.editingFinished.connect(self._schedule_validation)
        self.layers_table.changed.connect(self._schedule_validation)

    # ------------------------------------------------------------------ source
    def _choose_folder(self) -> None:
        start = self.source_widget.filePath() or QgsSettings().value(SETTINGS + "last_dir", "")
        folder = QFileDialog.getExistingDirectory(self, "Folder of dated rasters", start)
        if folder:
            self.source_widget.setFilePath(folder)

    def _on_mode_changed(self, *_args) -> None:
        layers = self.mode_layers.isChecked()
        self.path_row.setVisible(not layers)
        self.layers_box.setVisible(layers)
        if layers and self.layers_table.rowCount() == 0:
            self.layers_table.reload()
        self._schedule_validation()

    def set_source_path(self, path: str) -> None:
        """Choose a manifest or folder (as the file widget does)."""
        self.mode_path.setChecked(True)
        self.source_widget.setFilePath(str(path))

    def set_sensor(self, name: str | None) -> None:
        i = self.sensor_combo.findData(name)
        self.sensor_combo.setCurrentIndex(max(i, 0))

    def source_spec(self) -> source.SourceSpec:
        """The current choice as a :class:`~qgis_plugin.source.SourceSpec` (bands parsed)."""
        sensor = self.sensor_combo.currentData()
        bands = source.parse_bands(self.bands_edit.text())
        if self.mode_layers.isChecked():
            rows = [(r["date"], r["path"], r["name"]) for r in self.layers_table.rows()]
            return source.SourceSpec(layers=rows, sensor=sensor, bands=bands, manifest_dir=self._tmpdir)
        return source.SourceSpec(path=self.source_widget.filePath(), sensor=sensor, bands=bands)

    def _key(self):
        if self.mode_layers.isChecked():
            rows = tuple((r["date"], r["path"]) for r in self.layers_table.rows())
            return ("layers", rows, self.sensor_combo.currentData(), self.bands_edit.text())
        return ("path", self.source_widget.filePath(), self.sensor_combo.currentData(), self.bands_edit.text())

    def _schedule_validation(self, *_args) -> None:
        self.series = None
        self._series_key = None
        self._validate_timer.start()

    def validate(self):
        """Open the chosen series now; show what it holds, or the core's one-line error.

        Returns:
            The :class:`~pimc_core.timeseries.TimeSeries`, or None when it cannot be opened.
        """
        self._validate_timer.stop()
        key = self._key()
        self.series = None
        self._series_key = key
        try:
            errors = import_core("pimc_core.errors")
        except MissingDependencyError as e:
            self._set_status(str(e), ok=False)
            return None
        try:
            ts = self.source_spec().open()
        except errors.PimcError as e:
            self._set_status(str(e), ok=False)
            return None
        except MissingDependencyError as e:
            self._set_status(str(e), ok=False)
            return None
        except Exception as e:  # a bug, not a user error: say so, log the traceback
            self._log_exception("opening the time series")
            self._set_status(f"unexpected error while opening the series: {e}", ok=False)
            return None
        self.series = ts
        self._set_status("✓ " + source.describe_series(ts), ok=True)
        self._save_settings()
        self._warm_up()
        return ts

    def current_series(self):
        """The series of the current choice (opened again only when the choice changed)."""
        if self.series is not None and self._series_key == self._key():
            return self.series
        return self.validate()

    def _set_status(self, text: str, ok: bool) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(_OK_STYLE if ok else _ERR_STYLE)

    def _warm_up(self) -> None:
        """Import what the first click needs (torch, matplotlib) in the background, once."""
        if self._warmed:
            return
        self._warmed = True

        def imports():
            for mod in ("pimc_core.series", "pimc_core.recurrence", "pimc_core.plotting"):
                try:
                    import_core(mod)
                except Exception:  # noqa: BLE001 - reported on the first click instead
                    return

        threading.Thread(target=imports, name="pimc-warm-up", daemon=True).start()

    # ------------------------------------------------------------------ pixel inspector
    def selected_indices(self) -> tuple[str, ...]:
        return tuple(n for n, cb in self.index_checks.items() if cb.isChecked())

    def set_indices(self, names) -> None:
        for n, cb in self.index_checks.items():
            cb.setChecked(n in names)

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
        ts = self.current_series()
        if ts is None:
            self._pixel_error(f"choose a valid time series first: {self.status_label.text()}")
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
            self._log_exception("inspecting a pixel")
            self._pixel_error(f"unexpected error (details in the PIMC log): {e}")
            return False
        self.last_result = result
        self.last_timing = {"open": t1 - t0, "pixel": t2 - t1, "figure": t3 - t2, "total": t3 - t0}
        self.pixel_label.setStyleSheet("")
        self.pixel_label.setText(
            f"{result.title} — {', '.join(n.upper() for n in names)} ({self.last_timing['total']:.2f} s)"
        )
        self.save_button.setEnabled(True)
        return True

    def _pixel_error(self, text: str) -> None:
        self.last_result = None
        self.figure_view.set_figure(None)
        self.save_button.setEnabled(False)
        self.pixel_label.setText(text)
        self.pixel_label.setStyleSheet(_ERR_STYLE)

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
                import_core("pimc_core.plotting").save_figure(fig, path)
            else:
                with import_core("pimc_core.raster_io").atomic_path(path) as tmp:
                    fig.savefig(tmp, format=path.suffix[1:].lower())
        except Exception as e:  # noqa: BLE001 - a full disk or a read-only folder
            self._message(f"cannot save the figure: {e}", ok=False)
            return None
        QgsSettings().setValue(SETTINGS + "last_dir", str(path.parent))
        self._message(f"figure saved to {path}", ok=True)
        return path

    # ------------------------------------------------------------------ helpers
    def _message(self, text: str, ok: bool) -> None:
        if self.iface is not None:
            from .compat import MSG_CRITICAL, MSG_SUCCESS

            self.iface.messageBar().pushMessage("PIMC", text, level=MSG_SUCCESS if ok else MSG_CRITICAL, duration=5)
        else:
            QgsMessageLog.logMessage(text, LOG_TAG)

    def _log_exception(self, what: str) -> None:
        from .compat import MSG_CRITICAL

        QgsMessageLog.logMessage(f"error while {what}:\n{traceback.format_exc()}", LOG_TAG, MSG_CRITICAL)

    def _restore_settings(self) -> None:
        s = QgsSettings()
        path = s.value(SETTINGS + "source", "")
        if path:
            self.source_widget.setFilePath(path)
        self.set_sensor(s.value(SETTINGS + "sensor", None) or None)

    def _save_settings(self) -> None:
        s = QgsSettings()
        if self.mode_path.isChecked():
            s.setValue(SETTINGS + "source", self.source_widget.filePath())
        s.setValue(SETTINGS + "sensor", self.sensor_combo.currentData() or "")

    def _connect_project(self) -> None:
        p = QgsProject.instance()
        p.layersAdded.connect(self._on_project_layers)
        p.layersRemoved.connect(self._on_project_layers)
        self._project_connected = True

    def _on_project_layers(self, *_args) -> None:
        if self.mode_layers.isChecked():
            self.layers_table.reload()

    def cleanup(self) -> None:
        """Disconnect from the project, stop timers, remove the temporary folder."""
        self._validate_timer.stop()
        if self._project_connected:
            p = QgsProject.instance()
            for sig in (p.layersAdded, p.layersRemoved):
                try:
                    sig.disconnect(self._on_project_layers)
                except (TypeError, RuntimeError):
                    pass
            self._project_connected = False
        self.figure_view.set_figure(None)
        shutil.rmtree(self._tmpdir, ignore_errors=True)

__all__ = ["PimcDock", "LayersTable", "layer_file", "layer_date"]
