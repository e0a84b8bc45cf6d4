"""Map inference: products, regions, nodata, cancel/failure atomicity, bounded memory, clusters,
similarity and the ``pimc classify|forecast|embed|cluster|similar`` commands.

The model is :class:`NearestCentroidModel` (a documented non-PIMC baseline) on a 32 x 32
synthetic Sentinel-2-like stack; every map is compared with the same model applied directly to
the whole stack in memory.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tracemalloc

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from pimc_core.cli import main
from pimc_core.datasets import synthetic as sample_data
from pimc_core.errors import Cancelled, ConfigError, InputError
from pimc_core.io.grid import Grid
from pimc_core.io.regions import Region, bbox_region, wkt_region
from pimc_core.io.timeseries import TimeSeries, open_series
from pimc_core.maps.engine import (
    CancelToken,
    InferenceResult,
    PixelModel,
    cluster_map,
    run_inference,
    similarity_map,
)
from pimc_core.maps.products import MapOutputs as _Outputs
from pimc_core.maps.products import Product as _Product
from pimc_core.models.centroid import NearestCentroidModel
from pimc_core.series.pixel import index_series

ALL = ("classes", "confidence", "probabilities", "forecast", "embeddings")


class Recording(NearestCentroidModel):
    """The baseline, recording what predict receives; ``hook(call_number)`` runs before each call."""

    def __init__(self, *a, hook=None, **kw):
        super().__init__(*a, **kw)
        self.calls: list[tuple[int, ...]] = []
        self.patches: list[np.ndarray | None] = []
        self.hook = hook

    def predict(self, filled, patches=None):
        self.calls.append(filled.shape)
        self.patches.append(patches)
        if self.hook is not None:
            self.hook(len(self.calls))
        return super().predict(filled, patches)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return sample_data.make_synthetic(tmp_path_factory.mktemp("s2"), size=32, n_dates=12, seed=3,
                                      cloud_fraction=0.3)


@pytest.fixture(scope="module")
def ts(sample) -> TimeSeries:
    return open_series(sample.manifest)


def direct(ts: TimeSeries, model, window: Window | None = None):
    """The model applied to the whole stack at once: (ok mask, dict of (…, H, W) maps)."""
    model.prepare(ts)
    obs = ts.read(window)
    ser = index_series(obs, model.indices, min_valid=model.min_valid, target_dates=model.target_dates)
    ok = ser.ok
    out = model.predict(np.moveaxis(ser.filled[:, :, ok], -1, 0), None)
    h, w = ok.shape
    p = out["probabilities"]
    maps = {"classes": np.zeros((h, w), np.uint8), "confidence": np.full((h, w), np.nan, np.float32),
            "forecast": np.full((out["forecast"].shape[1], h, w), np.nan, np.float32),
            "embeddings": np.full((out["embeddings"].shape[1], h, w), np.nan, np.float32)}
    ids = np.array([c["id"] for c in model.class_table])
    maps["classes"][ok] = ids[p.argmax(1)]
    maps["confidence"][ok] = p.max(1)
    maps["forecast"][:, ok] = out["forecast"].T
    maps["embeddings"][:, ok] = out["embeddings"].T
    return ok, maps


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.exists(folder) else []


# ----------------------------------------------------------------------------- products
def test_all_products_match_the_model_applied_directly(ts, tmp_path):
    model = NearestCentroidModel.for_synthetic()
    assert isinstance(model, PixelModel)
    res = run_inference(ts, model, None, tmp_path, products=ALL, block=16, batch_size=100)
    assert isinstance(res, InferenceResult)
    assert listing(tmp_path) == ["classes.qml", "classes.tif", "confidence.qml", "confidence.tif",
                                 "embeddings.tif", "forecast.tif", "probabilities.tif"]
    assert sorted(p.name for p in res.files) == listing(tmp_path)
    ok, want = direct(ts, NearestCentroidModel.for_synthetic())
    assert res.pixels == 1024 and res.predicted == int(ok.sum()) > 1000 and res.windows == 4
    for name in ("classes", "confidence", "forecast", "embeddings"):
        with rasterio.open(tmp_path / f"{name}.tif") as ds:
            got = ds.read()
            np.testing.assert_array_equal(got[0] if got.shape[0] == 1 and want[name].ndim == 2 else got, want[name])
    with rasterio.open(tmp_path / "probabilities.tif") as ds:
        prob = ds.read()
        assert ds.count == 9 and ds.descriptions[0] == "P(winter_wheat)"
        np.testing.assert_allclose(prob.sum(axis=0)[ok], 1.0, rtol=1e-5)
        assert np.isnan(prob[:, ~ok]).all()
    assert (want["classes"][~ok] == 0).all()
    # the baseline is sensible on this data (class curves are those of the generator)
    with rasterio.open(sample_data_labels(ts)) as ds:
        assert (ds.read(1) == want["classes"]).mean() > 0.6
    assert set(res.stages) == {"read", "indices", "predict", "write", "finalize"}
    assert res.pixels_per_second > 0
    line = res.summary()
    assert "\n" not in line and "1024 pixels" in line and "pixels/s" in line and "7 files written" in line


def sample_data_labels(ts: TimeSeries):
    return os.path.join(os.path.dirname(ts.source), "labels.tif")


def test_outputs_are_cogs_with_grid_metadata_colours_and_names(ts, tmp_path):
    model = NearestCentroidModel.for_synthetic()
    run_inference(ts, model, None, tmp_path, products=ALL, block=16)
    with rasterio.open(tmp_path / "classes.tif") as ds:
        assert ds.dtypes == ("uint8",) and ds.nodata == 0 and ds.count == 1
        assert ds.crs == ts.grid.crs and ds.transform == ts.grid.transform and ds.shape == (32, 32)
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and ds.compression.name == "deflate"
        cmap = ds.colormap(1)
        assert cmap[0][3] == 0 and cmap[1] == (0xE3, 0xB5, 0x05, 255) and cmap[9] == (0x43, 0x63, 0xD8, 255)
        assert ds.tags(1)["class_2"] == "maize" and ds.descriptions == ("class",)
        assert '"name":"water"' in ds.tags()["pimc_classes"]
    with rasterio.open(tmp_path / "confidence.tif") as ds:
        assert ds.dtypes == ("float32",) and math.isnan(ds.nodata)
        c = ds.read(1)
        assert np.nanmin(c) >= 1 / 9 - 1e-6 and np.nanmax(c) <= 1
    with rasterio.open(tmp_path / "forecast.tif") as ds:
        assert ds.count == 3 and ds.dtypes[0] == "float32"
        assert list(ds.descriptions) == [f"NDVI {d.isoformat()}" for d in model.forecast_dates]
        assert model.forecast_dates[0] > ts.dates[-1]
        assert ds.tags(2)["date"] == model.forecast_dates[1].isoformat()
    with rasterio.open(tmp_path / "embeddings.tif") as ds:
        assert ds.count == len(ts.dates) and ds.descriptions[0] == "embedding 1"
    qml = (tmp_path / "classes.qml").read_text()
    assert 'type="paletted"' in qml and 'label="coniferous_forest"' in qml and 'color="#1b4d3e"' in qml
    assert 'type="singlebandpseudocolor"' in (tmp_path / "confidence.qml").read_text()


def test_default_products_are_what_the_model_gives(ts, tmp_path):
    model = NearestCentroidModel.for_synthetic()
    model.outputs = ("classes", "confidence")
    res = run_inference(ts, model, None, tmp_path, block=32)
    assert [p.name for p in res.files] == ["classes.tif", "classes.qml", "confidence.tif", "confidence.qml"]
    with pytest.raises(ConfigError, match="cannot give forecast"):
        run_inference(ts, model, None, tmp_path / "f", products=("forecast",))
    with pytest.raises(ConfigError, match="unknown product 'ndvi'"):
        run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "f", products=("ndvi",))
    assert listing(tmp_path / "f") == []


def test_too_few_valid_observations_is_nodata(ts, tmp_path):
    model = NearestCentroidModel.for_synthetic(min_valid=len(ts.dates))  # only never-clouded pixels
    run_inference(ts, model, None, tmp_path, products=("classes", "confidence", "forecast"), block=16)
    ok, want = direct(ts, NearestCentroidModel.for_synthetic(min_valid=len(ts.dates)))
    assert 0 < ok.sum() < ok.size
    with rasterio.open(tmp_path / "classes.tif") as ds:
        classes = ds.read(1)
    assert np.array_equal(classes == 0, ~ok) and np.array_equal(classes, want["classes"])
    with rasterio.open(tmp_path / "forecast.tif") as ds:
        assert np.array_equal(np.isnan(ds.read()).all(axis=0), ~ok)


def test_target_dates_resample_the_series_the_model_sees(ts, tmp_path):
    grid = [dt.date(2023, 1, 15) + dt.timedelta(days=30 * i) for i in range(11)]
    model = Recording.for_synthetic(target_dates=grid)
    run_inference(ts, model, None, tmp_path, products=("embeddings", "forecast"), block=16)
    assert {c[1:] for c in model.calls} == {(1, 11)}
    with rasterio.open(tmp_path / "forecast.tif") as ds:
        assert ds.descriptions[0] == "NDVI 2023-12-11"  # 30 days after the last target date


# ----------------------------------------------------------------------------- regions
def test_bbox_region_writes_the_window_only(ts, tmp_path):
    region = bbox_region(ts.grid, (600050, 4899800, 600170, 4899950))  # cols 5..16, rows 5..19
    assert region.window == Window(5, 5, 12, 15)
    res = run_inference(ts, NearestCentroidModel.for_synthetic(), region, tmp_path, products=("classes",), block=8)
    assert res.pixels == 180
    _, want = direct(ts, NearestCentroidModel.for_synthetic())
    with rasterio.open(tmp_path / "classes.tif") as ds:
        assert ds.shape == (15, 12) and ds.crs == ts.grid.crs
        assert ds.transform == ts.grid.window_transform(region.window)
        np.testing.assert_array_equal(ds.read(1), want["classes"][5:20, 5:17])


def test_polygon_region_outside_is_nodata(ts, tmp_path):
    region = wkt_region(ts.grid, "POLYGON((600000 4900000, 600205 4900000, 600000 4899795, 600000 4900000))")
    res = run_inference(ts, NearestCentroidModel.for_synthetic(), region, tmp_path,
                        products=("classes", "confidence"), block=8)
    inside = region.mask(region.window)
    assert res.pixels == int(inside.sum()) == 210
    _, want = direct(ts, NearestCentroidModel.for_synthetic())
    with rasterio.open(tmp_path / "classes.tif") as ds:
        got = ds.read(1)
    assert got.shape == (21, 21)
    assert (got[~inside] == 0).all() and (got[inside] > 0).mean() > 0.9
    np.testing.assert_array_equal(got[inside], want["classes"][:21, :21][inside])
    with rasterio.open(tmp_path / "confidence.tif") as ds:
        assert np.isnan(ds.read(1)[~inside]).all()


# ----------------------------------------------------------------------------- atomicity
def test_cancel_mid_run_leaves_no_file_and_keeps_older_maps(ts, tmp_path):
    run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path, products=("classes",), block=32)
    before = (tmp_path / "classes.tif").read_bytes()
    token = CancelToken()
    model = Recording.for_synthetic(hook=lambda n: token.cancel() if n == 3 else None)
    with pytest.raises(Cancelled, match="no output was written"):
        run_inference(ts, model, None, tmp_path, products=("classes", "confidence", "embeddings"),
                      block=16, batch_size=50, cancel=token)
    assert len(model.calls) == 3  # stopped at the next batch
    assert listing(tmp_path) == ["classes.qml", "classes.tif"]  # no temporaries, no new products
    assert (tmp_path / "classes.tif").read_bytes() == before


def test_cancel_callable_as_qgis_feedback_does(ts, tmp_path):
    calls = []
    with pytest.raises(Cancelled):
        run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "o", block=16,
                      cancel=lambda: calls.append(1) or len(calls) > 2)
    assert listing(tmp_path / "o") == []


@pytest.mark.parametrize("exc", [RuntimeError("model crashed"), KeyboardInterrupt()])
def test_exception_or_interrupt_in_predict_leaves_no_file(ts, tmp_path, exc):
    def boom(n):
        if n == 4:
            raise exc

    with pytest.raises(type(exc)):
        run_inference(ts, Recording.for_synthetic(hook=boom), None, tmp_path, products=ALL, block=16, batch_size=100)
    assert listing(tmp_path) == []


def test_wrong_model_output_shape_is_a_clear_error(ts, tmp_path):
    class Bad(NearestCentroidModel):
        def predict(self, filled, patches=None):
            out = super().predict(filled, patches)
            out["forecast"] = out["forecast"][:, :2]
            return out

    with pytest.raises(ConfigError, match=r"returned forecast of shape \(\d+, 2\); expected \(\d+, 3\)"):
        run_inference(ts, Bad.for_synthetic(), None, tmp_path,
                      products=("forecast",), block=16)
    assert listing(tmp_path) == []


# ----------------------------------------------------------------------------- memory
def test_batches_and_windows_are_bounded(ts, tmp_path, monkeypatch):
    seen: list[tuple[int, int]] = []
    read = TimeSeries.read

    def spy(self, window=None, bands=None):
        assert window is not None, "the engine must never read the whole raster"
        seen.append((int(window.height), int(window.width)))
        return read(self, window, bands)

    monkeypatch.setattr(TimeSeries, "read", spy)
    model = Recording.for_synthetic()
    run_inference(ts, model, None, tmp_path, products=ALL, block=12, batch_size=40)
    assert max(h * w for h, w in seen) <= 144 and len(seen) == 9
    assert max(c[0] for c in model.calls) <= 40
    monkeypatch.undo()
    ok, _ = direct(ts, NearestCentroidModel.for_synthetic())
    assert sum(c[0] for c in model.calls) == ok.sum()


def test_peak_memory_does_not_grow_with_the_raster(ts, tmp_path):
    """Same block and batch on a 4x larger raster: the same peak of traced (numpy) memory, far
    below one full-raster array of the reflectance or of the embeddings."""
    big = open_series(sample_data.make_synthetic(tmp_path / "s64", size=64, n_dates=12, seed=5).manifest)
    model = NearestCentroidModel.for_synthetic()
    run_inference(ts, model, None, tmp_path / "warm", products=("classes",), block=16)  # imports, caches
    peaks = {}
    for name, src in (("small", ts), ("big", big)):
        tracemalloc.start()
        try:
            run_inference(src, model, None, tmp_path / name, products=("classes", "embeddings"),
                          block=16, batch_size=64)
            peaks[name] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    full_reflectance = 12 * 5 * 64 * 64 * 4
    assert peaks["big"] < 1.25 * peaks["small"]
    assert peaks["big"] < full_reflectance / 2


def test_outputs_get_overviews_and_cog_layout(tmp_path):
    from affine import Affine

    grid = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 0, 0, -10, 0), 600, 520)
    spec = _Product("classes", "uint8", 1, 0, ("class",), colormap={0: (0, 0, 0, 0), 1: (255, 0, 0, 255)},
                    resampling="MODE")
    out = _Outputs(tmp_path, grid, [spec])
    for win in grid.windows(256):
        out.write(win, {"classes": np.ones((int(win.height), int(win.width)), np.uint8)})
    assert [p.name for p in out.commit()] == ["classes.tif"]
    with rasterio.open(tmp_path / "classes.tif") as ds:
        assert ds.overviews(1) == [2, 4] and ds.block_shapes[0] == (256, 256)
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and ds.colormap(1)[1] == (255, 0, 0, 255)
    assert listing(tmp_path) == ["classes.tif"]


# ----------------------------------------------------------------------------- patches
def test_patches_are_cut_from_the_median_composite(ts, tmp_path):
    model = Recording.for_synthetic()
    model.patch_size, model.patch_bands = 3, ("red", "nir")
    run_inference(ts, model, None, tmp_path, products=("classes",), block=16, batch_size=300)
    ok, _ = direct(ts, NearestCentroidModel.for_synthetic())
    obs = ts.read(bands=("red", "nir"))
    with np.errstate(all="ignore"):
        comp = np.nanmedian(obs.reflectance, axis=0)  # (2, H, W)
    padded = np.pad(comp, ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)  # NaN outside the raster
    # the first window is rows 0..15, cols 0..15; its predicted pixels in row-major order
    rows, cols = np.nonzero(ok[:16, :16])
    p = model.patches[0]
    assert p.shape == (min(300, rows.size), 2, 3, 3) and p.dtype == np.float32
    for i in range(p.shape[0]):
        np.testing.assert_array_equal(p[i], padded[:, rows[i]:rows[i] + 3, cols[i]:cols[i] + 3])
    assert rows[0] == 0 and np.isnan(p[0][:, 0, :]).all()  # the row above the raster


def test_patches_from_a_model_reference_image(ts, tmp_path):
    model = Recording.for_synthetic()
    model.patch_size, model.patch_bands = 2, ("nir",)
    model.patch_image = lambda source, win: np.full((1, int(win.height), int(win.width)), 7, np.float32)
    run_inference(ts, model, None, tmp_path, products=("classes",), block=32)
    p = model.patches[0]
    assert p.shape[1:] == (1, 2, 2) and np.nanmin(p) == np.nanmax(p) == 7
    model.patch_image = lambda source, win: np.zeros((1, 3, 3), np.float32)
    with pytest.raises(ConfigError, match="patch image of shape"):
        run_inference(ts, model, None, tmp_path / "bad", products=("classes",), block=32)


# ----------------------------------------------------------------------------- clusters, similarity
def test_cluster_map_is_reproducible_and_coloured(ts, tmp_path):
    progress: list[float] = []
    res = cluster_map(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "a", 4, block=16,
                      sample_size=600, progress=progress.append)
    assert progress[0] == 0 and progress[-1] == 1 and progress == sorted(progress)
    assert res.extra["k"] == 4 and res.extra["sample"] == 600
    assert listing(tmp_path / "a") == ["clusters.qml", "clusters.tif"]
    with rasterio.open(tmp_path / "a" / "clusters.tif") as ds:
        a = ds.read(1)
        assert ds.dtypes == ("uint8",) and ds.nodata == 0
        ok, _ = direct(ts, NearestCentroidModel.for_synthetic())
        assert set(np.unique(a[ok])) == {1, 2, 3, 4} and (a[~ok] == 0).all()
        assert set(ds.colormap(1)) >= {0, 1, 2, 3, 4} and ds.tags(1)["class_3"] == "cluster 3"
    cluster_map(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "b", 4, block=16, sample_size=600)
    with rasterio.open(tmp_path / "b" / "clusters.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), a)
    with pytest.raises(ConfigError, match=r"k must be an int in the range \[2, 255\]; got 1"):
        cluster_map(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "c", 1)
    no_emb = NearestCentroidModel.for_synthetic()
    no_emb.outputs = ("classes",)
    with pytest.raises(ConfigError, match="cannot give embeddings"):
        cluster_map(ts, no_emb, None, tmp_path / "c", 3)
    assert listing(tmp_path / "c") == []


def test_similarity_to_a_pixel_and_to_a_polygon(ts, tmp_path):
    model = NearestCentroidModel.for_synthetic()
    x, y = ts.grid.xy(10, 20)
    res = similarity_map(ts, model, None, tmp_path, query_xy=(x, y), block=16)
    assert res.extra["query_pixels"] == 1
    _, want = direct(ts, NearestCentroidModel.for_synthetic())
    with rasterio.open(tmp_path / "similarity.tif") as ds:
        sim = ds.read(1)
        assert ds.dtypes == ("float32",)
    e = want["embeddings"].reshape(len(ts.dates), -1).T
    q = want["embeddings"][:, 10, 20]
    expect = (e @ q) / (np.linalg.norm(e, axis=1) * np.linalg.norm(q))
    np.testing.assert_allclose(sim.ravel(), expect, atol=1e-5)
    assert sim[10, 20] == pytest.approx(1.0, abs=1e-6)
    assert (tmp_path / "similarity.qml").exists()
    # a polygon query: the mean embedding of its pixels
    poly = bbox_region(ts.grid, (600000, 4899900, 600050, 4900000))
    similarity_map(ts, model, None, tmp_path / "p", query_region=poly, block=16)
    qm = want["embeddings"][:, 0:10, 0:5].reshape(len(ts.dates), -1).mean(axis=1)
    with rasterio.open(tmp_path / "p" / "similarity.tif") as ds:
        np.testing.assert_allclose(ds.read(1).ravel(), (e @ qm) / (np.linalg.norm(e, axis=1) * np.linalg.norm(qm)),
                                   atol=1e-5)


def test_similarity_query_errors(ts, tmp_path):
    model = NearestCentroidModel.for_synthetic()
    with pytest.raises(InputError, match="outside the raster"):
        similarity_map(ts, model, None, tmp_path, query_xy=(0, 0))
    with pytest.raises(ConfigError, match="not both"):
        similarity_map(ts, model, None, tmp_path, query_xy=(0, 0), query_region=Region(ts.grid, Window(0, 0, 2, 2)))
    strict = NearestCentroidModel.for_synthetic(min_valid=len(ts.dates))
    ok, _ = direct(ts, NearestCentroidModel.for_synthetic(min_valid=len(ts.dates)))
    r, c = np.argwhere(~ok)[0]
    with pytest.raises(InputError, match="too few valid observations"):
        similarity_map(ts, strict, None, tmp_path, query_xy=ts.grid.xy(int(r), int(c)))
    assert listing(tmp_path) == []


# ----------------------------------------------------------------------------- CLI
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_classify_forecast_embed_cluster_similar(capsys, sample, tmp_path):
    base = [sample.manifest, "--model", "builtin:nearest-centroid", "--quiet", "--block", "16"]
    code, out, err = run_cli(capsys, "classify", *base, "--out", tmp_path / "c", "--probabilities",
                             "--bbox", 600000, 4899840, 600160, 4900000)
    assert code == 0, err
    assert out.count("\n") == 1 and "256 pixels" in out and "pixels/s" in out and "7 files written" in out
    with rasterio.open(tmp_path / "c" / "classes.tif") as ds:
        assert ds.shape == (16, 16)
    for cmd, extra, files in [
        ("forecast", [], ["forecast.tif"]),
        ("embed", ["--polygon", "POLYGON((600000 4900000, 600205 4900000, 600000 4899795, 600000 4900000))"],
         ["embeddings.tif"]),
        ("cluster", ["--k", 3, "--sample", 500], ["clusters.qml", "clusters.tif"]),
        ("similar", ["--x", 600105, "--y", 4899895], ["similarity.qml", "similarity.tif"]),
    ]:
        code, out, err = run_cli(capsys, cmd, *base, "--out", tmp_path / cmd, *extra)
        assert code == 0, (cmd, err)
        assert out.count("\n") == 1 and "pixels/s" in out, cmd
        assert listing(tmp_path / cmd) == files


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["classify", "--model", "{tmp}/missing.pimc"], "missing.pimc: model file not found"),
        (["classify", "--model", "builtin:random-forest"], "unknown built-in model"),
        (["classify", "--bbox", "0", "0", "1", "1"], "does not overlap the raster"),
        (["classify", "--polygon", "{tmp}/nope.gpkg"], "nope.gpkg: no such file"),
        (["cluster", "--k", "300"], "k must be an int in the range [2, 255]; got 300"),
        (["similar"], "give a query pixel"),
        (["classify", "--bbox", "600000", "4899840", "600160", "4900000", "--bbox-crs", "EPSG:0"], "unknown CRS"),
    ],
)
def test_cli_errors_are_one_line(capsys, sample, tmp_path, argv, pattern):
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--model" not in argv:
        argv += ["--model", "builtin:nearest-centroid"]
    code, out, err = run_cli(capsys, argv[0], sample.manifest, *argv[1:], "--out", tmp_path / "o", "--quiet")
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pimc: error:") and pattern in lines[0], err
    assert listing(tmp_path / "o") == []


def test_qgis_opens_the_class_map_with_names_and_colours(qgis_app, ts, tmp_path):
    from qgis.core import QgsRasterLayer

    run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path, products=("classes",), block=32)
    layer = QgsRasterLayer(str(tmp_path / "classes.tif"), "classes")
    assert layer.isValid()
    _, ok = layer.loadDefaultStyle()  # classes.qml, as when the file is dropped into QGIS
    assert ok and layer.renderer().type() == "paletted"
    got = [(int(c.value), c.label, c.color.name()) for c in layer.renderer().classes()]
    assert got == [(c.id, c.name, c.color) for c in sample_data.CLASSES]


def test_output_folder_that_cannot_be_created(ts, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot create the output folder"):
        run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "file" / "out")
