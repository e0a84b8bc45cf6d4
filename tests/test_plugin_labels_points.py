"""Points as training labels inside real QGIS: export_labels writes points (and multipoints,
from a GeoPackage like the one ``pimc suggest`` writes) with their class, skips and counts the
NULL classes, keeps the selection, refuses all-NULL classes and lines in one line; pimc:fit
trains on such a GeoPackage and says how many points it skipped."""

from __future__ import annotations

import pytest
import rasterio

from tests.test_plugin_fit import point_layer


@pytest.fixture(scope="module")
def sample(tiny_sample):
    return tiny_sample


def to_gpkg(layer, path):
    """Write ``layer`` to a GeoPackage and open it as a QGIS layer (its fields kept, NULLs too)."""
    from qgis.core import QgsCoordinateTransformContext, QgsVectorFileWriter, QgsVectorLayer

    opts = QgsVectorFileWriter.SaveVectorOptions()
    opts.driverName = "GPKG"
    write = getattr(QgsVectorFileWriter, "writeAsVectorFormatV3", None) or QgsVectorFileWriter.writeAsVectorFormatV2
    err = write(layer, str(path), QgsCoordinateTransformContext(), opts)
    assert err[0] == QgsVectorFileWriter.WriterError.NoError, err
    out = QgsVectorLayer(str(path), layer.name(), "ogr")
    assert out.isValid()
    return out


def series_crs():
    from qgis.core import QgsCoordinateReferenceSystem

    return QgsCoordinateReferenceSystem("EPSG:32631")


def test_export_points_skips_null_classes_and_counts_them(qgis_new_project, sample, tmp_path):
    from pimc_core.io.labels import read_labels
    from pimc_core.io.timeseries import open_series
    from qgis_plugin.labels import export_labels

    layer = to_gpkg(point_layer(sample, multi=True, name="suggested"), tmp_path / "suggested.gpkg")
    total = layer.featureCount()
    blank = len(range(0, total, 4))
    got = export_labels(layer, "class", series_crs(), tmp_path / "out" / "labels.gpkg")
    assert (got.count, got.blank, got.kind) == (total - blank, blank, "point")
    assert got.describe("suggested", "class") == f"{total - blank} points of suggested ('class'; {blank} without a class skipped)"
    # the core reads them back onto the grid: each point labels the pixel it was made from
    lm = read_labels(got.path, open_series(sample.manifest).grid, class_field="class")
    with rasterio.open(sample.labels_sparse) as ds:
        sparse = ds.read(1)
    assert not lm.warnings  # the NULLs were left out of the file
    assert (lm.array > 0).sum() == total - blank
    assert (lm.array[lm.array > 0] == sparse[lm.array > 0]).all()


def test_export_selected_points_only(qgis_new_project, sample, tmp_path):
    from qgis_plugin.labels import export_labels

    layer = point_layer(sample, blank_every=0)
    ids = [f.id() for f in layer.getFeatures()]
    layer.selectByIds(ids[:3] + ids[-2:])
    got = export_labels(layer, "class", series_crs(), tmp_path / "labels.gpkg", selected_only=True)
    assert (got.count, got.blank) == (5, 0)
    assert got.describe("points", "class") == "5 points of points ('class')"


def test_export_refuses_all_null_and_lines_in_one_line(qgis_new_project, sample, tmp_path):
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    from pimc_core.errors import ConfigError, InputError
    from qgis_plugin.labels import export_labels

    layer = point_layer(sample, blank_every=1, name="suggested")
    with pytest.raises(InputError) as e:
        export_labels(layer, "class", series_crs(), tmp_path / "labels.gpkg")
    assert str(e.value) == (f"'suggested': the 'class' of every point ({layer.featureCount()}) is empty; "
                            f"fill in the classes first")
    assert not (tmp_path / "labels.gpkg").exists()
    lines = QgsVectorLayer("LineString?crs=EPSG:32631&field=class:integer", "roads", "memory")
    f = QgsFeature(lines.fields())
    f.setGeometry(QgsGeometry.fromPolylineXY([QgsPointXY(0, 0), QgsPointXY(1, 1)]))
    f["class"] = 1
    lines.dataProvider().addFeatures([f])
    with pytest.raises(ConfigError, match="^'roads' has neither polygons nor points: training labels are polygons "
                                          "or points with a class field$"):
        export_labels(lines, "class", series_crs(), tmp_path / "labels.gpkg")


