#!/usr/bin/env python3
"""The screenshot of the PIMC panel with a Sentinel-1 source, a phenology layer and a text query,
for the documentation: ``plugin_radar_text.png``.

Desktop QGIS under Xvfb (``qgis --code``, a throw-away profile with the plugin zip of this
checkout, as ``scripts/screenshots.py`` does) on the synthetic sample with its radar stack
(``make_synthetic(..., sar=True)``): the panel's *Time series* section with the optical manifest
and the *Radar (S1)* manifest given (the radar's reading line under it), the *Phenology* box run
on the canvas extent, then a sentence typed into the *Query* box of *Maps of a region* and run:
the similarity layer, named after the sentence, on top of the phenology layer.

The model is fitted here first on the optical and radar series together (``pimc_core.fit`` with
the plugin's *quick* preset) and given a text head as ``pimc text-fit`` does (captions of the
pixels' phenology and of the sparse labels' class names). Run it with the project's Python::

    .venv/bin/python scripts/radar_text_screenshot.py        # → docs/img/plugin_radar_text.png
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from qgis_desktop import DESKTOP_HELPERS, HEIGHT, WIDTH, have_tools, report, run_qgis, work_folder, write_profile  # noqa: E402

NAME = "plugin_radar_text.png"
QUERY = "maize"

STARTUP = DESKTOP_HELPERS + textwrap.dedent(r'''
    from qgis.utils import plugins

    task = None


    @step
    def start():
        tidy_window()
        show_composite(CFG["image"])  # the imagery: a summer date in false colour
        plugin = plugins["pimc"]
        plugin.show_panel(True)
        dock = plugin.dock
        dock.setMinimumWidth(CFG["dock_width"])
        iface.mainWindow().resizeDocks([dock], [CFG["dock_width"]], Qt.Orientation.Horizontal)
        dock.set_source_path(CFG["manifest"])
        dock.source_box.set_sar_path(CFG["sar"])
        dock.set_model_path(CFG["model"])
        dock.out_widget.setFilePath(CFG["maps"])
        if dock.validate() is None:
            raise RuntimeError(dock.source_box.why_no_series())
        dock.inspector_box.setCollapsed(True)
        dock.fit_box.setCollapsed(True)
        from pimc.region_tools import canvas_extent_choice

        dock.set_map_products(("phenology",))
        follow(dock.run_region(canvas_extent_choice(iface.mapCanvas())), start_query)


    def start_query():
        if not task.succeeded:
            raise RuntimeError(f"phenology run failed: {task.error}")
        box = plugins["pimc"].dock.maps_box.query_box
        if not box.query_button.isEnabled():
            raise RuntimeError("the query box is disabled: " + box.query_button.toolTip())
        box.query_edit.setText(CFG["query"])
        follow(plugins["pimc"].dock.maps_box.run_query(), shot)


    def shot():
        if not task.succeeded:
            raise RuntimeError(f"text query failed: {task.error}")
        for group in QgsProject.instance().layerTreeRoot().findGroups():
            group.setExpanded(True)
        iface.layerTreeView().refreshLayerSymbology(task.layers[0].id())
        iface.setActiveLayer(task.layers[0])
        dock = plugins["pimc"].dock
        pump(0.3)
        dock.widget().ensureWidgetVisible(dock.maps_box.map_status)
        dock.widget().ensureWidgetVisible(dock.source_box.mode_path)
        settle()
        img = iface.mainWindow().grab()
        img.save(str(OUT / CFG["name"]), "PNG")
        status["steps"].append(f"saved {CFG['name']} {img.width()}x{img.height()}; {dock.map_status.text()}")
        status["ok"] = True
        quit_qgis()


    def before_quit():
        pass
''')


def make_model(sample, work: Path) -> Path:
    """A model of the optical and radar series with a text head (as ``pimc text-fit`` adds one)."""
    from pimc_core.fit import fit
    from pimc_core.io.classes import load_class_table
    from pimc_core.io.labels import read_labels
    from pimc_core.io.sar_source import with_sar
    from pimc_core.io.timeseries import open_series
    from pimc_core.learn.text_align import TextFitConfig, fit_text_head
    from pimc_core.maps.text_query import collect_facts
    from pimc_core.models.text_encoder import save_text_model
    from qgis_plugin.fitting import fit_config

    ts = with_sar(open_series(sample.manifest), open_series(sample.sar_manifest))
    res = fit(ts, sample.labels_sparse, work / "both.pimc", classes=sample.classes_json,
              config=fit_config("quick"), progress=False)
    print(res.summary())
    labels = read_labels(sample.labels_sparse, ts.grid, classes=load_class_table(sample.classes_json))
    facts = collect_facts(ts, res.path, None, work, labels=labels, pixels=3000)
    head, summary = fit_text_head(facts, TextFitConfig(epochs=20))
    return save_text_model(work / "both_text.pimc", res.path, head, summary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNG (default: docs/img)")
    ap.add_argument("--query", default=QUERY, help=f"the sentence of the text query (default: {QUERY!r})")
    ap.add_argument("--timeout", type=float, default=200, help="seconds before QGIS is stopped")
    ap.add_argument("--keep", action="store_true", help="keep the temporary profile and data (printed)")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / NAME).unlink(missing_ok=True)
    if not have_tools("radar_text_screenshot"):
        return 2
    with work_folder("pimc_radar_text_", args.keep) as work:
        sys.path.insert(0, str(ROOT))
        import plugin_zip

        from pimc_core.datasets.synthetic import make_synthetic

        sample = make_synthetic(work / "sample", size=64, n_dates=24, seed=3, sar=True)
        summer = min(sample.images, key=lambda p: abs(int(p.stem[-4:]) - 715))  # a mid-July date
        model = make_model(sample, work)
        write_profile(work / "qgis-config", plugin_zip.build(work / "pimc.zip"))
        st, log, rc = run_qgis(work, STARTUP, {
            "out": str(out), "maps": str(work / "maps"), "manifest": str(sample.manifest),
            "sar": str(sample.sar_manifest), "image": str(summer), "model": str(model), "query": args.query,
            "name": NAME, "width": WIDTH, "height": HEIGHT + 120, "dock_width": 620, "layers_width": 330,
            "watchdog_s": max(10.0, args.timeout - 10),
        }, args.timeout)  # 120 px taller than screenshots.py: the whole Time series section in view
        return report("radar_text_screenshot", st, log, rc, out, (NAME,))


if __name__ == "__main__":
    sys.exit(main())
