"""Map-wide inference: run a per-pixel model over a region of a raster time series and write
GeoTIFF maps, streaming window by window.

The engine is model-agnostic. A model is anything with the attributes and the ``predict``
method of :class:`PixelModel`; PIMC models are loaded from ``.pimc`` files by
``pimc_core.models.pixel_model.load_pixel_model`` and plug in here unchanged. :class:`NearestCentroidModel`
is a small documented baseline (not PIMC) used by tests and demos.

For each block (window) of the region::

    read (T, B, h, w) reflectance  →  index_series: indices + gap filling / resampling
    →  pixels with enough valid observations (and inside the polygon), flattened (N, C, T)
    →  model.predict in batches of ``batch_size``  →  scattered back into (h, w) arrays
    →  windowed writes into temporary GeoTIFFs

Memory is set by ``block`` (one window of reflectance and outputs) and ``batch_size`` (what the
model sees at once), never by the raster size. Every output is written to a hidden temporary file
in the output folder; only when every window succeeded are they converted to Cloud-Optimised
GeoTIFFs (tiled, deflate, internal overviews) and renamed into place together with their
``.qml`` styles. A cancel (:class:`CancelToken`, checked between batches), an exception or a
KeyboardInterrupt removes the temporaries and leaves no file at any output path.

Products (file names in the output folder):

===================  =======  ======================================================
``classes.tif``      uint8    class id of the most probable class; 0 = nodata (too few
                              valid observations, or outside the polygon); colour table,
                              class names in the band tags, ``classes.qml`` for QGIS
``confidence.tif``   float32  probability of that class (NaN = nodata), ``confidence.qml``
``probabilities.tif`` float32 one band per class (``P(<name>)``)
``forecast.tif``     float32  one band per forecast date (``NDVI 2024-07-01``)
``embeddings.tif``   float32  one band per embedding dimension
``clusters.tif``     uint8    :func:`cluster_map`: k-means cluster 1..k of the embeddings
``similarity.tif``   float32  :func:`similarity_map`: cosine similarity to a query embedding
===================  =======  ======================================================

Several processes or a cluster: pass ``executor=DaskExecutor(...)`` from
:mod:`pimc_core.maps.dask_executor`; the windows become Dask tasks and the result is identical.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
from rasterio.errors import RasterioError
from rasterio.windows import Window

from pimc_core.errors import Cancelled, ConfigError, InputError
from pimc_core.io.grid import Grid
from pimc_core.io.regions import Region, whole_region
from pimc_core.io.timeseries import Observations, TimeSeries

__all__ = [
    "DEFAULT_PRODUCTS",
    "PRODUCTS",
    "CancelToken",
    "InferenceResult",
    "NearestCentroidModel",
    "PixelModel",
    "cluster_map",
    "load_model",
    "model_products",
    "run_inference",
    "similarity_map",
]

#: Products :func:`run_inference` can write, and the model output each needs.
PRODUCTS: dict[str, str] = {
    "classes": "probabilities",
    "confidence": "probabilities",
    "probabilities": "probabilities",
    "forecast": "forecast",
    "embeddings": "embeddings",
}
#: What :func:`run_inference` writes by default (restricted to what the model gives).
DEFAULT_PRODUCTS: tuple[str, ...] = ("classes", "confidence", "forecast")
_MODEL_OUTPUTS = ("probabilities", "forecast", "embeddings")


# ============================================================================ model protocol
@runtime_checkable
class PixelModel(Protocol):
    """What the engine needs from a per-pixel model.

    Attributes:
        indices: index channels the model reads, in channel order, e.g. ``("ndvi", "evi", "savi")``.
        target_dates: dates the series are resampled onto (a model's fixed date grid), or None to
            use the acquisition dates as they are.
        min_valid: pixels with fewer valid observations are nodata in every output.
        outputs: which of ``classes``, ``confidence``, ``probabilities``, ``forecast``,
            ``embeddings`` the model can give.
        n_classes: number of classes K (0 for a model without a classifier).
        class_table: K entries ``{"id": 1..255, "name": str, "color": "#rrggbb"}`` in the order
            of the probability columns.
        forecast_dates: the dates of the forecast steps, or None.
        embed_dim: embedding size D, or None.

    Optional attributes / methods (looked up with ``getattr``):
        patch_size (int | None): side k of the image patches ``predict`` wants; None/0: none.
        patch_bands (tuple[str, ...]): reflectance bands read for the patches, in channel order.
        patch_channels (int): channels P of the patch image (default ``len(patch_bands)``;
            e.g. ``K * B`` for K seasonal composites).
        patch_composite(reflectance (T, B, h, w), valid (T, h, w)) -> (P, h, w): how a window's
            series is reduced to the image patches are cut from (default: per-band median of
            the valid observations).
        patch_image(source, window) -> (P, h, w): instead of a composite, the reference image of
            a window (e.g. read from a reference raster on the same grid).
        forecast_index (str): the index the forecast is of (default ``"ndvi"``), for band names.
        prepare(source: TimeSeries) -> None: bind to the data before inference, e.g. compute
            ``target_dates`` / ``forecast_dates`` from the season of the series, check bands.
            Called once per process (client and each Dask worker).
    """

    indices: tuple[str, ...]
    target_dates: Sequence[dt.date] | None
    min_valid: int
    outputs: Sequence[str]
    n_classes: int
    class_table: Sequence[Mapping[str, Any]]
    forecast_dates: Sequence[dt.date] | None
    embed_dim: int | None

    def predict(self, filled: np.ndarray, patches: np.ndarray | None) -> dict[str, np.ndarray]:
        """Predict a batch of pixels.

        Args:
            filled: (N, C, T) float32 gap-filled index series (no NaN), C = ``len(indices)``,
                T = the number of target dates (or of acquisition dates).
            patches: (N, B, k, k) float32 reflectance patches centred on the pixels (NaN where
                nothing valid or outside the raster), or None when the model wants none.

        Returns:
            Some of ``probabilities`` (N, K), ``forecast`` (N, len(forecast_dates)),
            ``embeddings`` (N, D) — those the requested products need.
        """
        ...


def load_model(model: Any, device: Any = None) -> PixelModel:
    """A live :class:`PixelModel` from a model, a ``.pimc`` file path or a zero-argument factory.

    Paths are loaded with ``pimc_core.models.pixel_model.load_pixel_model`` on ``device`` (None: the
    CPU; ``auto``: a CUDA GPU when there is one).

    Raises:
        ConfigError: the object is none of these, or model files cannot be loaded yet.
    """
    if hasattr(model, "predict"):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.exists():
            raise InputError(f"{path}: model file not found")
        try:
            from pimc_core.models.pixel_model import load_pixel_model  # provided by the model package
        except ModuleNotFoundError as e:
            if e.name not in ("pimc_core.models.pixel_model",):
                raise
            raise ConfigError(
                f"{path}: loading .pimc model files needs pimc_core.models.pixel_model, which is not installed"
            ) from None
        return load_pixel_model(path, device=device)
    if callable(model):
        out = model()
        if not hasattr(out, "predict"):
            raise ConfigError(f"model factory {model!r} returned {type(out).__name__}, not a model")
        return out
    raise ConfigError(f"model must be a PixelModel, a model file path or a factory (got {type(model).__name__})")


def _prepare(model: PixelModel, source: TimeSeries) -> None:
    prep = getattr(model, "prepare", None)
    if callable(prep):
        prep(source)


@dataclass(frozen=True)
class _ModelInfo:
    """The model's attributes, checked once (client side)."""

    indices: tuple[str, ...]
    target_dates: tuple[dt.date, ...] | None
    min_valid: int
    outputs: frozenset[str]
    class_table: tuple[dict, ...]
    forecast_dates: tuple[dt.date, ...]
    forecast_index: str
    embed_dim: int
    patch_size: int
    patch_bands: tuple[str, ...]
    bands: tuple[str, ...] = ()  # reflectance bands to read (filled in for a source)

    @property
    def class_ids(self) -> np.ndarray:
        return np.array([c["id"] for c in self.class_table], dtype=np.uint8)


def _model_info(model: PixelModel, source: TimeSeries) -> _ModelInfo:
    from pimc_core.io.classes import normalise_class_table
    from pimc_core.series.indices import required_bands

    name = type(model).__name__
    try:
        indices = tuple(str(i).lower() for i in model.indices)
        outputs = frozenset(str(o) for o in model.outputs)
        min_valid = int(model.min_valid)
    except AttributeError as e:
        raise ConfigError(f"model {name} lacks the attribute {e.name!r} a PixelModel needs") from None
    if not indices:
        raise ConfigError(f"model {name}: no index channels")
    unknown = sorted(outputs - set(PRODUCTS))
    if unknown:
        raise ConfigError(f"model {name}: unknown output(s) {unknown} (known: {', '.join(PRODUCTS)})")
    if min_valid < 1:
        raise ConfigError(f"model {name}: min_valid must be >= 1 (got {min_valid})")
    td = getattr(model, "target_dates", None)
    target_dates = tuple(td) if td is not None else None
    class_table: tuple[dict, ...] = ()
    if outputs & {"classes", "confidence", "probabilities"}:
        class_table = tuple(normalise_class_table(list(getattr(model, "class_table", None) or [])))
        k = int(getattr(model, "n_classes", len(class_table)) or 0)
        if not class_table or k != len(class_table):
            raise ConfigError(f"model {name}: n_classes {k} but {len(class_table)} class table entries")
    fd = getattr(model, "forecast_dates", None)
    forecast_dates = tuple(fd) if fd is not None else ()
    if "forecast" in outputs and not forecast_dates:
        raise ConfigError(f"model {name} gives a forecast but has no forecast_dates")
    embed_dim = int(getattr(model, "embed_dim", 0) or 0)
    if "embeddings" in outputs and embed_dim < 1:
        raise ConfigError(f"model {name} gives embeddings but has no embed_dim")
    patch_size = int(getattr(model, "patch_size", 0) or 0)
    patch_bands = tuple(getattr(model, "patch_bands", ()) or ())
    if patch_size and not patch_bands:
        raise ConfigError(f"model {name}: patch_size {patch_size} but no patch_bands")
    needed = set(required_bands(indices)) | set(patch_bands)
    source.require_bands(sorted(needed))
    bands = tuple(b for b in source.band_names if b in needed)
    return _ModelInfo(
        indices, target_dates, min_valid, outputs, class_table, forecast_dates,
        str(getattr(model, "forecast_index", "ndvi") or "ndvi"), embed_dim, patch_size,
        patch_bands if patch_size else (), bands,
    )


def model_products(model: PixelModel) -> tuple[str, ...]:
    """The products of :data:`PRODUCTS` a model can give."""
    outs = set(model.outputs)
    return tuple(p for p in PRODUCTS if p in outs)


# ============================================================================ cancel + progress
class CancelToken:
    """A thread-safe cancel flag: call :meth:`cancel` from anywhere (a GUI button, a signal
    handler); the engine checks it between batches and raises :class:`Cancelled`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancelled."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user; no output was written")


def _cancel_check(cancel: CancelToken | Callable[[], bool] | None) -> Callable[[], None]:
    """A ``check()`` raising Cancelled, from a token, a ``() -> bool`` (e.g. QGIS
    ``feedback.isCanceled``) or None."""
    if cancel is None:
        return lambda: None
    if isinstance(cancel, CancelToken):
        return cancel.check
    if callable(cancel):
        def check() -> None:
            if cancel():
                raise Cancelled("cancelled by the user; no output was written")
        return check
    raise ConfigError(f"cancel must be a CancelToken or a callable (got {type(cancel).__name__})")


# ============================================================================ result
_STAGES = ("read", "indices", "predict", "write", "finalize")


@dataclass
class InferenceResult:
    """What a map run did.

    Attributes:
        pixels: pixels of the region (inside the polygon, when there is one).
        predicted: pixels the model predicted (the others had too few valid observations).
        seconds: wall-clock time.
        files: the files written (maps and styles).
        stages: seconds per stage: ``read`` (reflectance, patches), ``indices`` (indices, gap
            filling), ``predict`` (the model), ``write`` (windowed writes), ``finalize`` (overviews,
            COG layout, renames). With Dask the first three are summed over the workers.
        windows: number of windows processed.
        workers: processes that computed windows (1 in-process).
        extra: product-specific facts (clusters: k, inertia, sample size; similarity: the query).
    """

    pixels: int
    predicted: int
    seconds: float
    files: list[Path]
    stages: dict[str, float] = field(default_factory=dict)
    windows: int = 0
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pixels_per_second(self) -> float:
        return self.pixels / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line: pixels, seconds, pixels per second, files written."""
        folder = self.files[0].parent if self.files else ""
        names = ", ".join(p.name for p in self.files)
        return (
            f"{self.pixels} pixels ({self.predicted} predicted) in {self.seconds:.2f} s, "
            f"{self.pixels_per_second:.0f} pixels/s; {len(self.files)} files written to {folder}: {names}"
        )


# ============================================================================ output files
@dataclass(frozen=True)
class _Product:
    """One output raster: file name, data type, bands, metadata and style."""

    name: str
    dtype: str
    count: int
    nodata: float
    descriptions: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    band_tags: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None
    qml: str | None = None
    resampling: str = "AVERAGE"

    @property
    def filename(self) -> str:
        return f"{self.name}.tif"


def _product_specs(products: Sequence[str], info: _ModelInfo, source: TimeSeries) -> list[_Product]:
    from pimc_core.maps.styling import class_colormap, class_qml, ramp_qml

    common = {"pimc_source": str(source.source), "pimc_indices": ",".join(info.indices)}
    out = []
    for p in products:
        if p == "classes":
            table = [dict(c) for c in info.class_table]
            out.append(_Product(
                "classes", "uint8", 1, 0, ("class",),
                {**common, "pimc_product": "classes", "pimc_classes": _json(table)},
                {1: {f"class_{c['id']}": c["name"] for c in table}},
                class_colormap(table), class_qml(table), "MODE",
            ))
        elif p == "confidence":
            out.append(_Product("confidence", "float32", 1, math.nan, ("confidence (probability of the class)",),
                                {**common, "pimc_product": "confidence"}, qml=ramp_qml(0.0, 1.0)))
        elif p == "probabilities":
            out.append(_Product(
                "probabilities", "float32", len(info.class_table), math.nan,
                tuple(f"P({c['name']})" for c in info.class_table),
                {**common, "pimc_product": "probabilities", "pimc_classes": _json([dict(c) for c in info.class_table])},
                {i + 1: {"class_id": str(c["id"]), "class_name": c["name"]} for i, c in enumerate(info.class_table)},
            ))
        elif p == "forecast":
            idx = info.forecast_index.upper()
            out.append(_Product(
                "forecast", "float32", len(info.forecast_dates), math.nan,
                tuple(f"{idx} {d.isoformat()}" for d in info.forecast_dates),
                {**common, "pimc_product": "forecast", "pimc_forecast_index": info.forecast_index,
                 "pimc_dates": ",".join(d.isoformat() for d in info.forecast_dates)},
                {i + 1: {"date": d.isoformat()} for i, d in enumerate(info.forecast_dates)},
            ))
        elif p == "embeddings":
            out.append(_Product("embeddings", "float32", info.embed_dim, math.nan,
                                tuple(f"embedding {i + 1}" for i in range(info.embed_dim)),
                                {**common, "pimc_product": "embeddings"}))
        else:  # pragma: no cover - checked by the callers
            raise ConfigError(f"unknown product {p!r}")
    return out


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"))


class _Outputs:
    """Temporary tiled GeoTIFFs in the output folder, committed together or not at all."""

    def __init__(self, out_dir: Path, grid: Grid, products: Sequence[_Product]) -> None:
        import rasterio

        from pimc_core.io.raster_io import geotiff_profile

        self.out_dir = out_dir
        self.products = list(products)
        self.temps: list[Path] = []
        self.datasets: dict[str, Any] = {}
        try:
            for p in self.products:
                tmp = self._temp(p.filename, ".part.tif")
                prof = geotiff_profile(grid, p.count, p.dtype, p.nodata)
                prof.update(ZLEVEL=1)  # temporary: favour speed; the COG is recompressed
                dst = rasterio.open(tmp, "w", **prof)
                self.datasets[p.name] = dst
                for i, d in enumerate(p.descriptions, start=1):
                    dst.set_band_description(i, d)
                if p.tags:
                    dst.update_tags(**p.tags)
                for b, t in p.band_tags.items():
                    dst.update_tags(b, **t)
                if p.colormap:
                    dst.write_colormap(1, p.colormap)
        except (OSError, RasterioError) as e:
            self.abort()
            raise InputError(f"{out_dir}: cannot write the maps ({e})") from None
        except BaseException:
            self.abort()
            raise

    def _temp(self, name: str, suffix: str) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=self.out_dir)
        os.close(fd)
        path = Path(tmp)
        self.temps.append(path)
        return path

    def write(self, local: Window, arrays: Mapping[str, np.ndarray]) -> None:
        for name, dst in self.datasets.items():
            a = arrays[name]
            dst.write(a[None] if a.ndim == 2 else a, window=local)

    def _close(self) -> None:
        for dst in self.datasets.values():
            with contextlib.suppress(Exception):
                dst.close()
        self.datasets = {}

    def commit(self) -> list[Path]:
        """Close, convert to COG (with overviews), write the styles, then rename everything."""
        import rasterio.shutil

        parts = {p.name: Path(self.datasets[p.name].name) for p in self.products}
        self._close()
        final: list[tuple[Path, Path]] = []
        for p in self.products:
            cog = self._temp(p.filename, ".cog.tif")
            opts = dict(BLOCKSIZE=256, COMPRESS="DEFLATE", RESAMPLING=p.resampling, BIGTIFF="IF_SAFER",
                        OVERVIEWS="AUTO")
            if np.dtype(p.dtype).kind == "f":
                opts["PREDICTOR"] = "YES"
            try:
                # GDAL's block cache defaults to 5 % of RAM; left alone it made peak memory grow
                # with the raster during this conversion (1.74x for 4096² vs 1024²; 1.14x capped)
                with rasterio.Env(GDAL_CACHEMAX=64):
                    rasterio.shutil.copy(parts[p.name], cog, driver="COG", **opts)
            except RasterioError as e:
                raise InputError(f"{self.out_dir / p.filename}: cannot write ({e})") from None
            parts[p.name].unlink()  # halve the peak disk use: the COG is complete
            final.append((cog, self.out_dir / p.filename))
            if p.qml:
                q = self._temp(f"{p.name}.qml", ".qml")
                q.write_text(p.qml, encoding="utf-8")
                final.append((q, self.out_dir / f"{p.name}.qml"))
        written = []
        for tmp, dst in final:
            os.replace(tmp, dst)
            with contextlib.suppress(FileNotFoundError):  # stale statistics of an older map
                Path(str(dst) + ".aux.xml").unlink()
            written.append(dst)
        self._remove_temps()
        return written

    def _remove_temps(self) -> None:
        for t in self.temps:
            for p in (t, Path(str(t) + ".aux.xml"), Path(str(t) + ".ovr")):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        self.temps = []

    def abort(self) -> None:
        self._close()
        self._remove_temps()


