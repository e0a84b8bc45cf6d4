"""The panel's *Train a model* section: labelled polygons or points (a class field) or a label raster, an
effort preset and a ``.pimc`` file → a background :class:`~qgis_plugin.tasks.FitTask`
(:func:`pimc_core.fit.fit`); the new model becomes the panel's model file."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

from qgis.gui import QgsFieldComboBox, QgsFileWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QPushButton, QVBoxLayout

from .. import fitting
from ..bootstrap import import_core
from ..geo import series_crs
from . import common
from .source_section import SourceSection

LABEL_FILTER = common.LAYER_FILTERS.PolygonLayer | common.LAYER_FILTERS.PointLayer | common.LAYER_FILTERS.RasterLayer


class ChosenLabels(NamedTuple):
    """Labels chosen in the panel, as the core reads them: ``path`` (a label raster or an exported
    GeoPackage), ``field`` (the class field of a vector file, None for a raster) and ``what`` (one
    line naming them)."""

    path: str
    field: str | None
    what: str


class FitSection(common.Section):
    """The *Train a model* section (collapsed at first).

    Args:
        source_box: the *Time series* section (the series; where the new model goes).
        out_root: the maps' output folder ('' when empty): the default place of the model file.
        tmpdir: the panel's temporary folder (exported labels go there, removed after the run).
        iface: QGIS's interface, or None (tests): where messages go.
    """

    def __init__(self, source_box: SourceSection, out_root: Callable[[], str], tmpdir: str, iface=None,
                 parent=None) -> None:
        super().__init__("Train a model", "PimcFitBox", parent)
        self.setCollapsed(True)
        self.source_box, self.out_root, self.iface, self._tmpdir = source_box, out_root, iface, tmpdir
        self.fit_task = None
        self._build()

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.fit_layer_combo = common.layer_combo("PimcFitLayerCombo", LABEL_FILTER)
        self.fit_layer_combo.setToolTip("Polygons or points with a class field (a point labels the pixel it falls in; "
                                        "features with an empty class are skipped), or a label raster on the series "
                                        "grid (0 = unlabelled)")
        form.addRow("Labels", self.fit_layer_combo)
        self.fit_field_combo = QgsFieldComboBox()
        self.fit_field_combo.setObjectName("PimcFitFieldCombo")
        self.fit_field_combo.setToolTip("The attribute holding the class: integer ids 1..255, or class names")
        form.addRow("Class field", self.fit_field_combo)
        self.fit_selected_check = QCheckBox("Selected features only")
        form.addRow("", self.fit_selected_check)
        self.fit_preset_combo = QComboBox()
        self.fit_preset_combo.setObjectName("PimcFitPresetCombo")
        self.fit_preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.fit_preset_combo.setMinimumContentsLength(10)
        for key, label in fitting.PRESET_LABELS.items():
            self.fit_preset_combo.addItem(key, key)  # the name; what it means below (the combo is narrow)
            self.fit_preset_combo.setItemData(self.fit_preset_combo.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        form.addRow("Effort", self.fit_preset_combo)
        self.fit_preset_note = common.status_label("", "PimcFitPresetNote")
        self.fit_preset_combo.currentIndexChanged.connect(self._show_preset_note)
        self._show_preset_note()
        form.addRow("", self.fit_preset_note)
        self.fit_classes_widget = common.file_widget(
            "PimcFitClasses", "Class names and colours", "optional: classes.json",
            mode=QgsFileWidget.StorageMode.GetFile, file_filter="Class table (*.json);;All files (*)",
            tip='A JSON list of {"id", "name", "color"}: the names and colours of the class map; without it '
                "the names come from the class field and the colours from the names (water blue, forest green …)")
        form.addRow("Classes", self.fit_classes_widget)
        self.fit_out_widget = common.file_widget(
            "PimcFitOutput", "Save the model as", "empty: pimc_model_<date>.pimc in the output folder",
            mode=QgsFileWidget.StorageMode.SaveFile, file_filter="PIMC model (*.pimc)")
        form.addRow("Save model as", self.fit_out_widget)
        lay.addLayout(form)
        prow = QHBoxLayout()
        self.fit_button = QPushButton("Train")
        self.fit_button.setObjectName("PimcFitButton")
        self.fit_button.setToolTip("Pretrain on the series (no labels), fine-tune on the labels, save the model")
        self.fit_button.clicked.connect(self.start_fit)
        prow.addWidget(self.fit_button)
        self.fit_progress, self.fit_cancel_button = self.add_progress(prow, self.cancel_fit)
        lay.addLayout(prow)
        self.fit_status = common.status_label("Labelled polygons or points, or a label raster → a model for the maps.", "PimcFitStatus")
        lay.addWidget(self.fit_status)
        self.fit_layer_combo.layerChanged.connect(self._on_fit_layer_changed)
        self._on_fit_layer_changed(self.fit_layer_combo.currentLayer())

    def _on_fit_layer_changed(self, layer) -> None:
        from qgis.core import QgsVectorLayer

        vector = isinstance(layer, QgsVectorLayer)
        self.fit_field_combo.setLayer(layer if vector else None)
        self.fit_field_combo.setEnabled(vector)
        self.fit_selected_check.setEnabled(vector)

    def _show_preset_note(self, *_args) -> None:
        label = fitting.PRESET_LABELS.get(self.fit_preset_combo.currentData() or "", "")
        self.fit_preset_note.setText(label[label.find("(") + 1:-1] if "(" in label else label)

    def set_fit_preset(self, key: str) -> None:
        i = self.fit_preset_combo.findData(fitting.preset_name(key))
        if i >= 0:
            self.fit_preset_combo.setCurrentIndex(i)

    def chosen_labels(self, ts, temp_files: list) -> ChosenLabels | None:
        """The labels chosen in this section as a file the core reads, or None when none is
        chosen. A vector layer is exported (in the series' CRS) to a new folder of the panel's
        temporary folder, which is appended to ``temp_files`` for the caller to remove.

        Raises:
            PimcError: the layer cannot be exported (no class field, no feature with a class, …).
        """
        from qgis.core import QgsVectorLayer

        from ..labels import export_labels, raster_layer_path

        layer = self.fit_layer_combo.currentLayer()
        if layer is None:
            return None
        if isinstance(layer, QgsVectorLayer):
            field = self.fit_field_combo.currentField()
            tmp = Path(tempfile.mkdtemp(prefix="pimc_labels_", dir=self._tmpdir))
            temp_files.append(tmp)
            exported = export_labels(layer, field, series_crs(ts), tmp / "labels.gpkg",
                                     selected_only=self.fit_selected_check.isChecked())
            return ChosenLabels(str(exported.path), field, exported.describe(layer.name(), field))
        return ChosenLabels(str(raster_layer_path(layer)), None, f"label raster {layer.name()}")

    def _fit_error(self, text: str) -> None:
        common.show_error(self.fit_status, text, self.iface)

    # ------------------------------------------------------------------ running
    def start_fit(self, *_args, config_overrides=None):
        """Train a model in the background on the chosen labels; return the task or None (the
        reason shown). When it is done, the new model becomes the panel's model file."""
        return common.guarded("starting the training", self._fit_error, self._start_fit, config_overrides)

    def _start_fit(self, overrides):
        from .. import tasks

        ts = common.series_for_run(self.fit_task, "a training run", self.source_box, self._fit_error)
        if ts is None:
            return None
        errors = import_core("pimc_core.errors")
        layer = self.fit_layer_combo.currentLayer()
        temp_files = []
        try:
            if layer is None:
                raise errors.ConfigError("choose the labels: polygons or points with a class field, or a label raster")
            cfg = fitting.fit_config(self.fit_preset_combo.currentData() or "standard", None, overrides)
            classes = self.fit_classes_widget.filePath().strip() or None
            if classes:  # a bad classes.json is said now, not after the sampling
                import_core("pimc_core.io.classes").load_class_table(classes)
            out = self.fit_out_widget.filePath().strip()
            if not out:
                root = self.out_root() or str(Path(tempfile.gettempdir()) / "pimc_models")
                out = str(Path(root) / f"pimc_model_{dt.datetime.now():%Y%m%d_%H%M%S}.pimc")
            chosen = self.chosen_labels(ts, temp_files)
            labels, field, what = chosen.path, chosen.field, chosen.what
            labels_name = layer.name() if field is not None else None
        except errors.PimcError as e:
            tasks.remove_paths(temp_files)
            self._fit_error(str(e))
            return None
        job = fitting.FitJob(labels=str(labels), out=out, class_field=field, config=cfg, labels_name=labels_name,
                             classes=classes)
        task = tasks.FitTask(ts, job, iface=self.iface, on_done=self._on_fit_done, temp_files=temp_files)
        task.progressChanged.connect(lambda v: self.fit_progress.setValue(int(v)))
        self.fit_task = task
        common.show_running(self.fit_progress, self.fit_cancel_button, True)
        self.fit_button.setEnabled(False)
        common.set_status(self.fit_status, f"training on {what} → {job.out_path()} …", ok=None)
        tasks.start(task)
        return task

    def cancel_fit(self) -> None:
        if self.fit_task is not None and not self.fit_task.done:
            self.fit_task.cancel()

    def _on_fit_done(self, task) -> None:
        common.show_running(self.fit_progress, self.fit_cancel_button, False)
        self.fit_button.setEnabled(True)
        if task.succeeded:
            self.source_box.set_model_path(task.model_path)

        self.fit_status.setToolTip("")
        if not task.succeeded:
            common.show_task_end(self.fit_status, task, lambda: "", "training cancelled; no model file was written",
                                 "the training failed (details in the PIMC log)")
            return
        self.show_fit_result(task.model_path, task.result)

    def show_fit_result(self, path: Path, result) -> None:
        """The end of a training run: the held-out accuracy (spatial cross-validation) first, in
        green with ✓ only when it was estimated; the training accuracy after it, said to be on the
        training pixels; the held-out confusion matrix as the tooltip."""
        r = result
        training = {"spatial_cv": r.spatial_cv}
        held, estimated = fitting.held_out_text(training)
        acc = r.train_metrics.get("accuracy", float("nan"))
        end = f"{r.seconds:.0f} s — now the model file; draw a region to map it"
        if not r.classes:
            text, ok = f"✓ {path.name}: label-free (no classifier), {end}", True
        elif estimated:
            text, ok = (f"✓ {path.name}: {len(r.classes)} classes, {held} (hover for the confusion matrix); "
                        f"accuracy on its own training pixels {acc:.2f}; {end}"), True
        else:
            text, ok = (f"{path.name}: {len(r.classes)} classes; {held}; accuracy on its own training pixels "
                        f"{acc:.2f} (says nothing about other fields); {end}"), None
        common.set_status(self.fit_status, text, ok=ok)
        self.fit_status.setToolTip(fitting.confusion_html(training, r.classes))

    def cleanup(self) -> None:
        """Cancel a running training (no callback into the panel)."""
        common.drop_task(self.fit_task)


__all__ = ["LABEL_FILTER", "FitSection"]
