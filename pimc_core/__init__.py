"""PIMC core library: satellite image time series → vegetation indices → recurrence plots →
contrastive encoders → per-pixel maps and forecasts.

No Qt and no qgis imports here, ever: the QGIS plugin is a thin layer over this package.
"""

__version__ = "0.1.0"