# ============================================================================ one window
@dataclass
class _Block:
    """A window read and turned into model input."""

    win: Window
    rows: np.ndarray  # (N,) window rows of the pixels to predict
    cols: np.ndarray
    filled: np.ndarray  # (N, C, T) float32
    composite: np.ndarray | None  # (B, h + k - 1, w + k - 1) padded patch image, or None
    k: int


def _read_block(source: TimeSeries, model: PixelModel, info: _ModelInfo, region: Region, win: Window,
                times: dict[str, float]) -> _Block | None:
    """Read a window and build the flattened model input; None when no pixel is to predict."""
    from pimc_core.series.pixel import index_series

    h, w = int(win.height), int(win.width)
    inside = region.mask(win)
    if inside is not None and not inside.any():
        return None
    t0 = time.perf_counter()
    k = info.patch_size
    composite = None
    if k:
        before, after = k // 2, k - 1 - k // 2
        c0, r0 = int(win.col_off), int(win.row_off)
        big = Window(max(0, c0 - before), max(0, r0 - before), 0, 0)
        c1 = min(source.grid.width, c0 + w + after)
        r1 = min(source.grid.height, r0 + h + after)
        big = Window(int(big.col_off), int(big.row_off), c1 - int(big.col_off), r1 - int(big.row_off))
        obs_big = source.read(big, bands=info.bands)
        rs = slice(r0 - int(big.row_off), r0 - int(big.row_off) + h)
        cs = slice(c0 - int(big.col_off), c0 - int(big.col_off) + w)
        obs = Observations(obs_big.reflectance[:, :, rs, cs], obs_big.valid[:, rs, cs], obs_big.band_names,
                           obs_big.dates, win)
        bi = [obs_big.band_names.index(b) for b in info.patch_bands]
        image_fn = getattr(model, "patch_image", None)
        comp_fn = getattr(model, "patch_composite", None)
        refl = obs_big.reflectance[:, bi]
        if callable(image_fn):
            comp = np.asarray(image_fn(source, big), dtype=np.float32)
        elif callable(comp_fn):
            comp = np.asarray(comp_fn(refl, obs_big.valid), dtype=np.float32)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
                comp = np.nanmedian(refl, axis=0).astype(np.float32)
        want = (int(getattr(model, "patch_channels", 0) or len(bi)), int(big.height), int(big.width))
        if comp.shape != want:
            raise ConfigError(f"model {type(model).__name__}: patch image of shape {comp.shape}; expected {want}")
        composite = np.full((want[0], h + k - 1, w + k - 1), np.nan, np.float32)
        pr = before - (r0 - int(big.row_off))
        pc = before - (c0 - int(big.col_off))
        composite[:, pr:pr + comp.shape[1], pc:pc + comp.shape[2]] = comp
    else:
        obs = source.read(win, bands=info.bands)
    t1 = time.perf_counter()
    ser = index_series(obs, info.indices, min_valid=info.min_valid, target_dates=info.target_dates)
    sel = ser.ok if inside is None else (ser.ok & inside)
    rows, cols = np.nonzero(sel)
    filled = np.ascontiguousarray(np.moveaxis(ser.filled[:, :, rows, cols], -1, 0), dtype=np.float32)
    del ser, obs
    t2 = time.perf_counter()
    times["read"] += t1 - t0
    times["indices"] += t2 - t1
    return _Block(win, rows, cols, filled, composite, k)


