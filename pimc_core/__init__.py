"""PIMC core library: satellite image time series → vegetation indices → recurrence plots →
contrastive encoders → per-pixel maps and forecasts.

The public API is the names in ``__all__`` (listed with their stage in docs/API.md); everything
else is reached through its sub-package (``pimc_core.io``, ``series``, ``models``, ``learn``,
``estimators``, ``maps``, ``datasets``, ``viz``, ``cli``; the map in docs/ARCHITECTURE.md).
Names are loaded on first use, so ``import pimc_core`` stays cheap (no torch) for code that only
needs a light part of it, such as the QGIS plugin reading a model file's metadata.

No Qt and no qgis imports here, ever: the QGIS plugin is a thin layer over this package.

Example::

    from pimc_core import open_series, recurrence_plot, SeriesClassifier
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    # errors
    "PimcError": "pimc_core.errors", "InputError": "pimc_core.errors", "ConfigError": "pimc_core.errors",
    "BandError": "pimc_core.errors", "Cancelled": "pimc_core.errors",
    # reading a stack
    "open_series": "pimc_core.io.timeseries", "TimeSeries": "pimc_core.io.timeseries",
    "read_labels": "pimc_core.io.labels", "load_class_table": "pimc_core.io.classes",
    # index series and recurrence plots
    "INDICES": "pimc_core.series.indices", "compute_indices": "pimc_core.series.indices",
    "index_series": "pimc_core.series.pixel", "fill_gaps": "pimc_core.series.gapfill",
    "recurrence_plot": "pimc_core.series.recurrence", "stack_recurrence_plots": "pimc_core.series.recurrence",
    # models and model files
    "PimcPixelModel": "pimc_core.models.pixel_model", "load_pixel_model": "pimc_core.models.pixel_model",
    "read_metadata": "pimc_core.models.model_file",
    # scikit-learn estimators on series tables
    "SeriesClassifier": "pimc_core.estimators", "RandomKernelTransform": "pimc_core.estimators",
    "CompetingKernelTransform": "pimc_core.estimators", "RidgeLOO": "pimc_core.estimators",
    # the analyst's workflow: fit a model on a stack, map a region
    "FitConfig": "pimc_core.fit", "load_fit_config": "pimc_core.fit",
    "run_inference": "pimc_core.maps.engine", "cluster_map": "pimc_core.maps.engine",
    "similarity_map": "pimc_core.maps.engine",
    # sample data
    "make_synthetic": "pimc_core.datasets.synthetic",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'pimc_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
