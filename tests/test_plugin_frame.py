"""The QGIS plugin frame inside real QGIS (pytest-qgis): load, unload leaving nothing behind,
missing dependencies reported (never installed), where pimc_core comes from, metadata."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

from tests.qgis_helpers import flush_deletes

ROOT = Path(__file__).resolve().parent.parent


def pimc_objects(qgis_iface) -> list[str]:
    """Names of every object the plugin could have left in the main window."""
    from qgis.PyQt.QtCore import QObject

    return sorted(o.objectName() for o in qgis_iface.mainWindow().findChildren(QObject)
                  if o.objectName().lower().startswith("pimc"))


@pytest.fixture
def loaded(qgis_iface, qgis_new_project):
    """The plugin, loaded like QGIS does (classFactory + initGui); unloaded afterwards."""
    import qgis_plugin

    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    if plugin.provider is not None or plugin.actions:
        plugin.unload()
        flush_deletes()


def test_load_adds_toolbar_menu_actions_and_provider(loaded, qgis_iface):
    from qgis.core import QgsApplication

    names = [a.text() for a in loaded.actions]
    assert names == ["PIMC time-series panel", "PIMC pixel inspector"]
    assert [a.text() for a in loaded.toolbar.actions()] == names
    assert loaded.toolbar.windowTitle() == "PIMC"
    assert loaded.menu.title() == "&PIMC" and loaded.menu.actions() == [*loaded.actions, loaded.install_action]
    assert loaded.install_action.text() == "Install missing packages…"
    qgis_iface.rasterMenu().addMenu.assert_called_with(loaded.menu)
    provider = QgsApplication.processingRegistry().providerById("pimc")
    assert provider is not None and provider.name() == "PIMC"
    assert sorted(a.id() for a in provider.algorithms()) == [
        "pimc:assess", "pimc:classify", "pimc:cluster", "pimc:embed", "pimc:fit", "pimc:forecast", "pimc:indices",
        "pimc:phenology", "pimc:recurrenceplot", "pimc:sampledesign", "pimc:similarity", "pimc:suggest",
    ]
    about = _metadata()["about"]  # what the plugin manager shows names every algorithm
    assert [a.id() for a in provider.algorithms() if a.id() not in about] == []
    assert loaded.dock is None  # the panel (matplotlib, rasterio) is built on first use only


def test_unload_leaves_nothing_behind(loaded, qgis_iface, qgis_canvas):
    from qgis.core import QgsApplication

    loaded.panel_action.trigger()  # build and show the dock
    loaded.inspector_action.trigger()  # make the map tool current
    assert loaded.dock is not None and loaded.dock.isVisibleTo(qgis_iface.mainWindow())
    assert qgis_canvas.mapTool() is loaded.map_tool
    before = pimc_objects(qgis_iface)
    assert {"PimcDock", "PimcToolbar", "PimcMenu", "PimcPanelAction", "PimcInspectorAction"} <= set(before)
    menu_action = loaded.menu.menuAction()

    loaded.unload()
    flush_deletes()

    assert pimc_objects(qgis_iface) == []
    assert QgsApplication.processingRegistry().providerById("pimc") is None
    assert qgis_canvas.mapTool() is None
    qgis_iface.rasterMenu().removeAction.assert_called_with(menu_action)
    assert loaded.dock is None and loaded.map_tool is None and loaded.toolbar is None and not loaded.actions


def test_load_unload_twice(qgis_iface, qgis_new_project):
    """Reloading (Plugin Reloader, upgrade) works: the provider id is free again after unload."""
    from qgis.core import QgsApplication

    import qgis_plugin

    for _ in range(2):
        plugin = qgis_plugin.classFactory(qgis_iface)
        plugin.initGui()
        plugin.show_panel(True)
        assert QgsApplication.processingRegistry().providerById("pimc") is plugin.provider
        plugin.unload()
        flush_deletes()
        assert pimc_objects(qgis_iface) == []


def test_missing_packages_are_reported_not_installed(qgis_iface, qgis_new_project, monkeypatch):
    """torch and rasterio unimportable: the plugin still loads, names both and how to install."""
    import subprocess

    from qgis.core import Qgis

    import qgis_plugin

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    monkeypatch.setitem(sys.modules, "rasterio", None)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))  # nothing may pip-install
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(a))
    qgis_iface.messageBar().clear_messages()

    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    try:
        warnings = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)
        assert len(warnings) == 1
        msg = warnings[0]
        assert "rasterio" in msg and "torch" in msg
        assert "Install missing packages…" in msg  # the action, and the command for this platform:
        assert ("sudo apt install python3-rasterio" in msg) or ("pip install" in msg)
        assert [d.module for d in plugin.missing] == ["rasterio", "torch"]
        assert len(plugin.actions) == 2 and plugin.provider is not None  # still loaded
        assert calls == []
    finally:
        plugin.unload()
        flush_deletes()


def test_too_old_python_is_reported(qgis_iface, qgis_new_project, monkeypatch):
    from qgis.core import Qgis

    import qgis_plugin
    from qgis_plugin import bootstrap

    monkeypatch.setattr(bootstrap, "MIN_PYTHON", (sys.version_info[0], sys.version_info[1] + 1))
    qgis_iface.messageBar().clear_messages()
    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    try:
        warnings = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)
        assert len(warnings) == 1 and "PIMC needs Python" in warnings[0]
        assert f"this QGIS runs Python {sys.version_info[0]}.{sys.version_info[1]}" in warnings[0]
    finally:
        plugin.unload()
        flush_deletes()


def test_all_packages_present_no_warning(loaded, qgis_iface):
    from qgis.core import Qgis

    assert loaded.missing == []
    assert not [m for m in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning) if "PIMC" in m]


def test_missing_torch_message_for_the_recurrence_tools(monkeypatch):
    """A core module failing on `import torch` becomes one line naming torch and the command."""
    from qgis_plugin.bootstrap import MissingDependencyError, import_core

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "pimc_core.series.recurrence", raising=False)
    with pytest.raises(MissingDependencyError) as e:
        import_core("pimc_core.series.recurrence")
    text = str(e.value)
    assert "\n" not in text
    assert "torch (recurrence plots and the model tools)" in text and "Install missing packages…" in text


def test_core_found_in_checkout_and_vendored(tmp_path):
    """Checkout: pimc_core is the repository's. Zip layout: pimc/ext/pimc_core is put first on
    sys.path, and release_core() takes it away again."""
    import subprocess

    from qgis_plugin import bootstrap

    assert bootstrap.core_origin() in ("installed", "checkout")
    import pimc_core

    assert Path(pimc_core.__file__).resolve().parent == ROOT / "pimc_core"

    # the layout of the built zip, made by the packaging script
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import plugin_zip
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    import zipfile

    z = plugin_zip.build(tmp_path / "pimc.zip")
    zipfile.ZipFile(z).extractall(tmp_path / "plugins")
    code = (
        "import sys, pimc\n"
        "import pimc_core, pimc_core.io.timeseries\n"
        "print(pimc.bootstrap.core_origin(), pimc_core.__file__)\n"
        "pimc.bootstrap.release_core()\n"
        "print('pimc_core' in sys.modules, any(p.rstrip('/\\\\').endswith(('/ext', '\\\\ext')) for p in sys.path))\n"
    )
    # a clean interpreter whose only pimc_core is the vendored one (no checkout, no editable install)
    out = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {[str(tmp_path / 'plugins')] + _site_dirs()!r}\n" + code],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    ).stdout.split("\n")
    origin, path = out[0].split(" ", 1)
    assert origin == "vendored"
    assert Path(path).resolve() == (tmp_path / "plugins" / "pimc" / "ext" / "pimc_core" / "__init__.py").resolve()
    assert out[1] == "False False"


def _site_dirs() -> list[str]:
    """site-packages folders without .pth processing (so the editable pimc_core is not seen)."""
    import site

    return [p for p in site.getsitepackages() if Path(p).is_dir()]


def _metadata():
    cp = configparser.ConfigParser()
    cp.optionxform = str
    cp.read(ROOT / "metadata.txt")
    return cp["general"]


def test_metadata_txt():
    m = _metadata()
    assert m["name"] == "PIMC"
    assert m["qgisMinimumVersion"] == "3.22" and m["qgisMaximumVersion"] == "3.99"
    assert m["version"] == "0.1.0" and m["author"] == "PIMC developers"
    assert m["category"] == "Raster" and m["hasProcessingProvider"] == "yes" and m["experimental"] == "True"
    for key in ("description", "about", "email", "repository", "tracker", "tags"):
        assert m[key].strip(), key
    assert (ROOT / "qgis_plugin" / m["icon"]).is_file()
    import pimc_core

    assert m["version"] == pimc_core.__version__


def test_plugin_imports_qt_only_through_qgis_pyqt():
    """QGIS 4 readiness: no direct PyQt5/PyQt6/sip imports, no exec_()."""
    import ast

    offenders = []
    for py in sorted((ROOT / "qgis_plugin").rglob("*.py")):
        tree = ast.parse(py.read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            for mod in mods:
                if mod.split(".")[0] in ("PyQt5", "PyQt6", "PySide2", "PySide6", "sip"):
                    offenders.append(f"{py.name}: {mod}")
            if isinstance(node, ast.Attribute) and node.attr in ("exec_", "setMapUnits"):
                offenders.append(f"{py.name}: {node.attr}")
    assert offenders == []
