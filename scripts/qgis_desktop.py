"""Desktop QGIS under Xvfb for the documentation's screenshots: the harness the screenshot scripts share.

A throw-away QGIS profile with the plugin installed from a zip of this checkout
(:func:`write_profile`), a startup script run by ``qgis --code`` (:func:`run_qgis`: the script's
own ``start()`` and ``before_quit()`` between :data:`STARTUP_BEGIN` and :data:`STARTUP_END`,
which give it its configuration, a status file, a watchdog and a clean exit), helpers for the
steps inside QGIS (:data:`DESKTOP_HELPERS`), a temporary work folder and the run's report.
Used by ``scripts/screenshots.py``, ``scripts/panel_screenshots.py`` and
``scripts/radar_text_screenshot.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1600, 1000

#: Helpers of the startup scripts that run inside QGIS: ``pump``, ``settle``, ``tidy_window``,
#: ``show_composite`` (a false-colour layer, the canvas on it), ``follow`` / ``wait_for`` (run a
#: step when the panel task ``task`` has ended).
DESKTOP_HELPERS = textwrap.dedent(r'''
    import time
    from pathlib import Path

    from qgis.core import QgsContrastEnhancement, QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import Qt, QTimer
    from qgis.PyQt.QtWidgets import QApplication, QDockWidget
    from qgis.utils import iface, plugins


    def pump(seconds=0.3):
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            QApplication.processEvents()
            time.sleep(0.01)


    def settle():
        canvas = iface.mapCanvas()
        canvas.refreshAllLayers()
        pump(0.3)
        canvas.waitWhileRendering()
        pump(0.5)
        canvas.waitWhileRendering()
        pump(0.2)


    def tidy_window():
        mw = iface.mainWindow()
        mw.resize(CFG["width"], CFG["height"])
        mw.showMaximized()
        # only the layers panel on the left, the PIMC panel on the right
        for dock in mw.findChildren(QDockWidget):
            if dock.objectName() not in ("Layers", "PimcDock"):
                dock.hide()
            elif dock.objectName() == "Layers":
                mw.resizeDocks([dock], [CFG["layers_width"]], Qt.Orientation.Horizontal)
        iface.messageBar().clearWidgets()


    def show_composite(img):
        """The imagery: a false-colour composite (NIR, red, green) of ``img``; the canvas on it."""
        layer = QgsRasterLayer(img, Path(img).stem + " (NIR, red, green)")
        r = layer.renderer()
        r.setRedBand(4); r.setGreenBand(3); r.setBlueBand(2)
        layer.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum)
        QgsProject.instance().addMapLayer(layer)
        iface.mapCanvas().setDestinationCrs(layer.crs())
        iface.mapCanvas().setExtent(layer.extent().buffered(layer.extent().width() * 0.02))


    def follow(started, then):
        """Keep ``started`` (a panel task; None: refused, the reason in the panel) as ``task``;
        run the step ``then`` when it has ended."""
        global task
        if started is None:
            raise RuntimeError(plugins["pimc"].dock.map_status.text())
        task = started
        QTimer.singleShot(200, lambda: wait_for(then))


    def wait_for(then):
        if not task.done:
            QTimer.singleShot(200, lambda: wait_for(then))
            return
        step(then)()
''')

#: The start of a startup script: ``CFG`` (from ``$PIMC_SHOTS``), ``OUT``, ``status``,
#: ``save_status()``, and ``@step`` (an exception ends the run, recorded in the status).
STARTUP_BEGIN = textwrap.dedent(r'''
    import json, os, traceback
    from pathlib import Path

    from qgis.core import QgsProject
    from qgis.PyQt.QtCore import QTimer
    from qgis.utils import iface

    CFG = json.loads(os.environ["PIMC_SHOTS"])
    OUT = Path(CFG["out"])
    status = {"ok": False, "steps": [], "errors": []}


    def save_status():
        Path(CFG["status"]).write_text(json.dumps(status, indent=1))


    def step(fn):
        def run():
            try:
                fn()
            except Exception:
                status["errors"].append(traceback.format_exc())
                save_status()
                quit_qgis()
        return run
''')

#: The end of a startup script: ``quit_qgis()`` (calls the script's ``before_quit()``, removes the
#: layers, writes the status, quits), the watchdog, ``start()`` after 1.5 s.
STARTUP_END = textwrap.dedent(r'''
    def quit_qgis():
        """Leave nothing behind: the script's own items, the layers (and their providers), the project."""
        try:
            before_quit()
            QgsProject.instance().removeAllMapLayers()
            QgsProject.instance().clear()
            QgsProject.instance().setDirty(False)
        except Exception:
            status["errors"].append(traceback.format_exc())
        save_status()
        QTimer.singleShot(200, iface.actionExit().trigger)


    def watchdog():
        status["errors"].append(f"stopped after {CFG['watchdog_s']} s: {status['steps']}")
        quit_qgis()


    QTimer.singleShot(1500, start)
    QTimer.singleShot(int(CFG["watchdog_s"] * 1000), watchdog)
