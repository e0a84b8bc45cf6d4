"""Region tools of the panel inside real QGIS: a rectangle dragged on the canvas, a polygon clicked
on it, the canvas extent and the selected polygons of a layer → a background QgsTask running the
core → the maps as layers of a group "PIMC <timestamp>" (class names and colours in a paletted
renderer); a cancelled run leaves no layer and no file; errors are one clear line, never an
exception out of a slot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.qgis_helpers import flush_deletes, wait_for

MODEL = "builtin:nearest-centroid"


@pytest.fixture(scope="module")
def sample(tiny_sample):
    return tiny_sample


@pytest.fixture
def plugin(qgis_iface, qgis_new_project, qgis_canvas, sample, tmp_path):
    """The plugin with its panel on the sample, the builtin baseline model, an output folder, and
    the canvas showing the sample in its CRS."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle

    import qgis_plugin
    from pimc_core.io.timeseries import open_series

    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32631"))
    b = open_series(sample.manifest).grid.bounds
    qgis_canvas.setExtent(QgsRectangle(*b))
    p = qgis_plugin.classFactory(qgis_iface)
    p.initGui()
    p.show_panel(True)
    dock = p.dock
    dock.set_source_path(str(sample.manifest))
    assert dock.validate() is not None, dock.status_label.text()
    dock.set_model_path(MODEL)
    dock.out_widget.setFilePath(str(tmp_path / "maps"))
    qgis_iface.messageBar().clear_messages()
    yield p
    p.unload()
    flush_deletes()


def mouse(canvas, kind: str, x: float, y: float, button=None):
    """A QgsMapMouseEvent at map point (x, y)."""
    from qgis.core import QgsPointXY
    from qgis.gui import QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint, Qt

    dev = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    etype = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease, "double": QEvent.Type.MouseButtonDblClick}[kind]
    button = button or Qt.MouseButton.LeftButton
    buttons = Qt.MouseButton.NoButton if kind == "release" else button
    return QgsMapMouseEvent(canvas, etype, QPoint(int(round(dev.x())), int(round(dev.y()))), button, buttons)


def group_layers(group):
    return [node.layer() for node in group.findLayers()]


