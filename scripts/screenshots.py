#!/usr/bin/env python3
"""Screenshots of the PIMC plugin in desktop QGIS, for the documentation.

Starts QGIS (``qgis --code``) under Xvfb with a throw-away profile in which
``scripts/install_plugin.py`` installed the plugin zip built from this checkout (enabled in
``QGIS3.ini``: ``[PythonPlugins] pimc=true``), on a synthetic sample stack, and saves three
grabs of the main window:

* ``plugin_inspector.png`` — the PIMC panel on the sample with a clicked pixel's index curves
  and recurrence plots, the pixel marked on the map;
* ``plugin_classified.png`` — a class map made with the panel's *Maps of a region* (the canvas
  extent), in its group ``PIMC region 1 — canvas extent — <model> — <time>`` with the class names
  and colours in the legend;
* ``plugin_suggested.png`` — the same run's uncertainty map (the classes hidden) with 40 points
  of the panel's *Suggest samples* on top (red dots, the layer in edit mode), the section's
  *Suggest samples* row and its status line in view.

With ``--phenology``: ``plugin_phenology.png`` — the panel's *Phenology* box alone (no model) run on
the canvas extent: the phenology layer (start of season, day of year, on its style's ramp) in its
group with its legend, the pixel inspector's curves with the season marked, the *Maps of a region*
section and its status line.

With ``--assess``: ``plugin_assess.png`` — the accuracy assessment of that class map:
``pimc:sampledesign`` draws 80 points of it, they are labelled with the sample's true classes in
the editable layer, and the ``pimc:assess`` dialog runs on them: its log holds the report's
summary (overall accuracy, each class's area and accuracies with 95 % intervals) and the HTML
report is listed in the Processing Results Viewer, over the class map and the labelled points.

Run it with the Python that has the project's packages (they are handed to QGIS through
``PYTHONPATH``)::

    .venv/bin/python scripts/screenshots.py                      # → docs/img/
    .venv/bin/python scripts/screenshots.py --out /tmp/shots --model my_model.pimc

``--model`` defaults to ``builtin:nearest-centroid`` (the documented non-PIMC baseline of the
synthetic data, instant); give a ``.pimc`` to show a trained PIMC model instead, or
``--train quick`` to fit one on the sample's sparse labels first (``pimc_core.fit`` with the
plugin's *quick* preset, about 15 s; the images in ``docs/img`` are made so). Needs ``xvfb-run``
(Debian: ``xvfb xauth``) and ``qgis``. Exit status 0 when all the PNGs asked for were written.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from qgis_desktop import DESKTOP_HELPERS, HEIGHT, ROOT, WIDTH, have_tools, report, run_qgis, work_folder, write_profile

NAMES = ("plugin_inspector.png", "plugin_classified.png", "plugin_suggested.png")
ASSESS_NAME = "plugin_assess.png"
PHENOLOGY_NAME = "plugin_phenology.png"
SUGGEST = 40  # points of the third shot

# Runs inside QGIS (``qgis --code``): steps chained with QTimer so the GUI paints in between.
STARTUP = DESKTOP_HELPERS + textwrap.dedent(r'''
    import json, os, time, traceback
    from pathlib import Path

    from qgis.core import QgsContrastEnhancement, QgsPointXY, QgsProject, QgsRasterLayer, QgsRectangle
    from qgis.gui import QgsVertexMarker
    from qgis.PyQt.QtCore import QPoint, Qt, QTimer
    from qgis.PyQt.QtGui import QColor, QPainter
    from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QSplitter
    from qgis.utils import iface, plugins


    def grab(name):
        settle()
        img = iface.mainWindow().grab()
        path = OUT / name
        img.save(str(path), "PNG")
        taken.append(name)
        status["steps"].append(f"saved {path} {img.width()}x{img.height()}")
        save_status()


    @step
    def start():
        tidy_window()
        plugin = plugins.get("pimc")
        if plugin is None:
            raise RuntimeError(f"the PIMC plugin is not loaded (plugins: {sorted(plugins)})")
        show_composite(CFG["image"])  # the imagery: a summer date in false colour
        plugin.show_panel(True)
        dock = plugin.dock
        dock.setMinimumWidth(CFG["dock_width"])
        mw = iface.mainWindow()
        mw.resizeDocks([dock], [CFG["dock_width"]], Qt.Orientation.Horizontal)
        dock.set_source_path(CFG["manifest"])
        ts = dock.validate()
        if ts is None:
            raise RuntimeError(dock.status_label.text())
        dock.maps_box.setCollapsed(True)
        dock.fit_box.setCollapsed(True)
        plugin.inspector_action.trigger()
        x, y = ts.grid.xy(*CFG["pixel"])
        plugin.map_tool.handle_point(QgsPointXY(x, y))
        if dock.last_result is None:
            raise RuntimeError(dock.pixel_label.text())
        global marker
        marker = QgsVertexMarker(iface.mapCanvas())
        marker.setCenter(QgsPointXY(x, y))
        marker.setIconType(QgsVertexMarker.IconType.ICON_CROSS)
        marker.setIconSize(18)
        marker.setPenWidth(3)
        marker.setColor(QColor("#ffff00"))
        QTimer.singleShot(300, shot_inspector)


    @step
    def shot_inspector():
        grab(CFG["names"][0])
        from pimc.region_tools import canvas_extent_choice

        dock = plugins["pimc"].dock
        dock.inspector_box.setCollapsed(True)
        dock.maps_box.setCollapsed(False)
        dock.set_model_path(CFG["model"])
        dock.out_widget.setFilePath(CFG["maps"])  # in the temporary folder of this run
        dock.set_map_products(("classes",))
        follow(dock.run_region(canvas_extent_choice(iface.mapCanvas())), shot_classified)


    def shot_classified():
        if not task.succeeded:
            raise RuntimeError(f"map run failed: {task.error}")
        global map_layers
        map_layers = task.layers
        dock = plugins["pimc"].dock
        marker.hide()
        iface.layerTreeView().refreshLayerSymbology(task.layers[0].id())
        dock.widget().ensureWidgetVisible(dock.maps_box)
        grab(CFG["names"][1])
        start_suggest()


    def start_suggest():
        """Show the uncertainty map instead of the classes, then *Suggest samples* as its button does."""
        tree = QgsProject.instance().layerTreeRoot()
        for layer in task.layers:  # the map run's
            node = tree.findLayer(layer.id())
            shown = layer.customProperty("pimc/product") == "uncertainty"
            node.setItemVisibilityChecked(shown)
            node.setExpanded(shown)
        dock = plugins["pimc"].dock
        dock.maps_box.suggest_spin.setValue(CFG["suggest"])
        labels = QgsRasterLayer(str(Path(CFG["manifest"]).parent / "labels_sparse.tif"), "training labels")
        QgsProject.instance().addMapLayer(labels, False)  # chosen under Train a model, not drawn
        dock.fit_layer_combo.setLayer(labels)
        dock.maps_box.suggest_away_check.setChecked(True)  # the labels made so far: look elsewhere
        follow(dock.maps_box.suggest_samples(), shot_suggested)


    def shot_suggested():
        if not task.succeeded or task.layer is None:
            raise RuntimeError(f"suggesting samples failed: {task.error}")
        global suggested
        points = suggested = task.layer  # on top of the layer tree, red dots while their class is empty (the plugin's style)
        iface.layerTreeView().refreshLayerSymbology(points.id())
        iface.setActiveLayer(points)
        dock = plugins["pimc"].dock
        dock.widget().ensureWidgetVisible(dock.maps_box.suggest_button)
        grab(CFG["names"][2])
        next_shot()


    def next_shot():
        """The phenology shot, then the assessment, when asked for; else quit."""
        if CFG["phenology_name"] in CFG["names"] and CFG["phenology_name"] not in taken:
            start_phenology()
        elif CFG["assess_name"] in CFG["names"]:
            start_assess()
        else:
            status["ok"] = True
            quit_qgis()


    def start_phenology():
        """The panel's Phenology box alone on the canvas extent: no model needed."""
        from pimc.region_tools import canvas_extent_choice

        global folded
        project = QgsProject.instance()
        for node in project.layerTreeRoot().findLayers():  # (the training labels are not in the tree)
            node.setItemVisibilityChecked(False)
        folded = [g for g in project.layerTreeRoot().findGroups() if g.isExpanded()]
        for group in folded:
            group.setExpanded(False)
        dock = plugins["pimc"].dock
        dock.set_map_products(("phenology",))
        follow(dock.run_region(canvas_extent_choice(iface.mapCanvas())), shot_phenology)


    def shot_phenology():
        if not task.succeeded:
            raise RuntimeError(f"phenology run failed: {task.error}")
        layer = task.layers[0]
        iface.layerTreeView().refreshLayerSymbology(layer.id())
        iface.setActiveLayer(layer)
        dock = plugins["pimc"].dock
        dock.inspector_box.setCollapsed(False)  # the clicked pixel's curves, its season marked
        marker.show()
        pump(0.3)
        dock.widget().ensureWidgetVisible(dock.maps_box.map_status)
        grab(CFG["phenology_name"])
        # the next shot as without this one: no phenology group, the other groups unfolded again
        dock.inspector_box.setCollapsed(True)
        marker.hide()
        QgsProject.instance().removeMapLayers([l.id() for l in task.layers])
        QgsProject.instance().layerTreeRoot().removeChildNode(task.group)
        for group in folded:
            group.setExpanded(True)
        iface.setActiveLayer(suggested)  # new layers go on top of the tree again
        next_shot()


    def start_assess():
        """pimc:sampledesign on the class map, the points labelled with the true classes in their
        editable layer, then the pimc:assess dialog run on them (the report in its log)."""
        import processing
        import rasterio
        from processing.core.ProcessingConfig import ProcessingConfig
        from qgis.core import QgsProviderRegistry, QgsVectorLayer

        global dialog
        project = QgsProject.instance()
        classes = next(l for l in map_layers if l.customProperty("pimc/product") == "classes")
        for layer in project.mapLayers().values():
            node = project.layerTreeRoot().findLayer(layer.id())
            if node is not None:
                node.setItemVisibilityChecked(layer is classes or layer.providerType() == "gdal"
                                              and layer.customProperty("pimc/product") is None)
        map_path = QgsProviderRegistry.instance().decodeUri("gdal", classes.source())["path"]
        points_path = str(Path(CFG["maps"]) / "sample_points.gpkg")
        processing.run("pimc:sampledesign", {"MAP": map_path, "N": 80, "ALLOCATION": "min:8", "SEED": 1,
                                             "OUTPUT": points_path})
        with rasterio.open(CFG["truth"]) as src:
            truth, to_pixel = src.read(1), ~src.transform
        points = QgsVectorLayer(points_path, "Sample points (reference filled in)", "ogr")
        points.startEditing()
        ref = points.fields().indexOf("reference")
        for f in points.getFeatures():
            p = f.geometry().asPoint()
            col, row = (int(v) for v in to_pixel * (p.x(), p.y()))
            points.changeAttributeValue(f.id(), ref, int(truth[row, col]))
        if not points.commitChanges():
            raise RuntimeError(f"labelling the points failed: {points.commitErrors()}")
        project.addMapLayer(points)
        ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, True)
        dialog = processing.createAlgorithmDialog("pimc:assess", {
            "MAP": map_path, "REFERENCE": points_path, "CLASS_FIELD": "reference", "CLASSES": CFG["classes"],
            "OUTPUT": str(Path(CFG["maps"]) / "assessment.html")})
        dialog.algorithmFinished.connect(lambda ok, result: QTimer.singleShot(800, step(shot_assess)))
        plugins["pimc"].dock.hide()
        results = plugins["processing"].resultsDock  # the Results Viewer, under the map
        mw = iface.mainWindow()
        mw.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, results)
        results.show()
        results.setMaximumHeight(170)
        iface.messageBar().clearWidgets()
        dialog.resize(*CFG["dialog_size"])
        for splitter in dialog.findChildren(QSplitter):  # the log wide, the help text folded away
            splitter.setSizes([CFG["dialog_size"][0], 0])
        dialog.move(mw.mapToGlobal(QPoint(*CFG["dialog_at"])))
        dialog.show()
        dialog.runAlgorithm()


    def shot_assess():
        results = plugins["processing"].resultsDock
        results.treeResults.setCurrentItem(results.treeResults.topLevelItem(0))
        # the class map and its points in the part of the canvas left of the dialog
        canvas, mw = iface.mapCanvas(), iface.mainWindow()
        visible = CFG["dialog_at"][0] - canvas.mapTo(mw, QPoint(0, 0)).x() - 20
        ext = next(l for l in map_layers if l.customProperty("pimc/product") == "classes").extent().buffered(40)
        canvas.setExtent(QgsRectangle(ext.xMinimum(), ext.yMinimum(),
                                      ext.xMinimum() + ext.width() * canvas.width() / visible, ext.yMaximum()))
        settle()
        pump(0.5)
        # the main window with the dialog painted where it stands over it (there is no window manager)
        img = iface.mainWindow().grab()
        painter = QPainter(img)
        painter.drawPixmap(QPoint(*CFG["dialog_at"]), dialog.grab())
        painter.end()
        path = OUT / CFG["assess_name"]
        img.save(str(path), "PNG")
        status["steps"].append(f"saved {path} {img.width()}x{img.height()}")
        dialog.close()
        status["ok"] = True
        quit_qgis()


    marker = None
    dialog = None
    map_layers = []
    taken = []  # the names grabbed so far
    suggested = None  # the suggested points layer
    folded = []  # the groups the phenology shot folded
    task = None  # the map run, then the suggest task


    def before_quit():
        if marker is not None:
            iface.mapCanvas().scene().removeItem(marker)
