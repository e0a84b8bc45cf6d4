"""pimc:classify, pimc:forecast, pimc:embed, pimc:cluster, pimc:similarity — maps of a region with a
model, like ``pimc classify | forecast | embed | cluster | similar``.

Every algorithm takes the source parameters of :mod:`.common`, a model file, a region (an
extent in any CRS and/or polygons — with polygons, only the pixels inside them are mapped, the
rest is nodata) and writes GeoTIFFs (Cloud-Optimised, with overviews) to raster destinations, so
they chain in the Model Builder and run in batch mode and from ``qgis_process``.

The core writes the maps into a hidden folder next to the first output, atomically; they are
then moved to the destinations together with their ``.qml`` styles (``<output>.qml``: QGIS
shows the class names and colours, or a fixed colour ramp, when it opens the output). A cancel
or an error leaves no output file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

from qgis.core import (
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRasterDestination,
)

from ..bootstrap import import_core
from ..geo import series_crs
from ..mapping import BUILTIN_MODELS, MapRequest, RegionSpec, run_maps
from ..region_tools import geometry_to_geojson
from .common import BLOCK, PimcAlgorithm, advanced, block_parameter, core_errors, file_parameter, number_parameter, polygon_type

MODEL = "MODEL"
EXTENT = "EXTENT"
POLYGONS = "POLYGONS"
ALL_TOUCHED = "ALL_TOUCHED"
BATCH = "BATCH"
OUTPUT = "OUTPUT"
OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
OUTPUT_UNCERTAINTY = "OUTPUT_UNCERTAINTY"
OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
K = "K"
SAMPLE = "SAMPLE"
SEED = "SEED"
QUERY = "QUERY"
SMOOTH = "SMOOTH"
SMOOTH_WINDOW = "SMOOTH_WINDOW"
SMOOTHNESS = "SMOOTHNESS"

#: Vegetation-index ramp of the forecast output's style (value, colour).
INDEX_RAMP = ((-0.2, "#a6611a"), (0.2, "#dfc27d"), (0.45, "#a6d96a"), (0.7, "#1a9641"), (0.95, "#00441b"))


MODEL_HELP = (
    "Model file: a .pimc file written by `pimc fit`, by pimc:fit or by the panel's 'Train a model' "
    "(or builtin:nearest-centroid, a documented non-PIMC baseline for the synthetic sample data)."
)
REGION_HELP = (
    "Region: an extent (in any CRS) and/or polygons; with polygons only the pixels whose centre is "
    "inside are mapped (every pixel they touch with 'all touched'), the others are nodata; with both, "
    "the polygons are clipped to the extent; with neither, the whole series is mapped."
)


def map_help(what: str) -> str:
    """The help of a map algorithm: ``what`` it makes, then the model and the region."""
    return f"{what}\n\n{MODEL_HELP}\n\n{REGION_HELP}\n\nCancelling leaves no output file."


class MapOutput(NamedTuple):
    """A raster destination of a map algorithm: parameter name, description, optional, created by default."""

    name: str
    description: str
    optional: bool = False
    create: bool = True


class MapAlgorithm(PimcAlgorithm):
    """Base of the map algorithms: model and region parameters, running the core, moving outputs.

    A map algorithm states its names and help (:func:`map_help`), :attr:`OUTPUTS` and, where it
    has them, its own parameters and outputs, the :class:`~qgis_plugin.mapping.MapRequest` they
    make and the extra results of the run.
    """

    GROUP, GROUP_ID = "Maps", "maps"
    #: product → its raster destination, in parameter order (filled in by subclasses)
    OUTPUTS: dict[str, MapOutput] = {}
    #: whether the maps come from a model (a MODEL parameter); False: from the series alone
    NEEDS_MODEL = True

    # ------------------------------------------------------------------ parameters
    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_source_parameters()
        if self.NEEDS_MODEL:
            self.addParameter(file_parameter(MODEL, "Model file (.pimc)", "PIMC model (*.pimc);;All files (*)"))
        self.addParameter(QgsProcessingParameterExtent(EXTENT, "Region: extent (empty: the whole series)", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            POLYGONS, "Region: polygons (optional)", [polygon_type()], optional=True,
        ))
        self.addParameter(advanced(QgsProcessingParameterBoolean(
            ALL_TOUCHED, "Every pixel the polygons touch (not only pixel centres inside)", defaultValue=False,
        )))
        self.addParameter(block_parameter())
        self.addParameter(advanced(number_parameter(BATCH, "Pixels per model call (memory)", 4096, 1)))
        for param in self.own_parameters():
            self.addParameter(param)
        for out in self.OUTPUTS.values():
            self.addParameter(QgsProcessingParameterRasterDestination(
                out.name, out.description, optional=out.optional, createByDefault=out.create,
            ))
        for output in self.own_outputs():
            self.addOutput(output)

    def own_parameters(self) -> list:
        """Parameters of this algorithm alone (between the region and the outputs)."""
        return []

    def own_outputs(self) -> list:
        """Non-raster outputs of this algorithm (numbers, strings)."""
        return []

    # ------------------------------------------------------------------ checks
    def model_spec(self, parameters, context) -> str:
        errors = import_core("pimc_core.errors")
        from ..mapping import NO_MODEL_MESSAGE

        spec = (self.parameterAsFile(parameters, MODEL, context) or "").strip()
        if not spec:
            raise errors.ConfigError(NO_MODEL_MESSAGE)
        if spec.startswith("builtin:"):
            if spec not in BUILTIN_MODELS:
                raise errors.ConfigError(f"unknown built-in model '{spec}' (known: {', '.join(BUILTIN_MODELS)})")
        elif not Path(spec).expanduser().is_file():
            raise errors.InputError(f"{spec}: model file not found")
        return spec

    def check_more(self, parameters, context, ts) -> None:
        self.check_model_fits(self.model_spec(parameters, context), ts)

    # ------------------------------------------------------------------ region
    def region_spec(self, parameters, context, ts, feedback=None) -> RegionSpec:
        """The region the parameters describe, in the series CRS."""
        errors = import_core("pimc_core.errors")
        crs = series_crs(ts)
        all_touched = self.parameterAsBool(parameters, ALL_TOUCHED, context)
        rect = None
        if parameters.get(EXTENT) not in (None, ""):
            rect = self.parameterAsExtent(parameters, EXTENT, context, crs if crs.isValid() else None)
            if rect is None or rect.isNull() or rect.isEmpty():
                rect = None
        src = self.parameterAsSource(parameters, POLYGONS, context) if parameters.get(POLYGONS) not in (None, "") else None
        if src is not None:
            request = QgsFeatureRequest()
            if crs.isValid():
                request.setDestinationCrs(crs, context.transformContext())
            geoms = [f.geometry() for f in src.getFeatures(request) if f.hasGeometry() and not f.geometry().isEmpty()]
            name = src.sourceName() or "polygons"
            if not geoms:
                raise errors.InputError(f"the region polygons ({name}) have no geometry (nothing selected?)")
            geom = QgsGeometry.unaryUnion(geoms) if len(geoms) > 1 else QgsGeometry(geoms[0])
            what = f"{len(geoms)} polygon{'s' if len(geoms) != 1 else ''} of {name}"
            if rect is not None:
                geom = geom.intersection(QgsGeometry.fromRect(rect))
                what += " in the extent"
                if geom.isEmpty():
                    raise errors.InputError(f"the {what}: the polygons do not overlap the extent")
            parts = geometry_to_geojson(geom)
            if not parts:
                raise errors.InputError(f"the {what} have no area")
            spec = RegionSpec(geometries=tuple(parts), description=what, all_touched=all_touched)
        elif rect is not None:
            spec = RegionSpec(bbox=(rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()),
                              description="extent")
        else:
            spec = RegionSpec()
        if feedback is not None:
            feedback.pushInfo(f"region: {spec.description}")
        return spec

    # ------------------------------------------------------------------ run
    def request(self, parameters, context, ts) -> MapRequest:
        """The products' settings the parameters give (the defaults unless a subclass has its own)."""
        return MapRequest()

    def destinations(self, parameters, context) -> dict[str, Path]:
        """product → destination GeoTIFF of the outputs asked for."""
        errors = import_core("pimc_core.errors")
        out: dict[str, Path] = {}
        for product, output in self.OUTPUTS.items():
            path = self.parameterAsOutputLayer(parameters, output.name, context)
            if not path:
                continue
            p = Path(path)
            if p.suffix.lower() not in (".tif", ".tiff"):
                raise errors.ConfigError(f"{path}: the maps are written as GeoTIFF; give a .tif file name")
            out[product] = p
        if not out:
            raise errors.ConfigError("no output chosen")
        return out

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with core_errors():
            errors = import_core("pimc_core.errors")
            ts = self.open_series(parameters, context, feedback)
            model = self.model_spec(parameters, context) if self.NEEDS_MODEL else None
            spec = self.region_spec(parameters, context, ts, feedback)
            region = spec.build(ts.grid)
            feedback.pushInfo(f"{region!r}")
            dests = self.destinations(parameters, context)
            request = self.request(parameters, context, ts)
            request.products = tuple(dests)
            request.block = self.parameterAsInt(parameters, BLOCK, context)
            request.batch_size = self.parameterAsInt(parameters, BATCH, context)
            first = next(iter(dests.values()))
            first.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".pimc-", dir=first.parent))
            try:
                try:
                    outcome = run_maps(ts, model, region, work, request,
                                       progress=lambda f: feedback.setProgress(100.0 * f), cancel=feedback.isCanceled)
                except errors.Cancelled:
                    raise QgsProcessingException("cancelled by the user; no output was written") from None
                if feedback.isCanceled():
                    raise QgsProcessingException("cancelled by the user; no output was written")
                results = self.move_outputs(work, dests)
                rate = outcome.pixels / outcome.seconds if outcome.seconds > 0 else 0.0
                feedback.pushInfo(f"{outcome.pixels} pixels in {outcome.seconds:.2f} s ({rate:.0f} pixels/s) → "
                                  + ", ".join(str(dests[p]) for p in dests))
            finally:
                shutil.rmtree(work, ignore_errors=True)
            results.update(self.extra_results(outcome))
        return results

    def move_outputs(self, work: Path, dests: dict[str, Path]) -> dict[str, str]:
        """Move ``<product>.tif`` (and ``.qml``) from ``work`` to the destinations."""
        results = {}
        for product, dest in dests.items():
            dest.parent.mkdir(parents=True, exist_ok=True)
            _move(work / f"{product}.tif", dest)
            for stale in (Path(str(dest) + ".aux.xml"), dest.with_suffix(".qml")):
                stale.unlink(missing_ok=True)
            qml = work / f"{product}.qml"
            if qml.is_file():
                _move(qml, dest.with_suffix(".qml"))
            elif product == "forecast":
                styling = import_core("pimc_core.maps.styling")
                styling.write_ramp_qml(dest.with_suffix(".qml"), INDEX_RAMP[0][0], INDEX_RAMP[-1][0],
                                       [c for _, c in INDEX_RAMP])
            results[self.OUTPUTS[product].name] = str(dest)
        return results

    def extra_results(self, outcome) -> dict:
        return {}


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError:  # another file system
        shutil.move(str(src), str(dst))


