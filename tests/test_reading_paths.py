"""One reading path: a manifest, a folder of the same files and a manifest without reading keys
(what the plugin writes for project layers) detect the same sensor, scale and quality mask, and
give the same class map; a source whose sensor cannot be told is refused, naming the flag."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pimc_core.cli import main
from pimc_core.errors import ConfigError
from pimc_core.io.dates import date_from_name
from pimc_core.io.manifest import write_manifest
from pimc_core.io.scenes import Radiometry, describe_reading
from pimc_core.io.sensors import PRESETS, QualityRule, UnknownSensor, detect_sensor
from pimc_core.io.timeseries import open_series
from tests.conftest import write_tif

COMPAT = Path(__file__).parent / "data" / "compat_89cc375"


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory):
    """The compat stack as its manifest, as a bare folder of its files, and as a manifest that
    only lists (date, file) as the plugin writes for project layers."""
    root = tmp_path_factory.mktemp("paths")
    folder = root / "folder"
    folder.mkdir()
    files = sorted((COMPAT / "stack").glob("S2_*.tif"))
    for f in files:
        shutil.copy(f, folder / f.name)
    (root / "layers").mkdir()
    layers = write_manifest(root / "layers" / "manifest.yaml", [(date_from_name(f.name), str(f)) for f in files])
    return {"manifest": COMPAT / "stack" / "manifest.yaml", "folder": folder, "layers": layers}


def test_the_three_sources_read_the_same_reflectance_and_mask(three_sources):
    series = {k: open_series(v) for k, v in three_sources.items()}
    ref = series["manifest"].read()
    for name, ts in series.items():
        assert ts.preset == "sentinel2-l2a", name
        assert ts.reading == "Sentinel-2 L2A, DN × 0.0001, SCL mask", name
        obs = ts.read()
        np.testing.assert_array_equal(obs.valid, ref.valid, err_msg=name)
        np.testing.assert_allclose(obs.reflectance, ref.reflectance, equal_nan=True, err_msg=name)
    assert 0.5 < ref.valid.mean() < 0.99  # the SCL band masks clouds in every path


def test_the_three_sources_give_the_same_class_map(three_sources, tmp_path, capsys):
    maps = {}
    for name, src in three_sources.items():
        code = main(["classify", str(src), "--model", str(COMPAT / "model.pimc"), "--out", str(tmp_path / name),
                     "--quiet"])
        assert code == 0, capsys.readouterr().err
        with rasterio.open(tmp_path / name / "classes.tif") as ds:
            maps[name] = ds.read(1)
    ref = maps["manifest"]
    assert len(np.unique(ref)) >= 5  # a real map, not one class
    for name, m in maps.items():
        assert (m == ref).mean() >= 0.99, (name, (m == ref).mean())


def test_info_says_what_is_assumed(three_sources, capsys):
    for src in three_sources.values():
        assert main(["info", str(src)]) == 0
        out = capsys.readouterr().out
        assert "reading:  Sentinel-2 L2A, DN × 0.0001, SCL mask" in out, out


def _undescribed(folder: Path, n: int = 3, dtype=np.uint16) -> Path:
    for i in range(n):
        data = np.full((4, 3, 3), 1000 + i, dtype)
        write_tif(folder / f"2023-0{i + 1}-15.tif", data)
    return folder


def test_integer_files_of_an_unknown_sensor_are_refused_naming_the_flags(tmp_path, capsys):
    _undescribed(tmp_path)
    with pytest.raises(UnknownSensor, match=r"cannot tell the sensor .* \(--sensor sentinel2-l2a"):
        open_series(tmp_path, bands={"blue": 1, "green": 2, "red": 3, "nir": 4})
    assert main(["info", str(tmp_path), "--bands", "blue=1,green=2,red=3,nir=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--sensor" in err and "--scale" in err, err
    ts = open_series(tmp_path, bands={"blue": 1, "green": 2, "red": 3, "nir": 4}, sensor="sentinel2-l2a")
    assert ts.reading == "Sentinel-2 L2A, DN × 0.0001, no quality mask"
    ts = open_series(tmp_path, bands={"red": 3, "nir": 4}, scale=1e-4)
    assert ts.reading == "no sensor preset, DN × 0.0001, no quality mask"


def test_floating_point_reflectance_needs_no_preset(tmp_path):
    _undescribed(tmp_path, dtype=np.float32)
    ts = open_series(tmp_path, bands={"red": 3, "nir": 4})
    assert ts.reading == "no sensor preset, reflectance as stored (× 1), no quality mask"


def test_a_manifest_without_reading_keys_for_an_unknown_sensor_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    _undescribed(tmp_path / "s")
    files = sorted((tmp_path / "s").glob("*.tif"))
    m = write_manifest(tmp_path / "m.yaml", [(date_from_name(f.name), str(f)) for f in files],
                       bands={"red": 3, "nir": 4})
    with pytest.raises(ConfigError, match="m.yaml: cannot tell the sensor"):
        open_series(m)
    assert open_series(m, sensor="landsat89-c2l2").reading == "Landsat 8/9 C2 L2, DN × 2.75e-05 − 0.2, no quality mask"


@pytest.mark.parametrize("names, descriptions, preset", [
    (["S2_20230107.tif"], ["blue", "green", "red", "nir", "SCL"], "sentinel2-l2a"),
    (["20230107.tif"], ["blue", "red", "nir", "SCL"], "sentinel2-l2a"),
    (["T31TCJ_20230105T105441_B04_10m.jp2"], [], "sentinel2-l2a"),
    (["x_2023.tif"], ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "QA_PIXEL"], None),  # OLI or TM? not told
    (["LC08_L2SP_198030_20230105_20230110_02_T1.tif"], ["SR_B2", "SR_B4", "SR_B5", "QA_PIXEL"], "landsat89-c2l2"),
    (["LT05_L2SP_198030_20080105_20200910_02_T1.tif"], ["SR_B1", "SR_B3", "SR_B4"], "landsat457-c2l2"),
    (["LE70350322008118EDC00_sr_band3.tif"], [], "landsat457-sr"),
    (["2023-01-05.tif"], ["blue", "red", "nir"], None),  # canonical names tell no sensor
])
def test_sensor_detection_from_names_and_band_descriptions(names, descriptions, preset):
    found = detect_sensor(names, descriptions)
    assert (found.name if found else None) == preset


def test_describe_reading():
    s2 = PRESETS["sentinel2-l2a"]
    rad = Radiometry(s2.scale, s2.offset, 0, s2.quality)
    assert describe_reading("sentinel2-l2a", rad, True) == "Sentinel-2 L2A, DN × 0.0001, SCL mask"
    assert describe_reading("sentinel2-l2a", rad, False) == "Sentinel-2 L2A, DN × 0.0001, no quality mask"
    own = Radiometry(1e-4, 0, None, QualityRule(valid=(4, 5)))
    assert describe_reading(None, own, True) == "no sensor preset, DN × 0.0001, quality mask {'valid': [4, 5]}"
