"""Drawing labelled pixels from PASTIS patches and resampling their series onto one date grid
(:meth:`pimc_core.datasets.pastis.PastisDataset.sample_pixels`).

T and the dates differ from patch to patch, so each pixel's 10-band series is interpolated in
time onto common target dates (:func:`pimc_core.series.gapfill.resample_to_dates`).
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pimc_core.datasets.pastis_format import BACKGROUND, BAND_NAMES, N_BANDS, REFLECTANCE_SCALE, VOID
from pimc_core.datasets.patches import extract_patches
from pimc_core.errors import ConfigError, InputError
from pimc_core.series.gapfill import resample_to_dates

if TYPE_CHECKING:
    from pimc_core.datasets.pastis import PastisDataset

__all__ = ["sample_pixels"]


def sample_pixels(
    self: PastisDataset,
    n: int | None = None,
    *,
    seed: int = 0,
    exclude_classes: Iterable[int] = (BACKGROUND, VOID),
    per_class: int | None = None,
    target_dates: Sequence[_dt.date] | None = None,
    step_days: int = 10,
    patch_size: int | None = None,
    min_valid: int = 3,
) -> dict[str, Any]:
    """Draw labelled pixels and resample their series onto one common date grid.

    Pixels are drawn without replacement, uniformly over all pixels of the selected
    patches whose class is not excluded (``n`` in total), or class-balanced (up to
    ``per_class`` of each class). The draw depends only on ``seed`` and the data.

    Each pixel's 10-band series (on its patch's own T dates) is interpolated linearly in
    time onto ``target_dates`` with :func:`pimc_core.series.gapfill.resample_to_dates` (dates
    outside the patch's acquisitions take the nearest observation; nothing is
    extrapolated). Observations whose 10 bands are all 0 are treated as no-data.

    Args:
        n: Number of pixels in total (all eligible pixels if fewer). Give ``n`` or
            ``per_class``, not both.
        seed: Random seed.
        exclude_classes: Class ids never sampled (default background 0 and void 19).
        per_class: Class-balanced draw: up to this many pixels of each present class.
        target_dates: Output dates (strictly increasing); default :meth:`default_dates`
            with ``step_days``.
        step_days: Spacing of the default grid.
        patch_size: Also return the ``k × k`` image patch around each pixel (from
            :meth:`reference_image`, reflect-padded at borders).
        min_valid: Pixels with fewer valid observations are dropped.

    Returns:
        Dict with ``series`` ``(N, T_grid, 10)`` float32 reflectance (bands as
        ``band_names``), ``labels`` ``(N,)`` int64, ``patch_ids`` ``(N,)`` (int64 for
        numeric ids), ``rows`` / ``cols`` ``(N,)`` int64, ``dates`` (the ``T_grid`` dates),
        ``band_names`` (:data:`BAND_NAMES`) and, with ``patch_size``, ``patches``
        ``(N, 10, k, k)`` float32. Pixels are ordered by patch, then row-major.

    Raises:
        ConfigError: Both or neither of ``n`` / ``per_class``, non-positive counts.
        InputError: No eligible pixel; malformed files (see :meth:`load_patch`).
    """
    if (n is None) == (per_class is None):
        raise ConfigError("sample_pixels: give either n (total pixels) or per_class, not both")
    for name, val in (("n", n), ("per_class", per_class), ("patch_size", patch_size)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1):
            raise ConfigError(f"sample_pixels: {name} must be an integer >= 1; got {val!r}")
    excluded = {int(c) for c in exclude_classes}
    if not self._patches:
        raise InputError(f"{self.root}: no patch in folds {', '.join(map(str, self.folds))}")
    if target_dates is None:
        target = self.default_dates(step_days)
    else:
        target = list(target_dates)
        if not target:
            raise InputError("sample_pixels: target_dates is empty")
    rng = np.random.default_rng(seed)

    patches = list(self._patches.values())
    shapes = [self._s2(p).shape[2:] for p in patches]
    labels = [self._labels_for(p, s).reshape(-1) for p, s in zip(patches, shapes)]
    n_cls = max(int(y.max()) + 1 if y.size else 0 for y in labels)
    hist = np.stack([np.bincount(y, minlength=n_cls) for y in labels])  # (P, n_cls)
    for c in excluded:
        if 0 <= c < n_cls:
            hist[:, c] = 0
    if hist.sum() == 0:
        raise InputError(
            f"{self.root}: no pixel to sample in folds {self.folds} outside classes {sorted(excluded)}"
        )

    chosen: list[list[np.ndarray]] = [[] for _ in patches]  # flat pixel indices per patch

    def draw(counts: np.ndarray, k: int, cls: int | None) -> None:
        total = int(counts.sum())
        k = min(k, total)
        if k == 0:
            return
        ranks = np.sort(rng.choice(total, size=k, replace=False))
        cum = np.cumsum(counts)
        which = np.searchsorted(cum, ranks, side="right")
        local = ranks - (cum - counts)[which]
        for pi in np.unique(which):
            y = labels[pi]
            mask = ~np.isin(y, sorted(excluded)) if cls is None else (y == cls)
            chosen[pi].append(np.flatnonzero(mask)[local[which == pi]])

    if per_class is None:
        draw(hist.sum(axis=1), int(n), None)
    else:
        for cls in np.flatnonzero(hist.sum(axis=0)):
            draw(hist[:, cls], int(per_class), int(cls))

    numeric = all(isinstance(p.id, int) for p in patches)
    out_series, out_lab, out_pid, out_r, out_c, out_patch = [], [], [], [], [], []
    for pi, p in enumerate(patches):
        if not chosen[pi]:
            continue
        flat = np.sort(np.concatenate(chosen[pi]))
        H, W = shapes[pi]
        rows, cols = np.divmod(flat, W)
        arr = self._s2(p)
        vals = np.asarray(arr[:, :, rows, cols], dtype=np.float32)  # (T, 10, m)
        nodata = np.all(vals == 0, axis=1, keepdims=True)  # (T, 1, m)
        vals = np.where(nodata, np.float32(np.nan), vals * np.float32(REFLECTANCE_SCALE))
        dates, vals = _chronological(list(p.dates), vals)
        res = resample_to_dates(vals.transpose(2, 1, 0), dates, target, min_valid=min_valid)  # (m, 10, Tg)
        ok = res.ok.all(axis=1)
        out_series.append(res.values[ok].transpose(0, 2, 1))
        out_lab.append(labels[pi][flat[ok]].astype(np.int64))
        out_pid.append(np.full(int(ok.sum()), p.id, dtype=np.int64 if numeric else object))
        out_r.append(rows[ok])
        out_c.append(cols[ok])
        if patch_size is not None:
            out_patch.append(extract_patches(self.reference_image(p.id), rows[ok], cols[ok], int(patch_size)))

    def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(shape, dtype=dtype)

    result: dict[str, Any] = {
        "series": np.ascontiguousarray(cat(out_series, (0, len(target), N_BANDS), np.float32), dtype=np.float32),
        "labels": cat(out_lab, (0,), np.int64).astype(np.int64),
        "patch_ids": cat(out_pid, (0,), np.int64 if numeric else object),
        "rows": cat(out_r, (0,), np.int64).astype(np.int64),
        "cols": cat(out_c, (0,), np.int64).astype(np.int64),
        "dates": target,
        "band_names": BAND_NAMES,
    }
    if patch_size is not None:
        result["patches"] = cat(out_patch, (0, N_BANDS, int(patch_size), int(patch_size)), np.float32)
    return result


def _chronological(dates: list[_dt.date], vals: np.ndarray) -> tuple[list[_dt.date], np.ndarray]:
    """Sort time steps (axis 0) by date and average observations sharing a date (NaN-aware)."""
    order = sorted(range(len(dates)), key=lambda i: dates[i])
    if order != list(range(len(dates))):
        dates = [dates[i] for i in order]
        vals = vals[order]
    uniq = sorted(set(dates))
    if len(uniq) == len(dates):
        return dates, vals
    merged = np.empty((len(uniq),) + vals.shape[1:], dtype=vals.dtype)
    pos = {d: i for i, d in enumerate(uniq)}
    groups: dict[int, list[int]] = {}
    for t, d in enumerate(dates):
        groups.setdefault(pos[d], []).append(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups stay NaN
        for u, ts in groups.items():
            merged[u] = np.nanmean(vals[ts], axis=0) if len(ts) > 1 else vals[ts[0]]
    return uniq, merged
