"""Benchmark: does PIMC's self-supervised pretraining add anything to the map once the scene's
unlabelled pixels are used in fine-tuning? ``pimc fit`` with and without pretraining, each with
and without the scene's pixels, on generated stacks labelled on 1 or 10 whole fields per class.

``python -m benchmarks.bench_pretraining [--seeds 2 3 4 5 6] [--fields 1 10] [--size 96]
[--clouds 0.15] [--dates 24] [--variants pre nopre pre+scene nopre+scene] [--root bench_out/pretraining]
[--report] [--results docs/RESULTS.md]``

For each seed and cloud level: a scene of :func:`pimc_core.datasets.synthetic.make_synthetic`
(``size`` px, ``dates`` dates); its labels are the whole fields of ``n`` fields per class drawn at
random (:func:`fields_per_class`; all but one where a class has ``n`` or fewer, so every class
keeps a field withheld). Up to four fits of each labelling (:data:`VARIANTS`, ``--variants``), run
as the user runs ``pimc fit`` and ``pimc classify``:

* *pretrained* (the default ``pretrain`` section) or *no pretraining* (``pretrain.steps=0``);
* *labels only* (``ensemble.forest_weight=0``: the network fine-tuned on the labelled pixels) or
  *+ scene* (``ensemble.forest_weight=0.5``, ``ensemble.self_training=true``,
  ``ensemble.network_rounds=1``: a forest member self-trained on the scene's sampled pixels, the
  network fine-tuned once more on the labelled and pseudo-labelled pixels, the map their mix:
  :mod:`pimc_core.learn.ensemble`).

Every fit sets ``cv_folds=0`` and ``forecast.enabled=false`` (neither changes the classifier;
they only cost time) and ``classifier_inputs=temporal`` (the series encoders: what ``auto`` picks
with one labelled field per class; fixed so that every fit reads the same inputs and no trial
fine-tuning is spent on choosing them). The pretrained fits of one scene share one pretraining: the first writes
its checkpoints to ``ckpt/`` and the others resume from the last one
(:mod:`pimc_core.learn.checkpoints`: a resumed run continues exactly), since pretraining reads
the scene's pixels only, never the labels; a scene folder left by a stopped run is reused (the
scene is regenerated identically, its checkpoints kept). Score: overall accuracy of ``classes.tif`` on the
pixels outside the labelled fields (:func:`pimc_core.demo.heldout_accuracy`); the reference is
:func:`pimc_core.demo.random_forest_baseline` on the same labels. One JSON per scene under
``--root`` (a rerun skips the scenes already there); ``--report`` prints the Markdown tables of
what is there; ``--results docs/RESULTS.md`` writes them, with the run's command, dates, commit and
machine and the plain answer (:func:`verdict`), as the section between :data:`BEGIN` and
:data:`END` of that file (``python -m training report`` keeps it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.bench_heldout_map import REPO, _mean_sd, _run

#: the four fits: name → ``pimc fit --set`` overrides
VARIANTS: dict[str, list[str]] = {
    "pre": [],
    "nopre": ["pretrain.steps=0"],
    "pre+scene": ["ensemble.forest_weight=0.5", "ensemble.self_training=true", "ensemble.network_rounds=1"],
    "nopre+scene": ["pretrain.steps=0", "ensemble.forest_weight=0.5", "ensemble.self_training=true",
                    "ensemble.network_rounds=1"],
}
#: overrides of every fit (see the module docstring)
COMMON = ["cv_folds=0", "forecast.enabled=false", "classifier_inputs=temporal"]
#: the section of docs/RESULTS.md this benchmark writes
BEGIN = "<!-- pretraining: python -m benchmarks.bench_pretraining -->"
END = "<!-- /pretraining -->"


def fields_per_class(fields: np.ndarray, truth: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Labels on ``n`` whole fields per class, drawn at random (``seed``).

    Args:
        fields: (H, W) field ids (0: no field); truth: (H, W) class ids (0: unlabelled), one class
            per field (the class of a field is its most frequent one).
        n: fields per class; a class with ``n`` or fewer fields gets all of them but one (at
            least one), so that every class with two fields keeps one withheld.

    Returns:
        (H, W) class ids of ``truth`` on the chosen fields, 0 elsewhere (same dtype as ``truth``).
    """
    if n < 1:
        raise ValueError(f"fields per class must be 1 or more; got {n}")
    ids = np.unique(fields[(fields > 0) & (truth > 0)])
    cls = np.array([np.bincount(truth[(fields == i) & (truth > 0)]).argmax() for i in ids], np.int64)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(cls):
        mine = rng.permutation(ids[cls == c])
        chosen.append(mine[: max(1, min(n, mine.size - 1))])
    keep = np.isin(fields, np.concatenate(chosen)) & (truth > 0)
    return np.where(keep, truth, 0).astype(truth.dtype)


