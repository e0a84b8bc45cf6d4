"""Shared fixtures: tiny rasters written in the layouts the reader supports."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)


def write_tif(path: Path, data: np.ndarray, *, crs="EPSG:32631", transform=TRANSFORM, nodata=None,
              descriptions=None) -> Path:
    """Write a (B, H, W) array as a GeoTIFF."""
    data = data[None] if data.ndim == 2 else data
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
    return path


@pytest.fixture
def multiband_stack(tmp_path):
    """3 dates of a 6-band (blue, green, red, nir, swir1, SCL) uint16 stack, 5x4 px, + manifest.

    Returns (folder, dates, dn) with dn of shape (T, 6, H, W).
    """
    rng = np.random.default_rng(0)
    dates = [dt.date(2023, 1, 5), dt.date(2023, 2, 14), dt.date(2023, 3, 1)]
    dn = rng.integers(100, 5000, size=(3, 6, 4, 5)).astype(np.uint16)
    dn[:, 5] = 4  # SCL vegetation everywhere …
    dn[1, 5, 0, 0] = 9  # … but a cloud at (0, 0) on date 2
    dn[2, 2, 1, 1] = 0  # nodata red at (1, 1) on date 3
    for d, a in zip(dates, dn):
        write_tif(tmp_path / f"S2_{d:%Y%m%d}.tif", a, nodata=0,
                  descriptions=["blue", "green", "red", "nir", "swir1", "SCL"])
    (tmp_path / "manifest.yaml").write_text(
        "sensor: sentinel2-l2a\nscale: 0.0001\noffset: 0.0\nnodata: 0\n"
        "bands: {blue: 1, green: 2, red: 3, nir: 4, swir1: 5}\nmask: {band: 6, valid: [4, 5, 6]}\nitems:\n"
        + "".join(f"  - {{date: {d.isoformat()}, path: S2_{d:%Y%m%d}.tif}}\n" for d in dates)
    )
    return tmp_path, dates, dn


@pytest.fixture(scope="module")
def tiny_sample(tmp_path_factory):
    """The synthetic sample (24x24 px, 12 dates, seed 0), written once per test module."""
    from pimc_core.datasets.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("syn"), size=24, n_dates=12, seed=0)


@pytest.fixture
def pimc_provider(qgis_processing):
    """The PIMC Processing provider registered in real QGIS for one test, removed after it."""
    from qgis.core import QgsApplication

    from qgis_plugin.provider import PimcProvider

    registry = QgsApplication.processingRegistry()
    provider = PimcProvider()
    assert registry.addProvider(provider)
    yield provider
    registry.removeProvider(provider)


def left_nothing(folder) -> bool:
    """Nothing left: the output folder the command created was removed, or it was already there
    and is still empty."""
    return not os.path.exists(folder) or os.listdir(folder) == []
