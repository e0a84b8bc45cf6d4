"""pimc:recurrenceplot — one pixel's index curves and recurrence plots (PNG + NPY), like ``pimc rp``."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterPoint,
    QgsProcessingParameterString,
)

from .. import pipeline, source
from ..geo import series_crs
from .common import INDICES, PimcAlgorithm, advanced, core_errors, indices_parameter, number_parameter

POINT = "POINT"
MIN_VALID = "MIN_VALID"
THRESHOLD = "THRESHOLD"
PERCENTAGE = "PERCENTAGE"
DIMENSION = "DIMENSION"
TIME_DELAY = "TIME_DELAY"
OUTPUT_PNG = "OUTPUT_PNG"
OUTPUT_NPY = "OUTPUT_NPY"


def _int_or_fraction(v: float):
    return int(v) if float(v).is_integer() else float(v)


class RecurrencePlotAlgorithm(PimcAlgorithm):
    """The recurrence plots of the pixel under a point."""

    NAME, DISPLAY_NAME = "recurrenceplot", "Pixel recurrence plots"
    HELP = (
        "Reads the one pixel under the point (in any CRS; it is transformed to the series CRS), "
        "computes its vegetation-index series, fills gaps in time, and makes one recurrence plot "
        "per index. Writes the figure (index curves and plots) as PNG and the plots as a NumPy "
        "array of shape (indices, T', T') float32. A pixel with fewer valid observations than "
        "the minimum is refused rather than invented. Same result as the command `pimc rp`.\n\n"
        "Threshold: empty for unthresholded distance plots; 'point' or 'distance' with a "
        "percentage, or a number."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_source_parameters()
        self.addParameter(QgsProcessingParameterPoint(POINT, "Pixel (point on the map)"))
        self.addParameter(indices_parameter())
        self.addParameter(number_parameter(MIN_VALID, "Minimum valid observations", 3, 1))
        self.addParameter(advanced(QgsProcessingParameterString(
            THRESHOLD, "Threshold: empty (none), point, distance or a number", optional=True,
        )))
        self.addParameter(advanced(number_parameter(
            PERCENTAGE, "Percentage (threshold point / distance)", 10, 0, 100, double=True)))
        self.addParameter(advanced(number_parameter(
            DIMENSION, "Embedding dimension (integer, or a fraction of T below 1)", 1, 0, double=True)))
        self.addParameter(advanced(number_parameter(
            TIME_DELAY, "Time delay (integer, or a fraction of T below 1)", 1, 0, double=True)))
        self.addParameter(QgsProcessingParameterFileDestination(OUTPUT_PNG, "Figure", "PNG image (*.png)"))
        self.addParameter(QgsProcessingParameterFileDestination(OUTPUT_NPY, "Recurrence plots", "NumPy array (*.npy)"))
        self.addOutput(QgsProcessingOutputNumber("ROW", "Pixel row"))
        self.addOutput(QgsProcessingOutputNumber("COL", "Pixel column"))

    def check_more(self, parameters, context, ts) -> None:
        source.check_indices(ts, source.parse_indices(self.parameterAsString(parameters, INDICES, context)))
        pipeline.parse_threshold(self.parameterAsString(parameters, THRESHOLD, context))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with core_errors():
            ts = self.open_series(parameters, context, feedback)
            names = source.parse_indices(self.parameterAsString(parameters, INDICES, context))
            crs = series_crs(ts)
            point = self.parameterAsPoint(parameters, POINT, context, crs if crs.isValid() else None)
            row, col = ts.grid.rowcol(point.x(), point.y())
            feedback.pushInfo(f"point ({point.x():.3f}, {point.y():.3f}) in the series CRS → row {row}, col {col}")
            result = pipeline.pixel_result(
                ts, row, col, names,
                min_valid=self.parameterAsInt(parameters, MIN_VALID, context),
                threshold=pipeline.parse_threshold(self.parameterAsString(parameters, THRESHOLD, context)),
                percentage=self.parameterAsDouble(parameters, PERCENTAGE, context),
                dimension=_int_or_fraction(self.parameterAsDouble(parameters, DIMENSION, context)),
                time_delay=_int_or_fraction(self.parameterAsDouble(parameters, TIME_DELAY, context)),
            )
            feedback.setProgress(50)
            png = self.parameterAsFileOutput(parameters, OUTPUT_PNG, context)
            npy = self.parameterAsFileOutput(parameters, OUTPUT_NPY, context)
            if feedback.isCanceled():
                return {}
            pipeline.save_pixel_outputs(result, png=png or None, npy=npy or None)
            feedback.pushInfo(f"{result.title}; plots {tuple(result.plots.shape)} → {png}, {npy}")
            feedback.setProgress(100)
        return {OUTPUT_PNG: png, OUTPUT_NPY: npy, "ROW": row, "COL": col}
