"""What a map run does with the model's outputs of each window: the jobs.

A job turns the outputs of a window's batches into that window's result, in three steps:
``start`` (an empty per-window state), ``add`` (one batch of predictions, scattered to its
pixels), ``finish`` (the value sent back to the client). Jobs are small picklable objects
(Dask sends them to the workers with each run):

* :class:`MapJob`: the products of :func:`pimc_core.maps.engine.run_inference` as (h, w) /
  (bands, h, w) arrays (``uncertainty`` is :func:`normalised_entropy` of the probabilities the
  class map is the argmax of). With smoothing (:class:`~pimc_core.maps.smoothing.SmoothConfig`)
  it reads the window grown by the smoothing's half window (:meth:`Job.read_window`), smooths
  the grown window's probabilities and keeps the core window: the result does not depend on the
  block size;
* :class:`SampleJob` and :class:`ClusterJob`: the two passes of
  :func:`pimc_core.maps.engine.cluster_map` (a bounded sample of embeddings, then each pixel's
  nearest k-means centre);
* :class:`MeanJob` and :class:`SimilarityJob`: the query embedding and the cosine similarity
  map of :func:`pimc_core.maps.engine.similarity_map`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from rasterio.windows import Window

from pimc_core.io.grid import Grid
from pimc_core.maps.protocol import PRODUCTS, ModelInfo
from pimc_core.maps.smoothing import SmoothConfig
from pimc_core.maps.window import Block

__all__ = ["ClusterJob", "Job", "MapJob", "MeanJob", "SampleJob", "SimilarityJob", "normalised_entropy"]


def normalised_entropy(prob: np.ndarray) -> np.ndarray:
    """The entropy of each row of class probabilities over its maximum, ``H / log(K)``.

    Args:
        prob: (N, K) probabilities (rows summing to 1).

    Returns:
        (N,) float32 in [0, 1]: 0 when one class has probability 1, 1 when all K are equal
        (0 for K = 1: a single class is certain).
    """
    p = np.asarray(prob, np.float64)
    k = p.shape[1] if p.ndim == 2 else 0
    if k < 2:
        return np.zeros(p.shape[0], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.clip(-terms.sum(axis=1) / np.log(k), 0.0, 1.0).astype(np.float32)


class Job:
    """What is done with the model's outputs of one window (picklable: sent to Dask workers)."""

    #: the model outputs the job reads (``probabilities``, ``forecast``, ``embeddings``)
    needs: tuple[str, ...] = ()

    def read_window(self, win: Window, grid: Grid) -> Window:
        """The window to read and predict for the result of ``win`` (default: ``win`` itself)."""
        return win

    def start(self, win: Window, info: ModelInfo) -> Any:
        """The empty state of a window (the one :meth:`read_window` gave)."""
        raise NotImplementedError

    def add(self, state: Any, block: Block, sl: slice, out: Mapping[str, np.ndarray], info: ModelInfo) -> None:
        """Add one batch: ``out[key]`` is (n, width) for the pixels ``block.rows[sl], block.cols[sl]``."""
        raise NotImplementedError

    def finish(self, state: Any, win: Window, info: ModelInfo) -> Any:
        """The result of ``win`` (default: the state)."""
        return state


_FROM_PROBABILITIES = ("classes", "confidence", "uncertainty", "probabilities")


def _put_probabilities(arrays: dict[str, np.ndarray], r: np.ndarray, c: np.ndarray, prob: np.ndarray,
                       info: ModelInfo) -> None:
    """Write what (n, K) class probabilities give (classes, confidence, uncertainty,
    probabilities) at the pixels ``r, c`` of the window's arrays."""
    top = np.argmax(prob, axis=1)
    if "classes" in arrays:
        arrays["classes"][r, c] = info.class_ids[top]
    if "confidence" in arrays:
        arrays["confidence"][r, c] = prob[np.arange(prob.shape[0]), top]
    if "uncertainty" in arrays:
        arrays["uncertainty"][r, c] = normalised_entropy(prob)
    if "probabilities" in arrays:
        arrays["probabilities"][:, r, c] = prob.T


