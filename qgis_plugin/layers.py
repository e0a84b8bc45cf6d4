"""Map results as project layers: one layer-tree group per run, named after the region, its
number in the project, the model and the time (``PIMC region 2 — rectangle — sample.pimc —
2024-05-01 14:03``); each layer says product, model and region (``Classes — sample.pimc —
region 2``), so two runs in the legend are told apart.

The core writes a ``.qml`` style next to ``classes.tif``, ``clusters.tif``, ``confidence.tif`` and
``similarity.tif``; QGIS applies it as the layer's default style when the layer is created
(paletted renderer with the class names and colours; a fixed colour ramp). This module checks
that it did, and styles the rest:

* class / cluster maps: when the ``.qml`` was not applied (deleted, unreadable — QGIS then shows
  the GeoTIFF's colour table with the ids as labels), a paletted renderer is built from the
  colour table and the class names in the band metadata;
* forecast: a single-band pseudocolour ramp over the vegetation-index range on the first
  forecast date (the other dates are one band each, pick them in the layer properties);
* phenology: its ``.qml`` (the start of season on a ramp over the stack's days; the other
  metrics are one band each); without it, a ramp over band 1's own range;
* probabilities / embeddings: QGIS's default multi-band rendering.

Only the top layer of a group is visible, so the maps do not hide each other when drawn.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Mapping, Sequence

from qgis.core import (
    Qgis,
    QgsColorRampShader,
    QgsLayerTreeGroup,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

from .bootstrap import import_core
from .mapping import MAP_PRODUCTS

# QGIS 3.22: QgsColorRampShader.Type.Interpolated; QGIS 3.30+: Qgis.ShaderInterpolationMethod.Linear
_NEW_RAMP = getattr(Qgis, "ShaderInterpolationMethod", None)
RAMP_INTERPOLATED = _NEW_RAMP.Linear if _NEW_RAMP is not None else QgsColorRampShader.Type.Interpolated

TITLES = {
    "classes": "Classes",
    "clusters": "Clusters",
    "similarity": "Similarity",
    "phenology": "Phenology",
    "confidence": "Confidence",
    "uncertainty": "Uncertainty",
    "forecast": "Forecast",
    "probabilities": "Class probabilities",
    "embeddings": "Embeddings",
}
#: Vegetation-index ramp of the forecast layer (value, colour).
INDEX_RAMP = ((-0.2, "#a6611a"), (0.2, "#dfc27d"), (0.45, "#a6d96a"), (0.7, "#1a9641"), (0.95, "#00441b"))
#: Viridis at five stops: the ramp of continuous maps whose ``.qml`` is missing (low → high).
VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
PALETTED = ("classes", "clusters")


#: The custom property of a run's group: its region number in the project.
REGION_PROPERTY = "pimc/region"


def group_name(when: dt.datetime | None = None, *, region: str = "", model: str = "") -> str:
    """``PIMC region 2 — rectangle — sample.pimc — 2024-05-01 14:03:07`` (``region``: "region 2 —
    rectangle"; without region and model: ``PIMC 2024-05-01 14:03:07``)."""
    parts = [p for p in (region, model, f"{(when or dt.datetime.now()):%Y-%m-%d %H:%M:%S}") if p]
    return "PIMC " + " — ".join(parts)


def next_region_number(project: QgsProject | None = None) -> int:
    """1 + the highest region number of the PIMC groups in the project's layer tree."""
    root = (project or QgsProject.instance()).layerTreeRoot()
    numbers = [int(g.customProperty(REGION_PROPERTY, 0) or 0) for g in root.findGroups()]
    return max(numbers, default=0) + 1


def _product_of(path: Path) -> str:
    return path.stem


def class_table_of(path: str | Path) -> list[dict]:
    """The class table in a class / cluster GeoTIFF: ids and names from the band tags
    (``class_<id>``), colours from its colour table; empty when it has none."""
    import rasterio

    out = []
    with rasterio.open(path) as ds:
        tags = ds.tags(1)
        try:
            cmap = ds.colormap(1)
        except ValueError:
            cmap = {}
    for key, name in tags.items():
        if key.startswith("class_") and key[6:].isdigit():
            i = int(key[6:])
            r, g, b, *_ = cmap.get(i, (128, 128, 128, 255))
            out.append({"id": i, "name": name, "color": f"#{r:02x}{g:02x}{b:02x}"})
    return sorted(out, key=lambda c: c["id"])


def paletted_renderer(layer: QgsRasterLayer, table: Sequence[Mapping]) -> QgsPalettedRasterRenderer:
    classes = [
        QgsPalettedRasterRenderer.Class(int(c["id"]), QColor(c["color"]), str(c["name"])) for c in table
    ]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)


