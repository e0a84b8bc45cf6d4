"""pimc:suggest — where to label next, like ``pimc suggest``: N points of a region where a label
would help the model most (by coverage of the model's embedding space, leaning to uncertain pixels,
or the most uncertain pixels spread over the region and the predicted classes;
:mod:`pimc_core.maps.suggest`), as a GeoPackage point layer with an empty ``class`` field to fill
in and give back to pimc:fit (or ``pimc fit --labels``)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterVectorDestination,
)

from ..bootstrap import import_core
from ..mapping import run_suggest
from ..source import core_names
from .common import BLOCK, advanced, core_errors, number_parameter
from .maps_alg import BATCH, OUTPUT, SEED, MapAlgorithm, map_help

N = "N"
STRATEGY = "STRATEGY"


def strategies() -> list[str]:
    """The core's ways of choosing the points, its default first (empty if the core is unusable)."""
    return core_names("pimc_core.maps.coverage", "STRATEGIES")


class SuggestAlgorithm(MapAlgorithm):
    """N suggested sample points of a region (a vector output instead of the maps' rasters)."""

    NAME = "suggest"
    DISPLAY_NAME = "Suggest samples (where to label next)"
    HELP = map_help(
        "Classifies the region with a trained PIMC model and writes N points where a label would help the "
        "model most, one per pixel at its centre. Strategy 'coverage' (default): points spread over the kinds of "
        "pixel the model tells apart (k-means of its embeddings), leaning to uncertain pixels (the entropy of the "
        "class probabilities); 'uncertainty': the most uncertain pixels, spread over the region and over the "
        "predicted classes. The GeoPackage has the fields predicted (class id), "
        "predicted_name, uncertainty (0 = certain, 1 = every class equally likely) and an empty class: fill it "
        "in, then train again with the points as labels (class field 'class'). Same result as the command "
        "`pimc suggest`.")
    OUTPUTS = {}

    def own_parameters(self) -> list:
        names = strategies()
        return [number_parameter(N, "Number of points", 100, 1),
                advanced(QgsProcessingParameterEnum(STRATEGY, "How the points are chosen", options=names,
                                                    defaultValue=names[0] if names else None, usesStaticStrings=True)),
                advanced(number_parameter(SEED, "Random seed (breaks ties in uncertainty)", 0, 0)),
                QgsProcessingParameterVectorDestination(OUTPUT, "Suggested samples")]

    def own_outputs(self) -> list:
        return [QgsProcessingOutputNumber("MEDIAN_UNCERTAINTY", "Median uncertainty of the region's pixels")]

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with core_errors():
            errors = import_core("pimc_core.errors")
            ts = self.open_series(parameters, context, feedback)
            model = self.model_spec(parameters, context)
            region = self.region_spec(parameters, context, ts, feedback).build(ts.grid)
            path = Path(self.parameterAsOutputLayer(parameters, OUTPUT, context))
            if path.suffix.lower() != ".gpkg":
                raise errors.ConfigError(f"{path}: the points are written as a GeoPackage; give a .gpkg file name")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                res = run_suggest(ts, model, region, path, self.parameterAsInt(parameters, N, context),
                                  seed=self.parameterAsInt(parameters, SEED, context),
                                  strategy=self.parameterAsString(parameters, STRATEGY, context) or None,
                                  block=self.parameterAsInt(parameters, BLOCK, context),
                                  batch_size=self.parameterAsInt(parameters, BATCH, context),
                                  progress=lambda f: feedback.setProgress(100.0 * f), cancel=feedback.isCanceled)
            except errors.Cancelled:
                raise QgsProcessingException("cancelled by the user; no output was written") from None
            feedback.pushInfo(res.summary())
        return {OUTPUT: str(path), "MEDIAN_UNCERTAINTY": float(res.median_uncertainty)}


__all__ = ["SuggestAlgorithm"]
