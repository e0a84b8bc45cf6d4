"""Inside real QGIS: the same files as project layers and through their manifest are read the same
way (sensor, scaling, quality mask said in the status line) and give the same class map from the
panel; files that do not tell their sensor make the panel ask before anything runs; a model that
does not fit the series is refused when chosen, before a run, in the panel and in Processing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.conftest import write_tif
from tests.qgis_helpers import flush_deletes, wait_for
from tests.test_model_source_check import LANDSAT_FIT

COMPAT = Path(__file__).parent / "data" / "compat_89cc375"
READING = "read as Sentinel-2 L2A, DN × 0.0001, SCL mask"


@pytest.fixture
def plugin(qgis_iface, qgis_new_project, qgis_canvas, tmp_path):
    """The plugin's panel with the compat model (a real PIMC model) and an output folder; the
    canvas showing the compat stack in its CRS."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle

    import qgis_plugin
    from pimc_core.io.timeseries import open_series

    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32631"))
    qgis_canvas.setExtent(QgsRectangle(*open_series(COMPAT / "stack" / "manifest.yaml").grid.bounds))
    p = qgis_plugin.classFactory(qgis_iface)
    p.initGui()
    p.show_panel(True)
    p.dock.out_widget.setFilePath(str(tmp_path / "maps"))
    p.dock.set_sensor(None)  # "auto", whatever an earlier session chose
    yield p
    p.unload()
    flush_deletes()


@pytest.fixture(scope="module")
def landsat_model(tmp_path_factory):
    """The label-free Landsat sample model (tiny) and a 2023 synthetic stack."""
    from pimc_core.datasets.landsat_sample import landsat_sample_dir
    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.fit import fit

    root = tmp_path_factory.mktemp("landsat_model")
    fit(str(landsat_sample_dir()), None, root / "landsat.pimc", config=LANDSAT_FIT, progress=False)
    return root / "landsat.pimc", make_synthetic(root / "s2", size=16, n_dates=24, seed=0).manifest


def classes_of(task) -> np.ndarray:
    assert task.succeeded, task.error
    with rasterio.open(task.outcome.files["classes"]) as ds:
        return ds.read(1)


def test_project_layers_and_the_manifest_give_the_same_map(plugin, tmp_path, capsys):
    from qgis.core import QgsProject, QgsRasterLayer

    from pimc_core.cli import main

    dock = plugin.dock
    dock.set_model_path(str(COMPAT / "model.pimc"))
    dock.set_map_products(["classes"])
    files = sorted((COMPAT / "stack").glob("S2_*.tif"))
    QgsProject.instance().addMapLayers([QgsRasterLayer(str(f), f.stem) for f in files])
    dock.mode_layers.setChecked(True)
    dock.layers_table.reload()
    ts = dock.validate()
    assert ts is not None and len(ts) == len(files), dock.status_label.text()
    assert dock.status_label.text().endswith(READING), dock.status_label.text()
    assert "✓ model model.pimc fits manifest.yaml" in dock.model_label.text(), dock.model_label.text()
    from_layers = classes_of(wait_for(dock.map_canvas_extent()))

    dock.set_source_path(str(COMPAT / "stack" / "manifest.yaml"))
    assert dock.validate() is not None and dock.status_label.text().endswith(READING)
    from_manifest = classes_of(wait_for(dock.map_canvas_extent()))

    folder = tmp_path / "folder"  # the same files as a bare folder (the stack's folder holds label rasters)
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    assert main(["classify", str(folder), "--model", str(COMPAT / "model.pimc"), "--out",
                 str(tmp_path / "cli"), "--quiet"]) == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "cli" / "classes.tif") as ds:
        from_folder = ds.read(1)
    assert len(np.unique(from_manifest)) >= 5  # a map of several classes, not one
    assert (from_layers == from_manifest).mean() >= 0.99
    assert (from_folder == from_manifest).mean() >= 0.99


