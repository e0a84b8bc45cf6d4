"""The PIMC time-series panel: choose a series, check it, inspect pixels, map regions, train.

Sections (a group box each, all under the same source):

* **Time series** — a manifest or folder (QgsFileWidget), or raster layers of the project (a
  table of layer + date, dates read from the layer or file name, editable, sorted by date); the
  sensor preset; an optional band mapping; the model file (``.pimc``) the map tools use. The
  source is checked as soon as it changes: :func:`pimc_core.io.timeseries.open_series` runs and its
  message (a :class:`~pimc_core.errors.PimcError`) shows in the status line.
* **Pixel inspector** — indices and the minimum of valid observations; a click with the map tool
  reads that one pixel, makes its recurrence plots and shows the core's figure; "Save figure…".
* **Maps of a region** — products (classes + confidence, forecast, embeddings, clusters,
  similarity to the inspected pixel), then the region: a rectangle or polygon drawn on the map,
  the canvas extent, or the selected polygons of a layer. A background task
  (:class:`~qgis_plugin.tasks.MapTask`) runs the core; the maps arrive as layers in a group
  ``PIMC <timestamp>``. Every product comes from a model: without one the panel says so.
* **Train a model** — labelled polygons (a class field) or a label raster, an effort preset, a
  ``.pimc`` file: a background :class:`~qgis_plugin.tasks.FitTask`; the new model becomes the
  panel's model file.
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
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCsException,
    QgsMapLayer,
    QgsMapLayerProxyModel,
    QgsMessageLog,
    QgsPointXY,
    QgsProject,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsSettings,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox
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
    QProgressBar,
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

from . import fitting, pipeline, source
from .bootstrap import MissingDependencyError, import_core
from .compat import QAction
from .figure_view import FigureView
from .geo import series_crs, to_series_xy
from .mapping import MapRequest, model_is_set

LOG_TAG = "PIMC"
SETTINGS = "pimc/dock/"
_OK_STYLE = "color: #1a7f37;"
_ERR_STYLE = "color: #c62828;"
DEFAULT_INDICES = ("ndvi", "evi", "savi")
_FILTERS = getattr(Qgis, "LayerFilter", None) or QgsMapLayerProxyModel.Filter  # QGIS >= 3.34 / before
POLYGON_FILTER = _FILTERS.PolygonLayer
LABEL_FILTER = _FILTERS.PolygonLayer | _FILTERS.RasterLayer


def _date_of(text: str) -> dt.date | None:
    dates = import_core("pimc_core.io.dates")
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
    dates = import_core("pimc_core.io.dates")
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
        self.map_task = None
        self.fit_task = None
        self.rect_tool = None
        self.polygon_tool = None
        self.last_query_xy: tuple[float, float] | None = None
        self._query_key = None

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
        self.model_widget.setFilter("PIMC model (*.pimc);;All files (*)")
        self.model_widget.setDialogTitle("PIMC model file")
        self.model_widget.lineEdit().setPlaceholderText("a trained model (.pimc), for the maps")
        self.model_widget.setToolTip(
            "A trained PIMC model (.pimc) — from 'Train a model' below, pimc:fit or `pimc fit`. The maps "
            "(classes, forecast, embeddings, clusters, similarity) all come from it. "
            "builtin:nearest-centroid is a non-PIMC baseline for the synthetic sample data.")
        self.model_widget.fileChanged.connect(self._on_model_changed)
        opts.addRow("Model file", self.model_widget)
        self.model_label = QLabel("")
        self.model_label.setObjectName("PimcModelLabel")
        self.model_label.setWordWrap(True)
        self.model_label.setVisible(False)
        opts.addRow("", self.model_label)
        form.addLayout(opts)

        self.status_label = QLabel("Choose a time series.")
        self.status_label.setObjectName("PimcStatusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addWidget(self.status_label)
        lay.addWidget(box)

        # --- pixel inspector
        ibox = QgsCollapsibleGroupBox("Pixel inspector")
        ibox.setObjectName("PimcInspectorBox")
        ibox.setSaveCollapsedState(False)
        self.inspector_box = ibox
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
        lay.addWidget(self._build_maps())
        lay.addWidget(self._build_fit())
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

    def _build_maps(self) -> QWidget:
        box = QgsCollapsibleGroupBox("Maps of a region")
        box.setObjectName("PimcMapsBox")
        box.setSaveCollapsedState(False)
        self.maps_box = box
        lay = QVBoxLayout(box)
        grid = QGridLayout()
        self.product_checks: dict[str, QCheckBox] = {}
        for i, (key, text, tip) in enumerate((
            ("classes", "Classes + confidence", "class map (names and colours in the legend) and the probability of the class"),
            ("forecast", "Forecast", "the model's vegetation-index forecast, one band per future date"),
            ("embeddings", "Embeddings", "the model's embedding of each pixel, one band per dimension"),
            ("clusters", "Clusters", "k-means clusters of the embeddings (an unsupervised map)"),
            ("similarity", "Similar to inspected pixel",
             "cosine similarity of every pixel's embedding to that of the last pixel clicked with the inspector"),
        )):
            cb = QCheckBox(text)
            cb.setToolTip(tip)
            cb.setChecked(key == "classes")
            self.product_checks[key] = cb
            grid.addWidget(cb, i // 2, (i % 2) * 2)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(2, 255)
        self.k_spin.setValue(6)
        self.k_spin.setPrefix("k = ")
        self.k_spin.setToolTip("number of clusters")
        grid.addWidget(self.k_spin, 1, 3)
        lay.addLayout(grid)

        lay.addWidget(QLabel("Region — draw on the map, or take:"))
        row = QHBoxLayout()
        self.rect_action = QAction("Rectangle", self)
        self.rect_action.setObjectName("PimcRectangleAction")
        self.rect_action.setToolTip("Drag a rectangle on the map: it is mapped with the chosen products")
        self.polygon_action = QAction("Polygon", self)
        self.polygon_action.setObjectName("PimcPolygonAction")
        self.polygon_action.setToolTip(
            "Click the vertices of a polygon on the map; right click or double click closes it and maps it")
        for act, slot in ((self.rect_action, self.start_rectangle_tool), (self.polygon_action, self.start_polygon_tool)):
            act.setCheckable(True)
            act.triggered.connect(slot)
            b = QToolButton()
            b.setDefaultAction(act)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            row.addWidget(b)
        self.extent_button = QPushButton("Canvas extent")
        self.extent_button.setToolTip("Map what the map canvas shows")
        self.extent_button.clicked.connect(self.map_canvas_extent)
        row.addWidget(self.extent_button)
        self.features_button = QPushButton("Selected polygons")
        self.features_button.setToolTip("Map the selected polygons of the layer chosen below (pixels outside them stay empty)")
        self.features_button.clicked.connect(self.map_selected_features)
        row.addWidget(self.features_button)
        row.addStretch(1)
        lay.addLayout(row)
        if self.iface is None:
            for w in (self.rect_action, self.polygon_action, self.extent_button):
                w.setEnabled(False)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.region_layer_combo = QgsMapLayerComboBox()
        self.region_layer_combo.setObjectName("PimcRegionLayerCombo")
        self.region_layer_combo.setFilters(POLYGON_FILTER)
        self.region_layer_combo.setAllowEmptyLayer(True)
        form.addRow("Polygon layer", self.region_layer_combo)
        self.out_widget = QgsFileWidget()
        self.out_widget.setObjectName("PimcOutputFolder")
        self.out_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.out_widget.setDialogTitle("Folder for the maps")
        self.out_widget.lineEdit().setPlaceholderText("empty: a temporary folder")
        self.out_widget.setToolTip("Each run writes a new sub-folder PIMC_<date>_<time>_… with GeoTIFFs and QGIS styles")
        form.addRow("Output folder", self.out_widget)
        lay.addLayout(form)
        prow = QHBoxLayout()
        self.map_progress = QProgressBar()
        self.map_progress.setRange(0, 100)
        self.map_progress.setVisible(False)
        prow.addWidget(self.map_progress, 1)
        self.map_cancel_button = QPushButton("Cancel")
        self.map_cancel_button.setVisible(False)
        self.map_cancel_button.clicked.connect(self.cancel_map)
        prow.addWidget(self.map_cancel_button)
        lay.addLayout(prow)
        self.map_status = QLabel("Choose a model file, then a region.")
        self.map_status.setObjectName("PimcMapStatus")
        self.map_status.setWordWrap(True)
        self.map_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.map_status)
        return box

    def _build_fit(self) -> QWidget:
        box = QgsCollapsibleGroupBox("Train a model")
        box.setObjectName("PimcFitBox")
        box.setSaveCollapsedState(False)
        box.setCollapsed(True)
        self.fit_box = box
        lay = QVBoxLayout(box)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.fit_layer_combo = QgsMapLayerComboBox()
        self.fit_layer_combo.setObjectName("PimcFitLayerCombo")
        self.fit_layer_combo.setFilters(LABEL_FILTER)
        self.fit_layer_combo.setAllowEmptyLayer(True)
        self.fit_layer_combo.setToolTip("Polygons with a class field, or a label raster on the series grid (0 = unlabelled)")
        form.addRow("Labels", self.fit_layer_combo)
        self.fit_field_combo = QgsFieldComboBox()
        self.fit_field_combo.setObjectName("PimcFitFieldCombo")
        self.fit_field_combo.setToolTip("The attribute holding the class: integer ids 1..255, or class names")
        form.addRow("Class field", self.fit_field_combo)
        self.fit_selected_check = QCheckBox("Selected polygons only")
        form.addRow("", self.fit_selected_check)
        self.fit_preset_combo = QComboBox()
        self.fit_preset_combo.setObjectName("PimcFitPresetCombo")
        self.fit_preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.fit_preset_combo.setMinimumContentsLength(10)
        for key, label in fitting.PRESET_LABELS.items():
            self.fit_preset_combo.addItem(label, key)
        form.addRow("Effort", self.fit_preset_combo)
        self.fit_out_widget = QgsFileWidget()
        self.fit_out_widget.setObjectName("PimcFitOutput")
        self.fit_out_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.fit_out_widget.setFilter("PIMC model (*.pimc)")
        self.fit_out_widget.setDialogTitle("Save the model as")
        self.fit_out_widget.lineEdit().setPlaceholderText("empty: pimc_model_<date>.pimc in the output folder")
        form.addRow("Save model as", self.fit_out_widget)
        lay.addLayout(form)
        prow = QHBoxLayout()
        self.fit_button = QPushButton("Train")
        self.fit_button.setObjectName("PimcFitButton")
        self.fit_button.setToolTip("Pretrain on the series (no labels), fine-tune on the labels, save the model")
        self.fit_button.clicked.connect(self.start_fit)
        prow.addWidget(self.fit_button)
        self.fit_progress = QProgressBar()
        self.fit_progress.setRange(0, 100)
        self.fit_progress.setVisible(False)
        prow.addWidget(self.fit_progress, 1)
        self.fit_cancel_button = QPushButton("Cancel")
        self.fit_cancel_button.setVisible(False)
        self.fit_cancel_button.clicked.connect(self.cancel_fit)
        prow.addWidget(self.fit_cancel_button)
        lay.addLayout(prow)
        self.fit_status = QLabel("Labelled polygons or a label raster → a model for the maps.")
        self.fit_status.setObjectName("PimcFitStatus")
        self.fit_status.setWordWrap(True)
        self.fit_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.fit_status)
        self.fit_layer_combo.layerChanged.connect(self._on_fit_layer_changed)
        self._on_fit_layer_changed(self.fit_layer_combo.currentLayer())
        return box

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
            The :class:`~pimc_core.io.timeseries.TimeSeries`, or None when it cannot be opened.
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
            for mod in ("pimc_core.series.pixel", "pimc_core.series.recurrence", "pimc_core.viz.plotting"):
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
        self.last_query_xy, self._query_key = ts.grid.xy(row, col), self._key()  # pixel centre, series CRS
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
                import_core("pimc_core.viz.plotting").save_figure(fig, path)
            else:
                with import_core("pimc_core.io.atomic").atomic_path(path) as tmp:
                    fig.savefig(tmp, format=path.suffix[1:].lower())
        except Exception as e:  # noqa: BLE001 - a full disk or a read-only folder
            self._message(f"cannot save the figure: {e}", ok=False)
            return None
        QgsSettings().setValue(SETTINGS + "last_dir", str(path.parent))
        self._message(f"figure saved to {path}", ok=True)
        return path

    # ------------------------------------------------------------------ model
    def model_spec(self) -> str:
        """The model choice: a ``.pimc`` path, ``builtin:nearest-centroid``, or ''."""
        return (self.model_widget.filePath() or "").strip()

    def set_model_path(self, path) -> None:
        self.model_widget.setFilePath(str(path))
        self._on_model_changed(str(path))

    def _on_model_changed(self, *_args) -> None:
        spec = self.model_spec()
        text, ok = "", True
        if spec and not spec.startswith("builtin:"):
            try:
                meta = import_core("pimc_core.models.model_file").read_metadata(spec)
                classes = [str(c.get("name")) for c in meta.get("classes") or []]
                shown = ", ".join(classes[:6]) + (" …" if len(classes) > 6 else "")
                text = (f"{len(classes)} classes ({shown}); indices {', '.join(meta.get('indices') or [])}; "
                        f"{meta.get('n_dates', '?')} dates")
            except Exception as e:  # noqa: BLE001 - any unreadable file: say why, never raise
                text, ok = f"not a usable model file: {e}", False
        elif spec:
            text = "a non-PIMC baseline for the synthetic sample data (nearest class-mean NDVI curve)"
        self.model_label.setText(text)
        self.model_label.setStyleSheet("" if ok else _ERR_STYLE)
        self.model_label.setVisible(bool(text))
        if ok and spec:
            QgsSettings().setValue(SETTINGS + "model", spec)

    # ------------------------------------------------------------------ maps
    def map_products(self) -> tuple[str, ...]:
        out = []
        for key, cb in self.product_checks.items():
            if cb.isChecked():
                out.extend(("classes", "confidence") if key == "classes" else (key,))
        return tuple(out)

    def set_map_products(self, keys) -> None:
        """Tick the product boxes (``classes`` stands for classes + confidence)."""
        for key, cb in self.product_checks.items():
            cb.setChecked(key in keys)

    def _map_error(self, text: str) -> None:
        self.map_status.setText(text)
        self.map_status.setStyleSheet(_ERR_STYLE)
        if self.iface is not None:
            from .compat import MSG_WARNING

            self.iface.messageBar().pushMessage("PIMC", text, level=MSG_WARNING, duration=8)

    def _canvas(self):
        return self.iface.mapCanvas() if self.iface is not None else None

    def start_rectangle_tool(self, checked: bool = True) -> None:
        """Make the rectangle tool current: the next rectangle dragged on the map is mapped."""
        self._activate_region_tool("rect", checked)

    def start_polygon_tool(self, checked: bool = True) -> None:
        """Make the polygon tool current: the next polygon closed on the map is mapped."""
        self._activate_region_tool("polygon", checked)

    def _activate_region_tool(self, kind: str, checked: bool) -> None:
        canvas = self._canvas()
        if canvas is None:
            return
        from .draw_tools import PolygonRegionTool, RectangleRegionTool

        if kind == "rect":
            if self.rect_tool is None:
                self.rect_tool = RectangleRegionTool(canvas, self.run_region)
                self.rect_tool.setAction(self.rect_action)
            tool = self.rect_tool
        else:
            if self.polygon_tool is None:
                self.polygon_tool = PolygonRegionTool(canvas, self.run_region)
                self.polygon_tool.setAction(self.polygon_action)
            tool = self.polygon_tool
        if checked:
            canvas.setMapTool(tool)
            self.map_status.setStyleSheet("")
            self.map_status.setText("Drag a rectangle on the map." if kind == "rect" else
                                    "Click the polygon's vertices; right click or double click to close it.")
        elif canvas.mapTool() is tool:
            canvas.unsetMapTool(tool)

    def map_canvas_extent(self, *_args):
        """Map what the canvas shows; return the task (None when refused, with the reason shown)."""
        canvas = self._canvas()
        if canvas is None:
            return None
        from .region_tools import canvas_extent_choice

        return self.run_region(canvas_extent_choice(canvas))

    def map_selected_features(self, *_args):
        """Map the selected polygons of the chosen layer; return the task or None."""
        from .region_tools import selected_features_choice

        try:
            errors = import_core("pimc_core.errors")
            try:
                choice = selected_features_choice(self.region_layer_combo.currentLayer())
            except errors.PimcError as e:
                self._map_error(str(e))
                return None
        except Exception as e:  # noqa: BLE001 - a slot: nothing may escape
            self._log_exception("reading the selected polygons")
            self._map_error(f"unexpected error (details in the PIMC log): {e}")
            return None
        return self.run_region(choice)

    def run_region(self, choice, *, model=None):
        """Start a background map run of ``choice`` (a :class:`~qgis_plugin.region_tools.RegionChoice`)
        with the ticked products and the panel's model (or ``model``: a path or a model object).

        Returns:
            The started :class:`~qgis_plugin.tasks.MapTask`, or None when something is missing
            (the reason is in the panel and the message bar). Never raises.
        """
        try:
            return self._run_region(choice, model)
        except Exception as e:  # noqa: BLE001 - a slot: nothing may escape
            self._log_exception("starting a map run")
            self._map_error(f"unexpected error (details in the PIMC log): {e}")
            return None

    def _run_region(self, choice, model):
        from . import tasks
        from .mapping import NO_MODEL_MESSAGE
        from .region_tools import to_region_spec

        if self.map_task is not None and not self.map_task.done:
            self._map_error("a map run is in progress: wait for it or cancel it")
            return None
        ts = self.current_series()
        if ts is None:
            self._map_error(f"choose a valid time series first: {self.status_label.text()}")
            return None
        errors = import_core("pimc_core.errors")
        model = model if model is not None else self.model_spec()
        if not model_is_set(model):
            self._map_error(NO_MODEL_MESSAGE[0].upper() + NO_MODEL_MESSAGE[1:] + ".")
            return None
        products = self.map_products()
        if not products:
            self._map_error("tick at least one product (classes, forecast, embeddings, clusters, similarity)")
            return None
        query = None
        if "similarity" in products:
            if self.last_query_xy is None or self._query_key != self._key():
                self._map_error("the similarity map compares with the last inspected pixel: "
                                "click a pixel with the pixel inspector first")
                return None
            query = self.last_query_xy
        try:
            region = to_region_spec(choice, ts)
        except errors.PimcError as e:
            self._map_error(str(e))
            return None
        request = MapRequest(products=products, k=self.k_spin.value(), query_xy=query)
        out_root = self.out_widget.filePath().strip() or None
        task = tasks.MapTask(ts, model, region, out_root, request, iface=self.iface, on_done=self._on_map_done)
        task.progressChanged.connect(self._on_map_progress)
        self.map_task = task
        self.map_progress.setValue(0)
        self.map_progress.setVisible(True)
        self.map_cancel_button.setVisible(True)
        self.map_status.setStyleSheet("")
        self.map_status.setText(f"mapping the {region.description}: {', '.join(products)} …")
        if out_root:
            QgsSettings().setValue(SETTINGS + "out_dir", out_root)
        tasks.start(task)
        return task

    def _on_map_progress(self, value: float) -> None:
        self.map_progress.setValue(int(value))

    def cancel_map(self) -> None:
        if self.map_task is not None and not self.map_task.done:
            self.map_task.cancel()

    def _on_map_done(self, task) -> None:
        self.map_progress.setVisible(False)
        self.map_cancel_button.setVisible(False)
        if task.succeeded:
            names = ", ".join(layer.name() for layer in task.layers)
            group = task.group.name() if task.group is not None else ""
            self.map_status.setStyleSheet(_OK_STYLE)
            self.map_status.setText(f"✓ {group}: {names} ({task.outcome.seconds:.1f} s) — {task.out_dir}")
        elif task.cancelled:
            self.map_status.setStyleSheet("")
            self.map_status.setText("cancelled; nothing was written")
        else:
            self.map_status.setStyleSheet(_ERR_STYLE)
            self.map_status.setText(task.error or "the map run failed (details in the PIMC log)")

    # ------------------------------------------------------------------ train
    def _on_fit_layer_changed(self, layer) -> None:
        from qgis.core import QgsVectorLayer

        vector = isinstance(layer, QgsVectorLayer)
        self.fit_field_combo.setLayer(layer if vector else None)
        self.fit_field_combo.setEnabled(vector)
        self.fit_selected_check.setEnabled(vector)

    def set_fit_preset(self, key: str) -> None:
        i = self.fit_preset_combo.findData(key)
        if i >= 0:
            self.fit_preset_combo.setCurrentIndex(i)

    def _fit_error(self, text: str) -> None:
        self.fit_status.setText(text)
        self.fit_status.setStyleSheet(_ERR_STYLE)
        if self.iface is not None:
            from .compat import MSG_WARNING

            self.iface.messageBar().pushMessage("PIMC", text, level=MSG_WARNING, duration=8)

    def start_fit(self, *_args, config_overrides=None):
        """Train a model in the background on the chosen labels; return the task or None (the
        reason shown). When it is done, the new model becomes the panel's model file."""
        try:
            return self._start_fit(config_overrides)
        except Exception as e:  # noqa: BLE001 - a slot: nothing may escape
            self._log_exception("starting the training")
            self._fit_error(f"unexpected error (details in the PIMC log): {e}")
            return None

    def _start_fit(self, overrides):
        import datetime as _dt

        from qgis.core import QgsVectorLayer

        from . import tasks
        from .labels import export_labels, raster_layer_path

        if self.fit_task is not None and not self.fit_task.done:
            self._fit_error("a training run is in progress: wait for it or cancel it")
            return None
        ts = self.current_series()
        if ts is None:
            self._fit_error(f"choose a valid time series first: {self.status_label.text()}")
            return None
        errors = import_core("pimc_core.errors")
        layer = self.fit_layer_combo.currentLayer()
        temp_files = []
        try:
            if layer is None:
                raise errors.ConfigError("choose the labels: polygons with a class field, or a label raster")
            cfg = fitting.fit_config(self.fit_preset_combo.currentData() or "standard", None, overrides)
            out = self.fit_out_widget.filePath().strip()
            if not out:
                root = self.out_widget.filePath().strip() or str(Path(tempfile.gettempdir()) / "pimc_models")
                out = str(Path(root) / f"pimc_model_{_dt.datetime.now():%Y%m%d_%H%M%S}.pimc")
            field = None
            if isinstance(layer, QgsVectorLayer):
                field = self.fit_field_combo.currentField()
                tmp = Path(tempfile.mkdtemp(prefix="pimc_labels_", dir=self._tmpdir))
                temp_files.append(tmp)
                labels, n = export_labels(layer, field, series_crs(ts), tmp / "labels.gpkg",
                                          selected_only=self.fit_selected_check.isChecked())
                what = f"{n} polygon{'s' if n != 1 else ''} of {layer.name()} ('{field}')"
            else:
                labels = raster_layer_path(layer)
                what = f"label raster {layer.name()}"
        except errors.PimcError as e:
            for t in temp_files:
                shutil.rmtree(t, ignore_errors=True)
            self._fit_error(str(e))
            return None
        job = fitting.FitJob(labels=str(labels), out=out, class_field=field, config=cfg)
        task = tasks.FitTask(ts, job, iface=self.iface, on_done=self._on_fit_done, temp_files=temp_files)
        task.progressChanged.connect(lambda v: self.fit_progress.setValue(int(v)))
        self.fit_task = task
        self.fit_progress.setValue(0)
        self.fit_progress.setVisible(True)
        self.fit_cancel_button.setVisible(True)
        self.fit_button.setEnabled(False)
        self.fit_status.setStyleSheet("")
        self.fit_status.setText(f"training on {what} → {job.out_path()} …")
        tasks.start(task)
        return task

    def cancel_fit(self) -> None:
        if self.fit_task is not None and not self.fit_task.done:
            self.fit_task.cancel()

    def _on_fit_done(self, task) -> None:
        self.fit_progress.setVisible(False)
        self.fit_cancel_button.setVisible(False)
        self.fit_button.setEnabled(True)
        if task.succeeded:
            self.set_model_path(task.model_path)
            acc = task.result.train_metrics.get("accuracy", float("nan"))
            self.fit_status.setStyleSheet(_OK_STYLE)
            self.fit_status.setText(
                f"✓ {task.model_path.name}: {len(task.result.classes)} classes, training accuracy {acc:.2f}, "
                f"{task.result.seconds:.0f} s — now the model file; draw a region to map it")
        elif task.cancelled:
            self.fit_status.setStyleSheet("")
            self.fit_status.setText("training cancelled; no model file was written")
        else:
            self.fit_status.setStyleSheet(_ERR_STYLE)
            self.fit_status.setText(task.error or "the training failed (details in the PIMC log)")

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
        model = s.value(SETTINGS + "model", "")
        if model and (model.startswith("builtin:") or Path(model).is_file()):
            self.set_model_path(model)
        out_dir = s.value(SETTINGS + "out_dir", "")
        if out_dir:
            self.out_widget.setFilePath(out_dir)

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
        """Cancel running tasks, remove the region tools, disconnect from the project, stop
        timers, remove the temporary folder."""
        self._validate_timer.stop()
        for task in (self.map_task, self.fit_task):
            if task is not None and not task.done:
                task.on_done = None  # the panel goes away: no callback into it
                task.cancel()
        canvas = self._canvas()
        for tool in (self.rect_tool, self.polygon_tool):
            if tool is None:
                continue
            if canvas is not None and canvas.mapTool() is tool:
                canvas.unsetMapTool(tool)
            tool.setAction(None)
            tool.release()
            tool.deleteLater()
        self.rect_tool = self.polygon_tool = None
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
