"""The time-series panel and the pixel inspector inside real QGIS: validation messages, project
layers → manifest, a simulated click on a known pixel (the figure's data equal the core's),
errors shown in the panel, saving, and the time a click takes on a 100-date stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.qgis_helpers import flush_deletes


@pytest.fixture
def plugin(qgis_iface, qgis_new_project, qgis_canvas):
    """The loaded plugin with its panel shown; the canvas in the fixture's CRS (UTM 31N)."""
    from qgis.core import QgsCoordinateReferenceSystem

    import qgis_plugin

    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32631"))
    p = qgis_plugin.classFactory(qgis_iface)
    p.initGui()
    p.show_panel(True)
    yield p
    p.unload()
    flush_deletes()


def click(plugin, x: float, y: float) -> bool:
    """What a left click at map point (x, y) does: the map tool's handler."""
    from qgis.core import QgsPointXY

    if not plugin.inspector_action.isChecked():
        plugin.inspector_action.trigger()  # the user picks the tool …
    assert plugin.iface.mapCanvas().mapTool() is plugin.map_tool
    plugin.map_tool.handle_point(QgsPointXY(x, y))  # … and clicks
    return plugin.dock.last_result is not None


def test_validation_shows_the_core_message(plugin, tmp_path, multiband_stack):
    from pimc_core.errors import PimcError
    from pimc_core.io.timeseries import open_series

    dock = plugin.dock
    for bad in (tmp_path / "nope.yaml", tmp_path / "empty"):
        if bad.name == "empty":
            bad.mkdir()
        dock.set_source_path(str(bad))
        assert dock.validate() is None
        with pytest.raises(PimcError) as e:
            open_series(bad)
        assert dock.status_label.text() == str(e.value)
        assert "c62828" in dock.status_label.styleSheet()  # shown as an error

    folder, dates, _ = multiband_stack
    dock.set_source_path(str(folder / "manifest.yaml"))
    dock.set_sensor("landsat89-c2l2")  # the preset overrides the manifest's …
    assert dock.validate() is not None
    dock.set_sensor(None)
    ts = dock.validate()
    assert ts is not None and ts.dates == tuple(dates)
    text = dock.status_label.text()
    assert text.startswith("✓ 3 dates 2023-01-05 … 2023-03-01") and "5×4 px" in text and "EPSG:32631" in text

    dock.bands_edit.setText("red=3,nir")
    assert dock.validate() is None
    assert dock.status_label.text().startswith("band mapping: expected name=index pairs")
    dock.bands_edit.setText("")


def test_bad_source_click_shows_why(plugin, tmp_path):
    plugin.dock.set_source_path(str(tmp_path / "missing.yaml"))
    assert not click(plugin, 600035, 4999975)
    assert plugin.dock.pixel_label.text().startswith("choose a valid time series first:")
    assert "no such file or folder" in plugin.dock.pixel_label.text()


