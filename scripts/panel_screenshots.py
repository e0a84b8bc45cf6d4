#!/usr/bin/env python3
"""Screenshots of each section of the PIMC panel at the width QGIS gives the dock, for the docs.

Desktop QGIS under Xvfb (``qgis --code``, a throw-away profile with the plugin zip of this
checkout, as ``scripts/screenshots.py`` does) opens the panel in the right dock area *without*
setting its width, then grabs the dock alone:

* ``panel_source.png`` — *Time series*: the synthetic sample chosen, the model file;
* ``panel_inspector.png`` — *Pixel inspector* after a click: the pixel's curves and plots;
* ``panel_maps.png`` — *Maps of a region* after mapping the canvas extent;
* ``panel_fit.png`` — *Train a model* with a label layer and its class field chosen;
* ``panel_install.png`` — the *Install missing packages…* dialog before its Install button, as
  it is when torch is missing.

``status.json`` (kept with ``--keep``) records the dock's width. Run with the project's Python::

    .venv/bin/python scripts/panel_screenshots.py            # → docs/img/
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from qgis_desktop import HEIGHT, WIDTH, have_tools, report, run_qgis, work_folder, write_profile  # noqa: E402

NAMES = ("panel_source.png", "panel_inspector.png", "panel_maps.png", "panel_fit.png", "panel_install.png")

STARTUP = textwrap.dedent(r'''
    import json, os, traceback
    from pathlib import Path

    from qgis.core import QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QApplication
    from qgis.utils import iface, plugins

    task = None

    def pump():
        for _ in range(10):
            QApplication.processEvents()

    def show_only(box):
        dock = plugins["pimc"].dock
        for b in (dock.inspector_box, dock.maps_box, dock.fit_box):
            b.setCollapsed(b is not box)
        pump()
        dock.widget().ensureWidgetVisible(box if box is not None else dock.source_box)
        pump()

    def grab(widget, name):
        pump()
        img = widget.grab()
        img.save(str(OUT / name))
        status["steps"].append(f"saved {name} {img.width()}x{img.height()}")
        save_status()

    @step
    def start():
        mw = iface.mainWindow()
        mw.resize(CFG["width"], CFG["height"])
        mw.showMaximized()
        iface.messageBar().clearWidgets()
        plugin = plugins["pimc"]
        layer = QgsRasterLayer(CFG["image"], Path(CFG["image"]).stem)
        QgsProject.instance().addMapLayer(layer)
        iface.mapCanvas().setDestinationCrs(layer.crs())
        iface.mapCanvas().setExtent(layer.extent())
        plugin.show_panel(True)  # where and how wide QGIS puts it
        dock = plugin.dock
        dock.set_source_path(CFG["manifest"])
        if dock.validate() is None:
            raise RuntimeError(dock.status_label.text())
        dock.set_model_path(CFG["model"])
        dock.out_widget.setFilePath(CFG["maps"])
        QTimer.singleShot(800, shot_source)

    @step
    def shot_source():
        dock = plugins["pimc"].dock
        status["dock_width"] = dock.width()
        status["viewport_width"] = dock.widget().viewport().width()
        status["body_min_width"] = dock.widget().widget().minimumSizeHint().width()
        show_only(None)
        grab(dock, CFG["names"][0])
        plugin = plugins["pimc"]
        show_only(dock.inspector_box)
        plugin.inspector_action.trigger()
        from qgis.core import QgsPointXY
        ts = dock.source_box.series
        x, y = ts.grid.xy(*CFG["pixel"])
        plugin.map_tool.handle_point(QgsPointXY(x, y))
        if dock.last_result is None:
            raise RuntimeError(dock.pixel_label.text())
        QTimer.singleShot(300, shot_inspector)

    @step
    def shot_inspector():
        dock = plugins["pimc"].dock
        grab(dock, CFG["names"][1])
        from pimc.region_tools import canvas_extent_choice
        show_only(dock.maps_box)
        dock.set_map_products(("classes",))
        global task
        task = dock.run_region(canvas_extent_choice(iface.mapCanvas()))
        if task is None:
            raise RuntimeError(dock.map_status.text())
        QTimer.singleShot(200, wait_maps)

    def wait_maps():
        if not task.done:
            QTimer.singleShot(200, wait_maps)
            return
        step(shot_maps)()

    def shot_maps():
        if not task.succeeded:
            raise RuntimeError(task.error)
        dock = plugins["pimc"].dock
        show_only(dock.maps_box)
        grab(dock, CFG["names"][2])
        labels = QgsRasterLayer(CFG["labels"], "sparse labels")
        QgsProject.instance().addMapLayer(labels)
        show_only(dock.fit_box)
        dock.fit_layer_combo.setLayer(labels)
        dock.set_fit_preset("quick")
        show_only(dock.fit_box)
        QTimer.singleShot(300, step(shot_fit))

    def shot_fit():
        dock = plugins["pimc"].dock
        grab(dock, CFG["names"][3])
        # the dialog as a user without torch sees it (this machine has every package)
        from pimc.bootstrap import OPTIONAL
        from pimc.install_dialog import InstallDialog
        dialog = InstallDialog(iface.mainWindow(), missing=[d for d in OPTIONAL if d.module == "torch"])
        dialog.resize(720, 400)
        dialog.show()
        QTimer.singleShot(400, step(lambda: shot_install(dialog)))

    def shot_install(dialog):
        grab(dialog, CFG["names"][4])
        dialog.close()
        status["ok"] = True
        quit_qgis()

    def before_quit():
        pass
''')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNGs (default: docs/img)")
    ap.add_argument("--timeout", type=float, default=150, help="seconds before QGIS is stopped")
    ap.add_argument("--keep", action="store_true", help="keep the temporary profile and data (printed)")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not have_tools("panel_screenshots"):
        return 2
    with work_folder("pimc_panel_shots_", args.keep) as work:
        sys.path.insert(0, str(ROOT))
        import plugin_zip

        from pimc_core.datasets.synthetic import make_synthetic

        sample = make_synthetic(work / "sample", size=64, n_dates=24, seed=3)
        summer = min(sample.images, key=lambda p: abs(int(p.stem[-4:]) - 715))
        config = work / "qgis-config"
        write_profile(config, plugin_zip.build(work / "pimc.zip"))
        st, log, rc = run_qgis(work, STARTUP, {
            "out": str(out), "maps": str(work / "maps"), "manifest": str(sample.manifest), "image": str(summer),
            "labels": str(sample.labels_sparse), "model": "builtin:nearest-centroid", "names": list(NAMES),
            "width": WIDTH, "height": HEIGHT, "pixel": [20, 41], "watchdog_s": max(10.0, args.timeout - 10),
        }, args.timeout)
        print(f"dock width {st.get('dock_width')} px (viewport {st.get('viewport_width')} px, "
              f"panel minimum {st.get('body_min_width')} px)")
        return report("panel_screenshots", st, log, rc, out, NAMES)


if __name__ == "__main__":
    sys.exit(main())
