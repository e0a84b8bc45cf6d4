"""Sentinel-1 GRD sources: the ``sentinel1-grd`` preset, linear or dB backscatter, nodata and
border noise masked, and the radar series (VV/VH dB, their ratio, RVI) checked against spyndex."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import spyndex

from pimc_core.errors import ConfigError
from pimc_core.io.backscatter import backscatter_valid, db_to_linear, linear_to_db
from pimc_core.io.sensors import detect_sensor
from pimc_core.io.timeseries import open_series
from pimc_core.series.indices import INDICES, compute_indices
from pimc_core.series.radar import rvi, to_db, vh_vv_db
from tests.conftest import write_tif

DATES = [dt.date(2023, 4, 2), dt.date(2023, 4, 14), dt.date(2023, 4, 26)]


def _sigma0(seed: int = 0) -> np.ndarray:
    """(T, 2, 4, 5) linear σ⁰ (VV, VH) with a nodata pixel and a border-noise pixel."""
    rng = np.random.default_rng(seed)
    vv = rng.uniform(0.02, 0.3, size=(3, 4, 5))
    vh = vv * rng.uniform(0.1, 0.4, size=(3, 4, 5))
    s = np.stack([vv, vh], axis=1).astype(np.float32)
    s[1, :, 0, 0] = 0.0  # nodata fill on date 2
    s[2, 1, 3, 4] = 10 ** (-34 / 10)  # VH below the −30 dB floor (border noise) on date 3
    return s


def _manifest(folder, units: str, s: np.ndarray, sensor: str = "sentinel1-grd") -> str:
    items = []
    for d, a in zip(DATES, s):
        data = a if units == "linear" else np.where(a > 0, 10 * np.log10(np.where(a > 0, a, 1)), 0).astype(np.float32)
        write_tif(folder / f"S1_{d:%Y%m%d}.tif", data, nodata=0)
        items.append(f"  - {{date: {d.isoformat()}, path: S1_{d:%Y%m%d}.tif}}")
    text = f"sensor: {sensor}\nunits: {units}\nnodata: 0\nbands: {{vv: 1, vh: 2}}\nitems:\n" + "\n".join(items) + "\n"
    (folder / "manifest.yaml").write_text(text)
    return str(folder / "manifest.yaml")


@pytest.mark.parametrize("units", ["linear", "db"])
def test_manifest_reads_linear_sigma0_with_nodata_and_border_noise_masked(tmp_path, units):
    s = _sigma0()
    ts = open_series(_manifest(tmp_path, units, s))
    assert ts.preset == "sentinel1-grd" and ts.band_names == ("vv", "vh")
    assert "Sentinel-1 GRD" in ts.reading and ("in dB" in ts.reading) == (units == "db")
    obs = ts.read()
    assert obs.reflectance.shape == (3, 2, 4, 5)
    expected_valid = np.ones((3, 4, 5), bool)
    expected_valid[1, 0, 0] = False
    expected_valid[2, 3, 4] = False
    np.testing.assert_array_equal(obs.valid, expected_valid)
    ok = np.broadcast_to(expected_valid[:, None], s.shape)
    np.testing.assert_allclose(obs.reflectance[ok], s[ok], rtol=1e-5)
    assert np.isnan(obs.reflectance[~ok]).all()


def test_folder_with_vv_vh_descriptions_is_detected_as_sentinel1(tmp_path):
    s = _sigma0(1)
    for d, a in zip(DATES, s):
        write_tif(tmp_path / f"{d:%Y-%m-%d}.tif", a[::-1].copy(), nodata=0, descriptions=["VH", "VV"])
    ts = open_series(tmp_path)
    assert ts.preset == "sentinel1-grd"
    obs = ts.read()
    np.testing.assert_allclose(obs.band("vv")[0], s[0, 0], rtol=1e-6)
    np.testing.assert_allclose(obs.band("vh")[0], s[0, 1], rtol=1e-6)
    assert not obs.valid[1, 0, 0]
    # dB files in a folder: the units are given when opening
    db = open_series(tmp_path, units="db").read()
    np.testing.assert_allclose(db.band("vv")[0], 10 ** (s[0, 0] / 10), rtol=1e-5)


def test_sensor_detected_from_product_names_and_descriptions():
    assert detect_sensor(["S1A_IW_GRDH_1SDV_20230402T055012.tif"]).name == "sentinel1-grd"
    assert detect_sensor(["x_20230402.tif"], ["VV", "VH"]).name == "sentinel1-grd"
    assert detect_sensor(["S2_20230402.tif"]).name == "sentinel2-l2a"


def test_bad_units_and_units_on_optical_sources_are_refused(tmp_path, multiband_stack):
    s1 = tmp_path / "s1"
    s1.mkdir()
    path = _manifest(s1, "linear", _sigma0())
    text = open(path).read().replace("units: linear", "units: decibel")
    (s1 / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"bad.yaml: units must be one of linear, db \(got 'decibel'\)"):
        open_series(s1 / "bad.yaml")
    folder, _dates, _dn = multiband_stack
    with pytest.raises(ConfigError, match="units: 'db' applies to radar presets only"):
        open_series(folder / "manifest.yaml", units="db")
    with pytest.raises(ConfigError, match="units must be one of linear, db"):
        open_series(path, units="natural")


def test_unit_conversion_round_trip_and_floor():
    lin = np.array([1e-4, 1e-3, 0.05, 1.0], np.float32)
    np.testing.assert_allclose(db_to_linear(linear_to_db(lin)), lin, rtol=1e-5)
    np.testing.assert_allclose(linear_to_db(lin), [-40, -30, -13.0103, 0], atol=1e-4)
    assert np.isnan(linear_to_db(np.array([0.0, -1.0]))).all()
    np.testing.assert_array_equal(backscatter_valid(np.array([0.0, 1e-4, 1e-3, np.nan, 0.2]), -30.0),
                                  [False, False, True, False, True])


def _spyndex(name, vv, vh):
    return np.asarray(spyndex.computeIndex(name, params={"VV": vv, "VH": vh}), dtype=np.float64)


def test_radar_series_match_the_catalogue():
    rng = np.random.default_rng(3)
    vv = rng.uniform(0.01, 0.5, 200)
    vh = rng.uniform(0.001, 0.1, 200)
    np.testing.assert_allclose(rvi(vv, vh), _spyndex("DpRVIVV", vv, vh), rtol=1e-12)
    np.testing.assert_allclose(vh_vv_db(vv, vh), 10 * np.log10(_spyndex("VHVVR", vv, vh)), rtol=1e-12)
    np.testing.assert_allclose(to_db(vv), 10 * np.log10(vv), rtol=1e-12)
    np.testing.assert_allclose(vh_vv_db(vv, vh), to_db(vh) - to_db(vv), atol=1e-12)
    assert np.isnan(to_db(np.array([0.0, -0.1]))).all()


def test_radar_series_in_the_index_registry_numpy_and_torch():
    import torch

    assert {"vv_db", "vh_db", "vh_vv_db", "rvi"} <= set(INDICES)
    bands = {"vv": np.array([[0.1, 0.0]], np.float32), "vh": np.array([[0.02, 0.01]], np.float32)}
    out = compute_indices(bands, ["vh_db", "rvi"])
    assert out.shape == (2, 1, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [10 * np.log10(0.02), 4 * 0.02 / 0.12], rtol=1e-5)
    assert out[1, 0, 1] == pytest.approx(4.0)
    t = compute_indices({k: torch.from_numpy(v) for k, v in bands.items()}, ["vh_db", "rvi"])
    np.testing.assert_allclose(t.numpy(), out, rtol=1e-6)
    with pytest.raises(Exception, match="index 'rvi' needs bands 'vv' and 'vh'"):
        compute_indices({"red": np.ones(2), "nir": np.ones(2)}, ["rvi"])
