"""The map and fit algorithms of the PIMC Processing provider inside real QGIS — pimc:classify,
pimc:forecast, pimc:embed, pimc:cluster, pimc:similarity, pimc:fit — via processing.run on the
synthetic sample (compared with the core), chained in a Model Builder model (fit → classify),
cancelled (no output), with one-line errors; then headless through qgis_process with the
installed plugin zip (classify, fit)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

MODEL = "builtin:nearest-centroid"


@pytest.fixture(scope="module")
def sample(tiny_sample):
    return tiny_sample


@pytest.fixture(scope="module")
def ts(sample):
    from pimc_core.io.timeseries import open_series

    return open_series(sample.manifest)


def run(alg, params: dict, feedback=None):
    import processing

    return processing.run(alg, params, feedback=feedback)


def core_maps(ts, out, products, region=None, fn="run_inference", **kw):
    from pimc_core.maps import engine as inference
    from pimc_core.models.centroid import NearestCentroidModel

    model = NearestCentroidModel.for_synthetic()
    getattr(inference, fn)(ts, model, region, out, **({"products": products} if fn == "run_inference" else {}), **kw)
    return out


def read(path, band=None):
    with rasterio.open(path) as ds:
        return ds.read(band) if band else ds.read()


def test_provider_lists_the_new_algorithms(pimc_provider):
    ids = sorted(a.id() for a in pimc_provider.algorithms())
    assert ids == ["pimc:assess", "pimc:classify", "pimc:cluster", "pimc:embed", "pimc:fit", "pimc:forecast",
                   "pimc:indices", "pimc:phenology", "pimc:recurrenceplot", "pimc:sampledesign", "pimc:similarity",
                   "pimc:suggest"]
    for a in pimc_provider.algorithms():
        assert a.shortHelpString() and a.displayName()
        if a.id() not in ("pimc:fit", "pimc:phenology") and a.groupId() == "maps":  # phenology: no model
            names = [p.name() for p in a.parameterDefinitions()]
            assert {"SOURCE", "SOURCE_FOLDER", "SENSOR", "MODEL", "EXTENT", "POLYGONS", "OUTPUT"} <= set(names), a.id()


def test_classify_equals_core_and_opens_styled(pimc_provider, sample, ts, tmp_path):
    from qgis.core import QgsRasterLayer

    out = tmp_path / "out"
    res = run("pimc:classify", {
        "SOURCE": str(sample.manifest), "MODEL": MODEL, "OUTPUT": str(out / "classes_a.tif"),
        "OUTPUT_CONFIDENCE": str(out / "conf_a.tif"), "OUTPUT_PROBABILITIES": str(out / "prob_a.tif"),
    })
    assert res == {"OUTPUT": str(out / "classes_a.tif"), "OUTPUT_CONFIDENCE": str(out / "conf_a.tif"),
                   "OUTPUT_PROBABILITIES": str(out / "prob_a.tif")}
    assert sorted(p.name for p in out.iterdir()) == [
        "classes_a.qml", "classes_a.tif", "conf_a.qml", "conf_a.tif", "prob_a.tif"]  # no temporaries left
    exp = core_maps(ts, tmp_path / "core", ("classes", "confidence", "probabilities"))
    np.testing.assert_array_equal(read(out / "classes_a.tif"), read(exp / "classes.tif"))
    np.testing.assert_array_equal(read(out / "conf_a.tif"), read(exp / "confidence.tif"))
    assert read(out / "prob_a.tif").shape == (9, 24, 24)
    with rasterio.open(out / "classes_a.tif") as ds:
        assert ds.driver == "GTiff" and ds.crs.to_epsg() == 32631 and ds.profile["tiled"]
        assert ds.tags(1)["class_1"] == "winter_wheat"
    layer = QgsRasterLayer(str(out / "classes_a.tif"), "classes")  # what the user gets when it is opened
    assert layer.isValid() and layer.renderer().type() == "paletted"
    assert layer.renderer().classes()[0].label == "winter_wheat"



def test_classify_with_bayesian_smoothing_equals_core_and_refuses_an_even_window(pimc_provider, sample, ts, tmp_path):
    from qgis.core import QgsProcessingException

    out = tmp_path / "out"
    res = run("pimc:classify", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "OUTPUT": str(out / "c.tif"),
                                "OUTPUT_PROBABILITIES": str(out / "p.tif"), "SMOOTH": True, "SMOOTH_WINDOW": 5,
                                "SMOOTHNESS": 4.0, "BLOCK": 16})
    assert res["OUTPUT"] == str(out / "c.tif")
    exp = core_maps(ts, tmp_path / "core", ("classes", "probabilities"), smooth={"window": 5, "smoothness": 4})
    raw = core_maps(ts, tmp_path / "raw", ("classes",))
    np.testing.assert_array_equal(read(out / "c.tif"), read(exp / "classes.tif"))
    np.testing.assert_array_equal(read(out / "p.tif"), read(exp / "probabilities.tif"))
    assert (read(out / "c.tif") != read(raw / "classes.tif")).any()  # the smoothing did something
    with rasterio.open(out / "c.tif") as ds:
        assert '"window":5' in ds.tags()["pimc_smoothing"]
    with pytest.raises(QgsProcessingException) as e:
        run("pimc:classify", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "OUTPUT": str(tmp_path / "x" / "c.tif"),
                              "SMOOTH": True, "SMOOTH_WINDOW": 4})
    assert "smoothing window must be an odd integer >= 3; got 4" in str(e.value)
    assert "Traceback" not in str(e.value) and not (tmp_path / "x" / "c.tif").exists()


def test_suggest_equals_core_and_refuses_other_formats(pimc_provider, sample, ts, tmp_path):
    from osgeo import ogr
    from qgis.core import QgsProcessingException

    from pimc_core.maps.suggest import suggest_samples
    from pimc_core.models.centroid import NearestCentroidModel

    out = tmp_path / "pts.gpkg"
    res = run("pimc:suggest", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "N": 12, "SEED": 2, "OUTPUT": str(out)})
    assert res["OUTPUT"] == str(out) and 0 < res["MEDIAN_UNCERTAINTY"] < 1
    core = suggest_samples(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "core.gpkg", 12, seed=2)
    ds = ogr.Open(str(out))
    feats = list(ds.GetLayer(0))
    assert sorted((f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY()) for f in feats) == sorted(
        zip(core.x.tolist(), core.y.tolist()))
    assert all(f.IsFieldNull("class") for f in feats)
    ds = None
    # the other strategy, chosen in the advanced parameters
    run("pimc:suggest", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "N": 12, "SEED": 2, "STRATEGY": "uncertainty",
                         "OUTPUT": str(tmp_path / "pts_u.gpkg")})
    core_u = suggest_samples(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "core_u.gpkg", 12, seed=2,
                             strategy="uncertainty")
    ds = ogr.Open(str(tmp_path / "pts_u.gpkg"))
    assert sorted((f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY()) for f in ds.GetLayer(0)) == sorted(
        zip(core_u.x.tolist(), core_u.y.tolist())) != sorted(zip(core.x.tolist(), core.y.tolist()))
    ds = None
    with pytest.raises(QgsProcessingException, match="give a .gpkg file name"):
        run("pimc:suggest", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "N": 3, "OUTPUT": str(tmp_path / "p.shp")})
    with pytest.raises(QgsProcessingException, match="cannot give suggestions"):
        from unittest import mock

        with mock.patch.object(NearestCentroidModel, "outputs", ("embeddings", "forecast")):
            run("pimc:suggest", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "N": 3,
                                 "OUTPUT": str(tmp_path / "q.gpkg")})
    assert not (tmp_path / "p.shp").exists() and not (tmp_path / "q.gpkg").exists()

def test_region_extent_in_another_crs_and_polygons(pimc_provider, sample, ts, tmp_path):
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsFeature,
        QgsGeometry,
        QgsPointXY,
        QgsProject,
        QgsRectangle,
        QgsVectorLayer,
    )

    # an extent in EPSG:4326: the box enclosing pixels rows 4..11, cols 6..17
    (xa, ya), (xb, yb) = ts.grid.xy(4, 6), ts.grid.xy(11, 17)
    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32631"),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    r = to_wgs84.transformBoundingBox(QgsRectangle(xa, yb, xb, ya))
    ext = f"{r.xMinimum()!r},{r.xMaximum()!r},{r.yMinimum()!r},{r.yMaximum()!r} [EPSG:4326]"
    out = tmp_path / "fc.tif"
    run("pimc:forecast", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "EXTENT": ext, "OUTPUT": str(out)})
    with rasterio.open(out) as ds:
        assert ds.count == 3 and ds.descriptions[0].startswith("NDVI ")
        row, col = ts.grid.rowcol(ds.transform.c + 5, ds.transform.f - 5)
        assert (row, col) in ((3, 5), (4, 6)) and 8 <= ds.height <= 9 and 12 <= ds.width <= 13
    assert (tmp_path / "fc.qml").is_file()  # a ramp style for the forecast too

    # polygons (a triangle in EPSG:4326) clipped to an extent given in the series CRS (rows, cols 0..15)
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326", "tri", "memory")
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromPolygonXY([[to_wgs84.transform(QgsPointXY(*ts.grid.xy(r_, c_)))
                                              for r_, c_ in ((0, 0), (0, 23), (23, 0), (0, 0))]]))
    layer.dataProvider().addFeatures([f])
    x1, y1 = ts.grid.xy(15, 15)
    out = tmp_path / "emb.tif"
    run("pimc:embed", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "POLYGONS": layer,
                       "EXTENT": f"{ts.grid.bounds[0]},{x1 + 5},{y1 - 5},{ts.grid.bounds[3]} [EPSG:32631]",
                       "OUTPUT": str(out)})
    e = read(out)
    assert e.shape == (12, 16, 16)  # 12 embedding dims over the clipped window
    assert np.isfinite(e[:, 2, 2]).all() and np.isnan(e[:, 15, 15]).all()  # inside / outside the triangle


def test_cluster_and_similarity_equal_core(pimc_provider, sample, ts, tmp_path):
    out = tmp_path / "k.tif"
    res = run("pimc:cluster", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "K": 4, "SEED": 1, "OUTPUT": str(out)})
    assert res["INERTIA"] > 0
    exp = core_maps(ts, tmp_path / "core_k", None, fn="cluster_map", k=4, seed=1)
    np.testing.assert_array_equal(read(out), read(exp / "clusters.tif"))
    assert (tmp_path / "k.qml").is_file()

    x, y = ts.grid.xy(5, 7)
    out = tmp_path / "sim.tif"
    res = run("pimc:similarity", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "QUERY": f"{x},{y} [EPSG:32631]",
                                  "OUTPUT": str(out)})
    assert "row 5, col 7" in res["QUERY_PIXEL"]
    s = read(out, 1)
    assert s[5, 7] == pytest.approx(1.0, abs=1e-5) and np.nanmin(s) >= -1.0
    exp = core_maps(ts, tmp_path / "core_s", None, fn="similarity_map", query_xy=(x, y))
    np.testing.assert_array_equal(s, read(exp / "similarity.tif", 1))


def test_cancel_leaves_no_output(pimc_provider, sample, tmp_path):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda p: feedback.cancel())  # cancel at the first report
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match="cancelled"):
        run("pimc:classify", {"SOURCE": str(sample.manifest), "MODEL": MODEL, "BLOCK": 16,
                              "OUTPUT": str(out / "c.tif"), "OUTPUT_CONFIDENCE": str(out / "q.tif")}, feedback)
    assert list(out.iterdir()) == []  # neither outputs nor the hidden work folder


def test_errors_are_one_clear_line(pimc_provider, sample, tmp_path):
    from qgis.core import QgsProcessingException

    base = {"SOURCE": str(sample.manifest), "OUTPUT": str(tmp_path / "x.tif")}
    cases = [
        ("pimc:classify", {**base, "MODEL": ""}, "MODEL"),  # mandatory: QGIS's own message
        ("pimc:classify", {**base, "MODEL": str(tmp_path / "nope.pimc")}, "nope.pimc: model file not found"),
        ("pimc:classify", {**base, "MODEL": "builtin:magic"}, "unknown built-in model 'builtin:magic'"),
        ("pimc:cluster", {**base, "MODEL": MODEL, "EXTENT": "0,10,0,10 [EPSG:32631]"}, "does not overlap the raster"),
        ("pimc:fit", {"SOURCE": str(sample.manifest), "OUTPUT": str(tmp_path / "m.pimc")},
         "give labelled polygons or points (with their class field) or a label raster"),
    ]
    for alg, params, expected in cases:
        with pytest.raises(QgsProcessingException) as e:
            run(alg, params)
        assert expected in str(e.value), str(e.value)
        assert "Traceback" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_model_builder_fit_then_classify(pimc_provider, sample, ts, tmp_path):
    """pimc:fit's model file feeds pimc:classify's MODEL inside a Processing model (the real
    .pimc path end to end), as a user would wire it in the Model Builder."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFile,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.core import QgsProcessingModelChildParameterSource as Src

    def child(alg_id: str, child_id: str, sources: dict) -> QgsProcessingModelChildAlgorithm:
        c = QgsProcessingModelChildAlgorithm(alg_id)
        c.setChildId(child_id)
        for name, src in sources.items():
            c.addParameterSources(name, [src])
        for p in c.algorithm().parameterDefinitions():  # as the Model Builder dialog: the rest at defaults
            if p.name() not in sources and not p.isDestination():
                c.addParameterSources(p.name(), [Src.fromStaticValue(p.defaultValue())])
        return c

    m = QgsProcessingModelAlgorithm("fit and classify", "PIMC tests")
    m.addModelParameter(QgsProcessingParameterFile("series", "Series"), QgsProcessingModelParameter("series"))
    m.addModelParameter(QgsProcessingParameterRasterLayer("labels", "Labels"), QgsProcessingModelParameter("labels"))
    m.addChildAlgorithm(child("pimc:fit", "fit", {
        "SOURCE": Src.fromModelParameter("series"), "LABEL_RASTER": Src.fromModelParameter("labels"),
        "PRESET": Src.fromStaticValue("try-out")}))
    cls = child("pimc:classify", "classify", {
        "SOURCE": Src.fromModelParameter("series"), "MODEL": Src.fromChildOutput("fit", "OUTPUT")})
    out = QgsProcessingModelOutput("classes", "Classes")
    out.setChildId("classify")
    out.setChildOutputName("OUTPUT")
    cls.setModelOutputs({"classes": out})
    m.addChildAlgorithm(cls)
    assert m.validate()[0], m.validate()[1]

    res = run(m, {"series": str(sample.manifest), "labels": str(sample.labels_sparse),
                  "classify:classes": str(tmp_path / "classes.tif")})
    assert res["classify:classes"] == str(tmp_path / "classes.tif")
    c = read(tmp_path / "classes.tif", 1)
    assert c.shape == (24, 24) and c.min() >= 1 and c.max() <= 9
    with rasterio.open(tmp_path / "classes.tif") as ds:
        assert ds.tags()["pimc_indices"] == "ndvi,evi,savi"  # the PIMC model's channels, not the baseline's


