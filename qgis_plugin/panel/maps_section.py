"""The panel's *Maps of a region* section: the products (classes + confidence, optionally
Bayesian-smoothed; forecast, embeddings, clusters, similarity to the inspected pixel; phenology),
then the region — a rectangle or polygon drawn on the map, the canvas extent, or the selected
polygons of a layer. A background :class:`~qgis_plugin.tasks.MapTask` runs the core; the maps
arrive as layers in a group ``PIMC <timestamp>``. Every product but phenology comes from the model
file: without one the section says so; phenology (the season's metrics of NDVI, as ``pimc
phenology``) is computed from the series alone. A text query (:class:`~qgis_plugin.panel.query_box.QueryBox`,
enabled for a model with a text head) maps the similarity of every pixel of the series to a
sentence, as ``pimc query``; the layer is named after the sentence.

*Suggest samples* (N points) runs :class:`~qgis_plugin.tasks.SuggestTask` on the whole series: the
points where a label would help the model most arrive as a point layer in edit mode; fill in their
``class`` field, save, and give the layer to *Train a model* (or ``pimc fit --labels``). With *away from
labels* ticked, the labels chosen under *Train a model* are the labels made so far: no
point falls on their pixels, and the points look for kinds of pixel unlike them (``pimc suggest
--labels``). It is not ticked by default because that list always shows some layer."""

from __future__ import annotations

from typing import Any, Callable

from qgis.core import QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget

from ..bootstrap import import_core
from ..compat import QAction
from ..mapping import MapRequest, has_text_head, model_is_set
from . import common
from .flow_layout import FlowLayout
from .inspector_section import InspectorSection
from .query_box import NO_TEXT_HEAD, QueryBox
from .source_section import SourceSection

POLYGON_FILTER = common.LAYER_FILTERS.PolygonLayer

#: The product boxes: key, text, tooltip (``classes`` stands for classes + confidence + uncertainty).
PRODUCTS = (
    ("classes", "Classes + confidence", "class map (names and colours in the legend), the probability of the class "
     "and the uncertainty (entropy of the class probabilities: where a label would help)"),
    ("forecast", "Forecast", "the model's vegetation-index forecast, one band per future date"),
    ("embeddings", "Embeddings", "the model's embedding of each pixel, one band per dimension"),
    ("clusters", "Clusters", "k-means clusters of the embeddings (an unsupervised map)"),
    ("similarity", "Similar to inspected pixel",
     "cosine similarity of every pixel's embedding to that of the last pixel clicked with the inspector"),
    ("phenology", "Phenology", "start, peak and end of season, peak, amplitude, length and integral of each pixel's "
     "NDVI (one band each; the layer shows the start of season); needs no model"),
)


