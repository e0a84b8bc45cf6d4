"""A compiled CPU kernel for the most common plot, :math:`|x_i - x_j|` (``m == 1``, no threshold).

The loop is compiled by numba (a dependency of pyts) on first use and cached on disk; without
numba the torch kernels of :mod:`pimc_core.series.rp_chunks` are used. Same values either way.
"""

from __future__ import annotations

import functools
import os
from typing import Callable

import numpy as np

__all__ = ["FUSED_MIN_ROWS", "fused_abs_diff"]


# torch needs two passes for it (a broadcast subtract, then abs_ in place): measured 1.8M
# series/s per core for T = 46 against 3.9M for a single loop that computes and stores each
# value once (and 4.4M for only filling the buffer), so the whole job runs at the speed of
# writing the output. The loop is compiled by numba (already installed: pyts depends on it)
# on first use and cached on disk; it releases the GIL, so the chunks still run on the
# worker threads (rp_threads). Without numba (or if compiling fails) the torch kernels are used.
# Values are identical: the subtraction runs in the input's compute dtype and is rounded once
# when stored into the float32 output, exactly like torch.sub(..., out=float32).abs_().
FUSED_MIN_ROWS = 256  # below this, importing and loading the compiled kernel is not worth it


def _abs_diff_loop(x, out):  # pragma: no cover - compiled by numba, exercised through it
    """``out[b, i, j] = |x[b, i] - x[b, j]|`` for ``x`` ``(B, T)`` and ``out`` ``(B, T, T)``."""
    n, length = x.shape
    for b in range(n):
        for i in range(length):
            xi = x[b, i]
            for j in range(length):
                out[b, i, j] = abs(xi - x[b, j])


@functools.lru_cache(maxsize=1)
def fused_abs_diff() -> Callable[[np.ndarray, np.ndarray], None] | None:
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