def info_feedback():
    """A Processing feedback that keeps its info lines (``.lines``)."""
    from qgis.core import QgsProcessingFeedback

    class InfoFeedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []

        def pushInfo(self, info):  # noqa: N802
            self.lines.append(info)
            super().pushInfo(info)

    return InfoFeedback()


def test_processing_fit_on_points_with_null_classes(pimc_provider, sample, tmp_path):
    import processing

    from pimc_core.models.model_file import read_metadata

    layer = to_gpkg(point_layer(sample, name="suggested"), tmp_path / "suggested.gpkg")
    total = layer.featureCount()
    blank = len(range(0, total, 4))
    feedback = info_feedback()
    out = tmp_path / "points.pimc"
    res = processing.run("pimc:fit", {"SOURCE": str(sample.manifest), "LABELS": str(tmp_path / "suggested.gpkg"),
                                      "CLASS_FIELD": "class", "PRESET": "try-out", "OUTPUT": str(out)}, feedback=feedback)
    assert res["OUTPUT"] == str(out) and out.is_file()
    assert [c["id"] for c in read_metadata(out)["classes"]] == list(range(1, 10))
    assert f"labels: {total - blank} points of suggested ('class'; {blank} without a class skipped)" in feedback.lines
    # one field per class in the sample: no held-out estimate, and the output says so by NULL, not by a number
    assert "spatial CV not possible" in read_metadata(out)["training"]["spatial_cv"]["reason"]
    assert res["HELD_OUT_ACCURACY"] is None and 0.0 <= res["ACCURACY"] <= 1.0


def test_processing_fit_outputs_the_held_out_accuracy(pimc_provider, tmp_path):
    """Two separate fields per class: pimc:fit's HELD_OUT_ACCURACY is the spatial cross-validated
    accuracy stored with the model, next to the training accuracy."""
    import processing

    from pimc_core.models.model_file import read_metadata
    from tests.test_spatial_cv import two_fields_per_class

    stack, labels = two_fields_per_class(tmp_path)
    cfg = tmp_path / "fit.yaml"
    cfg.write_text("data: {patch_size: 3}\ncv_folds: 3\npretrain: {steps: 5}\nfinetune: {max_steps: 10}\n"
                   "forecast: {enabled: false}\n")
    out = tmp_path / "cv.pimc"
    res = processing.run("pimc:fit", {"SOURCE": str(stack.manifest), "LABEL_RASTER": str(labels),
                                      "CONFIG": str(cfg), "OUTPUT": str(out)})
    cv = read_metadata(out)["training"]["spatial_cv"]
    assert cv["folds"] == 3 and cv["regions"] == 8
    assert res["HELD_OUT_ACCURACY"] == pytest.approx(cv["accuracy"]) and 0.0 <= cv["accuracy"] <= 1.0


def test_processing_fit_on_points_all_null_is_one_line(pimc_provider, sample, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    layer = to_gpkg(point_layer(sample, blank_every=1, name="suggested"), tmp_path / "suggested.gpkg")
    count = layer.featureCount()
    del layer  # the file is opened again by Processing; no layer of ours outlives the test
    with pytest.raises(QgsProcessingException) as e:
        processing.run("pimc:fit", {"SOURCE": str(sample.manifest), "LABELS": str(tmp_path / "suggested.gpkg"),
                                    "CLASS_FIELD": "class", "PRESET": "try-out", "OUTPUT": str(tmp_path / "m.pimc")})
    message = str(e.value)
    del e  # the exception's traceback holds Processing's objects; freed before QGIS exits
    assert message == f"'suggested': the 'class' of every point ({count}) is empty; fill in the classes first"
    assert not (tmp_path / "m.pimc").exists()
