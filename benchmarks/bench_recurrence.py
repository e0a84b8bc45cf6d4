"""Benchmark: PIMC's torch recurrence plots vs pyts ``RecurrencePlot`` on the same inputs.

``python -m benchmarks.bench_recurrence`` (defaults: 100,000 random series of length 46,
float32 and float64 inputs, ``threshold=None`` and ``'point'``). Both implementations run in
the same process on the same array, repeats interleaved (pyts, ours, pyts, ours, ...), and the
best of the repeats is kept: other processes sharing the CPU only ever slow a run down.
pyts is single-threaded (numpy); ours runs with ``torch.set_num_threads(threads)``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from typing import Any

import numpy as np


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds, all threads) of one call."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    del out
    return wall, cpu


def _load() -> float:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def run(n_series: int = 100_000, length: int = 46, repeats: int = 5,
        thresholds: tuple[Any, ...] = (None, "point"), dtypes: tuple[str, ...] = ("float32", "float64"),
        threads: int = 2, seed: int = 0) -> dict:
    """Time pyts and ``pimc_core.recurrence.recurrence_plot`` on identical random inputs.

    Args:
        n_series: Number of series per call (one call = all of them, as one batch).
        length: Series length ``T`` (plots are ``T x T``, default parameters otherwise).
        repeats: Timed calls per implementation and case; the fastest is reported.
        thresholds: ``threshold`` values to time.
        dtypes: Input dtypes to time (the same array goes to both implementations).
        threads: ``torch.set_num_threads`` for our implementation.
        seed: Seed of the standard-normal inputs.

    Returns:
        ``{"n_series", "length", "threads", "repeats", "cases": [...]}`` where each case has
        ``dtype``, ``threshold``, ``pyts_s``/``ours_s`` (best seconds), ``pyts_series_per_s``,
        ``ours_series_per_s``, ``speedup`` and ``max_abs_diff`` (on the first 2,000 series).
    """
    import torch
    from pyts.image import RecurrencePlot

    from pimc_core.recurrence import recurrence_plot

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_series, length))
    cases = []
    for dtype in dtypes:
        x = base.astype(dtype)
        for threshold in thresholds:
            rp = RecurrencePlot(threshold=threshold)
            recurrence_plot(x[:64], threshold=threshold)  # warm-up (lazy init, page cache)
            check = min(n_series, 2000)
            diff = float(np.max(np.abs(recurrence_plot(x[:check], threshold=threshold)
                                       - rp.transform(x[:check]))))
            t_pyts = t_ours = c_pyts = c_ours = float("inf")
            load = _load()
            for _ in range(repeats):  # interleaved: both see the same machine load
                w, c = _timed(lambda: rp.transform(x))
                t_pyts, c_pyts = min(t_pyts, w), min(c_pyts, c)
                w, c = _timed(lambda: recurrence_plot(x, threshold=threshold))
                t_ours, c_ours = min(t_ours, w), min(c_ours, c)
            cases.append({
                "dtype": dtype, "threshold": threshold, "pyts_s": round(t_pyts, 4),
                "ours_s": round(t_ours, 4), "pyts_series_per_s": round(n_series / t_pyts),
                "ours_series_per_s": round(n_series / t_ours), "speedup": round(t_pyts / t_ours, 2),
                "pyts_cpu_s": round(c_pyts, 4), "ours_cpu_s": round(c_ours, 4),
                "cpu_speedup": round(c_pyts / c_ours, 2), "max_abs_diff": diff,
                "load_avg": round((load + _load()) / 2, 1),
            })
    floor = min(_timed(lambda: _write_output(n_series, length))[0] for _ in range(repeats))
    return {"n_series": n_series, "length": length, "threads": threads, "repeats": repeats,
            "torch": torch.__version__, "cpus": os.cpu_count(), "cases": cases,
            "floor_s": round(floor, 4), "floor_series_per_s": round(n_series / floor)}


def _write_output(n_series: int, length: int):
    """Allocate the float32 output and write every element once, chunked on the same worker
    threads as ``recurrence_plot``: a lower bound for any implementation (fresh memory must
    be faulted in and zeroed by the kernel, then written)."""
    import torch

    from pimc_core import recurrence as rec

    out = rec._empty_float32((n_series, length, length), torch.device("cpu"))
    rows = max(1, rec._CPU_CHUNK_BYTES // (length * length * 8))
    rec._run_chunks(n_series, rows, torch.device("cpu"), length * length, 1,
                    lambda start, stop, _scratch: out[start:stop].fill_(1.0))
    return out


def markdown(res: dict) -> str:
    """A markdown table of one :func:`run` result."""
    lines = [
        f"{res['n_series']:,} random series of length {res['length']} in one call "
        f"(output {res['n_series'] * res['length'] ** 2 * 4 / 2 ** 20:,.0f} MiB float32); best of "
        f"{res['repeats']} interleaved runs; pyts single-threaded, ours with "
        f"`torch.set_num_threads({res['threads']})` (torch {res['torch']}).",
        "",
        "| input | threshold | pyts (series/s) | PIMC torch (series/s) | speed-up (wall) "
        "| speed-up (CPU time) | max abs diff | load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in res["cases"]:
        lines.append(
            f"| {c['dtype']} | {c['threshold']!s} | {c['pyts_series_per_s']:,} | "
            f"{c['ours_series_per_s']:,} | **{c['speedup']:.1f}×** | {c['cpu_speedup']:.1f}× | "
            f"{c['max_abs_diff']:.1e} | {c['load_avg']:.1f} |")
    floor_x = max(c["pyts_s"] for c in res["cases"] if c["dtype"] == "float32" and c["threshold"] is None) \
        if any(c["dtype"] == "float32" and c["threshold"] is None for c in res["cases"]) else None
    lines += [
        "",
        f"Memory floor: allocating the {res['n_series'] * res['length'] ** 2 * 4 / 2 ** 20:,.0f} MiB "
        f"float32 output and writing it once, on the same threads, runs at "
        f"{res['floor_series_per_s']:,} series/s"
        + (f" ({floor_x / res['floor_s']:.1f}× pyts float32 `threshold=None`, the best any "
           f"implementation returning a fresh array can do there)." if floor_x else "."),
        "",
        f"Speed-up (CPU time) compares process CPU seconds (all threads): the work each needs, "
        f"nearly independent of other processes' load; load avg is the 1-minute load average of "
        f"this {res['cpus']}-CPU machine during the case (above {res['cpus']} the wall times are "
        f"contended).",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-series", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=46)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--thresholds", default="none,point", help="comma list: none, point, distance, <number>")
    a = ap.parse_args()

    def thr(s: str) -> Any:
        return None if s == "none" else s if s in ("point", "distance") else float(s)

    res = run(a.n_series, a.length, a.repeats, tuple(thr(s) for s in a.thresholds.split(",")),
              tuple(a.dtypes.split(",")), a.threads)
    print(markdown(res))


if __name__ == "__main__":
    main()
