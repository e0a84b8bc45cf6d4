"""Maps: a per-pixel model over a region of a raster time series, written as GeoTIFF maps.

:mod:`~pimc_core.maps.engine` (the map functions) on top of :mod:`~pimc_core.maps.protocol`
(the model side), :mod:`~pimc_core.maps.season`, :mod:`~pimc_core.maps.run`,
:mod:`~pimc_core.maps.window`, :mod:`~pimc_core.maps.jobs`, :mod:`~pimc_core.maps.executors`
(:mod:`~pimc_core.maps.dask_executor`), :mod:`~pimc_core.maps.products` (the writer) and
:mod:`~pimc_core.maps.styling` (colour tables, QGIS styles).
"""