# ============================================================================ algorithms
class MapKind(NamedTuple):
    """What tells one map algorithm from another: its id, toolbox name, help and raster outputs."""

    name: str
    display_name: str
    help: str
    outputs: dict[str, MapOutput]


def _kind(name: str, display_name: str, what: str, outputs: dict[str, MapOutput]) -> MapKind:
    return MapKind(name, display_name, map_help(what), outputs)


#: The map algorithms by id, in menu order: id, toolbox name, what they make (the help), outputs.
MAP_KINDS: dict[str, MapKind] = {kind.name: kind for kind in (
    _kind("classify", "Land-cover map (classify)",
          "Classifies every pixel of a region of a satellite image time series with a trained PIMC "
          "model: a class map (uint8 class ids, 0 = nodata: too few valid observations or outside the "
          "polygons; colour table and class names, shown in the legend), the confidence (the "
          "probability of the class, 0..1), the uncertainty (the entropy of the class probabilities over "
          "its maximum log K: 0 = certain, 1 = every class equally likely; where a label would help) and, "
          "optionally, one probability band per class. With 'Bayesian smoothing' (off by default) these "
          "come from the class probabilities smoothed over each pixel's neighbourhood (sits' method: a "
          "pixel is pulled towards its neighbours where they agree; the outputs record it in the "
          "pimc_smoothing tag). "
          "Same result as the command `pimc classify` (`--smooth`).",
          {"classes": MapOutput(OUTPUT, "Class map"),
           "confidence": MapOutput(OUTPUT_CONFIDENCE, "Confidence", optional=True),
           "uncertainty": MapOutput(OUTPUT_UNCERTAINTY, "Uncertainty", optional=True),
           "probabilities": MapOutput(OUTPUT_PROBABILITIES, "Class probabilities", optional=True, create=False)}),
    _kind("forecast", "Vegetation-index forecast map",
          "Forecasts the vegetation index (NDVI for PIMC models) of every pixel of a region for the "
          "model's forecast dates after the end of the series: one float32 band per date, named "
          "like 'NDVI 2024-07-01' (NaN = nodata). Same result as the command `pimc forecast`.",
          {"forecast": MapOutput(OUTPUT, "Forecast")}),
    _kind("embed", "Embedding map",
          "Writes the model's embedding of every pixel of a region: one float32 band per embedding "
          "dimension (NaN = nodata), e.g. for your own clustering or regression. Same result as the "
          "command `pimc embed`.",
          {"embeddings": MapOutput(OUTPUT, "Embeddings")}),
    _kind("cluster", "Unsupervised map (k-means clusters of the embeddings)",
          "Groups the pixels of a region into k clusters by k-means on the model's embeddings (fitted "
          "on a reproducible random sample, then every pixel assigned to its nearest centre): uint8 "
          "cluster ids 1..k, 0 = nodata, with a colour table. Same result as the command `pimc cluster`.",
          {"clusters": MapOutput(OUTPUT, "Clusters")}),
    _kind("similarity", "Similarity map (to a query pixel)",
          "The cosine similarity (-1..1, NaN = nodata) of every pixel's embedding to the embedding of "
          "the query pixel (a point in any CRS): where else does the land behave like here? Same "
          "result as the command `pimc similar --x --y`.",
          {"similarity": MapOutput(OUTPUT, "Similarity")}),
)}


