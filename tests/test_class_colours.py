"""Default class colours by name (water blue, forests greens, crops yellows/oranges, grass light
green, bare browns, urban greys) where a class table gives none; the panel takes a classes.json."""

from __future__ import annotations

import json

import pytest

from pimc_core.io.classes import hex_to_rgba, name_colour, normalise_class_table


def hue_family(colour: str) -> str:
    import colorsys

    r, g, b, _ = hex_to_rgba(colour)
    h, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
    if s < 0.15:
        return "grey"
    deg = h * 360
    if 190 <= deg <= 230:
        return "blue"
    if 80 <= deg < 160:
        return "green"
    if 35 <= deg < 60:
        return "yellow"
    if 15 <= deg < 35:
        return "orange/brown"
    return f"other ({deg:.0f})"


@pytest.mark.parametrize(("name", "family"), [
    ("water", "blue"), ("Open water", "blue"), ("lakes", "blue"),
    ("coniferous forest", "green"), ("broadleaf_forest", "green"), ("woodland", "green"),
    ("grassland", "green"), ("meadow", "green"), ("pasture", "green"),
    ("winter_wheat", "yellow"), ("spring barley", "yellow"), ("rapeseed", "yellow"),
    ("maize", "orange/brown"), ("bare soil", "orange/brown"), ("fallow", "orange/brown"),
    ("urban", "grey"), ("built-up", "grey"),
])
def test_name_says_the_colour(name, family):
    assert hue_family(name_colour(name)) == family, name_colour(name)


def test_grass_is_lighter_than_forest_and_words_are_whole():
    def value(c):
        return sum(hex_to_rgba(c)[:3])

    assert value(name_colour("grassland")) > value(name_colour("forest"))
    assert name_colour("seasonal crops") == name_colour("crops")  # not "sea"
    assert name_colour("first class") is None and name_colour("class 7") is None


def test_table_fills_in_distinct_colours_by_name_and_keeps_given_ones():
    table = normalise_class_table([
        {"id": 1, "name": "wheat"}, {"id": 2, "name": "durum wheat"}, {"id": 3, "name": "water", "color": "#123456"},
        {"id": 4, "name": "lake"}, {"id": 5, "name": "grassland"}, {"id": 6}, {"id": 7, "name": "zzz"},
    ])
    colours = [c["color"] for c in table]
    assert colours[2] == "#123456"  # given: kept
    assert len(set(colours)) == len(colours)  # two cereals, two waters: different shades
    assert hue_family(colours[0]) == hue_family(colours[1]) == "yellow"
    assert hue_family(colours[3]) == "blue" and hue_family(colours[4]) == "green"
    assert table[5]["name"] == "class 6"


def test_panel_trains_with_a_classes_json(qgis_iface, qgis_new_project, tiny_sample, tmp_path):
    """A label raster + a classes.json in the panel: the model carries those names and colours;
    a bad classes.json is refused before the training starts, naming the file."""
    from qgis.core import QgsProject, QgsRasterLayer

    import qgis_plugin
    from pimc_core.models.model_file import read_metadata
    from tests.qgis_helpers import flush_deletes, wait_for

    plugin = qgis_plugin.classFactory(qgis_iface)
    plugin.initGui()
    plugin.show_panel(True)
    try:
        dock = plugin.dock
        dock.set_source_path(str(tiny_sample.manifest))
        assert dock.validate() is not None
        layer = QgsRasterLayer(str(tiny_sample.labels_sparse), "sparse labels")
        QgsProject.instance().addMapLayer(layer)
        dock.fit_layer_combo.setLayer(layer)
        dock.set_fit_preset("try-out")
        dock.fit_out_widget.setFilePath(str(tmp_path / "named.pimc"))
        bad = tmp_path / "bad.json"
        bad.write_text("{}")
        dock.fit_classes_widget.setFilePath(str(bad))
        assert dock.start_fit() is None
        assert str(bad) in dock.fit_status.text()

        ids = sorted(c["id"] for c in json.loads(tiny_sample.classes_json.read_text()))
        table = [{"id": i, "name": f"my class {i}"} for i in ids]
        table[0]["name"], table[1]["name"] = "river", "oak forest"
        good = tmp_path / "classes.json"
        good.write_text(json.dumps(table))
        dock.fit_classes_widget.setFilePath(str(good))
        task = dock.start_fit()
        assert task is not None, dock.fit_status.text()
        wait_for(task, timeout=180)
        assert task.succeeded, task.error
        meta = read_metadata(tmp_path / "named.pimc")
        by_id = {c["id"]: c for c in meta["classes"]}
        assert by_id[ids[0]]["name"] == "river" and hue_family(by_id[ids[0]]["color"]) == "blue"
        assert by_id[ids[1]]["name"] == "oak forest" and hue_family(by_id[ids[1]]["color"]) == "green"
    finally:
        plugin.unload()
        flush_deletes()
