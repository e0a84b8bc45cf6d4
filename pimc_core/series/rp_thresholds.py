r"""Binarising recurrence plots: :math:`R_{ij} = [D_{ij} < \varepsilon]` with pyts's thresholds.

``threshold=<number>``, ``'distance'`` (``percentage`` % of each plot's largest distance) and
``'point'`` (each plot's ``percentage``-th percentile, computed as ``numpy.percentile`` does:
same order statistics, same ``_lerp``, same dtypes, so the binarised plots equal pyts's).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

from pimc_core.series.rp_distances import packed_pair_distances
from pimc_core.series.rp_params import Threshold
from pimc_core.series.rp_tensors import numpy_fast_path

__all__ = ["threshold_"]

_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


def _as_dtype_scalar(value: Any, dtype: torch.dtype) -> float:
    """``value`` rounded to ``dtype`` (as numpy casts a scalar), as a python float."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    try:
        with np.errstate(over="ignore"):
            return float(np.asarray(value).astype(np_dtype))
    except OverflowError:  # python int beyond float64
        return math.inf


def _percentile_plan(percentage: Any, n: int) -> tuple[int, int, Any, Any, np.dtype]:
    """Cached :func:`_percentile_plan_uncached` (keyed by value *and* type: 10 vs 10.0)."""
    return _percentile_plan_cached(percentage, type(percentage), n)


@functools.lru_cache(maxsize=64)
def _percentile_plan_cached(percentage: Any, _type: type, n: int) -> tuple[int, int, Any, Any, np.dtype]:
    return _percentile_plan_uncached(percentage, n)


def _percentile_plan_uncached(percentage: Any, n: int) -> tuple[int, int, Any, Any, np.dtype]:
    """numpy.percentile's linear-method bookkeeping for ``n`` values.

    Returns ``(prev, next, gamma, one_minus_gamma, gamma_dtype)`` computed with the very
    numpy operations of ``numpy.lib.function_base._quantile`` (same values and dtypes).
    """
    q = np.asanyarray(np.true_divide(percentage, 100))  # numpy.percentile
    virtual = np.asanyarray((n - 1) * q)  # _QuantileMethods['linear']
    prev = np.array(np.floor(virtual))  # _get_indexes
    nxt = np.array(prev + 1)
    above = virtual >= n - 1
    if above.any():
        prev[above] = -1
        nxt[above] = -1
    prev_i = prev.astype(np.intp)
    nxt_i = nxt.astype(np.intp)
    gamma = np.asanyarray(virtual - prev_i).reshape((1,))  # _get_gamma, reshaped as in _quantile
    one_minus = 1 - gamma  # as in _lerp
    return int(prev_i) % n, int(nxt_i) % n, gamma, one_minus, gamma.dtype


