"""The model side of a map: what a per-pixel model must provide, how it is loaded, and the
facts about it the engine checks once before any window is read.

A model is anything with the attributes and the ``predict`` method of :class:`PixelModel`
(a structural protocol: no base class). PIMC models are loaded from ``.pimc`` files by
:func:`pimc_core.models.pixel_model.load_pixel_model`; :class:`pimc_core.models.centroid.NearestCentroidModel`
is a small documented baseline (not PIMC). :func:`model_info` reads and checks the model's
attributes against a source (bands, outputs, class table, forecast dates, patches) and returns
them as a :class:`ModelInfo`, the picklable summary sent to Dask workers with each run.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.timeseries import TimeSeries

__all__ = ["DEFAULT_PRODUCTS", "FROM_PROBABILITIES", "PRODUCTS", "ModelInfo", "PixelModel", "load_model", "model_info", "model_products",
           "prepare_model"]

#: Products :func:`pimc_core.maps.engine.run_inference` can write, and the model output each needs.
PRODUCTS: dict[str, str] = {
    "classes": "probabilities",
    "confidence": "probabilities",
    "uncertainty": "probabilities",
    "probabilities": "probabilities",
    "forecast": "forecast",
    "embeddings": "embeddings",
}
#: What :func:`pimc_core.maps.engine.run_inference` writes by default (restricted to what the model gives).
DEFAULT_PRODUCTS: tuple[str, ...] = ("classes", "confidence", "uncertainty", "forecast")
#: Products every model that gives ``probabilities`` gives, whether or not its ``outputs`` lists them.
FROM_PROBABILITIES: tuple[str, ...] = ("uncertainty",)


@runtime_checkable
class PixelModel(Protocol):
    """What the engine needs from a per-pixel model.

    Attributes:
        indices: index channels the model reads, in channel order, e.g. ``("ndvi", "evi", "savi")``.
        target_dates: dates the series are resampled onto (a model's fixed date grid), or None to
            use the acquisition dates as they are.
        min_valid: pixels with fewer valid observations are nodata in every output.
        outputs: which of ``classes``, ``confidence``, ``probabilities``, ``forecast``,
            ``embeddings`` the model can give (``uncertainty`` comes with ``probabilities``).
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
        needs_patches(outputs) -> bool: whether ``predict`` uses patches for these outputs
            (default: always, when ``patch_size``); a class map of a classifier that reads the
            series alone then reads neither the patch bands nor their composite.
        predict(filled, patches, outputs=...): a ``predict`` with an ``outputs`` keyword is asked
            for the outputs the products need only (e.g. no forecast for a class map).
        device_summary() -> str: where ``predict`` runs, in words, for the run's summary line
            (default ``CPU``).
        training_dates (Sequence[date]): the dates of the series the model was trained on; with
            ``n_dates`` (int, for a model that reads the acquisition dates as they are), what
            :mod:`pimc_core.maps.season` checks a stack against.
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


def prepare_model(model: PixelModel, source: TimeSeries) -> None:
    """Bind a model to a source (its optional ``prepare(source)``), once per process."""
    prep = getattr(model, "prepare", None)
    if callable(prep):
        prep(source)


@dataclass(frozen=True)
class ModelInfo:
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


def model_info(model: PixelModel, source: TimeSeries) -> ModelInfo:
    """The model's attributes, checked against ``source`` (its bands) once, client side.

    Raises:
        ConfigError: a missing or inconsistent attribute. BandError: a band the model needs is missing.
    """
    from pimc_core.io.classes import normalise_class_table
    from pimc_core.series.indices import required_bands

    name = type(model).__name__
    try:
        indices = tuple(str(i).lower() for i in model.indices)
        outputs = frozenset(_outputs(model.outputs))
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
    return ModelInfo(
        indices, target_dates, min_valid, outputs, class_table, forecast_dates,
        str(getattr(model, "forecast_index", "ndvi") or "ndvi"), embed_dim, patch_size,
        patch_bands if patch_size else (), bands,
    )


def _outputs(outputs: Sequence[str]) -> set[str]:
    """A model's outputs with the products derived from its probabilities."""
    outs = {str(o) for o in outputs}
    if "probabilities" in outs:
        outs.update(FROM_PROBABILITIES)
    return outs


def model_products(model: PixelModel) -> tuple[str, ...]:
    """The products of :data:`PRODUCTS` a model can give."""
    outs = _outputs(model.outputs)
    return tuple(p for p in PRODUCTS if p in outs)
