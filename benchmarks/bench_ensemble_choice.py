"""Benchmark: the classifier's forest weight chosen on the spatial cross-validation's folds
(``ensemble.forest_weight: auto``) against every fixed weight, on the withheld fields of
synthetic stacks, also with more field-to-field variation than the default scenes.

``python -m benchmarks.bench_ensemble_choice [--seeds 2 3 4 5] [--size 128] [--clouds 0.15 0.5]
[--variability 1.0 1.5] [--points 400] [--out bench_out/ensemble_choice.jsonl]``

Stacks and labels as :mod:`benchmarks.bench_heldout_map` makes them (``--points`` pixels drawn in
a share ``--fields`` of the fields, 25 % by default: with 10 % most classes have one labelled
field and spatial CV is not possible; ``variability`` of
:func:`pimc_core.datasets.synthetic.make_synthetic`).
ONE :func:`pimc_core.fit.fit` per stack with ``ensemble.forest_weight: 0.5``: its forest is the
one ``auto`` trains (pseudo-labels from the mix at 0.5), and its spatial CV stores the held-out
accuracy of every candidate weight in ``training["ensemble"]["choice"]``. From that one fit:

* every fixed weight ``w``: the map ``(1 - w) * network + w * forest`` (the network's
  probabilities mapped with the model's forest weight set to 0, the forest's computed on the same
  pixels' gap-filled series), scored on the pixels outside the labelled fields;
* the CV's choice under each rule (:func:`pimc_core.learn.ensemble_choice.pick_weight` with
  ``prefer`` 0, 0.5, 1 and ``tolerance`` 0 or 1 SE), scored the same way; where spatial CV is
  not possible (a class with one labelled field), this bench takes ``prefer``. Since 9ae2245
  ``auto`` itself runs a partial CV there (over the classes with two labelled fields or more),
  which a configured weight skips, so on such stacks the bench no longer scores what ``auto``
  would pick; fitting with ``auto`` instead does not work either: where it picks 0, no forest is
  trained and the fixed weights cannot be scored.

The peer: a RandomForest (300 trees) on the labelled pixels alone
(:func:`pimc_core.demo.random_forest_baseline`). Each stack's row is appended to ``--out`` as
one JSON line as soon as it is done; ``--report`` prints the tables of such a file.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from pathlib import Path

from benchmarks.bench_forest_member import stack_arguments, weight_accuracies
from benchmarks.bench_heldout_map import REPO, fresh_scene, label_points

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
RULES = tuple((p, t) for t in (0.0, 1.0) for p in (0.0, 0.5, 1.0))


def one_stack(d: Path, seed: int, size: int, cloud: float, variability: float, points: int,
              fields: float = 0.25, cv_folds: int | None = None) -> dict:
    from pimc_core.demo import random_forest_baseline
    from pimc_core.fit import fit
    from pimc_core.io.timeseries import open_series
    from pimc_core.learn.ensemble_choice import WeightChoice, pick_weight
    from pimc_core.models.pixel_model import load_pixel_model

    syn = fresh_scene(d, size=size, n_dates=24, seed=seed, cloud_fraction=cloud, sparse_label_fraction=fields,
                      variability=variability)
    labels = label_points(syn.labels_sparse, d / "points.tif", points, seed + 1000)
    ts = open_series(syn.manifest)
    t0 = time.perf_counter()
    path = fit(ts, labels, d / "model.pimc", classes=syn.classes_json, config={"ensemble": {"forest_weight": 0.5},
                                                                 **({"cv_folds": cv_folds} if cv_folds else {})},
               progress=False).path
    fit_s = time.perf_counter() - t0
    model = load_pixel_model(path)
    ens = model.metadata["training"]["ensemble"]
    choice = ens.get("choice") or {}
    cv = WeightChoice.scores_from_summary(choice) if choice.get("accuracy") else None  # None: CV not possible
    acc = weight_accuracies(ts, model, syn, d / "maps", WEIGHTS)
    rules = {f"{p:g}/{t:g}": pick_weight(cv, p, t)[0] if cv else p for p, t in RULES}  # no CV: auto takes prefer
    rf = random_forest_baseline(syn.manifest, syn.labels, syn.labels_sparse, train_tif=labels)["oa"]
    return {"seed": seed, "size": size, "cloud": cloud, "variability": variability, "fit_s": round(fit_s, 1),
            "acc": {f"{w:g}": a for w, a in acc.items()}, "cv": {f"{w:g}": cv[w][0] for w in cv} if cv else None,
            "rules": rules, "rf": rf, "pseudo": ens.get("pseudo_labelled"),
            "inputs": model.metadata["training"]["finetune"]["inputs"]["inputs"]}


def run(seeds, size, clouds, variabilities, points, out: Path, fields: float = 0.25,
        cv_folds: int | None = None) -> list[dict]:
    rows = []
    for v, cloud, seed in itertools.product(variabilities, clouds, seeds):
        r = one_stack(REPO / "bench_out" / "ensemble" / f"{size}_c{cloud:g}_v{v:g}_s{seed}", seed, size, cloud, v,
                      points, fields, cv_folds)
        r["fields"], r["cv_folds"] = fields, cv_folds
        with open(out, "a") as f:
            f.write(json.dumps(r) + "\n")
        rows.append(r)
        print(f"v {v:g} cloud {cloud:g} seed {seed}: " + " ".join(f"{w}:{a:.4f}" for w, a in r["acc"].items())
              + f" rf {r['rf']:.4f} rules {r['rules']} ({r['fit_s']:.0f} s)", flush=True)
    return rows


def _ms(xs: list[float]) -> str:
    return f"{statistics.fmean(xs):.4f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.4f}"


def markdown(rows: list[dict], rule: str = "0.5/1") -> str:
    """Per-stack table (fixed weights, the CV's choice under ``rule`` = ``prefer/tolerance``, the
    RandomForest) and a summary of every fixed weight and rule: mean ± sd, worst, and the
    difference to the RandomForest."""
    wk = [f"{w:g}" for w in WEIGHTS]
    lines = ["| variability | cloud | seed | " + " | ".join(f"w {w}" for w in wk)
             + f" | CV choice ({rule}) | CV's w | RandomForest | CV − RF |",
             "|---:|---:|---:|" + "---:|" * (len(wk) + 4)]
    for r in rows:
        w = r["rules"][rule]
        a = r["acc"][f"{w:g}"]
        lines.append(f"| {r['variability']:g} | {r['cloud']:g} | {r['seed']} | "
                     + " | ".join(f"{r['acc'][k]:.4f}" for k in wk)
                     + f" | {a:.4f} | {w:g} | {r['rf']:.4f} | {a - r['rf']:+.4f} |")
    lines += ["", "| policy | " + " | ".join(f"v {v:g}" for v in sorted({r['variability'] for r in rows}))
              + " | all: mean ± sd | worst | − RF: mean ± sd | − RF worst | ahead of RF |",
              "|---|" + "---:|" * (len({r['variability'] for r in rows}) + 5)]
    pols = [(f"fixed w {k}", lambda r, k=k: r["acc"][k]) for k in wk]
    pols += [(f"CV, prefer {k.split('/')[0]}, {k.split('/')[1]} SE", lambda r, k=k: r["acc"][f"{r['rules'][k]:g}"])
             for k in rows[0]["rules"]]
    pols += [("RandomForest (labels only)", lambda r: r["rf"])]
    for name, f in pols:
        vals = [f(r) for r in rows]
        d = [f(r) - r["rf"] for r in rows]
        per_v = [statistics.fmean([f(r) for r in rows if r["variability"] == v])
                 for v in sorted({r['variability'] for r in rows})]
        lines.append(f"| {name} | " + " | ".join(f"{x:.4f}" for x in per_v)
                     + f" | {_ms(vals)} | {min(vals):.4f} | {_ms(d)} | {min(d):+.4f} | {sum(x > 0 for x in d)}/{len(d)} |")
    return "\n".join(lines)


def main() -> None:
    ap = stack_arguments(__doc__)
    ap.add_argument("--variability", type=float, nargs="+", default=[1.0, 1.5])
    ap.add_argument("--fields", type=float, default=0.25,
                    help="share of the fields the points are drawn in (0.25: a few fields of most classes, so "
                         "spatial CV is possible)")
    ap.add_argument("--cv-folds", type=int, default=None, help="pimc fit's cv_folds (default: its default, 5)")
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "ensemble_choice.jsonl")
    ap.add_argument("--report", action="store_true", help="only print the tables of --out")
    a = ap.parse_args()
    if not a.report:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        run(a.seeds, a.size, a.clouds, a.variability, a.points, a.out, a.fields, a.cv_folds)
    rows = [json.loads(line) for line in a.out.read_text().splitlines() if line.strip()]
    print(markdown(rows))


if __name__ == "__main__":
    main()
