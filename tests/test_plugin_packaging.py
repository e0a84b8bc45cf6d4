"""The plugin zip and its installation, then the installed plugin headless through qgis_process:
enable, list the algorithms, run pimc:indices, check the GeoTIFF."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

ROOT = Path(__file__).resolve().parent.parent
QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # the /usr/bin/qgis_process wrapper passes a flag 3.22 rejects


def _scripts():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import install_plugin
        import plugin_zip
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return plugin_zip, install_plugin


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    plugin_zip, _ = _scripts()
    return plugin_zip.build(tmp_path_factory.mktemp("dist") / "pimc.zip")


def test_zip_layout(built_zip, tmp_path):
    plugin_zip, _ = _scripts()
    names = zipfile.ZipFile(built_zip).namelist()
    files = [n for n in names if not n.endswith("/")]
    assert all(n.startswith("pimc/") for n in names)
    for must in ("pimc/__init__.py", "pimc/metadata.txt", "pimc/requirements.txt", "pimc/icons/pimc.svg",
                 "pimc/provider/provider.py", "pimc/ext/pimc_core/__init__.py",
                 "pimc/ext/pimc_core/io/timeseries.py", "pimc/ext/pimc_core/series/recurrence.py"):
        assert must in files, must
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so", ".pyd", ".dll", ".exe"))]
    assert not [n for n in files if Path(n).suffix not in plugin_zip.TEXT_SUFFIXES and Path(n).name != "LICENSE"]  # no binaries at all
    assert zipfile.ZipFile(built_zip).read("pimc/metadata.txt") == (ROOT / "metadata.txt").read_bytes()
    core_py = sorted(p.relative_to(ROOT / "pimc_core").as_posix() for p in (ROOT / "pimc_core").rglob("*.py")
                     if "__pycache__" not in p.parts)
    assert sorted(n[len("pimc/ext/pimc_core/"):] for n in files if n.startswith("pimc/ext/")) == core_py
    again = plugin_zip.build(tmp_path / "again.zip")  # reproducible: same sources, same bytes
    assert again.read_bytes() == built_zip.read_bytes()


def test_install_locations(built_zip, tmp_path, monkeypatch):
    _, install_plugin = _scripts()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("QGIS_PROFILE_DIR", raising=False)
    assert install_plugin.main(["--zip", str(built_zip)]) == 0
    default = tmp_path / "home/.local/share/QGIS/QGIS3/profiles/default/python/plugins/pimc"
    assert (default / "metadata.txt").is_file() and (default / "ext/pimc_core/__init__.py").is_file()

    monkeypatch.setenv("QGIS_PROFILE_DIR", str(tmp_path / "cfg"))
    (tmp_path / "cfg/profiles/default/python/plugins/pimc").mkdir(parents=True)
    (tmp_path / "cfg/profiles/default/python/plugins/pimc/stale.py").write_text("# an older version")
    (tmp_path / "cfg/profiles/default/python/plugins/other").mkdir()
    assert install_plugin.main(["--zip", str(built_zip)]) == 0
    plugins = tmp_path / "cfg/profiles/default/python/plugins"
    assert (plugins / "pimc/__init__.py").is_file() and not (plugins / "pimc/stale.py").exists()
    assert sorted(p.name for p in plugins.iterdir()) == ["other", "pimc"]  # nothing else touched


def qgis_process(config: Path, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    """Run qgis_process.bin headless in the QGIS_CUSTOM_CONFIG_PATH ``config``; Debian's
    /usr/bin/python3 gets the venv's packages (rasterio, torch …) through PYTHONPATH."""
    env = dict(os.environ)
    env.update(
        QGIS_CUSTOM_CONFIG_PATH=str(config), QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=sysconfig.get_paths()["purelib"],
    )
    env.pop("QGIS_OPTIONS_PATH", None)  # set by pytest-qgis for this process only
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_qgis_process_runs_installed_plugin(built_zip, tmp_path, multiband_stack, monkeypatch):
    _, install_plugin = _scripts()
    folder, dates, dn = multiband_stack
    cfg = tmp_path / "qgis-config"
    monkeypatch.setenv("QGIS_PROFILE_DIR", str(cfg))
    assert install_plugin.main(["--zip", str(built_zip)]) == 0

    r = qgis_process(cfg, "plugins", "enable", "pimc")
    assert r.returncode == 0 and "Enabled pimc (PIMC)" in r.stdout, r.stdout + r.stderr

    r = qgis_process(cfg, "list")
    assert r.returncode == 0, r.stderr
    lines = [ln.strip() for ln in r.stdout.splitlines()]
    assert "pimc:indices\tVegetation-index stack" in lines
    assert "pimc:recurrenceplot\tPixel recurrence plots" in lines

    out = tmp_path / "out" / "x.tif"
    out.parent.mkdir()
    r = qgis_process(cfg, "run", "pimc:indices", "--", f"SOURCE={folder / 'manifest.yaml'}", "INDICES=ndvi",
                     f"OUTPUT={out}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 dates 2023-01-05 … 2023-03-01" in r.stdout
    with rasterio.open(out) as ds:
        assert ds.driver == "GTiff" and ds.count == 3 and ds.crs.to_epsg() == 32631
        got = ds.read()
    red, nir = dn[:, 2] * 1e-4, dn[:, 3] * 1e-4
    expect = (nir - red) / (nir + red)
    expect[1, 0, 0] = expect[2, 1, 1] = np.nan
    np.testing.assert_allclose(got, expect, rtol=1e-5, equal_nan=True)

    r = qgis_process(cfg, "run", "pimc:indices", "--", f"SOURCE={tmp_path / 'nope'}", f"OUTPUT={out}.2.tif")
    assert r.returncode != 0 and f"{tmp_path / 'nope'}: no such file or folder" in r.stdout + r.stderr
