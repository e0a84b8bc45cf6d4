r"""Recurrence plots of (batches of) time series, in torch, with the semantics of pyts.

This module reimplements :class:`pyts.image.RecurrencePlot` (pyts 0.13.0) so that it runs
batched on CPU or CUDA, on numpy arrays or torch tensors, with bounded memory. pyts is only
used as the reference in the tests; it is never called here.

Maths (identical to pyts). For a series :math:`x = (x_0, \ldots, x_{T-1})`, an embedding
dimension :math:`m` and a time delay :math:`\tau`, the :math:`T' = T - (m - 1)\tau`
trajectories are

.. math::

    \vec{x}_i = (x_i, x_{i+\tau}, \ldots, x_{i+(m-1)\tau}), \qquad 0 \le i < T',

and the (unthresholded) recurrence plot is the :math:`T' \times T'` distance matrix

.. math::

    D_{ij} = \lVert \vec{x}_i - \vec{x}_j \rVert_2
           = \sqrt{\textstyle\sum_{k=0}^{m-1} (x_{i+k\tau} - x_{j+k\tau})^2}
    \quad(\text{for } m = 1:\ D_{ij} = |x_i - x_j|).

With a threshold :math:`\varepsilon` the plot is binarised with a *strict* comparison,
:math:`R_{ij} = 1` if :math:`D_{ij} < \varepsilon` else :math:`0`, where

* ``threshold=None``: no binarisation, :math:`R = D`;
* ``threshold=<number> > 0``: :math:`\varepsilon` is that number;
* ``threshold='point'``: :math:`\varepsilon` is, per series, the ``percentage``-th percentile of
  the :math:`T'^2` entries of :math:`D` (``numpy.percentile``'s default linear interpolation
  between the order statistics :math:`\lfloor v \rfloor` and :math:`\lfloor v \rfloor + 1`,
  :math:`v = (T'^2 - 1)\,p/100`);
* ``threshold='distance'``: :math:`\varepsilon = p/100 \cdot \max_{ij} D_{ij}`, per series.

A float ``dimension`` or ``time_delay`` :math:`f \in (0, 1)` means :math:`\lceil f T \rceil`.

Numerics. Computations run in float64 when the input is float64 (or an integer type) and in
float32 otherwise; the result is always float32. Each step mirrors pyts/numpy's arithmetic
(the order of the sum over the embedding dimension follows numpy's pairwise summation, the
percentile follows numpy's ``_lerp``, comparisons are made in the dtype numpy would promote
to, square roots are correctly rounded), so thresholded plots are identical to pyts's and
unthresholded ones are pyts's values rounded to float32 (checked bit for bit in the tests).

Implementation. Series are processed in chunks sized to a core's L2 cache (temporaries stay
small whatever the batch). The output is allocated once per call, or not at all: ``out=``
takes a preallocated buffer, reused across batches when plots are streamed batch by batch to
a consumer (the intended use: a raster is never turned into plots all at once). On CPU two
steps go through numpy on the same memory: ``sqrt`` (torch's AVX-512 ``sqrt`` is not
correctly rounded) and the per-series order statistics behind ``'point'`` (``numpy.partition``,
a linear-time selection), and chunks are spread over ``torch.get_num_threads()`` worker
threads running single-threaded kernels (see :func:`_run_chunks` and the comment above it:
robust when other processes load the CPU, where per-kernel OpenMP fork/joins collapse; no
global torch setting is ever changed). On CUDA everything is torch.

Deliberate differences from pyts (all for the safer): booleans are rejected as
``dimension``/``time_delay``/``threshold``/``percentage``; a NaN ``threshold`` is rejected
(pyts silently returns all zeros); float16/bfloat16 inputs are computed in float32 (pyts would
compute in float16); unsigned integers are not wrapped around; an empty batch (zero series)
returns an empty result instead of failing. No autograd: results never require grad.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping, Union

import numpy as np
import torch
import torch.nn.functional as F

from pimc_core.errors import ConfigError, InputError

__all__ = ["RecurrencePlotConfig", "recurrence_plot", "stack_recurrence_plots", "trajectory_params"]

ArrayLike = Union[np.ndarray, torch.Tensor]
Threshold = Union[None, str, int, float]

_INT_TYPES = (int, np.integer)
_REAL_TYPES = (int, np.integer, float, np.floating)
_BOOL_TYPES = (bool, np.bool_)

def _l2_cache_bytes(default: int = 1 << 20) -> int:
    """Size of one core's L2 cache (Linux sysfs), else ``default``; clamped to [256 KiB, 4 MiB]."""
    try:
        base = "/sys/devices/system/cpu/cpu0/cache"
        for entry in sorted(os.listdir(base)):
            d = os.path.join(base, entry)
            with open(os.path.join(d, "level")) as f:
                level = f.read().strip()
            with open(os.path.join(d, "type")) as f:
                kind = f.read().strip()
            if level == "2" and kind in ("Unified", "Data"):
                with open(os.path.join(d, "size")) as f:
                    size = f.read().strip().upper()
                mult = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
                value = int(size.rstrip("KM")) * mult
                return min(max(value, 256 << 10), 4 << 20)
    except (OSError, ValueError):
        pass
    return default


