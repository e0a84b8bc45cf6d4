"""Training inside QGIS: the panel's "Train a model" section on labelled polygons (a layer in
another CRS, class names in a text field) or points (class ids, some NULL; the selected ones)
→ a background FitTask → a .pimc the panel then uses
to map a rectangle (the real model path, not the baseline); cancelling writes no model file; the
progress adapter over pimc_core.fit's stages."""

from __future__ import annotations

import pytest
import rasterio

from tests.qgis_helpers import flush_deletes, wait_for


@pytest.fixture(scope="module")
def sample(tiny_sample):
    return tiny_sample


def sparse_labels(sample, crs: str):
    """The sample's sparse label raster (H, W), its transform, and a transform from the series'
    CRS (EPSG:32631) to ``crs``."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject

    with rasterio.open(sample.labels_sparse) as ds:
        data, transform = ds.read(1), ds.transform
    ct = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32631"), QgsCoordinateReferenceSystem(crs),
                                QgsProject.instance())
    return data, transform, ct


def label_layer(sample, crs: str = "EPSG:4326"):
    """The sample's sparse labels as polygons with the class *names* in a text field, in ``crs``."""
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer
    from rasterio.features import shapes

    from pimc_core.datasets.synthetic import CLASSES

    names = {c.id: c.name for c in CLASSES}
    data, transform, ct = sparse_labels(sample, crs)
    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=crop:string", "training fields", "memory")
    feats = []
    for geom, value in shapes(data, mask=data > 0, transform=transform):
        rings = [[ct.transform(QgsPointXY(x, y)) for x, y in ring] for ring in geom["coordinates"]]
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPolygonXY(rings))
        f["crop"] = names[int(value)]
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    return layer


def point_layer(sample, crs: str = "EPSG:4326", *, blank_every: int = 4, multi: bool = False, name: str = "points"):
    """A point at the centre of each pixel of the sample's sparse labels, its class id in an integer
    field ``class``, left NULL on every ``blank_every``-th point (0: on none; 1: on all), as the
    analyst fills in the points ``pimc suggest`` writes; in ``crs`` (``multi``: MultiPoint)."""
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    data, transform, ct = sparse_labels(sample, crs)
    layer = QgsVectorLayer(f"{'MultiPoint' if multi else 'Point'}?crs={crs}&field=class:integer", name, "memory")
    feats = []
    rows, cols = data.nonzero()
    for i, (r, c, x, y) in enumerate(zip(rows, cols, *rasterio.transform.xy(transform, rows, cols))):
        pt = ct.transform(QgsPointXY(x, y))
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromMultiPointXY([pt]) if multi else QgsGeometry.fromPointXY(pt))
        if not blank_every or i % blank_every:
            f["class"] = int(data[r, c])
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    return layer


