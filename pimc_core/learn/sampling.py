"""Pixel samples for training: gap-filled index series and image patches of sampled pixels.

For every sampled pixel a :class:`PixelSamples` holds

* its gap-filled vegetation-index series ``(C, T)`` (:func:`pimc_core.series.pixel.index_series`),
  on the acquisition dates, or resampled onto a fixed date grid (:func:`grid_dates`) when the
  model needs the same ``T`` for stacks acquired on different dates;
* a ``k x k`` patch ``(B, k, k)`` centred on it, cut from a reference image: by default the
  cloud-free **median composite** of the stack (per band, the median of the *valid*
  observations, computed window by window, NaN where a pixel has none); ``seasonal:K``: K such
  composites, one per consecutive period of equal length between the stack's first and last
  date (:func:`seasonal_composite`, ``K x B`` channels named ``s1_<band> … sK_<band>``, so the
  patch shows how the neighbourhood changes over the season); or any raster on the same grid;
  at the raster borders the image is **reflect**-padded (``numpy.pad(mode="reflect")``,
  the border pixel is not repeated);
* its class id (0 = unlabelled) when labels are given, its row / column and valid count.

Recurrence plots are *not* stored: the model makes them per batch on the training device.

Sampling (:func:`sample_pixels`):

* **random**: ``n`` pixels drawn uniformly among the pixels with at least ``min_valid`` valid
  observations (pixels with fewer are excluded, never invented);
* **stratified**: with a label map (:func:`read_labels`, a class raster on the same grid or a
  vector file with a class field, rasterised onto the grid), up to ``per_class`` pixels of
  every class (all labelled pixels when ``per_class`` is None), again excluding few-valid ones.

Reading is windowed (``block`` x ``block`` windows plus a ``k // 2`` margin for the patches), so
memory is bounded by the window and the sample, never by the raster.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from rasterio.windows import Window

from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.io.grid import Grid
from pimc_core.io.labels import LabelMap
from pimc_core.io.timeseries import Observations, TimeSeries
from pimc_core.series.composites import (
    patches_at,
    reflect_pad,
    seasonal_band_names,
    seasonal_composite,
    stack_reference,
)
from pimc_core.series.indices import required_bands
from pimc_core.series.pixel import DEFAULT_INDICES, index_series

__all__ = ["DEFAULT_PATCH_SIZE", "PixelSamples", "sample_pixels"]

#: Default side of the image patches (9 x 9 pixels = 90 m at 10 m).
DEFAULT_PATCH_SIZE = 9


# ============================================================================ samples
@dataclass
class PixelSamples:
    """Sampled pixels of one or more stacks.

    Attributes:
        series: (N, C, T) float32 gap-filled index series (no NaN).
        patches: (N, B, k, k) float32 reference-image patches (NaN only where the reference has
            no valid value), or None when no patches were asked for.
        labels: (N,) int64 class ids, 0 = unlabelled.
        rows, cols: (N,) int64 pixel positions on the grid.
        n_valid: (N,) int64 valid observations of each pixel.
        source_id: (N,) int64 index into ``sources``.
        indices: the C index names. patch_bands: the B patch band names.
        dates: the T dates of the series of the first source (per-source dates in
            ``source_dates``).
        sources: the stacks the pixels come from.
        source_dates: the T dates of each source's series.
        reference: ``"median"``, ``"seasonal:K"`` or the path of the reference raster.
    """

    series: np.ndarray
    patches: np.ndarray | None
    labels: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    n_valid: np.ndarray
    indices: tuple[str, ...]
    patch_bands: tuple[str, ...] = ()
    dates: tuple[dt.date, ...] = ()
    source_id: np.ndarray | None = None
    sources: tuple[str, ...] = ()
    source_dates: tuple[tuple[dt.date, ...], ...] = ()
    reference: str = "median"

    def __post_init__(self) -> None:
        n = self.series.shape[0]
        if self.source_id is None:
            self.source_id = np.zeros(n, np.int64)
        for name in ("labels", "rows", "cols", "n_valid", "source_id"):
            a = getattr(self, name)
            if a.shape != (n,):
                raise ValueError(f"PixelSamples.{name} has shape {a.shape}; expected ({n},)")
        if self.patches is not None and self.patches.shape[0] != n:
            raise ValueError(f"PixelSamples.patches has {self.patches.shape[0]} rows; expected {n}")

    def __len__(self) -> int:
        return int(self.series.shape[0])

    @property
    def n_dates(self) -> int:
        return int(self.series.shape[2])

    @property
    def patch_size(self) -> int:
        return 0 if self.patches is None else int(self.patches.shape[-1])

    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> "PixelSamples":
        """The samples at ``idx`` (an index array, a boolean mask or a slice)."""
        return replace(
            self,
            series=self.series[idx],
            patches=None if self.patches is None else self.patches[idx],
            labels=self.labels[idx],
            rows=self.rows[idx],
            cols=self.cols[idx],
            n_valid=self.n_valid[idx],
            source_id=self.source_id[idx],
        )

    def class_counts(self) -> dict[int, int]:
        """Labelled pixels per class id (unlabelled pixels not counted)."""
        ids, counts = np.unique(self.labels[self.labels > 0], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}

    @classmethod
    def concat(cls, parts: Sequence["PixelSamples"]) -> "PixelSamples":
        """Join samples of several stacks (same indices, T, patch bands and size).

        Raises:
            ConfigError: the parts differ in indices, number of dates or patches.
        """
        if not parts:
            raise ConfigError("no samples to join")
        first = parts[0]
        for p in parts[1:]:
            if p.indices != first.indices:
                raise ConfigError(f"samples with indices {p.indices} and {first.indices} cannot be joined")
            if p.n_dates != first.n_dates:
                raise ConfigError(
                    f"{p.sources[0] if p.sources else 'samples'}: {p.n_dates} dates, but "
                    f"{first.sources[0] if first.sources else 'the first stack'} has {first.n_dates}; "
                    "use a date grid (dates: grid) so every stack has the same T"
                )
            if p.patch_bands != first.patch_bands or p.patch_size != first.patch_size:
                raise ConfigError("samples with different patch bands or sizes cannot be joined")
        offsets = np.cumsum([0] + [len(p.sources) or 1 for p in parts[:-1]])
        patches = None if first.patches is None else np.concatenate([p.patches for p in parts])
        return cls(
            series=np.concatenate([p.series for p in parts]),
            patches=patches,
            labels=np.concatenate([p.labels for p in parts]),
            rows=np.concatenate([p.rows for p in parts]),
            cols=np.concatenate([p.cols for p in parts]),
            n_valid=np.concatenate([p.n_valid for p in parts]),
            source_id=np.concatenate([p.source_id + o for p, o in zip(parts, offsets)]),
            indices=first.indices,
            patch_bands=first.patch_bands,
            dates=first.dates,
            sources=tuple(s for p in parts for s in (p.sources or ("",))),
            source_dates=tuple(d for p in parts for d in (p.source_dates or (p.dates,))),
            reference=first.reference,
        )


# ============================================================================ dates


# ============================================================================ classes / labels


# ============================================================================ composite / patches


class _Reference:
    """Where patches are cut from: composites of the stack (``median``, ``seasonal:K``), or a
    raster on the grid. ``bands`` are the patch channels, ``source_bands`` the stack bands read
    for them."""

    def __init__(self, ts: TimeSeries, reference: str | os.PathLike | None, patch_bands: Sequence[str] | None):
        self.path: Path | None = None
        self.groups = stack_reference(reference)
        if self.groups:
            self.source_bands = tuple(patch_bands or ts.band_names)
            ts.require_bands(self.source_bands)
            self.bands = seasonal_band_names(self.source_bands, self.groups)
            self.name = "median" if self.groups == 1 else f"seasonal:{self.groups}"
            return
        import rasterio
        from rasterio.errors import RasterioError

        p = Path(reference)
        if not p.exists():
            raise InputError(f"{p}: reference raster not found")
        try:
            with rasterio.open(p) as ds:
                other = Grid(ds.crs if ds.crs else None, ds.transform, ds.width, ds.height)
                descr = [((d or "").strip().lower() or f"band{i + 1}") for i, d in enumerate(ds.descriptions)]
                self.nodata = ds.nodata
        except RasterioError as e:
            raise InputError(f"{p}: not a readable raster ({str(e).splitlines()[0]})") from None
        diff = ts.grid.difference(other)
        if diff:
            raise InputError(f"{p}: reference raster has {diff}; it must be on the grid of the series")
        if patch_bands:
            missing = [b for b in patch_bands if b not in descr]
            if missing:
                raise BandError(f"{p}: reference raster lacks band(s) {', '.join(missing)} (has {', '.join(descr)})")
            self.band_idx = [descr.index(b) + 1 for b in patch_bands]
            self.bands = tuple(patch_bands)
        else:
            self.band_idx = list(range(1, len(descr) + 1))
            self.bands = tuple(descr)
        self.path = p
        self.name = str(p)

    def read(self, obs_big: Observations | None, win: Window) -> np.ndarray:
        if self.path is None:
            bi = [obs_big.band_names.index(b) for b in self.source_bands]
            return seasonal_composite(obs_big.reflectance[:, bi], obs_big.valid, obs_big.dates, self.groups)
        import rasterio

        with rasterio.open(self.path) as ds:
            data = ds.read(self.band_idx, window=win).astype(np.float32)
        if self.nodata is not None and not math.isnan(self.nodata):
            data[data == self.nodata] = np.nan
        return data


# ============================================================================ sampling
def _window_of(block: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (r // block) * 1_000_000 + (c // block)


def sample_pixels(
    ts: TimeSeries,
    n: int | None = None,
    *,
    labels: LabelMap | np.ndarray | None = None,
    per_class: int | None = None,
    indices: Sequence[str] = DEFAULT_INDICES,
    min_valid: int = 3,
    target_dates: Sequence[dt.date] | None = None,
    patch_size: int | None = DEFAULT_PATCH_SIZE,
    patch_bands: Sequence[str] | None = None,
    reference: str | os.PathLike | None = "median",
    mask: np.ndarray | None = None,
    seed: int = 0,
    block: int = 256,
    progress: bool | Callable[[float], None] = False,
) -> PixelSamples:
    """Sample pixels of a stack with their index series and reference-image patches.

    Args:
        ts: the time series.
        n: random mode: number of pixels to draw uniformly among the pixels with at least
            ``min_valid`` valid observations (None: all of them).
        labels: stratified mode: a :class:`LabelMap` (or an (H, W) array of class ids, 0 =
            unlabelled); only labelled pixels are sampled.
        per_class: stratified mode: at most this many pixels per class (None: all).
        indices: index channels of the series.
        min_valid: pixels with fewer valid observations are excluded.
        target_dates: resample the series onto these dates (a model's date grid); None keeps the
            acquisition dates.
        patch_size: side k of the patches; 0 / None for no patches.
        patch_bands: bands of the patches (default: every band of the stack, or of the
            reference raster).
        reference: ``"median"`` (the stack's cloud-free median composite, default),
            ``"seasonal:K"`` (K composites of consecutive periods, :func:`seasonal_composite`) or the path
            of a raster on the same grid.
        mask: optional (H, W) bool: random mode draws only where True (e.g. to keep test
            fields out of pretraining).
        seed: the random draw (the same seed gives the same sample).
        block: window side for reading.
        progress: show a tqdm bar (True) or call ``progress(fraction)``.

    Returns:
        :class:`PixelSamples`, pixels in random order (stratified: classes interleaved).

    Raises:
        BandError: the stack lacks a band the indices or patches need.
        ConfigError: bad sizes. InputError: no pixel with enough valid observations.
    """
    indices = tuple(str(i).lower() for i in indices)
    H, W = ts.grid.height, ts.grid.width
    k = int(patch_size or 0)
    if k < 0 or k > 255:
        raise ConfigError(f"patch_size must be between 0 and 255; got {patch_size}")
    if n is not None and (isinstance(n, bool) or int(n) < 1):
        raise ConfigError(f"number of samples must be >= 1; got {n}")
    idx_bands = tuple(b for b in ts.band_names if b in required_bands(indices))
    ts.require_bands(required_bands(indices))
    ref = _Reference(ts, reference, patch_bands) if k else None
    read_bands = tuple(b for b in ts.band_names if b in set(idx_bands) | set(ref.source_bands if ref and ref.path is None else ()))
    rng = np.random.default_rng([int(seed), 0x5A3])

    # ---- candidates (over-sampled: some will turn out to have too few valid observations)
    lab_arr = labels.array if isinstance(labels, LabelMap) else labels
    if lab_arr is not None:
        lab_arr = np.asarray(lab_arr)
        if lab_arr.shape != (H, W):
            raise InputError(f"label array has shape {lab_arr.shape}; the series is {H}x{W}")
        flat = lab_arr.ravel()
        cand_parts, quota = [], {}
        for cid in np.unique(flat[flat > 0]):
            where = np.flatnonzero(flat == cid)
            rng.shuffle(where)
            if per_class is not None:
                quota[int(cid)] = int(per_class)
                where = where[: int(math.ceil(per_class * 1.5)) + 32]
            cand_parts.append(where)
        if not cand_parts:
            raise InputError(f"{getattr(labels, 'source', '') or 'labels'}: no labelled pixel (all 0)")
        cand = np.concatenate(cand_parts)
    else:
        allowed = None if mask is None else np.flatnonzero(np.asarray(mask, bool).ravel())
        pool = H * W if allowed is None else allowed.size
        if pool == 0:
            raise InputError("sampling mask excludes every pixel")
        want = pool if n is None else min(pool, int(math.ceil(int(n) * 1.3)) + 64)
        pick = rng.choice(pool, size=want, replace=False) if want < pool else rng.permutation(pool)
        cand = pick if allowed is None else allowed[pick]
    cr, cc = cand // W, cand % W

    # ---- windowed read of the windows that hold candidates
    wid = _window_of(block, cr, cc)
    order = np.argsort(wid, kind="stable")
    uniq, starts = np.unique(wid[order], return_index=True)
    bounds = list(starts) + [order.size]
    kept_pos: list[np.ndarray] = []
    ser_parts: list[np.ndarray] = []
    patch_parts: list[np.ndarray] = []
    nv_parts: list[np.ndarray] = []
    out_dates: tuple[dt.date, ...] = tuple(target_dates) if target_dates is not None else ts.dates
    report = _progress(progress, len(uniq), "sampling")
    before, after = k // 2, k - 1 - k // 2
    for wi in range(len(uniq)):
        sel = order[bounds[wi]:bounds[wi + 1]]
        br, bc = int(cr[sel[0]] // block) * block, int(cc[sel[0]] // block) * block
        win = Window(bc, br, min(block, W - bc), min(block, H - br))
        h, w = int(win.height), int(win.width)
        if k:
            big = Window(max(0, bc - before), max(0, br - before), 0, 0)
            c1, r1 = min(W, bc + w + after), min(H, br + h + after)
            big = Window(int(big.col_off), int(big.row_off), c1 - int(big.col_off), r1 - int(big.row_off))
        else:
            big = win
        obs_big = ts.read(big, bands=read_bands)
        ro, co = br - int(big.row_off), bc - int(big.col_off)
        obs = Observations(obs_big.reflectance[:, :, ro:ro + h, co:co + w], obs_big.valid[:, ro:ro + h, co:co + w],
                           obs_big.band_names, obs_big.dates, win)
        idx_pos = [obs.band_names.index(b) for b in idx_bands]
        obs_idx = Observations(obs.reflectance[:, idx_pos], obs.valid, idx_bands, obs.dates, win)
        ser = index_series(obs_idx, indices, min_valid=min_valid, target_dates=target_dates)
        lr, lc = cr[sel] - br, cc[sel] - bc
        ok = ser.ok[lr, lc]
        sel, lr, lc = sel[ok], lr[ok], lc[ok]
        if sel.size:
            kept_pos.append(sel)
            ser_parts.append(np.moveaxis(ser.filled[:, :, lr, lc], -1, 0).astype(np.float32))
            nv_parts.append(ser.n_valid[lr, lc].astype(np.int64))
            if k:
                img = ref.read(obs_big, big)
                img = reflect_pad(
                    img, before - (br - int(big.row_off)), (br + h + after) - (int(big.row_off) + int(big.height)),
                    before - (bc - int(big.col_off)), (bc + w + after) - (int(big.col_off) + int(big.width)),
                )
                patch_parts.append(patches_at(img, lr, lc, k))
        del obs_big, obs, obs_idx, ser
        report(wi + 1)
    report(None)
    if not kept_pos:
        raise InputError(
            f"{ts.source}: no sampled pixel has {min_valid} or more valid observations "
            f"(lower min_valid, or check the quality mask)"
        )
    pos = np.concatenate(kept_pos)
    series = np.concatenate(ser_parts)
    nvalid = np.concatenate(nv_parts)
    patches = np.concatenate(patch_parts) if k else None

    # ---- back to the random order of the candidates, then trim to the quotas
    back = np.argsort(pos, kind="stable")
    pos, series, nvalid = pos[back], series[back], nvalid[back]
    patches = None if patches is None else patches[back]
    rows, cols = cr[pos], cc[pos]
    labs = lab_arr[rows, cols].astype(np.int64) if lab_arr is not None else np.zeros(pos.size, np.int64)
    if lab_arr is not None:
        keep = np.zeros(pos.size, bool)
        for cid in np.unique(labs):
            where = np.flatnonzero(labs == cid)
            q = quota.get(int(cid))
            keep[where if q is None else where[:q]] = True
        # interleave classes: a random permutation of the kept pixels
        keep_idx = np.flatnonzero(keep)
        keep_idx = keep_idx[rng.permutation(keep_idx.size)]
    else:
        keep_idx = np.arange(pos.size) if n is None else np.arange(min(int(n), pos.size))
    out = PixelSamples(
        series=np.ascontiguousarray(series[keep_idx]),
        patches=None if patches is None else np.ascontiguousarray(patches[keep_idx]),
        labels=labs[keep_idx],
        rows=rows[keep_idx].astype(np.int64),
        cols=cols[keep_idx].astype(np.int64),
        n_valid=nvalid[keep_idx],
        indices=indices,
        patch_bands=ref.bands if ref else (),
        dates=out_dates,
        sources=(str(ts.source),),
        source_dates=(out_dates,),
        reference=ref.name if ref else "",
    )
    return out


def _progress(progress: bool | Callable[[float], None], total: int, desc: str) -> Callable[[int | None], None]:
    if callable(progress):
        return lambda i: progress(1.0 if i is None else i / max(total, 1))
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="window", leave=False)

        def upd(i: int | None) -> None:
            if i is None:
                bar.close()
            else:
                bar.update(i - bar.n)

        return upd
    return lambda i: None
