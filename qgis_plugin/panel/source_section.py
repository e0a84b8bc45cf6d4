"""The panel's *Time series* section: which series (a manifest or folder, or raster layers of
the project), its sensor preset and band mapping, and the model file (``.pimc``) the maps come
from. The source is checked as soon as it changes: :func:`pimc_core.io.timeseries.open_series`
runs (debounced) and its message (a :class:`~pimc_core.errors.PimcError`) shows in the status
line, which also says how the files are read ("Sentinel-2 L2A, DN × 0.0001, SCL mask"). When the
files do not tell their sensor, the section asks for a preset, or a DN scale and a quality band,
and no series is given to the other sections until then. The model is checked against the series
whenever either changes (:func:`qgis_plugin.source.check_model`); :attr:`SourceSection.model_problem`
holds the sentence that stops a run. The other sections take the opened series from here.

An optional Sentinel-1 source (:class:`~qgis_plugin.panel.radar_row.RadarRow`) is read beside the
optical one: the series the other sections take then holds both, so every map and training run of
the panel gets the radar series (as ``--sar``). It is remembered per optical source: choosing a
source brings back the radar source last used with it (none when there was none, or it has gone)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

from qgis.core import QgsProject, QgsSettings
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from .. import fitting, source
from ..bootstrap import MissingDependencyError, import_core
from .common import ERR_STYLE, SETTINGS, file_widget, log_exception, manifest_row, set_status, status_label
from .layers_table import LayersTable
from .radar_row import RadarRow

#: How many optical sources the panel remembers a radar source for.
RADAR_MEMORY = 20
#: The status line before a series is chosen (plain, not an error).
NOTHING_CHOSEN = "no time series chosen yet: a manifest (.yaml), a folder of dated rasters, or project layers"


class SourceSection(QGroupBox):
    """The *Time series* group box.

    Args:
        tmpdir: the panel's temporary folder (the manifest written for project layers goes there).
    """

    #: After each check of the source: the opened series, or None (the inspector follows it).
    series_checked = pyqtSignal(object)
    #: After the model choice changed: the model spec (a path, a built-in, or '').
    model_changed = pyqtSignal(str)

    def __init__(self, tmpdir: str, parent=None) -> None:
        super().__init__("Time series", parent)
        self.series = None
        self.model_problem: str | None = None
        self._model_key = None
        self._series_key = None
        self._tmpdir = tmpdir
        self._warmed = False
        self._project_connected = False
        self._validate_timer = QTimer(self)
        self._validate_timer.setSingleShot(True)
        self._validate_timer.setInterval(400)
        self._validate_timer.timeout.connect(self.validate)
        self._build()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        form = QVBoxLayout(self)
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
        self.source_widget, self.folder_button = manifest_row(
            prow, "PimcSourceWidget", "Time series manifest", "manifest .yaml, or a folder of dated rasters",
            "Choose a folder of dated rasters or of date folders", self._choose_folder)
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
        self.radar_row = RadarRow()
        form.addWidget(self.radar_row)
        form.addLayout(self._build_options())

        self.status_label = status_label("Choose a time series.", "PimcStatusLabel")
        form.addWidget(self.status_label)

        # any change of the source → check it again (debounced)
        self.mode_path.toggled.connect(self._on_mode_changed)
        self.source_widget.fileChanged.connect(self._schedule_validation)
        self.sensor_combo.currentIndexChanged.connect(self._schedule_validation)
        self.bands_edit.editingFinished.connect(self._schedule_validation)
        self.scale_edit.editingFinished.connect(self._schedule_validation)
        self.mask_edit.editingFinished.connect(self._schedule_validation)
        self.layers_table.changed.connect(self._schedule_validation)
        self.radar_row.sar_widget.fileChanged.connect(self._schedule_validation)
        self.source_widget.fileChanged.connect(self._recall_radar)

    def _build_options(self) -> QFormLayout:
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
        opts.addRow(self._build_asked())
        self.model_widget = file_widget(
            "PimcModelWidget", "PIMC model file", "a trained model (.pimc), for the maps",
            file_filter="PIMC model (*.pimc);;All files (*)",
            tip="A trained PIMC model (.pimc) — from 'Train a model' below, pimc:fit or `pimc fit`. The maps "
                "(classes, forecast, embeddings, clusters, similarity) all come from it. "
                "builtin:nearest-centroid is a non-PIMC baseline for the synthetic sample data.")
        self.model_widget.fileChanged.connect(self._on_model_changed)
        opts.addRow("Model file", self.model_widget)
        self.model_label = QLabel("")
        self.model_label.setObjectName("PimcModelLabel")
        self.model_label.setWordWrap(True)
        self.model_label.setVisible(False)
        opts.addRow("", self.model_label)
        return opts

    def _build_asked(self) -> QWidget:
        """What the section asks when the files do not tell their sensor: a DN scale and a quality
        band (hidden until then, or while they hold a value)."""
        self.ask_box = QWidget()
        self.ask_box.setObjectName("PimcAskReading")
        form = QFormLayout(self.ask_box)
        form.setContentsMargins(0, 0, 0, 0)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.scale_edit = QLineEdit()
        self.scale_edit.setObjectName("PimcScaleEdit")
        self.scale_edit.setPlaceholderText("e.g. 0.0001")
        self.scale_edit.setToolTip("reflectance = DN × scale, when no sensor preset fits the files")
        form.addRow("DN scale", self.scale_edit)
        self.mask_edit = QLineEdit()
        self.mask_edit.setObjectName("PimcMaskEdit")
        self.mask_edit.setPlaceholderText("band=valid values, e.g. 6=4,5,6")
        self.mask_edit.setToolTip("The quality band inside each file and its values that mark a clear observation")
        form.addRow("Quality band", self.mask_edit)
        self.ask_box.setVisible(False)
        return self.ask_box

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
        self._recall_radar("" if layers else self.source_widget.filePath())  # the radar of that source, if any
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
        reading = dict(sensor=sensor, bands=source.parse_bands(self.bands_edit.text()), sar=self.radar_row.path() or None,
                       scale=source.parse_scale(self.scale_edit.text()), mask=source.parse_mask(self.mask_edit.text()))
        if self.mode_layers.isChecked():
            rows = [(r["date"], r["path"], r["name"]) for r in self.layers_table.rows()]
            return source.SourceSpec(layers=rows, manifest_dir=self._tmpdir, **reading)
        return source.SourceSpec(path=self.source_widget.filePath(), **reading)

    def set_sar_path(self, path) -> None:
        """Choose the Sentinel-1 source read beside the series ('' for none)."""
        self.radar_row.set_path(path)

    def key(self) -> tuple:
        """What identifies the current choice (equal keys: the same series)."""
        if self.mode_layers.isChecked():
            rows = tuple((r["date"], r["path"]) for r in self.layers_table.rows())
            return ("layers", rows, *self._reading_key())
        return ("path", self.source_widget.filePath(), *self._reading_key())

    def _reading_key(self) -> tuple:
        return (self.sensor_combo.currentData(), self.bands_edit.text(), self.scale_edit.text(), self.mask_edit.text(),
                self.radar_row.path())

    def _schedule_validation(self, *_args) -> None:
        self.series = None
        self._series_key = None
        self._validate_timer.start()

    def validate(self):
        """Open the chosen series now; show what it holds, or the core's one-line error.

        Returns:
            The :class:`~pimc_core.io.timeseries.TimeSeries`, or None when it cannot be opened.
        """
        ts = self._validate()
        self.series_checked.emit(ts)
        return ts

    def _validate(self):
        self._validate_timer.stop()
        key = self.key()
        self.series = None
        self._series_key = key
        try:
            errors = import_core("pimc_core.errors")
        except MissingDependencyError as e:
            self._set_status(str(e), ok=False)
            return None
        try:
            spec = self.source_spec()
            if not (spec.path or "").strip() and not spec.layers:  # nothing chosen yet: no red error
                self._set_status(NOTHING_CHOSEN, ok=None)
                self.radar_row.show_unchecked()
                return None
            ts = dataclasses.replace(spec, sar=None).open()  # the radar source: checked on its own below
        except errors.PimcError as e:
            self.radar_row.show_unchecked()
            if source.is_unknown_sensor(e):
                self.ask_box.setVisible(True)
                self._set_status("The files do not tell their sensor: choose the Sensor preset, or give the DN "
                                 f"scale and the quality band below; nothing runs until then. ({e})", ok=False)
            else:
                self._set_status(str(e), ok=False)
            self._check_model()
            return None
        except MissingDependencyError as e:
            self._set_status(str(e), ok=False)
            return None
        except Exception as e:  # a bug, not a user error: say so, log the traceback
            log_exception("opening the time series")
            self._set_status(f"unexpected error while opening the series: {e}", ok=False)
            return None
        self.ask_box.setVisible(bool(self.scale_edit.text().strip() or self.mask_edit.text().strip()))
        self._set_status("✓ " + source.describe_series(ts), ok=True)
        ts = self.radar_row.combine(ts)
        if ts is None:
            self._check_model()
            return None
        self.series = ts
        self._save_settings()
        self._warm_up()
        self._check_model()
        return ts

    def current_series(self):
        """The series of the current choice (opened again only when the choice changed)."""
        if self.series is not None and self._series_key == self.key():
            return self.series
        return self.validate()

    def why_no_series(self) -> str:
        """What a tool says when the series cannot be opened (the status line's reason)."""
        if self.radar_row.problem:
            return f"choose a valid radar (S1) source, or clear it: {self.radar_row.problem}"
        return f"choose a valid time series first: {self.status_label.text()}"

    def _set_status(self, text: str, ok: bool) -> None:
        set_status(self.status_label, text, ok)

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

    # ------------------------------------------------------------------ model
    def model_spec(self) -> str:
        """The model choice: a ``.pimc`` path, ``builtin:nearest-centroid``, or ''."""
        return (self.model_widget.filePath() or "").strip()

    def set_model_path(self, path) -> None:
        self.model_widget.setFilePath(str(path))
        self._on_model_changed(str(path))

    def _on_model_changed(self, *_args) -> None:
        self._check_model()
        self.model_changed.emit(self.model_spec())

    def _check_model(self) -> None:
        """Describe the chosen model and check it against the opened series (bands, season and
        date grid, pixel size): the model line says it fits, or the sentence that stops a run."""
        spec = self.model_spec()
        key = (spec, self._model_mtime(spec), self._series_key if self.series is not None else None)
        if key == self._model_key:
            return
        self._model_key = key
        self.model_problem = None
        text, ok, tip = "", True, ""
        if spec and not spec.startswith("builtin:"):
            try:
                meta = import_core("pimc_core.models.model_file").read_metadata(spec)
                classes = [str(c.get("name")) for c in meta.get("classes") or []]
                shown = ", ".join(classes[:6]) + (" …" if len(classes) > 6 else "")
                what = (f"{len(classes)} classes ({shown})" if classes else
                        "a label-free model (embeddings, clusters, forecast; no classes)")
                text = f"{what}; indices {', '.join(meta.get('indices') or [])}; {meta.get('n_dates', '?')} dates"
                if classes:
                    text += f"; {fitting.held_out_text(meta.get('training'))[0]}"
                tip = fitting.confusion_html(meta.get("training"), meta.get("classes"))
            except Exception as e:  # noqa: BLE001 - any unreadable file: say why, never raise
                text, ok = f"not a usable model file: {e}", False
                self.model_problem = text
        elif spec:
            text = "a non-PIMC baseline for the synthetic sample data (nearest class-mean NDVI curve)"
        if ok and spec and self.series is not None:
            try:
                text += "\n✓ " + source.check_model(spec, self.series)
            except Exception as e:  # noqa: BLE001 - a PimcError, or an unreadable file: say why, never raise
                self.model_problem = str(e)
                text, ok = f"{text}\n{e}".strip(), False
        self.model_label.setText(text)
        self.model_label.setToolTip(tip)
        self.model_label.setStyleSheet("" if ok else ERR_STYLE)
        self.model_label.setVisible(bool(text))
        if ok and spec:
            QgsSettings().setValue(SETTINGS + "model", spec)

    def model_fit_problem(self, model, ts) -> str | None:
        """Why ``model`` (the panel's choice, a path or a model object) cannot map ``ts``, or None
        when it fits: asked before a run starts, so a misfit never reaches a background task."""
        if isinstance(model, str) and model == self.model_spec() and ts is self.series:
            self._check_model()
            return self.model_problem
        errors = import_core("pimc_core.errors")
        try:
            source.check_model(model, ts)
        except errors.PimcError as e:
            return str(e)
        return None

    @staticmethod
    def _model_mtime(spec: str) -> float | None:
        try:
            return Path(spec).stat().st_mtime if spec and not spec.startswith("builtin:") else None
        except OSError:
            return None

    # ------------------------------------------------------------------ settings, project
    def restore_settings(self) -> None:
        """The source (with its radar source), sensor and model of the last session (a source or
        model that has gone since is not restored, so the panel opens without an error nobody caused)."""
        s = QgsSettings()
        path = s.value(SETTINGS + "source", "")
        if path and Path(path).exists():
            self.source_widget.setFilePath(path)
        self.set_sensor(s.value(SETTINGS + "sensor", None) or None)
        model = s.value(SETTINGS + "model", "")
        if model and (model.startswith("builtin:") or Path(model).is_file()):
            self.set_model_path(model)

    def _save_settings(self) -> None:
        s = QgsSettings()
        if self.mode_path.isChecked():
            s.setValue(SETTINGS + "source", self.source_widget.filePath())
            radar = self._radar_memory()
            radar.pop(self.source_widget.filePath(), None)
            if self.radar_row.path():
                radar[self.source_widget.filePath()] = self.radar_row.path()
            s.setValue(SETTINGS + "radar_by_source", json.dumps(dict(list(radar.items())[-RADAR_MEMORY:])))
        s.setValue(SETTINGS + "sensor", self.sensor_combo.currentData() or "")

    @staticmethod
    def _radar_memory() -> dict[str, str]:
        """Optical source → the radar source last used with it (from the settings)."""
        try:
            memory = json.loads(QgsSettings().value(SETTINGS + "radar_by_source", "") or "{}")
        except (TypeError, ValueError):
            return {}
        return {str(k): str(v) for k, v in memory.items()} if isinstance(memory, dict) else {}

    def _recall_radar(self, path: str) -> None:
        """A new optical source (project layers: ``path`` ''): the radar source last used with it,
        or none (a radar source is on the grid of one optical source)."""
        radar = self._radar_memory().get((path or "").strip(), "")
        self.radar_row.set_path(radar if radar and Path(radar).exists() else "")

    def start(self) -> None:
        """Follow the project's layers and check the current choice (soon)."""
        p = QgsProject.instance()
        p.layersAdded.connect(self._on_project_layers)
        p.layersRemoved.connect(self._on_project_layers)
        self._project_connected = True
        self._on_mode_changed()

    def _on_project_layers(self, *_args) -> None:
        if self.mode_layers.isChecked():
            self.layers_table.reload()

    def cleanup(self) -> None:
        """Stop the validation timer; disconnect from the project."""
        self._validate_timer.stop()
        if self._project_connected:
            p = QgsProject.instance()
            for sig in (p.layersAdded, p.layersRemoved):
                try:
                    sig.disconnect(self._on_project_layers)
                except (TypeError, RuntimeError):
                    pass
            self._project_connected = False


__all__ = ["SourceSection"]
