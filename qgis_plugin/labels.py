"""Training labels from QGIS: polygons with a class field (a layer, its selection, or a Processing
feature source) written to a GeoPackage in the series CRS, which :func:`pimc_core.fit.fit` reads.

Runs on the main thread (the panel) or in the algorithm's thread (Processing gives each
algorithm its own copy of the sources); the training itself then reads only the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsCsException,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsGeometry,
    QgsProject,
    QgsVectorFileWriter,
    QgsWkbTypes,
)

from .bootstrap import import_core
from .region_tools import POLYGON_GEOMETRY

LABEL_LAYER = "labels"


def _multipolygon_type():
    from qgis.core import Qgis

    new = getattr(Qgis, "WkbType", None)
    return new.MultiPolygon if new is not None and hasattr(new, "MultiPolygon") else QgsWkbTypes.Type.MultiPolygon


def export_labels(source, class_field: str, dst_crs: QgsCoordinateReferenceSystem, path: str | os.PathLike | None = None,
                  *, selected_only: bool = False, transform_context: QgsCoordinateTransformContext | None = None,
                  is_canceled=None) -> tuple[Path, int]:
    """Write the polygons of ``source`` (a QgsVectorLayer or a QgsFeatureSource) with their
    ``class_field`` to a GeoPackage in ``dst_crs``; return (file, number of features written).

    Features without a geometry or a class value are skipped.

    Raises:
        ConfigError: no polygons, no such field, nothing selected.
        InputError: nothing to write, a geometry that cannot be transformed, the file cannot be written.
    """
    errors = import_core("pimc_core.errors")
    name = source.sourceName() if hasattr(source, "sourceName") else "labels"
    if QgsWkbTypes.geometryType(source.wkbType()) != POLYGON_GEOMETRY:
        raise errors.ConfigError(f"'{name}' has no polygons: training labels are polygons with a class field")
    fields = source.fields()
    if not class_field:
        raise errors.ConfigError(f"choose the field of '{name}' that holds the class "
                                 f"(fields: {', '.join(fields.names()) or 'none'})")
    idx = fields.lookupField(class_field)
    if idx < 0:
        raise errors.ConfigError(f"'{name}' has no field '{class_field}' (fields: {', '.join(fields.names()) or 'none'})")
    request = QgsFeatureRequest()
    if selected_only:
        ids = source.selectedFeatureIds() if hasattr(source, "selectedFeatureIds") else []
        if not ids:
            raise errors.ConfigError(f"no feature of '{name}' is selected")
        request.setFilterFids(ids)
    out_fields = QgsFields()
    out_fields.append(fields.at(idx))
    path = Path(path) if path else Path(tempfile.mkdtemp(prefix="pimc_labels_")) / "labels.gpkg"
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx = transform_context or QgsProject.instance().transformContext()
    src_crs = source.sourceCrs() if hasattr(source, "sourceCrs") else source.crs()
    ct = None
    if src_crs.isValid() and dst_crs.isValid() and src_crs != dst_crs:
        ct = QgsCoordinateTransform(src_crs, dst_crs, ctx)
    opts = QgsVectorFileWriter.SaveVectorOptions()
    opts.driverName = "GPKG"
    opts.layerName = LABEL_LAYER
    writer = QgsVectorFileWriter.create(str(path), out_fields, _multipolygon_type(), dst_crs, ctx, opts)
    if writer.hasError() != QgsVectorFileWriter.WriterError.NoError:
        msg = writer.errorMessage()
        del writer
        raise errors.InputError(f"{path}: cannot write the labels ({msg})")
    n = 0
    try:
        for f in source.getFeatures(request):
            if is_canceled is not None and is_canceled():
                raise errors.Cancelled("cancelled by the user")
            value = f.attribute(idx)
            if not f.hasGeometry() or value is None or (isinstance(value, str) and not value.strip()):
                continue
            if hasattr(value, "isNull") and value.isNull():  # a NULL QVariant
                continue
            g = QgsGeometry(f.geometry())
            if g.isEmpty() or QgsWkbTypes.geometryType(g.wkbType()) != POLYGON_GEOMETRY:
                continue
            if ct is not None:
                try:
                    g.transform(ct)
                except QgsCsException as e:
                    raise errors.InputError(f"'{name}': feature {f.id()} cannot be transformed to the series CRS ({e})") from None
            g.convertToMultiType()
            out = QgsFeature(out_fields)
            out.setGeometry(g)
            out.setAttribute(0, value)
            writer.addFeature(out)
            n += 1
    finally:
        del writer  # closes the file
    if n == 0:
        Path(path).unlink(missing_ok=True)
        raise errors.InputError(f"'{name}': no polygon with a '{class_field}' value to train on")
    return path, n


def raster_layer_path(layer) -> Path:
    """The file behind a GDAL raster layer (a label raster).

    Raises:
        ConfigError: no layer, or a layer that is not a file on disk (a web service, a memory layer).
    """
    from qgis.core import QgsProviderRegistry, QgsRasterLayer

    errors = import_core("pimc_core.errors")
    if layer is None or not isinstance(layer, QgsRasterLayer) or not layer.isValid():
        raise errors.ConfigError("choose a label raster")
    if layer.providerType() == "gdal":
        path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or layer.source()
        if Path(path).is_file():
            return Path(path)
    raise errors.ConfigError(f"label raster '{layer.name()}' is not a raster file on disk")


__all__ = ["export_labels", "raster_layer_path"]