class MapsSection(common.Section):
    """The *Maps of a region* section.

    Args:
        source_box: the *Time series* section (the series, the model file).
        inspector_box: the *Pixel inspector* section (the query pixel of the similarity map).
        iface: QGIS's interface; None (tests): no drawing tools, no canvas extent.
    """

    def __init__(self, source_box: SourceSection, inspector_box: InspectorSection, iface=None, parent=None) -> None:
        super().__init__("Maps of a region", "PimcMapsBox", parent)
        self.source_box, self.inspector_box, self.iface = source_box, inspector_box, iface
        #: ``(ts, temp_files) -> ChosenLabels | None``: the labels chosen in the panel (set by the
        #: dock to :meth:`FitSection.chosen_labels`); *Suggest samples* keeps off their pixels
        self.labels_source: Callable[..., Any] | None = None
        self.map_task = None
        self.rect_tool = self.polygon_tool = None  # the drawing tools, made on first use
        self._build()

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        self.product_checks = common.check_boxes((key, text, tip, key == "classes") for key, text, tip in PRODUCTS)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(2, 255)
        self.k_spin.setValue(6)
        self.k_spin.setPrefix("k = ")
        self.k_spin.setToolTip("number of clusters")
        clusters = QWidget()  # Clusters and its k stay on one line when the row wraps
        crow = QHBoxLayout(clusters)
        crow.setContentsMargins(0, 0, 0, 0)
        crow.addWidget(self.product_checks["clusters"])
        crow.addWidget(self.k_spin)
        self.smooth_check = QCheckBox("Bayesian smoothing")
        self.smooth_check.setObjectName("PimcSmoothCheck")
        self.smooth_check.setToolTip(
            "smooth the class probabilities over each pixel's 7×7 neighbourhood (sits' Bayesian smoothing: a pixel "
            "is pulled towards its neighbours where they agree); off by default: it can lower the accuracy")
        classes = self.product_checks["classes"]
        classes.toggled.connect(self.smooth_check.setEnabled)
        checks = self.product_checks
        flow = common.flow_of([checks["classes"], self.smooth_check, checks["forecast"], checks["embeddings"],
                               clusters, checks["similarity"], checks["phenology"]])
        lay.addLayout(flow)
        self.query_box = QueryBox()
        self.query_box.query_button.clicked.connect(self.run_query)
        self.query_box.query_edit.returnPressed.connect(self.run_query)
        self.source_box.model_changed.connect(self.query_box.follow_model)
        self.query_box.follow_model(self.source_box.model_spec())
        lay.addWidget(self.query_box)

        region_label = QLabel("Region — draw on the map, or take:")
        region_label.setWordWrap(True)
        lay.addWidget(region_label)
        lay.addLayout(self._build_region_row())
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.region_layer_combo = common.layer_combo("PimcRegionLayerCombo", POLYGON_FILTER)
        form.addRow("Polygon layer", self.region_layer_combo)
        self.out_widget = common.file_widget(
            "PimcOutputFolder", "Folder for the maps", "empty: a temporary folder",
            mode=QgsFileWidget.StorageMode.GetDirectory,
            tip="Each run writes a new sub-folder PIMC_<date>_<time>_… with GeoTIFFs and QGIS styles")
        form.addRow("Output folder", self.out_widget)
        lay.addLayout(form)
        lay.addLayout(self._build_suggest_row())
        prow = QHBoxLayout()
        self.map_progress, self.map_cancel_button = self.add_progress(prow, self.cancel_map)
        lay.addLayout(prow)
        self.map_status = common.status_label("Choose a model file, then a region.", "PimcMapStatus")
        lay.addWidget(self.map_status)

    def _build_region_row(self) -> FlowLayout:
        row = FlowLayout()
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
        if self.iface is None:
            for w in (self.rect_action, self.polygon_action, self.extent_button):
                w.setEnabled(False)
        return row

    def _build_suggest_row(self) -> FlowLayout:
        row = FlowLayout()
        self.suggest_spin = QSpinBox()
        self.suggest_spin.setObjectName("PimcSuggestCount")
        self.suggest_spin.setRange(1, 100_000)
        self.suggest_spin.setValue(50)
        self.suggest_spin.setSuffix(" points")
        self.suggest_spin.setToolTip("number of sample points to suggest")
        self.suggest_button = QPushButton("Suggest samples")
        self.suggest_button.setObjectName("PimcSuggestButton")
        self.suggest_button.setToolTip(
            "Where would a label help the model most? Points spread over the kinds of pixel the model tells apart, "
            "leaning to uncertain ones, as a point layer in edit mode: fill in 'class', then train again with it")
        self.suggest_button.clicked.connect(self.suggest_samples)
        self.suggest_away_check = QCheckBox("away from labels")
        self.suggest_away_check.setObjectName("PimcSuggestAwayCheck")
        self.suggest_away_check.setToolTip(
            "away from the training labels: the labels chosen under Train a model are the labels made so far; no "
            "point on their pixels, and the points look for kinds of pixel unlike them (as pimc suggest --labels)")
        row.addWidget(self.suggest_button)
        row.addWidget(self.suggest_spin)
        row.addWidget(self.suggest_away_check)
        return row

    # ------------------------------------------------------------------ products
    def map_products(self) -> tuple[str, ...]:
        out = []
        for key, cb in self.product_checks.items():
            if cb.isChecked():
                out.extend(("classes", "confidence", "uncertainty") if key == "classes" else (key,))
        return tuple(out)

    def set_map_products(self, keys) -> None:
        """Tick the product boxes (``classes`` stands for classes + confidence + uncertainty)."""
        for key, cb in self.product_checks.items():
            cb.setChecked(key in keys)

    def _map_error(self, text: str) -> None:
        common.show_error(self.map_status, text, self.iface)

    # ------------------------------------------------------------------ regions
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
        from ..draw_tools import PolygonRegionTool, RectangleRegionTool

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
            common.set_status(self.map_status, "Drag a rectangle on the map." if kind == "rect" else
                       "Click the polygon's vertices; right click or double click to close it.", ok=None)
        elif canvas.mapTool() is tool:
            canvas.unsetMapTool(tool)

    def map_canvas_extent(self, *_args):
        """Map what the canvas shows; return the task (None when refused, with the reason shown)."""
        canvas = self._canvas()
        if canvas is None:
            return None
        from ..region_tools import canvas_extent_choice

        return self.run_region(canvas_extent_choice(canvas))

    def map_selected_features(self, *_args):
        """Map the selected polygons of the chosen layer; return the task or None."""
        choice = common.guarded("reading the selected polygons", self._map_error, self._selected_features)
        return None if choice is None else self.run_region(choice)

    def _selected_features(self):
        from ..region_tools import selected_features_choice

        errors = import_core("pimc_core.errors")
        try:
            return selected_features_choice(self.region_layer_combo.currentLayer())
        except errors.PimcError as e:
            self._map_error(str(e))
            return None

    # ------------------------------------------------------------------ running
    def run_region(self, choice, *, model=None):
        """Start a background map run of ``choice`` (a :class:`~qgis_plugin.region_tools.RegionChoice`)
        with the ticked products and the panel's model (or ``model``: a path or a model object).

        Returns:
            The started :class:`~qgis_plugin.tasks.MapTask`, or None when something is missing
            (the reason is in the panel and the message bar). Never raises.
        """
        return common.guarded("starting a map run", self._map_error, self._run_region, choice, model)

    def _run_region(self, choice, model):
        from .. import tasks
        from ..region_tools import to_region_spec

        products = self.map_products()
        if not products:
            self._map_error("tick at least one product (classes, forecast, embeddings, clusters, similarity, phenology)")
            return None
        request = MapRequest(products=products, k=self.k_spin.value())
        ts, model = self._series_and_model(model, needs_model=request.needs_model())
        if ts is None:
            return None
        errors = import_core("pimc_core.errors")
        query = None
        if "similarity" in products:
            query = self.inspector_box.query_xy(self.source_box.key())
            if query is None:
                self._map_error("the similarity map compares with the last inspected pixel: "
                                "click a pixel with the pixel inspector first")
                return None
        try:
            region = to_region_spec(choice, ts)
        except errors.PimcError as e:
            self._map_error(str(e))
            return None
        if query is not None:
            self.inspector_box.mark_query(ts)
        request.query_xy = query
        request.smooth = True if self.smooth_check.isChecked() and "classes" in products else None
        out_root = self.out_widget.filePath().strip() or None
        task = tasks.MapTask(ts, model, region, out_root, request, iface=self.iface, on_done=self._on_map_done)
        if out_root:
            QgsSettings().setValue(common.SETTINGS + "out_dir", out_root)
        return self._start(task, f"mapping the {region.description}: {', '.join(products)} …")

    def run_query(self, *_args, model=None):
        """Start a background map run of the text query over the whole series with the panel's
        model (or ``model``: a ``.pimc`` path with a text head). Returns the
        :class:`~qgis_plugin.tasks.MapTask`, or None with the reason in the panel. Never raises."""
        return common.guarded("starting a text query", self._map_error, self._run_query, model)

    def _run_query(self, model):
        from .. import tasks

        text = self.query_box.text()
        if not text:
            self._map_error("type a sentence first, e.g. 'green-up in April, harvested in July' or a class name")
            return None
        ts, model = self._series_and_model(model)
        if ts is None:
            return None
        if not has_text_head(model):
            self._map_error(NO_TEXT_HEAD[0].upper() + NO_TEXT_HEAD[1:])
            return None
        request = MapRequest(products=("query",), text=text)
        out_root = self.out_widget.filePath().strip() or None
        task = tasks.MapTask(ts, model, None, out_root, request, iface=self.iface, on_done=self._on_map_done,
                             description=f"PIMC text query “{text}”")
        return self._start(task, f"querying “{text}” over the whole series …")

    def _series_and_model(self, model, *, needs_model: bool = True):
        """``(series, model)`` for a map or suggest run: the panel's series and ``model`` (or the
        panel's model) when both are set and the model fits the series; ``(None, None)`` with the
        reason in the panel otherwise (said before anything runs). Without ``needs_model``
        (phenology alone): ``(series, None)``."""
        from ..mapping import NO_MODEL_MESSAGE

        ts = common.series_for_run(self.map_task, "a map run", self.source_box, self._map_error)
        if ts is None or not needs_model:
            return ts, None
        model = model if model is not None else self.source_box.model_spec()
        if not model_is_set(model):
            self._map_error(NO_MODEL_MESSAGE[0].upper() + NO_MODEL_MESSAGE[1:] + ".")
            return None, None
        problem = self.source_box.model_fit_problem(model, ts)
        if problem:
            self._map_error(problem)
            return None, None
        return ts, model

    def _start(self, task, status: str):
        """Show ``task`` (a map or suggest task) running in the section, then start it."""
        from .. import tasks

        task.progressChanged.connect(self._on_map_progress)
        self.map_task = task
        common.show_running(self.map_progress, self.map_cancel_button, True)
        common.set_status(self.map_status, status, ok=None)
        tasks.start(task)
        return task

    def suggest_samples(self, *_args, model=None):
        """Start a background :class:`~qgis_plugin.tasks.SuggestTask` over the whole series with
        the panel's model (or ``model``); return it, or None when something is missing (the
        reason is in the panel). Never raises."""
        return common.guarded("suggesting samples", self._map_error, self._suggest, model)

    def _suggest(self, model):
        from .. import tasks

        ts, model = self._series_and_model(model)
        if ts is None:
            return None
        n = self.suggest_spin.value()
        out_root = self.out_widget.filePath().strip() or None
        errors = import_core("pimc_core.errors")
        temp_files: list = []
        try:
            chosen = None
            if self.suggest_away_check.isChecked():
                if self.labels_source is None or (chosen := self.labels_source(ts, temp_files)) is None:
                    raise errors.ConfigError("choose the labels under Train a model")
        except errors.PimcError as e:
            tasks.remove_paths(temp_files)
            self._map_error(f"the labels chosen under Train a model: {e}")
            return None
        task = tasks.SuggestTask(ts, model, None, out_root, n, iface=self.iface, on_done=self._on_suggest_done,
                                 labels=chosen.path if chosen else None, class_field=chosen.field if chosen else None,
                                 temp_files=temp_files)
        return self._start(task, f"suggesting {n} samples" + (f" away from the {chosen.what}" if chosen else "") + " …")

    def _on_suggest_done(self, task) -> None:
        common.show_running(self.map_progress, self.map_cancel_button, False)

        def success() -> str:
            return (f"✓ {task.result.rows.size} suggested samples in '{task.layer.name() if task.layer else ''}': "
                    f"fill in 'class', save, then train with the layer as labels — {task.result.path}")

        common.show_task_end(self.map_status, task, success, "cancelled; nothing was written",
                             "suggesting samples failed (details in the PIMC log)")

    def _on_map_progress(self, value: float) -> None:
        self.map_progress.setValue(int(value))

    def cancel_map(self) -> None:
        if self.map_task is not None and not self.map_task.done:
            self.map_task.cancel()

    def _on_map_done(self, task) -> None:
        from .. import tasks

        common.show_running(self.map_progress, self.map_cancel_button, False)

        def success() -> str:
            names = ", ".join(layer.name().split(" — ")[0] for layer in task.layers)  # (model, region: in the group)
            group = task.group.name() if task.group is not None else ""
            unknown = task.unknown_words() if isinstance(task, tasks.MapTask) else []
            ignored = f"; words the model does not know (ignored): {', '.join(unknown)}" if unknown else ""
            return f"✓ {group}: {names} ({task.outcome.seconds:.1f} s){ignored} — {task.out_dir}"

        common.show_task_end(self.map_status, task, success, "cancelled; nothing was written",
                      "the map run failed (details in the PIMC log)")

    # ------------------------------------------------------------------ settings, end
    def restore_settings(self) -> None:
        """The output folder of the last session."""
        out_dir = QgsSettings().value(common.SETTINGS + "out_dir", "")
        if out_dir:
            self.out_widget.setFilePath(out_dir)

    def cleanup(self) -> None:
        """Cancel a running map task (no callback into the panel); remove the drawing tools."""
        common.drop_task(self.map_task)
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


__all__ = ["POLYGON_FILTER", "PRODUCTS", "MapsSection"]