# Per-chunk working-set budget (bytes). On CPU, one core's L2 cache: a chunk's output rows and
# temporaries are written, re-read and finished (abs, sqrt, threshold) while still in cache,
# so each output byte goes to memory once. But chunks are not cut below _MIN_CHUNK_ROWS
# series (as long as they stay within _CPU_CHUNK_MAX_BYTES): the fixed per-chunk cost (python
# + kernel dispatch: ~5 us for m == 1 distances, ~20 us for m > 1, ~80 us for 'point', which
# runs a few dozen small kernels and a sort) matters more than L2 vs L3. Measured, streaming
# 100k float32 series of length 46 in batches of 4096, 2 threads, best CPU seconds: m=3
# distances 0.30 at 43-series chunks (the L2 budget) vs 0.18 at 128 and 0.17 at 256; m=1
# distances 0.073 at 32 vs 0.057-0.061 at 128-512; 'point' 0.69 at 20 vs 0.23-0.29 at 256-2048;
# L2, 2 MiB, 4 MiB and 8 MiB budgets with these minimums within noise of each other. On CUDA
# the budget only bounds the temporaries.
_CPU_CHUNK_BYTES = _l2_cache_bytes()
_CPU_CHUNK_MAX_BYTES = 8 << 20
_MIN_CHUNK_ROWS = {"point": 256, "other": 128, "fused": 512}  # "fused": see _fused_abs_diff
_CUDA_CHUNK_BYTES = 256 << 20
# numpy's pairwise summation block (numpy/core/src/umath/loops_utils.h.src: PW_BLOCKSIZE).
_PW_BLOCKSIZE = 128
_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


# --------------------------------------------------------------------------------------------
# Parameter validation (mirrors pyts.image.RecurrencePlot._check_params, raising ConfigError)
# --------------------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, _INT_TYPES) and not isinstance(v, _BOOL_TYPES)


def _is_real(v: Any) -> bool:
    return isinstance(v, _REAL_TYPES) and not isinstance(v, _BOOL_TYPES)


def _check_static(dimension: Any, time_delay: Any, threshold: Any, percentage: Any) -> None:
    """Checks that do not depend on the series length; raises :class:`ConfigError`."""
    for name, value in (("dimension", dimension), ("time_delay", time_delay)):
        if not _is_real(value):
            raise ConfigError(
                f"recurrence plot: '{name}' must be an integer >= 1 or a float in (0, 1), "
                f"got {value!r} ({type(value).__name__})")
        if _is_int(value):
            if value < 1:
                raise ConfigError(
                    f"recurrence plot: if '{name}' is an integer it must be >= 1 "
                    f"(and <= the series length), got {value}")
        elif not 0 < value < 1:
            raise ConfigError(
                f"recurrence plot: if '{name}' is a float it must be strictly between 0 and 1 "
                f"(a fraction of the series length; use the integer 1 for 1), got {value!r}")
    if threshold is not None:
        if isinstance(threshold, str):
            if threshold not in ("point", "distance"):
                raise ConfigError(
                    "recurrence plot: 'threshold' must be None, 'point', 'distance' or a number "
                    f"> 0, got {threshold!r}")
        elif not _is_real(threshold):
            raise ConfigError(
                "recurrence plot: 'threshold' must be None, 'point', 'distance' or a number > 0, "
                f"got {threshold!r} ({type(threshold).__name__})")
        elif not threshold > 0:  # also rejects NaN
            raise ConfigError(
                f"recurrence plot: a numeric 'threshold' must be > 0, got {threshold!r}")
    if not _is_real(percentage):
        raise ConfigError(
            "recurrence plot: 'percentage' must be a number between 0 and 100, "
            f"got {percentage!r} ({type(percentage).__name__})")
    if not 0 <= percentage <= 100:  # also rejects NaN
        raise ConfigError(
            f"recurrence plot: 'percentage' must be between 0 and 100, got {percentage!r}")


def _check_size(size: Any) -> None:
    if size is not None and (not _is_int(size) or size < 1):
        raise ConfigError(f"recurrence plot: 'size' must be None or an integer >= 1, got {size!r}")


def trajectory_params(length: int, dimension: int | float = 1,
                      time_delay: int | float = 1) -> tuple[int, int, int]:
    r"""Resolve ``dimension`` and ``time_delay`` for series of a given length.

    Args:
        length: Series length :math:`T` (>= 1).
        dimension: Embedding dimension :math:`m`: an integer in ``[1, T]`` or a float
            :math:`f \in (0, 1)` meaning :math:`\lceil f T \rceil`.
        time_delay: Delay :math:`\tau`: an integer in ``[1, T]`` or a float in ``(0, 1)``.

    Returns:
        ``(m, tau, T')`` with :math:`T' = T - (m - 1)\tau`, the side of the recurrence plot.

    Raises:
        ConfigError: a parameter is invalid for this length (message names it).
    """
    _check_static(dimension, time_delay, None, 10)
    resolved = []
    for name, value in (("dimension", dimension), ("time_delay", time_delay)):
        if _is_int(value):
            if value > length:
                raise ConfigError(
                    f"recurrence plot: if '{name}' is an integer it must be <= the series length "
                    f"({length}), got {value}")
            resolved.append(int(value))
        else:
            resolved.append(int(math.ceil(value * length)))  # same expression as pyts
    m, tau = resolved
    size = length - (m - 1) * tau
    if size < 1:
        raise ConfigError(
            f"recurrence plot: 'dimension' ({dimension!r} -> {m}) and 'time_delay' "
            f"({time_delay!r} -> {tau}) leave no trajectory in a series of length {length} "
            f"(need (dimension - 1) * time_delay < {length}); use smaller values")
    return m, tau, size


# --------------------------------------------------------------------------------------------
# Input / output plumbing
# --------------------------------------------------------------------------------------------


def _as_tensor(x: Any, what: str) -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, came_from_numpy)``; numpy arrays are wrapped without copying."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or _is_int_dtype(t.dtype)):
            raise InputError(f"recurrence plot: '{what}' must hold real numbers, got dtype {t.dtype}")
        return t, False
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise InputError(f"recurrence plot: '{what}' must hold real numbers, got dtype {a.dtype}")
    if a.dtype.kind in "iu":  # exact in float64 (|values| < 2**53), computed in float64 anyway
        a = a.astype(np.float64)
    elif not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    if not a.flags.writeable:  # torch.from_numpy warns on read-only arrays; inputs are small
        a = a.copy()
    return torch.from_numpy(a), True


