"""The Processing algorithms with a Sentinel-1 source beside the optical one (parameter SAR,
the ``--sar`` of the command line) inside real QGIS: a class map of a model trained on both equals
the core's, also from either source alone (the model's radar modality), radar series from the
combined source, and a radar source on another grid refused in one line naming both files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from tests.test_sar_source import TINY


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from pimc_core.datasets.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("psar") / "s", size=24, n_dates=8, seed=5, n_classes=4, sar=True)


@pytest.fixture(scope="module")
def model(sample, tmp_path_factory):
    from pimc_core.fit import fit
    from pimc_core.io.sar_source import with_sar
    from pimc_core.io.timeseries import open_series

    out = tmp_path_factory.mktemp("psar_model") / "both.pimc"
    ts = with_sar(open_series(sample.manifest), open_series(sample.sar_manifest))
    fit(ts, sample.labels_sparse, out, classes=sample.classes_json, config=TINY, progress=False)
    return out


def run(alg, params: dict):
    import processing

    return processing.run(alg, params)


def test_classify_with_sar_equals_the_command_line(pimc_provider, sample, model, tmp_path):
    from pimc_core.cli import main

    run("pimc:classify", {"SOURCE": str(sample.manifest), "SAR": str(sample.sar_manifest), "MODEL": str(model),
                          "OUTPUT": str(tmp_path / "qgis" / "classes.tif")})
    assert main(["classify", str(sample.manifest), "--sar", str(sample.sar_manifest), "--model", str(model),
                 "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    with rasterio.open(tmp_path / "qgis" / "classes.tif") as a, rasterio.open(tmp_path / "cli" / "classes.tif") as b:
        qgis_map, cli_map = a.read(1), b.read(1)
    np.testing.assert_array_equal(qgis_map, cli_map)
    assert (qgis_map > 0).mean() > 0.9


@pytest.mark.parametrize("given", ["optical", "radar"])
def test_one_source_alone_equals_the_command_line(pimc_provider, sample, model, tmp_path, given):
    """The model has a radar modality: from the optical source without SAR, or from the radar
    source alone, the Processing map equals ``pimc classify`` given the same source."""
    from pimc_core.cli import main

    src = str(sample.manifest if given == "optical" else sample.sar_manifest)
    run("pimc:classify", {"SOURCE": src, "MODEL": str(model), "OUTPUT": str(tmp_path / "qgis" / "classes.tif")})
    assert main(["classify", src, "--model", str(model), "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    with rasterio.open(tmp_path / "qgis" / "classes.tif") as a, rasterio.open(tmp_path / "cli" / "classes.tif") as b:
        qgis_map, cli_map = a.read(1), b.read(1)
    np.testing.assert_array_equal(qgis_map, cli_map)
    assert (qgis_map > 0).mean() > 0.9


def test_radar_series_from_the_combined_source(pimc_provider, sample, tmp_path):
    from pimc_core.io.sar_source import with_sar
    from pimc_core.io.timeseries import open_series
    from pimc_core.series.indices import compute_indices

    out = tmp_path / "idx.tif"
    run("pimc:indices", {"SOURCE": str(sample.manifest), "SAR": str(sample.sar_manifest), "INDICES": "ndvi,rvi",
                         "OUTPUT": str(out)})
    ts = with_sar(open_series(sample.manifest), open_series(sample.sar_manifest))
    with rasterio.open(out) as ds:
        data = ds.read()
        assert ds.count == 2 * len(ts.dates)
    obs = ts.read()
    expect = compute_indices(obs.bands(), ["ndvi", "rvi"], invalid=~obs.valid).reshape(data.shape)
    np.testing.assert_allclose(data, expect, rtol=1e-5, equal_nan=True)


def test_radar_source_on_another_grid_is_refused(pimc_provider, sample, model, tmp_path):
    from qgis.core import QgsProcessingException

    from pimc_core.datasets.synthetic import make_synthetic

    other = make_synthetic(tmp_path / "o", size=16, n_dates=3, seed=1, n_classes=2, sar=True)
    with pytest.raises(QgsProcessingException, match=r"--sar .*o/s1/manifest.yaml is not on the grid of the optical "
                                                     r"source .*s/manifest.yaml: shape 16x16 instead of 24x24"):
        run("pimc:classify", {"SOURCE": str(sample.manifest), "SAR": str(other.sar_manifest), "MODEL": str(model),
                              "OUTPUT": str(tmp_path / "x" / "classes.tif")})
