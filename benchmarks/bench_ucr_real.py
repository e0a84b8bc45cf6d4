"""Benchmark: ``python -m training series`` on the real UCR tables that aeon's wheel ships, next
to RandomForest, MiniRocket and MultiRocket on the same splits.

``python -m benchmarks.bench_ucr_real`` (needs ``make peers``: the aeon venv holds both the data
files and the peers).

The held-out crop benchmark cannot be reached here; these are the real UCR-layout series that
can: the seven univariate, equal-length classification sets in ``aeon/datasets/data`` (aeon
1.6.0; PickupGestureWiimoteZ in its equal-length ``_eq`` version), with their official
train / test splits. They are small (20–200 training series) and not satellite series, so they
test the general case (few labels, long series, many classes) rather than crops. Our command runs
with its defaults, as a user runs it; RandomForest (500 trees, raw gap-filled values) in the
project's venv; MiniRocket and MultiRocket are aeon's classifiers with their defaults
(:mod:`benchmarks.aeon_peers`), seed 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.peers import REPO, aeon_data_dir, aeon_scores, ts_to_tsv

#: (name, file stem in aeon/datasets/data/NAME/)
SETS = [
    ("ACSF1", "ACSF1"),
    ("ArrowHead", "ArrowHead"),
    ("GunPoint", "GunPoint"),
    ("ItalyPowerDemand", "ItalyPowerDemand"),
    ("OSULeaf", "OSULeaf"),
    ("PickupGestureWiimoteZ", "PickupGestureWiimoteZ_eq"),
    ("UnitTest", "UnitTest"),
]


def _random_forest(train: Path, test: Path, seed: int) -> dict:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, f1_score

    from pimc_core.io.tables import load_series_table
    from pimc_core.series.gapfill import fill_gaps

    X_tr, y_tr = load_series_table(train)
    X_te, y_te = load_series_table(test)
    t0 = time.perf_counter()
    X_tr, X_te = fill_gaps(X_tr, min_valid=1).values, fill_gaps(X_te, min_valid=1).values
    pred = RandomForestClassifier(n_estimators=500, n_jobs=-1, random_state=seed).fit(X_tr, y_tr).predict(X_te)
    return {"accuracy": float(accuracy_score(y_te, pred)), "macro_f1": float(f1_score(y_te, pred, average="macro")),
            "seconds": round(time.perf_counter() - t0, 1)}


def run(seed: int = 0, root: Path = Path("bench_out/ucr_real"), only: str | None = None) -> dict:
    src = aeon_data_dir()
    if src is None:
        raise SystemExit("bench_ucr_real: aeon's data files are read from the peers venv; run `make peers` first")
    d = REPO / root
    out: dict = {"seed": seed, "sets": []}
    for name, stem in SETS:
        if only and only != name:
            continue
        train, test = d / f"{name}_TRAIN.tsv", d / f"{name}_TEST.tsv"
        n_tr, length = ts_to_tsv(src / name / f"{stem}_TRAIN.ts", train)
        n_te, _ = ts_to_tsv(src / name / f"{stem}_TEST.ts", test)
        row = {"name": name, "n_train": n_tr, "n_test": n_te, "length": length}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "training", "series", "--train", str(train), "--test", str(test),
                        "--out", str(d / f"{name}_report.json"), "--seed", str(seed), "-q"],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        rep = json.loads((d / f"{name}_report.json").read_text())
        row["classes"] = rep["n_classes"]
        row["pimc"] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "seconds": round(time.perf_counter() - t0, 1)}
        row["random_forest"] = _random_forest(train, test, seed)
        peers = aeon_scores(train, test, seed)
        if isinstance(peers, str):
            raise SystemExit(f"bench_ucr_real: {peers}")
        row.update(peers)
        print(json.dumps(row), flush=True)
        out["sets"].append(row)
    return out


def markdown(res: dict) -> str:
    methods = [("pimc", "training series"), ("random_forest", "RandomForest"), ("minirocket", "MiniRocket (aeon)"),
               ("multirocket", "MultiRocket (aeon)")]
    lines = [
        "Real UCR tables shipped in aeon 1.6.0's wheel, official splits (see the module docstring). Accuracy on the "
        f"test series, seed {res['seed']}; `training series` with its defaults (wall time of the whole command).",
        "",
        "| set | train / test | length | classes | " + " | ".join(label for _, label in methods) + " | training series (s) |",
        "|---|---:|---:|---:|" + "---:|" * len(methods) + "---:|",
    ]
    wins = {k: 0 for k, _ in methods}
    for r in res["sets"]:
        best = max(r[k]["accuracy"] for k, _ in methods)
        for k, _ in methods:
            wins[k] += r[k]["accuracy"] >= best - 1e-12
        cells = [f"**{r[k]['accuracy']:.3f}**" if r[k]["accuracy"] >= best - 1e-12 else f"{r[k]['accuracy']:.3f}" for k, _ in methods]
        lines.append(f"| {r['name']} | {r['n_train']} / {r['n_test']} | {r['length']} | {r['classes']} | " + " | ".join(cells)
                     + f" | {r['pimc']['seconds']:.0f} |")
    mean = {k: float(np.mean([r[k]["accuracy"] for r in res["sets"]])) for k, _ in methods}
    lines.append("| mean | | | | " + " | ".join(f"{mean[k]:.3f}" for k, _ in methods) + " | |")
    lines += ["", "Best or tied best on: " + ", ".join(f"{label} {wins[k]}" for k, label in methods)
              + f" of {len(res['sets'])} sets (bold)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="one set by name")
    a = ap.parse_args()
    print(markdown(run(a.seed, only=a.only)))


if __name__ == "__main__":
    main()
