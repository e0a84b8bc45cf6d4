"""The panel's Sentinel-1 field and text query box inside real QGIS: the radar source reaches the
map run (the class map equals ``pimc classify --sar``), a radar source on another grid is one line
under the field and stops the runs, it is remembered like the source; the *Query* box is enabled
only for a model with a text head and gives the raster of ``pimc query``, its layer named after
the sentence with the words the model does not know in the message line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from tests.qgis_helpers import flush_deletes, wait_for
from tests.test_plugin_regions import group_layers
from tests.test_plugin_sar import model, sample  # noqa: F401 (module fixtures: the S1 + S2 sample and its model)


def open_panel(qgis_iface, source, out):
    import qgis_plugin

    p = qgis_plugin.classFactory(qgis_iface)
    p.initGui()
    p.show_panel(True)
    dock = p.dock
    dock.set_source_path(str(source))
    dock.out_widget.setFilePath(str(out))
    return p, dock


@pytest.fixture
def panel(qgis_iface, qgis_new_project, qgis_canvas, sample, tmp_path):  # noqa: F811
    p, dock = open_panel(qgis_iface, sample.manifest, tmp_path / "maps")
    yield dock
    p.unload()
    flush_deletes()


def whole(ts):
    """A rectangle over the whole grid, as drawn on the canvas."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsRectangle

    from qgis_plugin.region_tools import RegionChoice

    return RegionChoice(QgsGeometry.fromRect(QgsRectangle(*ts.grid.bounds)), QgsCoordinateReferenceSystem("EPSG:32631"),
                        "rectangle", "rectangle")


