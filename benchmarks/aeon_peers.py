"""Published peers on a UCR-layout split: aeon's MiniRocket and MultiRocket classifiers.

Runs in the *peers* virtualenv (``make peers``: ``.venv-peers``, aeon 1.6.0 with numpy 2), not in
the project's: aeon needs numpy ≥ 2 and Debian's GDAL bindings, which the project's venv shares,
need numpy < 2. So this file imports only numpy, scikit-learn and aeon, never ``pimc_core``.

``.venv-peers/bin/python benchmarks/aeon_peers.py TRAIN.tsv TEST.tsv [--methods minirocket,multirocket]``
prints one JSON object ``{method: {"accuracy", "macro_f1", "seconds"}}`` on its last line.
Missing values (NaN) are filled with the nearest valid value of the same series, as neither
classifier accepts NaN.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A UCR table (label, then the values; tab or comma separated) → ``X (N, T)``, ``y (N,)``."""
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    data = np.loadtxt(path, delimiter="\t" if "\t" in first else ",", dtype=str)
    y = data[:, 0]
    X = np.array(np.char.replace(data[:, 1:], "?", "nan"), dtype=np.float64)
    return X, y


def fill(X: np.ndarray) -> np.ndarray:
    """NaN → the previous valid value of the row (then the next one for leading NaN)."""
    X = X.copy()
    for row in X:
        ok = np.isfinite(row)
        if ok.all():
            continue
        if not ok.any():
            row[:] = 0.0
            continue
        idx = np.where(ok, np.arange(row.size), 0)
        np.maximum.accumulate(idx, out=idx)
        first = np.flatnonzero(ok)[0]
        row[:] = row[idx]
        row[:first] = row[first]
    return X


def main() -> None:
    from aeon.classification.convolution_based import MiniRocketClassifier, MultiRocketClassifier
    from sklearn.metrics import accuracy_score, f1_score

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--methods", default="minirocket,multirocket")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    X_tr, y_tr = load(a.train)
    X_te, y_te = load(a.test)
    X_tr, X_te = fill(X_tr)[:, None, :], fill(X_te)[:, None, :]
    makers = {"minirocket": MiniRocketClassifier, "multirocket": MultiRocketClassifier}
    out = {}
    for name in a.methods.split(","):
        t0 = time.perf_counter()
        clf = makers[name](random_state=a.seed, n_jobs=-1).fit(X_tr, y_tr)
        pred = clf.predict(X_te)
        out[name] = {"accuracy": float(accuracy_score(y_te, pred)),
                     "macro_f1": float(f1_score(y_te, pred, average="macro")),
                     "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
