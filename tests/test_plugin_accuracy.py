"""pimc:sampledesign and pimc:assess inside real QGIS: draw a sample of a class map, label the points
in the editable layer, assess; the same results as the core functions the command line calls; and
``qgis_process`` lists both algorithms of the installed plugin."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_assessment import write_map
from tests.test_plugin_processing import run


@pytest.fixture()
def class_map(tmp_path):
    rng = np.random.default_rng(2)
    classes = rng.choice(np.array([1, 2, 3], np.uint8), size=(120, 150), p=[0.6, 0.3, 0.1])
    classes[:5] = 255  # nodata
    return write_map(tmp_path / "map.tif", classes, nodata=255, res=10.0), classes


def label(layer, classes, transform, every: int = 7) -> int:
    """Fill in 'reference' in the layer's edit buffer (the map class, every ``every``-th point another
    class), commit; returns the number of points."""
    assert layer.startEditing()
    idx = layer.fields().indexOf("reference")
    n = 0
    for k, f in enumerate(layer.getFeatures()):
        p = f.geometry().asPoint()
        col, row = (int(v) for v in ~transform @ (p.x(), p.y()))
        true = int(classes[row, col]) if k % every else 1 + int(classes[row, col]) % 3
        assert layer.changeAttributeValue(f.id(), idx, true)
        n += 1
    assert layer.commitChanges(), layer.commitErrors()
    return n


def test_sample_design_label_and_assess(pimc_provider, class_map, tmp_path):
    import processing
    import rasterio
    from qgis.core import (
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
        QgsVectorDataProvider,
        QgsVectorLayer,
    )

    from pimc_core.maps.assessment import assess
    from pimc_core.maps.class_map import open_class_map
    from pimc_core.maps.sample_design import allocate
    from qgis_plugin.provider.accuracy_alg import SAMPLE_POINTS_LAYER

    tif, classes = class_map
    pts = tmp_path / "sample" / "points.gpkg"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    res = processing.run("pimc:sampledesign", {"MAP": str(tif), "N": 90, "ALLOCATION": "min:20", "SEED": 5,
                                               "OUTPUT": QgsProcessingOutputLayerDefinition(str(pts), QgsProject.instance())},
                         context=context)
    assert res["N_POINTS"] == 90 and res["OUTPUT"] == str(pts)
    # opened by QGIS on completion with the post-processor below
    assert context.layerToLoadOnCompletionDetails(str(pts)).postProcessor() is SAMPLE_POINTS_LAYER
    layer = QgsVectorLayer(str(pts), "points", "ogr")
    assert layer.isValid() and layer.featureCount() == 90
    assert layer.dataProvider().capabilities() & QgsVectorDataProvider.ChangeAttributeValues  # editable
    assert [f.name() for f in layer.fields()][-2:] == ["stratum", "reference"]
    assert not any(f["reference"] for f in layer.getFeatures())  # empty (NULL), to be filled in
    strata = [f["stratum"] for f in layer.getFeatures()]
    sizes = allocate(90, open_class_map(tif).pixels, "min:20")
    assert np.bincount(strata).tolist()[1:] == sizes.tolist() and min(sizes) == 20  # the rest proportional
    # how it opens in QGIS: named for what to do, the stratum read-only in the attribute form
    SAMPLE_POINTS_LAYER.postProcessLayer(layer, QgsProcessingContext(), QgsProcessingFeedback())
    assert "reference" in layer.name()
    assert layer.editFormConfig().readOnly(layer.fields().indexOf("stratum"))
    assert not layer.editFormConfig().readOnly(layer.fields().indexOf("reference"))

    with rasterio.open(tif) as src:
        assert label(layer, classes, src.transform) == 90

    html = tmp_path / "out" / "report.html"
    res = run("pimc:assess", {"MAP": str(tif), "REFERENCE": str(pts), "CLASS_FIELD": "reference", "OUTPUT": str(html)})
    assert res["OUTPUT"] == str(html) and html.is_file()
    page = html.read_text()
    assert "<table>" in page and "Overall accuracy" in page and "data:image/png;base64," in page
    assert sorted(p.name for p in html.parent.iterdir()) == ["report.html", "report.json", "report.md", "report.png"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert res["OUTPUT_JSON"] == str(tmp_path / "out" / "report.json")
    # the same as the core function the command line calls
    (tmp_path / "core").mkdir()
    core, _ = assess(tif, pts, "reference", tmp_path / "core" / "r.json")
    assert report["overall_accuracy"] == core["overall_accuracy"] == pytest.approx(res["OVERALL_ACCURACY"])
    assert report["classes"] == core["classes"] and report["points_used"] == 90
    assert 0.75 < report["overall_accuracy"] < 0.95  # every 7th point mislabelled


def test_assess_with_strata_and_errors(pimc_provider, class_map, tmp_path):
    from qgis.core import QgsProcessingException

    from pimc_core.io.vector import write_points
    from tests.test_assessment import pixel_centres

    tif, classes = class_map
    strata = np.where(np.arange(120)[:, None] < 60, 1, 2).astype(np.uint8) * np.ones((1, 150), np.uint8)
    strata_tif = write_map(tmp_path / "strata.tif", strata, res=10.0)
    rng = np.random.default_rng(0)
    index = np.concatenate([rng.choice(np.arange(5 * 150, 60 * 150), 40, replace=False),
                            rng.choice(np.arange(60 * 150, 120 * 150), 40, replace=False)])
    flat = classes.ravel()
    pts = write_points(tmp_path / "p.gpkg", pixel_centres(tif, index), __import__("rasterio").crs.CRS.from_epsg(32631),
                       [("reference", "int", flat[index].astype(int).tolist())])
    res = run("pimc:assess", {"MAP": str(tif), "REFERENCE": str(pts), "STRATA": str(strata_tif),
                              "OUTPUT": str(tmp_path / "r.html")})
    report = json.loads((tmp_path / "r.json").read_text())
    assert "Stehman 2014" in report["estimator"] and report["strata"]["n_samples"] == [40, 40]
    assert res["OVERALL_ACCURACY"] == pytest.approx(1.0)
    coarse = write_map(tmp_path / "coarse.tif", np.ones((60, 75), np.uint8), res=20.0)
    cases = [({"STRATA": str(coarse)}, "another grid"),
             ({"OUTPUT": str(tmp_path / "r2.txt")}, "give a .html file name")]
    for params, expected in cases:
        with pytest.raises(QgsProcessingException) as e:
            run("pimc:assess", {"MAP": str(tif), "REFERENCE": str(pts), "OUTPUT": str(tmp_path / "r2.html"), **params})
        assert expected in str(e.value) and "\n" not in str(e.value).strip() and "Traceback" not in str(e.value)
    assert not (tmp_path / "r2.html").exists()
    with pytest.raises(QgsProcessingException, match="min:500.*more than"):
        run("pimc:sampledesign", {"MAP": str(tif), "N": 100, "ALLOCATION": "min:500", "OUTPUT": str(tmp_path / "s.gpkg")})


def test_assess_report_is_an_html_output(pimc_provider):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("pimc:assess")
    assert alg is not None and alg.outputDefinition("OUTPUT").type() == "outputHtml"
    design = QgsApplication.processingRegistry().algorithmById("pimc:sampledesign")
    assert design.group() == alg.group() == "Accuracy assessment"


def test_qgis_process_lists_the_accuracy_algorithms(tmp_path, monkeypatch):
    from tests.test_plugin_packaging import _scripts, qgis_process

    plugin_zip, install_plugin = _scripts()
    z = plugin_zip.build(tmp_path / "dist" / "pimc.zip")
    cfg = tmp_path / "qgis-config"
    monkeypatch.setenv("QGIS_PROFILE_DIR", str(cfg))
    assert install_plugin.main(["--zip", str(z)]) == 0
    assert qgis_process(cfg, "plugins", "enable", "pimc").returncode == 0
    r = qgis_process(cfg, "list")
    assert r.returncode == 0, r.stderr
    ids = {ln.strip().split("\t")[0] for ln in r.stdout.splitlines()}
    assert {"pimc:sampledesign", "pimc:assess"} <= ids, r.stdout


def test_assess_screenshot(tmp_path):
    """scripts/screenshots.py --assess: the fourth grab shows the class map with the labelled sample points
    and the pimc:assess dialog with the report in its log (docs/img/plugin_assess.png is made so)."""
    import subprocess
    import sys

    from matplotlib.image import imread

    from tests.test_plugin_screenshot import ROOT, colour_count

    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path), "--assess",
                        "--timeout", "110"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    img = (imread(tmp_path / "plugin_assess.png")[:, :, :3] * 255).round().astype(np.uint8)
    assert img.shape[:2] == (1000, 1600)
    canvas = img[200:700, 340:840]  # left of the dialog
    for colour in ("#e3b505", "#4363d8", "#f58231"):  # the class map's colours
        assert colour_count(canvas, colour) > 1000, colour
    dialog = img[150:700, 870:1560]
    assert (dialog.mean(axis=-1) > 200).mean() > 0.6  # the dialog's light log, with text on it
    assert len(np.unique(dialog.reshape(-1, 3), axis=0)) > 50
