"""Benchmark: is the held-out accuracy ``pimc fit`` prints honest? Spatial cross-validation
(folds of whole labelled regions) against the accuracy of the map on fields whose labels were
withheld, next to a random-pixel cross-validation of the same fine-tuning.

``python -m benchmarks.bench_spatial_cv [--seeds 2 3 4 5 6 7] [--size 128] [--classes 6]
[--dates 24] [--fields 0.3] [--folds 5] [--set KEY=VALUE ...]``

For each seed: :func:`pimc_core.datasets.synthetic.make_synthetic` (the scenes of
:mod:`benchmarks.bench_heldout_map`; ``labels_sparse.tif`` labels whole fields, a share
``--fields`` of them, at least one per class), then :func:`pimc_core.fit.fit` with a small
configuration (:data:`SMALL`, a few minutes on 2 cores; ``--set`` overrides it) and
``cv_folds`` folds, and ``pimc classify`` of the whole stack. Three figures per stack:

* **spatial CV**: ``training["spatial_cv"]`` of the model file, what ``pimc fit`` prints;
* **withheld fields**: overall accuracy of ``classes.tif`` on the pixels labelled in
  ``labels.tif`` but outside the labelled fields (:func:`pimc_core.demo.heldout_accuracy`);
* **random-pixel CV**: the same folds' machinery on the same pretrained network and labelled
  samples, with every pixel its own group (what a pixel-level K-fold would say). It runs inside
  the same fit: :func:`pimc_core.fit.validation.cross_validate` is wrapped for the benchmark so
  that each call also runs with ``regions = arange(N)``, scored with the input set the spatial
  folds chose.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_heldout_map import REPO, _run, fresh_scene

#: the benchmark's fit configuration: small enough for six stacks in ~20 min on 2 shared cores;
#: every labelled pixel is used (``per_class: 0``), so the CV's pixels have the classes' shares of
#: the labelled fields, as the withheld fields do
SMALL = {
    "data": {"pretrain_samples": 2048, "per_class": 0, "patch_size": 5},
    "pretrain": {"steps": 60, "batch_size": 256, "warmup_steps": 6, "checkpoint_every": 0},
    "finetune": {"max_steps": 60, "batch_size": 128},
    "forecast": {"enabled": False},
}


def _with_pixel_cv(store: dict):
    """Wrap :func:`pimc_core.fit.validation.cross_validate` so that each call also runs a
    random-pixel CV (every sample its own group) into ``store``; returns a function that undoes it."""
    from pimc_core.fit import validation

    real = validation.cross_validate

    def both(net, labelled, regions, class_ids, cfg, **kw):
        res = real(net, labelled, regions, class_ids, cfg, **kw)
        t0 = time.perf_counter()
        quiet = {**kw, "log": lambda s: None}
        store["pixel"] = real(net, labelled, np.arange(len(labelled)), class_ids, cfg, **quiet)
        store["pixel_s"] = time.perf_counter() - t0
        return res

    validation.cross_validate = both
    return lambda: setattr(validation, "cross_validate", real)


def one_stack(d: Path, seed: int, size: int, n_classes: int, n_dates: int, fields: float, folds: int,
              overrides: list[str]) -> dict:
    from pimc_core.config import apply_overrides
    from pimc_core.demo import heldout_accuracy
    from pimc_core.fit import fit

    syn = fresh_scene(d, size=size, n_dates=n_dates, seed=seed, n_classes=n_classes, sparse_label_fraction=fields)
    cfg = {**copy.deepcopy(SMALL), "cv_folds": folds, "seed": seed}
    apply_overrides(cfg, overrides)
    store: dict = {}
    undo = _with_pixel_cv(store)
    try:
        t0 = time.perf_counter()
        res = fit(syn.manifest, syn.labels_sparse, d / "model.pimc", classes=syn.classes_json, config=cfg,
                  progress=False, log=lambda line: print(f"  seed {seed}: {line}", file=sys.stderr, flush=True))
        t_fit = time.perf_counter() - t0
    finally:
        undo()
    t_cls = _run(["classify", str(syn.manifest), "--model", str(d / "model.pimc"), "--out", str(d / "maps"),
                  "--quiet"])
    held = heldout_accuracy(d / "maps" / "classes.tif", syn.labels, syn.labels_sparse)
    cv = res.spatial_cv or {}
    extra = store.get("pixel_s", 0.0)  # the random-pixel CV ran inside the fit: not counted
    row = {"seed": seed, "fit_s": round(t_fit - extra, 1), "classify_s": round(t_cls, 1),
           "cv_s": round(res.stages.get("spatial_cv", 0.0) - extra, 1), "finetune_s": res.stages.get("finetune"),
           "labelled": res.n_labelled, "train_acc": res.train_metrics.get("accuracy"), "withheld": held,
           "cv": cv, "pixel_cv": None}
    if cv.get("folds") and "pixel" in store:
        pix = store["pixel"][cv["inputs"]]
        row["pixel_cv"] = {"accuracy": pix.accuracy, "accuracy_se": pix.accuracy_se, "macro_f1": pix.macro_f1}
    return row


def run(seeds=(2, 3, 4, 5, 6, 7), size: int = 128, n_classes: int = 6, n_dates: int = 24, fields: float = 0.3,
        folds: int = 5, overrides: list[str] | None = None, root: Path = Path("bench_out/spatial_cv")) -> dict:
    rows = []
    for seed in seeds:
        r = one_stack(REPO / root / f"s{seed}", seed, size, n_classes, n_dates, fields, folds, list(overrides or []))
        rows.append(r)
        cv, pix = r["cv"], r["pixel_cv"] or {}
        print(f"seed {seed}: spatial CV {cv.get('accuracy', float('nan')):.4f} withheld {r['withheld']['oa']:.4f} "
              f"pixel CV {pix.get('accuracy', float('nan')):.4f} (fit {r['fit_s']:.0f} s)", flush=True)
    return {"size": size, "classes": n_classes, "n_dates": n_dates, "fields": fields, "folds": folds,
            "overrides": list(overrides or []), "rows": rows, "machine": f"{platform.machine()}, "
            f"{platform.python_version()}", "date": time.strftime("%Y-%m-%d")}


def markdown(res: dict) -> str:
    rows = [r for r in res["rows"] if r["cv"].get("folds")]
    lines = [
        f"{len(res['rows'])} synthetic stacks of {res['size']} × {res['size']} px, {res['n_dates']} dates, "
        f"{res['classes']} classes; labels: whole fields, {res['fields']:.0%} of them; `pimc fit` with the "
        f"benchmark's small configuration (`benchmarks.bench_spatial_cv.SMALL`"
        + (", " + ", ".join(f"`{o}`" for o in res["overrides"]) if res["overrides"] else "")
        + f"), `cv_folds: {res['folds']}`; then `pimc classify`.",
        "",
        "| seed | labelled px | fields | training acc. | spatial CV (± SE) | withheld fields | spatial − withheld | "
        "random-pixel CV | pixel − withheld | CV stage (s) | fine-tune (s) | fit (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        cv, pix, w = r["cv"], r["pixel_cv"], r["withheld"]["oa"]
        if not cv.get("folds"):
            lines.append(f"| {r['seed']} | {r['labelled']} | – | {r['train_acc']:.4f} | {cv.get('reason', 'off')} | "
                         f"{w:.4f} | | | | | | {r['fit_s']:.0f} |")
            continue
        lines.append(
            f"| {r['seed']} | {r['labelled']} | {cv['regions']} | {r['train_acc']:.4f} | "
            f"{cv['accuracy']:.4f} ± {cv['accuracy_se']:.4f} | {w:.4f} | {cv['accuracy'] - w:+.4f} | "
            f"{pix['accuracy']:.4f} | {pix['accuracy'] - w:+.4f} | {r['cv_s']:.0f} | {r['finetune_s']:.0f} | "
            f"{r['fit_s']:.0f} |")
    if rows:
        d_sp = [r["cv"]["accuracy"] - r["withheld"]["oa"] for r in rows]
        d_px = [r["pixel_cv"]["accuracy"] - r["withheld"]["oa"] for r in rows]
        inside = sum(abs(x) <= 2 * r["cv"]["accuracy_se"] for x, r in zip(d_sp, rows))
        lines += ["", f"Over {len(rows)} stacks: spatial CV − withheld {statistics.fmean(d_sp):+.4f} on average "
                  f"(mean |difference| {statistics.fmean(abs(x) for x in d_sp):.4f}; within 2 SE on {inside}/{len(rows)}); "
                  f"random-pixel CV − withheld {statistics.fmean(d_px):+.4f} (mean |difference| "
                  f"{statistics.fmean(abs(x) for x in d_px):.4f})."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--dates", type=int, default=24)
    ap.add_argument("--fields", type=float, default=0.3, help="share of the fields whose labels are given")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fit config override")
    a = ap.parse_args()
    print(markdown(run(tuple(a.seeds), a.size, a.classes, a.dates, a.fields, a.folds, a.set)))


if __name__ == "__main__":
    main()
