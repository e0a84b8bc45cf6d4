"""The time-series reader: three layouts, radiometry, masks, grids and clear errors."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
from rasterio.windows import Window

from pimc_core.datasets.landsat_sample import landsat_sample_dir
from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.io.grid import window_of_bounds
from pimc_core.io.timeseries import open_series
from tests.conftest import write_tif


def test_manifest_reads_reflectance_and_mask(multiband_stack):
    folder, dates, dn = multiband_stack
    ts = open_series(folder / "manifest.yaml")
    assert ts.dates == tuple(dates)
    assert ts.band_names == ("blue", "green", "red", "nir", "swir1")
    assert ts.grid.shape == (4, 5) and ts.grid.crs.to_epsg() == 32631
    obs = ts.read()
    assert obs.reflectance.shape == (3, 5, 4, 5) and obs.reflectance.dtype == np.float32
    assert obs.valid.shape == (3, 4, 5)
    # cloud (SCL 9) and nodata red make the whole observation invalid, NaN in every band
    assert not obs.valid[1, 0, 0] and np.isnan(obs.reflectance[1, :, 0, 0]).all()
    assert not obs.valid[2, 1, 1] and np.isnan(obs.reflectance[2, :, 1, 1]).all()
    assert obs.valid.sum() == 3 * 20 - 2
    np.testing.assert_allclose(obs.band("nir")[0], dn[0, 3] * 1e-4, rtol=1e-6)


def test_window_and_pixel_reads_match_full_read(multiband_stack):
    folder, _, _ = multiband_stack
    ts = open_series(folder / "manifest.yaml")
    full = ts.read()
    part = ts.read(Window(1, 2, 3, 2), bands=["red", "nir"])
    np.testing.assert_array_equal(part.reflectance, full.reflectance[:, 2:4, 2:4, 1:4])
    px = ts.read_pixel(3, 4)
    np.testing.assert_array_equal(px.reflectance[..., 0, 0], full.reflectance[:, :, 3, 4])


def test_folder_of_multiband_files_maps_bands_from_descriptions(multiband_stack):
    folder, dates, _ = multiband_stack
    (folder / "manifest.yaml").unlink()
    ts = open_series(folder, sensor="sentinel2-l2a")
    assert ts.dates == tuple(dates)
    assert set(ts.band_names) == {"blue", "green", "red", "nir", "swir1"}
    assert ts.radiometry.scale == pytest.approx(1e-4)
    assert not ts.read().valid[1, 0, 0]  # SCL found from the band description


def test_folder_with_explicit_band_mapping(multiband_stack):
    folder, _, dn = multiband_stack
    (folder / "manifest.yaml").unlink()
    ts = open_series(folder, bands={"red": 3, "nir": 4}, scale=1e-4)
    assert ts.band_names == ("red", "nir")
    np.testing.assert_allclose(ts.read().band("red")[0], dn[0, 2] * 1e-4, rtol=1e-6)


def test_sentinel2_baseline_offset(multiband_stack):
    folder, _, dn = multiband_stack
    ts = open_series(folder / "manifest.yaml", boa_offset=True, offset=None)
    # the manifest sets offset 0.0 explicitly, which wins over the preset's BOA offset
    assert ts.radiometry.offset == 0.0
    (folder / "manifest.yaml").unlink()
    ts = open_series(folder, sensor="sentinel2-l2a", boa_offset=True)
    assert ts.radiometry.offset == pytest.approx(-0.1)
    np.testing.assert_allclose(ts.read().band("blue")[0], dn[0, 0] * 1e-4 - 0.1, rtol=1e-5)


def test_date_folders_one_file_per_band_landsat_c2(tmp_path):
    qa = np.zeros((3, 3), np.uint16)
    qa[0, 0] = 1 << 3  # cloud bit
    for i, d in enumerate(["20230105", "20230121"]):
        pid = f"LC08_L2SP_198030_{d}_20230110_02_T1"
        sub = tmp_path / pid
        sub.mkdir()
        for b in range(1, 8):
            write_tif(sub / f"{pid}_SR_B{b}.TIF", np.full((3, 3), 10000 + 1000 * b + i, np.uint16), nodata=0)
        write_tif(sub / f"{pid}_QA_PIXEL.TIF", qa)
    ts = open_series(tmp_path)
    assert ts.preset == "landsat89-c2l2"
    assert ts.dates == (dt.date(2023, 1, 5), dt.date(2023, 1, 21))
    obs = ts.read()
    np.testing.assert_allclose(obs.band("red")[0, 1, 1], 14000 * 2.75e-5 - 0.2, rtol=1e-5)
    np.testing.assert_allclose(obs.band("nir")[1, 1, 1], 15001 * 2.75e-5 - 0.2, rtol=1e-5)
    assert not obs.valid[0, 0, 0] and obs.valid[0, 1, 1]


def test_real_landsat_sample_opens_with_folder_reader():
    ts = open_series(landsat_sample_dir())
    assert len(ts) == 105 and ts.grid.shape == (61, 61) and ts.grid.crs.to_epsg() == 32613
    assert ts.band_names == ("red", "nir", "swir1")
    assert ts.dates[0] == dt.date(2008, 4, 19)  # LE70350322008118EDC00: 2008, day 118
    obs = ts.read(Window(20, 20, 10, 10))
    assert 0.2 < obs.valid.mean() < 0.9  # clouds, shadows and fill masked by Fmask
    red = obs.band("red")
    assert np.nanmin(red) > -0.1 and np.nanmax(red) < 1.0


def test_grid_mismatch_names_the_offending_file(multiband_stack):
    folder, _, dn = multiband_stack
    write_tif(folder / "S2_20230301.tif", dn[2], crs="EPSG:32632", nodata=0,
              descriptions=["blue", "green", "red", "nir", "swir1", "SCL"])
    with pytest.raises(InputError, match=r"S2_20230301\.tif: CRS EPSG:32632 instead of EPSG:32631"):
        open_series(folder / "manifest.yaml")
    write_tif(folder / "S2_20230301.tif", dn[2][:, :3, :3], nodata=0)
    with pytest.raises(InputError, match=r"S2_20230301\.tif: shape 3x3 instead of 4x5"):
        open_series(folder / "manifest.yaml")


@pytest.mark.parametrize(
    "edit, error, pattern",
    [
        (lambda t: t.replace("nodata: 0", "nodata: 0\ncolour: red"), ConfigError, "unknown key.*'colour'"),
        (lambda t: t.replace("S2_20230214.tif", "S2_missing.tif"), InputError, "items\\[1\\].*not found.*S2_missing"),
        (lambda t: t.replace("nir: 4", "nir: 9"), BandError, "band 'nir' is mapped to band 9.*6 band"),
        (lambda t: t.replace("nir: 4", "infrared: 4"), ConfigError, "unknown band name 'infrared'"),
        (lambda t: t.replace("valid: [4, 5, 6]", "valid: [4], invalid: [9]"), ConfigError, "exactly one"),
        (lambda t: t.replace("sentinel2-l2a", "sentinel7"), ConfigError, "unknown sensor preset 'sentinel7'"),
        (lambda t: t + "  - {date: 2023-13-40, path: S2_20230105.tif}\n", ConfigError, "items\\[3\\].date"),
    ],
)
def test_bad_manifests_give_clear_errors(multiband_stack, edit, error, pattern):
    folder, _, _ = multiband_stack
    m = folder / "manifest.yaml"
    m.write_text(edit(m.read_text()))
    with pytest.raises(error, match=pattern):
        open_series(m)


def test_not_a_raster_empty_folder_and_undated_file(tmp_path, multiband_stack):
    folder, _, _ = multiband_stack
    (folder / "S2_20230401.tif").write_text("this is not a raster")
    with pytest.raises(InputError, match=r"S2_20230401\.tif: not a readable raster"):
        open_series(folder, sensor="sentinel2-l2a")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty"):
        open_series(empty)
    undated = tmp_path / "undated"
    undated.mkdir()
    shutil.copy(folder / "S2_20230105.tif", undated / "scene.tif")
    with pytest.raises(InputError, match=r"scene\.tif: no date in the file name"):
        open_series(undated)
    with pytest.raises(InputError, match="no such file"):
        open_series(tmp_path / "nope")


def test_point_lookup_and_bbox_window(multiband_stack):
    folder, _, _ = multiband_stack
    g = open_series(folder / "manifest.yaml").grid
    assert g.rowcol(600015.0, 4999975.0) == (2, 1)
    with pytest.raises(InputError, match="outside the raster"):
        g.rowcol(0.0, 0.0)
    lon, lat = 4.4, 45.1  # not inside; exercise the CRS transform path
    with pytest.raises(InputError, match="outside the raster"):
        g.rowcol(lon, lat, "EPSG:4326")
    with pytest.raises(ConfigError, match="unknown CRS"):
        g.rowcol(1, 2, "EPSG:999999")
    assert window_of_bounds(g, (600010, 4999970, 600030, 4999990)) == Window(1, 1, 2, 2)
    with pytest.raises(InputError, match="does not overlap"):
        window_of_bounds(g, (0, 0, 10, 10))