@dataclass
class MapJob(Job):
    """Write the requested products; with ``smooth``, those of the class probabilities
    (classes, confidence, uncertainty, probabilities) come from the smoothed probabilities."""

    products: tuple[str, ...]
    smooth: SmoothConfig | None = None

    @property
    def needs(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(sorted({PRODUCTS[p] for p in self.products}))

    @property
    def halo(self) -> int:
        """Pixels read beyond each side of a window for the smoothing (0: none)."""
        if self.smooth is None or not any(p in _FROM_PROBABILITIES for p in self.products):
            return 0
        return self.smooth.halo

    def read_window(self, win: Window, grid: Grid) -> Window:
        """``win`` grown by :attr:`halo` on each side, clipped to the raster."""
        g = self.halo
        if not g:
            return win
        c0, r0 = max(0, int(win.col_off) - g), max(0, int(win.row_off) - g)
        c1 = min(grid.width, int(win.col_off) + int(win.width) + g)
        r1 = min(grid.height, int(win.row_off) + int(win.height) + g)
        return Window(c0, r0, c1 - c0, r1 - r0)

    def start(self, win: Window, info: ModelInfo) -> dict[str, Any]:
        h, w = int(win.height), int(win.width)
        arrays: dict[str, Any] = {}
        if self.halo:  # the raw probabilities of the grown window; the products at finish
            arrays["_prob"] = np.full((len(info.class_table), h, w), np.nan, np.float32)
            arrays["_window"] = win
        for p in self.products:
            if self.halo and p in _FROM_PROBABILITIES:
                continue
            if p == "classes":
                arrays[p] = np.zeros((h, w), np.uint8)
            elif p in ("confidence", "uncertainty"):
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
        if "_prob" in arrays:
            arrays["_prob"][:, r, c] = out["probabilities"].T
        elif "probabilities" in out:
            _put_probabilities(arrays, r, c, out["probabilities"], info)
        if "forecast" in arrays:
            arrays["forecast"][:, r, c] = out["forecast"].T
        if "embeddings" in arrays:
            arrays["embeddings"][:, r, c] = out["embeddings"].T

    def finish(self, arrays, win, info) -> dict[str, np.ndarray]:
        """The arrays of ``win``: with smoothing, the grown window's probabilities smoothed, then
        the core window's products derived from them."""
        if "_prob" not in arrays:
            return arrays
        grown = arrays.pop("_window")
        rs = slice(int(win.row_off) - int(grown.row_off), int(win.row_off) - int(grown.row_off) + int(win.height))
        cs = slice(int(win.col_off) - int(grown.col_off), int(win.col_off) - int(grown.col_off) + int(win.width))
        prob = self.smooth(arrays.pop("_prob"))[:, rs, cs]
        core = {name: a[..., rs, cs] for name, a in arrays.items()}
        core.update(MapJob(tuple(p for p in self.products if p in _FROM_PROBABILITIES)).start(win, info))
        r, c = np.nonzero(np.isfinite(prob).all(axis=0))
        _put_probabilities(core, r, c, prob[:, r, c].T, info)
        return {p: np.ascontiguousarray(core[p]) for p in self.products}


@dataclass
class SampleJob(Job):
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
class ClusterJob(Job):
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
class MeanJob(Job):
    """The sum and count of the embeddings of a window (query polygon / pixel)."""

    needs: tuple[str, ...] = ("embeddings",)

    def start(self, win, info):
        return [np.zeros(info.embed_dim, np.float64), 0]

    def add(self, acc, block, sl, out, info) -> None:
        acc[0] += out["embeddings"].sum(axis=0, dtype=np.float64)
        acc[1] += out["embeddings"].shape[0]


@dataclass
class SimilarityJob(Job):
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
