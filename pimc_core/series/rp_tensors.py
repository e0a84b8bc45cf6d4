"""Inputs, outputs and buffers of the recurrence-plot kernels.

Series arrive as numpy arrays or torch tensors (:func:`as_tensor`: wrapped without copying),
are checked for NaN/inf (:func:`check_finite`), and are computed in float64 when they are
float64 or integers, float32 otherwise (:func:`compute_dtype`). Plots go into float32 buffers,
allocated here (:func:`empty_float32`) or given by the caller (:func:`check_out`). On CPU a few
steps run through numpy on the same memory (:func:`numpy_fast_path`).
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np
import torch

from pimc_core.errors import InputError

__all__ = ["ArrayLike", "as_tensor", "check_finite", "check_out", "compute_dtype", "empty_float32",
           "numpy_fast_path", "scratch_buffer"]

ArrayLike = Union[np.ndarray, torch.Tensor]


def as_tensor(x: Any, what: str) -> tuple[torch.Tensor, bool]:
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


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 and integer inputs (pyts computes exactly there), else float32."""
    return torch.float64 if (dtype == torch.float64 or _is_int_dtype(dtype)) else torch.float32


def check_finite(t: torch.Tensor, what: str) -> None:
    if not t.is_floating_point() or t.numel() == 0:
        return
    if numpy_fast_path(t) and t.dtype != torch.bfloat16:  # single-threaded, no OpenMP
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


def empty_float32(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
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


def check_out(out: Any, shape: tuple[int, ...], like: torch.Tensor, what: str) -> torch.Tensor:
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


def numpy_fast_path(t: torch.Tensor) -> bool:
    """Whether ``t`` may go through numpy (CPU tensors: shares memory, no copy)."""
    return t.device.type == "cpu"



def scratch_buffer(store: dict[str, torch.Tensor], key: str, shape: tuple[int, ...],
                   like: torch.Tensor) -> torch.Tensor:
    """A ``shape`` view of the buffer ``store[key]`` (dtype and device of ``like``), grown on demand."""
    numel = math.prod(shape)
    buf = store.get(key)
    if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
        buf = torch.empty(numel, dtype=like.dtype, device=like.device)
        store[key] = buf
    return buf[:numel].view(shape)

