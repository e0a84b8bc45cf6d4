"""Map inference on Dask (2-worker LocalCluster): the same maps as in-process, errors and cancel
leave nothing, the CLI reaches a running scheduler."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import rasterio

from pimc_core.cli import main
from pimc_core.datasets import synthetic as sample_data
from pimc_core.errors import Cancelled, ConfigError
from pimc_core.io.regions import wkt_region
from pimc_core.io.timeseries import open_series
from pimc_core.maps.dask_executor import DaskExecutor
from pimc_core.maps.engine import CancelToken, cluster_map, run_inference
from pimc_core.models.centroid import NearestCentroidModel

ALL = ("classes", "confidence", "probabilities", "forecast", "embeddings")


class Described(NearestCentroidModel):
    """Says where it runs, as PIMC's own models do."""

    def device_summary(self):
        return "CPU, 1 thread, the test's model"


class Exploding(NearestCentroidModel):
    """Fails in predict (on the worker that runs it)."""

    def predict(self, filled, patches=None):
        raise RuntimeError("boom on a worker")


@pytest.fixture(scope="module")
def ts(tmp_path_factory):
    s = sample_data.make_synthetic(tmp_path_factory.mktemp("s2"), size=32, n_dates=12, seed=3, cloud_fraction=0.3)
    return open_series(s.manifest)


@pytest.fixture(scope="module")
def dask2():
    with DaskExecutor(workers=2) as ex:
        yield ex


def read_all(folder, name):
    """Pixels, profile, band names, tags and colour table of a GeoTIFF."""
    with rasterio.open(os.path.join(folder, name)) as ds:
        profile = {k: ("nan" if k == "nodata" and v != v else v) for k, v in ds.profile.items()}
        cmap = ds.colormap(1) if ds.dtypes[0] == "uint8" else None
        return ds.read(), profile, ds.descriptions, ds.tags(), cmap


def test_two_workers_give_the_single_process_maps(ts, dask2, tmp_path):
    # the workers get a factory and load the model themselves
    res = run_inference(ts, NearestCentroidModel.for_synthetic, None, tmp_path / "dask", products=ALL,
                        block=16, batch_size=50, executor=dask2)
    assert res.workers == 2 and res.windows == 4
    assert res.device == "2 Dask workers (CPU)"  # a model without device_summary() runs on the CPU
    ref = run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "local", products=ALL,
                        block=16, batch_size=50)
    assert [p.name for p in res.files] == [p.name for p in ref.files]
    assert res.pixels == ref.pixels == 1024 and res.predicted == ref.predicted
    for name in ("classes.tif", "confidence.tif", "probabilities.tif", "forecast.tif", "embeddings.tif"):
        a, b = read_all(tmp_path / "dask", name), read_all(tmp_path / "local", name)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    assert (tmp_path / "dask" / "classes.tif").read_bytes() == (tmp_path / "local" / "classes.tif").read_bytes()
    assert (tmp_path / "dask" / "classes.qml").read_text() == (tmp_path / "local" / "classes.qml").read_text()


def test_polygon_region_and_clusters_on_dask_match(ts, dask2, tmp_path):
    region = wkt_region(ts.grid, "POLYGON((600000 4900000, 600205 4900000, 600000 4899795, 600000 4900000))")
    model = functools.partial(NearestCentroidModel.for_synthetic, temperature=0.02)
    run_inference(ts, model, region, tmp_path / "d", products=("classes",), block=8, executor=dask2)
    run_inference(ts, model(), region, tmp_path / "l", products=("classes",), block=8)
    np.testing.assert_array_equal(read_all(tmp_path / "d", "classes.tif")[0], read_all(tmp_path / "l", "classes.tif")[0])
    # a picklable model instance is sent to the workers as it is
    res = cluster_map(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "d", 3, block=16, sample_size=500,
                      executor=dask2)
    assert res.extra["sample"] == 500
    cluster_map(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "l", 3, block=16, sample_size=500)
    np.testing.assert_array_equal(read_all(tmp_path / "d", "clusters.tif")[0], read_all(tmp_path / "l", "clusters.tif")[0])


def test_worker_exception_reaches_the_client_and_leaves_nothing(ts, dask2, tmp_path):
    with pytest.raises(RuntimeError, match="boom on a worker"):
        run_inference(ts, Exploding.for_synthetic, None, tmp_path, products=ALL, block=8, executor=dask2)
    assert os.listdir(tmp_path) == []


def test_cancel_on_dask_leaves_nothing(ts, dask2, tmp_path):
    token = CancelToken()
    seen = []

    def progress(f):
        seen.append(f)
        if f > 0.1:
            token.cancel()

    with pytest.raises(Cancelled):
        run_inference(ts, NearestCentroidModel.for_synthetic, None, tmp_path, block=8, executor=dask2,
                      progress=progress, cancel=token)
    assert os.listdir(tmp_path) == [] and max(seen) < 0.5
    # the executor is still usable afterwards
    res = run_inference(ts, NearestCentroidModel.for_synthetic, None, tmp_path, products=("classes",), block=16,
                        executor=dask2)
    assert res.pixels == 1024


def test_the_summary_names_the_devices_the_workers_used(ts, dask2, tmp_path):
    res = run_inference(ts, Described.for_synthetic, None, tmp_path, products=("classes",), block=16, executor=dask2)
    assert res.device == "2 Dask workers (CPU, 1 thread, the test's model)"
    assert "on 2 Dask workers (CPU, 1 thread, the test's model)" in res.summary()
    local = run_inference(ts, Described.for_synthetic(), None, tmp_path / "l", products=("classes",), block=16)
    assert local.device == "CPU, 1 thread, the test's model"


def test_cli_with_a_scheduler_address(ts, dask2, tmp_path, capsys):
    addr = dask2.client.scheduler.address
    code = main(["classify", ts.source, "--model", "builtin:nearest-centroid", "--out", str(tmp_path),
                 "--scheduler", addr, "--block", "16", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("\n") == 1 and "1024 pixels" in out and "pixels/s on 2 Dask workers (CPU" in out
    assert sorted(os.listdir(tmp_path)) == ["classes.qml", "classes.tif", "confidence.qml", "confidence.tif",
                                            "uncertainty.qml", "uncertainty.tif"]


def test_bad_executor_arguments():
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        DaskExecutor(workers=0)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        DaskExecutor(scheduler="tcp://127.0.0.1:1", connect_timeout=1).start()