def test_project_layers_table_to_manifest(plugin, multiband_stack, qgis_new_project):
    from qgis.core import QgsProject, QgsRasterLayer

    folder, dates, _ = multiband_stack
    files = sorted(folder.glob("S2_*.tif"))
    # added in reverse order, one with a date only in its file name, one undated layer
    layers = [QgsRasterLayer(str(f), f.stem if i != 1 else "middle date") for i, f in enumerate(files)]
    undated_file = folder / "other" / "scene.tif"  # no date in the layer name nor the file name
    undated_file.parent.mkdir()
    undated_file.write_bytes(files[0].read_bytes())
    extra = QgsRasterLayer(str(undated_file), "no date here")
    QgsProject.instance().addMapLayers(layers[::-1] + [extra])

    dock = plugin.dock
    dock.mode_layers.setChecked(True)
    table = dock.layers_table
    rows = table.rows(all_rows=True)
    assert [r["date"] for r in rows] == [None] + list(dates)  # sorted by date, undated first
    assert [r["checked"] for r in rows] == [False, True, True, True]
    assert rows[2]["name"] == "middle date" and rows[2]["date"] == dates[1]  # from the file name

    ts = dock.validate()
    assert ts is not None and ts.dates == tuple(dates), dock.status_label.text()
    manifest = Path(ts.source)
    assert manifest.name == "manifest.yaml" and manifest.parent == Path(dock._tmpdir)

    table.set_date(1, "20230214")  # edit: the same date as another layer → the core says so
    assert table.item(1, 1).text() == "2023-02-14" or table.item(0, 1).text() == "2023-02-14"
    assert dock.validate() is None
    assert "two rasters for 2023-02-14" in dock.status_label.text()

    table.set_date(0, "")  # tick the undated layer: the panel asks for a date
    table.reload()
    undated = [i for i in range(table.rowCount()) if table.item(i, 1).text() == ""]
    for i in undated:
        from qgis.PyQt.QtCore import Qt

        table.item(i, 0).setCheckState(Qt.CheckState.Checked)
    assert dock.validate() is None
    assert "no date" in dock.status_label.text() and "YYYY-MM-DD" in dock.status_label.text()
    dock.mode_path.setChecked(True)


def test_pixel_inspector_known_pixel_matches_core(plugin, multiband_stack, qgis_canvas):
    from pimc_core.io.timeseries import open_series
    from pimc_core.series.pixel import pixel_index_series
    from pimc_core.series.recurrence import stack_recurrence_plots

    folder, dates, dn = multiband_stack
    manifest = folder / "manifest.yaml"
    dock = plugin.dock
    dock.set_source_path(str(manifest))
    dock.set_indices(("ndvi", "evi"))

    assert click(plugin, 600035.0, 4999975.0), dock.pixel_label.text()  # centre of row 2, col 3
    r = dock.last_result
    assert (r.row, r.col) == (2, 3)
    assert dock.figure_view.has_figure() and dock.save_button.isEnabled()
    assert dock.pixel_label.text().startswith("pixel row 2, col 3")

    ps = pixel_index_series(open_series(manifest), 2, 3, ("ndvi", "evi"))
    plots = stack_recurrence_plots(ps.filled[:, :, 0, 0][None])[0]
    np.testing.assert_array_equal(r.plots, plots)
    np.testing.assert_array_equal(r.series, ps.filled[:, :, 0, 0])
    red, nir = dn[:, 2, 2, 3] * 1e-4, dn[:, 3, 2, 3] * 1e-4
    np.testing.assert_allclose(r.series[0], (nir - red) / (nir + red), rtol=1e-5)

    # the figure in the panel shows exactly these data: curves on top, one RP per index below
    fig = dock.figure_view.figure
    curves = fig.axes[0]
    ndvi_line = next(line for line in curves.get_lines() if line.get_label() == "NDVI")
    np.testing.assert_allclose(ndvi_line.get_ydata(), ps.filled[0, :, 0, 0])
    rp_axes = [a for a in fig.axes if a.get_title().startswith("RP ")]
    assert [a.get_title() for a in rp_axes] == ["RP NDVI", "RP EVI"]
    for a, expect in zip(rp_axes, plots):
        np.testing.assert_array_equal(np.asarray(a.images[0].get_array()), expect)
    pix = dock.figure_view.source_pixmap()
    assert (pix.width(), pix.height()) == tuple(int(v) for v in fig.canvas.get_width_height())


def test_click_in_another_canvas_crs(plugin, multiband_stack, qgis_canvas):
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject

    folder, _, _ = multiband_stack
    plugin.dock.set_source_path(str(folder / "manifest.yaml"))
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    p = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32631"), wgs84, QgsProject.instance()).transform(
        QgsPointXY(600045.0, 4999965.0))  # centre of row 3, col 4
    qgis_canvas.setDestinationCrs(wgs84)
    assert click(plugin, p.x(), p.y()), plugin.dock.pixel_label.text()
    assert (plugin.dock.last_result.row, plugin.dock.last_result.col) == (3, 4)


