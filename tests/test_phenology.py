"""Phenology metrics (pimc_core.series.phenology), the phenology map (pimc_core.maps.phenology)
and ``pimc phenology``: the metrics of analytic curves, the match with the synthetic generator's
own season, the output file, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from pimc_core.cli import main
from pimc_core.errors import ConfigError
from pimc_core.series.phenology import METRICS, PhenologyParams, phenology_metrics
from tests.conftest import left_nothing
from tests.test_plugin_dock import click, plugin  # noqa: F401 (the panel fixture and a map click)


def _logistic_season(x, base, amp, up, down, rate):
    return base + amp * (1 / (1 + np.exp(-(x - up) / rate)) - 1 / (1 + np.exp(-(x - down) / rate)))


def test_metrics_of_a_symmetric_season_are_its_threshold_crossings():
    x = np.arange(1.0, 366.0, 5.0)
    ups = np.array([100.0, 130.0, 160.0])
    y = np.stack([_logistic_season(x, 0.2, 0.6, u, u + 120, 8.0) for u in ups])
    m = phenology_metrics(y, x, PhenologyParams(window_days=25, order=3))
    assert set(m) == set(METRICS) and all(v.shape == (3,) and v.dtype == np.float32 for v in m.values())
    # 20 % of the amplitude of a logistic step lies ln(4) rates before its midpoint
    np.testing.assert_allclose(m["sos"], ups - 8.0 * np.log(4), atol=2.5)
    np.testing.assert_allclose(m["eos"], ups + 120 + 8.0 * np.log(4), atol=2.5)
    np.testing.assert_allclose(m["pos"], ups + 60, atol=5.0)
    np.testing.assert_allclose(m["amplitude"], 0.6, atol=0.02)
    np.testing.assert_allclose(m["peak"], 0.8, atol=0.02)
    np.testing.assert_allclose(m["length"], m["eos"] - m["sos"], rtol=1e-6)
    # the integral of the curve above its base over the season (a plateau of 0.6 for ~120 days)
    assert np.all((m["integral"] > 0.6 * 100) & (m["integral"] < 0.6 * 140))


def test_flat_and_nan_series_have_no_season():
    x = np.arange(0.0, 300.0, 10.0)
    rng = np.random.default_rng(0)
    y = np.stack([np.full(x.size, 0.3), 0.3 + 0.01 * rng.standard_normal(x.size),
                  _logistic_season(x, 0.2, 0.6, 100, 200, 8)])
    y[2, 5] = np.nan
    m = phenology_metrics(y, x)
    assert all(np.isnan(v).all() for v in m.values())
    assert phenology_metrics(np.empty((0, x.size)), x)["sos"].shape == (0,)


def test_parameters_are_checked():
    with pytest.raises(ConfigError, match="fraction"):
        PhenologyParams(fraction=1.5)
    with pytest.raises(ConfigError, match="order"):
        PhenologyParams(order=0)
    with pytest.raises(ConfigError, match="too few for a Savitzky-Golay"):
        PhenologyParams(order=3).window_length(4)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from pimc_core.datasets.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("phen"), size=64, n_dates=24, seed=0)


@pytest.fixture(scope="module")
def phenology_tif(sample, tmp_path_factory):
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.phenology import phenology_map

    out = tmp_path_factory.mktemp("phen_out")
    res = phenology_map(open_series(sample.manifest), None, out, block=40)
    assert [p.name for p in res.files] == ["phenology.tif", "phenology.qml"]
    return out / "phenology.tif"


def test_start_and_end_match_the_generators_season_within_one_observation_interval(sample, phenology_tif):
    truth = sample.scene.season()  # the generator's own curves, same rule
    with rasterio.open(phenology_tif) as ds:
        est = {m: ds.read(i + 1) for i, m in enumerate(METRICS)}
    interval = float(np.median(np.diff([d.toordinal() for d in sample.dates])))
    vegetated = np.isfinite(truth["sos"])
    within = {k: np.abs(est[k] - truth[k])[vegetated] <= interval for k in ("sos", "eos")}
    both = within["sos"] & within["eos"]
    print(f"\nwithin one observation interval ({interval:.0f} d) of the generator's season, "
          f"{vegetated.sum()} vegetated pixels: start {within['sos'].mean():.0%}, end {within['eos'].mean():.0%}, "
          f"both {both.mean():.0%}")
    assert vegetated.mean() > 0.5
    assert within["sos"].mean() >= 0.75  # measured 78 % (seed 0)
    assert within["eos"].mean() >= 0.8  # measured 83 %
    assert both.mean() >= 0.6  # measured 66 %
    # crop classes, whose season is one clear green-up and senescence, match best
    crops = np.isin(sample.scene.labels(), [1, 2, 3, 4])[vegetated]
    assert within["sos"][crops].mean() >= 0.8 and within["eos"][crops].mean() >= 0.8
    # bare soil and urban fields have no season in the generator; most get none here either
    bare = sample.scene.labels() == 8
    assert np.isnan(est["sos"][bare]).mean() >= 0.5


def test_output_file_bands_descriptions_nodata_and_style(sample, phenology_tif):
    from pimc_core.io.timeseries import open_series
    from pimc_core.series.gapfill import date_grid
    from pimc_core.series.pixel import index_series

    with rasterio.open(phenology_tif) as ds:
        assert ds.count == len(METRICS) and ds.dtypes == ("float32",) * len(METRICS)
        assert np.isnan(ds.nodata)
        assert ds.descriptions[0] == "start of season (day of year 2023, 1 = 2023-01-01)"
        assert ds.descriptions[5] == "length of season (days, end - start)"
        assert ds.tags()["pimc_product"] == "phenology" and ds.tags()["pimc_indices"] == "ndvi"
        assert [ds.tags(i + 1)["metric"] for i in range(ds.count)] == list(METRICS)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        a = ds.read()
    ok = np.isfinite(a[0])
    assert np.array_equal(ok, np.isfinite(a).all(axis=0))  # nodata in every band together
    lo, hi = np.nanmin(a[0]), np.nanmax(a[2])
    assert 1 <= lo and hi <= 365 and np.all(a[2][ok] > a[0][ok])
    # a pixel with fewer valid observations than min_valid is nodata
    ts = open_series(sample.manifest)
    grid = date_grid(ts.dates[0], ts.dates[-1], 5)
    ser = index_series(ts.read(Window(0, 0, 64, 64)), ("ndvi",), min_valid=5, target_dates=grid)
    assert not ok[~ser.ok].any()
    qml = phenology_tif.with_suffix(".qml").read_text()
    assert 'type="singlebandpseudocolor" band="1"' in qml and "day " in qml


def test_qgis_opens_the_map_with_its_style(qgis_app, phenology_tif):
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(phenology_tif), "phenology")
    assert layer.isValid()
    _, ok = layer.loadDefaultStyle()
    assert ok
    r = layer.renderer()
    assert r.type() == "singlebandpseudocolor" and r.band() == 1
    assert 1 <= r.classificationMin() < r.classificationMax() <= 366
    assert layer.dataProvider().bandCount() == 7


def test_fewer_dates_than_min_valid_is_refused_before_writing(sample, tmp_path):
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.phenology import phenology_map

    with pytest.raises(ConfigError, match="24 dates are too few for phenology metrics"):
        phenology_map(open_series(sample.manifest), None, tmp_path / "o", params=PhenologyParams(min_valid=25))
    assert left_nothing(tmp_path / "o")


def _cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # a usage error of the parser
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_map_of_a_bbox(capsys, sample, tmp_path):
    with rasterio.open(sample.images[0]) as ds:
        b = ds.bounds
    code, out, err = _cli(capsys, "phenology", sample.manifest, "--out", tmp_path / "o", "--quiet", "--bbox",
                          b.left, b.bottom, b.left + 200, b.bottom + 100, "--step-days", 10)
    assert code == 0, err
    assert "phenology.tif, phenology.qml" in out
    with rasterio.open(tmp_path / "o" / "phenology.tif") as ds:
        assert (ds.width, ds.height, ds.count) == (20, 10, 7)
        assert "10-day grid" in ds.tags()["pimc_phenology"]


@pytest.mark.parametrize(("extra", "message"), [
    (("--index", "ndwi2"), "--index: unknown index 'ndwi2'"),
    (("--fraction", "1.5"), "fraction must be"),
    (("--min-valid", "0"), "--min-valid must be a positive integer"),
])
def test_cli_bad_options_are_one_line(capsys, sample, tmp_path, extra, message):
    code, out, err = _cli(capsys, "phenology", sample.manifest, "--out", tmp_path / "o", *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert left_nothing(tmp_path / "o")


def test_cli_too_few_dates_is_one_line(capsys, tmp_path):
    from pimc_core.datasets.synthetic import make_synthetic

    s = make_synthetic(tmp_path / "s", size=16, n_dates=3, seed=1)
    code, out, err = _cli(capsys, "phenology", s.manifest, "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "3 dates are too few for phenology metrics" in err
    assert left_nothing(tmp_path / "o")


def _crop_pixel(sample) -> tuple[int, int]:
    """A maize pixel (one clear season) of the sample."""
    rows, cols = np.nonzero(sample.scene.labels() == 2)
    return int(rows[0]), int(cols[0])


def test_the_pixel_report_marks_start_peak_and_end_on_the_curve(sample):
    from pimc_core.io.timeseries import open_series
    from pimc_core.viz.pixel_report import pixel_result

    ts = open_series(sample.manifest)
    r, c = _crop_pixel(sample)
    res = pixel_result(ts, r, c, ("ndvi", "evi"))
    truth = sample.scene.season()
    assert res.season["index"] == "ndvi" and res.season["year"] == 2023
    for k in ("sos", "pos", "eos"):
        assert abs(res.season[k] - truth[k][r, c]) <= 15, k
    ax = res.figure().axes[0]
    assert {t.get_text() for t in ax.texts} == {"start", "peak", "end"}
    star = next(line for line in ax.get_lines() if line.get_label() == "NDVI season: start, peak, end")
    day = (np.datetime64(star.get_xdata()[0], "D") - np.datetime64("2023-01-01", "D")).astype(int) + 1
    assert day == round(res.season["pos"]) and star.get_ydata()[0] == pytest.approx(res.season["peak"])
    # water has no season: nothing is marked
    wr, wc = (int(v[0]) for v in np.nonzero(sample.scene.labels() == 9))
    water = pixel_result(ts, wr, wc, ("ndvi",))
    assert water.season is None and not water.figure().axes[0].texts


def test_the_panels_pixel_inspector_shows_the_season(plugin, sample):  # noqa: F811 (the fixture)
    dock = plugin.dock
    dock.set_source_path(str(sample.manifest))
    dock.set_indices(("ndvi",))
    r, c = _crop_pixel(sample)
    with rasterio.open(sample.images[0]) as ds:
        x, y = ds.xy(r, c)
    assert click(plugin, x, y), dock.pixel_label.text()
    assert dock.last_result.season is not None
    assert {t.get_text() for t in dock.figure_view.figure.axes[0].texts} == {"start", "peak", "end"}
