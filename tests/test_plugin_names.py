"""What the panel and Processing call things, inside real QGIS: layer and group names that say
product, model and region (two runs told apart); the chosen rectangle drawn as an outline only;
one preset vocabulary in the panel and pimc:fit; pimc:fit's model kept by default (not a
temporary file); the source parameters' names; a training error names the labels layer, not the
temporary file it was exported to."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.qgis_helpers import wait_for
from tests.test_plugin_fit import plugin, sample  # noqa: F401 (fixtures: the panel on the sample)
from tests.test_plugin_regions import group_layers, mouse


def test_two_runs_have_names_with_product_model_and_region(plugin, sample, qgis_canvas, tmp_path):  # noqa: F811
    from pimc_core.io.timeseries import open_series

    dock = plugin.dock
    dock.set_model_path("builtin:nearest-centroid")
    dock.set_map_products(("classes",))
    ts = open_series(sample.manifest)
    dock.rect_action.trigger()
    tool = dock.rect_tool
    x0, y0 = ts.grid.xy(2, 2)
    x1, y1 = ts.grid.xy(12, 14)
    tool.canvasPressEvent(mouse(qgis_canvas, "press", x0, y0))
    tool.canvasMoveEvent(mouse(qgis_canvas, "move", x1, y1))
    assert tool.rubber_band.fillColor().alpha() > 0  # filled while dragging …
    tool.canvasReleaseEvent(mouse(qgis_canvas, "release", x1, y1))
    assert tool.rubber_band.numberOfVertices() > 0 and tool.rubber_band.fillColor().alpha() == 0  # … outline after
    first = wait_for(dock.map_task)
    assert first.succeeded, first.error
    second = wait_for(dock.map_canvas_extent())
    assert second.succeeded, second.error
    g1, g2 = first.group, second.group
    assert g1.name().startswith("PIMC region 1 — rectangle — baseline — ")
    assert g2.name().startswith("PIMC region 2 — canvas extent — baseline — ")
    assert [lyr.name() for lyr in group_layers(g2)][0] == "Classes — baseline — region 2"
    assert dock.map_status.text().startswith("✓ PIMC region 2")
    assert ": Classes, Confidence, Uncertainty (" in dock.map_status.text()  # model and region said once


def test_model_file_name_in_layer_names():
    from qgis_plugin.mapping import model_label

    assert model_label("/data/models/sample.pimc") == "sample.pimc"
    assert model_label("builtin:nearest-centroid") == "baseline"
    assert model_label(object()) == "model"


def test_one_preset_vocabulary(plugin):  # noqa: F811
    from qgis_plugin.fitting import PRESET_LABELS, PRESETS, fit_config

    panel = [plugin.dock.fit_preset_combo.itemData(i) for i in range(plugin.dock.fit_preset_combo.count())]
    labels = [plugin.dock.fit_preset_combo.itemText(i) for i in range(plugin.dock.fit_preset_combo.count())]
    alg = plugin.provider.algorithm("fit")
    options = alg.parameterDefinition("PRESET").options()
    assert panel == options == list(PRESETS) == ["standard", "quick", "try-out"]
    assert all(label.split(" ")[0] == key for label, key in zip(labels, panel))  # the panel shows the same words
    assert all(v.startswith(k) for k, v in PRESET_LABELS.items())
    plugin.dock.set_fit_preset("smoke")  # the former name still works
    assert plugin.dock.fit_preset_combo.currentData() == "try-out"
    assert fit_config("smoke") == fit_config("try-out")


def test_fit_model_default_is_kept_not_temporary(pimc_provider):
    from qgis_plugin.fitting import default_model_file

    out = pimc_provider.algorithm("fit").parameterDefinition("OUTPUT")
    default = str(out.defaultValue())
    assert default == str(default_model_file()) and default.endswith(".pimc")
    assert not default.startswith(tempfile.gettempdir())
    assert str(Path.home()) in default


def test_source_parameter_names_say_which_to_give(pimc_provider):
    alg = pimc_provider.algorithm("indices")
    source, folder = (alg.parameterDefinition(n).description() for n in ("SOURCE", "SOURCE_FOLDER"))
    assert "or a folder picked below" in source and "instead of the above" in folder


def test_training_error_names_the_layer_not_the_temporary_file(plugin, sample):  # noqa: F811
    """One class only in the labels: refused, naming the layer the user chose."""
    from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsRectangle, QgsVectorLayer

    from pimc_core.io.timeseries import open_series

    b = open_series(sample.manifest).grid.bounds
    layer = QgsVectorLayer("Polygon?crs=EPSG:32631&field=crop:string", "my fields", "memory")
    f = QgsFeature(layer.fields())
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(b[0], b[1], (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)))
    f["crop"] = "wheat"
    layer.dataProvider().addFeatures([f])
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.fit_layer_combo.setLayer(layer)
    dock.fit_field_combo.setField("crop")
    dock.set_fit_preset("try-out")
    task = dock.start_fit()
    assert task is not None, dock.fit_status.text()
    wait_for(task, timeout=120)
    assert not task.succeeded
    text = dock.fit_status.text()
    assert "layer 'my fields'" in text and "labels.gpkg" not in text and "pimc_labels_" not in text, text
    assert "at least 2 classes" in text
