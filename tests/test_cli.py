"""The `pimc` command line: outputs, and one clear line + non-zero exit on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rasterio

from pimc_core.cli import main
from pimc_core.datasets.landsat_sample import landsat_sample_dir
from tests.conftest import write_tif


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_prints_dates_bands_crs_size(capsys, multiband_stack):
    folder, _, _ = multiband_stack
    code, out, err = run(capsys, "info", folder / "manifest.yaml")
    assert code == 0, err
    assert "3 from 2023-01-05 to 2023-03-01" in out
    assert "blue, green, red, nir, swir1" in out
    assert "EPSG:32631" in out and "5 x 4 px" in out
    assert "valid:" in out


def test_indices_writes_one_band_per_index_and_date(capsys, multiband_stack, tmp_path):
    folder, dates, dn = multiband_stack
    out_tif = tmp_path / "idx.tif"
    code, out, err = run(capsys, "indices", folder / "manifest.yaml", "--out", out_tif, "--index", "ndvi,evi", "--quiet")
    assert code == 0, err
    with rasterio.open(out_tif) as ds:
        assert ds.count == 2 * len(dates)
        assert ds.descriptions[0] == "NDVI 2023-01-05" and ds.descriptions[3] == "EVI 2023-01-05"
        ndvi = ds.read(1)
        evi_d2 = ds.read(5)
    red, nir = dn[0, 2] * 1e-4, dn[0, 3] * 1e-4
    np.testing.assert_allclose(ndvi, (nir - red) / (nir + red), rtol=1e-5)
    assert np.isnan(evi_d2[0, 0])  # cloud on date 2 at (0, 0)


def test_rp_writes_png_and_npy(capsys, multiband_stack, tmp_path):
    folder, dates, _ = multiband_stack
    prefix = tmp_path / "px"
    code, out, err = run(capsys, "rp", folder / "manifest.yaml", "--x", 600025, "--y", 4999985, "--out", prefix)
    assert code == 0, err
    plots = np.load(tmp_path / "px.npy")
    assert plots.shape == (3, 3, 3) and plots.dtype == np.float32
    assert (tmp_path / "px.png").stat().st_size > 10_000
    np.testing.assert_allclose(np.diagonal(plots, axis1=1, axis2=2), 0.0)


def test_rp_on_real_landsat_with_lonlat(capsys, tmp_path):
    prefix = tmp_path / "ls"
    code, out, err = run(capsys, "rp", landsat_sample_dir(), "--x", -106.914, "--y", 40.288, "--crs", "EPSG:4326",
                         "--out", prefix, "--index", "ndvi")
    assert code == 0, err
    assert np.load(tmp_path / "ls.npy").shape == (1, 105, 105)


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["info", "{folder}/missing.yaml"], "missing.yaml: no such file"),
        (["rp", "{folder}/manifest.yaml", "--x", "0", "--y", "0", "--out", "{tmp}/p"], "outside the raster"),
        (["rp", "{folder}/manifest.yaml", "--x", "600025", "--y", "4999985", "--crs", "EPSG:0", "--out", "{tmp}/p"], "unknown CRS"),
        (["indices", "{folder}/manifest.yaml", "--out", "{tmp}/i.tif", "--index", "ndwi"], "unknown index 'ndwi'"),
        (["info", "{folder}/manifest.yaml", "--sensor", "modis"], "unknown sensor preset 'modis'"),
        (["info", "{folder}", "--bands", "red=x"], "--bands"),
    ],
)
def test_user_errors_are_one_line_and_nonzero(capsys, multiband_stack, tmp_path, argv, pattern):
    folder, _, _ = multiband_stack
    argv = [a.format(folder=folder, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pimc: error:"), err
    assert pattern in lines[0]
    assert not list(tmp_path.glob("i.tif*")) and not list(tmp_path.glob("p.*"))


def test_evi_without_blue_names_the_band(capsys, tmp_path):
    code, out, err = run(capsys, "indices", landsat_sample_dir(), "--out", tmp_path / "e.tif", "--index", "evi")
    assert code == 2
    assert "'blue'" in err and "evi2" in err
    assert not (tmp_path / "e.tif").exists()


def test_mismatched_grid_and_not_a_raster_via_subprocess(multiband_stack, tmp_path):
    folder, _, dn = multiband_stack
    write_tif(folder / "S2_20230301.tif", dn[2][:, :2, :2], nodata=0)
    proc = subprocess.run([sys.executable, "-m", "pimc_core.cli", "info", str(folder / "manifest.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "S2_20230301.tif: shape 2x2 instead of 4x5" in proc.stderr
    (folder / "S2_20230301.tif").write_bytes(b"GIF89a not a tiff")
    proc = subprocess.run([sys.executable, "-m", "pimc_core.cli", "info", str(folder / "manifest.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "S2_20230301.tif: not a readable raster" in proc.stderr
