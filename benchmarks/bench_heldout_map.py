"""Benchmark: the analyst's workflow on held-out fields — ``pimc fit`` then ``pimc classify`` on
a synthetic stack, scored on the fields whose labels were withheld, next to a RandomForest on the
gap-filled index series of the same labelled pixels.

``python -m benchmarks.bench_heldout_map [--seeds 11 12 13] [--size 256] [--dates 30]``

For each seed: ``pimc sample-data DIR --kind synthetic --size 256 --dates 30 --seed S`` (other
fields, phenology jitter and clouds for every seed; ``labels_sparse.tif`` labels a few fields
per class), ``pimc fit`` with the defaults (``--labels labels_sparse.tif --classes
classes.json``), ``pimc classify``; both commands run as the user runs them (subprocesses, wall
time measured). Scores: overall accuracy and macro-F1 of ``classes.tif`` on the pixels labelled
in ``labels.tif`` but not in ``labels_sparse.tif`` (:func:`pimc_core.demo.heldout_accuracy`);
the peer: :func:`pimc_core.demo.random_forest_baseline` (300 trees, every labelled pixel, the
NDVI/EVI/SAVI series gap-filled on the acquisition dates). The inputs the classifier chose
(``classifier_inputs: auto``) and its held-out-region scores come from the model file.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pimc() -> list[str]:
    exe = Path(sys.executable).with_name("pimc")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pimc_core.cli"]


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(_pimc() + args, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run(seeds: tuple[int, ...] = (11, 12, 13), size: int = 256, n_dates: int = 30,
        root: Path = Path("bench_out/heldout")) -> dict:
    from pimc_core.demo import heldout_accuracy, random_forest_baseline
    from pimc_core.models.model_file import read_metadata

    rows = []
    for seed in seeds:
        d = REPO / root / f"seed{seed}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        syn = d / "syn"
        _run(["sample-data", str(syn), "--kind", "synthetic", "--size", str(size), "--dates", str(n_dates),
              "--seed", str(seed)])
        model = d / "model.pimc"
        t_fit = _run(["fit", str(syn / "manifest.yaml"), "--labels", str(syn / "labels_sparse.tif"),
                      "--classes", str(syn / "classes.json"), "--out", str(model), "--quiet"])
        t_cls = _run(["classify", str(syn / "manifest.yaml"), "--model", str(model), "--out", str(d / "maps"), "--quiet"])
        pimc = heldout_accuracy(d / "maps" / "classes.tif", syn / "labels.tif", syn / "labels_sparse.tif")
        rf = random_forest_baseline(syn / "manifest.yaml", syn / "labels.tif", syn / "labels_sparse.tif")
        tr = read_metadata(model)["training"]
        rows.append({"seed": seed, "fit_s": round(t_fit, 1), "classify_s": round(t_cls, 1), "pimc": pimc, "rf": rf,
                     "labelled": tr["samples"]["labelled"], "inputs": (tr.get("finetune") or {}).get("inputs")})
        print(f"seed {seed}: PIMC {pimc['oa']:.4f} RF {rf['oa']:.4f} (fit {t_fit:.0f} s, classify {t_cls:.0f} s)", flush=True)
    return {"size": size, "n_dates": n_dates, "rows": rows}


def markdown(res: dict) -> str:
    rows = res["rows"]
    lines = [
        f"Synthetic stacks of {res['size']}×{res['size']} px and {res['n_dates']} dates, one per seed; "
        "`pimc fit` (defaults) then `pimc classify`, wall time of each command; accuracy on the fields "
        "whose labels were withheld (`labels.tif` minus `labels_sparse.tif`), next to a RandomForest "
        "(300 trees) on the gap-filled NDVI/EVI/SAVI series of every labelled pixel.",
        "",
        "| seed | held-out px | PIMC OA | RF OA | Δ OA | PIMC macro-F1 | RF macro-F1 | "
        "classifier inputs (held-out regions: all / temporal) | fit (s) | classify (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        inp = r["inputs"] or {}
        sc = inp.get("scores") or {}
        txt = inp.get("inputs", "?") + (f" ({sc.get('all', float('nan')):.3f} / {sc.get('temporal', float('nan')):.3f})" if sc else "")
        lines.append(
            f"| {r['seed']} | {r['pimc']['pixels']} | {r['pimc']['oa']:.4f} | {r['rf']['oa']:.4f} | "
            f"{r['pimc']['oa'] - r['rf']['oa']:+.4f} | {r['pimc']['macro_f1']:.4f} | {r['rf']['macro_f1']:.4f} | "
            f"{txt} | {r['fit_s']:.0f} | {r['classify_s']:.0f} |")
    d = [r["pimc"]["oa"] - r["rf"]["oa"] for r in rows]
    worst = max(r["fit_s"] + r["classify_s"] for r in rows)
    lines += ["", f"PIMC − RandomForest overall accuracy: mean {sum(d) / len(d):+.4f}, "
              f"{sum(x > 0 for x in d)} of {len(d)} seeds ahead; slowest fit + classify {worst / 60:.1f} min."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--dates", type=int, default=30)
    a = ap.parse_args()
    print(markdown(run(tuple(a.seeds), a.size, a.dates)))


if __name__ == "__main__":
    main()
