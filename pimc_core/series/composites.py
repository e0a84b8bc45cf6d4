"""Reference images and patches around pixels.

The image-patch encoder sees a ``k x k`` patch ``(B, k, k)`` centred on each pixel, cut from a
reference image of the stack:

* ``median`` (default): the cloud-free median composite, per band the median of the *valid*
  observations (:func:`composite_of`, :func:`median_composite`, NaN where a pixel has none);
* ``seasonal:K``: K such composites, one per consecutive period of equal length between the
  stack's first and last date (:func:`seasonal_composite`; ``K x B`` channels named
  ``s1_<band> … sK_<band>``, :func:`seasonal_band_names`);
* or any raster on the same grid.

At the raster's border patches are **reflect**-padded (``numpy.pad(mode="reflect")``, the
border pixel is not repeated); map inference hands NaN-padded patches, which
:func:`reflect_fill_patches` turns into the same reflection.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Sequence

import numpy as np
from rasterio.windows import Window

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.timeseries import TimeSeries

__all__ = [
    "composite_of",
    "median_composite",
    "patches_at",
    "reflect_fill_patches",
    "reflect_pad",
    "season_groups",
    "seasonal_band_names",
    "seasonal_composite",
    "seasonal_source_bands",
    "stack_reference",
]


def composite_of(reflectance: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-band median of the valid observations: (T, B, h, w) → (B, h, w) float32.

    Invalid observations must be NaN in ``reflectance`` (as :meth:`TimeSeries.read` gives them);
    pixels without any valid observation are NaN. This is also what map inference uses by
    default for the patches (``PixelModel.patch_composite``).
    """
    refl = np.asarray(reflectance, np.float32)
    if valid is not None:
        refl = np.where(np.asarray(valid)[:, None], refl, np.float32(np.nan))
    if refl.shape[0] == 0:
        return np.full(refl.shape[1:], np.nan, np.float32)
    # numpy.nanmedian's values (the middle one, or the float32 mean of the middle two), ~30x
    # faster: one sort along time (NaN sorts last) and the valid count per pixel
    srt = np.sort(np.moveaxis(refl, 0, -1), axis=-1)
    n = np.count_nonzero(~np.isnan(srt), axis=-1)
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
    hi = np.take_along_axis(srt, (n // 2)[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore"):
        mid = np.where(n % 2 == 1, lo, (lo + hi) / np.float32(2))
    return np.where(n > 0, mid, np.float32(np.nan)).astype(np.float32)


def stack_reference(reference: str | os.PathLike | None) -> int:
    """Composites a patch reference takes from the stack itself: ``median`` (or None) → 1,
    ``seasonal:K`` → K, anything else (a raster path) → 0.

    Raises:
        ConfigError: ``seasonal:`` without a whole number K between 1 and 12.
    """
    if reference is None or str(reference) == "median":
        return 1
    text = str(reference)
    if text.startswith("seasonal:"):
        k = text.split(":", 1)[1]
        if not k.isdigit() or not 1 <= int(k) <= 12:
            raise ConfigError(f"reference {text!r}: expected seasonal:K with K a whole number from 1 to 12")
        return int(k)
    return 0


def season_groups(dates: Sequence[dt.date], k: int) -> np.ndarray:
    """Period of each date for ``seasonal:K`` composites: (T,) int in ``0 .. k-1``.

    The span from the first to the last date is cut into ``k`` periods of equal length; a date
    belongs to the period it falls in (the last date to the last period). A stack of one year
    and ``k = 4`` gives its quarters, whatever the dates' spacing.
    """
    if k < 1:
        raise ConfigError(f"seasonal composites: k must be >= 1; got {k}")
    days = np.array([d.toordinal() for d in dates], dtype=np.float64)
    if days.size == 0:
        raise InputError("seasonal composites of a stack without dates")
    span = days.max() - days.min()
    if span <= 0:
        return np.zeros(days.size, dtype=np.int64)
    return np.minimum((k * (days - days.min()) / span).astype(np.int64), k - 1)


def seasonal_composite(reflectance: np.ndarray, valid: np.ndarray | None, dates: Sequence[dt.date],
                       k: int) -> np.ndarray:
    """``k`` median composites of consecutive periods: (T, B, h, w) → (k * B, h, w) float32.

    Channel ``g * B + b`` is the median of band ``b`` over the valid observations of period
    ``g`` (:func:`season_groups`); NaN where a pixel has no valid observation in that period.
    ``k = 1`` is :func:`composite_of`.
    """
    refl = np.asarray(reflectance)
    if refl.shape[0] != len(dates):
        raise ConfigError(f"seasonal composites: {refl.shape[0]} observations but {len(dates)} dates")
    if k == 1:
        return composite_of(refl, valid)
    groups = season_groups(dates, k)
    b, h, w = refl.shape[1:]
    out = np.full((k * b, h, w), np.nan, np.float32)
    for g in range(k):
        sel = np.flatnonzero(groups == g)
        if sel.size:
            out[g * b:(g + 1) * b] = composite_of(refl[sel], None if valid is None else np.asarray(valid)[sel])
    return out


def seasonal_band_names(bands: Sequence[str], k: int) -> tuple[str, ...]:
    """Channel names of :func:`seasonal_composite`: the bands for ``k = 1``, else ``s1_<band>`` …"""
    if k == 1:
        return tuple(bands)
    return tuple(f"s{g + 1}_{b}" for g in range(k) for b in bands)


def seasonal_source_bands(names: Sequence[str], k: int) -> tuple[str, ...]:
    """The stack bands behind :func:`seasonal_band_names` (inverse for the first period)."""
    if k == 1:
        return tuple(names)
    if len(names) % k:
        raise ConfigError(f"{len(names)} patch channels cannot be {k} seasonal composites")
    first = names[: len(names) // k]
    if not all(n.startswith("s1_") for n in first):
        raise ConfigError(f"patch channels {', '.join(first)} are not named s1_<band> (seasonal:{k} composites)")
    return tuple(n[3:] for n in first)


def median_composite(ts: TimeSeries, bands: Sequence[str] | None = None, *, block: int = 256,
                     window: Window | None = None) -> np.ndarray:
    """Cloud-free median composite of (a window of) a stack, computed window by window.

    Returns:
        (B, h, w) float32 reflectance, NaN where a pixel has no valid observation.
    """
    bands = tuple(bands or ts.band_names)
    ts.require_bands(bands)
    win = window or ts.grid.full_window()
    c0, r0, w, h = int(win.col_off), int(win.row_off), int(win.width), int(win.height)
    out = np.full((len(bands), h, w), np.nan, np.float32)
    for r in range(0, h, block):
        for c in range(0, w, block):
            sub = Window(c0 + c, r0 + r, min(block, w - c), min(block, h - r))
            obs = ts.read(sub, bands=bands)
            out[:, r:r + int(sub.height), c:c + int(sub.width)] = composite_of(obs.reflectance, obs.valid)
    return out


def reflect_pad(img: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect-pad the last two axes; falls back to 'symmetric' where a side is too short."""
    if not (top or bottom or left or right):
        return img
    h, w = img.shape[-2:]
    mode = "reflect" if (max(top, bottom) < h and max(left, right) < w) else "symmetric"
    if mode == "symmetric" and (max(top, bottom) > h or max(left, right) > w):
        mode = "edge"
    pad = [(0, 0)] * (img.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(img, pad, mode=mode)


def reflect_fill_patches(patches: np.ndarray) -> np.ndarray:
    """Replace all-NaN border rows / columns of patches by reflection (in place; returned).

    Map inference hands patches NaN-padded outside the raster; training patches are reflect-
    padded there. A row (column) of a patch that is NaN in every band and column, at the top or
    bottom (left or right) edge, is taken to lie outside the raster and becomes the mirror
    image of the row inside, exactly as :func:`numpy.pad` ``mode="reflect"`` does.
    """
    if patches is None or patches.size == 0:
        return patches
    k_r, k_c = patches.shape[-2:]
    nan = np.isnan(patches).all(axis=1)  # (N, k, k): all bands NaN
    rows_bad = nan.all(axis=2)  # (N, k)
    cols_bad = nan.all(axis=1)  # (N, k)
    if not (rows_bad[:, 0].any() or rows_bad[:, -1].any() or cols_bad[:, 0].any() or cols_bad[:, -1].any()):
        return patches
    for n in np.flatnonzero(rows_bad[:, 0] | rows_bad[:, -1] | cols_bad[:, 0] | cols_bad[:, -1]):
        p = patches[n]
        top = _edge_run(rows_bad[n])
        bottom = _edge_run(rows_bad[n][::-1])
        left = _edge_run(cols_bad[n])
        right = _edge_run(cols_bad[n][::-1])
        if top + bottom >= k_r or left + right >= k_c:
            continue
        inner = p[:, top:k_r - bottom, left:k_c - right]
        patches[n] = reflect_pad(inner, top, bottom, left, right)
    return patches


def _edge_run(flags: np.ndarray) -> int:
    n = 0
    for f in flags:
        if not f:
            break
        n += 1
    return n


def patches_at(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int, dtype: Any = np.float32) -> np.ndarray:
    """(B, H', W') padded image → (N, B, k, k) patches whose top-left corners are (rows, cols).

    The one patch cutter of PIMC (training samples, map windows, dataset loaders): a strided
    view of the image, copied once for the N patches. ``dtype=None`` keeps the image's type.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    view = sliding_window_view(img, (k, k), axis=(1, 2))  # (B, H'-k+1, W'-k+1, k, k), no copy
    return np.ascontiguousarray(np.moveaxis(view[:, rows, cols], 0, 1), dtype=dtype)