def _patches(block: _Block, sl: slice) -> np.ndarray | None:
    if block.composite is None:
        return None
    from numpy.lib.stride_tricks import sliding_window_view

    k = block.k
    view = sliding_window_view(block.composite, (k, k), axis=(1, 2))  # (B, h, w, k, k), no copy
    return np.ascontiguousarray(np.moveaxis(view[:, block.rows[sl], block.cols[sl]], 0, 1))


def _check_output(name: str, arr: Any, n: int, width: int | None, model: PixelModel) -> np.ndarray:
    a = np.asarray(arr)
    want = (n,) if width is None else (n, width)
    if a.shape != want:
        raise ConfigError(
            f"model {type(model).__name__} returned {name} of shape {a.shape}; expected {want}"
        )
    return a


# ---------------------------------------------------------------------------- jobs
class _Job:
    """What is done with the model's outputs of one window (picklable: sent to Dask workers)."""

    needs: tuple[str, ...] = ()

    def start(self, win: Window, info: _ModelInfo) -> Any:
        raise NotImplementedError

    def add(self, state: Any, block: _Block, sl: slice, out: Mapping[str, np.ndarray], info: _ModelInfo) -> None:
        raise NotImplementedError

    def finish(self, state: Any, win: Window, info: _ModelInfo) -> Any:
        return state


