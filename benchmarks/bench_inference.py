"""Benchmark: map inference (:func:`pimc_core.maps.engine.run_inference`) — peak memory of a
4096×4096 region against a 1024×1024 one, and pixels per second with the time per stage.

``python -m benchmarks.bench_inference`` (defaults: 1024² and 4096² synthetic stacks of 12
dates, blocks of 256 px, batches of 4096 pixels, products classes + confidence + forecast,
model ``auto``). Small check: ``python -m benchmarks.bench_inference --size 256 --big 1024
--dates 6``.

* **Stacks**: synthetic Sentinel-2-like (:func:`pimc_core.datasets.synthetic.make_synthetic`, seed 1,
  the stacks :mod:`benchmarks.bench_datapath` uses), generated once under ``bench_out/``. 12
  dates keep the 4096² stack to 1.5 GB and ~2-5 minutes of generation (2 cores); memory per window
  grows with the date count, so the ratio is measured at one date count for both sizes.
* **Memory**: each size runs in a fresh child process; its peak RSS is VmHWM (``/proc/self/status``) of that
  process (imports, model and run), also read before the run (after the imports, loading the
  model and opening the stack), after the first window and after the last one (before the
  COG conversion): growth while streaming and growth in the conversion show apart. Target: peak(4096²) / peak(1024²) ≤ 1.5.
* **Throughput**: of the 1024² run: pixels of the region per second of ``run_inference``
  (model loading excluded, reported apart), with :attr:`InferenceResult.stages`: reading,
  indices + gap filling, predict (for PIMC: recurrence plots + encoders + heads), windowed
  writes, finalize (COG conversion with overviews).
* **Model** (``model=``): a ``.pimc`` path (a PIMC model from ``pimc fit``); ``fit``: fit a
  small PIMC model first with :func:`pimc_core.fit.fit` (the workflow of ``pimc fit``) on a
  256² stack with the same date count — default architecture, shortened training: speed and
  memory depend on the architecture, not on how long it trained — cached in
  ``bench_out/models/`` until the model code changes; ``builtin:nearest-centroid``: the numpy
  baseline, **not PIMC** (the markdown says so in bold); ``auto``: ``fit``, or the baseline
  when fitting is not possible (the reason is reported).
* **Time guard**: a model too slow to map every pixel of the big region within
  ``max_big_seconds`` (estimated from the small run) maps a *sparse* big region: the whole
  4096² raster (every window read, 4096² outputs written and converted), but a polygon of one
  centred square per window, sized so that the model predicts as many pixels as in the small
  run (in as many batches of the same size when both sides are multiples of the block). The
  markdown says which was done.
* **Device**: whatever the model picks (``model.device`` for PIMC; numpy = CPU); the
  markdown records it and whether CUDA was available.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
BASELINE = "builtin:nearest-centroid"
TARGET_RATIO = 1.5
_STAGE_LABELS = {
    "read": "read (reflectance)",
    "indices": "indices + gap filling",
    "predict": "predict",
    "write": "windowed writes",
    "finalize": "finalize (COG conversion, overviews)",
    "other": "other (setup, window bookkeeping)",
}


def _peak_rss_mb() -> float:
    r = peak_rss_mb() * 1024
    return r / 1024 / 1024 if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


_MEMORY_ENV = ("GDAL_CACHEMAX", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
               "OMP_NUM_THREADS", "PYTORCH_NO_CUDA_MEMORY_CACHING")


def _gdal_cachemax() -> str:
    """GDAL's block cache limit: GDAL_CACHEMAX when set, else GDAL's default, 5 % of the RAM."""
    if os.environ.get("GDAL_CACHEMAX"):
        return f"GDAL_CACHEMAX={os.environ['GDAL_CACHEMAX']}"
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        return f"default, 5 % of the RAM = {kb * 0.05 / 1024:.0f} MB"
    except (OSError, StopIteration, ValueError):
        return "default, 5 % of the RAM"


def _ensure_stack(root: Path, size: int, n_dates: int) -> tuple[Path, float]:
    """The synthetic stack (the same as bench_datapath's) and the seconds spent generating it."""
    from benchmarks.bench_datapath import ensure_stack

    t0 = time.perf_counter()
    manifest = ensure_stack(root, size, n_dates)
    return manifest.resolve(), time.perf_counter() - t0


def _child(args: list[str], what: str) -> dict:
    """Run this module in a fresh process; its last stdout line is JSON."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_inference", *args],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ============================================================================ child: measure
def _sparse_region(grid, block: int, side: int):
    """The whole raster as region window, inside = one ``side``² square centred in every
    ``block``-aligned window (pixel-aligned, so exactly ``side``² pixel centres per window)."""
    from pimc_core.io.regions import Region

    polys = []
    for win in grid.windows(block):
        s = min(side, int(win.width), int(win.height))
        c0 = int(win.col_off) + (int(win.width) - s) // 2
        r0 = int(win.row_off) + (int(win.height) - s) // 2
        t = grid.transform
        ring = [t * (c0, r0), t * (c0 + s, r0), t * (c0 + s, r0 + s), t * (c0, r0 + s), t * (c0, r0)]
        polys.append([[list(map(float, p)) for p in ring]])
    geom = {"type": "MultiPolygon", "coordinates": polys}
    return Region(grid, grid.full_window(), geometries=(geom,),
                  description=f"whole raster, one {side}x{side} square per {block}x{block} window")


def measure(manifest: Path, model_ref: str, *, block: int, batch_size: int, products: list[str],
            out_dir: Path, threads: int, sparse_side: int = 0) -> dict:
    """Map the whole stack (or a sparse region of it) with ``run_inference`` in this process."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from pimc_core.cli.maps import model_reference
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.engine import load_model, model_products, run_inference

    ts = open_series(manifest)
    t0 = time.perf_counter()
    model = load_model(model_reference(model_ref))
    load_s = time.perf_counter() - t0
    can = set(model_products(model))
    prods = [p for p in products if p in can]
    region = None
    if sparse_side:
        region = _sparse_region(ts.grid, block, sparse_side)
    rss_setup = _peak_rss_mb()
    peaks: list[float] = []  # after each window (the last: before the COG conversion)

    def progress(fraction: float) -> None:
        if fraction > 0:
            peaks.append(_peak_rss_mb())

    res = run_inference(ts, model, region, out_dir, products=prods, block=block, batch_size=batch_size,
                        progress=progress)
    peak = _peak_rss_mb()
    dev = getattr(model, "device", None)
    cuda = torch.cuda.is_available()
    stages = {k: float(v) for k, v in res.stages.items()}
    stages["other"] = max(0.0, res.seconds - sum(stages.values()))
    return {
        "width": ts.grid.width, "height": ts.grid.height, "dates": len(ts), "bands": list(ts.band_names),
        "pixels": res.pixels, "predicted": res.predicted, "windows": res.windows,
        "region": region.description if region is not None else "whole raster",
        "seconds": round(res.seconds, 3), "stages": {k: round(v, 3) for k, v in stages.items()},
        "model_load_seconds": round(load_s, 3),
        "peak_rss_mb": round(peak, 1), "rss_after_setup_mb": round(rss_setup, 1),
        "peak_rss_first_window_mb": round(peaks[0] if peaks else rss_setup, 1),
        "peak_rss_streaming_mb": round(peaks[-1] if peaks else rss_setup, 1),
        "patch_size": int(getattr(model, "patch_size", 0) or 0),
        "products": prods, "model_type": type(model).__name__, "model_repr": repr(model)[:300],
        "device": str(dev) if dev is not None else "cpu (numpy)",
        "cuda_available": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "torch_threads": torch.get_num_threads(),
        "gdal_cachemax": _gdal_cachemax(),
        "memory_env": {k: os.environ[k] for k in _MEMORY_ENV if k in os.environ},
    }


# ============================================================================ child: fit
_FIT_CONFIG: dict[str, Any] = {
    # default architecture (model: {}), data sampling and training shortened: the speed and memory
    # of inference depend on the architecture, not on how long it was trained
    "data": {"pretrain_samples": 4096, "per_class": 300},
    "pretrain": {"steps": 30, "warmup_steps": 3, "checkpoint_every": 0},
    "finetune": {"max_steps": 40, "warmup_steps": 4},
    "forecast": {"finetune": {"epochs": 2}},
}


def fit_model(manifest: Path, out: Path, threads: int) -> dict:
    """Fit a small PIMC model with :func:`pimc_core.fit.fit` (what ``pimc fit`` runs)."""
    from pimc_core.fit import fit

    cfg = json.loads(json.dumps(_FIT_CONFIG))
    if threads:
        cfg["threads"] = threads
    folder = manifest.parent
    t0 = time.perf_counter()
    res = fit(manifest, folder / "labels.tif", out, classes=folder / "classes.json", config=cfg, progress=False)
    return {"path": str(res.path), "seconds": round(time.perf_counter() - t0, 1), "summary": res.summary()}


def _model_code_mtime() -> float:
    core = REPO / "pimc_core"
    files = [core / n for n in ("fit.py", "pimc_model.py", "pixel_model.py", "pretrain.py", "finetune.py")]
    files += sorted((core / "models").glob("*.py"))
    return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)