def write_labels(fields_tif: Path, truth_tif: Path, out: Path, n: int, seed: int) -> Path:
    """:func:`fields_per_class` of two rasters on one grid, written to ``out`` like ``truth_tif``."""
    import rasterio

    from pimc_core.io.atomic import atomic_path

    with rasterio.open(fields_tif) as f, rasterio.open(truth_tif) as t:
        labels, prof = fields_per_class(f.read(1), t.read(1), n, seed), t.profile
    with atomic_path(out) as tmp, rasterio.open(tmp, "w", **prof) as dst:
        dst.write(labels, 1)
    return out


def one_fit(syn, labels: Path, d: Path, sets: list[str]) -> dict:
    """``pimc fit`` + ``pimc classify`` into ``d``; accuracy on the pixels outside ``labels``."""
    d.mkdir(parents=True, exist_ok=True)
    model = d / "model.pimc"
    t_fit = _run(["fit", str(syn.manifest), "--labels", str(labels), "--classes", str(syn.classes_json),
                  "--out", str(model), "--quiet", *[x for kv in sets for x in ("--set", kv)]])
    t_cls = _run(["classify", str(syn.manifest), "--model", str(model), "--out", str(d / "maps"), "--quiet"])
    return {**scored(d, syn.labels, labels), "fit_s": round(t_fit, 1), "classify_s": round(t_cls, 1)}


def scored(d: Path, truth: Path, labels: Path) -> dict:
    """The accuracy of the map in ``d / "maps"`` outside ``labels``, and what its model file says."""
    from pimc_core.demo import heldout_accuracy
    from pimc_core.models.model_file import read_metadata

    tr = read_metadata(d / "model.pimc")["training"]
    return {**heldout_accuracy(d / "maps" / "classes.tif", truth, labels),
            "pretrain_steps": (tr.get("pretrain") or {}).get("steps"),
            "pseudo": (tr.get("ensemble") or {}).get("pseudo_labelled"),
            "inputs": ((tr.get("finetune") or {}).get("inputs") or {}).get("inputs")}


