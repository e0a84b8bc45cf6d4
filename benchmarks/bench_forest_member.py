"""Benchmark: is the random-forest member of the classifier worth its place? The network alone,
the forest alone and their mixes, on the withheld fields of synthetic stacks.

``python -m benchmarks.bench_forest_member [--seeds 2 3 4 5] [--size 128] [--clouds 0.15 0.5]
[--points 400]``

Stacks and labels as :mod:`benchmarks.bench_heldout_map` makes them (``--points`` pixels drawn in
10 % of the fields). One :func:`pimc_core.fit.fit` per stack with ``ensemble.forest_weight: 0.5``
(the forest self-trained on the scene, :mod:`pimc_core.learn.ensemble`); the network's
probabilities are mapped with the model's forest weight set to 0, the forest's computed on the
same pixels' gap-filled series, and each mix ``(1 - w) * network + w * forest`` is scored on the
pixels outside the labelled fields. The peer: a RandomForest (300 trees) on the labelled pixels
alone (:func:`pimc_core.demo.random_forest_baseline`).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import numpy as np

from benchmarks.bench_heldout_map import REPO, label_points

WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)


def weight_accuracies(ts, model, syn, maps: Path, weights) -> dict[float, float]:
    """Accuracy of every mix ``(1 - w) * network + w * forest`` of ``model`` (a loaded model with a
    forest member; its forest weight is set to 0) on the pixels of ``syn`` outside the labelled
    fields: the network's probabilities mapped into ``maps``, the forest's computed on the same
    pixels' gap-filled series."""
    import rasterio

    from pimc_core.demo import pixel_features
    from pimc_core.maps.engine import run_inference
    from pimc_core.series.pixel import index_series

    model.forest_weight = 0.0
    run_inference(ts, model, None, maps, products=("probabilities",))
    with rasterio.open(maps / "probabilities.tif") as src:
        p_net = src.read().reshape(model.n_classes, -1)
    with rasterio.open(syn.labels) as a, rasterio.open(syn.labels_sparse) as b:
        truth, seen = a.read(1).ravel(), b.read(1).ravel()
    s = index_series(ts.read())
    x = pixel_features(s)  # (H*W, C*T), the model's features
    test = s.ok.ravel() & (truth > 0) & (seen == 0) & np.isfinite(p_net).all(axis=0)
    p_for = model.forest.predict_proba(x[test]).T
    ids = np.asarray([c["id"] for c in model.class_table])
    return {w: float((ids[((1 - w) * p_net[:, test] + w * p_for).argmax(axis=0)] == truth[test]).mean())
            for w in weights}


def one_stack(d: Path, seed: int, size: int, cloud: float, points: int) -> dict:
    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.demo import random_forest_baseline
    from pimc_core.fit import fit
    from pimc_core.io.timeseries import open_series
    from pimc_core.models.pixel_model import load_pixel_model

    syn = make_synthetic(d / "syn", size=size, n_dates=24, seed=seed, cloud_fraction=cloud, sparse_label_fraction=0.1)
    labels = label_points(syn.labels_sparse, d / "points.tif", points, seed + 1000)
    ts = open_series(syn.manifest)
    path = fit(ts, labels, d / "model.pimc", classes=syn.classes_json, config={"ensemble": {"forest_weight": 0.5}},
               progress=False).path
    model = load_pixel_model(path)
    pseudo = model.metadata["training"]["ensemble"]["pseudo_labelled"]
    acc = weight_accuracies(ts, model, syn, d / "maps", WEIGHTS)
    rf = random_forest_baseline(syn.manifest, syn.labels, syn.labels_sparse, train_tif=labels)["oa"]
    return {"seed": seed, "cloud": cloud, "acc": acc, "rf": rf, "pseudo": pseudo}


def run(seeds=(2, 3, 4, 5), size: int = 128, clouds=(0.15, 0.5), points: int = 400) -> dict:
    rows = []
    for cloud, seed in itertools.product(clouds, seeds):
        rows.append(one_stack(REPO / "bench_out" / "forest" / f"{size}_c{cloud:g}_s{seed}", seed, size, cloud, points))
        print(rows[-1], flush=True)
    return {"rows": rows, "size": size, "points": points}


def markdown(res: dict) -> str:
    rows, size, points = res["rows"], res["size"], res["points"]
    head = ["network alone"] + [f"mix {w:g}" for w in WEIGHTS[1:-1]] + ["forest alone"]
    lines = [f"Synthetic {size}×{size} px stacks, 24 dates, {points} labelled pixels in 10 % of the fields; overall "
             "accuracy outside the labelled fields.", "",
             "| cloud | seed | " + " | ".join(head) + " | RandomForest (labels only) | pseudo-labels |",
             "|---:|---:|" + "---:|" * (len(head) + 2)]
    for r in rows:
        lines.append(f"| {r['cloud']:g} | {r['seed']} | " + " | ".join(f"{r['acc'][w]:.4f}" for w in WEIGHTS)
                     + f" | {r['rf']:.4f} | {r['pseudo']} |")

    def ms(xs):
        return f"{statistics.fmean(xs):.4f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.4f}"

    lines.append(f"| all | {len(rows)} | " + " | ".join(ms([r['acc'][w] for r in rows]) for w in WEIGHTS)
                 + f" | {ms([r['rf'] for r in rows])} | |")
    d = [r["acc"][0.5] - r["acc"][0.0] for r in rows]
    lines += ["", f"mix 0.5 − network alone: {ms(d)}, ahead on {sum(x > 0 for x in d)} of {len(d)} stacks."]
    return "\n".join(lines)


def stack_arguments(doc: str) -> argparse.ArgumentParser:
    """The command line of a benchmark over 128 px stacks: ``--seeds``, ``--size``, ``--clouds``,
    ``--points``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4, 5])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--clouds", type=float, nargs="+", default=[0.15, 0.5])
    ap.add_argument("--points", type=int, default=400)
    return ap


def main() -> None:
    a = stack_arguments(__doc__).parse_args()
    print(markdown(run(tuple(a.seeds), a.size, tuple(a.clouds), a.points)))


if __name__ == "__main__":
    main()
