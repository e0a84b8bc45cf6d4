"""Benchmark datasets read in their published on-disk formats.

* :mod:`.pastis` — PASTIS: Sentinel-2 time series (T varies per patch) with per-pixel crop labels.
* :mod:`.eurosat` — EuroSAT: 64×64 Sentinel-2 patches (13-band GeoTIFF or RGB JPEG), 10 classes.
"""

from __future__ import annotations

from pimc_core.datasets.eurosat import (
    EUROSAT_CLASSES,
    EUROSAT_MS_BANDS,
    EUROSAT_RGB_BANDS,
    EuroSATDataset,
    stratified_split,
)
from pimc_core.datasets.pastis import (
    OFFICIAL_SPLITS,
    PASTIS_CLASSES,
    PASTIS_COLORS,
    PastisDataset,
    band_mapping,
    class_table,
)
from pimc_core.datasets.patches import extract_patches

__all__ = [
    "EUROSAT_CLASSES",
    "EUROSAT_MS_BANDS",
    "EUROSAT_RGB_BANDS",
    "EuroSATDataset",
    "OFFICIAL_SPLITS",
    "PASTIS_CLASSES",
    "PASTIS_COLORS",
    "PastisDataset",
    "band_mapping",
    "class_table",
    "extract_patches",
    "stratified_split",
]