def one_scene(d: Path, seed: int, size: int, n_dates: int, cloud: float, counts: tuple[int, ...],
              variants: tuple[str, ...] = tuple(VARIANTS)) -> list[dict]:
    """Every labelling (``counts`` fields per class) × ``variants`` of one generated scene."""
    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.demo import random_forest_baseline

    d.mkdir(parents=True, exist_ok=True)
    (d / "run.json").write_text(json.dumps({"commit": _commit(), "load": os.getloadavg()[0]}))
    syn = make_synthetic(d / "syn", size=size, n_dates=n_dates, seed=seed, cloud_fraction=cloud)
    rows = []
    for n in counts:
        labels = write_labels(syn.fields, syn.labels, d / f"labels_{n}.tif", n, seed + 1000)
        row = {"seed": seed, "size": size, "cloud": cloud, "fields": n, "dates": n_dates, "commit": _commit(),
               "load": os.getloadavg()[0], "rf": random_forest_baseline(syn.manifest, syn.labels, labels, train_tif=labels)}
        for name in variants:
            sets = VARIANTS[name]
            ck = [f"checkpoint_dir={d / 'ckpt'}"] if "pretrain.steps=0" not in sets else []
            row[name] = one_fit(syn, labels, d / f"f{n}_{name}", COMMON + sets + ck)
            print(f"cloud {cloud:g} seed {seed} {n} field(s)/class {name}: {row[name]['oa']:.4f} "
                  f"(fit {row[name]['fit_s']:.0f} s)", flush=True)
        print(f"cloud {cloud:g} seed {seed} {n} field(s)/class RF: {row['rf']['oa']:.4f}", flush=True)
        rows.append(row)
    return rows


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def run(seeds=(2, 3, 4, 5, 6), counts=(1, 10), size: int = 96, clouds=(0.15,), n_dates: int = 24,
        root: Path = Path("bench_out/pretraining"), variants: tuple[str, ...] = tuple(VARIANTS)) -> list[dict]:
    """Every scene not yet under ``root`` (one ``c{cloud}_s{seed}.json`` each); all rows there."""
    root = REPO / root
    for cloud in clouds:
        for seed in seeds:
            out = root / f"c{cloud:g}_s{seed}.json"
            if not out.exists():
                rows = one_scene(root / f"c{cloud:g}_s{seed}", seed, size, n_dates, cloud, tuple(counts), variants)
                out.write_text(json.dumps(rows, indent=1))
    return load_rows(root, tuple(variants))