def test_rectangle_run_to_completion_adds_styled_layers(plugin, sample, qgis_canvas, tmp_path):
    from qgis.core import QgsProject

    from pimc_core.io.regions import bbox_region
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.engine import run_inference
    from pimc_core.models.centroid import NearestCentroidModel

    dock = plugin.dock
    dock.set_map_products(("classes", "forecast"))
    dock.rect_action.trigger()  # the user picks "Rectangle" …
    tool = dock.rect_tool
    assert qgis_canvas.mapTool() is tool and dock.rect_action.isChecked()

    ts = open_series(sample.manifest)
    x0, y0 = ts.grid.xy(2, 3)  # centre of pixel row 2, col 3 …
    x1, y1 = ts.grid.xy(15, 20)  # … to the centre of row 15, col 20
    tool.canvasPressEvent(mouse(qgis_canvas, "press", x0, y0))  # … and drags on the map
    tool.canvasMoveEvent(mouse(qgis_canvas, "move", (x0 + x1) / 2, (y0 + y1) / 2))
    assert tool.rubber_band.numberOfVertices() > 0  # the rubber band follows the mouse
    tool.canvasReleaseEvent(mouse(qgis_canvas, "release", x1, y1))

    task = dock.map_task
    assert task is not None and "rectangle" in task.description()
    wait_for(task)
    assert task.succeeded, task.error
    assert dock.map_status.text().startswith("✓ PIMC ")

    # the maps: a new group "PIMC <timestamp>" at the top of the layer tree
    root = QgsProject.instance().layerTreeRoot()
    group = root.children()[0]
    # named after the region, the model and the time: two runs are told apart in the legend
    assert group.name().startswith("PIMC region 1 — rectangle — baseline — 20") and group is task.group
    layers = group_layers(group)
    assert [lyr.name() for lyr in layers] == [f"{p} — baseline — region 1"
                                              for p in ("Classes", "Confidence", "Uncertainty", "Forecast")]
    assert [group.findLayer(lyr.id()).isVisible() for lyr in layers] == [True, False, False, False]
    classes, confidence, uncertainty, forecast = layers
    assert uncertainty.renderer().type() == "singlebandpseudocolor"  # the core's uncertainty.qml
    r = classes.renderer()
    assert r.type() == "paletted"  # the core's classes.qml, applied when the layer was created
    names = {int(c.value): c.label for c in r.classes()}
    from pimc_core.datasets.synthetic import CLASSES

    assert names == {c.id: c.name for c in CLASSES}
    colours = {int(c.value): c.color.name() for c in r.classes()}
    assert colours[1] == "#e3b505" and colours[9] == "#4363d8"
    from qgis.core import QgsRasterLayer

    fresh = QgsRasterLayer(classes.source(), "again")  # QGIS itself applies the core's classes.qml
    assert fresh.renderer().type() == "paletted" and fresh.renderer().classes()[0].label == "winter_wheat"
    assert confidence.renderer().type() == "singlebandpseudocolor"
    assert forecast.renderer().type() == "singlebandpseudocolor"
    assert forecast.bandCount() == 3

    # the same pixels as the core on the same region (the rectangle's pixel window)
    expect_dir = tmp_path / "core"
    region = bbox_region(ts.grid, (x0, y1, x1, y0))
    run_inference(ts, NearestCentroidModel.for_synthetic(), region, expect_dir, products=("classes",))
    with rasterio.open(classes.source()) as got, rasterio.open(expect_dir / "classes.tif") as exp:
        assert (got.width, got.height) == (exp.width, exp.height) == (18, 14)
        assert got.transform == exp.transform and got.crs == exp.crs
        np.testing.assert_array_equal(got.read(1), exp.read(1))
        assert got.read(1).min() >= 1  # every pixel of this clear sample is classified
    out = Path(classes.source()).parent
    assert out.parent == tmp_path / "maps" and out.name.startswith("PIMC_")
    assert sorted(p.name for p in out.iterdir()) == [
        "classes.qml", "classes.tif", "confidence.qml", "confidence.tif", "forecast.tif", "uncertainty.qml",
        "uncertainty.tif"]


def test_polygon_tool_and_clusters_similarity(plugin, sample, qgis_canvas):
    """A triangle clicked on the map: pixels outside it are nodata; clusters and the similarity to
    the inspected pixel come from the same model's embeddings."""
    from pimc_core.io.timeseries import open_series

    dock = plugin.dock
    ts = open_series(sample.manifest)
    dock.set_map_products(("clusters", "similarity"))
    dock.k_spin.setValue(3)
    assert dock.run_region(None) is None  # similarity without an inspected pixel: refused, said why
    assert "click a pixel with the pixel inspector first" in dock.map_status.text()

    plugin.inspector_action.trigger()
    qx, qy = ts.grid.xy(8, 8)
    from qgis.core import QgsPointXY

    plugin.map_tool.handle_point(QgsPointXY(qx, qy))
    assert dock.last_result is not None, dock.pixel_label.text()

    dock.polygon_action.trigger()
    tool = dock.polygon_tool
    assert qgis_canvas.mapTool() is tool and not plugin.inspector_action.isChecked()
    corners = [ts.grid.xy(1, 1), ts.grid.xy(1, 22), ts.grid.xy(22, 1)]
    for x, y in corners:
        tool.canvasPressEvent(mouse(qgis_canvas, "press", x, y))
    from qgis.PyQt.QtCore import Qt

    tool.canvasPressEvent(mouse(qgis_canvas, "press", *corners[-1], button=Qt.MouseButton.RightButton))  # close
    task = wait_for(dock.map_task)
    assert task.succeeded, task.error
    clusters, similarity = group_layers(task.group)
    assert clusters.name() == "Clusters (k=3) — baseline — region 1" and clusters.renderer().type() == "paletted"
    assert [c.label for c in clusters.renderer().classes()] == ["cluster 1", "cluster 2", "cluster 3"]
    assert similarity.renderer().type() == "singlebandpseudocolor"
    with rasterio.open(clusters.source()) as ds:
        c = ds.read(1)
    with rasterio.open(similarity.source()) as ds:
        s = ds.read(1)
    assert c.shape == s.shape == (22, 22)  # the triangle's bounding window
    assert c[1, 1] > 0 and c[-1, -1] == 0  # inside the triangle / outside it (nodata)
    assert set(np.unique(c)) == {0, 1, 2, 3}
    assert np.isnan(s[-1, -1]) and s[7, 7] == pytest.approx(1.0, abs=1e-5)  # the query pixel (8, 8) itself