def test_radar_field_reaches_the_map_run(panel, sample, model, tmp_path):  # noqa: F811
    from qgis.core import QgsSettings

    from pimc_core.cli import main
    from pimc_core.io.timeseries import open_series
    from qgis_plugin.panel.common import SETTINGS

    dock, radar = panel, panel.source_box.radar_row
    assert dock.validate() is not None and not radar.sar_label.isVisible()  # no radar: nothing said about it
    dock.source_box.set_sar_path(str(sample.sar_manifest))
    ts = dock.validate()
    assert ts is not None and ts.band_names[-2:] == ("vv", "vh"), dock.status_label.text()
    sar = open_series(sample.sar_manifest)
    line = radar.sar_label.text()
    assert line.startswith(f"✓ {len(sar.dates)} dates") and line.endswith(f"read as {sar.reading}")
    assert "\n" not in line and radar.sar_label.isVisibleTo(dock.source_box)
    assert dock.source_spec().sar == str(sample.sar_manifest)
    remembered = json.loads(QgsSettings().value(SETTINGS + "radar_by_source"))
    assert remembered[str(sample.manifest)] == str(sample.sar_manifest)

    dock.set_model_path(str(model))
    dock.set_map_products(("classes",))
    task = wait_for(dock.run_region(whole(ts)))
    assert task.succeeded, task.error
    assert main(["classify", str(sample.manifest), "--sar", str(sample.sar_manifest), "--model", str(model),
                 "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    layer = next(lyr for lyr in group_layers(task.group) if lyr.customProperty("pimc/product") == "classes")
    with rasterio.open(layer.source()) as a, rasterio.open(tmp_path / "cli" / "classes.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert (a.read(1) > 0).mean() > 0.9


def test_radar_source_on_another_grid_is_one_line_and_stops_runs(panel, sample, model, tmp_path):  # noqa: F811
    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.io.timeseries import open_series

    other = make_synthetic(tmp_path / "o", size=16, n_dates=3, seed=1, n_classes=2, sar=True)
    dock, radar = panel, panel.source_box.radar_row
    dock.source_box.set_sar_path(str(other.sar_manifest))
    assert dock.validate() is None
    text = radar.sar_label.text()
    assert text.startswith("radar (S1) source: ") and "\n" not in text and "is not on the grid" in text
    assert str(other.sar_manifest) in text and "color: #c62828" in radar.sar_label.styleSheet()
    assert dock.status_label.text().startswith("✓ ")  # the optical source itself is fine
    dock.set_model_path(str(model))
    dock.set_map_products(("classes",))
    assert dock.run_region(whole(open_series(sample.manifest))) is None
    assert dock.map_status.text().startswith("choose a valid radar (S1) source, or clear it: ")
    dock.source_box.set_sar_path(str(sample.manifest))  # an optical source given as the radar one
    assert dock.validate() is None and radar.sar_label.text().startswith("radar (S1) source: ")
    assert str(sample.manifest) in radar.sar_label.text() and "\n" not in radar.sar_label.text()
    dock.source_box.set_sar_path("")
    assert dock.validate() is not None and not radar.sar_label.isVisible()


def test_radar_source_is_remembered_per_source_while_it_exists(qgis_iface, qgis_new_project, sample,  # noqa: F811
                                                                tiny_sample, tmp_path):
    import shutil

    from qgis.core import QgsSettings

    from qgis_plugin.panel.common import SETTINGS

    s1 = tmp_path / "s1"
    shutil.copytree(sample.sar_manifest.parent, s1)
    QgsSettings().setValue(SETTINGS + "source", str(sample.manifest))
    QgsSettings().setValue(SETTINGS + "radar_by_source", json.dumps({str(sample.manifest): str(s1 / "manifest.yaml")}))
    for expected in (str(s1 / "manifest.yaml"), ""):
        p, dock = open_panel(qgis_iface, sample.manifest, tmp_path / "maps")
        try:
            assert dock.source_box.radar_row.path() == expected
            dock.set_source_path(str(tiny_sample.manifest))  # another optical source: no radar source with it
            assert dock.source_box.radar_row.path() == "" and dock.validate() is not None
            dock.set_source_path(str(sample.manifest))  # back: its radar source again
            assert dock.source_box.radar_row.path() == expected
            dock.mode_layers.setChecked(True)  # project layers: another source, no radar source with it
            assert dock.source_box.radar_row.path() == ""
            dock.mode_path.setChecked(True)
            assert dock.source_box.radar_row.path() == expected
        finally:
            p.unload()
            flush_deletes()
        shutil.rmtree(s1, ignore_errors=True)  # gone before the second panel opens


# ----------------------------------------------------------------------------- text queries
@pytest.fixture(scope="module")
def text_models(tiny_sample, tmp_path_factory):
    """(base model, the same with a text head) on the tiny sample, as tests/test_text_query.py makes them."""
    from pimc_core.cli import main
    from tests.test_text_query import _pixel_model

    folder = tmp_path_factory.mktemp("text_models")
    base = _pixel_model(folder)
    out = folder / "m_text.pimc"
    s = tiny_sample
    assert main(["text-fit", str(s.manifest), "--model", str(base), "--out", str(out), "--labels", str(s.labels),
                 "--classes", str(s.classes_json), "--epochs", "3", "--pixels", "300", "--quiet"]) == 0
    return base, out


def test_query_box_runs_and_equals_pimc_query(qgis_iface, qgis_new_project, tiny_sample, text_models, tmp_path):
    from pimc_core.cli import main
    from qgis_plugin.panel.query_box import NO_TEXT_HEAD

    base, text_model = text_models
    p, dock = open_panel(qgis_iface, tiny_sample.manifest, tmp_path / "maps")
    try:
        box = dock.maps_box.query_box
        assert not box.query_button.isEnabled() and not box.query_edit.isEnabled()  # no model yet
        dock.set_model_path(str(base))
        assert not box.query_button.isEnabled() and box.query_button.toolTip() == NO_TEXT_HEAD
        assert dock.maps_box.run_query(model=str(base)) is None  # asked directly: said, not raised
        dock.set_model_path(str(text_model))
        assert box.query_button.isEnabled() and box.query_edit.isEnabled()
        assert dock.maps_box.run_query() is None and dock.map_status.text().startswith("type a sentence first")

        sentence = "maize, green-up in zorblax June"
        box.query_edit.setText(sentence)
        task = wait_for(dock.maps_box.run_query())
        assert task.succeeded, task.error
        (layer,) = group_layers(task.group)
        assert layer.name() == f"“{sentence}” — m_text.pimc — region 1"
        assert layer.customProperty("pimc/query") == sentence
        assert layer.renderer().type() == "singlebandpseudocolor"  # the core's similarity.qml
        status = dock.map_status.text()
        assert status.startswith("✓ PIMC region 1") and "words the model does not know (ignored): zorblax" in status
        assert main(["query", str(tiny_sample.manifest), "--model", str(text_model), "--text", sentence,
                     "--out", str(tmp_path / "cli"), "--quiet"]) == 0
        with rasterio.open(layer.source()) as a, rasterio.open(tmp_path / "cli" / "similarity.tif") as b:
            got = a.read(1)
            np.testing.assert_array_equal(got, b.read(1))
            assert a.tags()["pimc_query"] == b.tags()["pimc_query"]
        assert np.isfinite(got).mean() > 0.9

        box.query_edit.setText("zorblax quux")  # no known word: the core's one line, no layer
        task = wait_for(dock.maps_box.run_query())
        assert not task.succeeded and "no word of 'zorblax quux' is in the model's vocabulary" in task.error
        assert dock.map_status.text() == task.error
    finally:
        p.unload()
        flush_deletes()


def test_training_from_the_panel_reads_the_radar_source(panel, sample, tmp_path):  # noqa: F811
    """*Train a model* with the radar field given: the model's series include the radar ones, as
    ``pimc fit --sar`` adds them (vv_db, vh_db, rvi)."""
    from qgis.core import QgsProject

    from pimc_core.models.model_file import read_metadata
    from tests.test_plugin_fit import label_layer

    dock = panel
    dock.source_box.set_sar_path(str(sample.sar_manifest))
    assert dock.validate() is not None
    layer = label_layer(sample)
    QgsProject.instance().addMapLayer(layer)
    dock.fit_layer_combo.setLayer(layer)
    dock.fit_field_combo.setField("crop")
    dock.set_fit_preset("smoke")
    out = tmp_path / "models" / "both.pimc"
    dock.fit_out_widget.setFilePath(str(out))
    task = wait_for(dock.start_fit())
    assert task.succeeded, task.error
    indices = read_metadata(out)["indices"]
    assert {"vv_db", "vh_db", "rvi"} <= set(indices) and "ndvi" in indices, indices