''')


def write_profile(config: Path, zip_path: Path) -> None:
    """Install the plugin zip into ``config`` (a QGIS_CUSTOM_CONFIG_PATH) and enable it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import install_plugin
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    install_plugin.install(zip_path, install_plugin.plugins_dir(str(config)))
    ini = config / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text(textwrap.dedent("""\
        [PythonPlugins]
        pimc=true

        [qgis]
        checkVersion=false
        showTips322=false
        allowVersionCheck=false
        warnOldProjectVersion=false
        askToSaveProjectChanges=false
        promptForRasterLayers=false
        newProjectDefault=false

        [core]
        NewsFeed\\httpsfeedqgisorg\\disabled=true

        [UI]
        hidePluginStartupMessages=true
        """))


def run_qgis(work: Path, startup: str, cfg: dict, timeout: float) -> tuple[dict, str, int]:
    """Desktop QGIS under Xvfb (``cfg["width"]`` × ``cfg["height"]``) with the profile in
    ``work/qgis-config``, running :data:`STARTUP_BEGIN` + ``startup`` + :data:`STARTUP_END`
    (``qgis --code``; ``cfg`` as ``CFG``, with ``cfg["status"]`` added, where the status JSON
    goes; ``startup`` defines ``start()`` and ``before_quit()``).

    Returns:
        (status, QGIS's output, exit status; -1 when stopped after ``timeout`` s).
    """
    (work / "startup.py").write_text(STARTUP_BEGIN + startup + STARTUP_END)
    status = work / "status.json"
    env = dict(os.environ)
    purelib = sysconfig.get_paths()["purelib"]
    env.update(
        QGIS_CUSTOM_CONFIG_PATH=str(work / "qgis-config"),
        PYTHONPATH=os.pathsep.join(p for p in (purelib, env.get("PYTHONPATH", "")) if p),
        PIMC_SHOTS=json.dumps({**cfg, "status": str(status)}),
        MPLBACKEND="Agg",
    )
    env.pop("QT_QPA_PLATFORM", None)  # a real X server (Xvfb), not offscreen
    env.pop("QGIS_OPTIONS_PATH", None)
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {cfg['width']}x{cfg['height']}x24", "qgis", "--nologo",
           "--noversioncheck", "--code", str(work / "startup.py")]
    # own session: on a time-out the whole group (xvfb-run, Xvfb, QGIS) is stopped, nothing stays
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        rc, log = -1, f"QGIS did not quit within {timeout:.0f} s\n{log}"
    st = json.loads(status.read_text()) if status.is_file() else {"errors": ["no status written"], "steps": []}
    return st, log, rc


def have_tools(prog: str) -> bool:
    """Whether ``xvfb-run`` and ``qgis`` are there (else say so on stderr)."""
    missing = [t for t in ("xvfb-run", "qgis") if shutil.which(t) is None]
    if missing:
        print(f"{prog}: {', '.join(missing)} not found (Debian: apt install xvfb xauth qgis)", file=sys.stderr)
    return not missing


@contextlib.contextmanager
def work_folder(prefix: str, keep: bool) -> Iterator[Path]:
    """A temporary folder for a run (profile, data, status): removed afterwards unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(prog: str, st: dict, log: str, rc: int, out: Path, names) -> int:
    """Print the steps of a run of :func:`run_qgis`; 0 when every PNG of ``names`` is in ``out``
    and no step failed, else 1 with the errors and the end of QGIS's output."""
    for line in st.get("steps", []):
        print(line)
    missing = [n for n in names if not (out / n).is_file()]
    if st.get("errors") or missing:
        print(f"{prog}: failed (QGIS exit {rc}; missing: {', '.join(missing) or 'none'})", file=sys.stderr)
        for e in st.get("errors", []):
            print(e, file=sys.stderr)
        print("\n".join(log.splitlines()[-40:]), file=sys.stderr)
        return 1
    print(f"{prog}: {', '.join(str(out / n) for n in names)} (QGIS exit {rc})")
    return 0