def test_click_outside_or_on_a_cloudy_pixel_shows_the_error(plugin, multiband_stack, tmp_path):
    folder, _, _ = multiband_stack
    dock = plugin.dock
    dock.set_source_path(str(folder / "manifest.yaml"))
    assert click(plugin, 600035.0, 4999975.0)

    assert not click(plugin, 0.0, 0.0)
    assert "is outside the raster" in dock.pixel_label.text()
    assert not dock.figure_view.has_figure() and not dock.save_button.isEnabled()

    assert not click(plugin, 600005.0, 4999995.0)  # (0, 0): a cloud on date 2 → 2 valid of 3
    assert dock.pixel_label.text() == (
        "pixel row 0, col 0 has only 2 valid observation(s) of 3 (minimum 3); "
        "no recurrence plot without inventing data"
    )
    dock.min_valid_spin.setValue(2)
    assert click(plugin, 600005.0, 4999995.0), dock.pixel_label.text()

    dock.set_indices(())
    assert not click(plugin, 600035.0, 4999975.0)
    assert dock.pixel_label.text() == "tick at least one index"


def test_save_figure(plugin, multiband_stack, tmp_path):
    folder, _, _ = multiband_stack
    out = tmp_path / "saved"
    out.mkdir()
    plugin.dock.set_source_path(str(folder / "manifest.yaml"))
    assert plugin.dock.save_figure(out / "none.png") is None  # nothing shown yet
    assert click(plugin, 600035.0, 4999975.0)
    png = plugin.dock.save_figure(out / "pixel.png")
    svg = plugin.dock.save_figure(out / "pixel.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:500]
    assert sorted(p.name for p in out.iterdir()) == ["pixel.png", "pixel.svg"]


def test_clicks_on_100_date_stack_each_show_that_pixel(plugin, tmp_path):
    """Clicks on a 100-date stack: every click shows the clicked pixel's own plots (no stale
    result from the previous click) and records the time of each stage. How fast a click is
    belongs to the benchmarks (the panel's stage timings are printed here for the log only)."""
    from pimc_core.datasets.synthetic import make_synthetic

    s = make_synthetic(tmp_path / "s100", size=16, n_dates=100, seed=2, cloud_fraction=0.05)
    dock = plugin.dock
    dock.set_source_path(str(s.manifest))
    ts = dock.validate()
    assert ts is not None and len(ts) == 100
    seen = []
    for rc in ((3, 4), (8, 8), (12, 2), (1, 14)):
        assert click(plugin, *ts.grid.xy(*rc)), dock.pixel_label.text()
        res = dock.last_result
        assert res.plots.shape == (3, 100, 100)
        assert set(dock.last_timing) >= {"pixel", "figure", "total"}
        seen.append(res.plots)
    # four different pixels of a field mosaic: at least two different plots
    assert any(not np.allclose(seen[0], p) for p in seen[1:])
    print("\nlast click:", ", ".join(f"{k} {v:.3f} s" for k, v in dock.last_timing.items()))


def test_the_dock_answers_the_names_of_its_sections(plugin):
    """The panel is four section widgets; the dock still answers their widgets, state and
    methods under the names it always had (plugin.py, scripts/screenshots.py, these tests)."""
    from qgis.PyQt.QtWidgets import QDockWidget

    from qgis_plugin.dock import SECTION_NAMES

    dock = plugin.dock
    names = [n for ns in SECTION_NAMES.values() for n in ns]
    assert len(names) == len(set(names))  # each name lives on one section
    assert not [n for n in names if hasattr(QDockWidget, n)]  # and hides nothing of QDockWidget
    for box, ns in SECTION_NAMES.items():
        section = getattr(dock, box)
        assert dock.isAncestorOf(section)  # shown in the panel
        for name in ns:
            assert getattr(dock, name) == getattr(section, name), name
    assert [dock.inspector_box.objectName(), dock.maps_box.objectName(), dock.fit_box.objectName()] == [
        "PimcInspectorBox", "PimcMapsBox", "PimcFitBox"]
