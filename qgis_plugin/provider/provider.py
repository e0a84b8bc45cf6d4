"""The Processing provider "PIMC" (id ``pimc``)."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..bootstrap import PLUGIN_DIR

ICON = PLUGIN_DIR / "icons" / "pimc.svg"


class PimcIcon:
    """The PIMC icon, for the provider and each of its algorithms."""

    def icon(self) -> QIcon:
        return QIcon(str(ICON))


class PimcProvider(PimcIcon, QgsProcessingProvider):
    """Vegetation-index stacks and recurrence plots of satellite image time series."""

    def id(self) -> str:  # noqa: A003 (QGIS API)
        return "pimc"

    def name(self) -> str:
        return "PIMC"

    def longName(self) -> str:  # noqa: N802
        return "PIMC — pixel time series, recurrence plots, maps"

    def svgIconPath(self) -> str:  # noqa: N802
        return str(ICON)

    def loadAlgorithms(self) -> None:  # noqa: N802
        from . import ALGORITHMS

        for cls in ALGORITHMS:
            self.addAlgorithm(cls())

    # Outputs are written by rasterio as GeoTIFF: offer nothing else.
    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:  # noqa: N802
        return "tif"
