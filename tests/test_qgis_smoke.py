"""The QGIS part of the setup works: a real headless QgsApplication opens a GeoTIFF the core wrote."""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from pimc_core.io.grid import Grid
from pimc_core.io.raster_io import write_geotiff


def test_qgis_opens_geotiff_written_by_core(qgis_app, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsRasterLayer

    grid = Grid(CRS.from_epsg(32631), Affine(10, 0, 500000, 0, -10, 4800000), width=40, height=30)
    data = np.arange(2 * 30 * 40, dtype=np.float32).reshape(2, 30, 40)
    path = write_geotiff(tmp_path / "core.tif", data, grid, nodata=-1.0, descriptions=["NDVI 2023-01-05", "NDVI 2023-01-15"])

    layer = QgsRasterLayer(str(path), "core")
    assert layer.isValid(), layer.error().message()
    assert layer.bandCount() == 2
    assert layer.width() == 40 and layer.height() == 30
    assert layer.crs() == QgsCoordinateReferenceSystem("EPSG:32631")
    ext = layer.extent()
    assert (ext.xMinimum(), ext.yMaximum(), ext.xMaximum(), ext.yMinimum()) == (500000, 4800000, 500400, 4799700)
    assert layer.bandName(1).endswith("NDVI 2023-01-05")
    # the value QGIS samples at the centre of pixel (row 3, col 7) of band 2 is what the core wrote
    value, ok = layer.dataProvider().sample(QgsPointXY(500000 + 75, 4800000 - 35), 2)
    assert ok and value == data[1, 3, 7]
