"""The PIMC Processing provider inside real QGIS: processing.run("pimc:indices" / "pimc:recurrenceplot")
on the multiband_stack fixture and on a tiny synthetic sample, compared with numpy and the core."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from pimc_core.datasets.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic"), size=32, n_dates=5, seed=7)


def run(alg: str, params: dict, feedback=None):
    import processing

    return processing.run(alg, params, feedback=feedback)


def ndvi_of(dn: np.ndarray) -> np.ndarray:
    """NDVI of (T, 6, H, W) DNs of the fixture (red band 3, nir band 4), reflectance = DN / 1e4."""
    red, nir = dn[:, 2].astype(np.float64) * 1e-4, dn[:, 3].astype(np.float64) * 1e-4
    return (nir - red) / (nir + red)


def test_indices_on_multiband_stack(pimc_provider, multiband_stack, tmp_path):
    from qgis.core import QgsPointXY, QgsRasterLayer

    folder, dates, dn = multiband_stack
    out = tmp_path / "idx.tif"
    res = run("pimc:indices", {"SOURCE": str(folder / "manifest.yaml"), "INDICES": "ndvi,evi", "OUTPUT": str(out)})
    assert res["OUTPUT"] == str(out)

    layer = QgsRasterLayer(str(out), "idx")  # what a user gets in QGIS
    assert layer.isValid() and layer.bandCount() == 2 * 3 and (layer.width(), layer.height()) == (5, 4)
    with rasterio.open(out) as ds:
        data = ds.read()
        assert ds.descriptions[:3] == tuple(f"NDVI {d.isoformat()}" for d in dates)
        assert ds.descriptions[3] == f"EVI {dates[0].isoformat()}"
        assert ds.crs.to_epsg() == 32631
    expect = ndvi_of(dn)  # (T, H, W)
    expect[1, 0, 0] = np.nan  # cloud (SCL 9) at (0, 0) on date 2
    expect[2, 1, 1] = np.nan  # red = 0 (nodata) at (1, 1) on date 3
    np.testing.assert_allclose(data[:3], expect, rtol=1e-5, equal_nan=True)
    # QGIS reads the same value at the centre of pixel (row 2, col 3), NDVI of date 2 (band 2)
    value, ok = layer.dataProvider().sample(QgsPointXY(600000 + 35, 5000000 - 25), 2)
    assert ok and value == pytest.approx(expect[1, 2, 3], rel=1e-5)


def test_indices_from_folder_with_sensor_preset(pimc_provider, multiband_stack, tmp_path):
    """SOURCE_FOLDER + SENSOR: the folder layout and preset path of open_series, same NDVI."""
    folder, dates, dn = multiband_stack
    (folder / "manifest.yaml").unlink()
    out = tmp_path / "out" / "idx_folder.tif"  # not in the folder being read (tmp_path)
    out.parent.mkdir()
    run("pimc:indices", {"SOURCE_FOLDER": str(folder), "SENSOR": "sentinel2-l2a", "INDICES": "ndvi",
                         "OUTPUT": str(out)})
    with rasterio.open(out) as ds:
        assert ds.count == 3
        got = ds.read()
    expect = ndvi_of(dn)
    expect[1, 0, 0] = expect[2, 1, 1] = np.nan
    np.testing.assert_allclose(got, expect, rtol=1e-5, equal_nan=True)


def test_indices_on_synthetic_sample(pimc_provider, synthetic, tmp_path):
    out = tmp_path / "syn.tif"
    run("pimc:indices", {"SOURCE": str(synthetic.manifest), "INDICES": "ndvi,evi,savi", "BLOCK": 16, "OUTPUT": str(out)})
    with rasterio.open(out) as ds:
        assert ds.count == 3 * len(synthetic.dates)
        got = ds.read(list(range(1, len(synthetic.dates) + 1)))  # the NDVI bands
    # numpy NDVI of the input files, masked as the manifest says (SCL band 6 valid 4, 5, 6; nodata 0)
    for t, img in enumerate(synthetic.images):
        with rasterio.open(img) as src:
            dn = src.read().astype(np.float64)
        red, nir = dn[2] * 1e-4, dn[3] * 1e-4
        with np.errstate(invalid="ignore", divide="ignore"):
            expect = (nir - red) / (nir + red)
        invalid = ~np.isin(dn[5], (4, 5, 6)) | (dn[:5] == 0).any(axis=0)
        expect[invalid] = np.nan
        np.testing.assert_allclose(got[t], expect, rtol=1e-5, atol=1e-7, equal_nan=True)
        assert np.isfinite(expect).mean() > 0.5  # mostly clear: the comparison is not vacuous


def test_indices_cancel_leaves_no_output(pimc_provider, synthetic, tmp_path):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    seen = []

    def cancel_after_first_block(p):
        seen.append(p)
        feedback.cancel()

    feedback.progressChanged.connect(cancel_after_first_block)
    out = tmp_path / "cancelled.tif"
    with pytest.raises(QgsProcessingException):
        run("pimc:indices", {"SOURCE": str(synthetic.manifest), "BLOCK": 16, "OUTPUT": str(out)}, feedback)
    assert seen and seen[0] == pytest.approx(25.0)  # 4 blocks of 16x16: stopped after the first
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file


def test_indices_errors_are_one_clear_line(pimc_provider, multiband_stack, tmp_path):
    from qgis.core import QgsProcessingException

    folder, _, _ = multiband_stack
    cases = [
        ({"SOURCE": str(tmp_path / "nope.yaml")}, "nope.yaml: no such file or folder"),
        ({"SOURCE": str(folder / "manifest.yaml"), "INDICES": "ndvi,foo"}, "unknown index 'foo'"),
        ({}, "no time series"),
        ({"SOURCE": str(folder / "manifest.yaml"), "SOURCE_FOLDER": str(folder)}, "not both"),
        ({"SOURCE": str(folder / "manifest.yaml"), "BANDS": "red=3,nir"}, "band mapping"),
    ]
    for params, expected in cases:
        with pytest.raises(QgsProcessingException) as e:
            run("pimc:indices", {**params, "OUTPUT": str(tmp_path / "x.tif")})
        assert expected in str(e.value), str(e.value)
        assert "Traceback" not in str(e.value)
    assert not (tmp_path / "x.tif").exists()


def core_plots(ts, row, col, names, min_valid=3):
    from pimc_core.series.pixel import pixel_index_series
    from pimc_core.series.recurrence import stack_recurrence_plots

    ps = pixel_index_series(ts, row, col, names, min_valid=min_valid)
    return ps, stack_recurrence_plots(ps.filled[:, :, 0, 0][None])[0]


def test_recurrenceplot_png_and_npy_equal_core(pimc_provider, multiband_stack, tmp_path):
    from pimc_core.io.timeseries import open_series

    folder, dates, dn = multiband_stack
    manifest = folder / "manifest.yaml"
    png, npy = tmp_path / "rp.png", tmp_path / "rp.npy"
    # centre of pixel (row 2, col 3), given in EPSG:4326: the algorithm transforms it
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject

    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32631"),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    p = to_wgs84.transform(QgsPointXY(600035.0, 4999975.0))
    lon, lat = p.x(), p.y()
    res = run("pimc:recurrenceplot", {
        "SOURCE": str(manifest), "POINT": f"{lon!r},{lat!r} [EPSG:4326]", "INDICES": "ndvi,savi",
        "OUTPUT_PNG": str(png), "OUTPUT_NPY": str(npy),
    })
    assert (res["ROW"], res["COL"]) == (2, 3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    got = np.load(npy)
    _, expect = core_plots(open_series(manifest), 2, 3, ("ndvi", "savi"))
    assert got.shape == (2, 3, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expect)
    nd = ndvi_of(dn)[:, 2, 3]
    np.testing.assert_allclose(got[0], np.abs(nd[:, None] - nd[None, :]), atol=1e-6)


def test_recurrenceplot_on_synthetic_with_threshold(pimc_provider, synthetic, tmp_path):
    from pimc_core.io.timeseries import open_series
    from pimc_core.series.pixel import pixel_index_series
    from pimc_core.series.recurrence import stack_recurrence_plots

    ts = open_series(synthetic.manifest)
    x, y = ts.grid.xy(10, 20)
    npy = tmp_path / "rp.npy"
    res = run("pimc:recurrenceplot", {
        "SOURCE": str(synthetic.manifest), "POINT": f"{x},{y}", "INDICES": "ndvi", "MIN_VALID": 2,
        "THRESHOLD": "point", "PERCENTAGE": 30, "OUTPUT_PNG": str(tmp_path / "rp.png"), "OUTPUT_NPY": str(npy),
    })
    assert (res["ROW"], res["COL"]) == (10, 20)
    ps = pixel_index_series(ts, 10, 20, ("ndvi",), min_valid=2)
    expect = stack_recurrence_plots(ps.filled[:, :, 0, 0][None], threshold="point", percentage=30)[0]
    np.testing.assert_array_equal(np.load(npy), expect)
    assert set(np.unique(expect)) <= {0.0, 1.0}


def test_recurrenceplot_refuses_outside_and_too_few_valid(pimc_provider, multiband_stack, tmp_path):
    from qgis.core import QgsProcessingException

    folder, _, _ = multiband_stack
    out = tmp_path / "out"  # tmp_path is the fixture's folder
    out.mkdir()
    base = {"SOURCE": str(folder / "manifest.yaml"), "OUTPUT_PNG": str(out / "a.png"), "OUTPUT_NPY": str(out / "a.npy")}
    with pytest.raises(QgsProcessingException, match="outside the raster"):
        run("pimc:recurrenceplot", {**base, "POINT": "0,0 [EPSG:32631]"})
    # pixel (0, 0): a cloud on date 2 leaves 2 valid observations of 3
    with pytest.raises(QgsProcessingException, match="only 2 valid observation"):
        run("pimc:recurrenceplot", {**base, "POINT": "600005,4999995"})
    with pytest.raises(QgsProcessingException, match="threshold"):
        run("pimc:recurrenceplot", {**base, "POINT": "600035,4999975", "THRESHOLD": "sometimes"})
    assert list(out.iterdir()) == []
