"""Map-wide inference: run a per-pixel model over a region of a raster time series and write
GeoTIFF maps, streaming window by window.

The engine is model-agnostic: a model is anything with the attributes and the ``predict`` method
of :class:`~pimc_core.maps.protocol.PixelModel`. PIMC models are loaded from ``.pimc`` files by
``pimc_core.models.pixel_model.load_pixel_model`` and plug in here unchanged;
:class:`pimc_core.models.centroid.NearestCentroidModel` is a small documented baseline (not PIMC)
used by tests and demos.

How a map is made (each step its own module of :mod:`pimc_core.maps`):

* :mod:`~pimc_core.maps.run`: the set-up every map shares, checked before any window is read
  (options, region, output folder, the model against the stack: bands, outputs, season);
* :mod:`~pimc_core.maps.window`: one window read, turned into (N, C, T) series and predicted in
  batches; :mod:`~pimc_core.maps.jobs`: what each map does with the predictions;
* :mod:`~pimc_core.maps.executors`: the windows in this process, or as Dask tasks
  (``executor=DaskExecutor(...)`` from :mod:`pimc_core.maps.dask_executor`; identical result);
* :mod:`~pimc_core.maps.products`: the output rasters, written to temporary files and renamed
  into place together as Cloud-Optimised GeoTIFFs with their ``.qml`` styles only when every
  window succeeded. A cancel (:class:`CancelToken`), an error, Ctrl-C or SIGTERM leaves no file
  at any output path.

Memory is set by ``block`` (one window of reflectance and outputs) and ``batch_size`` (what the
model sees at once), never by the raster size.

Products (file names in the output folder):

===================  =======  ======================================================
``classes.tif``      uint8    class id of the most probable class; 0 = nodata (too few
                              valid observations, or outside the polygon); colour table,
                              class names in the band tags, ``classes.qml`` for QGIS
``confidence.tif``   float32  probability of that class (NaN = nodata), ``confidence.qml``
``uncertainty.tif``  float32  entropy of the class probabilities / log K, 0 = certain .. 1
                              (NaN = nodata), ``uncertainty.qml``
``probabilities.tif`` float32 one band per class (``P(<name>)``)
``forecast.tif``     float32  one band per forecast date (``NDVI 2024-07-01``)
``embeddings.tif``   float32  one band per embedding dimension
``clusters.tif``     uint8    :func:`cluster_map`: k-means cluster 1..k of the embeddings
``similarity.tif``   float32  :func:`similarity_map`: cosine similarity to a query embedding
===================  =======  ======================================================

Every map function takes the options of :class:`~pimc_core.maps.run.RunOptions` as keywords:
``batch_size`` (4096), ``block`` (256), ``progress``, ``cancel``, ``executor``.
"""

from __future__ import annotations

import math
import os
import time
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pimc_core.config import Integral, Interval, check_params
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.grid import format_xy
from pimc_core.io.regions import Region, point_region
from pimc_core.io.timeseries import TimeSeries
from pimc_core.maps.cancel import CancelToken
from pimc_core.maps.jobs import ClusterJob, MapJob, MeanJob, SampleJob, SimilarityJob
from pimc_core.maps.products import cluster_product, product_specs, similarity_product
from pimc_core.maps.protocol import DEFAULT_PRODUCTS, PRODUCTS, PixelModel, load_model, model_products
from pimc_core.maps.run import InferenceResult, MapRun, RunOptions
from pimc_core.maps.smoothing import SmoothConfig

__all__ = [
    "DEFAULT_PRODUCTS",
    "PRODUCTS",
    "CancelToken",
    "InferenceResult",
    "PixelModel",
    "RunOptions",
    "SmoothConfig",
    "cluster_map",
    "load_model",
    "model_products",
    "run_inference",
    "similarity_map",
]

ModelRef = PixelModel | str | os.PathLike | Callable[[], PixelModel]


