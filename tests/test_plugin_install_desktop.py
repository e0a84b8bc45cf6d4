"""The install action in desktop QGIS (Debian 12: /usr/bin/qgis embeds the system's externally
managed Python 3.11; the project's packages reach it through PYTHONPATH, a test package is the
one missing), under Xvfb, offline: the dialog's plan names QGIS's own Python (not a
venv's, not whatever python3 is first on PATH), Install runs pip --target from a local wheel
folder, and the package imports inside that QGIS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from tests.test_plugin_install import write_wheel

ROOT = Path(__file__).resolve().parent.parent

STARTUP = textwrap.dedent(r'''
    import importlib, json, os, sys, traceback
    from qgis.PyQt.QtCore import QTimer
    from qgis.utils import iface, plugins

    out = {"errors": []}
    dialog = None

    def finish():
        open(os.environ["PIMC_TEST_STATUS"], "w").write(json.dumps(out))
        QTimer.singleShot(100, iface.actionExit().trigger)

    def start():
        global dialog
        try:
            from pimc import bootstrap
            bootstrap.OPTIONAL += (bootstrap.Dependency("pimc_probe_pkg", "pimc-probe-pkg", "test", required=False),)
            out["sys_executable"] = sys.executable
            dialog = plugins["pimc"].show_install_dialog()
            out["plan"] = dialog.plan_view.toPlainText()
            out["python"] = dialog.plan.python
            out["before"] = os.path.exists(os.environ["PIMC_PACKAGES_DIR"])
            dialog.install_button.click()
            QTimer.singleShot(300, wait)
        except Exception:
            out["errors"].append(traceback.format_exc())
            finish()

    def wait():
        if not dialog.close_button.isEnabled():
            QTimer.singleShot(300, wait)
            return
        try:
            out["status"] = dialog.task.status if dialog.task is not None else None
            out["label"] = dialog.status_label.text()
            out["log"] = dialog.log_view.toPlainText()
            import pimc_probe_pkg
            out["value"] = pimc_probe_pkg.VALUE
            out["module_file"] = pimc_probe_pkg.__file__
        except Exception:
            out["errors"].append(traceback.format_exc())
        finish()

    QTimer.singleShot(1500, start)
    QTimer.singleShot(100000, finish)
''')


def test_install_in_desktop_qgis_with_its_own_python(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import plugin_zip
        from qgis_desktop import write_profile
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    config = tmp_path / "qgis-config"
    write_profile(config, plugin_zip.build(tmp_path / "pimc.zip"))
    write_wheel(tmp_path / "wheels")
    (tmp_path / "startup.py").write_text(STARTUP)
    status = tmp_path / "status.json"
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(config), PIMC_TEST_STATUS=str(status),
               PIMC_PACKAGES_DIR=str(tmp_path / "packages"), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path / "wheels"))
    for var in ("QT_QPA_PLATFORM", "QGIS_OPTIONS_PATH", "VIRTUAL_ENV"):
        env.pop(var, None)
    # QGIS's own Python, with the project's packages (as in test_plugin_packaging): only the probe is missing
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    r = subprocess.run(["xvfb-run", "-a", "qgis", "--nologo", "--noversioncheck", "--code", str(tmp_path / "startup.py")],
                       env=env, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert status.is_file(), r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads(status.read_text())
    assert out["errors"] == [], out
    assert out["before"] is False  # nothing installed before the click
    python = out["python"]
    assert python is not None and Path(python).parent == Path(sys.base_exec_prefix) / "bin", out
    assert python in out["plan"] and str(tmp_path / "packages") in out["plan"]
    assert out["status"] == 0, out["log"]
    assert out["value"] == 42 and out["module_file"].startswith(str(tmp_path / "packages"))
    managed = list(Path(python).resolve().parent.parent.glob("lib/python3*/EXTERNALLY-MANAGED"))
    print("\nQGIS's Python:", python, "(externally managed)" if managed else "", "— sys.executable:", out["sys_executable"])
