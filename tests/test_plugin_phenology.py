"""Phenology in QGIS: the pimc:phenology Processing algorithm (equal to the core's
``phenology_map``, the 7-band GeoTIFF opened with its style, a region, one-line errors, no output
on a refusal), headless through ``qgis_process`` with the installed plugin zip, and the panel's
*Phenology* box (no model needed; the layer in its group with its style, equal to the core)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from tests.qgis_helpers import wait_for
from tests.test_plugin_regions import group_layers, plugin, sample  # noqa: F401 (the panel fixture on the sample)


@pytest.fixture(scope="module")
def core_phenology(sample, tmp_path_factory):  # noqa: F811
    """(7, 24, 24) metrics of the whole sample from the core, as ``pimc phenology`` writes them."""
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.phenology import phenology_map

    out = tmp_path_factory.mktemp("core_phen")
    phenology_map(open_series(sample.manifest), None, out)
    with rasterio.open(out / "phenology.tif") as ds:
        return ds.read()


def test_processing_phenology_equals_core_and_opens_styled(pimc_provider, sample, core_phenology, tmp_path):  # noqa: F811
    import processing
    from qgis.core import QgsRasterLayer

    out = tmp_path / "out"
    res = processing.run("pimc:phenology", {"SOURCE": str(sample.manifest), "OUTPUT": str(out / "pheno.tif"),
                                            "BLOCK": 16})
    assert res == {"OUTPUT": str(out / "pheno.tif")}
    assert sorted(p.name for p in out.iterdir()) == ["pheno.qml", "pheno.tif"]  # no temporaries left
    with rasterio.open(out / "pheno.tif") as ds:
        got = ds.read()
        assert ds.count == 7 and ds.descriptions[0].startswith("start of season (day of year 2023")
        assert ds.descriptions[3] == "peak value (smoothed NDVI)" and ds.tags()["pimc_product"] == "phenology"
    np.testing.assert_array_equal(got, core_phenology)
    assert 0.5 < np.isfinite(got[0]).mean() and (got[0][np.isfinite(got[0])] < got[2][np.isfinite(got[2])]).all()
    layer = QgsRasterLayer(str(out / "pheno.tif"), "phenology")  # what the user gets when it is opened
    assert layer.isValid() and layer.renderer().type() == "singlebandpseudocolor"
    assert layer.renderer().band() == 1  # the start of season on the day ramp of the .qml


def test_processing_phenology_parameters_and_region(pimc_provider, sample, core_phenology, tmp_path):  # noqa: F811
    import processing
    from qgis.core import QgsProcessingException

    from pimc_core.io.timeseries import open_series

    ts = open_series(sample.manifest)
    (xa, ya), (xb, yb) = ts.grid.xy(2, 3), ts.grid.xy(9, 12)
    out = tmp_path / "evi.tif"
    processing.run("pimc:phenology", {"SOURCE": str(sample.manifest), "INDEX": "evi", "FRACTION": 0.3,
                                      "EXTENT": f"{xa},{xb},{yb},{ya} [EPSG:32631]", "OUTPUT": str(out)})
    with rasterio.open(out) as ds:
        evi = ds.read()
        assert (ds.width, ds.height) == (10, 8) and ds.descriptions[3] == "peak value (smoothed EVI)"
        assert "thresholds 0.3 of the amplitude" in ds.tags()["pimc_phenology"]
    ndvi = core_phenology[:, 2:10, 3:13]
    assert np.isfinite(evi[0]).any() and not np.allclose(evi[3], ndvi[3], equal_nan=True)  # another index
    bad = [({"FRACTION": 1.0}, "phenology: "), ({"OUTPUT": str(tmp_path / "p.png")}, "give a .tif file name"),
           ({"MIN_VALID": 13}, "12 dates are too few for phenology metrics (at least min_valid = 13)")]
    for params, expected in bad:
        with pytest.raises(QgsProcessingException) as e:
            processing.run("pimc:phenology", {"SOURCE": str(sample.manifest), "OUTPUT": str(tmp_path / "x.tif"),
                                              **params})
        assert expected in str(e.value) and "Traceback" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evi.qml", "evi.tif"]


def test_qgis_process_phenology(sample, core_phenology, tmp_path, monkeypatch):  # noqa: F811
    from tests.test_plugin_packaging import _scripts, qgis_process

    plugin_zip, install_plugin = _scripts()
    cfg = tmp_path / "qgis-config"
    monkeypatch.setenv("QGIS_PROFILE_DIR", str(cfg))
    assert install_plugin.main(["--zip", str(plugin_zip.build(tmp_path / "dist" / "pimc.zip"))]) == 0
    assert qgis_process(cfg, "plugins", "enable", "pimc").returncode == 0
    r = qgis_process(cfg, "list")
    assert "pimc:phenology\tPhenology metrics map (start, peak, end of season)" in [ln.strip() for ln in r.stdout.splitlines()]
    out = tmp_path / "out" / "phenology.tif"
    out.parent.mkdir()
    r = qgis_process(cfg, "run", "pimc:phenology", "--", f"SOURCE={sample.manifest}", f"OUTPUT={out}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "12 dates 2023-" in r.stdout and "576 pixels" in r.stdout
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), core_phenology)
    assert out.with_suffix(".qml").is_file()
    r = qgis_process(cfg, "run", "pimc:phenology", "--", f"SOURCE={sample.manifest}", "INDEX=nope", f"OUTPUT={out}.2.tif")
    assert r.returncode != 0 and not (out.parent / "phenology.tif.2.tif").exists()


def test_panel_phenology_box_needs_no_model(plugin, sample, core_phenology, qgis_canvas):  # noqa: F811
    from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsRectangle

    from pimc_core.io.timeseries import open_series
    from qgis_plugin.region_tools import RegionChoice

    dock = plugin.dock
    assert dock.product_checks["phenology"].text() == "Phenology" and not dock.product_checks["phenology"].isChecked()
    dock.set_model_path("")
    dock.set_map_products(("phenology",))
    ts = open_series(sample.manifest)
    (xa, ya), (xb, yb) = ts.grid.xy(4, 5), ts.grid.xy(15, 20)
    choice = RegionChoice(QgsGeometry.fromRect(QgsRectangle(xa, yb, xb, ya)), QgsCoordinateReferenceSystem("EPSG:32631"),
                          "rectangle", "rectangle")
    task = dock.run_region(choice)
    assert task is not None, dock.map_status.text()
    wait_for(task)
    assert task.succeeded, task.error
    assert task.group.name().startswith("PIMC region 1 — rectangle — 20")  # no model in the name
    (layer,) = group_layers(task.group)
    assert layer.name() == "Phenology — region 1" and layer.customProperty("pimc/product") == "phenology"
    assert layer.renderer().type() == "singlebandpseudocolor" and layer.renderer().band() == 1  # the core's .qml
    assert dock.map_status.text().startswith("✓ PIMC region 1") and "Phenology" in dock.map_status.text()
    with rasterio.open(layer.source()) as ds:
        r0, c0 = ts.grid.rowcol(ds.transform.c + 5, ds.transform.f - 5)
        np.testing.assert_array_equal(ds.read(), core_phenology[:, r0:r0 + ds.height, c0:c0 + ds.width])

    # with the model's products: the classes come from the model, the phenology from the series
    dock.set_model_path("builtin:nearest-centroid")
    dock.set_map_products(("classes", "phenology"))
    task = wait_for(dock.run_region(choice))
    assert task.succeeded, task.error
    assert [lyr.name() for lyr in group_layers(task.group)] == [
        f"{p} — baseline — region 2" for p in ("Classes", "Phenology", "Confidence", "Uncertainty")]
    dock.set_model_path("")
    assert dock.run_region(choice) is None and dock.map_status.text().startswith("Choose a model file (.pimc) first")
