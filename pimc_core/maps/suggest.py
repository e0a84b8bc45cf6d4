"""Where to label next: N points of a region where a label should help the classifier most.

:func:`suggest_samples` runs the model over the region with the map engine (the same windows,
reading and ``predict`` as :func:`pimc_core.maps.engine.run_inference`; nothing is written but
the points) and picks N pixels in one of two ways (:data:`~pimc_core.maps.coverage.STRATEGIES`).

``coverage`` (the default, :mod:`pimc_core.maps.coverage`): weighted k-means of the candidates'
embeddings (step 2 below), weighted by their novelty (distance to the nearest labelled pixel's
embedding) and uncertainty; the candidate nearest each centre. Against 200 random pixels it
lifted the withheld accuracy on each of 8 synthetic stacks (``benchmarks/bench_suggest.py
--coverage``, docs/BENCHMARKS.md: +0.0088 ± 0.0126, median +0.0034), the heuristic below on 6
of the 8 (+0.0044 ± 0.0073), so it is the default since 2026-12-07. A model without embeddings
falls back to ``uncertainty``.

``uncertainty``: *uncertainty sampling* with spatial and class spread:

1. **uncertainty** of every pixel: the normalised entropy of its class probabilities
   (:func:`pimc_core.maps.jobs.normalised_entropy`, the ``uncertainty.tif`` of ``pimc classify``);
2. **candidates**, streamed window by window (memory does not grow with the raster): the scene
   is cut into square cells of side ``c`` (about a quarter of the spacing below) and each cell
   keeps, per predicted class, its most uncertain pixel. Two points of one cell would be closer
   than the spacing anyway; cells are fixed on the raster's grid, so the result does not depend
   on ``block``;
3. **quotas per predicted class**: ``N`` shared in proportion to the square root of the class's
   area (largest remainders), at least one point per class where ``N`` allows (otherwise the
   largest classes get one each); a class with fewer candidates than its quota passes the rest
   on. The square root gives small classes more points than their area, less than an equal share;
4. **greedy spread**: the classes take turns; each takes its most uncertain candidate that is at
   least ``r = spacing * sqrt(A / N)`` pixels from every point chosen so far (``A`` the pixels
   with a prediction; ``sqrt(A / N)`` is the side of the square each of N evenly spread points
   would have). When a class runs out, ``r`` is halved for the points still missing, down to
   0 (then only "one point per pixel" holds). Ties in uncertainty are broken by a hash of the
   pixel's position and ``seed``.

Pixels already labelled (``exclude``, the label files of ``pimc suggest --labels``) are never
candidates; they still count in the class areas, the spacing and the map's median uncertainty.

This is the textbook pool-based active-learning heuristic (uncertainty sampling, Settles 2009,
*Active Learning Literature Survey*, section 3.1) with the diversity that batch selection
needs; it is written here in numpy because it runs on a stream of windows. Against labelling
the same number of random valid pixels (``benchmarks/bench_suggest.py``, docs/BENCHMARKS.md) it
was ahead on 6 of 8 synthetic stacks by +0.0044 ± 0.0073, a direction rather than a lead (an
earlier version, which could suggest already-labelled pixels: -0.0003 ± 0.012 on five); more
spread, interior pixels only, uncertainty-weighted random sampling and area-proportional quotas
did not do better. Its blind spot is a field the network maps confidently and wrongly: low
entropy, never suggested; ``coverage`` looks for those.

The points are written as a GeoPackage (:func:`pimc_core.io.vector.write_points`) in the
stack's CRS, at pixel centres, with the fields ``predicted`` (class id), ``predicted_name``,
``uncertainty`` and an empty ``class`` for the analyst to fill in; ``pimc fit --labels
points.gpkg --class-field class`` reads it back (rows left empty are skipped).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from pimc_core.config import Integral, Interval, Real, check_params
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.atomic import not_an_input, output_file
from pimc_core.io.regions import Region
from pimc_core.io.timeseries import TimeSeries
from pimc_core.io.vector import write_points
from pimc_core.maps.coverage import STRATEGIES, coverage_pick
from pimc_core.maps.jobs import Job, normalised_entropy
from pimc_core.maps.run import MapRun

__all__ = ["STRATEGIES", "Suggestions", "SuggestJob", "class_quotas", "suggest_samples"]
#: Most labelled pixels' embeddings kept per window, and in all (``coverage``).
LABELLED_PER_WINDOW = 2048
LABELLED_MAX = 8192

#: Candidate cells per spacing: a cell's side is about ``r / CELLS_PER_SPACING``.
CELLS_PER_SPACING = 4
#: Bins of the uncertainty histogram (the map's median uncertainty, streamed).
HIST_BINS = 1000


def _pixel_keys(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """(n,) uint64 pseudo-random keys of pixels (splitmix64 of position and seed): the tie-breaker."""
    x = (rows.astype(np.uint64) << np.uint64(32)) ^ cols.astype(np.uint64)
    x = x ^ np.uint64((int(seed) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _best_per_cell(c: dict[str, np.ndarray], cell: int) -> dict[str, np.ndarray]:
    """Per (cell of side ``cell``, class), the candidate of highest uncertainty (then highest key)."""
    if c["rows"].size == 0:
        return c
    gid = ((c["rows"] // cell).astype(np.int64) << 32) + (c["cols"] // cell).astype(np.int64)
    order = np.lexsort((c["key"], c["u"], c["cls"], gid))  # the best of a group comes last
    g, k = gid[order], c["cls"][order]
    last = np.ones(order.size, bool)
    last[:-1] = (g[1:] != g[:-1]) | (k[1:] != k[:-1])
    keep = order[last]
    return {name: v[keep] for name, v in c.items()}


def _empty() -> dict[str, np.ndarray]:
    return {"rows": np.empty(0, np.int64), "cols": np.empty(0, np.int64), "cls": np.empty(0, np.int16),
            "u": np.empty(0, np.float32), "key": np.empty(0, np.uint64)}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p["rows"].size]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else _empty()


def _fewest(keys: np.ndarray, most: int) -> np.ndarray:
    """Indices of at most ``most`` rows: those of the highest keys (a deterministic subsample)."""
    return np.arange(keys.size) if keys.size <= most else np.sort(np.argsort(keys)[-most:])


@dataclass
class SuggestJob(Job):
    """Per window: the candidates (best pixel per cell and predicted class), the predicted
    class counts, a histogram of the uncertainty and how many predicted pixels ``exclude`` took
    out of the candidates (picklable: sent to Dask workers once per run). With ``embeddings``
    in ``needs`` (the ``coverage`` strategy) each candidate carries its embedding (``emb``) and
    the window also returns the embeddings of up to :data:`LABELLED_PER_WINDOW` excluded
    (labelled) pixels (``labelled``, ``(m, D)``).

    Attributes:
        exclude: (H, W) bool mask of the source grid, True where a pixel is never a candidate
            (already labelled), or None.
    """

    cell: int
    seed: int
    exclude: np.ndarray | None = None
    needs: tuple[str, ...] = ("probabilities",)

    def start(self, win, info):
        return {"parts": [], "counts": np.zeros(len(info.class_table), np.int64),
                "hist": np.zeros(HIST_BINS, np.int64), "excluded": 0, "labelled": []}

    def add(self, state, block, sl, out, info) -> None:
        prob = out["probabilities"]
        top = np.argmax(prob, axis=1)
        u = normalised_entropy(prob)
        rows = block.rows[sl].astype(np.int64) + int(block.win.row_off)
        cols = block.cols[sl].astype(np.int64) + int(block.win.col_off)
        state["counts"] += np.bincount(top, minlength=state["counts"].size)
        state["hist"] += np.bincount(np.minimum((u * HIST_BINS).astype(np.int64), HIST_BINS - 1), minlength=HIST_BINS)
        cand = {"rows": rows, "cols": cols, "cls": top.astype(np.int16), "u": u,
                "key": _pixel_keys(rows, cols, self.seed)}
        if "embeddings" in self.needs:
            cand["emb"] = np.asarray(out["embeddings"], np.float32)
        if self.exclude is not None:
            free = ~self.exclude[rows, cols]
            state["excluded"] += int(free.size - np.count_nonzero(free))
            if "emb" in cand and not free.all():
                lab = np.flatnonzero(~free)
                lab = lab[_fewest(cand["key"][lab], LABELLED_PER_WINDOW)]
                state["labelled"].append((cand["key"][lab], cand["emb"][lab]))
            cand = {k: v[free] for k, v in cand.items()}
        state["parts"].append(_best_per_cell(cand, self.cell))

    def finish(self, state, win, info):
        return {"cand": _best_per_cell(_concat(state["parts"]), self.cell), "counts": state["counts"],
                "hist": state["hist"], "excluded": state["excluded"], "labelled": state["labelled"]}


def class_quotas(areas: np.ndarray, n: int, available: np.ndarray) -> np.ndarray:
    """How many of ``n`` points each predicted class gets.

    Args:
        areas: (K,) pixels predicted as each class.
        n: points to share.
        available: (K,) candidates of each class (a quota never exceeds them).

    Returns:
        (K,) int quotas summing to ``min(n, available.sum())``: proportional to ``sqrt(area)`` by
        largest remainders, at least 1 for each class with candidates while ``n`` allows (the
        largest classes first).
    """
    areas = np.asarray(areas, np.float64)
    cap = np.asarray(available, np.int64).copy()
    quota = np.zeros(areas.size, np.int64)
    present = np.flatnonzero(cap > 0)
    left = min(int(n), int(cap.sum()))
    by_area = present[np.argsort(-areas[present], kind="stable")]
    for c in by_area[:left]:  # one each, the largest classes first
        quota[c] = 1
    left -= int(quota.sum())
    while left > 0:
        open_ = np.flatnonzero(quota < cap)
        w = np.sqrt(areas[open_])
        share = w / w.sum() * left if w.sum() > 0 else np.full(open_.size, left / open_.size)
        # the quota a class would have in total, minus what it has: largest remainders
        add = np.floor(share).astype(np.int64)
        rest = left - int(add.sum())
        if rest > 0:
            frac = share - add
            add[np.argsort(-frac, kind="stable")[:rest]] += 1
        add = np.minimum(add, cap[open_] - quota[open_])
        quota[open_] += add
        left -= int(add.sum())
    return quota


def _spread(cand: dict[str, np.ndarray], quota: np.ndarray, radius: float) -> np.ndarray:
    """Indices of the chosen candidates: classes in turn, each its most uncertain candidate at
    least ``radius`` from every chosen point; the radius halves while some class cannot fill its quota."""
    order = np.lexsort((cand["key"], cand["u"]))[::-1]  # most uncertain first, then the highest key
    per_class = {int(c): order[cand["cls"][order] == c] for c in np.flatnonzero(quota)}
    rows, cols = cand["rows"], cand["cols"]
    chosen: list[int] = []
    taken = np.zeros(rows.size, bool)
    got = np.zeros(quota.size, np.int64)
    r = float(radius)
    while True:
        cells: dict[tuple[int, int], list[int]] = {}
        size = max(r, 1.0)
        for i in chosen:
            cells.setdefault((int(rows[i] // size), int(cols[i] // size)), []).append(i)

        def free(i: int) -> bool:
            if r <= 0:
                return True
            cy, cx = int(rows[i] // size), int(cols[i] // size)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    for j in cells.get((cy + dy, cx + dx), ()):
                        if (rows[i] - rows[j]) ** 2 + (cols[i] - cols[j]) ** 2 < r * r:
                            return False
            return True

        pos = dict.fromkeys(per_class, 0)
        active = [c for c in per_class if got[c] < quota[c]]
        while active:
            for c in list(active):
                idx = per_class[c]
                while pos[c] < idx.size:
                    i = int(idx[pos[c]])
                    pos[c] += 1
                    if not taken[i] and free(i):
                        taken[i] = True
                        chosen.append(i)
                        cells.setdefault((int(rows[i] // size), int(cols[i] // size)), []).append(i)
                        got[c] += 1
                        break
                if got[c] >= quota[c] or pos[c] >= idx.size:
                    active.remove(c)
        if (got >= quota).all() or r <= 0:
            return np.asarray(chosen, np.int64)
        r = r / 2 if r >= 2 else 0.0


@dataclass
class Suggestions:
    """The suggested points (source-grid pixels) and what they were chosen from.

    Attributes:
        rows, cols: (n,) pixel rows and columns in the stack's grid.
        x, y: (n,) pixel centres in the stack's CRS.
        predicted: (n,) uint8 predicted class ids. predicted_name: (n,) their names.
        uncertainty: (n,) float32 normalised entropy of the pixels' class probabilities.
        path: the GeoPackage written.
        predicted_pixels: pixels of the region with a prediction (enough valid observations).
        median_uncertainty: the median uncertainty of those pixels (to 1 / 1000).
        spacing: the first minimum distance between points tried, in pixels.
        seconds: wall-clock time.
        excluded: labelled pixels with a prediction that were left out of the candidates (None:
            no ``exclude`` mask was given).
        strategy: how they were chosen (:data:`STRATEGIES`).
        novelty: (n,) ``coverage``: the points' cosine distance to the nearest labelled pixel in
            the embedding space (None for ``uncertainty``).
        fallback: ``coverage`` was asked for but the model gives no embeddings, so the points
            were chosen by ``uncertainty``.
    """

    rows: np.ndarray
    cols: np.ndarray
    x: np.ndarray
    y: np.ndarray
    predicted: np.ndarray
    predicted_name: list[str]
    uncertainty: np.ndarray
    path: Path
    predicted_pixels: int
    median_uncertainty: float
    spacing: float
    seconds: float
    excluded: int | None = None
    strategy: str = "uncertainty"
    novelty: np.ndarray | None = None
    fallback: bool = False

    def summary(self) -> str:
        """One line for the end of ``pimc suggest``."""
        above = float((self.uncertainty > self.median_uncertainty).mean()) if self.uncertainty.size else 0.0
        classes = len(set(self.predicted.tolist()))
        how = (f"by coverage, median novelty {float(np.median(self.novelty)):.3f}" if self.novelty is not None
               else f"by uncertainty, spacing {self.spacing:.1f} px"
               + ("; the model gives no embeddings for coverage" if self.fallback else ""))
        return (f"{self.path}: {self.rows.size} points in {classes} predicted classes from {self.predicted_pixels} "
                f"pixels ({how}); uncertainty {float(np.median(self.uncertainty)):.3f} "
                f"median of the points, {self.median_uncertainty:.3f} of the map ({100 * above:.0f}% of the points "
                f"above it)" + (f"; {self.excluded} labelled pixels excluded" if self.excluded is not None else "")
                + f"; {self.seconds:.1f} s")


def _median(hist: np.ndarray) -> float:
    total = int(hist.sum())
    if total == 0:
        return float("nan")
    i = int(np.searchsorted(np.cumsum(hist), (total + 1) / 2))
    return (i + 0.5) / HIST_BINS


def suggest_samples(source: TimeSeries, model: Any, region: Region | None, out: str | os.PathLike, n: int, *,
                    seed: int = 0, spacing: float = 0.5, exclude: np.ndarray | None = None,
                    strategy: str = STRATEGIES[0], **options: Any) -> Suggestions:
    """Write ``n`` points of ``region`` where a label should help the model most (see the module).

    Args:
        source: the time series. model: a model with a classifier (``.pimc`` path, model or factory).
        region: where to look (None: the whole raster).
        out: the ``.gpkg`` file to write (its folder is created if missing).
        n: number of points, at least 1, at most the pixels with a prediction.
        seed: breaks ties in uncertainty (0..2**32-1).
        spacing: the first minimum distance between points, as a fraction of ``sqrt(A / n)``.
        exclude: (H, W) bool mask of the source grid, True on pixels never to suggest (those
            already labelled, e.g. ``read_label_files(...).array > 0``), or None.
        strategy: ``coverage`` (default: weighted k-means in the model's embedding space, away
            from the ``exclude`` pixels; :mod:`pimc_core.maps.coverage`; a model without
            embeddings falls back to ``uncertainty``, which the result's ``strategy`` and summary
            say) or ``uncertainty`` (this module's heuristic).
        **options: :class:`pimc_core.maps.run.RunOptions` (``batch_size``, ``block``, ``progress``,
            ``cancel``, ``executor``).

    Raises:
        ConfigError: bad n / seed / spacing / strategy, an output that is not ``.gpkg``, a model without a
            classifier, an ``exclude`` mask of another shape. InputError: an unusable output path,
            fewer pixels (not excluded) than ``n``.
    """
    t0 = time.perf_counter()
    check_params(SimpleNamespace(n=n, seed=seed, spacing=spacing),
                 {"n": [Interval(Integral, 1, None, closed="left")],
                  "seed": [Interval(Integral, 0, 2**32 - 1, closed="both")],
                  "spacing": [Interval(Real, 0, None, closed="left")]}, where="suggest")
    if strategy not in STRATEGIES:
        raise ConfigError(f"suggest: strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if exclude is not None and isinstance(source, TimeSeries):  # another source is refused by MapRun
        exclude = np.asarray(exclude, bool)
        want = (source.grid.height, source.grid.width)
        if exclude.shape != want:
            raise ConfigError(f"suggest: the exclude mask is {'x'.join(map(str, exclude.shape))} but the stack is "
                              f"{want[0]}x{want[1]} pixels (rows x columns)")
    out = Path(out)
    if out.suffix.lower() != ".gpkg":
        raise ConfigError(f"{out}: the points are written as a GeoPackage; give a .gpkg file name")
    out = output_file(out, create_folder=True)
    files = source.files() if isinstance(source, TimeSeries) else []
    not_an_input(out, [*files, model if isinstance(model, (str, os.PathLike)) else None])
    run = MapRun(source, model, region, out.parent, options)
    run.require("probabilities", "suggestions (they need a classifier)")
    fallback = strategy == "coverage" and "embeddings" not in run.info.outputs
    if fallback:
        strategy = "uncertainty"
    needs = ("probabilities", "embeddings") if strategy == "coverage" else ("probabilities",)
    if n > run.region.n_pixels:
        raise InputError(f"suggest: {n} points asked but the region has {run.region.n_pixels} pixels")
    # candidate cells from the region's size; exact (one cell per pixel) when that leaves too few
    cell = max(1, int(spacing * math.sqrt(run.region.n_pixels / n) / CELLS_PER_SPACING))
    cand, counts, hist, excluded, labelled = _collect(run, SuggestJob(cell, int(seed), exclude, needs), (0.0, 0.9))
    valid = int(counts.sum())
    if n > valid:
        raise InputError(f"suggest: {n} points asked but only {valid} pixels of the region have enough valid "
                         f"observations (min_valid {run.info.min_valid})")
    if n > valid - excluded:
        raise InputError(f"suggest: {n} points asked but only {valid - excluded} of the {valid} pixels of the region "
                         f"with a prediction are not labelled yet")
    if cand["rows"].size < n and cell > 1:
        run.predicted = 0
        cand, counts, hist, excluded, labelled = _collect(run, SuggestJob(1, int(seed), exclude, needs), (0.9, 0.95))
    radius = spacing * math.sqrt(valid / n)
    nov = None
    if strategy == "coverage":
        pick, nov = coverage_pick(cand["emb"], cand["u"], labelled, min(n, cand["rows"].size), seed)
    else:
        available = np.bincount(cand["cls"].astype(np.int64), minlength=counts.size)
        pick = _spread(cand, class_quotas(counts, n, available), radius)
    pick = pick[np.lexsort((cand["cols"][pick], cand["rows"][pick]))]  # in reading order
    rows, cols = cand["rows"][pick], cand["cols"][pick]
    tr = source.grid.transform
    xs = tr.c + tr.a * (cols + 0.5) + tr.b * (rows + 0.5)
    ys = tr.f + tr.d * (cols + 0.5) + tr.e * (rows + 0.5)
    ids = run.info.class_ids[cand["cls"][pick].astype(np.int64)]
    names = {int(c["id"]): str(c["name"]) for c in run.info.class_table}
    pred_names = [names[int(i)] for i in ids]
    unc = cand["u"][pick].astype(np.float32)
    write_points(out, np.column_stack([xs, ys]), source.grid.crs, [
        ("predicted", "int", ids.tolist()), ("predicted_name", "str", pred_names),
        ("uncertainty", "real", [round(float(v), 6) for v in unc]), ("class", "int", [None] * len(pick)),
    ], layer=out.stem)
    if run.progress is not None:
        run.progress(1.0)
    return Suggestions(rows, cols, np.asarray(xs, float), np.asarray(ys, float), ids, pred_names, unc, out, valid,
                       _median(hist), radius, time.perf_counter() - t0, None if exclude is None else excluded,
                       strategy, None if nov is None else nov[pick].astype(np.float32), fallback)


def _collect(run: MapRun, job: SuggestJob, span: tuple[float, float]):
    """The candidates, class counts (K,), uncertainty histogram, excluded pixels of the region and
    the embeddings ``(m, D)`` of up to :data:`LABELLED_MAX` of those (None without embeddings)."""
    parts, counts, hist = [], np.zeros(len(run.info.class_table), np.int64), np.zeros(HIST_BINS, np.int64)
    excluded, lab_keys, lab_emb = 0, [], []
    for res in run.map(job, span=span):
        parts.append(res.value["cand"])
        counts += res.value["counts"]
        hist += res.value["hist"]
        excluded += res.value["excluded"]
        for keys, emb in res.value["labelled"]:
            lab_keys.append(keys)
            lab_emb.append(emb)
    run.check()
    run.require_pixels()
    labelled = None
    if lab_emb:
        keys = np.concatenate(lab_keys)
        labelled = np.concatenate(lab_emb)[_fewest(keys, LABELLED_MAX)]
    return _best_per_cell(_concat(parts), job.cell), counts, hist, excluded, labelled
