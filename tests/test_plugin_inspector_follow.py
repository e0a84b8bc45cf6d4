"""The pixel inspector follows the series inside real QGIS: index choices by the bands it has
(no EVI without a blue band), the clicked pixel and the similarity query marked on the map, the
old figure cleared when the source changes; the legend of a long series beside the curves."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.conftest import write_tif
from tests.qgis_helpers import wait_for
from tests.test_plugin_dock import click, plugin  # noqa: F401 (fixture: the panel, canvas in UTM 31N)


@pytest.fixture
def no_blue_stack(tmp_path):
    """3 dates of a green, red, nir, swir1 stack (Landsat-like, no blue), 5x4 px, + manifest."""
    rng = np.random.default_rng(1)
    dates = [dt.date(2023, 4, 5), dt.date(2023, 6, 14), dt.date(2023, 8, 1)]
    folder = tmp_path / "noblue"
    folder.mkdir()
    for d in dates:
        write_tif(folder / f"L8_{d:%Y%m%d}.tif", rng.integers(500, 4000, size=(4, 4, 5)).astype(np.uint16), nodata=0,
                  descriptions=["green", "red", "nir", "swir1"])
    (folder / "manifest.yaml").write_text(
        "scale: 0.0001\noffset: 0.0\nnodata: 0\nbands: {green: 1, red: 2, nir: 3, swir1: 4}\nitems:\n"
        + "".join(f"  - {{date: {d.isoformat()}, path: L8_{d:%Y%m%d}.tif}}\n" for d in dates))
    return folder / "manifest.yaml"


def test_indices_follow_the_bands(plugin, no_blue_stack, multiband_stack):  # noqa: F811
    dock = plugin.dock
    assert dock.selected_indices() == ("ndvi", "evi", "savi")
    dock.set_source_path(str(no_blue_stack))
    assert dock.validate() is not None, dock.status_label.text()
    evi = dock.index_checks["evi"]
    assert not evi.isEnabled() and not evi.isChecked() and "blue" in evi.toolTip()
    assert dock.selected_indices() == ("ndvi", "savi")
    assert click(plugin, 600025.0, 4999985.0), dock.pixel_label.text()  # the first click works
    # a series with a blue band: EVI is offered again, ticked as before
    dock.set_source_path(str(multiband_stack[0] / "manifest.yaml"))
    assert dock.validate() is not None
    assert evi.isEnabled() and evi.isChecked() and evi.toolTip() == ""


def test_only_evi_wanted_and_no_blue_falls_back_to_an_available_index(plugin, no_blue_stack):  # noqa: F811
    dock = plugin.dock
    dock.set_indices(("evi",))
    dock.set_source_path(str(no_blue_stack))
    assert dock.validate() is not None
    assert dock.selected_indices() and "evi" not in dock.selected_indices()


def test_clicked_pixel_and_query_marked_old_figure_cleared(plugin, multiband_stack, no_blue_stack, qgis_canvas):  # noqa: F811
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject

    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))  # not the series CRS
    dock = plugin.dock
    dock.set_source_path(str(multiband_stack[0] / "manifest.yaml"))
    to_canvas = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32631"),
                                       QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    clicked = to_canvas.transform(QgsPointXY(600033.0, 4999977.0))  # inside row 2, col 3, off its centre
    if not plugin.inspector_action.isChecked():
        plugin.inspector_action.trigger()
    plugin.map_tool.handle_point(clicked)
    assert dock.last_result is not None, dock.pixel_label.text()
    markers = dock.inspector_box.markers
    centre = to_canvas.transform(QgsPointXY(600035.0, 4999975.0))  # the pixel's centre, canvas CRS
    assert markers.pixel is not None and markers.pixel.isVisible()
    assert markers.pixel.center().distance(centre) < 1e-3
    assert markers.pixel.scene() is qgis_canvas.scene()

    # the similarity map marks its query pixel
    dock.set_model_path("builtin:nearest-centroid")
    dock.set_map_products(("similarity",))
    from qgis.core import QgsGeometry, QgsRectangle

    from qgis_plugin.region_tools import RegionChoice

    whole = QgsGeometry.fromRect(QgsRectangle(600000, 4999960, 600050, 5000000))
    task = dock.run_region(RegionChoice(whole, QgsCoordinateReferenceSystem("EPSG:32631"), "rectangle", "rectangle"))
    assert task is not None, dock.map_status.text()
    assert markers.query is not None and markers.query.center().distance(centre) < 1e-3
    wait_for(task)

    # another series: the figure, the markers and the query go
    dock.set_source_path(str(no_blue_stack))
    assert dock.validate() is not None
    assert not dock.figure_view.has_figure() and not dock.save_button.isEnabled()
    assert markers.pixel is None and markers.query is None
    assert dock.last_query_xy is None
    assert dock.pixel_label.text() == "Pick the pixel inspector and click the map."


def test_legend_beside_the_curves_on_a_long_series():
    from pimc_core.viz.plotting import pixel_figure

    t = 120
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=6 * i) for i in range(t)]
    x = np.linspace(0, 12 * np.pi, t)
    series = np.stack([0.5 + 0.4 * np.sin(x), 0.4 + 0.3 * np.sin(x), 0.45 + 0.35 * np.sin(x)])
    raw = series.copy()
    raw[:, ::7] = np.nan
    fig = pixel_figure(dates, raw, series, np.zeros((3, t, t)), ("ndvi", "evi", "savi"))
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    plot_area = ax.get_window_extent()
    assert legend.x0 >= plot_area.x1 - 1  # right of the curves, not over them
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["NDVI", "EVI", "SAVI"]