def test_selected_polygons_of_a_layer_in_another_crs(plugin, sample, qgis_new_project):
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsFeature,
        QgsGeometry,
        QgsPointXY,
        QgsProject,
        QgsVectorLayer,
    )

    from pimc_core.io.timeseries import open_series

    ts = open_series(sample.manifest)
    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32631"),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326", "fields", "memory")
    feats = []
    for r0, c0 in ((0, 0), (12, 12)):  # two squares of 8x8 pixel centres
        ring = [to_wgs84.transform(QgsPointXY(*ts.grid.xy(r, c))) for r, c in
                ((r0, c0), (r0, c0 + 8), (r0 + 8, c0 + 8), (r0 + 8, c0), (r0, c0))]
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromPolygonXY([ring]))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.region_layer_combo.setLayer(layer)

    assert dock.map_selected_features() is None  # nothing selected yet
    assert "no feature of 'fields' is selected" in dock.map_status.text()
    layer.selectByIds([f.id() for f in layer.getFeatures()][1:])  # the second square only
    task = wait_for(dock.map_selected_features())
    assert task.succeeded, task.error
    assert task.region.description == "1 selected feature of fields"
    with rasterio.open(group_layers(task.group)[0].source()) as ds:
        c = ds.read(1)
        row, col = ds.index(*ts.grid.xy(16, 16))
    assert 8 <= c.shape[0] <= 10 and 8 <= c.shape[1] <= 10
    assert c[row, col] > 0


def test_canvas_extent(plugin, sample, qgis_canvas):
    from qgis.core import QgsRectangle

    from pimc_core.io.timeseries import open_series

    ts = open_series(sample.manifest)
    (xa, ya), (xb, yb) = ts.grid.xy(4, 4), ts.grid.xy(9, 14)
    qgis_canvas.setExtent(QgsRectangle(xa, yb, xb, ya))
    task = wait_for(plugin.dock.map_canvas_extent())
    assert task.succeeded, task.error
    e = qgis_canvas.extent()  # the canvas keeps its aspect ratio: the mapped box is what it shows
    layer = group_layers(task.group)[0]
    ext = layer.extent()
    assert ext.xMinimum() <= max(e.xMinimum(), ts.grid.bounds[0]) + 1e-6
    assert ext.xMaximum() >= min(e.xMaximum(), ts.grid.bounds[2]) - 1e-6


def test_bayesian_smoothing_box_smooths_the_class_map(plugin, sample, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsRectangle

    from pimc_core.io.regions import bbox_region
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.engine import run_inference
    from pimc_core.models.centroid import NearestCentroidModel
    from qgis_plugin.region_tools import RegionChoice

    ts = open_series(sample.manifest)
    bounds = ts.grid.bounds
    box = plugin.dock.maps_box
    assert not box.smooth_check.isChecked()  # off by default
    box.set_map_products(("forecast",))
    assert not box.smooth_check.isEnabled()  # it smooths the class map only
    box.set_map_products(("classes",))
    assert box.smooth_check.isEnabled()
    box.smooth_check.setChecked(True)
    choice = RegionChoice(QgsGeometry.fromRect(QgsRectangle(*bounds)), QgsCoordinateReferenceSystem("EPSG:32631"),
                          "rectangle", "rectangle")
    task = wait_for(box.run_region(choice))
    assert task.succeeded, task.error
    assert task.request.smooth is True
    run_inference(ts, NearestCentroidModel.for_synthetic(), bbox_region(ts.grid, bounds), tmp_path / "core",
                  products=("classes",), smooth=True)
    classes = group_layers(task.group)[0]
    with rasterio.open(classes.source()) as got, rasterio.open(tmp_path / "core" / "classes.tif") as exp:
        np.testing.assert_array_equal(got.read(1), exp.read(1))
        assert got.tags()["pimc_smoothing"] == exp.tags()["pimc_smoothing"]


class _CancellingModel:
    """The baseline model, cancelling its own task in its first predict call (deterministic)."""

    def __init__(self):
        from pimc_core.models.centroid import NearestCentroidModel

        self._m = NearestCentroidModel.for_synthetic()
        self.task = None
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._m, name)

    def prepare(self, source):
        self._m.prepare(source)

    def predict(self, filled, patches=None):
        self.calls += 1
        self.task.cancel()
        return self._m.predict(filled, patches)


