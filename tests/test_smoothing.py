"""Bayesian smoothing of class probabilities (the sits method), checked against the formula
evaluated pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from pimc_core.errors import ConfigError
from pimc_core.maps.smoothing import bayes_smooth


def _direct(prob, window, frac, s):
    k, h, w = prob.shape
    r = window // 2
    ok = np.isfinite(prob).all(axis=0)
    logit = np.log(np.clip(prob, 1e-6, 1 - 1e-6) / np.clip(1 - prob, 1e-6, 1))
    n_top = max(2, int(round(frac * window * window)))
    out = np.full(prob.shape, np.nan)
    for c in range(k):
        for i in range(h):
            for j in range(w):
                if not ok[i, j]:
                    continue
                nb = [(prob[c, a, b], logit[c, a, b]) for a in range(i - r, i + r + 1) for b in range(j - r, j + r + 1)
                      if 0 <= a < h and 0 <= b < w and ok[a, b]]
                nb.sort(key=lambda t: -t[0])
                top = np.array([t[1] for t in nb[:n_top]])
                if top.size < 2:
                    out[c, i, j] = logit[c, i, j]
                    continue
                m, v = top.mean(), top.var(ddof=1)
                out[c, i, j] = v / (s + v) * logit[c, i, j] + s / (s + v) * m
    p = 1 / (1 + np.exp(-out))
    return p / p.sum(axis=0, keepdims=True)


def test_bayes_smooth_is_the_formula_pixel_by_pixel_and_keeps_nodata():
    rng = np.random.default_rng(0)
    prob = rng.dirichlet([1, 1, 1], size=(9, 11)).transpose(2, 0, 1)
    prob[:, 2, 3] = np.nan
    prob[:, 0, :2] = np.nan
    got = bayes_smooth(prob, window=3, neigh_fraction=0.5, smoothness=5, rows=4)
    want = _direct(prob, 3, 0.5, 5)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.isnan(got[:, 2, 3]).all() and np.isnan(got[:, 0, :2]).all()
    np.testing.assert_allclose(np.nansum(got, axis=0)[np.isfinite(got[0])], 1, atol=1e-5)


def test_an_isolated_wrong_pixel_takes_its_field_s_class():
    prob = np.zeros((2, 15, 15))
    prob[0], prob[1] = 0.9, 0.1
    prob[:, 7, 7] = (0.3, 0.7)  # speckle inside a field of class 0
    out = bayes_smooth(prob, window=5, smoothness=10)
    assert out[:, 7, 7].argmax() == 0 and (out.argmax(axis=0) == 0).all()


def test_bad_smoothing_parameters_are_named():
    p = np.full((2, 4, 4), 0.5)
    with pytest.raises(ConfigError, match="window must be an odd integer"):
        bayes_smooth(p, window=4)
    with pytest.raises(ConfigError, match="neigh_fraction"):
        bayes_smooth(p, neigh_fraction=0)
    with pytest.raises(ConfigError, match="smoothness"):
        bayes_smooth(p, smoothness=-1)


# ----------------------------------------------------------------------------- in map inference
@pytest.fixture(scope="module")
def ts(tmp_path_factory):
    from pimc_core.datasets import synthetic as sample_data
    from pimc_core.io.timeseries import open_series

    s = sample_data.make_synthetic(tmp_path_factory.mktemp("s2"), size=32, n_dates=12, seed=3, cloud_fraction=0.3)
    return open_series(s.manifest)


def _read(folder, name):
    import rasterio

    with rasterio.open(folder / name) as ds:
        return ds.read(), ds.tags()


PRODUCTS = ("classes", "confidence", "uncertainty", "probabilities")
TRIANGLE = "POLYGON((600000 4900000, 600205 4900000, 600000 4899795, 600000 4900000))"


@pytest.mark.parametrize("polygon", [False, True])
def test_smoothed_maps_do_not_depend_on_the_block_size_and_are_the_smoothed_whole_map(ts, tmp_path, polygon):
    from pimc_core.io.regions import wkt_region
    from pimc_core.maps.engine import run_inference
    from pimc_core.maps.jobs import normalised_entropy
    from pimc_core.models.centroid import NearestCentroidModel

    region = wkt_region(ts.grid, TRIANGLE) if polygon else None
    smooth = {"window": 5, "smoothness": 10}
    raw = run_inference(ts, NearestCentroidModel.for_synthetic(), region, tmp_path / "raw", products=PRODUCTS)
    runs = {b: run_inference(ts, NearestCentroidModel.for_synthetic(), region, tmp_path / f"b{b}", products=PRODUCTS,
                             block=b, batch_size=37, smooth=smooth) for b in (8, 256)}
    assert runs[8].windows > 1 and runs[8].predicted == runs[256].predicted == raw.predicted
    prob = _read(tmp_path / "raw", "probabilities.tif")[0]
    want = bayes_smooth(prob, window=5, smoothness=10)
    for b in (8, 256):
        got = {p: _read(tmp_path / f"b{b}", f"{p}.tif") for p in PRODUCTS}
        np.testing.assert_allclose(got["probabilities"][0], want, atol=1e-5, equal_nan=True)
        ok = np.isfinite(want).all(axis=0)
        np.testing.assert_array_equal(got["classes"][0][0], np.where(ok, want.argmax(axis=0) + 1, 0))
        np.testing.assert_allclose(got["confidence"][0][0][ok], want.max(axis=0)[ok], atol=1e-5)
        np.testing.assert_allclose(got["uncertainty"][0][0][ok], normalised_entropy(want[:, ok].T), atol=1e-5)
        assert all('"window":5' in got[p][1]["pimc_smoothing"] for p in PRODUCTS)
    for p in PRODUCTS:
        np.testing.assert_array_equal(_read(tmp_path / "b8", f"{p}.tif")[0], _read(tmp_path / "b256", f"{p}.tif")[0])
    assert "pimc_smoothing" not in _read(tmp_path / "raw", "classes.tif")[1]
    # the smoothing changes the map (else the test proves nothing)
    assert (_read(tmp_path / "raw", "classes.tif")[0] != _read(tmp_path / "b8", "classes.tif")[0]).any()


def test_smoothing_on_dask_gives_the_in_process_maps(ts, tmp_path):
    from pimc_core.maps.dask_executor import DaskExecutor
    from pimc_core.maps.engine import run_inference
    from pimc_core.models.centroid import NearestCentroidModel

    kw = dict(products=PRODUCTS, block=16, smooth=True)
    with DaskExecutor(workers=2) as ex:
        run_inference(ts, NearestCentroidModel.for_synthetic, None, tmp_path / "dask", executor=ex, **kw)
    run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "local", **kw)
    for p in PRODUCTS:
        np.testing.assert_array_equal(_read(tmp_path / "dask", f"{p}.tif")[0], _read(tmp_path / "local", f"{p}.tif")[0])


@pytest.mark.parametrize("smooth, says", [
    ({"window": 4}, "window must be an odd integer >= 3; got 4"),
    ({"window": 7.5}, "smoothing.window"),
    ({"neigh_fraction": 1.5}, "neigh_fraction must be in (0, 1]; got 1.5"),
    ({"smoothness": 0}, "smoothness must be a positive number; got 0"),
    ({"windw": 5}, "windw"),
    ("yes", "smooth must be None, True or a mapping"),
])
def test_bad_smoothing_options_are_refused_before_any_window(ts, tmp_path, smooth, says):
    from pimc_core.maps.engine import run_inference
    from pimc_core.models.centroid import NearestCentroidModel

    with pytest.raises(ConfigError) as e:
        run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "o", smooth=smooth)
    assert says in str(e.value) and not (tmp_path / "o").exists()


def test_smoothing_without_a_product_of_the_probabilities_is_refused(ts, tmp_path):
    from pimc_core.maps.engine import run_inference
    from pimc_core.models.centroid import NearestCentroidModel

    with pytest.raises(ConfigError, match="smoothing applies to the class probabilities"):
        run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "o", products=("forecast",),
                      smooth=True)


def test_cli_classify_smooth(ts, tmp_path, capsys):
    from pimc_core.cli import main

    args = ["classify", str(ts.source), "--model", "builtin:nearest-centroid", "--quiet", "--block", "8"]
    assert main([*args, "--out", str(tmp_path / "s"), "--smooth", "--smooth-window", "5", "--smoothness", "4"]) == 0
    tags = _read(tmp_path / "s", "classes.tif")[1]
    assert tags["pimc_smoothing"] == '{"method":"bayes","window":5,"neigh_fraction":0.5,"smoothness":4.0}'
    capsys.readouterr()
    for extra, says in ((["--smooth", "--smooth-window", "4"], "--smooth: smoothing window must be an odd integer >= 3; got 4"),
                        (["--smooth", "--smoothness", "-1"], "smoothness must be a positive number; got -1"),
                        (["--smooth-window", "5"], "--smooth-window applies to --smooth")):
        assert main([*args, "--out", str(tmp_path / "bad"), *extra]) != 0
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1
        assert not (tmp_path / "bad").exists()