def ramp_renderer(layer: QgsRasterLayer, items: Sequence[tuple[float, str]], band: int = 1):
    shader_fn = QgsColorRampShader(float(items[0][0]), float(items[-1][0]))
    shader_fn.setColorRampType(RAMP_INTERPOLATED)
    shader_fn.setColorRampItemList(
        [QgsColorRampShader.ColorRampItem(float(v), QColor(c), f"{v:g}") for v, c in items]
    )
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    r = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
    r.setClassificationMin(float(items[0][0]))
    r.setClassificationMax(float(items[-1][0]))
    return r


def style_layer(layer: QgsRasterLayer, product: str) -> str:
    """Make sure ``layer`` shows ``product`` well; return how it is styled (``qml``, ``palette``,
    ``ramp`` or ``default``)."""
    renderer = layer.renderer()
    kind = renderer.type() if renderer is not None else ""
    if product in PALETTED:
        table = class_table_of(layer.source())
        if kind == "paletted" and renderer.classes() and (
                not table or {int(c.value): c.label for c in renderer.classes()} == {c["id"]: c["name"] for c in table}):
            return "qml"  # the sidecar: names and colours (QGIS alone would show the colour table as 0, 1, 2 …)
        if table:
            layer.setRenderer(paletted_renderer(layer, table))
            return "palette"
        return "default"
    if product in ("confidence", "similarity"):
        if kind == "singlebandpseudocolor":
            return "qml"
        layer.setRenderer(ramp_renderer(layer, list(zip((0.0, 0.25, 0.5, 0.75, 1.0), VIRIDIS))))
        return "ramp"
    if product == "forecast":
        layer.setRenderer(ramp_renderer(layer, INDEX_RAMP))
        return "ramp"
    if product == "phenology":
        if kind == "singlebandpseudocolor":
            return "qml"
        stats = layer.dataProvider().bandStatistics(1)
        lo, hi = stats.minimumValue, max(stats.maximumValue, stats.minimumValue + 1)
        layer.setRenderer(ramp_renderer(layer, [(lo + (hi - lo) * i / 4, c) for i, c in enumerate(VIRIDIS)]))
        return "ramp"
    return "default"


def add_result_layers(files: Mapping[str, str | Path], *, name: str | None = None, project: QgsProject | None = None,
                      subtitle: str = "", region: int | None = None) -> tuple[QgsLayerTreeGroup, list[QgsRasterLayer]]:
    """Add the GeoTIFFs of a map run (product → file) as layers in a new group at the top of the
    layer tree; return the group and the layers (top first). Layer names are
    ``<product> — <subtitle>``; ``region`` is kept on the group (:func:`next_region_number`).

    Raises:
        InputError: a file QGIS cannot open as a raster layer.
    """
    errors = import_core("pimc_core.errors")
    project = project or QgsProject.instance()
    order = [p for p in MAP_PRODUCTS if p in files] + [p for p in files if p not in MAP_PRODUCTS]
    layers: list[QgsRasterLayer] = []
    for product in order:
        path = Path(files[product])
        title = TITLES.get(product, product)
        if product == "clusters":
            n = len(class_table_of(path))
            title = f"Clusters (k={n})" if n else title
        layer = QgsRasterLayer(str(path), f"{title}{(' — ' + subtitle) if subtitle else ''}", "gdal")
        if not layer.isValid():
            raise errors.InputError(f"{path}: QGIS cannot open the map as a raster layer")
        style_layer(layer, product)
        layer.setCustomProperty("pimc/product", product)
        layers.append(layer)
    root = project.layerTreeRoot()
    group = root.insertGroup(0, name or group_name())
    if region is not None:
        group.setCustomProperty(REGION_PROPERTY, int(region))
    for i, layer in enumerate(layers):
        project.addMapLayer(layer, False)
        node = group.addLayer(layer)
        node.setItemVisibilityChecked(i == 0)
        _set_expanded(node, i == 0)  # the legend of the top map (class names) shows, the rest is folded
    _set_expanded(group, True)
    return group, layers


def _set_expanded(node, expanded: bool) -> None:
    """Expand / fold a layer-tree node in the views too (a view only follows the changes it is
    told about, and a new node is 'expanded' already without the view showing it so)."""
    node.setExpanded(not expanded)
    node.setExpanded(expanded)


__all__ = ["REGION_PROPERTY", "TITLES", "add_result_layers", "class_table_of", "group_name", "next_region_number",
           "paletted_renderer", "style_layer"]