class ClassifyAlgorithm(MapAlgorithm):
    NAME, DISPLAY_NAME, HELP, OUTPUTS = MAP_KINDS["classify"]

    def own_parameters(self) -> list:
        return [
            QgsProcessingParameterBoolean(SMOOTH, "Bayesian smoothing of the class probabilities", defaultValue=False),
            advanced(number_parameter(SMOOTH_WINDOW, "Smoothing window (pixels, odd)", 7, 3, 255)),
            advanced(number_parameter(SMOOTHNESS, "Smoothness (prior variance of a class logit; larger: smoother)",
                                      10.0, 1e-6, double=True)),
        ]

    def request(self, parameters, context, ts) -> MapRequest:
        if not self.parameterAsBool(parameters, SMOOTH, context):
            return MapRequest()
        smoothing = import_core("pimc_core.maps.smoothing")
        return MapRequest(smooth=smoothing.SmoothConfig(  # checked here: an even window is one line
            window=self.parameterAsInt(parameters, SMOOTH_WINDOW, context),
            smoothness=self.parameterAsDouble(parameters, SMOOTHNESS, context)))


class ForecastAlgorithm(MapAlgorithm):
    NAME, DISPLAY_NAME, HELP, OUTPUTS = MAP_KINDS["forecast"]


class EmbedAlgorithm(MapAlgorithm):
    NAME, DISPLAY_NAME, HELP, OUTPUTS = MAP_KINDS["embed"]