@dataclass
class _MapJob(_Job):
    """Write the requested products."""

    products: tuple[str, ...]

    @property
    def needs(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(sorted({PRODUCTS[p] for p in self.products}))

    def start(self, win: Window, info: _ModelInfo) -> dict[str, np.ndarray]:
        h, w = int(win.height), int(win.width)
        arrays: dict[str, np.ndarray] = {}
        for p in self.products:
            if p == "classes":
                arrays[p] = np.zeros((h, w), np.uint8)
            elif p == "confidence":
                arrays[p] = np.full((h, w), np.nan, np.float32)
            elif p == "probabilities":
                arrays[p] = np.full((len(info.class_table), h, w), np.nan, np.float32)
            elif p == "forecast":
                arrays[p] = np.full((len(info.forecast_dates), h, w), np.nan, np.float32)
            elif p == "embeddings":
                arrays[p] = np.full((info.embed_dim, h, w), np.nan, np.float32)
        return arrays

    def add(self, arrays, block, sl, out, info) -> None:
        r, c = block.rows[sl], block.cols[sl]
        if "probabilities" in out:
            prob = out["probabilities"]
            top = np.argmax(prob, axis=1)
            if "classes" in arrays:
                arrays["classes"][r, c] = info.class_ids[top]
            if "confidence" in arrays:
                arrays["confidence"][r, c] = prob[np.arange(prob.shape[0]), top]
            if "probabilities" in arrays:
                arrays["probabilities"][:, r, c] = prob.T
        if "forecast" in arrays:
            arrays["forecast"][:, r, c] = out["forecast"].T
        if "embeddings" in arrays:
            arrays["embeddings"][:, r, c] = out["embeddings"].T


@dataclass
class _SampleJob(_Job):
    """Pass 1 of clustering: a reproducible random sample of each window's embeddings."""

    per_window: int
    seed: int
    needs: tuple[str, ...] = ("embeddings",)

    def start(self, win, info):
        return []

    def add(self, parts, block, sl, out, info) -> None:
        parts.append(out["embeddings"])

    def finish(self, parts, win, info) -> np.ndarray:
        if not parts:
            return np.empty((0, info.embed_dim), np.float32)
        emb = np.concatenate(parts)
        if emb.shape[0] > self.per_window:
            rng = np.random.default_rng([self.seed, int(win.row_off), int(win.col_off)])
            emb = emb[np.sort(rng.choice(emb.shape[0], self.per_window, replace=False))]
        return emb


@dataclass
class _ClusterJob(_Job):
    """Pass 2 of clustering: the cluster (1..k) of every pixel = its nearest k-means centre.

    Only the centres travel to workers (plain numpy: no scikit-learn import there)."""

    centers: np.ndarray  # (k, D) float64
    needs: tuple[str, ...] = ("embeddings",)

    def start(self, win, info):
        return {"clusters": np.zeros((int(win.height), int(win.width)), np.uint8)}

    def add(self, arrays, block, sl, out, info) -> None:
        e = np.asarray(out["embeddings"], np.float64)
        c = self.centers
        d2 = (e * e).sum(axis=1)[:, None] - 2.0 * (e @ c.T) + (c * c).sum(axis=1)[None, :]
        arrays["clusters"][block.rows[sl], block.cols[sl]] = np.argmin(d2, axis=1).astype(np.uint8) + 1


@dataclass
class _MeanJob(_Job):
    """The sum and count of the embeddings of a window (query polygon / pixel)."""

    needs: tuple[str, ...] = ("embeddings",)

    def start(self, win, info):
        return [np.zeros(info.embed_dim, np.float64), 0]

    def add(self, acc, block, sl, out, info) -> None:
        acc[0] += out["embeddings"].sum(axis=0, dtype=np.float64)
        acc[1] += out["embeddings"].shape[0]


@dataclass
class _SimilarityJob(_Job):
    """Cosine similarity of every pixel's embedding to a unit query vector."""

    query: np.ndarray
    needs: tuple[str, ...] = ("embeddings",)

    def start(self, win, info):
        return {"similarity": np.full((int(win.height), int(win.width)), np.nan, np.float32)}

    def add(self, arrays, block, sl, out, info) -> None:
        e = out["embeddings"].astype(np.float64)
        norm = np.linalg.norm(e, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = (e @ self.query) / norm
        arrays["similarity"][block.rows[sl], block.cols[sl]] = np.clip(sim, -1.0, 1.0)


@dataclass
class _WindowResult:
    win: Window
    value: Any
    predicted: int
    times: dict[str, float]


def _run_window(source: TimeSeries, model: PixelModel, info: _ModelInfo, region: Region, job: _Job,
                batch_size: int, win: Window, check: Callable[[], None] = lambda: None) -> _WindowResult:
    """Read, predict and post-process one window (in the client or on a worker)."""
    times = {"read": 0.0, "indices": 0.0, "predict": 0.0}
    state = job.start(win, info)
    block = _read_block(source, model, info, region, win, times)
    n = 0 if block is None else block.rows.size
    for s in range(0, n, batch_size):
        check()
        sl = slice(s, min(n, s + batch_size))
        t0 = time.perf_counter()
        patches = _patches(block, sl)
        raw = model.predict(block.filled[sl], patches)
        m = sl.stop - sl.start
        out = {}
        for key in job.needs:
            if not isinstance(raw, Mapping) or key not in raw:
                raise ConfigError(f"model {type(model).__name__} returned no '{key}'")
            width = {"probabilities": len(info.class_table), "forecast": len(info.forecast_dates),
                     "embeddings": info.embed_dim}[key]
            out[key] = _check_output(key, raw[key], m, width, model)
        t1 = time.perf_counter()
        times["predict"] += t1 - t0
        job.add(state, block, sl, out, info)
        times["predict"] += time.perf_counter() - t1
    return _WindowResult(win, job.finish(state, win, info), n, times)


# ============================================================================ executors
@dataclass
class _Context:
    """Everything a window task needs besides its window (scattered once to Dask workers)."""

    source: TimeSeries
    model_ref: Any  # a live model (in-process), or a path / factory / picklable model (workers)
    token: str
    info: _ModelInfo
    region: Region
    job: _Job
    batch_size: int


_WORKER_MODELS: dict[str, PixelModel] = {}
_WORKER_LOCK = threading.Lock()


def _context_model(ctx: _Context) -> PixelModel:
    """The model of a context, loaded (and prepared) once per process and run."""
    with _WORKER_LOCK:
        model = _WORKER_MODELS.get(ctx.token)
        if model is None:
            _WORKER_MODELS.clear()  # one run at a time per worker: free the previous model
            model = load_model(ctx.model_ref)
            _prepare(model, ctx.source)
            _WORKER_MODELS[ctx.token] = model
        return model


def _window_task(ctx: _Context, win: Window) -> _WindowResult:
    """A window as a Dask task."""
    model = _context_model(ctx)
    return _run_window(ctx.source, model, ctx.info, ctx.region, ctx.job, ctx.batch_size, win)


class _LocalExecutor:
    """Windows one after the other in this process (cancel checked between batches)."""

    n_workers = 1
    remote = False

    def map_windows(self, ctx: _Context, model: PixelModel, windows: Sequence[Window],
                    check: Callable[[], None]) -> Iterator[_WindowResult]:
        for win in windows:
            check()
            yield _run_window(ctx.source, model, ctx.info, ctx.region, ctx.job, ctx.batch_size, win, check)


# ============================================================================ driver
def _check_sizes(block: int, batch_size: int) -> tuple[int, int]:
    for name, v in (("block", block), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name} must be a positive integer (got {v!r})")
    return int(block), int(batch_size)


def _out_dir(out_dir: str | os.PathLike) -> Path:
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path}: cannot create the output folder ({e.strerror or e})") from None
    return path


class _Run:
    """Shared plumbing of the map functions: model, windows, executor, progress and timing."""

    def __init__(self, source: TimeSeries, model: Any, region: Region | None, *, block: int, batch_size: int,
                 progress: Callable[[float], None] | None, cancel: Any, executor: Any) -> None:
        self.t0 = time.perf_counter()
        if not isinstance(source, TimeSeries):
            raise ConfigError(f"source must be a TimeSeries (use open_series); got {type(source).__name__}")
        self.block, self.batch_size = _check_sizes(block, batch_size)
        self.source = source
        self.region = region if region is not None else whole_region(source.grid)
        if self.region.grid.difference(source.grid) is not None:
            raise ConfigError(f"region is on another grid than {source.source}: {self.region.grid.difference(source.grid)}")
        self.executor = executor if executor is not None else _LocalExecutor()
        self.model_ref = model
        self.model = load_model(model)
        _prepare(self.model, source)
        self.info = _model_info(self.model, source)
        self.check = _cancel_check(cancel)
        self.progress = progress
        self.token = uuid.uuid4().hex
        self.windows = list(self.region.windows(self.block))
        self.stages = {s: 0.0 for s in _STAGES}
        self.predicted = 0

    def require(self, output: str, what: str) -> None:
        outs = self.info.outputs
        if output not in outs:
            raise ConfigError(
                f"model {type(self.model).__name__} cannot give {what} (it gives: {', '.join(sorted(outs)) or 'nothing'})"
            )

    def map(self, job: _Job, windows: Sequence[Window] | None = None, region: Region | None = None,
            span: tuple[float, float] = (0.0, 1.0)) -> Iterator[_WindowResult]:
        """Results of ``job`` over windows, in window order, with progress over ``span``."""
        region = region or self.region
        windows = self.windows if windows is None else list(windows)
        remote = getattr(self.executor, "remote", False)
        ctx = _Context(self.source, self.model_ref if remote else None, self.token, self.info, region, job,
                       self.batch_size)
        total = sum(int(w.width) * int(w.height) for w in windows) or 1
        done = 0
        self._report(span[0])
        for res in self.executor.map_windows(ctx, self.model, windows, self.check):
            for k, v in res.times.items():
                self.stages[k] += v
            self.predicted += res.predicted
            done += int(res.win.width) * int(res.win.height)
            yield res
            self.check()
            self._report(span[0] + (span[1] - span[0]) * done / total)

    def _report(self, fraction: float) -> None:
        if self.progress is not None:
            self.progress(min(1.0, max(0.0, fraction)))

    def result(self, files: list[Path], pixels: int, **extra) -> InferenceResult:
        return InferenceResult(
            pixels=pixels, predicted=self.predicted, seconds=time.perf_counter() - self.t0, files=files,
            stages=dict(self.stages), windows=len(self.windows), workers=getattr(self.executor, "n_workers", 1),
            extra=extra,
        )

    def write_all(self, out_dir: Path, products: Sequence[_Product], job: _Job,
                  span: tuple[float, float] = (0.0, 1.0)) -> list[Path]:
        """Run ``job`` over the region's windows into temporary outputs; commit on success."""
        outputs = _Outputs(out_dir, self.region.out_grid, products)
        try:
            for res in self.map(job, span=span):
                t0 = time.perf_counter()
                outputs.write(self.region.local(res.win), res.value)
                self.stages["write"] += time.perf_counter() - t0
            self.check()
            t0 = time.perf_counter()
            files = outputs.commit()
            self.stages["finalize"] += time.perf_counter() - t0
            return files
        except BaseException:
            outputs.abort()
            raise


def run_inference(
    source: TimeSeries,
    model: PixelModel | str | os.PathLike | Callable[[], PixelModel],
    region: Region | None,
    out_dir: str | os.PathLike,
    *,
    products: Sequence[str] | None = None,
    batch_size: int = 4096,
    block: int = 256,
    progress: Callable[[float], None] | None = None,
    cancel: CancelToken | Callable[[], bool] | None = None,
    executor: Any = None,
) -> InferenceResult:
    """Map a model over a region: classes, confidence, probabilities, forecast, embeddings.

    Args:
        source: the time series (:func:`pimc_core.io.timeseries.open_series`).
        model: a :class:`PixelModel`, a ``.pimc`` file path, or a zero-argument factory.
        region: where to compute (:mod:`pimc_core.io.regions`); None: the whole raster. Outputs
            cover the region's window; pixels outside its polygon are nodata.
        out_dir: output folder (created if missing); files are named after the products.
        products: any of :data:`PRODUCTS`; default :data:`DEFAULT_PRODUCTS` restricted to
            what the model gives (asking explicitly for one it cannot give is an error).
        batch_size: pixels per ``model.predict`` call.
        block: window side in pixels (sets memory together with ``batch_size``).
        progress: called with the fraction done, 0..1, after each window.
        cancel: a :class:`CancelToken` or a ``() -> bool``; checked between batches.
        executor: None (this process) or a :class:`pimc_core.maps.dask_executor.DaskExecutor`.

    Returns:
        :class:`InferenceResult`.

    Raises:
        Cancelled: cancelled; no output file was left. ConfigError: a product the model cannot
        give, bad sizes. InputError / BandError: unreadable data, a band the model needs is missing.
    """
    run = _Run(source, model, region, block=block, batch_size=batch_size, progress=progress, cancel=cancel,
               executor=executor)
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
        if p not in run.info.outputs:
            raise ConfigError(f"model {type(run.model).__name__} cannot give {p} "
                              f"(it gives: {', '.join(sorted(run.info.outputs))})")
    out = _out_dir(out_dir)
    specs = _product_specs(products, run.info, source)
    files = run.write_all(out, specs, _MapJob(products))
    return run.result(files, run.region.n_pixels)


def cluster_map(
    source: TimeSeries,
    model: PixelModel | str | os.PathLike | Callable[[], PixelModel],
    region: Region | None,
    out_dir: str | os.PathLike,
    k: int,
    *,
    sample_size: int = 100_000,
    seed: int = 0,
    batch_size: int = 4096,
    block: int = 256,
    progress: Callable[[float], None] | None = None,
    cancel: CancelToken | Callable[[], bool] | None = None,
    executor: Any = None,
) -> InferenceResult:
    """Unsupervised map: k-means clusters of the model's embeddings → ``clusters.tif``.

    Two streamed passes: (1) every window's embeddings are computed and a reproducible random
    sample of at most ``ceil(sample_size / windows)`` pixels per window is kept; scikit-learn's
    ``MiniBatchKMeans`` is fitted on that bounded sample (memory: ``sample_size × D`` floats,
    whatever the raster size; fitting the whole sample, rather than ``partial_fit`` window by
    window, makes the centres independent of window order); (2) every window's embeddings are
    computed again and assigned to the nearest centre.

    ``clusters.tif`` is uint8, 1..k (0 = nodata), with a colour table and ``clusters.qml``.

    Raises:
        ConfigError: k not in 2..255, or the model gives no embeddings.
        InputError: fewer valid pixels than k.
    """
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= 255:
        raise ConfigError(f"k must be an integer from 2 to 255 (got {k!r})")
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < k:
        raise ConfigError(f"sample_size must be an integer >= k (got {sample_size!r})")
    run = _Run(source, model, region, block=block, batch_size=batch_size, progress=progress, cancel=cancel,
               executor=executor)
    run.require("embeddings", "embeddings (needed for clusters)")
    out = _out_dir(out_dir)
    per_window = max(1, math.ceil(int(sample_size) / max(1, len(run.windows))))
    parts = [res.value for res in run.map(_SampleJob(per_window, int(seed)), span=(0.0, 0.5)) if res.value.size]
    sample = np.concatenate(parts) if parts else np.empty((0, run.info.embed_dim), np.float32)
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
    from pimc_core.io.classes import palette_color
    from pimc_core.maps.styling import class_colormap, class_qml

    table = [{"id": i + 1, "name": f"cluster {i + 1}", "color": palette_color(i)} for i in range(int(k))]
    spec = _Product("clusters", "uint8", 1, 0, ("cluster",),
                    {"pimc_source": str(source.source), "pimc_product": "clusters", "pimc_k": str(int(k)),
                     "pimc_classes": _json(table)},
                    {1: {f"class_{c['id']}": c["name"] for c in table}}, class_colormap(table), class_qml(table), "MODE")
    files = run.write_all(out, [spec], _ClusterJob(np.asarray(km.cluster_centers_, np.float64)), span=(0.5, 1.0))
    return run.result(files, run.region.n_pixels, k=int(k), sample=int(sample.shape[0]),
                      inertia=float(km.inertia_) / max(1, sample.shape[0]))


def similarity_map(
    source: TimeSeries,
    model: PixelModel | str | os.PathLike | Callable[[], PixelModel],
    region: Region | None,
    out_dir: str | os.PathLike,
    *,
    query_xy: tuple[float, float] | tuple[float, float, str | None] | None = None,
    query_region: Region | None = None,
    batch_size: int = 4096,
    block: int = 256,
    progress: Callable[[float], None] | None = None,
    cancel: CancelToken | Callable[[], bool] | None = None,
    executor: Any = None,
) -> InferenceResult:
    """Cosine similarity of every pixel's embedding to a query → ``similarity.tif`` (float32,
    -1..1, NaN = nodata) and ``similarity.qml``.

    The query is the embedding of one pixel (``query_xy`` = (x, y) or (x, y, crs); the raster's
    CRS when none), or the mean embedding over a polygon (``query_region``, e.g. from
    :func:`pimc_core.io.regions.parse_region`).

    Raises:
        ConfigError: neither or both queries; the model gives no embeddings.
        InputError: the query point is outside the raster or its pixels have too few valid
            observations.
    """
    from pimc_core.maps.styling import ramp_qml

    if (query_xy is None) == (query_region is None):
        raise ConfigError("give a query pixel (x, y) or a query polygon, not both and not neither")
    run = _Run(source, model, region, block=block, batch_size=batch_size, progress=progress, cancel=cancel,
               executor=executor)
    run.require("embeddings", "embeddings (needed for similarity)")
    if query_xy is not None:
        x, y, *rest = query_xy
        row, col = source.grid.rowcol(float(x), float(y), rest[0] if rest else None)
        qregion = Region(source.grid, Window(col, row, 1, 1), description=f"pixel row {row}, col {col}")
        what = f"pixel ({x:g}, {y:g}) = row {row}, col {col}"
    else:
        if query_region.grid.difference(source.grid) is not None:
            raise ConfigError("the query polygon's region is on another grid than the source")
        qregion = query_region
        what = f"{query_region.description} ({query_region.n_pixels} px)"
    total = np.zeros(run.info.embed_dim, np.float64)
    count = 0
    for res in run.map(_MeanJob(), windows=list(qregion.windows(run.block)), region=qregion, span=(0.0, 0.1)):
        total += res.value[0]
        count += res.value[1]
    if count == 0:
        raise InputError(f"the query {what} has too few valid observations (min_valid {run.info.min_valid})")
    query = total / count
    norm = float(np.linalg.norm(query))
    if not np.isfinite(norm) or norm == 0:
        raise InputError(f"the query {what} has a zero or invalid embedding")
    run.predicted = 0
    out = _out_dir(out_dir)
    spec = _Product("similarity", "float32", 1, math.nan, ("cosine similarity to the query",),
                    {"pimc_source": str(source.source), "pimc_product": "similarity", "pimc_query": what},
                    qml=ramp_qml(0.0, 1.0))
    files = run.write_all(out, [spec], _SimilarityJob(query / norm), span=(0.1, 1.0))
    return run.result(files, run.region.n_pixels, query=what, query_pixels=int(count))


# ============================================================================ baseline model
class NearestCentroidModel:
    """A documented baseline, **not PIMC**: nearest class-mean NDVI curve.

    * classes: softmax of ``-mean squared distance / temperature`` between a pixel's NDVI series
      and each class's centroid curve;
    * forecast: persistence (the last value, repeated for ``horizon`` steps of the median
      date spacing);
    * embeddings: the pixel's NDVI series standardised to mean 0, standard deviation 1.

    Centroids are either given (``centroids`` (K, T) on ``target_dates``) or computed from
    ``curves(class_id, doy)`` on the dates of the series when :meth:`prepare` binds the model to
    a source. :meth:`for_synthetic` builds it from the classes of
    :mod:`pimc_core.datasets.synthetic`. Everything is numpy: the model pickles (Dask workers).
    """

    indices: tuple[str, ...] = ("ndvi",)
    outputs: tuple[str, ...] = ("classes", "confidence", "probabilities", "forecast", "embeddings")
    forecast_index = "ndvi"
    patch_size = None
    patch_bands: tuple[str, ...] = ()

    def __init__(
        self,
        class_table: Sequence[Mapping[str, Any]],
        *,
        curves: Callable[[int, np.ndarray], np.ndarray] | None = None,
        centroids: np.ndarray | None = None,
        target_dates: Sequence[dt.date] | None = None,
        min_valid: int = 3,
        temperature: float = 0.01,
        horizon: int = 3,
    ) -> None:
        if (curves is None) == (centroids is None):
            raise ConfigError("give either class curves or centroids")
        if centroids is not None and target_dates is None:
            raise ConfigError("centroids need the target_dates they are sampled on")
        self.class_table = [dict(c) for c in class_table]
        self.n_classes = len(self.class_table)
        self.curves = curves
        self.centroids = None if centroids is None else np.asarray(centroids, np.float32)
        self.target_dates = list(target_dates) if target_dates is not None else None
        self.min_valid = int(min_valid)
        self.temperature = float(temperature)
        self.horizon = int(horizon)
        self.forecast_dates: list[dt.date] | None = None
        self.embed_dim: int | None = None
        if self.centroids is not None:
            self._bind(self.target_dates)

    @classmethod
    def for_synthetic(cls, n_classes: int | None = None, **kw) -> "NearestCentroidModel":
        """The baseline for :func:`pimc_core.datasets.synthetic.make_synthetic` data (its class curves)."""
        from pimc_core.datasets import synthetic as sample_data

        specs = sample_data.CLASSES[: n_classes or len(sample_data.CLASSES)]
        table = [{"id": c.id, "name": c.name, "color": c.color} for c in specs]
        return cls(table, curves=sample_data.class_ndvi, **kw)

    def prepare(self, source: TimeSeries) -> None:
        """Sample the class curves on the series' dates (or the target dates)."""
        dates = self.target_dates if self.target_dates is not None else list(source.dates)
        if self.curves is not None:
            doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
            self.centroids = np.stack([np.asarray(self.curves(c["id"], doy), np.float32) for c in self.class_table])
        self._bind(dates)

    def _bind(self, dates: Sequence[dt.date]) -> None:
        dates = list(dates)
        if self.centroids is None or self.centroids.shape != (self.n_classes, len(dates)):
            raise ConfigError(f"centroids must have shape ({self.n_classes}, {len(dates)})")
        step = int(np.median(np.diff([d.toordinal() for d in dates]))) if len(dates) > 1 else 1
        self.forecast_dates = [dates[-1] + dt.timedelta(days=step * (i + 1)) for i in range(self.horizon)]
        self.embed_dim = len(dates)

    def predict(self, filled: np.ndarray, patches: np.ndarray | None = None) -> dict[str, np.ndarray]:
        x = np.asarray(filled, np.float32)[:, 0, :]  # (N, T) NDVI
        d2 = ((x[:, None, :] - self.centroids[None]) ** 2).mean(axis=-1)  # (N, K)
        logits = -d2 / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        sd = x.std(axis=1, keepdims=True)
        emb = (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 1e-6, sd, 1.0)
        return {
            "probabilities": p.astype(np.float32),
            "forecast": np.repeat(x[:, -1:], self.horizon, axis=1),
            "embeddings": emb.astype(np.float32),
        }
