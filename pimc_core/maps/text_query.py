"""Text queries over pixels: the similarity of every pixel to a sentence, and the pixel facts the
text head is trained on, both through the map run of every other map.

* :func:`query_map` (``pimc query``): the sentence is encoded by the model's text head
  (:func:`pimc_core.models.text_encoder.load_text_head`) into a unit vector ``q`` (E,); every
  pixel's PIMC embedding is projected into the same space and ``similarity.tif`` is the cosine
  of the two (float32, -1..1, NaN = nodata, with ``similarity.qml``), written by
  :class:`~pimc_core.maps.jobs.SimilarityJob` as the similarity to a pixel is. Words the head
  does not know are reported in the result (``extra["unknown"]``), not an error; a sentence with
  no known word is a ConfigError.
* :func:`collect_facts` (``pimc text-fit``): a bounded random sample of the region's pixels with
  their PIMC embedding, their phenology metrics (:func:`pimc_core.series.phenology.series_season`
  of the model's gap-filled series, as ``pimc phenology`` computes them) and mean index, and their class where a label
  map is given: what the captions (:mod:`pimc_core.series.captions`) are written from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from pimc_core.errors import ConfigError
from pimc_core.io.labels import LabelMap
from pimc_core.io.regions import Region
from pimc_core.io.timeseries import TimeSeries
from pimc_core.learn.text_align import PixelFacts
from pimc_core.maps.jobs import SampleJob, SimilarityJob
from pimc_core.maps.products import similarity_product
from pimc_core.maps.protocol import load_model
from pimc_core.maps.run import InferenceResult, MapRun
from pimc_core.series.phenology import METRICS, series_season

__all__ = ["FactsModel", "TextQueryModel", "collect_facts", "query_map"]

_DELEGATED = ("indices", "target_dates", "min_valid", "patch_size", "patch_bands", "patch_channels", "training_dates",
              "n_dates", "metadata", "patch_composite", "needs_patches", "device_summary", "select_inputs",
              "channel_groups")


class _Wrapped:
    """A PixelModel over a PIMC pixel model that gives other ``embeddings`` (picklable for Dask)."""

    outputs: tuple[str, ...] = ("embeddings",)
    n_classes = 0
    class_table: tuple = ()
    forecast_dates = None

    def __init__(self, base: Any) -> None:
        self.base = base

    def __getattr__(self, name: str) -> Any:
        if name in _DELEGATED and "base" in self.__dict__:
            return getattr(self.__dict__["base"], name)
        raise AttributeError(name)

    def prepare(self, source: TimeSeries) -> None:
        """Bind the base model to ``source`` (bands, dates)."""
        prep = getattr(self.base, "prepare", None)
        if callable(prep):
            prep(source)

    def base_embeddings(self, filled: np.ndarray, patches: np.ndarray | None) -> np.ndarray:
        """(N, C, T) series (+ patches) → (N, D) float32 embeddings of the base model."""
        return self.base.predict(filled, patches, outputs=("embeddings",))["embeddings"]


class FactsModel(_Wrapped):
    """``embeddings`` (N, D + 8): the base model's embedding, then the seven phenology metrics
    (:data:`~pimc_core.series.phenology.METRICS`) of the series of ``index``, as ``pimc phenology``
    computes them, and its mean over the model's dates."""

    def __init__(self, base: Any, index: str = "ndvi") -> None:
        super().__init__(base)
        idx = [str(i).lower() for i in base.indices]
        self.channel = idx.index(index) if index in idx else 0
        self.index = idx[self.channel]
        self.embed_dim = int(base.embed_dim) + len(METRICS) + 1
        self.year = 0
        self.dates: list = []

    def prepare(self, source: TimeSeries) -> None:
        super().prepare(source)
        self.dates = list(getattr(self.base, "target_dates", None) or source.dates)
        self.year = self.dates[0].year

    def predict(self, filled: np.ndarray, patches: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """(N, C, T) → ``embeddings`` (N, D + 8) float32; the metrics as ``pimc phenology``
        computes them (the series resampled onto its 5-day grid first)."""
        y = np.asarray(filled)[:, self.channel, :]
        m = series_season(y, self.dates)
        cols = [self.base_embeddings(filled, patches)] + [m[k][:, None] for k in METRICS] + [y.mean(1, keepdims=True)]
        return {"embeddings": np.concatenate(cols, axis=1).astype(np.float32)}


class TextQueryModel(_Wrapped):
    """``embeddings`` (N, E): the base model's embeddings in the text head's joint space."""

    def __init__(self, base: Any, head: Any) -> None:
        super().__init__(base)
        self.head = head
        self.embed_dim = int(head.sizes["out_dim"])

    def predict(self, filled: np.ndarray, patches: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """(N, C, T) → ``embeddings`` (N, E) float32."""
        return {"embeddings": self.head.pixel_vectors(self.base_embeddings(filled, patches))}


class _Parts(list):
    """The batches of one window, and the window (for raster rows and columns)."""

    win: Any = None


@dataclass
class _SampleFacts(SampleJob):
    """:class:`~pimc_core.maps.jobs.SampleJob` over rows ``[raster row, raster column, outputs…]`` (N, 2 + D)."""

    def start(self, win, info):
        parts = _Parts()
        parts.win = win
        return parts

    def add(self, parts, block, sl, out, info) -> None:
        parts.append(np.column_stack([block.rows[sl] + int(parts.win.row_off), block.cols[sl] + int(parts.win.col_off),
                                      np.asarray(out["embeddings"], np.float64)]))


def collect_facts(source: TimeSeries, model: Any, region: Region | None, out_dir: str | os.PathLike, *,
                  labels: LabelMap | None = None, descriptions: dict[str, str] | None = None, pixels: int = 20000,
                  seed: int = 0, index: str = "ndvi", **options: Any) -> PixelFacts:
    """A random sample of at most about ``pixels`` pixels of the region with what their captions
    are written from.

    Args:
        source: the stack. model: a PIMC pixel model or its ``.pimc`` path.
        region: where to sample (None: the whole raster). out_dir: the folder the run checks
            (nothing is written to it).
        labels: a label map on the source's grid (its class names go into the captions), or None.
        descriptions: class name → description (``description`` of classes.json).
        index: the index whose phenology metrics are captioned (the model's first when it lacks it).
        **options: :class:`~pimc_core.maps.run.RunOptions`.

    Returns:
        :class:`~pimc_core.learn.text_align.PixelFacts` of the sampled pixels.
    """
    base = load_model(model)
    facts_model = FactsModel(base, index)
    run = MapRun(source, facts_model, region, out_dir, options)
    run.require("embeddings", "embeddings (needed for text queries)")
    per_window = max(1, int(np.ceil(pixels / max(1, len(run.windows)))))
    rows = [res.value for res in run.map(_SampleFacts(per_window, seed)) if res.value.shape[0]]
    run.require_pixels()
    rows = np.concatenate(rows)
    rc, e = rows[:, :2].astype(np.int64), rows[:, 2:]
    fm = run.model
    d = int(base.embed_dim)
    metrics = {k: e[:, d + i].astype(np.float64) for i, k in enumerate(METRICS)}
    names: list[str | None] = [None] * len(rc)
    if labels is not None:
        table = {int(c["id"]): str(c["name"]) for c in labels.classes}
        ids = labels.array[rc[:, 0], rc[:, 1]]
        names = [table.get(int(i)) if i else None for i in ids]
    return PixelFacts(embeddings=e[:, :d].astype(np.float32), metrics=metrics, level=e[:, -1].astype(np.float64),
                      year=int(fm.year), index=fm.index, class_names=names,
                      descriptions=dict(descriptions or {}), positions=rc)


def query_map(source: TimeSeries, model: Any, text: str, region: Region | None, out_dir: str | os.PathLike,
              **options: Any) -> InferenceResult:
    """The cosine similarity of every pixel to a sentence → ``similarity.tif`` + ``similarity.qml``.

    Args:
        source: the stack. model: a ``.pimc`` file with a text head (``pimc text-fit``).
        text: the query, e.g. ``"green-up in April, harvested in July"`` or a class name.
        region: where (None: the whole raster). out_dir: output folder.
        **options: :class:`~pimc_core.maps.run.RunOptions`.

    Returns:
        The run's result; ``extra``: ``query`` (the text), ``unknown`` (its words the head does
        not know, ignored).

    Raises:
        InputError: the model has no text head. ConfigError: no word of the text is known.
    """
    from pimc_core.models.text_encoder import load_text_head, words

    if not isinstance(model, (str, os.PathLike)):
        raise ConfigError("query_map: give the model as a .pimc path (its text head is read from the file)")
    head = load_text_head(model)
    unknown = head.tokeniser.unknown(text)
    if len(unknown) == len(set(words(text))):
        raise ConfigError(f"--text: no word of {text!r} is in the model's vocabulary ({len(head.tokeniser) - 2} words, "
                          f"e.g. {', '.join([w for w in head.tokeniser.vocab if w.isalpha()][:6])})")
    q = head.text_vectors([text])[0]
    run = MapRun(source, TextQueryModel(load_model(model), head), region, out_dir, options)
    files = run.write_all([similarity_product(source, f"text: {text}")], SimilarityJob(q))
    return run.result(files, query=text, unknown=unknown)
