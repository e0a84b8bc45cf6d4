"""Map runs for the panel's region tools and the Processing algorithms: which products, which
model, which region — then the core's :mod:`pimc_core.maps.engine` does the work.

No Qt and no qgis here (QGIS geometries are turned into a :class:`RegionSpec` by
:mod:`.region_tools` on the main thread); everything below may run in a background thread.

One *map run* can ask for several products; they come from up to four core calls, in this order:

* :func:`pimc_core.maps.engine.run_inference` — ``classes``, ``confidence``, ``uncertainty``,
  ``probabilities``, ``forecast``, ``embeddings``;
* :func:`pimc_core.maps.engine.cluster_map` — ``clusters`` (k-means of the embeddings);
* :func:`pimc_core.maps.engine.similarity_map` — ``similarity`` (to a query pixel);
* :func:`pimc_core.maps.phenology.phenology_map` — ``phenology`` (the season's metrics of one
  index, as ``pimc phenology``; it needs no model);
* :func:`pimc_core.maps.text_query.query_map` — ``query`` (the similarity of every pixel to the
  sentence :attr:`MapRequest.text`, as ``pimc query``; it reads the model file's text head
  itself, so the model must be a ``.pimc`` path written by ``pimc text-fit``).

The model is loaded once and shared by the calls (not at all for ``phenology`` alone). Progress
is one fraction 0..1 over all calls;
``cancel`` (a ``() -> bool``) is checked by the core between batches and here between calls.

:func:`run_suggest` is the other use of a model over a region: the points where a label would
help most (:func:`pimc_core.maps.suggest.suggest_samples`), written as a GeoPackage.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .bootstrap import import_core

#: Every product a map run can give, in the order the layers are stacked (top first).
MAP_PRODUCTS: tuple[str, ...] = (
    "classes", "clusters", "similarity", "query", "phenology", "confidence", "uncertainty", "forecast", "probabilities",
    "embeddings",
)
#: Products of :func:`pimc_core.maps.engine.run_inference`.
INFERENCE_PRODUCTS: tuple[str, ...] = ("classes", "confidence", "uncertainty", "probabilities", "forecast", "embeddings")
#: What a product needs the model to give, where that is not the product itself.
NEEDS: dict[str, str] = {"clusters": "embeddings", "similarity": "embeddings", "uncertainty": "probabilities"}
#: Products computed from the series alone, without a model.
MODEL_FREE_PRODUCTS: tuple[str, ...] = ("phenology",)
#: Products whose core call loads the model file itself (not the shared live model).
SELF_LOADING_PRODUCTS: tuple[str, ...] = ("query",)
#: The built-in, non-PIMC baseline for the synthetic sample data (as ``pimc classify --model``).
BUILTIN_MODELS: tuple[str, ...] = ("builtin:nearest-centroid",)

NO_MODEL_MESSAGE = (
    "choose a model file (.pimc) first: classes, forecasts and embeddings come from a trained model, "
    "and clusters and similarity maps are computed from its embeddings — train one under "
    "'Train a model' (or with `pimc fit`)"
)


@dataclass(frozen=True)
class RegionSpec:
    """Where to map, in the series CRS: a box, polygons (GeoJSON-like mappings), or everything.

    Attributes:
        bbox: (xmin, ymin, xmax, ymax) in the series CRS, or None.
        geometries: Polygon / MultiPolygon mappings in the series CRS, or None.
        description: for messages and layer names ("rectangle", "3 selected features of fields" …).
        all_touched: with polygons, every pixel they touch (not only pixel centres inside).
    """

    bbox: tuple[float, float, float, float] | None = None
    geometries: tuple[dict, ...] | None = None
    description: str = "whole raster"
    all_touched: bool = False

    def build(self, grid):
        """The core :class:`~pimc_core.io.regions.Region` on ``grid``.

        Raises:
            InputError: the region does not overlap the raster or covers no pixel.
        """
        regions = import_core("pimc_core.io.regions")
        if self.geometries is not None:
            return regions.geometry_region(grid, list(self.geometries), None, all_touched=self.all_touched,
                                           name=self.description or "polygon")
        if self.bbox is not None:
            return regions.bbox_region(grid, self.bbox)
        return regions.whole_region(grid)


@dataclass
class MapRequest:
    """What to compute.

    Attributes:
        products: any of :data:`MAP_PRODUCTS`.
        k: clusters (``clusters``), 2..255.
        query_xy: the query pixel of ``similarity``: (x, y) in the series CRS.
        sample_size, seed: k-means sample and seed.
        block, batch_size: window side and pixels per model call (memory).
        smooth: None, or the Bayesian smoothing of the class probabilities (True: the defaults;
            a mapping of ``window``, ``neigh_fraction``, ``smoothness``), as ``run_inference``'s
            ``smooth`` (``pimc classify --smooth``).
        phenology_index: the index the ``phenology`` metrics are of (``pimc phenology --index``).
        phenology_params: None (the defaults) or a
            :class:`~pimc_core.series.phenology.PhenologyParams`.
        text: the sentence of the ``query`` product (``pimc query --text``).
    """

    products: Sequence[str] = ("classes", "confidence", "uncertainty")
    k: int = 6
    query_xy: tuple[float, float] | None = None
    sample_size: int = 100_000
    seed: int = 0
    block: int = 256
    batch_size: int = 4096
    smooth: Any = None
    phenology_index: str = "ndvi"
    phenology_params: Any = None
    text: str = ""

    def needs_model(self) -> bool:
        """Whether a product asked for comes from a model (all but :data:`MODEL_FREE_PRODUCTS`)."""
        return any(p not in MODEL_FREE_PRODUCTS for p in self.products)

    def check(self) -> tuple[str, ...]:
        """The products, validated (ConfigError naming the problem)."""
        errors = import_core("pimc_core.errors")
        products = tuple(dict.fromkeys(str(p) for p in self.products))
        if not products:
            raise errors.ConfigError("choose at least one product (classes, forecast, embeddings, clusters, similarity, "
                                     "phenology)")
        unknown = [p for p in products if p not in MAP_PRODUCTS]
        if unknown:
            raise errors.ConfigError(f"unknown product(s) {', '.join(unknown)} (known: {', '.join(MAP_PRODUCTS)})")
        if "query" in products and not str(self.text or "").strip():
            raise errors.ConfigError("the text query needs a sentence, e.g. 'green-up in April, harvested in July'")
        if "query" in products and "similarity" in products:
            raise errors.ConfigError("the text query and the similarity to a pixel both write similarity.tif: "
                                     "run them one at a time")
        if "similarity" in products and self.query_xy is None:
            raise errors.ConfigError("the similarity map needs a query pixel: inspect a pixel first (pixel inspector)")
        return products


@dataclass
class MapOutcome:
    """What a map run wrote: product → GeoTIFF, the style sidecars, one summary line per core call."""

    files: dict[str, Path] = field(default_factory=dict)
    styles: list[Path] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    pixels: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    device: str = ""  # where the model ran (InferenceResult.device)

    def summary(self) -> str:
        names = ", ".join(self.files)
        rate = f", {self.pixels / self.seconds:,.0f} pixels/s" if self.seconds > 0 else ""
        where = f" on {self.device}" if self.device else ""
        return f"{names} ({self.pixels} pixels, {self.seconds:.1f} s{rate}{where})"


def model_is_set(spec: Any) -> bool:
    """Whether the model choice names something (a path or a built-in), or is a model object."""
    if spec is None:
        return False
    if isinstance(spec, (str, os.PathLike)):
        return bool(str(spec).strip())
    return True


def model_label(spec: Any) -> str:
    """How layer names call the model: the ``.pimc`` file name, "baseline" for the built-in
    nearest-centroid model, "model" for a model object."""
    if isinstance(spec, (str, os.PathLike)):
        text = str(spec).strip()
        if text.startswith("builtin:"):
            return "baseline" if text == "builtin:nearest-centroid" else text[len("builtin:"):]
        return Path(text).name or "model"
    return "model"


def resolve_model(spec: Any):
    """A live model from a ``.pimc`` path, ``builtin:nearest-centroid``, a model or a factory.

    Raises:
        ConfigError: no model (:data:`NO_MODEL_MESSAGE`), an unknown built-in.
        InputError: the file does not exist or is not a model.
    """
    errors = import_core("pimc_core.errors")
    inference = import_core("pimc_core.maps.engine")
    if not model_is_set(spec):
        raise errors.ConfigError(NO_MODEL_MESSAGE)
    if isinstance(spec, (str, os.PathLike)):
        text = str(spec).strip()
        if text.startswith("builtin:"):
            if text == "builtin:nearest-centroid":
                return import_core("pimc_core.models.centroid").NearestCentroidModel.for_synthetic()
            raise errors.ConfigError(f"unknown built-in model '{text}' (known: {', '.join(BUILTIN_MODELS)})")
        # a CUDA GPU when torch sees one (float16 autocast), else the CPU
        return inference.load_model(Path(text).expanduser(), device="auto")
    return inference.load_model(spec)


def model_outputs(model) -> set[str]:
    return {str(o) for o in getattr(model, "outputs", ())}


def check_model_products(model, products: Sequence[str]) -> None:
    """A ConfigError when the model cannot give a product (clusters / similarity need embeddings,
    uncertainty the class probabilities)."""
    errors = import_core("pimc_core.errors")
    outs = model_outputs(model)
    name = type(model).__name__
    for p in products:
        need = NEEDS.get(p, p)
        if need not in outs:
            what = f"{p} (computed from {need})" if need != p else p
            raise errors.ConfigError(f"model {name} cannot give {what}; it gives: {', '.join(sorted(outs)) or 'nothing'}")


def run_maps(
    ts,
    model: Any,
    region,
    out_dir: str | os.PathLike,
    request: MapRequest,
    *,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> MapOutcome:
    """Write the requested maps of ``region`` (a core Region, or None for the whole raster) into
    ``out_dir`` with the core; files are named after the products (``classes.tif`` …) with
    ``.qml`` styles next to them.

    Every core call commits its files atomically; when a later call fails or is cancelled, the
    files of the earlier ones stay in ``out_dir`` — callers that need all-or-nothing write into a
    fresh folder and remove it (see :func:`remove_tree`).

    Raises:
        Cancelled, ConfigError, InputError, BandError: from the core, one line each.
    """
    import time

    inference = import_core("pimc_core.maps.engine")
    errors = import_core("pimc_core.errors")
    products = request.check()
    live = None
    shared = [p for p in products if p not in MODEL_FREE_PRODUCTS + SELF_LOADING_PRODUCTS]
    if shared:
        live = resolve_model(model)
        check_model_products(live, shared)
    calls: list[tuple[str, Callable[..., Any], dict]] = []
    inf = tuple(p for p in INFERENCE_PRODUCTS if p in products)
    common = dict(batch_size=int(request.batch_size), block=int(request.block))
    if inf:
        calls.append(("maps", inference.run_inference, dict(products=inf, smooth=request.smooth, **common)))
    if "clusters" in products:
        calls.append(("clusters", inference.cluster_map,
                      dict(k=int(request.k), sample_size=int(request.sample_size), seed=int(request.seed), **common)))
    if "similarity" in products:
        x, y = request.query_xy
        calls.append(("similarity", inference.similarity_map, dict(query_xy=(float(x), float(y)), **common)))
    if "query" in products:
        calls.append(("query", _query_map, dict(model=model, text=str(request.text).strip(), **common)))
    if "phenology" in products:
        calls.append(("phenology", _phenology_map,
                      dict(index=str(request.phenology_index), params=request.phenology_params, **common)))

    out = MapOutcome()
    t0 = time.perf_counter()
    n = len(calls)
    for i, (what, fn, kw) in enumerate(calls):
        if cancel is not None and cancel():
            raise errors.Cancelled("cancelled by the user; no output was written")
        span = (i / n, (i + 1) / n)

        def part(f: float, span=span) -> None:
            if progress is not None:
                progress(span[0] + (span[1] - span[0]) * float(f))

        res = fn(ts, live, region, out_dir, progress=part, cancel=cancel, **kw)
        for f in res.files:
            f = Path(f)
            if f.suffix.lower() == ".tif":
                out.files[f.stem] = f
            else:
                out.styles.append(f)
        out.summaries.append(res.summary())
        out.pixels = max(out.pixels, int(res.pixels))
        out.device = getattr(res, "device", "") or out.device
        out.extra.update(res.extra)
    out.seconds = time.perf_counter() - t0
    if progress is not None:
        progress(1.0)
    return out


def _phenology_map(ts, _model, region, out_dir, **kw):
    """:func:`pimc_core.maps.phenology.phenology_map` called as the model's maps are (no model)."""
    return import_core("pimc_core.maps.phenology").phenology_map(ts, region, out_dir, **kw)


