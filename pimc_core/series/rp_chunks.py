"""Computing many recurrence plots chunk by chunk into one float32 output.

:func:`plots_into` cuts the series into chunks whose working set fits a core's L2 cache (so
each output byte goes to memory once), picks the kernels (the compiled :math:`|x_i - x_j|`
loop, torch distances, thresholds, a bilinear resize) and runs the chunks on the CPU worker
threads of :mod:`pimc_core.series.rp_threads` (inline on CUDA).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F

from pimc_core.series.rp_distances import distances_into
from pimc_core.series.rp_fused import FUSED_MIN_ROWS, fused_abs_diff
from pimc_core.series.rp_params import Threshold
from pimc_core.series.rp_tensors import compute_dtype, scratch_buffer
from pimc_core.series.rp_threads import chunk_plan, run_chunks
from pimc_core.series.rp_thresholds import threshold_

__all__ = ["CPU_CHUNK_BYTES", "MIN_CHUNK_ROWS", "chunk_rows", "plots_into"]


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
# so each output byte goes to memory once. But chunks are not cut below MIN_CHUNK_ROWS
# series (as long as they stay within CPU_CHUNK_MAX_BYTES): the fixed per-chunk cost (python
# + kernel dispatch: ~5 us for m == 1 distances, ~20 us for m > 1, ~80 us for 'point', which
# runs a few dozen small kernels and a sort) matters more than L2 vs L3. Measured, streaming
# 100k float32 series of length 46 in batches of 4096, 2 threads, best CPU seconds: m=3
# distances 0.30 at 43-series chunks (the L2 budget) vs 0.18 at 128 and 0.17 at 256; m=1
# distances 0.073 at 32 vs 0.057-0.061 at 128-512; 'point' 0.69 at 20 vs 0.23-0.29 at 256-2048;
# L2, 2 MiB, 4 MiB and 8 MiB budgets with these minimums within noise of each other. On CUDA
# the budget only bounds the temporaries.
CPU_CHUNK_BYTES = _l2_cache_bytes()
CPU_CHUNK_MAX_BYTES = 8 << 20
MIN_CHUNK_ROWS = {"point": 256, "other": 128, "fused": 512}  # "fused": see fused_abs_diff
CUDA_CHUNK_BYTES = 256 << 20


def chunk_rows(row_bytes: int, device: torch.device, min_rows: int = 1) -> int:
    """Series per chunk: as many as fit the working-set budget; on CPU at least ``min_rows``
    unless that exceeds ``CPU_CHUNK_MAX_BYTES`` (long series)."""
    if device.type == "cpu":
        row_bytes = max(1, row_bytes)
        return max(1, CPU_CHUNK_BYTES // row_bytes, min(min_rows, CPU_CHUNK_MAX_BYTES // row_bytes))
    return max(1, CUDA_CHUNK_BYTES // max(1, row_bytes))



def plots_into(flat: torch.Tensor, out: torch.Tensor, m: int, tau: int, threshold: Threshold,
               percentage: Any, resize_to: int | None = None, channels: int = 1) -> None:
    """Compute the plots of ``flat`` (``(N, T)``) chunk by chunk into float32 ``out``.

    ``out`` is ``(N, T', T')``, or ``(N // channels, channels, size, size)`` when
    ``resize_to`` is given (rows are then processed in whole groups of ``channels``).
    """
    n_rows, length = flat.shape
    if n_rows == 0:
        return
    side = length - (m - 1) * tau
    cdt = compute_dtype(flat.dtype)
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
    fused = fused_abs_diff() if plain and flat.device.type == "cpu" and n_rows >= FUSED_MIN_ROWS else None
    min_rows = "fused" if fused is not None else "point" if threshold == "point" else "other"
    rows = chunk_rows(row_bytes, flat.device, MIN_CHUNK_ROWS[min_rows])
    rows = max(multiple, rows - rows % multiple)
    rows, pool, n_workers = chunk_plan(n_rows, rows, flat.device, kernel_elems, multiple)
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
        dst = outs[i] if direct else scratch_buffer(scratch, "dst", (xc.shape[0], side, side), xc)
        if m == 1:
            torch.sub(cols[i], rws[i], out=dst).abs_()
        else:
            distances_into(xc, dst, m, tau, scratch)
        if threshold is not None:
            threshold_(dst, threshold, percentage, xc, m, tau)
        if resize_to is None:
            if not direct:
                outs[i].copy_(dst)
        else:
            imgs = dst.to(torch.float32).reshape(-1, channels, side, side)
            outs[i].copy_(F.interpolate(
                imgs, size=(resize_to, resize_to), mode="bilinear", align_corners=False,
                antialias=resize_to < side))

    run_chunks(len(outs), pool, n_workers, work)  # as many chunks as input chunks

