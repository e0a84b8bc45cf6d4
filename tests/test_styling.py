"""Colour tables and QGIS styles: what the core writes is what QGIS 3.22 reads back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from pimc_core.errors import ConfigError
from pimc_core.io.classes import hex_to_rgba, normalise_class_table
from pimc_core.io.grid import Grid
from pimc_core.io.raster_io import write_geotiff
from pimc_core.maps.styling import class_colormap, write_class_qml, write_ramp_qml

TABLE = [
    {"id": 1, "name": "winter wheat", "color": "#e3b505"},
    {"id": 3, "name": "maize & <beans>", "color": "#F58231"},
    {"id": 7, "name": "water"},  # no colour: gets one from the palette
]
GRID = Grid(CRS.from_epsg(32631), Affine(10, 0, 500000, 0, -10, 4800000), width=20, height=10)


def test_hex_and_colormap():
    assert hex_to_rgba("#e3b505") == (227, 181, 5, 255)
    assert hex_to_rgba("00ff0080") == (0, 255, 0, 128)
    assert hex_to_rgba((1, 2, 3)) == (1, 2, 3, 255)
    cmap = class_colormap(TABLE)
    assert cmap[0] == (0, 0, 0, 0)
    assert cmap[1] == (227, 181, 5, 255) and cmap[3] == (245, 130, 49, 255)
    assert set(cmap) == {0, 1, 3, 7} and cmap[7][3] == 255


@pytest.mark.parametrize(
    "table, pattern",
    [
        ([{"id": 0, "name": "x"}], "differ from the nodata value 0"),
        ([{"id": 256}], r"0\.\.255"),
        ([{"id": 2}, {"id": 2}], "appears twice"),
        ([{"name": "no id"}], "has no 'id'"),
        ([{"id": 1.5}], "not an integer"),
        ([{"id": 1, "color": "red"}], "not '#rrggbb'"),
    ],
)
def test_bad_class_tables_are_config_errors(table, pattern):
    with pytest.raises(ConfigError, match=pattern):
        normalise_class_table(table)


def test_class_qml_structure(tmp_path):
    path = write_class_qml(tmp_path / "c.qml", TABLE)
    root = ET.parse(path).getroot()
    assert root.tag == "qgis"
    rr = root.find("./pipe/rasterrenderer")
    assert rr.get("type") == "paletted" and rr.get("band") == "1"
    entries = rr.findall("./colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label"), e.get("color"), e.get("alpha")) for e in entries][:2] == [
        ("1", "winter wheat", "#e3b505", "255"), ("3", "maize & <beans>", "#f58231", "255")]
    assert len(entries) == 3  # nodata 0 is not in the legend


def test_ramp_qml_rejects_bad_range(tmp_path):
    with pytest.raises(ConfigError, match="vmin < vmax"):
        write_ramp_qml(tmp_path / "r.qml", 1, 1)
    assert not (tmp_path / "r.qml").exists()


def test_qgis_loads_class_style_with_names_and_colours(qgis_app, tmp_path):
    from qgis.core import QgsRasterLayer

    data = np.array([[0, 1, 3, 7] * 5] * 10, dtype=np.uint8)
    tif = write_geotiff(tmp_path / "classes.tif", data, GRID, nodata=0, colormap=class_colormap(TABLE))
    qml = write_class_qml(tmp_path / "style.qml", TABLE)
    layer = QgsRasterLayer(str(tif), "classes")
    assert layer.isValid()
    msg, ok = layer.loadNamedStyle(str(qml))
    assert ok, msg
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    classes = renderer.classes()
    got = [(int(c.value), c.label, c.color.name(), c.color.alpha()) for c in classes]
    want = [(c["id"], c["name"], c["color"], 255) for c in normalise_class_table(TABLE)]
    assert got == want


def test_qgis_loads_sidecar_qml_as_default_style(qgis_app, tmp_path):
    """``classes.qml`` next to ``classes.tif`` is what QGIS applies when the layer is opened."""
    from qgis.core import QgsRasterLayer

    tif = write_geotiff(tmp_path / "classes.tif", np.ones((10, 20), np.uint8), GRID, nodata=0)
    write_class_qml(tmp_path / "classes.qml", TABLE)
    layer = QgsRasterLayer(str(tif), "classes")
    _, ok = layer.loadDefaultStyle()
    assert ok
    assert layer.renderer().type() == "paletted"
    assert [c.label for c in layer.renderer().classes()] == ["winter wheat", "maize & <beans>", "water"]


def test_qgis_loads_ramp_style(qgis_app, tmp_path):
    from qgis.core import QgsRasterLayer

    tif = write_geotiff(tmp_path / "conf.tif", np.linspace(0, 1, 200, dtype=np.float32).reshape(10, 20), GRID)
    qml = write_ramp_qml(tmp_path / "conf.qml", 0.0, 1.0, ["#000000", "#ff0000", "#ffffff"])
    layer = QgsRasterLayer(str(tif), "conf")
    msg, ok = layer.loadNamedStyle(str(qml))
    assert ok, msg
    r = layer.renderer()
    assert r.type() == "singlebandpseudocolor"
    assert (r.classificationMin(), r.classificationMax()) == (0.0, 1.0)
    items = r.shader().rasterShaderFunction().colorRampItemList()
    assert [(i.value, i.color.name()) for i in items] == [(0.0, "#000000"), (0.5, "#ff0000"), (1.0, "#ffffff")]
