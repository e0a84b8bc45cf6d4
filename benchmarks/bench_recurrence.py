"""Benchmark: PIMC's torch recurrence plots vs pyts ``RecurrencePlot`` on the same inputs.

``python -m benchmarks.bench_recurrence`` (defaults: 100,000 random series of length 46,
``threshold=None`` and ``'point'``). Two scenarios:

* **streaming** (how PIMC uses recurrence plots: per batch, consumed at once by an encoder):
  the float32 series go through in batches of ``batch`` (4096); pyts's
  ``RecurrencePlot().transform`` returns a new array per batch (its API), ours writes into one
  preallocated buffer reused for every batch (``out=``; allocated once before timing, its
  one-off cost is reported separately); the same trivial consumer runs on both results
  (``none``: dropped; ``sum``: ``result.sum()``).
* **whole array**: all series in one call, float32 and float64 inputs; both return a fresh
  array (~807 MiB float32 for 100,000 x 46 x 46).

Both implementations run in the same process on the same arrays, repeats interleaved (pyts,
ours, pyts, ours, ...). Reported: best wall time (other processes sharing the CPU only ever
slow a run down), median wall time, and best process CPU time (all threads: the work each
needs, nearly independent of the load). pyts is single-threaded (numpy); ours runs with
``torch.set_num_threads(threads)``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from typing import Any, Callable

import numpy as np


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds, all threads) of one call."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    del out
    return wall, cpu


def _load() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def _compare(n_series: int, repeats: int, run_pyts: Callable[[], Any],
             run_ours: Callable[[], Any]) -> dict:
    """Interleaved timings of two callables; best/median wall, best CPU, speed-ups."""
    walls: dict[str, list[float]] = {"pyts": [], "ours": []}
    cpus: dict[str, list[float]] = {"pyts": [], "ours": []}
    load = _load()
    for _ in range(repeats):  # interleaved: both see the same machine load
        for name, fn in (("pyts", run_pyts), ("ours", run_ours)):
            w, c = _timed(fn)
            walls[name].append(w)
            cpus[name].append(c)
    best = {k: min(v) for k, v in walls.items()}
    med = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: min(v) for k, v in cpus.items()}
    return {
        "pyts_s": round(best["pyts"], 4), "ours_s": round(best["ours"], 4),
        "pyts_series_per_s": round(n_series / best["pyts"]),
        "ours_series_per_s": round(n_series / best["ours"]),
        "speedup": round(best["pyts"] / best["ours"], 2),
        "median_speedup": round(med["pyts"] / med["ours"], 2),
        "pyts_cpu_s": round(cpu["pyts"], 4), "ours_cpu_s": round(cpu["ours"], 4),
        "cpu_speedup": round(cpu["pyts"] / cpu["ours"], 2),
        "load_avg": round((load + _load()) / 2, 1),
    }


_CONSUMERS: dict[str, Callable[[Any], Any]] = {
    "none": lambda r: None,
    "sum": lambda r: float(r.sum()),
}


def run(n_series: int = 100_000, length: int = 46, repeats: int = 5,
        thresholds: tuple[Any, ...] = (None, "point"), dtypes: tuple[str, ...] = ("float32", "float64"),
        threads: int = 2, seed: int = 0, batch: int = 4096,
        consumers: tuple[str, ...] = ("none", "sum"),
        scenarios: tuple[str, ...] = ("streaming", "whole")) -> dict:
    """Time pyts and ``pimc_core.series.recurrence.recurrence_plot`` on identical random inputs.

    Args:
        n_series: Number of series (per scenario and case).
        length: Series length ``T`` (plots are ``T x T``, default parameters otherwise).
        repeats: Timed runs per implementation and case (interleaved).
        thresholds: ``threshold`` values to time.
        dtypes: Input dtypes of the whole-array scenario (streaming: float32).
        threads: ``torch.set_num_threads`` for our implementation.
        seed: Seed of the standard-normal inputs.
        batch: Series per batch in the streaming scenario.
        consumers: Per-batch consumers of the streaming scenario (``none``, ``sum``).
        scenarios: ``streaming`` and/or ``whole``.

    Returns:
        ``{"n_series", "length", "threads", "repeats", "batch", "streaming": [...],
        "whole": [...], ...}``; each case has ``pyts_s``/``ours_s`` (best wall seconds),
        ``*_series_per_s``, ``speedup`` (best wall), ``median_speedup``, ``cpu_speedup``
        (best CPU time), ``max_abs_diff`` (vs pyts, on up to 2,000 series) and ``load_avg``.
    """
    import torch
    from pyts.image import RecurrencePlot

    from pimc_core.series.recurrence import recurrence_plot

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_series, length))
    check = min(n_series, 2000)
    res: dict[str, Any] = {"n_series": n_series, "length": length, "threads": threads,
                           "repeats": repeats, "batch": batch, "torch": torch.__version__,
                           "cpus": os.cpu_count(), "streaming": [], "whole": []}

    if "streaming" in scenarios:
        x = base.astype(np.float32)
        batches = [x[s:s + batch] for s in range(0, n_series, batch)]
        t_alloc = time.perf_counter()
        buf = np.empty((min(batch, n_series), length, length), np.float32)
        buf.fill(0.0)  # first touch: the buffer lives as long as the raster being processed
        res["buffer_alloc_s"] = round(time.perf_counter() - t_alloc, 4)
        for threshold in thresholds:
            rp = RecurrencePlot(threshold=threshold)
            recurrence_plot(x[:64], threshold=threshold, out=buf[:64])  # warm-up (pool, caches)
            diff = max(float(np.max(np.abs(recurrence_plot(xb, threshold=threshold, out=buf[:len(xb)])
                                           - rp.transform(xb))))
                       for xb in (x[s:min(check, s + batch)] for s in range(0, check, batch)))
            for consumer in consumers:
                consume = _CONSUMERS[consumer]

                def pyts_stream() -> None:
                    for xb in batches:
                        consume(rp.transform(xb))

                def ours_stream() -> None:
                    for xb in batches:
                        consume(recurrence_plot(xb, threshold=threshold, out=buf[:len(xb)]))

                case = _compare(n_series, repeats, pyts_stream, ours_stream)
                case.update(dtype="float32", threshold=threshold, consumer=consumer, max_abs_diff=diff)
                res["streaming"].append(case)
        floor = min(_timed(lambda: _write_batches(buf, batches))[0] for _ in range(repeats))
        res["stream_floor_s"] = round(floor, 4)
        res["stream_floor_series_per_s"] = round(n_series / floor)
        del buf

    if "whole" in scenarios:
        for dtype in dtypes:
            x = base.astype(dtype)
            for threshold in thresholds:
                rp = RecurrencePlot(threshold=threshold)
                recurrence_plot(x[:64], threshold=threshold)  # warm-up
                diff = float(np.max(np.abs(recurrence_plot(x[:check], threshold=threshold)
                                           - rp.transform(x[:check]))))
                case = _compare(n_series, repeats, lambda: rp.transform(x),
                                lambda: recurrence_plot(x, threshold=threshold))
                case.update(dtype=dtype, threshold=threshold, max_abs_diff=diff)
                res["whole"].append(case)
        floor = min(_timed(lambda: _write_output(n_series, length))[0] for _ in range(repeats))
        res["floor_s"] = round(floor, 4)
        res["floor_series_per_s"] = round(n_series / floor)
    return res


def _fill_chunked(out: Any) -> None:
    """Write 1.0 into every element of ``out`` (``(N, T, T)`` float32 tensor), chunked on the
    same worker threads and chunk sizes as ``recurrence_plot``."""
    import torch

    from pimc_core.series.rp_chunks import MIN_CHUNK_ROWS, chunk_rows
    from pimc_core.series.rp_threads import chunk_plan, run_chunks

    n, side = out.shape[0], out.shape[-1]
    rows = chunk_rows(side * side * 4 + side * 4, out.device, MIN_CHUNK_ROWS["other"])
    rows, pool, workers = chunk_plan(n, rows, out.device, side * side, 1)
    chunks = out.split(rows)
    with torch.no_grad():
        run_chunks(len(chunks), pool, workers, lambda i, _scratch: chunks[i].fill_(1.0))


def _write_output(n_series: int, length: int):
    """Allocate the float32 output and write every element once: a lower bound for any
    implementation returning a fresh array (fresh memory must be faulted in and zeroed by the
    kernel, then written)."""
    import torch

    from pimc_core.series.rp_tensors import empty_float32

    out = empty_float32((n_series, length, length), torch.device("cpu"))
    _fill_chunked(out)
    return out


def _write_batches(buf: np.ndarray, batches: list) -> None:
    """Write every element of the reused buffer once per batch: a lower bound for producing
    the streamed plots (no computation at all)."""
    import torch

    t = torch.from_numpy(buf)
    for xb in batches:
        _fill_chunked(t[:len(xb)])


def _fmt_thr(t: Any) -> str:
    return "`None`" if t is None else f"`{t!r}`"


def _rows(cases: list[dict], with_consumer: bool) -> list[str]:
    lines = []
    for c in cases:
        lines.append(
            f"| {c['dtype']} | {_fmt_thr(c['threshold'])} |"
            + (f" {c['consumer']} |" if with_consumer else "")
            + f" {c['pyts_series_per_s']:,} | {c['ours_series_per_s']:,} | **{c['speedup']:.1f}×** | "
            f"{c['median_speedup']:.1f}× | {c['cpu_speedup']:.1f}× | {c['max_abs_diff']:.1e} | "
            f"{c['load_avg']:.1f} |")
    return lines


def markdown(res: dict) -> str:
    """Markdown for one :func:`run` result: headline, then one table per scenario."""
    n, length, batch = res["n_series"], res["length"], res["batch"]
    mib = n * length ** 2 * 4 / 2 ** 20
    stream, whole = res.get("streaming", []), res.get("whole", [])
    def ratios(c: dict) -> str:
        return (f"**{c['speedup']:.1f}×** (median {c['median_speedup']:.1f}×, "
                f"CPU time {c['cpu_speedup']:.1f}×)")

    head = [f"streaming (batches of {batch:,}, reused output), threshold={_fmt_thr(c['threshold'])}: "
            + ratios(c) for c in stream if c["consumer"] == "none"]
    head += [f"whole array (one call, fresh {mib:,.0f} MiB output), threshold={_fmt_thr(c['threshold'])}: "
             + ratios(c) for c in whole if c["dtype"] == "float32"]
    lines = [
        f"Throughput of PIMC vs pyts on float32 input, {n:,} series of length {length}, by scenario:",
        "",
        *[f"- {h}" for h in head],
        "",
        f"Speed-ups are best wall time over best wall time ({res['repeats']} interleaved runs each; "
        f"median and CPU-time ratios alongside); pyts single-threaded, ours with "
        f"`torch.set_num_threads({res['threads']})` (torch {res['torch']}).",
        "",
    ]
    cols = ("pyts (series/s) | PIMC (series/s) | speed-up (best wall) | speed-up (median wall) "
            "| speed-up (CPU time) | max abs diff | load avg |")
    if stream:
        floor_ref = [c["pyts_s"] for c in stream if c["threshold"] is None]
        lines += [
            f"**Streaming** (the PIMC use): the float32 series in batches of {batch:,}; pyts "
            f"`RecurrencePlot().transform(batch)` allocates each batch's result (its API), ours writes "
            f"into one reused {min(batch, n) * length ** 2 * 4 / 2 ** 20:.0f} MiB buffer "
            f"(`recurrence_plot(batch, out=buf[:len(batch)])`); consumer `none`: result dropped, "
            f"`sum`: `result.sum()`, on both.",
            "",
            "| input | threshold | consumer | " + cols,
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *_rows(stream, True),
            "",
            f"Allocating and first-touching the reused buffer took {res['buffer_alloc_s'] * 1e3:.0f} ms, "
            f"once (not in the timings: paid once per raster). Only writing the buffer once per batch, "
            f"on the same threads, no computation, runs at {res['stream_floor_series_per_s']:,} series/s"
            + (f" ({floor_ref[0] / res['stream_floor_s']:.1f}× pyts `threshold=None`: the ceiling for "
               f"any implementation writing float32 plots)." if floor_ref else "."),
            "",
        ]
    if whole:
        floor_ref = [c["pyts_s"] for c in whole if c["dtype"] == "float32" and c["threshold"] is None]
        lines += [
            f"**Whole array**: all {n:,} series in one call, a fresh {mib:,.0f} MiB float32 output "
            f"returned by both.",
            "",
            "| input | threshold | " + cols,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *_rows(whole, False),
            "",
            f"Memory floor: allocating the {mib:,.0f} MiB float32 output and writing it once, on the "
            f"same threads, runs at {res['floor_series_per_s']:,} series/s"
            + (f" ({floor_ref[0] / res['floor_s']:.1f}× pyts float32 `threshold=None`, the best any "
               f"implementation returning a fresh array can do there)." if floor_ref else "."),
            "",
        ]
    lines.append(
        f"Speed-up (CPU time) compares best process CPU seconds (all threads): the work each needs, "
        f"nearly independent of other processes' load; wall-time speed-ups also reflect ours using "
        f"{res['threads']} threads. Load avg: 1-minute load average of this {res['cpus']}-CPU "
        f"machine during the case (above {res['cpus']} the wall times are contended and noisy).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-series", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=46)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--dtypes", default="float32,float64", help="whole-array scenario input dtypes")
    ap.add_argument("--thresholds", default="none,point", help="comma list: none, point, distance, <number>")
    ap.add_argument("--consumers", default="none,sum", help="streaming consumers: none, sum")
    ap.add_argument("--scenarios", default="streaming,whole")
    a = ap.parse_args()

    def thr(s: str) -> Any:
        return None if s == "none" else s if s in ("point", "distance") else float(s)

    res = run(a.n_series, a.length, a.repeats, tuple(thr(s) for s in a.thresholds.split(",")),
              tuple(a.dtypes.split(",")), a.threads, batch=a.batch,
              consumers=tuple(a.consumers.split(",")), scenarios=tuple(a.scenarios.split(",")))
    print(markdown(res))


if __name__ == "__main__":
    main()