def test_cancelled_run_leaves_no_layer_and_no_file(plugin, sample, tmp_path, qgis_iface, monkeypatch):
    from qgis.core import QgsProject

    import qgis_plugin.tasks as tasks_mod
    from qgis_plugin.region_tools import canvas_extent_choice

    dock = plugin.dock
    dock.set_map_products(("classes", "forecast", "clusters"))
    model = _CancellingModel()
    real_start = tasks_mod.start

    def start(task):
        model.task = task
        return real_start(task)

    monkeypatch.setattr(tasks_mod, "start", start)
    task = dock.run_region(canvas_extent_choice(qgis_iface.mapCanvas()), model=model)
    wait_for(task)
    assert model.calls == 1
    assert task.cancelled and not task.succeeded and task.error is None
    assert QgsProject.instance().layerTreeRoot().children() == []  # no group, no layer
    assert list((tmp_path / "maps").iterdir()) == []  # the run folder and its temporaries are gone
    assert dock.map_status.text() == "cancelled; nothing was written"
    assert dock.map_progress.isHidden()


def test_missing_model_or_region_outside_is_one_clear_line(plugin, sample, qgis_iface):
    from qgis.core import Qgis, QgsCoordinateReferenceSystem, QgsGeometry, QgsRectangle

    from qgis_plugin.region_tools import RegionChoice

    dock = plugin.dock
    choice = RegionChoice(QgsGeometry.fromRect(QgsRectangle(0, 0, 10, 10)), QgsCoordinateReferenceSystem("EPSG:32631"),
                          "rectangle", "rectangle")
    dock.set_model_path("")
    assert dock.run_region(choice) is None
    text = dock.map_status.text()
    assert text.startswith("Choose a model file (.pimc) first") and "clusters" in text and "embeddings" in text
    assert text in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)[-1]

    dock.set_model_path(MODEL)
    assert dock.run_region(choice) is None
    assert dock.map_status.text().startswith("the rectangle does not overlap the time series")

    dock.set_model_path(str(Path(sample.outdir) / "no_such_model.pimc"))
    assert not dock.model_label.isHidden() and "not a usable model file" in dock.model_label.text()


def test_unexpected_error_in_the_task_is_reported_not_raised(plugin, sample, qgis_iface, monkeypatch):
    """A bug inside the background run: message bar + log with the traceback; QGIS goes on."""
    from qgis.core import Qgis

    import qgis_plugin.tasks as tasks_mod
    from qgis_plugin.region_tools import canvas_extent_choice

    def boom(*a, **k):
        raise ZeroDivisionError("bad luck")

    monkeypatch.setattr(tasks_mod, "run_maps", boom)
    task = wait_for(plugin.dock.run_region(canvas_extent_choice(qgis_iface.mapCanvas())))
    assert not task.succeeded and "ZeroDivisionError: bad luck" in task.error
    assert "Traceback" in task.details
    crit = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical)
    assert crit and "bad luck" in crit[-1]
    assert "bad luck" in plugin.dock.map_status.text()
    assert list((Path(plugin.dock.out_widget.filePath())).glob("PIMC_*")) == []