def _order_statistics(xc: torch.Tensor, m: int, tau: int, side: int,
                      ranks: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Order statistics ``ranks`` (0-based) of each series' flattened ``T' x T'`` matrix.

    The sorted flattened matrix is ``T'`` zeros (the diagonal) followed by every
    off-diagonal distance twice, so rank ``r >= T'`` is rank ``(r - T') // 2`` of the
    ``P = T'(T'-1)/2`` pair distances: half the data to search. On CPU the ranks are selected
    with ``numpy.partition`` (linear time per row; faster than a full sort and than
    ``torch.kthvalue`` on CPUs with and without AVX-512); on CUDA the rows are sorted.

    For ``m == 1`` and low ranks, fewer pairs suffice. With the series sorted,
    :math:`s_0 \le \dots \le s_{T-1}`, the pair distances are :math:`s_j - s_i` (:math:`i < j`,
    bit-identical to :math:`|x_a - x_b|`), and a pair of gap :math:`g = j - i > D` has inside
    its window at least :math:`D(D+3)/2` pairs of gap :math:`\le D`, none larger than it.
    Hence, if :math:`D(D+3)/2 \ge r + 1`, the :math:`r + 1` smallest distances are those of the
    pairs of gap :math:`\le D` (ties included): sorting those ~:math:`DT` values is exact.
    """
    b = xc.shape[0]
    zeros = [r < side for r in ranks]
    out = [torch.zeros(b, dtype=xc.dtype, device=xc.device) if z else None for z in zeros]
    if all(zeros):
        return out[0], out[1]
    need = (max(ranks) - side) // 2  # highest rank needed among the pair distances
    gap = 1
    while gap * (gap + 3) // 2 < need + 1:
        gap += 1
    n_near = gap * side - gap * (gap + 1) // 2
    if m == 1 and n_near < 0.75 * side * (side - 1) // 2:
        srt = _sort_rows(xc.clone())
        pairs = torch.empty((b, n_near), dtype=xc.dtype, device=xc.device)
        off = 0
        for g in range(1, gap + 1):
            torch.sub(srt[:, g:], srt[:, :-g], out=pairs[:, off:off + side - g])
            off += side - g
    else:
        pairs = packed_pair_distances(xc, m, tau, side)
    want = sorted({(r - side) // 2 for i, r in enumerate(ranks) if out[i] is None})
    if numpy_fast_path(pairs):
        # selection, not a sort: numpy's introselect puts the exact order statistics ``want``
        # in place in O(P) per row (2.7-3.7x faster than its full sort on a CPU without AVX-512)
        part = np.partition(pairs.numpy(), want, axis=1)
        picked = {k: torch.from_numpy(np.ascontiguousarray(part[:, k])) for k in want}
    else:
        srt_pairs = torch.sort(pairs, dim=1).values
        picked = {k: srt_pairs[:, k] for k in want}
    for i, r in enumerate(ranks):
        if out[i] is None:
            out[i] = picked[(r - side) // 2]
    return out[0], out[1]


def _sort_rows(a: torch.Tensor) -> torch.Tensor:
    """Sort each row of the 2-D tensor ``a`` (in place on CPU, via numpy); returns it sorted."""
    if numpy_fast_path(a):
        a.numpy().sort(axis=1)
        return a
    return torch.sort(a, dim=1).values


def _ceil_to_float32(thr64: torch.Tensor) -> torch.Tensor:
    """Smallest float32 >= ``thr64``: for float32 ``d``, ``d < thr64`` iff ``d < result``."""
    c = thr64.to(torch.float32)
    up = torch.nextafter(c, torch.full_like(c, math.inf))
    return torch.where(c.to(torch.float64) < thr64, up, c)


def threshold_(d: torch.Tensor, threshold: Threshold, percentage: Any, xc: torch.Tensor,
               m: int, tau: int) -> None:
    """Binarise ``d`` (``(B, T', T')``, compute dtype) in place: 1 where ``d < eps``, else 0.

    ``xc`` (``(B, T)``, compute dtype) are the series ``d`` was computed from ('point' sorts
    their pair distances rather than the full matrices).
    """
    if threshold is None:
        return
    cdt = d.dtype
    b, n = d.shape[0], d.shape[1] * d.shape[2]
    if threshold == "distance":
        mx = d.reshape(b, n).amax(dim=1)
        eps = mx * _as_dtype_scalar(percentage / 100, cdt)
        d.lt_(eps[:, None, None])
    elif threshold == "point":
        prev, nxt, gamma, one_minus, gdt = _percentile_plan(percentage, n)
        g = float(gamma[0])
        need_next = g != 0.0 and nxt != prev
        a, bb = _order_statistics(xc, m, tau, d.shape[1], (prev, nxt if need_next else prev))
        rdt = torch.promote_types(cdt, _TORCH_DTYPES[np.dtype(gdt).name])
        a_r = a.to(rdt)
        if need_next:
            diff = (bb - a).to(rdt)
            if g >= 0.5:
                eps = bb.to(rdt) - diff * float(one_minus[0])
            else:
                eps = a_r + diff * g
        else:
            eps = a_r  # numpy: a + (b - a) * gamma with b - a == 0 or gamma == 0
        if rdt != cdt:
            eps = _ceil_to_float32(eps) if cdt == torch.float32 else eps.to(cdt)
        d.lt_(eps[:, None, None])
    else:
        d.lt_(_as_dtype_scalar(threshold, cdt))