class ClusterAlgorithm(MapAlgorithm):
    NAME, DISPLAY_NAME, HELP, OUTPUTS = MAP_KINDS["cluster"]

    def own_parameters(self) -> list:
        return [
            number_parameter(K, "Number of clusters (k)", 6, 2, 255),
            advanced(number_parameter(SAMPLE, "Pixels k-means is fitted on", 100_000, 2)),
            advanced(number_parameter(SEED, "Random seed", 0, 0)),
        ]

    def own_outputs(self) -> list:
        return [QgsProcessingOutputNumber("INERTIA", "Mean squared distance to the cluster centre")]

    def request(self, parameters, context, ts) -> MapRequest:
        return MapRequest(k=self.parameterAsInt(parameters, K, context),
                          sample_size=self.parameterAsInt(parameters, SAMPLE, context),
                          seed=self.parameterAsInt(parameters, SEED, context))

    def extra_results(self, outcome) -> dict:
        return {"INERTIA": float(outcome.extra.get("inertia", float("nan")))}


class SimilarityAlgorithm(MapAlgorithm):
    NAME, DISPLAY_NAME, HELP, OUTPUTS = MAP_KINDS["similarity"]

    def own_parameters(self) -> list:
        return [QgsProcessingParameterPoint(QUERY, "Query pixel (point on the map)")]

    def own_outputs(self) -> list:
        return [QgsProcessingOutputString("QUERY_PIXEL", "Query pixel")]

    def request(self, parameters, context, ts) -> MapRequest:
        crs = series_crs(ts)
        p = self.parameterAsPoint(parameters, QUERY, context, crs if crs.isValid() else None)
        return MapRequest(query_xy=(p.x(), p.y()))

    def extra_results(self, outcome) -> dict:
        return {"QUERY_PIXEL": str(outcome.extra.get("query", ""))}


__all__ = ["ClassifyAlgorithm", "ClusterAlgorithm", "EmbedAlgorithm", "ForecastAlgorithm", "MapAlgorithm",
           "MAP_KINDS", "MapKind", "MapOutput", "SimilarityAlgorithm", "map_help"]
