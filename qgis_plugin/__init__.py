"""PIMC — QGIS plugin over the ``pimc_core`` library: satellite image time series → vegetation
indices → recurrence plots (and, from later versions, land-cover maps and forecasts).

QGIS imports this package (installed as ``<profile>/python/plugins/pimc``; in the repository it
is ``qgis_plugin``) and calls :func:`classFactory`. Importing it only makes ``pimc_core``
importable (see :mod:`.bootstrap`); nothing heavy is imported before a tool is used.
"""

from .bootstrap import ensure_core_on_path
from .installer import ensure_packages_on_path

ensure_core_on_path()
ensure_packages_on_path()  # packages installed by "Install missing packages…", after QGIS's own


def classFactory(iface):  # noqa: N802 (QGIS API)
    """QGIS entry point: the plugin instance (``iface`` is None under qgis_process)."""
    from .plugin import PimcPlugin

    return PimcPlugin(iface)
