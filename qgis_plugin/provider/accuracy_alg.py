"""pimc:sampledesign and pimc:assess — the accuracy assessment of a class map, like ``pimc sample-design``
and ``pimc assess``: a stratified random sample of the map to label
(:func:`pimc_core.maps.sample_design.design_sample`), then area and accuracy with 95 % intervals from
the labelled points (:func:`pimc_core.maps.assessment.assess`), the report opening as HTML."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..bootstrap import import_core
from ..labels import raster_layer_path
from .common import PimcAlgorithm, advanced, core_errors, file_parameter, number_parameter

MAP = "MAP"
N = "N"
TARGET_SE = "TARGET_SE"
EXPECTED_UA = "EXPECTED_UA"
ALLOCATION = "ALLOCATION"
SEED = "SEED"
REFERENCE = "REFERENCE"
CLASS_FIELD = "CLASS_FIELD"
CLASSES = "CLASSES"
STRATA = "STRATA"
OUTPUT = "OUTPUT"
OUTPUT_JSON = "OUTPUT_JSON"
#: the field the analyst fills in
REFERENCE_FIELD = "reference"


def point_type():
    """The source type of a point layer parameter (QGIS >= 3.36 / before)."""
    new = getattr(Qgis, "ProcessingSourceType", None)
    if new is not None and hasattr(new, "VectorPoint"):
        return new.VectorPoint
    return QgsProcessing.SourceType.TypeVectorPoint


class SamplePointsLayer(QgsProcessingLayerPostProcessorInterface):
    """Opens the sample points ready to label: named so, ``stratum`` read-only in the attribute form,
    ``reference`` the field to fill in (the GeoPackage layer itself is editable)."""

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        layer.setName("Sample points (fill in 'reference')")
        form = layer.editFormConfig()
        for name in ("stratum",):
            index = layer.fields().indexOf(name)
            if index >= 0:
                form.setReadOnly(index, True)
        layer.setEditFormConfig(form)


#: one post-processor for every run (QGIS does not own it; it holds no state)
SAMPLE_POINTS_LAYER = SamplePointsLayer()


class AccuracyAlgorithm(PimcAlgorithm):
    """An algorithm on a class map, not on a time series: no series parameters or checks."""

    GROUP, GROUP_ID = "Accuracy assessment", "accuracy"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(MAP, "Class map (one integer band; 0 and nodata: no class)"))
        self.add_own_parameters()

    def add_own_parameters(self) -> None:
        """Subclasses: the parameters and outputs after the class map."""

    def checkParameterValues(self, parameters, context):  # noqa: N802
        return super(PimcAlgorithm, self).checkParameterValues(parameters, context)

    def map_path(self, parameters, name: str, context, what: str) -> Path:
        return raster_layer_path(self.parameterAsRasterLayer(parameters, name, context), what)


class SampleDesignAlgorithm(AccuracyAlgorithm):
    """Stratified random sample of a class map → GeoPackage points with an empty ``reference``."""

    NAME, DISPLAY_NAME = "sampledesign", "Sample design (points to label for an accuracy assessment)"
    HELP = (
        "Draws a stratified random sample of a class map, the map classes as strata (Olofsson et al. 2014): "
        "points at pixel centres with the fields stratum (the map class) and an empty reference. The "
        "points open as an editable layer: fill in the reference class of each (from imagery or field "
        "visits), save, then run pimc:assess. Sample size: the number of points, or a target standard "
        "error of overall accuracy with the expected user's accuracies (their eq. 13). Allocation: "
        "proportional, equal, or min:M (at least M per class, the rest proportional; e.g. min:50). "
        "Same as the command `pimc sample-design`.")

    def add_own_parameters(self) -> None:
        self.addParameter(number_parameter(N, "Number of points (0: from the target standard error)", 500, 0))
        self.addParameter(QgsProcessingParameterString(ALLOCATION, "Allocation (proportional, equal or min:M)",
                                                       defaultValue="proportional"))
        self.addParameter(advanced(number_parameter(
            TARGET_SE, "…or target standard error of overall accuracy (with N = 0)", 0.01, 0.0, 0.5, double=True)))
        self.addParameter(advanced(QgsProcessingParameterString(
            EXPECTED_UA, "Expected user's accuracies (one, or one per class in ascending ids)", defaultValue="0.8")))
        self.addParameter(advanced(number_parameter(SEED, "Random seed", 0, 0, 2**31 - 1)))
        self.addParameter(QgsProcessingParameterVectorDestination(OUTPUT, "Sample points", type=point_type()))
        self.addOutput(QgsProcessingOutputNumber("N_POINTS", "Number of points"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with core_errors():
            errors = import_core("pimc_core.errors")
            class_map = import_core("pimc_core.maps.class_map")
            sample_design = import_core("pimc_core.maps.sample_design")
            cmap = class_map.open_class_map(self.map_path(parameters, MAP, context, "class map"))
            out = Path(self.parameterAsOutputLayer(parameters, OUTPUT, context))
            if out.suffix.lower() != ".gpkg":
                raise errors.ConfigError(f"{out}: the points are written as a GeoPackage; give a .gpkg file name")
            out.parent.mkdir(parents=True, exist_ok=True)
            n = self.parameterAsInt(parameters, N, context)
            design = sample_design.design_sample(
                cmap, out, n=n or None, target_se=None if n else self.parameterAsDouble(parameters, TARGET_SE, context),
                expected_ua=self.parameterAsString(parameters, EXPECTED_UA, context) or "0.8",
                allocation=(self.parameterAsString(parameters, ALLOCATION, context) or "proportional").strip(),
                seed=self.parameterAsInt(parameters, SEED, context))
            feedback.pushInfo(f"{design.summary()}; fill in '{REFERENCE_FIELD}', then run pimc:assess")
        if context.willLoadLayerOnCompletion(str(out)):
            context.layerToLoadOnCompletionDetails(str(out)).setPostProcessor(SAMPLE_POINTS_LAYER)
        return {OUTPUT: str(out), "N_POINTS": int(design.sizes.sum())}


class AssessAlgorithm(AccuracyAlgorithm):
    """Area and accuracy of a class map from labelled sample points → HTML report (+ JSON, Markdown, PNG)."""

    NAME, DISPLAY_NAME = "assess", "Assess accuracy and area (from labelled sample points)"
    HELP = (
        "Area and accuracy of a class map from a stratified random sample of points with their reference "
        "class (e.g. from pimc:sampledesign, filled in): the error matrix in sample counts and in "
        "estimated area proportions, overall, user's and producer's accuracies and the area of each class "
        "in hectares with 95 % confidence intervals, next to the mapped area (Olofsson et al. 2014). When "
        "the sample was stratified by another raster than the map classes, give it as strata (on the map's "
        "grid; Stehman 2014). Points outside the map, on nodata or with a class the map does not hold are "
        "counted and left out; polygons are refused (their pixels are not independent samples). The report "
        "opens as HTML; report.json, report.md and the error-matrix report.png are written beside it. "
        "Same as the command `pimc assess`.")

    def add_own_parameters(self) -> None:
        self.addParameter(QgsProcessingParameterFeatureSource(REFERENCE, "Labelled sample points", [point_type()]))
        self.addParameter(QgsProcessingParameterField(CLASS_FIELD, "Reference class field (id or class name)",
                                                      defaultValue=REFERENCE_FIELD, parentLayerParameterName=REFERENCE,
                                                      optional=True))
        self.addParameter(file_parameter(CLASSES, "Class names (classes.json)", "JSON (*.json);;All files (*)",
                                         optional=True))
        self.addParameter(advanced(QgsProcessingParameterRasterLayer(
            STRATA, "Strata of the sample, when not the map classes (raster on the map's grid)", optional=True)))
        self.addParameter(QgsProcessingParameterFileDestination(OUTPUT, "Report", "HTML files (*.html)"))
        self.addOutput(QgsProcessingOutputFile(OUTPUT_JSON, "Report (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("OVERALL_ACCURACY", "Overall accuracy"))
        self.addOutput(QgsProcessingOutputNumber("OVERALL_ACCURACY_CI95", "Overall accuracy, 95 % half-width"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with core_errors():
            errors = import_core("pimc_core.errors")
            assessment = import_core("pimc_core.maps.assessment")
            map_path = self.map_path(parameters, MAP, context, "class map")
            strata = None
            if parameters.get(STRATA) not in (None, ""):
                strata = self.map_path(parameters, STRATA, context, "strata raster")
            out = Path(self.parameterAsFileOutput(parameters, OUTPUT, context))
            if out.suffix.lower() != ".html":
                raise errors.ConfigError(f"{out}: the report opens as HTML; give a .html file name")
            out.parent.mkdir(parents=True, exist_ok=True)
            points, layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, REFERENCE, context, ["gpkg", "shp", "geojson"], "gpkg", feedback)
            report, paths = assessment.assess(
                map_path, points, self.parameterAsString(parameters, CLASS_FIELD, context) or REFERENCE_FIELD,
                out.with_suffix(".json"), classes=self.parameterAsFile(parameters, CLASSES, context) or None,
                strata=strata, points_layer=layer or None)
            for line in assessment.report_summary(report):
                feedback.pushInfo(line)
        return {OUTPUT: str(out), OUTPUT_JSON: str(paths[0]), "OVERALL_ACCURACY": report["overall_accuracy"],
                "OVERALL_ACCURACY_CI95": report["overall_accuracy_ci95"]}


__all__ = ["SAMPLE_POINTS_LAYER", "AssessAlgorithm", "SampleDesignAlgorithm", "SamplePointsLayer"]