def test_layers_without_qml_get_the_palette_from_the_geotiff(qgis_new_project, sample, tmp_path):
    """A class map whose .qml sidecar is gone still shows names and colours (colour table + band tags)."""
    from qgis.core import QgsProject

    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.engine import cluster_map, run_inference
    from pimc_core.models.centroid import NearestCentroidModel
    from qgis_plugin.layers import add_result_layers

    ts = open_series(sample.manifest)
    m = NearestCentroidModel.for_synthetic()
    run_inference(ts, m, None, tmp_path, products=("classes", "embeddings"))
    cluster_map(ts, m, None, tmp_path, k=2)
    for q in tmp_path.glob("*.qml"):
        q.unlink()
    group, layers = add_result_layers({p: tmp_path / f"{p}.tif" for p in ("embeddings", "clusters", "classes")},
                                      name="PIMC test")
    assert QgsProject.instance().layerTreeRoot().children()[0] is group
    assert [lyr.name() for lyr in layers] == ["Classes", "Clusters (k=2)", "Embeddings"]  # stacking order
    classes, clusters, emb = layers
    assert classes.renderer().type() == "paletted"
    assert [(int(c.value), c.label, c.color.name()) for c in classes.renderer().classes()][:2] == [
        (1, "winter_wheat", "#e3b505"), (2, "maize", "#f58231")]
    assert [c.label for c in clusters.renderer().classes()] == ["cluster 1", "cluster 2"]
    assert emb.renderer().type() != "paletted"