def _fitted_model(root: Path, fit_size: int, n_dates: int, threads: int) -> dict:
    """A cached small fitted model (refitted when the model code is newer than the file)."""
    manifest, gen_s = _ensure_stack(root, fit_size, n_dates)
    path = (root / "models" / f"pimc_fit_{fit_size}_{n_dates}.pimc").resolve()
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists() and path.stat().st_mtime > _model_code_mtime():
        info = json.loads(info_path.read_text())
        info["cached"] = True
        return info
    path.parent.mkdir(parents=True, exist_ok=True)
    info = _child(["--fit", str(path), "--manifest", str(manifest), "--threads", str(threads)],
                  f"pimc fit on {manifest.parent.name}")
    info.update({"fit_stack": f"{fit_size}x{fit_size} px, {n_dates} dates", "fit_config": _FIT_CONFIG})
    info_path.write_text(json.dumps(info, indent=1))
    info["cached"] = False
    info["stack_generate_seconds"] = round(gen_s, 1)
    return info


def _resolve_model(model: str, root: Path, fit_size: int, n_dates: int, threads: int) -> dict:
    """``{"ref": what the child loads, "kind": pimc-file | pimc-fit | baseline, ...}``."""
    if model in ("auto", "fit"):
        try:
            info = _fitted_model(root, fit_size, n_dates, threads)
            return {"ref": info["path"], "kind": "pimc-fit", "fit": info}
        except Exception as e:  # noqa: BLE001 - auto falls back, loudly
            if model == "fit":
                raise
            why = str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__
            return {"ref": BASELINE, "kind": "baseline", "fallback_reason": f"fitting a PIMC model failed: {why}"}
    if model.startswith("builtin:"):
        return {"ref": model, "kind": "baseline"}
    path = Path(model).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found")
    return {"ref": str(path), "kind": "pimc-file"}