# ----------------------------------------------------------------------------- headless
def test_qgis_process_classify_and_fit(sample, tmp_path, monkeypatch):
    from tests.test_plugin_packaging import _scripts, qgis_process

    plugin_zip, install_plugin = _scripts()
    z = plugin_zip.build(tmp_path / "dist" / "pimc.zip")
    cfg = tmp_path / "qgis-config"
    monkeypatch.setenv("QGIS_PROFILE_DIR", str(cfg))
    assert install_plugin.main(["--zip", str(z)]) == 0
    r = qgis_process(cfg, "plugins", "enable", "pimc")
    assert r.returncode == 0, r.stdout + r.stderr

    out = tmp_path / "out"
    out.mkdir()
    r = qgis_process(cfg, "run", "pimc:classify", "--", f"SOURCE={sample.manifest}", f"MODEL={MODEL}",
                     "EXTENT=600000,600120,4899880,4900000 [EPSG:32631]",
                     f"OUTPUT={out / 'classes.tif'}", f"OUTPUT_CONFIDENCE={out / 'confidence.tif'}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "12 dates 2023-" in r.stdout and "region: extent" in r.stdout
    with rasterio.open(out / "classes.tif") as ds:
        assert ds.driver == "GTiff" and (ds.width, ds.height) == (12, 12) and ds.crs.to_epsg() == 32631
        assert ds.read(1).min() >= 1
    assert (out / "classes.qml").is_file() and (out / "confidence.tif").is_file()

    model = out / "fields.pimc"
    r = qgis_process(cfg, "run", "pimc:fit", "--", f"SOURCE={sample.manifest}", f"LABEL_RASTER={sample.labels_sparse}",
                     "PRESET=try-out", f"OUTPUT={model}", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert model.is_file() and "training accuracy" in r.stdout

    from pimc_core.models.pixel_model import load_pixel_model

    assert load_pixel_model(model).n_classes == 9