def test_files_that_do_not_tell_their_sensor_make_the_panel_ask(plugin, tmp_path):
    from qgis.core import QgsProject, QgsRasterLayer

    rng = np.random.default_rng(0)
    layers = []
    for i in range(3):
        path = write_tif(tmp_path / f"scene_2023-0{i + 1}-10.tif", rng.integers(500, 4000, (4, 5, 5)).astype(np.uint16),
                         descriptions=["blue", "green", "red", "nir"])
        layers.append(QgsRasterLayer(str(path), path.stem))
    QgsProject.instance().addMapLayers(layers)
    dock = plugin.dock
    dock.set_model_path("builtin:nearest-centroid")
    dock.mode_layers.setChecked(True)
    dock.layers_table.reload()
    assert dock.validate() is None
    text = dock.status_label.text()
    assert text.startswith("The files do not tell their sensor: choose the Sensor preset, or give the DN scale"), text
    assert dock.source_box.ask_box.isVisible() or not dock.isVisible()
    assert not dock.source_box.ask_box.isHidden()
    assert dock.run_region(None) is None and dock.map_task is None  # nothing runs on a guess

    dock.source_box.scale_edit.setText("0.0001")
    ts = dock.validate()
    assert ts is not None, dock.status_label.text()
    assert dock.status_label.text().endswith("read as no sensor preset, DN × 0.0001, no quality mask")
    dock.source_box.scale_edit.setText("")
    dock.set_sensor("sentinel2-l2a")
    assert dock.validate() is not None
    assert dock.status_label.text().endswith("read as Sentinel-2 L2A, DN × 0.0001, no quality mask")
    dock.set_sensor(None)


def test_a_model_that_does_not_fit_is_refused_when_chosen(plugin, landsat_model):
    model, s2 = landsat_model
    dock = plugin.dock
    dock.set_source_path(str(s2))
    assert dock.validate() is not None
    dock.set_model_path(str(model))
    label = dock.model_label.text()
    assert "model landsat.pimc was trained on the season 2008-04-09..2013-05-25 (118 dates)" in label, label
    assert "s2/manifest.yaml has 24 dates 2023-" in label and "Sentinel-2 L2A" in label, label
    assert "c62828" in dock.model_label.styleSheet()
    dock.set_map_products(["embeddings"])
    assert dock.map_canvas_extent() is None and dock.map_task is None  # refused before any run
    assert "landsat.pimc was trained on the season 2008-04-09" in dock.map_status.text()

    from pimc_core.datasets.landsat_sample import landsat_sample_dir

    dock.set_source_path(str(landsat_sample_dir()))  # the model's own data: it fits
    assert dock.validate() is not None, dock.status_label.text()
    assert "✓ model landsat.pimc fits" in dock.model_label.text(), dock.model_label.text()
    assert dock.source_box.model_problem is None
    assert dock.model_label.text().startswith("a label-free model (embeddings, clusters, forecast; no classes)")
    assert "0 classes" not in dock.model_label.text()


def test_processing_checks_the_model_before_running(pimc_provider, landsat_model, tmp_path):
    import processing
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    from pimc_core.datasets.landsat_sample import landsat_sample_dir

    model, s2 = landsat_model
    alg = QgsApplication.processingRegistry().createAlgorithmById("pimc:forecast")
    params = {"SOURCE": str(s2), "MODEL": str(model), "OUTPUT": str(tmp_path / "out" / "f.tif")}
    ok, msg = alg.checkParameterValues(params, QgsProcessingContext())
    assert not ok and "model landsat.pimc was trained on the season 2008-04-09..2013-05-25" in msg, msg
    with pytest.raises(QgsProcessingException, match="landsat.pimc was trained on the season"):
        processing.run("pimc:forecast", params)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    ok, msg = alg.checkParameterValues({**params, "SOURCE": str(landsat_sample_dir())}, QgsProcessingContext())
    assert ok, msg
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_run_folders_follow_the_umask(tmp_path):
    import os
    import stat

    from qgis_plugin.tasks import new_run_folder

    old = os.umask(0o022)
    try:
        folder = new_run_folder(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