@pytest.fixture
def plugin(qgis_iface, qgis_new_project, qgis_canvas, sample, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle

    import qgis_plugin
    from pimc_core.io.timeseries import open_series

    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32631"))
    qgis_canvas.setExtent(QgsRectangle(*open_series(sample.manifest).grid.bounds))
    p = qgis_plugin.classFactory(qgis_iface)
    p.initGui()
    p.show_panel(True)
    p.dock.set_source_path(str(sample.manifest))
    assert p.dock.validate() is not None
    p.dock.set_model_path("")
    p.dock.out_widget.setFilePath(str(tmp_path / "maps"))
    yield p
    p.unload()
    flush_deletes()


def test_train_from_polygons_then_map_with_the_new_model(plugin, sample, tmp_path):
    from qgis.core import QgsProject

    from pimc_core.models.model_file import read_metadata
    from qgis_plugin.region_tools import RegionChoice

    layer = label_layer(sample)
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.fit_layer_combo.setLayer(layer)
    dock.fit_field_combo.setField("crop")
    assert dock.fit_field_combo.isEnabled()
    dock.set_fit_preset("smoke")
    out = tmp_path / "models" / "fields.pimc"
    dock.fit_out_widget.setFilePath(str(out))

    progress = []
    task = dock.start_fit()
    assert task is not None, dock.fit_status.text()
    task.progressChanged.connect(progress.append)
    assert not dock.fit_button.isEnabled() and not dock.fit_progress.isHidden()
    wait_for(task)
    assert task.succeeded, task.error
    assert out.is_file() and task.model_path == out
    assert dock.model_spec() == str(out)  # the panel now uses the new model
    # one field per class in these labels: no held-out estimate, said so, and no green tick
    assert dock.fit_status.text().startswith("fields.pimc: 9 classes; spatial CV not possible: classes "), \
        dock.fit_status.text()
    assert "accuracy on its own training pixels" in dock.fit_status.text() and "✓" not in dock.fit_status.text()
    assert "9 classes (" in dock.model_label.text() and "spatial CV not possible" in dock.model_label.text()
    assert dock.fit_button.isEnabled() and dock.fit_progress.isHidden()
    assert progress and progress == sorted(progress) and progress[-1] == pytest.approx(100.0)
    assert any(line.startswith("sampled ") for line in task.log_lines)
    meta = read_metadata(out)
    names = sorted({f["crop"] for f in layer.getFeatures()})
    assert [c["name"] for c in meta["classes"]] == names  # from the text field, ids in alphabetical order
    assert [c["id"] for c in meta["classes"]] == list(range(1, len(names) + 1))
    assert task.temp_files and not any(p.exists() for p in task.temp_files)  # exported labels removed

    # the real .pimc through the region tools: a rectangle in the canvas CRS
    from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsRectangle

    from pimc_core.io.timeseries import open_series

    ts = open_series(sample.manifest)
    (x0, y0), (x1, y1) = ts.grid.xy(0, 0), ts.grid.xy(9, 11)
    dock.set_map_products(("classes", "forecast", "embeddings"))
    choice = RegionChoice(QgsGeometry.fromRect(QgsRectangle(x0, y1, x1, y0)),
                          QgsCoordinateReferenceSystem("EPSG:32631"), "rectangle", "rectangle")
    mtask = wait_for(dock.run_region(choice))
    assert mtask.succeeded, mtask.error
    classes, confidence, uncertainty, forecast, embeddings = [n.layer() for n in mtask.group.findLayers()]
    assert classes.renderer().type() == "paletted"
    assert sorted(c.label for c in classes.renderer().classes()) == names
    with rasterio.open(classes.source()) as ds:
        c = ds.read(1)
    assert c.shape == (10, 12) and c.min() >= 1 and c.max() <= 9
    assert forecast.bandCount() == meta["forecast_horizon"] >= 1
    assert embeddings.bandCount() >= 2


def test_train_shows_the_held_out_accuracy_and_confusion_matrix(plugin, tmp_path):
    """Labels with two separate fields per class: the panel shows the spatial cross-validated
    accuracy (± and folds / fields) with the tick, the training accuracy labelled as such, and the
    held-out confusion matrix as the tooltip; the model line says it too."""
    from qgis.core import QgsProject, QgsRasterLayer

    from pimc_core.learn.spatial_cv import describe
    from pimc_core.models.model_file import read_metadata
    from tests.test_spatial_cv import two_fields_per_class

    stack, labels = two_fields_per_class(tmp_path)
    dock = plugin.dock
    dock.set_source_path(str(stack.manifest))
    assert dock.validate() is not None
    layer = QgsRasterLayer(str(labels), "two fields")
    QgsProject.instance().addMapLayer(layer)
    dock.fit_layer_combo.setLayer(layer)
    dock.set_fit_preset("smoke")
    out = tmp_path / "cv.pimc"
    dock.fit_out_widget.setFilePath(str(out))
    task = wait_for(dock.start_fit(config_overrides={"data": {"patch_size": 3}, "cv_folds": 3}))
    assert task.succeeded, task.error
    meta = read_metadata(out)
    assert meta["training"]["config"]["cv_jobs"] == 1  # the folds ran in QGIS's process, not in new QGIS ones
    cv = meta["training"]["spatial_cv"]
    held = f"held-out accuracy {cv['accuracy']:.2f} ± {cv['accuracy_se']:.2f} (3 folds, 8 fields)"
    text = dock.fit_status.text()
    assert text.startswith(f"✓ cv.pimc: 4 classes, {held}"), text
    assert "accuracy on its own training pixels" in text
    tip = dock.fit_status.toolTip()
    assert "<table" in tip and "recall" in tip and all(c["name"] in tip for c in meta["classes"])
    assert all(f"<td align='right'>{v}</td>" in tip for row in cv["confusion"] for v in row)
    assert describe(cv) in dock.model_label.text() and "<table" in dock.model_label.toolTip()


def test_train_cancelled_writes_no_model(plugin, sample, tmp_path, monkeypatch):
    """Cancel at the first progress report: the training stops at its next step, no file."""
    from qgis.core import QgsProject, QgsRasterLayer

    layer = QgsRasterLayer(str(sample.labels_sparse), "labels")
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.fit_layer_combo.setLayer(layer)
    assert not dock.fit_field_combo.isEnabled()  # a label raster has no class field
    dock.set_fit_preset("smoke")
    out = tmp_path / "cancelled.pimc"
    dock.fit_out_widget.setFilePath(str(out))

    import qgis_plugin.fitting as fitting

    seen = []
    real_call = fitting.FitProgress.__call__

    def cancel_on_first_step(self, *args):
        seen.append(args)
        if len(args) == 3 and dock.fit_task is not None:
            dock.fit_task.cancel()  # the user presses Cancel while pretraining runs
        return real_call(self, *args)

    monkeypatch.setattr(fitting.FitProgress, "__call__", cancel_on_first_step)
    task = wait_for(dock.start_fit())
    assert task.cancelled and not task.succeeded and task.error is None
    assert [a for a in seen if len(a) == 3] == [seen[-1]]  # stopped at the first training step
    assert not out.exists() and list(tmp_path.glob("*.pimc")) == []
    assert dock.fit_status.text() == "training cancelled; no model file was written"
    assert dock.model_spec() == ""


def test_train_needs_labels_and_a_class_field(plugin, sample):
    from qgis.core import QgsProject

    dock = plugin.dock
    dock.fit_layer_combo.setLayer(None)
    assert dock.start_fit() is None
    assert dock.fit_status.text().startswith("choose the labels")
    layer = label_layer(sample, "EPSG:32631")
    QgsProject.instance().addMapLayer(layer)
    dock.fit_layer_combo.setLayer(layer)
    dock.fit_field_combo.setField("")
    assert dock.start_fit() is None
    assert "choose the field of 'training fields' that holds the class" in dock.fit_status.text()
    dock.fit_selected_check.setChecked(True)
    dock.fit_field_combo.setField("crop")
    assert dock.start_fit() is None
    assert dock.fit_status.text() == "no feature of 'training fields' is selected"


def test_fit_progress_is_one_monotonic_fraction_over_the_stages():
    from pimc_core.errors import Cancelled
    from qgis_plugin.fitting import FitProgress

    got = []
    stop = [False]
    p = FitProgress(got.append, lambda: stop[0], pretrain=True, forecast=True)
    for f in (0.5, 1.0, 0.2, 1.0):  # two sampling passes
        p(f)
    assert got[-1] == pytest.approx(0.1)
    for s in (1, 2, 3):  # pretraining
        p(s, 3, 1.0)
    assert p.stage == "pretrain"
    for s in range(1, 7):  # fine-tuning: a new loop (step back to 1, another total)
        p(s, 6, 0.5)
    assert p.stage == "finetune"
    for s in (1, 2):  # forecast head
        p(s, 4, 0.1)
    assert p.stage == "forecast"
    assert got == sorted(got) and 0.9 < got[-1] < 1.0
    stop[0] = True
    with pytest.raises(Cancelled):
        p(3, 4, 0.1)
    with pytest.raises(Cancelled):
        p.log("a line")


def test_fit_progress_counts_the_cross_validation_folds():
    from qgis_plugin.fitting import FitProgress

    got = []
    p = FitProgress(got.append, pretrain=True, forecast=False, validation=2)
    stages = []
    for total in (3, 4, 4, 5):  # pretraining, two folds, the classifier
        for s in range(1, total + 1):
            p(s, total, 1.0)
        stages.append(p.stage)
    assert stages == ["pretrain", "validation", "validation", "finetune"]
    assert got == sorted(got) and got[-1] == pytest.approx(0.98)  # the stages end at 98 %


def test_fit_presets_are_valid_fit_configs(tmp_path):
    from pimc_core.errors import ConfigError
    from pimc_core.fit import FitConfig
    from qgis_plugin.fitting import PRESETS, fit_config

    for name in PRESETS:
        FitConfig.from_dict(fit_config(name))
    yaml_cfg = tmp_path / "cfg.yaml"
    yaml_cfg.write_text("pretrain:\n  steps: 7\n")
    cfg = fit_config("smoke", yaml_cfg)
    assert cfg["pretrain"]["steps"] == 7 and cfg["pretrain"]["batch_size"] == 64  # YAML over the preset
    with pytest.raises(ConfigError, match="unknown training preset"):
        fit_config("huge")
    (tmp_path / "bad.yaml").write_text("pretrain:\n  stepz: 7\n")
    with pytest.raises(ConfigError, match="stepz"):
        fit_config("smoke", tmp_path / "bad.yaml")


def test_train_from_points_skips_the_empty_classes(plugin, sample, tmp_path):
    """Points with a class field, a quarter of them NULL (half-labelled suggested points): the
    panel trains on the others and says how many it skipped."""
    from qgis.core import QgsProject

    from pimc_core.models.model_file import read_metadata

    layer = point_layer(sample)
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.fit_layer_combo.setLayer(layer)
    assert dock.fit_layer_combo.currentLayer() == layer  # points are offered as labels
    dock.fit_field_combo.setField("class")
    dock.set_fit_preset("smoke")
    out = tmp_path / "points.pimc"
    dock.fit_out_widget.setFilePath(str(out))
    total = layer.featureCount()
    blank = len(range(0, total, 4))  # every 4th point has no class
    task = dock.start_fit()
    assert task is not None, dock.fit_status.text()
    assert dock.fit_status.text().startswith(
        f"training on {total - blank} points of points ('class'; {blank} without a class skipped) → "), \
        dock.fit_status.text()
    wait_for(task)
    assert task.succeeded, task.error
    assert out.is_file() and dock.model_spec() == str(out)
    assert [c["id"] for c in read_metadata(out)["classes"]] == list(range(1, 10))


def test_train_from_points_all_null_is_one_line(plugin, sample):
    from qgis.core import QgsProject

    layer = point_layer(sample, blank_every=1, name="suggested")
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.fit_layer_combo.setLayer(layer)
    dock.fit_field_combo.setField("class")
    assert dock.start_fit() is None
    assert dock.fit_status.text() == (f"'suggested': the 'class' of every point ({layer.featureCount()}) is empty; "
                                      f"fill in the classes first")


def test_train_from_selected_points_only(plugin, sample):
    from qgis.core import QgsProject

    layer = point_layer(sample, "EPSG:32631", blank_every=0)
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.fit_layer_combo.setLayer(layer)
    dock.fit_field_combo.setField("class")
    assert dock.fit_selected_check.isEnabled() and dock.fit_selected_check.text() == "Selected features only"
    dock.fit_selected_check.setChecked(True)
    assert dock.start_fit() is None
    assert dock.fit_status.text() == "no feature of 'points' is selected"
    layer.selectByIds([f.id() for f in layer.getFeatures()][:40])
    dock.set_fit_preset("smoke")
    task = dock.start_fit()
    assert task is not None, dock.fit_status.text()
    assert dock.fit_status.text().startswith("training on 40 points of points ('class') → ")
    task.cancel()
    wait_for(task)