def _query_map(ts, _model, region, out_dir, *, model, text: str, **kw):
    """:func:`pimc_core.maps.text_query.query_map` called as the model's maps are (it reads the
    text head from the model file ``model``)."""
    errors = import_core("pimc_core.errors")
    if not isinstance(model, (str, os.PathLike)) or str(model).strip().startswith("builtin:"):
        raise errors.ConfigError("the text query needs a model file with a text head (written by 'pimc text-fit')")
    return import_core("pimc_core.maps.text_query").query_map(ts, Path(str(model).strip()).expanduser(), text, region,
                                                              out_dir, **kw)


def has_text_head(spec: Any) -> bool:
    """Whether ``spec`` is a ``.pimc`` file with a text head (``pimc text-fit``): read from its
    metadata alone, no weights loaded; False for anything else (never raises)."""
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip() or str(spec).startswith("builtin:"):
        return False
    try:
        meta = import_core("pimc_core.models.model_file").read_metadata(Path(str(spec).strip()).expanduser())
        return isinstance((meta.get("architecture") or {}).get("text_encoder"), dict)
    except Exception:  # noqa: BLE001 - not a model file, unreadable, a broken install: no text head
        return False


#: File name of the suggested points in a run folder.
SUGGEST_FILE = "suggested_points.gpkg"


