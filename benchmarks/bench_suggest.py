"""Benchmark "the loop pays": do the points ``pimc suggest`` proposes improve the map more than as
many random pixels would?

``python -m benchmarks.bench_suggest [--seeds 1 2 3 4 5] [--size 112] [--dates 24] [--n 200]``

For each seed, on a generated stack (:func:`pimc_core.datasets.synthetic.make_synthetic`;
``labels_sparse.tif`` labels a few fields per class, ``labels.tif`` is the truth):

1. ``fit`` on the sparse labels (a shortened configuration, :data:`FAST`), ``classify`` → the
   uncertainty map;
2. (a) ``suggest`` N points with that model, never on a pixel of ``labels_sparse.tif``
   (``exclude``, what ``pimc suggest --labels`` does), (b) N random pixels with a prediction (the
   same seed); both labelled from ``labels.tif`` (what the analyst would do) and written as
   GeoPackages with the ``class`` field filled in;
3. ``fit`` again on ``labels_sparse.tif`` + each point file (``--labels`` twice), ``classify``;
4. score the three maps on the same withheld pixels: labelled in ``labels.tif``, not in
   ``labels_sparse.tif`` and not among either set of added points
   (:func:`pimc_core.demo.heldout_accuracy`).

Also reported: the share of suggested (and random) points whose uncertainty is above the median
of the first map. The library functions are called in this process (the same functions the
commands call); wall time per seed is printed.

``suggest`` is given the sparse labels (``exclude``), so no suggested point falls on a pixel
``labels_sparse.tif`` already labels. docs/BENCHMARKS.md ("Where to label next") gives the runs
and the commit each was measured at; the oldest table there predates the exclusion.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: The shortened fit (``--set`` overrides): a 2-core CPU fits a 112² stack in about a minute.
FAST = ("pretrain.steps=100", "data.pretrain_samples=4096", "forecast.enabled=false")


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1)


def _write_like(path: Path, like: Path, data: np.ndarray) -> None:
    import rasterio

    with rasterio.open(like) as src:
        prof = src.profile
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data.astype(prof["dtype"]), 1)


def _label_points(path: Path, truth: np.ndarray, transform) -> int:
    """Fill the ``class`` field of a point file from the truth; returns the points labelled."""
    from osgeo import ogr

    ds = ogr.Open(str(path), 1)
    lyr = ds.GetLayer(0)
    n = 0
    for f in lyr:
        g = f.GetGeometryRef()
        col, row = (int(v) for v in ~transform @ (g.GetX(), g.GetY()))
        if truth[row, col] > 0:
            f.SetField("class", int(truth[row, col]))
            n += 1
        lyr.SetFeature(f)
    ds = None  # noqa: F841 — closes the file
    return n


def _map(ts, model: Path, out: Path) -> Path:
    from pimc_core.maps.engine import run_inference

    run_inference(ts, str(model), None, out, products=("classes", "uncertainty"))
    return out


def one_seed(seed: int, size: int, n_dates: int, n: int, root: Path, spacing: float = 0.5,
             coverage: bool = False) -> dict:
    """The three maps of one seed (four with ``coverage``) and their scores."""
    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.demo import heldout_accuracy
    from pimc_core.fit import fit, load_fit_config
    from pimc_core.io.timeseries import open_series
    from pimc_core.io.vector import write_points
    from pimc_core.maps.suggest import suggest_samples

    t0 = time.perf_counter()
    d = root / f"seed{seed}"
    syn = make_synthetic(d / "syn", size=size, n_dates=n_dates, seed=seed)
    sd = syn.outdir
    ts = open_series(syn.manifest)
    truth, sparse, fields = _read(sd / "labels.tif"), _read(sd / "labels_sparse.tif"), _read(sd / "fields.tif")
    cfg = load_fit_config(None, [*FAST, f"seed={seed}"])

    def fit_map(labels, name: str, **kw) -> Path:
        model = d / f"{name}.pimc"
        fit(ts, labels, model, classes=sd / "classes.json", config=cfg, progress=False, **kw)
        return _map(ts, model, d / f"map_{name}")

    map0 = fit_map(sd / "labels_sparse.tif", "sparse")
    unc0 = _read(map0 / "uncertainty.tif")
    median = float(np.nanmedian(unc0))

    sug = suggest_samples(ts, str(d / "sparse.pimc"), None, d / "suggested.gpkg", n, seed=seed, spacing=spacing,
                          exclude=sparse > 0, strategy="uncertainty")
    sug_labelled = _label_points(d / "suggested.gpkg", truth, ts.grid.transform)

    rng = np.random.default_rng(seed)
    valid = np.flatnonzero(np.isfinite(unc0).ravel())
    pick = np.sort(rng.choice(valid, n, replace=False))
    rr, rc = np.divmod(pick, unc0.shape[1])
    tr = ts.grid.transform
    xy = np.column_stack([tr.c + tr.a * (rc + 0.5), tr.f + tr.e * (rr + 0.5)])
    write_points(d / "random.gpkg", xy, ts.grid.crs, [("class", "int", [int(truth[r, c]) or None for r, c in zip(rr, rc)])])
    rnd_labelled = int((truth[rr, rc] > 0).sum())

    map_s = fit_map([sd / "labels_sparse.tif", d / "suggested.gpkg"], "suggested", class_field="class")
    map_r = fit_map([sd / "labels_sparse.tif", d / "random.gpkg"], "random", class_field="class")
    maps = [("sparse", map0), ("suggested", map_s), ("random", map_r)]
    seen = sparse.copy()
    seen[sug.rows, sug.cols] = np.maximum(seen[sug.rows, sug.cols], 1)
    seen[rr, rc] = np.maximum(seen[rr, rc], 1)
    extra = {}
    if coverage:
        cov = suggest_samples(ts, str(d / "sparse.pimc"), None, d / "coverage.gpkg", n, seed=seed, exclude=sparse > 0,
                              strategy="coverage")
        _label_points(d / "coverage.gpkg", truth, ts.grid.transform)
        maps.append(("coverage", fit_map([sd / "labels_sparse.tif", d / "coverage.gpkg"], "coverage", class_field="class")))
        seen[cov.rows, cov.cols] = np.maximum(seen[cov.rows, cov.cols], 1)
        extra = {"above_cov": float((cov.uncertainty > median).mean()),
                 "fields": {k: int(np.unique(fields[r, c]).size) for k, (r, c) in
                            (("suggested", (sug.rows, sug.cols)), ("random", (rr, rc)), ("coverage", (cov.rows, cov.cols)))}}
    _write_like(d / "seen.tif", sd / "labels_sparse.tif", seen)
    score = {k: heldout_accuracy(m / "classes.tif", sd / "labels.tif", d / "seen.tif") for k, m in maps}
    return {**extra,
        "seed": seed, "score": score, "median": median,
        "above_sug": float((sug.uncertainty > median).mean()), "above_rnd": float((unc0[rr, rc] > median).mean()),
        "classes_sug": int(len(set(sug.predicted.tolist()))), "labelled": (sug_labelled, rnd_labelled),
        "seconds": time.perf_counter() - t0,
    }


def run(seeds=(1, 2, 3, 4, 5), size: int = 112, n_dates: int = 24, n: int = 200, spacing: float = 0.5,
        root: Path = Path("bench_out/suggest"), coverage: bool = False) -> dict:
    rows = []
    for s in seeds:
        r = one_seed(s, size, n_dates, n, REPO / root, spacing, coverage)
        sc = r["score"]
        print(f"seed {s}: " + ", ".join(f"{k} {v['oa']:.4f}" for k, v in sc.items())
              + (f"; fields hit {r['fields']}" if "fields" in r else "") + f"; {r['seconds']:.0f} s", flush=True)
        rows.append(r)
    return {"size": size, "n_dates": n_dates, "n": n, "spacing": spacing, "rows": rows, "coverage": coverage}


def _ms(v: list[float], fmt: str = "{:.4f}") -> str:
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{fmt.format(statistics.mean(v))} ± {fmt.replace('+', '').format(sd)}"


def markdown(res: dict) -> str:
    rows = res["rows"]
    lines = [
        f"Synthetic stacks of {res['size']}×{res['size']} px and {res['n_dates']} dates, one per seed; fit "
        f"({', '.join(FAST)}) on `labels_sparse.tif`, then {res['n']} points from `suggest` (spacing "
        f"{res['spacing']}) or {res['n']} random pixels with a prediction, labelled from `labels.tif`, and a refit "
        "on both label files. Overall accuracy (OA) and macro-F1 on the withheld pixels (labelled in "
        "`labels.tif`, not in `labels_sparse.tif`, not among either set of points); \"> median\": share of the "
        "points whose uncertainty is above the median of the first map.",
        "",
        "| seed | withheld px | OA sparse | OA + suggested | OA + random | Δ OA (sugg. − rand.) | "
        "F1 + suggested | F1 + random | > median (sugg. / rand.) | classes of the suggested points | s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        s = r["score"]
        lines.append(
            f"| {r['seed']} | {s['sparse']['pixels']} | {s['sparse']['oa']:.4f} | {s['suggested']['oa']:.4f} | "
            f"{s['random']['oa']:.4f} | {s['suggested']['oa'] - s['random']['oa']:+.4f} | "
            f"{s['suggested']['macro_f1']:.4f} | {s['random']['macro_f1']:.4f} | "
            f"{r['above_sug']:.2f} / {r['above_rnd']:.2f} | {r['classes_sug']} | {r['seconds']:.0f} |")
    col = {k: [r["score"][k]["oa"] for r in rows] for k in ("sparse", "suggested", "random")}
    f1 = {k: [r["score"][k]["macro_f1"] for r in rows] for k in ("suggested", "random")}
    delta = [a - b for a, b in zip(col["suggested"], col["random"])]
    lines.append(
        f"| mean ± sd | | {_ms(col['sparse'])} | {_ms(col['suggested'])} | {_ms(col['random'])} | "
        f"{_ms(delta, '{:+.4f}')} | {_ms(f1['suggested'])} | {_ms(f1['random'])} | "
        f"{_ms([r['above_sug'] for r in rows], '{:.2f}')} / {_ms([r['above_rnd'] for r in rows], '{:.2f}')} | | |")
    lines += ["", f"Suggested points ahead of random ones on {sum(x > 0 for x in delta)} of {len(delta)} seeds "
              f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()})."]
    if res.get("coverage"):
        lines += ["", "By coverage (`suggest --strategy coverage`), the same seeds and withheld pixels; fields: distinct "
                  "fields of `fields.tif` the points fall in (uncertainty / random / coverage).", "",
                  "| seed | OA + coverage | OA + random | Δ OA (cov. − rand.) | Δ OA (cov. − uncert.) | F1 + coverage | "
                  "> median | fields |", "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            s = r["score"]
            f = r["fields"]
            lines.append(
                f"| {r['seed']} | {s['coverage']['oa']:.4f} | {s['random']['oa']:.4f} | "
                f"{s['coverage']['oa'] - s['random']['oa']:+.4f} | {s['coverage']['oa'] - s['suggested']['oa']:+.4f} | "
                f"{s['coverage']['macro_f1']:.4f} | {r['above_cov']:.2f} | {f['suggested']} / {f['random']} / {f['coverage']} |")
        cov = [r["score"]["coverage"]["oa"] for r in rows]
        d_r = [a - b for a, b in zip(cov, col["random"])]
        d_u = [a - b for a, b in zip(cov, col["suggested"])]
        lines.append(f"| mean ± sd | {_ms(cov)} | {_ms(col['random'])} | {_ms(d_r, '{:+.4f}')} | {_ms(d_u, '{:+.4f}')} | "
                     f"{_ms([r['score']['coverage']['macro_f1'] for r in rows])} | "
                     f"{_ms([r['above_cov'] for r in rows], '{:.2f}')} | |")
        lines += ["", f"Coverage ahead of random pixels on {sum(x > 0 for x in d_r)} of {len(d_r)} seeds, of the "
                  f"uncertainty heuristic on {sum(x > 0 for x in d_u)}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--dates", type=int, default=24)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--spacing", type=float, default=0.5)
    ap.add_argument("--coverage", action="store_true",
                    help="also suggest by coverage (suggest --strategy coverage) and refit on those points")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = ap.parse_args()
    res = run(tuple(a.seeds), a.size, a.dates, a.n, a.spacing, coverage=a.coverage)
    if a.json:
        import json

        Path(a.json).write_text(json.dumps(res, indent=1, default=float))
    print(markdown(res))


if __name__ == "__main__":
    main()
