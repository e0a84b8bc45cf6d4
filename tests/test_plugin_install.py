"""Installing missing packages on request, inside real QGIS and offline: the menu action shows
the plan and installs nothing before *Install*; then pip runs in a QGIS task against a local
wheel folder (a wheel this test writes) into a plugin-private folder put on ``sys.path``; the
hints are right per platform."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.qgis_helpers import flush_deletes

PROBE = "pimc_probe_pkg"


def write_wheel(folder: Path, name: str = PROBE, version: str = "1.0") -> Path:
    """A minimal pure-Python wheel: ``import {name}`` gives ``VALUE == 42``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: pimc-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A wheel folder as pip's only index (pip reads PIP_* variables), the probe package as
    the one missing dependency, a private package folder, sys.path restored afterwards."""
    from qgis_plugin import bootstrap

    wheels = tmp_path / "wheels"
    write_wheel(wheels)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIMC_PACKAGES_DIR", str(tmp_path / "packages"))
    monkeypatch.setattr(bootstrap, "OPTIONAL", bootstrap.OPTIONAL + (
        bootstrap.Dependency(PROBE, PROBE.replace("_", "-"), "the install test", required=False),))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path / "packages"
    sys.modules.pop(PROBE, None)


@pytest.fixture
def loaded(qgis_iface, qgis_new_project):
    import qgis_plugin

    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    plugin.unload()
    flush_deletes()


def wait_until(predicate, timeout: float = 120.0) -> None:
    from qgis.PyQt.QtCore import QCoreApplication

    t0 = time.monotonic()
    while not predicate():
        QCoreApplication.processEvents()
        time.sleep(0.01)
        assert time.monotonic() - t0 < timeout, "the install did not finish"


def test_install_action_installs_only_after_the_click(offline, loaded, qgis_iface):
    from qgis.core import Qgis

    target = offline
    assert [d.module for d in loaded.missing] == [PROBE]
    warnings = [m for m in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning) if PROBE.replace("_", "-") in m]
    assert warnings and "Install missing packages" in warnings[0]

    assert loaded.install_action in loaded.menu.actions()
    loaded.install_action.trigger()
    dialog = loaded.install_dialog
    plan = dialog.plan_view.toPlainText()
    assert "pimc-probe-pkg" in plan and str(target) in plan and "--target" in plan
    assert dialog.install_button.isEnabled() and not dialog.progress.isVisibleTo(dialog)
    assert not dialog.cancel_button.isVisibleTo(dialog)  # nothing to cancel yet
    time.sleep(0.3)
    assert not target.exists() and dialog.task is None  # nothing before the click

    dialog.install_button.click()
    assert dialog.progress.isVisibleTo(dialog) and dialog.cancel_button.isVisibleTo(dialog)
    wait_until(lambda: dialog.close_button.isEnabled())
    assert dialog.task.status == 0, "\n".join(dialog.task.log)
    assert (target / PROBE / "__init__.py").is_file()
    assert str(target) in sys.path and sys.path.index(str(target)) > 0  # after QGIS's own packages
    import pimc_probe_pkg

    assert pimc_probe_pkg.VALUE == 42
    assert dialog.progress.value() == 100 and not dialog.cancel_button.isVisibleTo(dialog)
    assert dialog.status_label.text().startswith(f"installed into {target}")
    assert "Successfully installed pimc-probe-pkg-1.0" in dialog.log_view.toPlainText()
    assert loaded.check_dependencies() == []


def test_failed_install_says_why_and_hides_the_bar(offline, loaded):
    from qgis_plugin import bootstrap

    bootstrap.OPTIONAL += (bootstrap.Dependency("pimc_not_there", "pimc-not-there", "nothing", required=False),)
    dialog = loaded.show_install_dialog()
    dialog.start()
    wait_until(lambda: dialog.close_button.isEnabled())
    assert dialog.task is None and dialog.install_button.isEnabled()
    assert not dialog.progress.isVisibleTo(dialog)  # no stale bar next to the error
    text = dialog.status_label.text()
    assert text.startswith("pip stopped with status 1") and "pimc-not-there" in text
    assert not (offline / PROBE).exists()  # pip installs all or nothing


def test_install_works_with_debian_externally_managed_python(tmp_path):
    """Debian 12's own Python refuses `pip install --user`; `--target` into PIMC's folder works."""
    from qgis_plugin.bootstrap import Dependency
    from qgis_plugin.installer import plan_install, run_pip

    system_python = "/usr/bin/python3" if Path("/usr/bin/python3").is_file() else sys.executable
    wheels = tmp_path / "wheels"
    write_wheel(wheels)
    local = ("--no-index", "--find-links", str(wheels))
    managed = list(Path("/usr/lib").glob("python3*/EXTERNALLY-MANAGED"))
    if managed:
        refused = subprocess.run([system_python, "-m", "pip", "install", "--user", *local, PROBE],
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr
    plan = plan_install([Dependency(PROBE, PROBE, "test")], target=tmp_path / "pkgs", pip_args=local,
                        python=system_python)
    lines: list[str] = []
    progress: list[float] = []
    assert run_pip(plan, lines.append, progress.append) == 0, "\n".join(lines)
    assert progress[-1] == 100.0 and progress == sorted(progress)
    out = subprocess.run([system_python, "-c", f"import sys; sys.path.append({str(tmp_path / 'pkgs')!r}); "
                          f"import {PROBE}; print({PROBE}.VALUE)"], capture_output=True, text=True)
    assert out.stdout.strip() == "42"


@pytest.mark.parametrize(("system", "expected", "absent"), [
    ("debian", "sudo apt install python3-rasterio", "pip install --user"),
    ("Windows", "OSGeo4W Shell", "--user"),
    ("Darwin", "/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install --user rasterio", "apt"),
    ("linux", "python3 -m pip install --user rasterio", "apt"),
])
def test_hint_per_platform(system, expected, absent):
    from qgis_plugin.bootstrap import OPTIONAL, REQUIRED, missing_message

    text, details = missing_message([REQUIRED[1], OPTIONAL[0]], system=system)
    assert "\n" not in text and expected in text and absent not in text
    assert "Install missing packages" in text
    if system == "debian":  # Debian 12's python3-torch (1.13) is too old: the action it is
        assert "torch: Raster › PIMC › Install missing packages…" in text
    for line in ("Debian/Ubuntu: sudo apt install", "Windows:", "OSGeo4W", "macOS:"):
        assert line in details
