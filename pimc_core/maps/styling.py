"""Map styling: GDAL colour tables and QGIS ``.qml`` style sidecars.

QGIS loads ``<name>.qml`` next to ``<name>.tif`` as the layer's default style, so a class map
written with :func:`write_class_qml` opens with the class names and colours in the legend, and a
continuous map (confidence, similarity) with :func:`write_ramp_qml` opens with a fixed colour
ramp instead of a per-view stretch.

The QML written here follows what QGIS 3.22 itself saves (``QgsMapLayer.saveNamedStyle``) for a
paletted and a single-band pseudocolour renderer; ``tests/test_styling.py`` loads them back with
``QgsRasterLayer.loadNamedStyle``. Nothing here imports QGIS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence
from xml.sax.saxutils import quoteattr

from pimc_core.errors import ConfigError
from pimc_core.io.classes import _rgb_hex, hex_to_rgba, normalise_class_table

__all__ = ["DEFAULT_RAMP", "class_colormap", "class_qml", "ramp_qml", "write_class_qml", "write_ramp_qml"]


#: Viridis at five stops: the ramp of continuous maps (confidence, similarity).
DEFAULT_RAMP: tuple[str, ...] = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")


def class_colormap(class_table: Sequence[Mapping], nodata: int = 0) -> dict[int, tuple[int, int, int, int]]:
    """The colour table rasterio's ``write_colormap`` expects: value → (r, g, b, a).

    The nodata value is transparent black; classes without a colour get :data:`PALETTE` colours.
    """
    cmap: dict[int, tuple[int, int, int, int]] = {int(nodata): (0, 0, 0, 0)}
    for c in normalise_class_table(class_table, nodata=nodata):
        cmap[c["id"]] = hex_to_rgba(c["color"])
    return cmap


# ----------------------------------------------------------------------------- QML
_HEAD = """<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <pipe>
    <provider>
      <resampling enabled="false" maxOversampling="2" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour"/>
    </provider>
"""  # noqa: E501 (QGIS's own QML lines)
_MINMAX = """      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
"""
_TAIL = """    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" invertColors="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""  # noqa: E501 (QGIS's own QML lines)


def _write_text_atomic(path: Path, text: str) -> Path:
    from pimc_core.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def class_qml(class_table: Sequence[Mapping], nodata: int = 0, band: int = 1) -> str:
    """The text of a QGIS paletted-renderer style for a class map (see :func:`write_class_qml`)."""
    entries = "".join(
        f'        <paletteEntry value="{c["id"]}" color="{c["color"]}" label={quoteattr(c["name"])} alpha="255"/>\n'
        for c in normalise_class_table(class_table, nodata=nodata)
    )
    return (
        _HEAD
        + f'    <rasterrenderer type="paletted" band="{int(band)}" opacity="1" alphaBand="-1" nodataColor="">\n'
        + _MINMAX
        + "      <colorPalette>\n" + entries + "      </colorPalette>\n"
        + _TAIL
    )


def write_class_qml(path: str | os.PathLike, class_table: Sequence[Mapping], nodata: int = 0, band: int = 1) -> Path:
    """Write a QGIS style that shows a class map with the class names and colours.

    Args:
        path: the ``.qml`` file (name it like the raster, ``classes.qml`` for ``classes.tif``, and
            QGIS loads it with the layer).
        class_table: ``[{"id", "name", "color"}, ...]`` (see :func:`normalise_class_table`).
        nodata: value left out of the legend (and transparent).
        band: the band the renderer reads.
    """
    return _write_text_atomic(Path(path), class_qml(class_table, nodata, band))


def ramp_qml(
    vmin: float,
    vmax: float,
    colors: Sequence[str] = DEFAULT_RAMP,
    *,
    band: int = 1,
    labels: Sequence[str] | None = None,
) -> str:
    """The text of a QGIS single-band pseudocolour style (see :func:`write_ramp_qml`)."""
    vmin, vmax = float(vmin), float(vmax)
    if not vmin < vmax:
        raise ConfigError(f"colour ramp needs vmin < vmax (got {vmin}, {vmax})")
    if len(colors) < 2:
        raise ConfigError("a colour ramp needs at least two colours")
    if labels is not None and len(labels) != len(colors):
        raise ConfigError("give one label per ramp colour")
    n = len(colors)
    items = ""
    for i, c in enumerate(colors):
        v = vmin + (vmax - vmin) * i / (n - 1)
        lab = labels[i] if labels is not None else f"{v:.4g}"
        items += (
            f'          <item value="{v!r}" color="{_rgb_hex(hex_to_rgba(c))}" label={quoteattr(lab)} alpha="255"/>\n'
        )
    return (
        _HEAD
        + f'    <rasterrenderer type="singlebandpseudocolor" band="{int(band)}" opacity="1" alphaBand="-1" '
        f'nodataColor="" classificationMin="{vmin!r}" classificationMax="{vmax!r}">\n'
        + _MINMAX
        + "      <rastershader>\n"
        + f'        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" '
        f'minimumValue="{vmin!r}" maximumValue="{vmax!r}" labelPrecision="4">\n'
        + items
        + "        </colorrampshader>\n      </rastershader>\n"
        + _TAIL
    )


def write_ramp_qml(path: str | os.PathLike, vmin: float, vmax: float, colors: Sequence[str] = DEFAULT_RAMP,
                   **style) -> Path:
    """Write a QGIS style that shows a continuous map with a fixed, interpolated colour ramp.

    Args:
        path: the ``.qml`` file (next to the raster, same base name).
        vmin, vmax: values at the first and last colour (values beyond keep the end colours).
        colors: ``"#rrggbb"`` colours spread evenly from ``vmin`` to ``vmax``.
        **style: ``band`` (the band the renderer reads, default 1) and ``labels`` (legend labels,
            one per colour; default: the values), as :func:`ramp_qml`.
    """
    return _write_text_atomic(Path(path), ramp_qml(vmin, vmax, colors, **style))