# ============================================================================ parent
def run(size: int = 1024, big: int = 4096, n_dates: int = 12, block: int = 256, batch_size: int = 4096,
        model: str = "auto", products: tuple[str, ...] = ("classes", "confidence", "forecast"),
        big_coverage: str = "auto", max_big_seconds: float = 600.0, threads: int = 0, fit_size: int = 256,
        root: Path = Path("bench_out"), keep_maps: bool = False) -> dict:
    """Generate the stacks (once), resolve the model, then measure each size in a child process.

    Args:
        size, big: sides of the small and the big region (each the whole of its own stack).
        n_dates: dates of every stack (the same for both sizes and for the fitted model).
        block, batch_size: ``run_inference`` window side and pixels per ``predict`` call.
        model: ``auto``, ``fit``, a ``.pimc`` path or ``builtin:nearest-centroid``.
        products: asked of ``run_inference`` (restricted to what the model gives).
        big_coverage: ``full`` (predict every pixel of the big region), ``sparse`` (as many
            pixels as the small run, see the module docstring) or ``auto`` (``full`` when the
            estimate from the small run is within ``max_big_seconds``).
        threads: ``torch.set_num_threads`` in the children (0: torch's default).
        fit_size: side of the stack the ``fit`` model is fitted on.
        keep_maps: keep the output maps under ``root/inference_maps`` (default: removed).
    """
    if big_coverage not in ("auto", "full", "sparse"):
        raise ValueError(f"big_coverage must be auto, full or sparse (got {big_coverage!r})")
    root = Path(root)
    t_start = time.perf_counter()
    small_manifest, gen_small = _ensure_stack(root, size, n_dates)
    big_manifest, gen_big = _ensure_stack(root, big, n_dates)
    mod = _resolve_model(str(model), root, fit_size, n_dates, threads)
    maps = (root / "inference_maps").resolve()

    def one(manifest: Path, side: int, sparse_side: int = 0) -> dict:
        out = maps / f"{side}"
        shutil.rmtree(out, ignore_errors=True)
        args = ["--measure", str(manifest), "--model", mod["ref"], "--block", str(block), "--batch", str(batch_size),
                "--products", ",".join(products), "--out", str(out), "--threads", str(threads)]
        if sparse_side:
            args += ["--sparse-side", str(sparse_side)]
        try:
            return _child(args, f"inference on {manifest.parent.name}")
        finally:
            if not keep_maps:
                shutil.rmtree(out, ignore_errors=True)

    small = one(small_manifest, size)
    rate = small["pixels"] / small["seconds"] if small["seconds"] > 0 else math.inf
    estimate = big * big / rate
    coverage = big_coverage
    if coverage == "auto":
        coverage = "full" if estimate <= max_big_seconds else "sparse"
    side = 0
    if coverage == "sparse":
        side = max(1, min(block, round(block * size / big)))
    big_res = one(big_manifest, big, side)
    if not keep_maps:
        try:
            maps.rmdir()
        except OSError:
            pass
    return {
        "size": size, "big": big, "dates": n_dates, "block": block, "batch_size": batch_size,
        "model": mod, "small": small, "large": big_res,
        "big_coverage": coverage, "big_estimate_full_seconds": round(estimate, 1),
        "max_big_seconds": max_big_seconds, "sparse_side": side,
        "ratio": round(big_res["peak_rss_mb"] / small["peak_rss_mb"], 3), "target_ratio": TARGET_RATIO,
        "generate_seconds_if_new": {str(size): round(gen_small, 1), str(big): round(gen_big, 1)},
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }


# ============================================================================ markdown
def _model_text(res: dict) -> list[str]:
    mod, small = res["model"], res["small"]
    if mod["kind"] == "baseline":
        lines = [f"**Model: `{mod['ref']}` — the numpy nearest-centroid baseline, NOT PIMC.** The timings below "
                 f"are the engine's (reading, indices, gap filling, writing) around a trivial model; they are "
                 f"not PIMC's speed."]
        if mod.get("fallback_reason"):
            lines.append(f"(Asked for a PIMC model; {mod['fallback_reason']}.)")
        return lines
    if mod["kind"] == "pimc-fit":
        f = mod["fit"]
        return [f"**Model: PIMC** (`{small['model_type']}`), fitted for this benchmark by `pimc fit` "
                f"(`pimc_core.fit.fit`) on a {f.get('fit_stack', '?')} synthetic stack with its default "
                f"architecture and shortened training (speed and memory depend on the architecture only): "
                f"`{Path(mod['ref']).name}`{' (cached)' if f.get('cached') else ''}. {f.get('summary', '')}",
                "", f"`{small['model_repr']}`"]
    return [f"**Model: PIMC** (`{small['model_type']}`) from `{mod['ref']}`.", "", f"`{small['model_repr']}`"]


def markdown(res: dict) -> str:
    """Markdown: which model and device, the memory table and ratio, throughput and stage shares."""
    s, b = res["small"], res["large"]
    n, m = res["size"], res["big"]
    dev = s["device"]
    cuda = f"CUDA available ({s['gpu']})" if s["cuda_available"] else "no CUDA device"
    dev_note = ""
    if s["cuda_available"] and not dev.startswith("cuda"):
        dev_note = " — the model chose the CPU although a GPU is available"
    ratio_ok = res["ratio"] <= res["target_ratio"]
    predict_label = ("predict (recurrence plots + encoders + heads)" if res["model"]["kind"] != "baseline"
                     else "predict (baseline model)")
    labels = dict(_STAGE_LABELS, predict=predict_label)
    if s.get("patch_size"):
        labels["read"] = f"read (reflectance + the median composite its {s['patch_size']}×{s['patch_size']} patches come from)"

    def row(side: int, r: dict) -> str:
        return (f"| {side}×{side} ({r['region']}) | {r['pixels']:,} | {r['predicted']:,} | {r['windows']} | "
                f"**{r['peak_rss_mb']:.0f}** | {r['rss_after_setup_mb']:.0f} | {r['peak_rss_first_window_mb']:.0f} | "
                f"{r['peak_rss_streaming_mb']:.0f} | {r['seconds']:.1f} |")

    lines = [
        *_model_text(res),
        "",
        f"Device: **{dev}** ({cuda}{dev_note}); torch threads {s['torch_threads']}.",
        "",
        f"Stacks: synthetic Sentinel-2-like, {res['dates']} dates, 5 bands + SCL (uint16 deflate GeoTIFFs, "
        f"`bench_out/synthetic_<side>_{res['dates']}`); blocks of {res['block']}×{res['block']} px, batches of "
        f"{res['batch_size']} pixels; products {', '.join(s['products'])} (COGs). Each size runs in its own "
        f"process.",
        "",
        f"### Peak memory: {m}×{m} vs {n}×{n}",
        "",
        "| region | pixels | predicted | windows | peak RSS (MB) | after imports + model | "
        "after the 1st window | after the last window (before COG conversion) | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        row(n, s),
        row(m, b),
        "",
        f"Ratio of the peaks {m}²/{n}²: **{res['ratio']:.2f}×** (target ≤ {res['target_ratio']}×: "
        f"**{'met' if ratio_ok else 'NOT met'}**) for {m * m / (n * n):.0f}× the pixels. Peaks are "
        f"VmHWM of the process so far (MB; not `ru_maxrss`, which a child inherits from its parent). "
        f"GDAL block cache: {s['gdal_cachemax']}."
        + (f" Memory settings in the environment: {', '.join(f'{k}={v}' for k, v in s['memory_env'].items())}."
           if s.get("memory_env") else ""),
    ]
    if res["big_coverage"] == "sparse":
        side = res["sparse_side"]
        lines += [
            "",
            f"The {m}² run is **sparse**: mapping every pixel would take ~{res['big_estimate_full_seconds'] / 60:.0f} "
            f"min at the {n}² run's speed (limit {res['max_big_seconds']:.0f} s), so its region is the whole "
            f"{m}×{m} raster (every window read, {m}×{m} maps written and converted) restricted to one "
            f"{side}×{side} square per {res['block']}×{res['block']} window: the model predicted "
            f"{b['predicted']:,} pixels (the {n}² run: {s['predicted']:,}). Memory that grows with the number "
            f"of *predicted* pixels is not exercised at {m}² by this run (it is by a full run with the baseline: "
            f"`--model {BASELINE}`).",
        ]
    st = s["stages"]
    total = s["seconds"]
    lines += [
        "",
        f"### Throughput, {n}×{n}",
        "",
        f"**{s['pixels'] / total:,.0f} pixels/s** ({s['predicted'] / total:,.0f} predicted pixels/s; "
        f"{s['pixels']:,} pixels in {total:.1f} s; loading the model {s['model_load_seconds']:.2f} s, not included).",
        "",
        "| stage | seconds | share |",
        "|---|---:|---:|",
        *(f"| {labels.get(k, k)} | {v:.2f} | {100 * v / total:.0f} % |" for k, v in st.items()),
        f"| total | {total:.2f} | 100 % |",
    ]
    if res["big_coverage"] == "sparse":
        lines += ["", f"The sparse {m}² run: {b['seconds']:.1f} s, of which predict {b['stages']['predict']:.1f} s "
                      f"and reading {b['stages']['read']:.1f} s (every window of the {m}² stack is read)."]
    else:
        lines += ["", f"The {m}² run: **{b['pixels'] / b['seconds']:,.0f} pixels/s** ({b['pixels']:,} pixels in "
                      f"{b['seconds']:.1f} s)."]
    return "\n".join(lines)