def _is_int_dtype(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 and integer inputs (pyts computes exactly there), else float32."""
    return torch.float64 if (dtype == torch.float64 or _is_int_dtype(dtype)) else torch.float32


def _check_finite(t: torch.Tensor, what: str) -> None:
    if not t.is_floating_point() or t.numel() == 0:
        return
    if _numpy_fast_path(t) and t.dtype != torch.bfloat16:  # single-threaded, no OpenMP
        if bool(np.isfinite(t.numpy()).all()):
            return
    elif bool(torch.isfinite(t).all()):
        return
    flat = t.reshape(-1, t.shape[-1])
    nan = torch.isnan(flat)
    inf = torch.isinf(flat)
    bad_series = int((nan | inf).any(dim=1).sum())
    parts = []
    if bool(nan.any()):
        parts.append(f"{int(nan.sum())} NaN")
    if bool(inf.any()):
        parts.append(f"{int(inf.sum())} infinite")
    raise InputError(
        f"recurrence plot: '{what}' contains {' and '.join(parts)} value(s) in {bad_series} of "
        f"{flat.shape[0]} series; fill the gaps (pimc_core.series.gapfill) before computing recurrence plots")


def _empty_float32(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Uninitialised float32 output.

    On CPU the buffer is allocated by numpy, which asks the kernel for transparent huge pages
    on large allocations; torch's allocator does not, and first-touching a 850 MB output in
    4 KiB pages costs ~4x more than computing it. The returned tensor is an ordinary tensor
    (it shares memory with a numpy array that it keeps alive).
    """
    if device.type == "cpu":
        return torch.from_numpy(np.empty(shape, dtype=np.float32))
    return torch.empty(shape, dtype=torch.float32, device=device)


def _extent(t: torch.Tensor) -> tuple[int, int]:
    """``[first, last)`` byte addresses spanned by the elements of ``t`` (non-empty)."""
    lo = hi = 0
    for n, st in zip(t.shape, t.stride()):
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    item = t.element_size()
    return t.data_ptr() + lo * item, t.data_ptr() + (hi + 1) * item


def _check_out(out: Any, shape: tuple[int, ...], like: torch.Tensor, what: str) -> torch.Tensor:
    """Validate a caller's preallocated ``out`` and return it as a tensor sharing its memory.

    ``out`` must be a C-contiguous, writable float32 numpy array (CPU inputs only) or torch
    tensor of exactly ``shape``, on ``like``'s device, not requiring grad, and not overlapping
    the input ``like`` (which it would overwrite while it is being read).

    Raises:
        InputError: naming ``out``: what is wrong and what was expected.
    """
    want = f"a float32 array/tensor of shape {shape} on {like.device}"
    if isinstance(out, np.ndarray):
        if out.dtype != np.float32 or not out.dtype.isnative:
            raise InputError(f"recurrence plot: 'out' must be {want}, got dtype {out.dtype}")
        if not out.flags.writeable:
            raise InputError("recurrence plot: 'out' is a read-only numpy array")
        if not out.flags.c_contiguous:
            raise InputError("recurrence plot: 'out' must be C-contiguous (e.g. np.empty(shape, np.float32))")
        o = torch.from_numpy(out)
    elif isinstance(out, torch.Tensor):
        if out.dtype != torch.float32:
            raise InputError(f"recurrence plot: 'out' must be {want}, got dtype {out.dtype}")
        if out.requires_grad:
            raise InputError("recurrence plot: 'out' must not require grad (results are not differentiable)")
        o = out
    else:
        raise InputError(f"recurrence plot: 'out' must be None or {want}, got {type(out).__name__}")
    if tuple(o.shape) != tuple(shape):
        raise InputError(
            f"recurrence plot: 'out' has shape {tuple(o.shape)}, expected {tuple(shape)} for these "
            f"{what} and parameters (slice a larger buffer, e.g. out[:n], for a smaller batch)")
    if o.device != like.device:
        raise InputError(
            f"recurrence plot: 'out' is on {o.device}, expected {like.device} (the device of '{what}')")
    if not o.is_contiguous():
        raise InputError("recurrence plot: 'out' must be contiguous")
    if o.numel() and like.numel() and o.device == like.device:
        a0, a1 = _extent(o)
        b0, b1 = _extent(like)
        if a0 < b1 and b0 < a1:
            raise InputError(f"recurrence plot: 'out' overlaps the memory of '{what}'")
    return o


def _numpy_fast_path(t: torch.Tensor) -> bool:
    """Whether ``t`` may go through numpy (CPU tensors: shares memory, no copy)."""
    return t.device.type == "cpu"


def _chunk_rows(row_bytes: int, device: torch.device, min_rows: int = 1) -> int:
    """Series per chunk: as many as fit the working-set budget; on CPU at least ``min_rows``
    unless that exceeds ``_CPU_CHUNK_MAX_BYTES`` (long series)."""
    if device.type == "cpu":
        row_bytes = max(1, row_bytes)
        return max(1, _CPU_CHUNK_BYTES // row_bytes, min(min_rows, _CPU_CHUNK_MAX_BYTES // row_bytes))
    return max(1, _CUDA_CHUNK_BYTES // max(1, row_bytes))


# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


def _pairwise_sum(terms: list[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of equally shaped tensors in numpy's pairwise-summation order.

    numpy reduces ``np.sum(..., axis=-1)`` over a contiguous axis of length ``n`` with
    ``pairwise_sum``: sequentially for ``n < 8``, with 8 interleaved accumulators up to
    ``n <= 128``, recursively by halves above. Reproducing the order makes the sums (hence
    distances and every thresholded pixel) bit-identical to pyts. Never modifies ``terms``.
    """
    n = len(terms)
    if n == 1:
        return terms[0] if out is None else out.copy_(terms[0])
    if n < 8:
        acc = torch.add(terms[0], terms[1], out=out) if out is not None else terms[0] + terms[1]
        for t in terms[2:]:
            acc.add_(t)
        return acc
    if n <= _PW_BLOCKSIZE:
        r = list(terms[:8])
        owned = [False] * 8
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                if owned[j]:
                    r[j].add_(terms[i + j])
                else:
                    r[j] = r[j] + terms[i + j]
                    owned[j] = True
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for t in terms[i:]:
            res.add_(t)
        return res if out is None else out.copy_(res)
    n2 = n // 2
    n2 -= n2 % 8
    res = _pairwise_sum(terms[:n2]) + _pairwise_sum(terms[n2:])
    return res if out is None else out.copy_(res)


def _distances_into(xc: torch.Tensor, dst: torch.Tensor, m: int, tau: int,
                    scratch: dict[str, torch.Tensor]) -> None:
    r"""Write the distance matrices of a chunk of series into ``dst``.

    Args:
        xc: ``(B, T)`` series in the compute dtype.
        dst: ``(B, T', T')`` destination in the compute dtype.
        m, tau: resolved embedding dimension and delay.
        scratch: reusable buffers (keyed by name), grown on demand.

    For ``m == 1``, ``dst = |x_i - x_j|``. Otherwise the squared differences of all pairs
    of samples, :math:`S_{ab} = (x_a - x_b)^2` (``(B, T, T)``), are computed once and
    :math:`D^2_{ij} = \sum_k S_{i + k\tau,\, j + k\tau}` is a sum of ``m`` shifted
    ``T' x T'`` blocks of ``S`` (no ``(B, T', T', m)`` trajectory difference tensor).
    """
    b = xc.shape[0]
    if m == 1:
        torch.sub(xc[:, :, None], xc[:, None, :], out=dst)
        dst.abs_()
        return
    n = dst.shape[-1]
    sq = _scratch(scratch, "sq", (b, xc.shape[1], xc.shape[1]), xc)
    torch.sub(xc[:, :, None], xc[:, None, :], out=sq)
    sq.mul_(sq)
    terms = [sq[:, k * tau:k * tau + n, k * tau:k * tau + n] for k in range(m)]
    acc = _scratch(scratch, "acc", (b, n, n), xc)
    _sum_embedding(terms, tau, n, acc)
    _sqrt_into(acc, dst)


def _sum_embedding(terms: list[torch.Tensor], tau: int, side: int, out: torch.Tensor) -> None:
    """``out = sum(terms)`` (``m >= 2`` terms) in the order numpy uses inside pyts.

    pyts sums the squared trajectory differences with ``np.sum(axis=3)`` on a temporary whose
    memory layout numpy derives from the strided trajectories: for ``tau == 1`` (or
    ``T' == 1``) the embedding axis is innermost and numpy sums it pairwise; for ``tau > 1``
    it is not, and numpy accumulates the ``m`` terms one after the other. Both orders agree
    for ``m < 8``.
    """
    if len(terms) < 8 or not (tau == 1 or side == 1):
        torch.add(terms[0], terms[1], out=out)
        for t in terms[2:]:
            out.add_(t)
    else:
        _pairwise_sum(terms, out=out)


def _packed_pair_distances(xc: torch.Tensor, m: int, tau: int, side: int) -> torch.Tensor:
    r"""Distances of every unordered pair of distinct trajectories, once: ``(B, T'(T'-1)/2)``.

    The values are bit-identical to the off-diagonal entries of :func:`_distances_into`'s
    matrices (same differences, same summation order, same sqrt). Pairs are enumerated
    circularly, which needs no gather: with :math:`y^{(k)}_i = x_{i + k\tau}` and
    :math:`h = \lfloor (T'-1)/2 \rfloor`, row :math:`\delta \in [1, h]` holds the pairs
    :math:`(i, (i + \delta) \bmod T')` for all :math:`i` (a sliding window over
    :math:`y^{(k)}` concatenated with itself), plus, for even :math:`T'`, the pairs
    :math:`(i, i + T'/2)`, :math:`i < T'/2`.
    """
    b = xc.shape[0]
    h = (side - 1) // 2
    n_pairs = side * (side - 1) // 2
    terms = []
    for k in range(m):
        y = xc[:, k * tau:k * tau + side]
        buf = torch.empty((b, n_pairs), dtype=xc.dtype, device=xc.device)
        if h:
            win = torch.cat([y, y[:, :h]], dim=1).unfold(1, side, 1)[:, 1:]  # (B, h, T')
            torch.sub(win, y[:, None, :], out=buf[:, :h * side].view(b, h, side))
        if side % 2 == 0 and side:
            half = side // 2
            torch.sub(y[:, half:], y[:, :half], out=buf[:, h * side:])
        if m == 1:
            return buf.abs_()
        terms.append(buf.mul_(buf))
    acc = torch.empty_like(terms[0])
    _sum_embedding(terms, tau, side, acc)
    _sqrt_into(acc, acc)
    return acc


def _sqrt_into(src: torch.Tensor, dst: torch.Tensor) -> None:
    """``dst = sqrt(src)``, correctly rounded as numpy's.

    torch's vectorised CPU sqrt (AVX-512 build) is not correctly rounded (1 ulp off for ~15%
    of float32 inputs), which would make distances differ from pyts's; numpy's is IEEE exact,
    and so is CUDA's.
    """
    if _numpy_fast_path(src):
        np.sqrt(src.numpy(), out=dst.numpy())
    else:
        torch.sqrt(src, out=dst)


def _scratch(store: dict[str, torch.Tensor], key: str, shape: tuple[int, ...],
             like: torch.Tensor) -> torch.Tensor:
    numel = math.prod(shape)
    buf = store.get(key)
    if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
        buf = torch.empty(numel, dtype=like.dtype, device=like.device)
        store[key] = buf
    return buf[:numel].view(shape)


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


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
        pairs = _packed_pair_distances(xc, m, tau, side)
    want = sorted({(r - side) // 2 for i, r in enumerate(ranks) if out[i] is None})
    if _numpy_fast_path(pairs):
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
    if _numpy_fast_path(a):
        a.numpy().sort(axis=1)
        return a
    return torch.sort(a, dim=1).values


def _ceil_to_float32(thr64: torch.Tensor) -> torch.Tensor:
    """Smallest float32 >= ``thr64``: for float32 ``d``, ``d < thr64`` iff ``d < result``."""
    c = thr64.to(torch.float32)
    up = torch.nextafter(c, torch.full_like(c, math.inf))
    return torch.where(c.to(torch.float64) < thr64, up, c)


def _threshold_(d: torch.Tensor, threshold: Threshold, percentage: Any, xc: torch.Tensor,
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


# --------------------------------------------------------------------------------------------
# Fused CPU kernel for the common case |x_i - x_j| (m == 1, no threshold)
# --------------------------------------------------------------------------------------------

# torch needs two passes for it (a broadcast subtract, then abs_ in place): measured 1.8M
# series/s per core for T = 46 against 3.9M for a single loop that computes and stores each
# value once (and 4.4M for only filling the buffer), so the whole job runs at the speed of
# writing the output. The loop is compiled by numba (already installed: pyts depends on it)
# on first use and cached on disk; it releases the GIL, so the chunks still run on the
# worker threads below. Without numba (or if compiling fails) the torch kernels are used.
# Values are identical: the subtraction runs in the input's compute dtype and is rounded once
# when stored into the float32 output, exactly like torch.sub(..., out=float32).abs_().
_FUSED_MIN_ROWS = 256  # below this, importing and loading the compiled kernel is not worth it


def _abs_diff_loop(x, out):  # pragma: no cover - compiled by numba, exercised through it
    """``out[b, i, j] = |x[b, i] - x[b, j]|`` for ``x`` ``(B, T)`` and ``out`` ``(B, T, T)``."""
    n, length = x.shape
    for b in range(n):
        for i in range(length):
            xi = x[b, i]
            for j in range(length):
                out[b, i, j] = abs(xi - x[b, j])


@functools.lru_cache(maxsize=1)
def _fused_abs_diff() -> Callable[[np.ndarray, np.ndarray], None] | None:
    """The numba-compiled :func:`_abs_diff_loop`, or None where numba cannot be used."""
    if os.environ.get("PIMC_NO_NUMBA"):
        return None
    try:
        import numba
    except Exception:  # noqa: BLE001 - any import problem: fall back to torch
        return None
    for cache in (True, False):  # caching needs a writable cache directory
        try:
            fn = numba.njit(nogil=True, cache=cache, boundscheck=False)(_abs_diff_loop)
            probe = np.arange(3, dtype=np.float32).reshape(1, 3)
            res = np.empty((1, 3, 3), np.float32)
            fn(probe, res)  # compile (or load) the float32 version now, check it once
            if res[0, 0, 2] != 2.0 or res[0, 2, 0] != 2.0 or res[0, 1, 1] != 0.0:
                return None
            return fn
        except Exception:  # noqa: BLE001 - numba error of any kind: try without cache, then torch
            continue
    return None


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

# CPU parallelism. Per chunk the work is a handful of small torch/numpy kernels. Letting each
# kernel fork/join torch's OpenMP team costs little on an idle machine but collapses when other
# processes compete for the cores (a join waits for a descheduled team member: measured 5-20x
# slower than one thread on a loaded 2-core VM). Instead, whole chunks are handed to a pool of
# worker threads whose torch kernels run single-threaded, so nothing waits for anything but the
# end of the call, and a worker that gets the CPU simply takes the next chunk (torch kernels and
# numpy sorts release the GIL). The pool has torch.get_num_threads() workers (the caller's
# thread budget); with one thread, on CUDA, or for jobs below torch's parallel grain, chunks
# run inline in the calling thread.
#
# No global thread setting is ever changed. torch.set_num_threads is process-wide (it stores
# the count every thread starts from, resizes torch's pthreadpool, clears the oneDNN cache),
# so it is not called. What torch's CPU kernels read (at::get_num_threads() ==
# omp_get_max_threads()) is a per-thread OpenMP setting (the nthreads-var ICV of the calling
# thread): each worker, once, sets its own to 1 by calling omp_set_num_threads(1) of the OpenMP
# runtime torch is linked with (already loaded: looked up with RTLD_NOLOAD, never loaded
# anew), which changes nothing for any other thread, and checks that torch.get_num_threads()
# then reads 1 in that thread. Where this is not possible (no such runtime found, e.g. a torch
# built without OpenMP, or Windows), the workers run in "small-kernel mode" instead: chunks are
# cut so that no kernel exceeds torch's parallel grain, below which ATen never forks
# (slower: more, smaller kernels); if even one series exceeds the grain, chunks run inline
# with torch's own threading. Chosen over a pure-numpy CPU path (numpy's broadcast subtract
# over 46-element rows is 2.5x slower than torch's: measured) and over small-kernel mode
# everywhere (1.7x more CPU for T=46: per-kernel dispatch dominates).
_PARALLEL_GRAIN = 32768  # at::internal::GRAIN_SIZE: kernels of at most this many elements never fork
_OMP_LIB = re.compile(r"^lib(gomp|iomp5|omp)(-[0-9a-f]+)?\.(so(\.[\d.]+)?|dylib)$")  # GNU, Intel, LLVM


@functools.lru_cache(maxsize=1)
def _omp_thread_setters() -> tuple[Callable[[int], None], ...]:
    """``omp_set_num_threads`` of the OpenMP runtimes already loaded, torch's own first."""
    if not hasattr(os, "RTLD_NOLOAD"):  # Windows: cannot look a library up without loading it
        return ()
    torch_dir = os.path.dirname(os.path.realpath(torch.__file__))
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:  # "address perms offset dev inode [path]"
                fields_ = line.split(None, 5)
                path = fields_[5].strip() if len(fields_) == 6 else ""
                if path.startswith("/") and _OMP_LIB.match(os.path.basename(path)) and path not in paths:
                    paths.append(path)
    except OSError:  # macOS: no /proc; torch wheels ship their runtime in torch/lib
        lib_dir = os.path.join(torch_dir, "lib")
        try:
            paths = [os.path.join(lib_dir, n) for n in sorted(os.listdir(lib_dir)) if _OMP_LIB.match(n)]
        except OSError:
            paths = []
    paths.sort(key=lambda p: not os.path.realpath(p).startswith(torch_dir))
    setters = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            fn = lib.omp_set_num_threads
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], None
        setters.append(fn)
    return tuple(setters)


def _make_this_thread_single_threaded() -> bool:
    """Make torch kernels called from *this* (worker) thread single-threaded; True if done.

    Touches only this thread's OpenMP setting (see the comment above ``_PARALLEL_GRAIN``).
    """
    torch.get_num_threads()  # torch's lazy per-thread init first: it would reset the setting below
    if torch.get_num_threads() == 1:
        return True
    for set_num_threads in _omp_thread_setters():
        set_num_threads(1)
        if torch.get_num_threads() == 1:
            return True
    return False


class _Pool:
    """Worker threads for :func:`_run_chunks`; ``single_threaded``: each runs torch kernels on one thread."""

    def __init__(self, n_workers: int) -> None:
        self.size, self.pid = n_workers, os.getpid()
        self.executor = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="pimc-recurrence")
        barrier = threading.Barrier(n_workers)

        def init() -> bool:  # each blocks on the barrier, so each runs on its own thread
            try:
                return _make_this_thread_single_threaded()
            finally:
                barrier.wait()

        self.single_threaded = all(f.result() for f in [self.executor.submit(init) for _ in range(n_workers)])


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _cpu_pool(n_workers: int) -> _Pool:
    """The shared pool of ``>= n_workers`` worker threads (a forked child makes its own)."""
    global _POOL
    with _POOL_LOCK:
        pool = _POOL
        if pool is not None and pool.size >= n_workers and pool.pid == os.getpid():
            return pool
        old = pool if pool is not None and pool.pid == os.getpid() else None
        _POOL = pool = _Pool(n_workers)
    if old is not None:
        old.executor.shutdown(wait=False)
    return pool


def _chunk_plan(n_rows: int, rows: int, device: torch.device, kernel_elems: int,
                multiple: int) -> tuple[int, _Pool | None, int]:
    """``(rows per chunk, pool or None for inline, workers)`` for ``n_rows`` rows.

    ``rows``: rows per chunk wanted (cache budget); ``kernel_elems``: elements of the largest
    kernel per row (small-kernel mode keeps kernels within the parallel grain);
    ``multiple``: chunk sizes stay multiples of it. Chunks are shrunk so that every worker
    gets some.
    """
    n_workers = torch.get_num_threads() if device.type == "cpu" else 1
    if n_workers <= 1 or n_rows * kernel_elems <= _PARALLEL_GRAIN:
        return rows, None, 1  # inline: the caller's kernels are single-threaded or never fork
    pool = _cpu_pool(n_workers)
    if not pool.single_threaded:
        cap = _PARALLEL_GRAIN // max(1, kernel_elems)
        if cap < multiple:  # one chunk's kernels would fork anyway: torch's own threading
            return rows, None, 1
        rows = min(rows, cap - cap % multiple)
    per_worker = -(-n_rows // n_workers)
    rows = max(multiple, min(rows, per_worker + (-per_worker) % multiple))
    return rows, pool, n_workers


def _run_chunks(n_chunks: int, pool: _Pool | None, n_workers: int,
                work: Callable[[int, dict[str, torch.Tensor]], None]) -> None:
    """Call ``work(i, scratch)`` for ``i in range(n_chunks)`` (independent chunks).

    Inline when ``pool`` is None; otherwise on ``min(n_workers, n_chunks)`` pool workers taking
    chunks from a shared counter, each with its own ``scratch`` buffers. The first exception
    stops the others and is re-raised here.
    """
    if pool is None:
        scratch: dict[str, torch.Tensor] = {}
        for i in range(n_chunks):
            work(i, scratch)
        return
    counter = iter(range(n_chunks))
    lock = threading.Lock()
    failed = threading.Event()

    def drain() -> None:
        own: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            while not failed.is_set():
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    work(i, own)
                except BaseException:
                    failed.set()
                    raise

    futures = [pool.executor.submit(drain) for _ in range(min(n_workers, n_chunks))]
    for f in futures:
        f.result()


def _plots_into(flat: torch.Tensor, out: torch.Tensor, m: int, tau: int, threshold: Threshold,
                percentage: Any, resize_to: int | None = None, channels: int = 1) -> None:
    """Compute the plots of ``flat`` (``(N, T)``) chunk by chunk into float32 ``out``.

    ``out`` is ``(N, T', T')``, or ``(N // channels, channels, size, size)`` when
    ``resize_to`` is given (rows are then processed in whole groups of ``channels``).
    """
    n_rows, length = flat.shape
    if n_rows == 0:
        return
    side = length - (m - 1) * tau
    cdt = _compute_dtype(flat.dtype)
    flat = flat.to(cdt)  # once: (N, T) is small next to the (N, T', T') plots
    item = flat.element_size()
    # Unthresholded float64 work can be written straight into the float32 output (the
    # subtraction/sqrt runs in float64 and is rounded once on store, like pyts's float64
    # values cast to float32); thresholds need the float64 distances, so a scratch.
    direct = resize_to is None and (cdt == torch.float32 or threshold is None)
    # working set per series: its input and output rows, the scratch plot unless direct,
    # m > 1 squared differences and accumulator(s), 'point' pair distances (one buffer per
    # embedding term and their sum); kernel_elems: the largest kernel's elements per series
    out_elems = side * side if resize_to is None else resize_to * resize_to
    row_bytes = length * item + out_elems * 4 + (0 if direct else side * side * item)
    kernel_elems = max(side * side, out_elems)
    if m > 1:
        row_bytes += (length * length + side * side * (9 if m >= 8 else 1)) * item
        kernel_elems = max(kernel_elems, length * length)
    if threshold == "point":
        row_bytes += (m + 1) * side * (side - 1) // 2 * item
    multiple = 1 if resize_to is None else channels
    plain = m == 1 and direct and threshold is None  # the common case: |x_i - x_j|
    fused = _fused_abs_diff() if plain and flat.device.type == "cpu" and n_rows >= _FUSED_MIN_ROWS else None
    min_rows = "fused" if fused is not None else "point" if threshold == "point" else "other"
    rows = _chunk_rows(row_bytes, flat.device, _MIN_CHUNK_ROWS[min_rows])
    rows = max(multiple, rows - rows % multiple)
    rows, pool, n_workers = _chunk_plan(n_rows, rows, flat.device, kernel_elems, multiple)
    # views made once per call: per chunk only the kernels themselves are dispatched
    outs = out.split(rows if resize_to is None else rows // channels)
    xs = () if plain else flat.split(rows)
    if m == 1:
        cols, rws = flat[:, :, None].split(rows), flat[:, None, :].split(rows)

    if fused is not None:
        flat_np, outs_np = flat.detach().numpy(), [o.detach().numpy() for o in outs]
        starts = [0]
        for o in outs:
            starts.append(starts[-1] + o.shape[0])

    def work(i: int, scratch: dict[str, torch.Tensor]) -> None:
        if fused is not None:
            fused(flat_np[starts[i]:starts[i + 1]], outs_np[i])
            return
        if plain:
            torch.sub(cols[i], rws[i], out=outs[i]).abs_()
            return
        xc = xs[i]
        dst = outs[i] if direct else _scratch(scratch, "dst", (xc.shape[0], side, side), xc)
        if m == 1:
            torch.sub(cols[i], rws[i], out=dst).abs_()
        else:
            _distances_into(xc, dst, m, tau, scratch)
        if threshold is not None:
            _threshold_(dst, threshold, percentage, xc, m, tau)
        if resize_to is None:
            if not direct:
                outs[i].copy_(dst)
        else:
            imgs = dst.to(torch.float32).reshape(-1, channels, side, side)
            outs[i].copy_(F.interpolate(
                imgs, size=(resize_to, resize_to), mode="bilinear", align_corners=False,
                antialias=resize_to < side))

    _run_chunks(len(outs), pool, n_workers, work)  # as many chunks as input chunks


@torch.no_grad()
def recurrence_plot(x: ArrayLike, dimension: int | float = 1, time_delay: int | float = 1,
                    threshold: Threshold = None, percentage: int | float = 10, *,
                    out: ArrayLike | None = None) -> ArrayLike:
    r"""Recurrence plots of every series in ``x`` (pyts ``RecurrencePlot`` semantics).

    Args:
        x: ``(..., T)`` numpy array or torch tensor (any number of leading batch dims,
            including none), real-valued, no NaN/inf. CUDA tensors are processed on the GPU.
        dimension: Embedding dimension :math:`m`: an integer in ``[1, T]`` or a float
            :math:`f \in (0, 1)` meaning :math:`\lceil fT \rceil`.
        time_delay: Delay :math:`\tau` between embedded samples: integer in ``[1, T]`` or a
            float in ``(0, 1)``.
        threshold: ``None`` (distances), a number ``> 0``, ``'point'`` (per-series
            ``percentage``-th percentile of the distances) or ``'distance'``
            (``percentage`` % of the per-series maximum distance). Binarisation is
            :math:`R_{ij} = [D_{ij} < \varepsilon]`.
        percentage: In ``[0, 100]``; used by ``'point'`` and ``'distance'`` (always checked).
        out: Optional preallocated result: a C-contiguous, writable float32 numpy array or
            torch tensor of shape ``(..., T', T')`` on ``x``'s device (a numpy array only for
            CPU inputs), not overlapping ``x``. Meant for streaming batches through one
            reused buffer (no allocation, no page faults, memory that stays in cache); for a
            smaller last batch pass a leading slice, ``out[:n]``. Every element is
            overwritten. Nothing is written if validation fails.

    Returns:
        ``(..., T', T')`` float32, :math:`T' = T - (m-1)\tau`: ``out`` itself when given;
        otherwise a numpy array if ``x`` is not a tensor, else a tensor on ``x``'s device.
        Work is done in chunks of series sized to the L2 cache on CPU, so temporaries stay
        small whatever the batch size.

    Raises:
        ConfigError: an invalid parameter (the message names it).
        InputError: ``x`` is not real-valued, has no time axis, or contains NaN/inf; ``out``
            has the wrong type, dtype, shape, device or layout, or overlaps ``x`` (the
            message names ``out``).
    """
    _check_static(dimension, time_delay, threshold, percentage)
    t, to_numpy = _as_tensor(x, "x")
    if t.ndim < 1 or t.shape[-1] < 1:
        raise InputError(f"recurrence plot: 'x' must have shape (..., T) with T >= 1, got {tuple(t.shape)}")
    m, tau, side = trajectory_params(t.shape[-1], dimension, time_delay)
    lead = tuple(t.shape[:-1])
    if out is not None:
        dst = _check_out(out, (*lead, side, side), t, "x")
    _check_finite(t, "x")
    flat = t.reshape(-1, t.shape[-1])
    if out is None:
        dst = _empty_float32((*lead, side, side), t.device)
    _plots_into(flat, dst.view(flat.shape[0], side, side), m, tau, threshold, percentage)
    if out is not None:
        return out
    return dst.numpy() if to_numpy else dst


@torch.no_grad()
def stack_recurrence_plots(series: ArrayLike, *, dimension: int | float = 1,
                           time_delay: int | float = 1, threshold: Threshold = None,
                           percentage: int | float = 10, size: int | None = None,
                           out: ArrayLike | None = None) -> ArrayLike:
    r"""Multi-channel recurrence-plot images: one plot per (sample, channel) series.

    Args:
        series: ``(N, C, T)`` numpy array or torch tensor; channel ``c`` of sample ``n`` is
            one series (e.g. one vegetation index), its plot becomes image channel ``c``.
        dimension, time_delay, threshold, percentage: as in :func:`recurrence_plot`.
        size: ``None`` keeps the native ``T' x T'`` plots; an integer resizes every plot to
            ``size x size`` with ``torch.nn.functional.interpolate(mode='bilinear',
            align_corners=False)``, anti-aliased when shrinking (``antialias=True`` iff
            ``size < T'``). Bilinear keeps a smooth distance image smooth and, with
            ``align_corners=False``, maps pixel areas onto pixel areas (no half-pixel shift);
            anti-aliasing averages over the whole footprint of an output pixel when
            shrinking instead of sampling 4 input pixels (which would alias). Resized
            thresholded plots hold fractions in ``[0, 1]`` (the share of recurrent pixels),
            not only 0/1.
        out: Optional preallocated ``(N, C, S, S)`` float32 result, reused across batches;
            same rules as in :func:`recurrence_plot` (e.g. ``out[:n]`` for a smaller batch).

    Returns:
        ``(N, C, S, S)`` float32 with ``S = size`` or ``T'``: ``out`` itself when given;
        otherwise numpy in, numpy out; tensor in, tensor (same device) out.

    Raises:
        ConfigError: an invalid parameter, including ``size``.
        InputError: ``series`` is not 3-D, not real-valued, or contains NaN/inf; a bad
            ``out`` (see :func:`recurrence_plot`).
    """
    _check_static(dimension, time_delay, threshold, percentage)
    _check_size(size)
    t, to_numpy = _as_tensor(series, "series")
    if t.ndim != 3 or t.shape[-1] < 1:
        raise InputError(
            f"recurrence plot: 'series' must have shape (N, C, T) with T >= 1, got {tuple(t.shape)}")
    n, c, length = t.shape
    m, tau, side = trajectory_params(length, dimension, time_delay)
    s = side if size is None else size
    if out is not None:
        dst = _check_out(out, (n, c, s, s), t, "series")
    _check_finite(t, "series")
    if out is None:
        dst = _empty_float32((n, c, s, s), t.device)
    flat = t.reshape(n * c, length)
    if s == side:
        _plots_into(flat, dst.view(n * c, side, side), m, tau, threshold, percentage)
    else:
        _plots_into(flat, dst, m, tau, threshold, percentage, resize_to=s, channels=c)
    if out is not None:
        return out
    return dst.numpy() if to_numpy else dst


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    """numpy scalars -> python scalars (keeping int vs float)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.str_):
        return str(v)
    return v


@dataclass(frozen=True)
class RecurrencePlotConfig:
    """How series become recurrence-plot images; stored in model files.

    Attributes:
        dimension: Embedding dimension (int >= 1, or float in (0, 1): fraction of ``T``).
        time_delay: Embedding delay (int >= 1, or float in (0, 1): fraction of ``T``).
        threshold: ``None``, ``'point'``, ``'distance'`` or a number > 0.
        percentage: In ``[0, 100]``, for ``'point'``/``'distance'``.
        size: ``None`` (native ``T'``) or the side images are resized to.

    Length-independent checks run at construction (:class:`ConfigError`); the rest
    (``dimension``/``time_delay`` versus ``T``) when applied.
    """

    dimension: int | float = 1
    time_delay: int | float = 1
    threshold: Threshold = None
    percentage: int | float = 10
    size: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _plain(getattr(self, f.name)))
        _check_static(self.dimension, self.time_delay, self.threshold, self.percentage)
        _check_size(self.size)

    def apply(self, series: ArrayLike) -> ArrayLike:
        """``(N, C, T)`` series -> ``(N, C, S, S)`` images; see :func:`stack_recurrence_plots`."""
        return stack_recurrence_plots(series, dimension=self.dimension, time_delay=self.time_delay,
                                      threshold=self.threshold, percentage=self.percentage,
                                      size=self.size)

    def image_size(self, length: int) -> int:
        """Side ``S`` of the images made from series of ``length`` samples."""
        side = trajectory_params(length, self.dimension, self.time_delay)[2]
        return side if self.size is None else self.size

    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (JSON/YAML-safe) of every field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecurrencePlotConfig:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are refused.

        Raises:
            ConfigError: ``data`` is not a mapping, has unknown keys (named) or bad values.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"recurrence plot config must be a mapping, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ConfigError(
                f"recurrence plot config: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(known)}")
        return cls(**dict(data))