def run_suggest(ts, model: Any, region, out: str | os.PathLike, n: int, *, seed: int = 0, block: int = 256,
                batch_size: int = 4096, progress: Callable[[float], None] | None = None,
                cancel: Callable[[], bool] | None = None, strategy: str | None = None,
                labels: str | os.PathLike | None = None, class_field: str | None = None):
    """Write ``n`` suggested sample points of ``region`` (a core Region or None) to ``out`` (``.gpkg``);
    ``strategy`` one of the core's ``STRATEGIES`` (None: the core's default); ``labels`` (with
    ``class_field`` for a vector file) the labels made so far: their pixels are never suggested,
    and the coverage strategy looks away from them (as ``pimc suggest --labels``).

    Returns:
        The core's :class:`~pimc_core.maps.suggest.Suggestions`.

    Raises:
        Cancelled, ConfigError, InputError: from the core, one line each (no model: :data:`NO_MODEL_MESSAGE`).
    """
    suggest = import_core("pimc_core.maps.suggest")
    live = resolve_model(model)
    extra: dict[str, Any] = {} if strategy is None else {"strategy": str(strategy)}
    if labels is not None:
        lmap = import_core("pimc_core.io.labels").read_label_files([str(labels)], ts.grid, class_field=class_field)
        extra["exclude"] = lmap.array > 0
    return suggest.suggest_samples(ts, live, region, out, int(n), seed=int(seed), block=int(block),
                                   batch_size=int(batch_size), progress=progress, cancel=cancel, **extra)


def remove_tree(path: str | os.PathLike | None) -> None:
    """Remove a folder this code created (a failed or cancelled run), ignoring errors."""
    if path:
        shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "BUILTIN_MODELS", "INFERENCE_PRODUCTS", "model_label", "MAP_PRODUCTS", "MODEL_FREE_PRODUCTS", "NO_MODEL_MESSAGE",
    "MapOutcome", "MapRequest",
    "RegionSpec", "SELF_LOADING_PRODUCTS", "SUGGEST_FILE", "check_model_products", "has_text_head", "model_is_set",
    "remove_tree", "resolve_model", "run_maps",
    "run_suggest",
]
