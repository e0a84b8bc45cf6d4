"""Benchmark: ``python -m training series`` on a pixel-series table of the size of the held-out
real benchmark (24 classes, 46 values per series, 7200 training and 16800 test series, UCR
layout), next to peers on the same split.

``python -m benchmarks.bench_series_table [--seed 0] [--budget 600]``

The real table cannot be reached here, so the table is generated: NDVI-like curves of 24 classes
built as 12 families of two related classes (one or two growing seasons, double-logistic green-up
and senescence; the two classes of a family differ by a few steps of timing and some amplitude),
each series with its own timing shift, vigour, base level, noise and cloud dips. The generator
was written once, from that description, and not adjusted to any method's score. What the figures
measure: the wall time of the command as a user runs it (a subprocess, load + fit + predict +
report) against the 15-minute limit on this machine, and its accuracy next to a RandomForest
(500 trees) on the raw values, our random-kernel transform (MiniRocket/MultiRocket-style,
:mod:`pimc_core.estimators.random_kernels`, 10,000 features) with its ridge classifier alone, and the
published implementations of MiniRocket and MultiRocket (aeon, run from the peers venv that
``make peers`` builds, :mod:`benchmarks.aeon_peers`). A generated table says nothing about
accuracy on real crops; it checks scale, time and the relative standing of the methods.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _double_logistic(t: np.ndarray, up: np.ndarray, down: np.ndarray, k_up: np.ndarray,
                     k_down: np.ndarray) -> np.ndarray:
    """``(N, 1)`` parameters, ``(T,)`` steps → ``(N, T)`` curve rising at ``up`` and falling at ``down``."""
    return 1.0 / (1.0 + np.exp(-k_up * (t - up))) - 1.0 / (1.0 + np.exp(-k_down * (t - down)))


def crop_like_table(seed: int = 0, n_classes: int = 24, length: int = 46, n_train: int = 7200,
                    n_test: int = 16800) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generated NDVI series ``X (N, length)`` and class ids ``y (N,)`` 1..n_classes, balanced,
    split into training and test parts (see the module docstring)."""
    if n_classes % 2:
        raise ValueError("n_classes must be even (families of two classes)")
    rng = np.random.default_rng([seed, 0x7AB1E])
    t = np.arange(length, dtype=np.float64)
    classes = []
    for _ in range(n_classes // 2):
        two = rng.random() < 0.3
        seasons = []
        start = rng.uniform(0.08, 0.45 if not two else 0.15) * length
        for _s in range(2 if two else 1):
            dur = rng.uniform(0.15, 0.35 if not two else 0.22) * length
            seasons.append([start, start + dur, rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2), rng.uniform(0.2, 0.65)])
            start = start + dur + rng.uniform(0.05, 0.15) * length
        base = rng.uniform(0.1, 0.3)
        classes.append((base, seasons))
        # its sibling: the same kind of crop a few steps earlier or later, somewhat more or less vigorous
        shift = rng.choice([-1, 1]) * rng.uniform(1.0, 3.0)
        scale = rng.uniform(0.85, 1.15)
        classes.append((base + rng.normal(0, 0.02),
                        [[u + shift, d + shift, ku, kd, a * scale] for u, d, ku, kd, a in seasons]))
    n = n_train + n_test
    y = np.tile(np.arange(1, n_classes + 1), n // n_classes + 1)[:n]
    X = np.empty((n, length))
    for c, (base, seasons) in enumerate(classes, start=1):
        m = int((y == c).sum())
        shift = rng.normal(0, 1.0, (m, 1))
        v = base + rng.normal(0, 0.03, (m, 1))
        for u, d, ku, kd, a in seasons:
            v = v + a * rng.normal(1, 0.1, (m, 1)) * _double_logistic(
                t, u + shift + rng.normal(0, 0.5, (m, 1)), d + shift + rng.normal(0, 0.5, (m, 1)), ku, kd)
        v = v + rng.normal(0, 0.02, v.shape)
        dips = rng.random(v.shape) < 0.05  # clouds left in the series: NDVI pulled down
        v[dips] *= rng.uniform(0.2, 0.7, int(dips.sum()))
        X[y == c] = np.clip(v, -1.0, 1.0)  # NDVI's range (a vigorous two-season class can overshoot it)
    order = rng.permutation(n)
    X, y = X[order].astype(np.float32), y[order]
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Overall accuracy and macro F1 (:func:`pimc_core.learn.finetune.classification_metrics`)."""
    from pimc_core.learn.finetune import classification_metrics

    m = classification_metrics(y_true, y_pred, np.unique(y_true))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def run(seed: int = 0, budget: float = 600.0, root: Path = Path("bench_out/series_table")) -> dict:
    from sklearn.ensemble import RandomForestClassifier

    from pimc_core.estimators import RandomKernelTransform, RidgeLOO
    from pimc_core.io.tables import write_series_table

    d = REPO / root
    d.mkdir(parents=True, exist_ok=True)
    X_tr, y_tr, X_te, y_te = crop_like_table(seed)
    write_series_table(d / "TRAIN.tsv", X_tr, y_tr)
    write_series_table(d / "TEST.tsv", X_te, y_te)
    out = {"seed": seed, "budget": budget, "n_train": len(y_tr), "n_test": len(y_te), "length": X_tr.shape[1],
           "n_classes": int(np.unique(y_tr).size)}

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "training", "series", "--train", str(d / "TRAIN.tsv"), "--test",
                    str(d / "TEST.tsv"), "--out", str(d / "report.json"), "--budget", str(budget)],
                   check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rep = json.loads((d / "report.json").read_text())
    out["pimc"] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "seconds": round(time.perf_counter() - t0, 1),
                   "threads": rep["environment"]["threads"],
                   **{k: v for k, v in rep["training"].items() if k.startswith("self_train")}}
    print(f"training series: {out['pimc']}", flush=True)

    t0 = time.perf_counter()
    rf = RandomForestClassifier(n_estimators=500, n_jobs=-1, random_state=seed).fit(X_tr, y_tr)
    out["random_forest"] = {**_scores(y_te, rf.predict(X_te)), "seconds": round(time.perf_counter() - t0, 1)}
    print(f"RandomForest: {out['random_forest']}", flush=True)

    t0 = time.perf_counter()
    tr = RandomKernelTransform(10_000, seed=seed).fit(X_tr[:, None, :])
    classes = np.unique(y_tr)
    ridge = RidgeLOO().fit(tr.transform(X_tr[:, None, :]), np.searchsorted(classes, y_tr), classes.size)
    pred = classes[ridge.decision_function(tr.transform(X_te[:, None, :])).argmax(1)]
    out["random_kernels"] = {**_scores(y_te, pred), "seconds": round(time.perf_counter() - t0, 1),
                             "features": int(tr.n_features_out_)}
    print(f"random kernels + ridge: {out['random_kernels']}", flush=True)

    from benchmarks.peers import aeon_scores

    out["aeon"] = aeon_scores(d / "TRAIN.tsv", d / "TEST.tsv", seed)
    print(f"aeon peers: {out['aeon']}", flush=True)
    return out


def _aeon_rows(aeon: dict | str | None) -> list[str]:
    """Table rows of aeon's MiniRocket / MultiRocket (:mod:`benchmarks.aeon_peers`), or one saying why they are missing."""
    if not isinstance(aeon, dict):
        return [f"| MiniRocket, MultiRocket (aeon) | not run: {aeon or 'peers venv missing (make peers)'} | | |"]
    names = {"minirocket": "MiniRocket (aeon 1.6.0, defaults)", "multirocket": "MultiRocket (aeon 1.6.0, defaults)"}
    return [f"| {names[k]} | {v['accuracy']:.4f} | {v['macro_f1']:.4f} | {v['seconds']:.0f} |" for k, v in aeon.items()]


def markdown(res: dict) -> str:
    p, rf, rk = res["pimc"], res["random_forest"], res["random_kernels"]
    return "\n".join([
        f"Generated table of the held-out benchmark's size (`crop_like_table(seed={res['seed']})`: {res['n_classes']} "
        f"classes, {res['length']} values per series, {res['n_train']} training and {res['n_test']} test series; "
        "see the module docstring for what is generated and why). Wall time as a user runs it; accuracy on the test "
        "series.",
        "",
        "| method | overall accuracy | macro F1 | wall time (s) |",
        "|---|---:|---:|---:|",
        f"| `python -m training series --budget {res['budget']:.0f}` (load, fit, predict, report) | {p['accuracy']:.4f} | "
        f"{p['macro_f1']:.4f} | {p['seconds']:.0f} |",
        f"| RandomForest, 500 trees, raw values | {rf['accuracy']:.4f} | {rf['macro_f1']:.4f} | {rf['seconds']:.0f} |",
        f"| random-kernel transform ({rk['features']} features) + ridge, our code | {rk['accuracy']:.4f} | "
        f"{rk['macro_f1']:.4f} | {rk['seconds']:.0f} |",
        *_aeon_rows(res.get("aeon")),
        "",
        f"The command took {p['seconds'] / 60:.1f} min against the 15-minute limit ({p['threads']} torch thread(s)).",
        _self_training_line(p),
    ])


def _self_training_line(p: dict) -> str:
    """What the command's self-training chose (its report's ``training.self_train_*`` entries)."""
    if "self_train_share" not in p:
        return "Self-training did not run (random-kernel member skipped or no unlabelled series)."
    losses = ", ".join(f"{float(k):g}: {v}" for k, v in p["self_train_held_out_log_loss"].items())
    return (f"Self-training kept {p['self_train_share']:g} of the test series as pseudo-labels (held-out log-loss by share "
            f"on {p['self_train_held_out_series']} training series: {losses}; {p['self_train_seconds']:.0f} s).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=600.0)
    a = ap.parse_args()
    print(markdown(run(a.seed, a.budget)))


if __name__ == "__main__":
    main()
