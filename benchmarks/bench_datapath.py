"""Benchmark: read a 1024×1024, 36-date stack, compute NDVI/EVI/SAVI and gap-fill, block by block.

Run in a fresh process so that peak RSS is the data path's own:
``python -m benchmarks.bench_datapath --size 1024 --dates 36``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import peak_rss_mb


def ensure_stack(root: Path, size: int, n_dates: int, seed: int = 1) -> Path:
    """Write (once) a synthetic stack of the given size; returns its manifest."""
    from pimc_core.datasets.synthetic import make_synthetic

    folder = root / f"synthetic_{size}_{n_dates}"
    manifest = folder / "manifest.yaml"
    if not manifest.exists():
        folder.mkdir(parents=True, exist_ok=True)
        make_synthetic(folder, size=size, n_dates=n_dates, seed=seed)
    return manifest


def measure(manifest: Path, block: int) -> dict:
    """Stream the stack in blocks; time each stage. Returns seconds per stage and peak RSS."""
    import torch

    from pimc_core.io.timeseries import open_series
    from pimc_core.series.gapfill import fill_gaps
    from pimc_core.series.indices import compute_indices

    torch.set_num_threads(2)
    t_open = time.perf_counter()
    ts = open_series(manifest)
    times = {"open": time.perf_counter() - t_open, "read": 0.0, "indices": 0.0, "gapfill": 0.0}
    n_ok = 0
    for win in ts.grid.windows(block):
        t0 = time.perf_counter()
        obs = ts.read(win)
        t1 = time.perf_counter()
        idx = compute_indices(obs.bands(), ("ndvi", "evi", "savi"), invalid=~obs.valid)  # (C,T,h,w)
        t2 = time.perf_counter()
        res = fill_gaps(np.moveaxis(idx, 1, -1), list(obs.dates), min_valid=3)
        t3 = time.perf_counter()
        n_ok += int(res.ok.all(axis=0).sum())
        times["read"] += t1 - t0
        times["indices"] += t2 - t1
        times["gapfill"] += t3 - t2
    times["total"] = sum(times.values())
    peak_mb = peak_rss_mb()
    return {
        "pixels": ts.grid.width * ts.grid.height, "dates": len(ts), "block": block,
        "seconds": {k: round(v, 2) for k, v in times.items()}, "peak_rss_mb": round(peak_mb, 1),
        "pixels_ok": n_ok,
    }


def run(size: int = 1024, n_dates: int = 36, block: int = 256, root: Path = Path("bench_out")) -> dict:
    """Generate the stack if needed, then measure in a child process (clean peak RSS)."""
    t0 = time.perf_counter()
    manifest = ensure_stack(root, size, n_dates)
    gen_s = time.perf_counter() - t0
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_datapath", "--measure", str(manifest), "--block", str(block)],
        capture_output=True, text=True, check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["generate_seconds_if_new"] = round(gen_s, 1)
    return res


def markdown(res: dict) -> str:
    """A markdown table of one result."""
    s = res["seconds"]
    return "\n".join([
        f"Stack: {int(res['pixels'] ** 0.5)}×{int(res['pixels'] ** 0.5)} px, {res['dates']} dates, 5 bands + SCL "
        f"(synthetic Sentinel-2-like, uint16 deflate GeoTIFFs), blocks of {res['block']}×{res['block']} px.",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *(f"| {k} | {v:.2f} |" for k, v in s.items()),
        "",
        f"Peak RSS of the process: **{res['peak_rss_mb']:.0f} MB**; "
        f"throughput {res['pixels'] / s['total'] / 1e3:.0f} k pixels/s (read + 3 indices + gap filling).",
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--measure", help="manifest to measure (internal: child process)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--dates", type=int, default=36)
    ap.add_argument("--block", type=int, default=256)
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(Path(a.measure), a.block)))
        return
    res = run(a.size, a.dates, a.block)
    print(markdown(res))


if __name__ == "__main__":
    main()
