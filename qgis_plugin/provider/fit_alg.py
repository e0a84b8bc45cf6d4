"""pimc:fit — train a PIMC model on a time series and labelled polygons or points (or a label raster), like
``pimc fit``: self-supervised pretraining on the series' pixels, then fine-tuning of the classifier
on the labelled ones; writes one ``.pimc`` model file for pimc:classify and the panel."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ..bootstrap import import_core
from ..fitting import PRESET_LABELS, PRESETS, FitJob, default_model_file, fit_config, run_fit
from ..geo import series_crs
from ..labels import export_labels, raster_layer_path
from .common import PimcAlgorithm, advanced, core_errors, file_parameter, polygon_type

LABELS = "LABELS"
CLASS_FIELD = "CLASS_FIELD"
LABEL_RASTER = "LABEL_RASTER"
CLASSES = "CLASSES"
PRESET = "PRESET"
CONFIG = "CONFIG"
OUTPUT = "OUTPUT"
_PRESETS = "; ".join(f"{k}: {v}" for k, v in PRESET_LABELS.items())


def label_source_types() -> list:
    """The source types of the labels parameter: polygon and point layers (QGIS >= 3.36 / before)."""
    new = getattr(Qgis, "ProcessingSourceType", None)
    if new is not None and hasattr(new, "VectorPoint"):
        return [polygon_type(), new.VectorPoint]
    return [polygon_type(), QgsProcessing.SourceType.TypeVectorPoint]


class FitAlgorithm(PimcAlgorithm):
    """Pretrain + fine-tune a PIMC model → .pimc."""

    NAME, DISPLAY_NAME = "fit", "Train a model (fit)"
    GROUP, GROUP_ID = "Models", "models"
    HELP = (
        "Trains a PIMC pixel model on one time series: self-supervised contrastive pretraining on "
        "a sample of all its pixels (no labels needed), then fine-tuning of the classifier on the "
        "labelled pixels, and a forecast head. Writes one .pimc model file for pimc:classify, "
        "pimc:forecast, pimc:embed, pimc:cluster, pimc:similarity and the PIMC panel. Same as the "
        "command `pimc fit`.\n\n"
        "Labels: polygons or points with a class field (integer ids 1..255, or class names) — only "
        "the selected ones when 'selected features only' is ticked — or a label raster on the grid of "
        "the series (0 = unlabelled). A polygon labels the pixels whose centres it holds, a point the "
        "pixel it falls in; features whose class is empty (such as the points pimc:suggest writes, "
        "before they are filled in) are skipped. Class names and colours: from a classes.json (optional), "
        "else from the class names of the field.\n\n"
        f"Effort: {_PRESETS}. A YAML configuration "
        "(sections data, model, pretrain, finetune, forecast; see the PIMC documentation) overrides "
        "the preset.\n\n"
        f"Model file: by default {default_model_file()} (replaced by the next run that keeps the default).\n\n"
        "Cancelling stops at the next training step and writes no model file."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_source_parameters()
        self.addParameter(QgsProcessingParameterFeatureSource(
            LABELS, "Labelled polygons or points", label_source_types(), optional=True,
        ))
        self.addParameter(QgsProcessingParameterField(
            CLASS_FIELD, "Class field of the labels", parentLayerParameterName=LABELS, optional=True,
        ))
        self.addParameter(QgsProcessingParameterRasterLayer(
            LABEL_RASTER, "…or a label raster on the series grid (0 = unlabelled)", optional=True,
        ))
        self.addParameter(QgsProcessingParameterEnum(
            PRESET, "Effort", options=list(PRESETS), defaultValue="standard", usesStaticStrings=True,
        ))
        self.addParameter(advanced(file_parameter(
            CLASSES, "Class names and colours (classes.json)", "JSON (*.json);;All files (*)", optional=True)))
        self.addParameter(advanced(file_parameter(
            CONFIG, "Fit configuration (YAML; overrides the effort preset)", "YAML (*.yaml *.yml);;All files (*)",
            optional=True)))
        # a model is kept: by default in ~/pimc_models, never a temporary file
        self.addParameter(QgsProcessingParameterFileDestination(
            OUTPUT, "Model file", "PIMC model (*.pimc)", defaultValue=str(default_model_file())))
        self.addOutput(QgsProcessingOutputString("SUMMARY", "Summary"))
        self.addOutput(QgsProcessingOutputNumber("ACCURACY", "Training accuracy (on the labelled pixels themselves)"))
        self.addOutput(QgsProcessingOutputNumber(
            "HELD_OUT_ACCURACY", "Held-out accuracy (spatial cross-validation over labelled fields; NULL when not estimated)"))

    def _labels_choice(self, parameters, context):
        errors = import_core("pimc_core.errors")
        has_vec = parameters.get(LABELS) not in (None, "")
        has_ras = parameters.get(LABEL_RASTER) not in (None, "")
        if has_vec == has_ras:
            raise errors.ConfigError("give labelled polygons or points (with their class field) or a label raster, "
                                     "one of the two")
        return "vector" if has_vec else "raster"

    def _config(self, parameters, context) -> dict:
        preset = self.parameterAsEnumString(parameters, PRESET, context) or "standard"
        return fit_config(preset, self.parameterAsFile(parameters, CONFIG, context) or None)

    def check_more(self, parameters, context, ts) -> None:
        kind = self._labels_choice(parameters, context)
        if kind == "vector" and not self.parameterAsString(parameters, CLASS_FIELD, context):
            errors = import_core("pimc_core.errors")
            raise errors.ConfigError("choose the class field of the labelled polygons or points")
        self._config(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with core_errors():
            errors = import_core("pimc_core.errors")
            ts = self.open_series(parameters, context, feedback)
            cfg = self._config(parameters, context)
            out = self.parameterAsFileOutput(parameters, OUTPUT, context)
            field = labels_name = None
            tmp = None
            try:
                if self._labels_choice(parameters, context) == "vector":
                    src = self.parameterAsSource(parameters, LABELS, context)
                    field = self.parameterAsString(parameters, CLASS_FIELD, context)
                    tmp = Path(tempfile.mkdtemp(prefix="pimc_labels_"))
                    exported = export_labels(src, field, series_crs(ts), tmp / "labels.gpkg",
                                             transform_context=context.transformContext(),
                                             is_canceled=feedback.isCanceled)
                    labels, labels_name = exported.path, src.sourceName()
                    feedback.pushInfo(f"labels: {exported.describe(src.sourceName(), field)}")
                else:
                    layer = self.parameterAsRasterLayer(parameters, LABEL_RASTER, context)
                    labels = raster_layer_path(layer)
                    feedback.pushInfo(f"labels: raster {labels}")
                job = FitJob(labels=str(labels), out=out, class_field=field, labels_name=labels_name,
                             classes=self.parameterAsFile(parameters, CLASSES, context) or None, config=cfg)
                try:
                    result = run_fit(ts, job, progress=lambda f: feedback.setProgress(100.0 * f),
                                     cancel=feedback.isCanceled, log=feedback.pushInfo)
                except errors.Cancelled:
                    raise QgsProcessingException("cancelled by the user; no model file was written") from None
            finally:
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
            feedback.pushInfo(result.summary())
        cv = result.spatial_cv or {}
        return {OUTPUT: str(result.path), "SUMMARY": result.summary(),
                "ACCURACY": float(result.train_metrics.get("accuracy", float("nan"))),
                "HELD_OUT_ACCURACY": float(cv["accuracy"]) if cv.get("accuracy") is not None else None}


__all__ = ["FitAlgorithm"]