def _products(run: MapRun, products: Sequence[str] | None) -> tuple[str, ...]:
    if products is None:
        can = set(model_products(run.model))
        products = tuple(p for p in DEFAULT_PRODUCTS if p in can)
        if not products:
            raise ConfigError(f"model {type(run.model).__name__} gives none of {', '.join(DEFAULT_PRODUCTS)}; "
                              f"ask for products explicitly")
    products = tuple(dict.fromkeys(str(p) for p in products))
    for p in products:
        if p not in PRODUCTS:
            raise ConfigError(f"unknown product '{p}' (known: {', '.join(PRODUCTS)})")
        run.require(p, p)
    return products


def run_inference(source: TimeSeries, model: ModelRef, region: Region | None, out_dir: str | os.PathLike, *,
                  products: Sequence[str] | None = None, smooth: SmoothConfig | Mapping[str, Any] | bool | None = None,
                  **options: Any) -> InferenceResult:
    """Map a model over a region: classes, confidence, probabilities, forecast, embeddings.

    Args:
        source: the time series (:func:`pimc_core.io.timeseries.open_series`).
        model: a :class:`PixelModel`, a ``.pimc`` file path, or a zero-argument factory.
        region: where to compute (:mod:`pimc_core.io.regions`); None: the whole raster. Outputs
            cover the region's window; pixels outside its polygon are nodata.
        out_dir: output folder (created if missing); files are named after the products.
        products: any of :data:`PRODUCTS`; default :data:`DEFAULT_PRODUCTS` restricted to
            what the model gives (asking explicitly for one it cannot give is an error).
        smooth: None (default): the model's probabilities as they are. A
            :class:`~pimc_core.maps.smoothing.SmoothConfig`, a mapping of its fields (``window``
            7, ``neigh_fraction`` 0.5, ``smoothness`` 10) or True (those defaults): classes,
            confidence, uncertainty and probabilities come from the Bayesian smoothing of the
            probabilities (:func:`~pimc_core.maps.smoothing.bayes_smooth`; pixels outside the
            polygon or without enough observations are not neighbours), whatever the block
            size; the outputs record it in the ``pimc_smoothing`` tag. Each window is predicted
            grown by ``window // 2`` pixels on each side.
        **options: :class:`RunOptions` (``batch_size``, ``block``, ``progress``, ``cancel``,
            ``executor``).

    Returns:
        :class:`InferenceResult`.

    Raises:
        Cancelled: cancelled; no output file was left. ConfigError: a product the model cannot
        give, bad sizes, a stack outside the model's season. InputError / BandError: unreadable
        data, an unusable output folder, a band the model needs is missing, no pixel with enough
        valid observations.
    """
    smooth = SmoothConfig.of(smooth)
    run = MapRun(source, model, region, out_dir, options)
    products = _products(run, products)
    job = MapJob(products, smooth)
    if smooth is not None and not job.halo:
        raise ConfigError(f"smoothing applies to the class probabilities; none of {', '.join(products)} comes from them")
    files = run.write_all(product_specs(products, run.info, source, smooth), job)
    return run.result(files)