''')

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNGs (default: docs/img)")
    ap.add_argument("--model", default="builtin:nearest-centroid", help="model for the class map (.pimc or builtin:…)")
    ap.add_argument("--train", metavar="PRESET", help="fit a PIMC model on the sample first (try-out, quick, standard)")
    ap.add_argument("--timeout", type=float, default=150, help="seconds before QGIS is stopped")
    ap.add_argument("--phenology", action="store_true", help=f"also {PHENOLOGY_NAME}: the panel's phenology map")
    ap.add_argument("--assess", action="store_true", help=f"also {ASSESS_NAME}: pimc:sampledesign, labelling, pimc:assess")
    ap.add_argument("--keep", action="store_true", help="keep the temporary profile and data (printed)")
    ap.add_argument("--verbose", action="store_true", help="print QGIS's output")
    args = ap.parse_args(argv)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = NAMES + ((PHENOLOGY_NAME,) if args.phenology else ()) + ((ASSESS_NAME,) if args.assess else ())
    for name in names:
        (out / name).unlink(missing_ok=True)
    if not have_tools("screenshots"):
        return 2
    with work_folder("pimc_shots_", args.keep) as work:
        sys.path.insert(0, str(ROOT))
        from pimc_core.datasets.synthetic import make_synthetic

        sys.path.insert(0, str(ROOT / "scripts"))
        import plugin_zip

        sample = make_synthetic(work / "sample", size=64, n_dates=24, seed=3)
        summer = min(sample.images, key=lambda p: abs(int(p.stem[-4:]) - 715))  # a mid-July date
        zip_path = plugin_zip.build(work / "pimc.zip")
        config = work / "qgis-config"
        write_profile(config, zip_path)
        model = args.model if args.model.startswith("builtin:") else str(Path(args.model).resolve())
        if args.train:
            from pimc_core.fit import fit
            from qgis_plugin.fitting import fit_config

            res = fit(sample.manifest, sample.labels_sparse, work / "sample_model.pimc", classes=sample.classes_json,
                      config=fit_config(args.train), progress=False)
            print(res.summary())
            model = str(res.path)
        st, log, rc = run_qgis(work, STARTUP, {
            "out": str(out), "maps": str(work / "maps"), "manifest": str(sample.manifest), "image": str(summer),
            "model": model, "names": list(names), "width": WIDTH, "height": HEIGHT,
            "truth": str(sample.labels), "classes": str(sample.classes_json), "dialog_at": [850, 120],
            "dialog_size": [740, 690],
            "dock_width": 620, "layers_width": 330, "watchdog_s": max(10.0, args.timeout - 10), "pixel": [20, 41],
            "suggest": SUGGEST, "phenology_name": PHENOLOGY_NAME, "assess_name": ASSESS_NAME,
        }, args.timeout)
        if args.verbose:
            print(log)
        return report("screenshots", st, log, rc, out, names)


if __name__ == "__main__":
    sys.exit(main())