def _utc(p: Path) -> str:
    return dt.datetime.fromtimestamp(p.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def load_rows(root: Path, need: tuple[str, ...] = ()) -> list[dict]:
    """The rows of every scene JSON under ``root`` and, for a scene folder without one (a stopped
    run), of the labellings whose fits ``need`` all have a map (:func:`collect_scene`); by cloud,
    labels, seed. ``written``: when the JSON or the last map was written (UTC)."""
    rows = []
    for d in sorted(p for p in Path(root).glob("c*_s*") if p.is_dir() or p.suffix == ".json"):
        if d.suffix == ".json":
            rows += [{**r, "written": _utc(d)} for r in json.loads(d.read_text())]
        elif not (d.parent / f"{d.name}.json").exists():  # not with_suffix: "c0.15_s2" has a dot
            rows += collect_scene(d, need)
    rows = [r for r in rows if all(n in r for n in need)]
    return sorted(rows, key=lambda r: (r["cloud"], r["fields"], r["seed"]))


def collect_scene(d: Path, need: tuple[str, ...]) -> list[dict]:
    """The rows of a scene folder ``c{cloud}_s{seed}`` whose run stopped: per labelling
    ``labels_{n}.tif``, the fits that have a map, if ``need`` all have one."""
    import rasterio

    from pimc_core.demo import random_forest_baseline
    from pimc_core.models.model_file import read_metadata

    cloud, seed = d.name[1:].split("_s")
    syn = d / "syn"
    rows = []
    for lab in sorted(d.glob("labels_*.tif")):
        n = int(lab.stem.split("_")[1])
        done = [v for v in VARIANTS if (d / f"f{n}_{v}" / "maps" / "classes.tif").exists()]
        if not done or not set(need) <= set(done):
            continue
        with rasterio.open(syn / "labels.tif") as src:
            size = src.width
        row = {**(json.loads((d / "run.json").read_text()) if (d / "run.json").exists() else {}),
               "seed": int(seed), "size": size, "cloud": float(cloud), "fields": n,
               "dates": len(list(syn.glob("S2_*.tif"))), "written": max(_utc(d / f"f{n}_{v}" / "maps" / "classes.tif")
                                                                      for v in done),
               "rf": random_forest_baseline(syn / "manifest.yaml", syn / "labels.tif", lab, train_tif=lab)}
        fits = {v: scored(d / f"f{n}_{v}", syn / "labels.tif", lab) for v in done}
        for v in done:
            fits[v]["fit_s"] = read_metadata(d / f"f{n}_{v}" / "model.pimc")["training"].get("seconds")
        rows.append(row | fits)
    return rows


#: the differences reported: name → (minuend, subtrahend)
DIFFS = {"pretraining, labels only": ("pre", "nopre"), "pretraining, + scene": ("pre+scene", "nopre+scene"),
         "scene, pretrained": ("pre+scene", "pre"), "scene, no pretraining": ("nopre+scene", "nopre")}


def _oa(r: dict, name: str) -> float:
    return r[name]["oa"]


def _present(rows: list[dict]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The variants every row has, and the differences (:data:`DIFFS`) they allow."""
    names = [n for n in VARIANTS if all(n in r for r in rows)]
    return names, {k: (a, b) for k, (a, b) in DIFFS.items() if a in names and b in names}


def markdown(rows: list[dict]) -> str:
    """Per-seed table, then per labelling and cloud level: mean ± sd of each variant and of the
    differences (points of overall accuracy × 100), with how many seeds each difference is > 0."""
    variants, diffs = _present(rows)
    names = [*variants, "rf"]
    head = "| fields/class | cloud | seed | held-out px | " + " | ".join(names) + "".join(f" | Δ {k}" for k in diffs) + " |"
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['fields']} | {r['cloud']:g} | {r['seed']} | {r[variants[0]]['pixels']} | "
                     + " | ".join(f"{_oa(r, n):.4f}" for n in names)
                     + "".join(f" | {100 * (_oa(r, a) - _oa(r, b)):+.1f}" for a, b in diffs.values()) + " |")
    lines += ["", "Mean ± standard deviation over seeds (overall accuracy; differences in points):", "",
              "| fields/class | cloud | seeds | " + " | ".join(names) + "".join(f" | Δ {k}" for k in diffs) + " |",
              "|" + "---:|" * (3 + len(names) + len(diffs))]
    for g in sorted({(r["fields"], r["cloud"]) for r in rows}):
        sel = [r for r in rows if (r["fields"], r["cloud"]) == g]
        cells = [_mean_sd([_oa(r, n) for r in sel]) for n in names]
        for a, b in diffs.values():
            d = _points(sel, a, b)
            sd = statistics.stdev(d) if len(d) > 1 else 0.0
            cells.append(f"{statistics.fmean(d):+.1f} ± {sd:.1f} ({sum(x > 0 for x in d)}/{len(d)} > 0)")
        lines.append(f"| {g[0]} | {g[1]:g} | {len(sel)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _points(rows: list[dict], a: str, b: str) -> list[float]:
    return [100 * (_oa(r, a) - _oa(r, b)) for r in rows]


def _interval(d: list[float]) -> tuple[float, float]:
    """95 % interval of the mean of ``d`` (Student's t)."""
    from scipy import stats

    if len(d) < 2:
        return (-np.inf, np.inf)
    half = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / np.sqrt(len(d))
    return statistics.fmean(d) - half, statistics.fmean(d) + half


def _gain(d: list[float]) -> str:
    lo, hi = _interval(d)
    sd = statistics.stdev(d) if len(d) > 1 else 0.0
    word = "a measurable gain" if lo > 0 else "a measurable loss" if hi < 0 else "nothing measurable"
    return (f"{statistics.fmean(d):+.1f} ± {sd:.1f} points (95 % interval {lo:+.1f} to {hi:+.1f}: {word}; "
            f"ahead on {sum(x > 0 for x in d)} of {len(d)} scenes)")


def verdict(rows: list[dict]) -> str:
    """The plain answer, one sentence per labelling (all cloud levels together): what pretraining
    adds, in points of overall accuracy (mean ± sd over the scenes, 95 % interval of the mean),
    once the scene's pixels are used and, when measured, with the labels only; "measurable" when
    the interval excludes 0."""
    _, diffs = _present(rows)
    out = []
    for n in sorted({r["fields"] for r in rows}):
        sel = [r for r in rows if r["fields"] == n]
        txt = f"With {n} labelled field{'s' if n > 1 else ''} per class, pretraining adds"
        if "pretraining, + scene" in diffs:
            txt += f" {_gain(_points(sel, *diffs['pretraining, + scene']))} once the scene's pixels are used in fine-tuning"
        if "pretraining, labels only" in diffs:
            txt += (", and" if "pretraining, + scene" in diffs else "")
            txt += f" {_gain(_points(sel, *diffs['pretraining, labels only']))} with the labels only"
        out.append(txt + ".")
    return " ".join(out)


def section(rows: list[dict], command: str) -> str:
    """The docs/RESULTS.md section: how it was run, the tables, the plain answer."""
    from benchmarks.run_all import machine

    written = sorted(r["written"] for r in rows)
    commits = ", ".join(sorted({r.get("commit", "unknown")[:7] for r in rows}))
    loads = [r["load"] for r in rows if r.get("load") is not None]
    load = f"; 1-minute load average {min(loads):.1f}–{max(loads):.1f} during the run" if loads else ""
    r0 = rows[0]
    return "\n".join([
        BEGIN,
        "## 8. Does PIMC pretraining earn its place once the scene's pixels are used?", "",
        f"Written by `{command}`" + (" from the fits of the same command without `--report` (a scene per process "
                                     "is fine: each writes its own folder)" if "--report" in command else "")
        + f"; scenes finished {written[0]} – {written[-1]} UTC, commit {commits} (the checkout's when each labelling started); machine: "
        f"{machine()}{load} (other processes shared these cores). `python -m training report` keeps this section.", "",
        f"Generated stacks (`make_synthetic`, {r0['size']} × {r0['size']} px, {r0.get('dates', 24)} dates, 9 classes, "
        "seeds and cloud covers below). Labels: every pixel of *n* whole fields per class drawn at random (all but one "
        "where a class has *n* or fewer fields). `pimc fit` runs per labelling (the columns below), with the defaults except "
        "`cv_folds=0`, `forecast.enabled=false` (neither changes the classifier) and `classifier_inputs=temporal` (what "
        "`auto` picks with one field per class; no trial fine-tuning): *pre* (pretraining as configured) "
        "and *nopre* (`pretrain.steps=0`), each with the labels only (`ensemble.forest_weight=0`) or *+scene*: "
        "`ensemble.forest_weight=0.5 ensemble.self_training=true ensemble.network_rounds=1` (a random-forest member "
        "self-trained on the scene's sampled pixels, the network fine-tuned once more on the labelled and "
        "pseudo-labelled pixels, the map their mix). Then `pimc classify`; overall accuracy on every pixel outside "
        "the labelled fields; *rf*: a RandomForest (300 trees) on the gap-filled NDVI/EVI/SAVI series of the same "
        "labelled pixels. Differences (Δ) are in points (accuracy × 100), paired per scene.", "",
        markdown(rows), "",
        *([f"Not run here: {', '.join(f'*{v}*' for v in VARIANTS if v not in _present(rows)[0])}.", ""]
          if len(_present(rows)[0]) < len(VARIANTS) else []),
        f"**Answer.** {verdict(rows)}", END]) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    ap.add_argument("--fields", type=int, nargs="+", default=[1, 10], help="labelled fields per class")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--clouds", type=float, nargs="+", default=[0.15])
    ap.add_argument("--dates", type=int, default=24)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--root", type=Path, default=Path("bench_out/pretraining"))
    ap.add_argument("--report", action="store_true", help="only the tables of the scenes under --root")
    ap.add_argument("--results", type=Path, help="write the tables as a section of this file (docs/RESULTS.md)")
    argv = list(sys.argv[1:] if argv is None else argv)
    a = ap.parse_args(argv)
    if a.report:
        rows = load_rows(REPO / a.root, tuple(a.variants))
    else:
        rows = run(tuple(a.seeds), tuple(a.fields), a.size, tuple(a.clouds), a.dates, a.root, tuple(a.variants))
    if not rows:
        sys.exit(f"no results under {a.root}")
    if a.results:
        from training.output import write_section

        write_section(a.results, section(rows, "python -m benchmarks.bench_pretraining " + " ".join(argv)), BEGIN, END)
    print(markdown(rows) + "\n\n" + verdict(rows))


if __name__ == "__main__":
    main()
