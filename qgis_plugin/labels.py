"""Training labels from QGIS: polygons or points with a class field (a layer, its selection, or a
Processing feature source) written to a GeoPackage in the series CRS, which :func:`pimc_core.fit.fit`
reads (a polygon labels the pixels whose centres it holds, a point the pixel it falls in).

Features whose class is empty (NULL, or blank text) are left out and counted: the points
``pimc suggest`` writes carry an empty ``class`` until the analyst fills it in, so a half-labelled
file trains on the labelled ones. Runs on the main thread (the panel) or in the algorithm's thread
(Processing gives each algorithm its own copy of the sources); the training itself then reads
only the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from qgis.core import (
    Qgis,
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
from .region_tools import POLYGON_GEOMETRY, _geometry_type

LABEL_LAYER = "labels"
POINT_GEOMETRY = _geometry_type("Point")
#: The geometry kinds that can label pixels: (geometry type, what one is called, the file's type).
_KINDS = {POLYGON_GEOMETRY: ("polygon", "MultiPolygon"), POINT_GEOMETRY: ("point", "MultiPoint")}


def _wkb_type(name: str):
    """Qgis.WkbType (3.30+) or QgsWkbTypes.Type member ``name`` (e.g. MultiPolygon)."""
    new = getattr(Qgis, "WkbType", None)
    return getattr(new, name) if new is not None and hasattr(new, name) else getattr(QgsWkbTypes.Type, name)


def _is_blank(value) -> bool:
    """A class value that says nothing: None, a NULL QVariant, or blank text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    return bool(hasattr(value, "isNull") and value.isNull())


class ExportedLabels(NamedTuple):
    """What :func:`export_labels` wrote.

    Attributes:
        path: the GeoPackage (layer :data:`LABEL_LAYER`, one field: the class).
        count: features written.
        blank: features left out because their class is empty (NULL or blank).
        kind: "polygon" or "point".
    """

    path: Path
    count: int
    blank: int
    kind: str

    def describe(self, name: str, class_field: str) -> str:
        """One line: "12 points of suggested ('class'; 3 without a class skipped)"."""
        skipped = f"; {self.blank} without a class skipped" if self.blank else ""
        return f"{self.count} {self.kind}{'s' if self.count != 1 else ''} of {name} ('{class_field}'{skipped})"


def export_labels(source, class_field: str, dst_crs: QgsCoordinateReferenceSystem, path: str | os.PathLike | None = None,
                  *, selected_only: bool = False, transform_context: QgsCoordinateTransformContext | None = None,
                  is_canceled=None) -> ExportedLabels:
    """Write the polygons or points of ``source`` (a QgsVectorLayer or a QgsFeatureSource) with
    their ``class_field`` to a GeoPackage in ``dst_crs``.

    Features without a geometry are skipped; features without a class value are skipped and
    counted (:attr:`ExportedLabels.blank`).

    Raises:
        ConfigError: neither polygons nor points, no such field, nothing selected.
        InputError: every class empty, nothing to write, a geometry that cannot be transformed,
            the file cannot be written.
    """
    errors = import_core("pimc_core.errors")
    name = source.sourceName() if hasattr(source, "sourceName") else "labels"
    geometry = QgsWkbTypes.geometryType(source.wkbType())
    if geometry not in _KINDS:
        raise errors.ConfigError(f"'{name}' has neither polygons nor points: training labels are polygons or points "
                                 f"with a class field")
    kind, file_type = _KINDS[geometry]
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
    writer = QgsVectorFileWriter.create(str(path), out_fields, _wkb_type(file_type), dst_crs, ctx, opts)
    if writer.hasError() != QgsVectorFileWriter.WriterError.NoError:
        msg = writer.errorMessage()
        del writer
        raise errors.InputError(f"{path}: cannot write the labels ({msg})")
    n = blank = 0
    try:
        for f in source.getFeatures(request):
            if is_canceled is not None and is_canceled():
                raise errors.Cancelled("cancelled by the user")
            g = QgsGeometry(f.geometry()) if f.hasGeometry() else None
            if g is None or g.isEmpty() or QgsWkbTypes.geometryType(g.wkbType()) != geometry:
                continue
            value = f.attribute(idx)
            if _is_blank(value):
                blank += 1
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
        if blank:
            raise errors.InputError(f"'{name}': the '{class_field}' of every {kind} ({blank}) is empty; "
                                    f"fill in the classes first")
        raise errors.InputError(f"'{name}': no {kind} with a '{class_field}' value to train on")
    return ExportedLabels(path, n, blank, kind)


def raster_layer_path(layer, what: str = "label raster") -> Path:
    """The file behind a GDAL raster layer (``what``: a label raster, a class map …).

    Raises:
        ConfigError: no layer, or a layer that is not a file on disk (a web service, a memory layer).
    """
    from qgis.core import QgsProviderRegistry, QgsRasterLayer

    errors = import_core("pimc_core.errors")
    if layer is None or not isinstance(layer, QgsRasterLayer) or not layer.isValid():
        raise errors.ConfigError(f"choose a {what}")
    if layer.providerType() == "gdal":
        path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or layer.source()
        if Path(path).is_file():
            return Path(path)
    raise errors.ConfigError(f"{what} '{layer.name()}' is not a raster file on disk")


__all__ = ["ExportedLabels", "export_labels", "raster_layer_path"]
