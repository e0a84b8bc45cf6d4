"""Maps: a per-pixel model over a region of a raster time series, written as GeoTIFF maps.

:mod:`~pimc_core.maps.engine` (the map functions) on top of :mod:`~pimc_core.maps.protocol`
(the model side), :mod:`~pimc_core.maps.suitability` (does a model fit a source; with
:mod:`~pimc_core.maps.season`), :mod:`~pimc_core.maps.run`,
:mod:`~pimc_core.maps.window`, :mod:`~pimc_core.maps.jobs`, :mod:`~pimc_core.maps.executors`
(:mod:`~pimc_core.maps.dask_executor`), :mod:`~pimc_core.maps.products` (the writer) and
:mod:`~pimc_core.maps.styling` (colour tables, QGIS styles); on a map's probabilities
:mod:`~pimc_core.maps.smoothing` (Bayesian smoothing) and :mod:`~pimc_core.maps.suggest` (where to
label next); on a finished class map :mod:`~pimc_core.maps.class_map` (reading it strip by strip),
:mod:`~pimc_core.maps.sample_design` (stratified sampling), :mod:`~pimc_core.maps.accuracy` (the
stratified estimator), :mod:`~pimc_core.maps.stehman` (the estimator for strata other than the map
classes), :mod:`~pimc_core.maps.assessment` (``pimc assess``) and
:mod:`~pimc_core.maps.report_pages` (its Markdown and HTML pages).
"""