def test_unload_while_a_run_is_going_leaves_nothing(qgis_iface, qgis_new_project, qgis_canvas, sample, tmp_path):
    """Unloading the plugin with the region tools made and a map run under way: the run is
    cancelled (no callback into the deleted panel, no files), the tools leave the canvas."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsProject, QgsRectangle
    from qgis.PyQt.QtCore import QObject

    import qgis_plugin
    from pimc_core.io.timeseries import open_series
    from qgis_plugin.region_tools import canvas_extent_choice

    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32631"))
    qgis_canvas.setExtent(QgsRectangle(*open_series(sample.manifest).grid.bounds))
    p = qgis_plugin.classFactory(qgis_iface)
    p.initGui()
    p.show_panel(True)
    dock = p.dock
    dock.set_source_path(str(sample.manifest))
    dock.set_model_path(MODEL)
    dock.out_widget.setFilePath(str(tmp_path / "maps"))
    dock.polygon_action.trigger()
    dock.rect_action.trigger()
    assert qgis_canvas.mapTool() is dock.rect_tool
    task = dock.run_region(canvas_extent_choice(qgis_canvas))
    assert task is not None
    p.unload()
    flush_deletes()
    wait_for(task)
    assert task.cancelled or task.succeeded  # it may have been quicker than the unload
    assert qgis_canvas.mapTool() is None
    names = [o.objectName() for o in qgis_iface.mainWindow().findChildren(QObject)]
    names += [o.objectName() for o in qgis_canvas.findChildren(QObject)]
    assert not [n for n in names if n.lower().startswith("pimc")]
    if task.cancelled:  # before it started (no folder made) or while running (its folder removed)
        assert QgsProject.instance().layerTreeRoot().children() == []
        assert not (tmp_path / "maps").exists() or list((tmp_path / "maps").iterdir()) == []


def test_suggest_samples_adds_an_editable_points_layer(plugin, sample, tmp_path):
    """The maps section's *Suggest samples*: a background task over the whole series; the points
    arrive as a layer in edit mode where only 'class' can be edited; the same points as the core."""
    from qgis.core import QgsProject

    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.suggest import suggest_samples
    from pimc_core.models.centroid import NearestCentroidModel

    box = plugin.dock.maps_box
    box.suggest_spin.setValue(15)
    task = wait_for(box.suggest_samples())
    assert task.succeeded, task.error
    layer = task.layer
    assert layer is not None and QgsProject.instance().mapLayer(layer.id()) is layer
    assert layer.featureCount() == 15 and layer.isEditable()
    names = layer.fields().names()
    assert names[-4:] == ["predicted", "predicted_name", "uncertainty", "class"]
    form = layer.editFormConfig()
    assert [form.readOnly(i) for i in range(len(names))] == [n != "class" for n in names]
    assert box.map_status.text().startswith("✓ 15 suggested samples")
    path = Path(task.result.path)
    assert path.parent.parent == tmp_path / "maps" and path.name == "suggested_points.gpkg"

    # on top of the layer tree, red while unlabelled, green once a class is filled in
    assert QgsProject.instance().layerTreeRoot().children()[0].layerId() == layer.id()
    rules = {r.label(): r for r in layer.renderer().rootRule().children()}
    assert rules["to label"].filterExpression() == '"class" IS NULL' and rules["labelled"].isElse()
    assert rules["to label"].symbol().color().name() == "#ff0000"

    # the analyst fills in a class; the file takes it
    feat = next(layer.getFeatures())
    assert layer.changeAttributeValue(feat.id(), layer.fields().indexOf("class"), 3)
    assert layer.commitChanges()

    core = suggest_samples(open_series(sample.manifest), NearestCentroidModel.for_synthetic(), None,
                           tmp_path / "core.gpkg", 15)
    got = sorted((round(f.geometry().asPoint().x(), 3), round(f.geometry().asPoint().y(), 3))
                 for f in layer.getFeatures())
    assert got == sorted(zip(np.round(core.x, 3).tolist(), np.round(core.y, 3).tolist()))


def test_suggest_samples_keep_off_the_labels_chosen_for_training(plugin, sample, tmp_path):
    """The labels chosen under *Train a model* are the labels made so far: *Suggest samples* never
    puts a point on their pixels and gives the core's points for ``exclude`` = those pixels (what
    ``pimc suggest --labels`` does); a vector layer's export is removed after the run."""
    from qgis.core import QgsProject, QgsRasterLayer

    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.suggest import suggest_samples
    from pimc_core.models.centroid import NearestCentroidModel
    from tests.test_plugin_fit import label_layer

    with rasterio.open(sample.outdir / "labels_sparse.tif") as ds:
        sparse = ds.read(1)
    raster = QgsRasterLayer(str(sample.outdir / "labels_sparse.tif"), "sparse labels")
    QgsProject.instance().addMapLayer(raster)
    dock = plugin.dock
    dock.fit_layer_combo.setLayer(raster)
    box = dock.maps_box
    box.suggest_spin.setValue(15)
    assert not box.suggest_away_check.isChecked()  # the list always shows some layer: off unless asked
    box.suggest_away_check.setChecked(True)
    task = wait_for(box.suggest_samples())
    assert task.succeeded, task.error
    res = task.result
    assert res.excluded == int((sparse > 0).sum()) and not (sparse[res.rows, res.cols] > 0).any()
    assert res.strategy == "coverage" and res.novelty is not None
    core = suggest_samples(open_series(sample.manifest), NearestCentroidModel.for_synthetic(), None,
                           tmp_path / "core.gpkg", 15, exclude=sparse > 0)
    assert sorted(zip(res.rows.tolist(), res.cols.tolist())) == sorted(zip(core.rows.tolist(), core.cols.tolist()))

    polygons = label_layer(sample)  # a vector layer: exported for the run, then removed
    QgsProject.instance().addMapLayer(polygons)
    dock.fit_layer_combo.setLayer(polygons)
    dock.fit_field_combo.setField("crop")
    task = wait_for(box.suggest_samples())
    assert task.succeeded, task.error
    assert task.result.excluded > 0 and task.temp_files and not any(p.exists() for p in task.temp_files)

    # a layer that is no label raster: the run stops, the section names the file and why
    image_path = next(sample.outdir.glob("S2_*.tif"))
    image = QgsRasterLayer(str(image_path), "an image")
    QgsProject.instance().addMapLayer(image)
    dock.fit_layer_combo.setLayer(image)
    task = wait_for(box.suggest_samples())
    assert not task.succeeded and not (tmp_path / "maps" / task.out_dir.name).exists()
    assert f"{image_path}: label raster has 6 bands" in box.map_status.text()
    dock.fit_layer_combo.setLayer(None)
    assert box.suggest_samples() is None and "choose the labels under Train a model" in box.map_status.text()
    box.suggest_away_check.setChecked(False)  # unticked: the same image is not read at all
    dock.fit_layer_combo.setLayer(image)
    task = wait_for(box.suggest_samples())
    assert task.succeeded and task.result.excluded is None


def test_suggest_samples_without_a_model_says_so(plugin):
    box = plugin.dock.maps_box
    plugin.dock.set_model_path("")
    assert box.suggest_samples() is None
    assert "model file" in box.map_status.text()