# ============================================================================ command line
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024, help="side of the small region (default 1024)")
    ap.add_argument("--big", type=int, default=4096, help="side of the big region (default 4096)")
    ap.add_argument("--dates", type=int, default=12, help="dates of every stack (default 12)")
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--model", default="auto", help=f"auto | fit | MODEL.pimc | {BASELINE}")
    ap.add_argument("--products", default="classes,confidence,forecast")
    ap.add_argument("--big-coverage", default="auto", choices=("auto", "full", "sparse"))
    ap.add_argument("--max-big-seconds", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--fit-size", type=int, default=256)
    ap.add_argument("--keep-maps", action="store_true")
    ap.add_argument("--json", help="also write the result as JSON here")
    # internal: child processes
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--sparse-side", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--fit", help=argparse.SUPPRESS)
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(Path(a.measure), a.model, block=a.block, batch_size=a.batch,
                                 products=a.products.split(","), out_dir=Path(a.out), threads=a.threads,
                                 sparse_side=a.sparse_side)))
        return
    if a.fit:
        print(json.dumps(fit_model(Path(a.manifest), Path(a.fit), a.threads)))
        return
    res = run(a.size, a.big, a.dates, a.block, a.batch, a.model, tuple(a.products.split(",")), a.big_coverage,
              a.max_big_seconds, a.threads, a.fit_size, keep_maps=a.keep_maps)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    print(markdown(res))


if __name__ == "__main__":
    main()