def cluster_map(source: TimeSeries, model: ModelRef, region: Region | None, out_dir: str | os.PathLike, k: int, *,
                sample_size: int = 100_000, seed: int = 0, **options: Any) -> InferenceResult:
    """Unsupervised map: k-means clusters of the model's embeddings → ``clusters.tif``.

    Two streamed passes: (1) every window's embeddings are computed and a reproducible random
    sample of at most ``ceil(sample_size / windows)`` pixels per window is kept; scikit-learn's
    ``MiniBatchKMeans`` is fitted on that bounded sample (memory: ``sample_size × D`` floats,
    whatever the raster size; fitting the whole sample, rather than ``partial_fit`` window by
    window, makes the centres independent of window order); (2) every window's embeddings are
    computed again and assigned to the nearest centre.

    ``clusters.tif`` is uint8, 1..k (0 = nodata), with a colour table and ``clusters.qml``.
    ``options`` as :func:`run_inference`.

    Raises:
        ConfigError: k not in 2..255, a seed not in 0..2**32-1, or the model gives no embeddings.
        InputError: fewer valid pixels than k.
    """
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    check_params(SimpleNamespace(k=k, sample_size=sample_size, seed=seed),
                 {"k": [Interval(Integral, 2, 255, closed="both")], "sample_size": [Interval(Integral, 1, None, closed="left")],
                  "seed": [Interval(Integral, 0, 2**32 - 1, closed="both")]},
                 where="cluster")
    if sample_size < k:
        raise ConfigError(f"cluster.sample_size must be at least k ({k}); got {sample_size}")
    run = MapRun(source, model, region, out_dir, options)
    run.require("embeddings", "embeddings (needed for clusters)")
    per_window = max(1, math.ceil(int(sample_size) / max(1, len(run.windows))))
    parts = [res.value for res in run.map(SampleJob(per_window, int(seed)), span=(0.0, 0.5)) if res.value.size]
    run.require_pixels()
    sample = np.concatenate(parts)
    if sample.shape[0] < k:
        raise InputError(f"only {sample.shape[0]} pixels with enough valid observations; too few for {k} clusters")
    run.check()
    t0 = time.perf_counter()
    km = MiniBatchKMeans(n_clusters=int(k), random_state=int(seed), n_init=3,
                         batch_size=min(4096, sample.shape[0]))
    # one OpenMP thread: the same centres on any machine, and no busy-waiting threads
    # competing with the model on a loaded machine (a 50x slow-down on small samples)
    with threadpool_limits(1, user_api="openmp"):
        km.fit(sample.astype(np.float32))
    run.stages["predict"] += time.perf_counter() - t0
    run.predicted = 0  # count the pixels of the mapping pass only
    job = ClusterJob(np.asarray(km.cluster_centers_, np.float64))
    files = run.write_all([cluster_product(source, k)], job, span=(0.5, 1.0))
    return run.result(files, k=int(k), sample=int(sample.shape[0]), inertia=float(km.inertia_) / max(1, sample.shape[0]))


def similarity_map(source: TimeSeries, model: ModelRef, region: Region | None, out_dir: str | os.PathLike, *,
                   query_xy: tuple[float, float] | tuple[float, float, str | None] | None = None,
                   query_region: Region | None = None, **options: Any) -> InferenceResult:
    """Cosine similarity of every pixel's embedding to a query → ``similarity.tif`` (float32,
    -1..1, NaN = nodata) and ``similarity.qml``.

    The query is the embedding of one pixel (``query_xy`` = (x, y) or (x, y, crs); the raster's
    CRS when none), or the mean embedding over a polygon (``query_region``, e.g. from
    :func:`pimc_core.io.regions.parse_region`). ``options`` as :func:`run_inference`.

    Raises:
        ConfigError: neither or both queries; the model gives no embeddings; a query point that
            cannot be in its CRS.
        InputError: the query point is outside the raster or its pixels have too few valid
            observations.
    """
    if (query_xy is None) == (query_region is None):
        raise ConfigError("give a query pixel (x, y) or a query polygon, not both and not neither")
    if query_xy is not None:
        x, y, *rest = query_xy
        qregion = point_region(source.grid, x, y, rest[0] if rest else None)
        what = f"pixel {format_xy(x, y)} = row {qregion.window.row_off}, col {qregion.window.col_off}"
    else:
        if query_region.grid.difference(source.grid) is not None:
            raise ConfigError("the query polygon's region is on another grid than the source")
        qregion = query_region
        what = f"{query_region.description} ({query_region.n_pixels} px)"
    run = MapRun(source, model, region, out_dir, options)
    run.require("embeddings", "embeddings (needed for similarity)")
    total = np.zeros(run.info.embed_dim, np.float64)
    count = 0
    for res in run.map(MeanJob(), windows=list(qregion.windows(run.block)), region=qregion, span=(0.0, 0.1)):
        total += res.value[0]
        count += res.value[1]
    if count == 0:
        raise InputError(f"the query {what} has too few valid observations (min_valid {run.info.min_valid})")
    query = total / count
    norm = float(np.linalg.norm(query))
    if not np.isfinite(norm) or norm == 0:
        raise InputError(f"the query {what} has a zero or invalid embedding")
    run.predicted = 0
    files = run.write_all([similarity_product(source, what)], SimilarityJob(query / norm), span=(0.1, 1.0))
    return run.result(files, query=what, query_pixels=int(count))
