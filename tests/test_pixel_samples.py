"""Pixel sampling: stratified counts, few-valid exclusion, patches at borders, labels from
rasters and vector files, date grids, the median composite."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.io.classes import load_class_table
from pimc_core.io.labels import read_labels
from pimc_core.io.timeseries import open_series
from pimc_core.learn.sampling import PixelSamples, sample_pixels
from pimc_core.series.composites import (
    composite_of,
    median_composite,
    reflect_fill_patches,
    season_groups,
    seasonal_band_names,
    seasonal_composite,
    seasonal_source_bands,
    stack_reference,
)
from pimc_core.series.gapfill import grid_dates
from tests.conftest import TRANSFORM, write_tif

DESCR = ["blue", "green", "red", "nir", "swir1", "SCL"]


def make_stack(folder, dn: np.ndarray, dates, *, bands=DESCR):
    """(T, B+1, H, W) uint16 DN (last band SCL) → dated files + manifest; returns the manifest path."""
    items = []
    for d, a in zip(dates, dn):
        write_tif(folder / f"S2_{d:%Y%m%d}.tif", a, nodata=0, descriptions=bands)
        items.append(f"  - {{date: {d.isoformat()}, path: S2_{d:%Y%m%d}.tif}}\n")
    mapping = ", ".join(f"{b}: {i + 1}" for i, b in enumerate(bands[:-1]))
    (folder / "manifest.yaml").write_text(
        "sensor: sentinel2-l2a\nscale: 0.0001\noffset: 0.0\nnodata: 0\n"
        f"bands: {{{mapping}}}\nmask: {{band: {len(bands)}, valid: [4, 5, 6]}}\nitems:\n" + "".join(items)
    )
    return folder / "manifest.yaml"


@pytest.fixture
def stack(tmp_path):
    """8 dates, 12 x 10 px; pixel (0, 0) clear on only 2 dates; reflectance constant in time
    except clouds, so the median composite is the clear image."""
    rng = np.random.default_rng(1)
    T, H, W = 8, 12, 10
    dates = [dt.date(2023, 1, 1) + dt.timedelta(days=20 * i) for i in range(T)]
    clear = rng.integers(300, 4000, size=(5, H, W)).astype(np.uint16)
    clear[3] = clear[2] + rng.integers(500, 3000, size=(H, W)).astype(np.uint16)  # nir > red
    dn = np.repeat(clear[None], T, axis=0)
    dn = np.concatenate([dn, np.full((T, 1, H, W), 4, np.uint16)], axis=1)
    dn[2:, 5, 0, 0] = 9  # cloud on 6 of 8 dates at (0, 0)
    dn[2:, :5, 0, 0] = 9000  # and bright (must be ignored)
    dn[1, 5, 5, 5] = 8  # one cloudy date elsewhere
    dn[1, :5, 5, 5] = 9000
    manifest = make_stack(tmp_path, dn, dates)
    return open_series(manifest), clear.astype(np.float32) * 1e-4, dates


def test_median_composite_ignores_invalid_observations(stack):
    ts, clear, _ = stack
    comp = median_composite(ts, block=4)
    np.testing.assert_allclose(comp, clear, rtol=1e-6)
    obs = ts.read()
    np.testing.assert_allclose(composite_of(obs.reflectance, obs.valid), clear, rtol=1e-6)


def test_few_valid_pixels_are_excluded(stack):
    ts, _, _ = stack
    s = sample_pixels(ts, None, min_valid=3, patch_size=0)
    assert len(s) == 12 * 10 - 1
    assert not ((s.rows == 0) & (s.cols == 0)).any()
    assert s.n_valid.min() >= 3
    assert np.isfinite(s.series).all() and s.series.shape == (119, 3, 8)
    s2 = sample_pixels(ts, None, min_valid=2, patch_size=0)
    assert len(s2) == 120
    # random mode returns exactly n (fewer only when not enough pixels qualify)
    assert len(sample_pixels(ts, 50, patch_size=0, seed=3)) == 50


def test_patches_at_borders_are_reflect_padded(stack):
    ts, clear, _ = stack
    s = sample_pixels(ts, None, min_valid=2, patch_size=5, block=4)
    padded = np.pad(clear, ((0, 0), (2, 2), (2, 2)), mode="reflect")
    assert s.patches.shape == (120, 5, 5, 5)
    for i in range(len(s)):
        r, c = s.rows[i], s.cols[i]
        np.testing.assert_allclose(s.patches[i], padded[:, r:r + 5, c:c + 5], rtol=1e-6)
    # corner pixel: the patch mirrors the raster without repeating the border pixel
    i = int(np.flatnonzero((s.rows == 0) & (s.cols == 0))[0])
    np.testing.assert_allclose(s.patches[i][:, 0, 0], clear[:, 2, 2], rtol=1e-6)
    # even patch size: centre at k // 2, as in map inference
    s4 = sample_pixels(ts, None, min_valid=2, patch_size=4, block=256)
    padded4 = np.pad(clear, ((0, 0), (2, 1), (2, 1)), mode="reflect")
    j = int(np.flatnonzero((s4.rows == 11) & (s4.cols == 9))[0])
    np.testing.assert_allclose(s4.patches[j], padded4[:, 11:15, 9:13], rtol=1e-6)


def test_reflect_fill_reproduces_training_padding(stack):
    ts, clear, _ = stack
    padded = np.pad(clear, ((0, 0), (3, 3), (3, 3)), mode="reflect")
    nanpad = np.pad(clear, ((0, 0), (3, 3), (3, 3)), constant_values=np.nan)
    rows, cols = np.array([0, 0, 11, 5, 11]), np.array([0, 9, 0, 5, 9])
    want = np.stack([padded[:, r:r + 7, c:c + 7] for r, c in zip(rows, cols)])
    got = reflect_fill_patches(np.stack([nanpad[:, r:r + 7, c:c + 7] for r, c in zip(rows, cols)]))
    np.testing.assert_allclose(got, want)


def test_patches_from_a_reference_raster(stack, tmp_path):
    ts, clear, _ = stack
    ref = np.arange(2 * 12 * 10, dtype=np.float32).reshape(2, 12, 10)
    write_tif(tmp_path / "ref.tif", ref, descriptions=["red", "nir"])
    s = sample_pixels(ts, 20, min_valid=2, patch_size=3, reference=tmp_path / "ref.tif", seed=0)
    assert s.patch_bands == ("red", "nir") and s.reference.endswith("ref.tif")
    padded = np.pad(ref, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    for i in range(len(s)):
        np.testing.assert_array_equal(s.patches[i], padded[:, s.rows[i]:s.rows[i] + 3, s.cols[i]:s.cols[i] + 3])
    with pytest.raises(BandError, match="swir2"):
        sample_pixels(ts, 5, patch_bands=("swir2",), reference=tmp_path / "ref.tif")
    with pytest.raises(BandError, match="swir2"):
        sample_pixels(ts, 5, patch_bands=("swir2",))


def test_stratified_counts_and_label_raster(stack, tmp_path):
    ts, _, _ = stack
    lab = np.zeros((12, 10), np.uint8)
    lab[:4] = 1  # 40 px (one of them few-valid)
    lab[6:8, :3] = 2  # 6 px
    lab[10:, 5:] = 3  # 10 px
    write_tif(tmp_path / "labels.tif", lab, nodata=0)
    lm = read_labels(tmp_path / "labels.tif", ts.grid)
    assert lm.counts() == {1: 40, 2: 6, 3: 10}
    assert [c["name"] for c in lm.classes] == ["class 1", "class 2", "class 3"]
    s = sample_pixels(ts, labels=lm, per_class=8, min_valid=3, patch_size=3, seed=2)
    assert s.class_counts() == {1: 8, 2: 6, 3: 8}
    assert (lab[s.rows, s.cols] == s.labels).all()
    everything = sample_pixels(ts, labels=lm, per_class=None, min_valid=3, patch_size=0)
    assert everything.class_counts() == {1: 39, 2: 6, 3: 10}  # (0, 0) has 2 valid observations
    # the same seed gives the same sample
    again = sample_pixels(ts, labels=lm, per_class=8, min_valid=3, patch_size=3, seed=2)
    np.testing.assert_array_equal(again.rows, s.rows)
    # joining samples of two stacks, subsetting
    both = PixelSamples.concat([s, again])
    assert len(both) == 2 * len(s) and set(both.source_id.tolist()) == {0, 1}
    assert len(both.subset(both.labels == 2)) == 12


def test_label_raster_on_another_grid_is_refused(stack, tmp_path):
    ts, _, _ = stack
    write_tif(tmp_path / "other.tif", np.ones((12, 11), np.uint8))
    with pytest.raises(InputError, match="shape"):
        read_labels(tmp_path / "other.tif", ts.grid)
    write_tif(tmp_path / "big.tif", np.full((12, 10), 300, np.uint16))
    with pytest.raises(ConfigError, match="0..255"):
        read_labels(tmp_path / "big.tif", ts.grid)


def _polygon_lonlat(r0, c0, r1, c1):
    """Pixel-edge rectangle (rows r0..r1, cols c0..c1, exclusive ends) in EPSG:4326."""
    from rasterio.warp import transform

    xs, ys = [], []
    for r, c in ((r0, c0), (r0, c1), (r1, c1), (r1, c0), (r0, c0)):
        x, y = TRANSFORM @ (c, r)
        xs.append(x)
        ys.append(y)
    lon, lat = transform("EPSG:32631", "EPSG:4326", xs, ys)
    return [[list(p) for p in zip(lon, lat)]]


def test_vector_labels_with_class_field(stack, tmp_path):
    ts, _, _ = stack
    feats = [
        {"type": "Feature", "properties": {"crop": "wheat", "code": 2},
         "geometry": {"type": "Polygon", "coordinates": _polygon_lonlat(1, 1, 4, 5)}},
        {"type": "Feature", "properties": {"crop": "maize", "code": 7},
         "geometry": {"type": "Polygon", "coordinates": _polygon_lonlat(8, 6, 11, 9)}},
    ]
    path = tmp_path / "fields.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    lm = read_labels(path, ts.grid, class_field="code")
    want = np.zeros((12, 10), np.int32)
    want[1:4, 1:5] = 2
    want[8:11, 6:9] = 7
    np.testing.assert_array_equal(lm.array, want)
    # class names, matched to a class table
    (tmp_path / "classes.json").write_text(json.dumps(
        [{"id": 1, "name": "Wheat", "color": "#ffcc00"}, {"id": 5, "name": "maize"}]))
    table = load_class_table(tmp_path / "classes.json")
    lm2 = read_labels(path, ts.grid, class_field="crop", classes=table)
    assert lm2.counts() == {1: 12, 5: 9}
    assert lm2.classes[0] == {"id": 1, "name": "Wheat", "color": "#ffcc00"}
    # names without a table: ids in alphabetical order
    lm3 = read_labels(path, ts.grid, class_field="crop")
    assert {c["id"]: c["name"] for c in lm3.classes} == {1: "maize", 2: "wheat"}
    s = sample_pixels(ts, labels=lm3, per_class=5, patch_size=0)
    assert s.class_counts() == {1: 5, 2: 5}
    with pytest.raises(ConfigError, match="no field 'kind'.*crop"):
        read_labels(path, ts.grid, class_field="kind")
    with pytest.raises(ConfigError, match="class-field"):
        read_labels(path, ts.grid)


def test_date_grid_resampling(stack):
    ts, _, dates = stack
    target = grid_dates(dates[0], 12, 10, start_doy=5)
    assert target[0] == dt.date(2023, 1, 5) and target[1] == dt.date(2023, 1, 15) and len(target) == 12
    s = sample_pixels(ts, 10, target_dates=target, patch_size=0, seed=1)
    assert s.series.shape == (10, 3, 12) and s.dates == tuple(target)
    with pytest.raises(ConfigError, match="step_days"):
        grid_dates(dates[0], 3, 0)


def test_missing_index_band_is_a_band_error(tmp_path):
    T, H, W = 4, 6, 6
    dates = [dt.date(2023, 3, 1) + dt.timedelta(days=10 * i) for i in range(T)]
    dn = np.full((T, 4, H, W), 1000, np.uint16)
    dn[:, 2] = 3000
    dn[:, 3] = 4
    manifest = make_stack(tmp_path, dn, dates, bands=["green", "red", "nir", "SCL"])
    ts = open_series(manifest)
    with pytest.raises(BandError, match="blue"):
        sample_pixels(ts, 5, indices=("ndvi", "evi"))
    s = sample_pixels(ts, 5, indices=("ndvi",), patch_size=3)
    assert s.series.shape == (5, 1, 4) and s.patch_bands == ("green", "red", "nir")


def test_season_groups_cut_the_span_into_equal_periods():
    d0 = dt.date(2023, 1, 1)
    dates = [d0 + dt.timedelta(days=n) for n in (0, 10, 80, 95, 200, 260, 300, 364)]
    # 364 days / 4 = 91-day periods: [0, 91) [91, 182) [182, 273) [273, 364]
    assert season_groups(dates, 4).tolist() == [0, 0, 0, 1, 2, 2, 3, 3]
    assert season_groups(dates, 1).tolist() == [0] * 8
    assert season_groups([d0, d0], 3).tolist() == [0, 0]  # no span: one period
    with pytest.raises(ConfigError):
        season_groups(dates, 0)


def test_reference_specs():
    assert stack_reference("median") == 1 and stack_reference(None) == 1
    assert stack_reference("seasonal:4") == 4
    assert stack_reference("/data/ref.tif") == 0
    for bad in ("seasonal:", "seasonal:x", "seasonal:0", "seasonal:13"):
        with pytest.raises(ConfigError, match="seasonal:K"):
            stack_reference(bad)
    names = seasonal_band_names(("red", "nir"), 3)
    assert names == ("s1_red", "s1_nir", "s2_red", "s2_nir", "s3_red", "s3_nir")
    assert seasonal_source_bands(names, 3) == ("red", "nir")
    assert seasonal_band_names(("red",), 1) == ("red",) and seasonal_source_bands(("red",), 1) == ("red",)
    with pytest.raises(ConfigError):
        seasonal_source_bands(("red", "nir", "swir1"), 2)


def test_seasonal_composite_is_the_median_of_each_period():
    rng = np.random.default_rng(3)
    T, B, H, W = 12, 2, 3, 4
    dates = [dt.date(2023, 1, 1) + dt.timedelta(days=30 * i) for i in range(T)]
    refl = rng.uniform(0, 1, (T, B, H, W)).astype(np.float32)
    valid = rng.uniform(size=(T, H, W)) > 0.3
    valid[:, 0, 0] = False
    valid[0:3, 1, 1] = False  # no valid observation in the first period there
    comp = seasonal_composite(refl, valid, dates, 2)
    assert comp.shape == (2 * B, H, W) and comp.dtype == np.float32
    g = season_groups(dates, 2)
    for k in range(2):
        for b in range(B):
            for r in range(H):
                for c in range(W):
                    v = refl[(g == k) & valid[:, r, c], b, r, c]
                    want = np.median(v) if v.size else np.nan
                    np.testing.assert_allclose(comp[k * B + b, r, c], want, rtol=1e-6, equal_nan=True)
    assert np.isnan(comp[:, 0, 0]).all()
    np.testing.assert_array_equal(seasonal_composite(refl, valid, dates, 1), composite_of(refl, valid))
    with pytest.raises(ConfigError, match="dates"):
        seasonal_composite(refl, valid, dates[:5], 2)


def test_seasonal_patches(stack):
    ts, clear, dates = stack
    s = sample_pixels(ts, 20, patch_size=3, patch_bands=("red", "nir"), reference="seasonal:2", seed=1)
    assert s.reference == "seasonal:2"
    assert s.patch_bands == ("s1_red", "s1_nir", "s2_red", "s2_nir")
    assert s.patches.shape == (len(s), 4, 3, 3)
    # reflectance is constant in time apart from clouds: both periods show the clear image
    for i in range(len(s)):
        r, c = s.rows[i], s.cols[i]
        if 1 <= r < 11 and 1 <= c < 9 and (r, c) != (5, 5):
            centre = s.patches[i, :, 1, 1]
            np.testing.assert_allclose(centre, np.tile(clear[[2, 3], r, c], 2), rtol=1e-6)
