"""Benchmark: text queries over pixels on generated scenes not used for training.

``python -m benchmarks.bench_text_query`` (defaults: 64² px × 24-date synthetic scenes, training
scene seed 0, test scenes seeds 2-5 (seed 1 was the scene the captions' mix and the number of
epochs were tried on while this was written, so it is left out); writes ``bench_out/text_query/text_query.json`` and, with
``--results docs/RESULTS.md``, its section there).

* **Training scene** (seed ``--train-seed``): ``pimc sample-data --kind synthetic``; the PIMC model
  is ``pimc fit`` on it with the sparse labels (``labels_sparse.tif``: about 30 % of the fields,
  one field for most classes) and ``classes.json``, default configuration (or ``--model``); the
  text head is ``pimc text-fit`` on the same scene with ``--text-labels`` (default its full
  ``labels.tif``: class names in the captions of every pixel; ``labels_sparse.tif``: of the
  sparse fields only) — phenology captions for every pixel either way.
* **Test scenes** (``--test-seeds``): other seeds of the generator, so other fields, other per-field
  timing and other clouds; nothing of them is trained on. Their full ``labels.tif`` is the truth.
* **Class-name queries**: the class name as a sentence (``winter wheat``); precision at the class's
  pixel count (the share of the class among the k most similar pixels, k = its pixel count) and
  average precision (scikit-learn).
* **Description queries**: sentences of the kind the captions say (``green-up in March, harvested in
  July``). Their truth: the pixels of the classes whose generator curve (the nominal NDVI of
  :func:`pimc_core.datasets.synthetic_classes.class_ndvi`, no jitter, no clouds) meets every
  threshold the sentence states (:func:`pimc_core.series.captions.sentence_rules`). The baseline is
  the same thresholds applied to each pixel's measured phenology metrics (``pimc phenology`` of the
  test scene): :func:`~pimc_core.series.captions.rule_score` ranks pixels meeting every threshold
  first, then by how far outside they are (ties broken at random). Sentences that state no
  threshold (``open water``) have no baseline.
* The similarity of every query comes from one map run per scene of the model's pixel side
  (:class:`~pimc_core.maps.text_query.TextQueryModel`) and the text vectors; one ``pimc query``
  per scene checks that the command writes the same similarity map.
* **Reference for class names**: the pixels ranked by the model's own classifier's probability of
  the class (``pimc classify --probabilities``), trained on the sparse labels: what the frozen
  embeddings give with a head trained for the classes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

DESCRIPTIONS = (
    "green-up in March, harvested in July",
    "green-up in early June, harvested in late September",
    "green-up in late May, harvested in mid September",
    "green-up in May, peak in late June, harvested in August",
    "green-up in April, end of season in early November",
    "green-up in mid March, end of season in early November",
    "peak NDVI 0.8 in July",
    "open water",
    "evergreen, green all year",
    "bare all year",
)
#: truth of the sentences without thresholds: the classes they name in other words
NO_RULE_TRUTH = {"open water": ("water",), "evergreen, green all year": ("coniferous_forest",),
                 "bare all year": ("bare_urban",)}


def _pimc(*argv: str) -> None:
    """Run ``pimc`` in a fresh process (as a user would); fail loudly."""
    r = subprocess.run([sys.executable, "-m", "pimc_core.cli", *argv], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"pimc {' '.join(argv[:1])} failed: {r.stderr.strip()}")
    if r.stderr.strip() and "query" in argv[:1]:
        print(r.stderr.strip(), file=sys.stderr)


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def precision_at_count(scores: np.ndarray, truth: np.ndarray, seed: int = 0) -> float:
    """Share of ``truth`` among the ``truth.sum()`` highest ``scores`` (ties broken at random)."""
    k = int(truth.sum())
    if k == 0:
        return float("nan")
    jitter = np.random.default_rng(seed).random(scores.shape[0]) * 1e-9
    order = np.lexsort((jitter, -scores))
    return float(truth[order[:k]].mean())


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    s = np.where(np.isfinite(scores), scores, np.nanmin(np.where(np.isfinite(scores), scores, np.nan)) - 1.0)
    return float(average_precision_score(truth, s))


def nominal_truth(sentence: str, year: int, names: Sequence[str]) -> tuple[str, ...]:
    """The classes whose generator curve meets every threshold of ``sentence``."""
    from pimc_core.datasets.synthetic_classes import CLASSES, class_ndvi
    from pimc_core.series.captions import rule_score, sentence_rules
    from pimc_core.series.phenology import phenology_metrics

    if sentence in NO_RULE_TRUTH:
        return NO_RULE_TRUTH[sentence]
    rules = sentence_rules(sentence, year)
    x = np.arange(1.0, 366.0, 5.0)
    specs = [c for c in CLASSES if c.name in names]
    m = phenology_metrics(np.stack([class_ndvi(c.id, x) for c in specs]), x)
    ok = rule_score(rules, m) == 0
    return tuple(c.name for c, k in zip(specs, ok) if k)


def evaluate_scene(folder: Path, model: Path, work: Path) -> dict:
    """Every query on one test scene: text similarity vs truth, and the rule baseline."""
    from pimc_core.io.classes import load_class_table
    from pimc_core.io.timeseries import open_series
    from pimc_core.maps.engine import run_inference
    from pimc_core.maps.phenology import phenology_map
    from pimc_core.maps.protocol import load_model
    from pimc_core.maps.text_query import TextQueryModel
    from pimc_core.models.text_encoder import load_text_head
    from pimc_core.series.captions import rule_score, sentence_rules
    from pimc_core.series.phenology import METRICS

    ts = open_series(folder / "manifest.yaml")
    year = ts.dates[0].year
    head = load_text_head(model)
    run_inference(ts, TextQueryModel(load_model(str(model)), head), None, work / "pixels", products=("embeddings",))
    emb = _read(work / "pixels" / "embeddings.tif").reshape(head.sizes["out_dim"], -1).T.astype(np.float64)
    ok = np.isfinite(emb).all(axis=1)
    unit = np.where(ok[:, None], emb, 0.0) / np.maximum(np.linalg.norm(np.where(ok[:, None], emb, 0.0), axis=1), 1e-12)[:, None]
    phenology_map(ts, None, work / "phenology")
    pheno = _read(work / "phenology" / "phenology.tif").reshape(len(METRICS), -1)
    metrics = {k: pheno[i][ok].astype(np.float64) for i, k in enumerate(METRICS)}
    labels = _read(folder / "labels.tif")[0].ravel()[ok]
    table = load_class_table(folder / "classes.json")
    ids = {c["name"]: c["id"] for c in table}
    # the command itself, once: the same map as the numbers below
    first = table[0]["name"].replace("_", " ")
    _pimc("query", str(folder / "manifest.yaml"), "--model", str(model), "--text", first, "--out", str(work / "query"),
          "--quiet")
    sim_cli = _read(work / "query" / "similarity.tif")[0].ravel()[ok]
    # the reference for class names: the model's own classifier, pixels ranked by its probability of the class
    run_inference(ts, str(model), None, work / "classifier", products=("probabilities",))
    prob = _read(work / "classifier" / "probabilities.tif").reshape(len(table), -1)[:, ok]
    diff = float(np.max(np.abs(sim_cli - unit[ok] @ head.text_vectors([first])[0])))
    rows = []
    for i, c in enumerate(table):
        text = c["name"].replace("_", " ")
        sim = unit[ok] @ head.text_vectors([text])[0]
        truth = labels == c["id"]
        rows.append({"kind": "class", "query": text, "truth": [c["name"]], "pixels": int(truth.sum()),
                     "p_at_k": precision_at_count(sim, truth), "ap": average_precision(sim, truth),
                     "classifier_p_at_k": precision_at_count(prob[i].astype(np.float64), truth)})
    for text in DESCRIPTIONS:
        classes = nominal_truth(text, year, list(ids))
        truth = np.isin(labels, [ids[n] for n in classes])
        if not truth.any():
            continue
        sim = unit[ok] @ head.text_vectors([text])[0]
        row = {"kind": "description", "query": text, "truth": list(classes), "pixels": int(truth.sum()),
               "p_at_k": precision_at_count(sim, truth), "ap": average_precision(sim, truth),
               "unknown": head.tokeniser.unknown(text)}
        rules = sentence_rules(text, year)
        if rules:
            base = rule_score(rules, metrics)
            row.update(rule_p_at_k=precision_at_count(base, truth), rule_ap=average_precision(base, truth),
                       rule_all=int((base == 0).sum()), rule_all_precision=float(truth[base == 0].mean()) if (base == 0).any()
                       else float("nan"))
        rows.append(row)
    return {"scene": folder.name, "pixels": int(ok.sum()), "cli_max_abs_diff": diff, "rows": rows}


def summarise(scenes: list[dict]) -> list[dict]:
    """Mean ± sd over the scenes, per query."""
    out = []
    for i, row in enumerate(scenes[0]["rows"]):
        per = [s["rows"][i] for s in scenes if i < len(s["rows"]) and s["rows"][i]["query"] == row["query"]]
        agg = {"kind": row["kind"], "query": row["query"], "truth": row["truth"], "scenes": len(per)}
        for key in ("p_at_k", "ap", "rule_p_at_k", "rule_ap", "classifier_p_at_k"):
            vals = [r[key] for r in per if key in r]
            if vals:
                agg[key] = (float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
        out.append(agg)
    return out


def _pm(v) -> str:
    return "–" if v is None else f"{v[0]:.2f} ± {v[1]:.2f}"


def _table(res: dict) -> list[str]:
    """One run's table and its summary sentence."""
    summ, t = res["summary"], res["text"]
    lines = [
        f"**Text head trained with `{res['text_labels']}`** of the training scene ({t['pixels']} pixels, "
        f"{t['labelled_pixels']} labelled, {t['vocabulary']} words, InfoNCE loss {t['losses'][0]:.2f} → "
        f"{t['losses'][-1]:.2f}, {t['seconds']:.0f} s under load):",
        "",
        "| query | truth (classes) | P@k text | AP text | P@k rule baseline | AP rule baseline | P@k model's classifier |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summ:
        lines.append(f"| {r['kind']}: “{r['query']}” | {', '.join(r['truth'])} | {_pm(r.get('p_at_k'))} | {_pm(r.get('ap'))} "
                     f"| {_pm(r.get('rule_p_at_k'))} | {_pm(r.get('rule_ap'))} | {_pm(r.get('classifier_p_at_k'))} |")
    cls = [r for r in summ if r["kind"] == "class"]
    desc = [r for r in summ if "rule_ap" in r]
    met = [r["truth"][0] for r in cls if r["p_at_k"][0] >= 0.8]
    beat = sum(r["ap"][0] > r["rule_ap"][0] for r in desc)
    lines += ["", f"Class-name queries: P@k ≥ 0.8 for {len(met)} of {len(cls)} classes (below: "
              f"{', '.join(r['truth'][0] for r in cls if r['truth'][0] not in met) or 'none'}; mean P@k "
              f"{np.mean([r['p_at_k'][0] for r in cls]):.2f}). Description queries with thresholds: the text query has "
              f"the higher AP in {beat} of {len(desc)} (mean AP text {np.mean([r['ap'][0] for r in desc]):.2f}, rules "
              f"{np.mean([r['rule_ap'][0] for r in desc]):.2f}).", ""]
    return lines


def markdown(runs: list[dict]) -> str:
    """The RESULTS.md section of one or more runs (one per ``--text-labels``)."""
    res = runs[0]
    lines = [
        "<!-- text-queries: python -m benchmarks.bench_text_query -->",
        "## 6. Text queries over pixels (generated scenes not trained on)",
        "",
        f"Written by `{res['command']}` on {res['date']}. Model: `pimc fit` on the scene of seed {res['train_seed']} "
        f"({res['size']}² px, {res['dates']} dates) with its sparse labels (one field for most classes); text head: "
        f"`pimc text-fit` on the same scene. Test scenes: seeds {', '.join(map(str, res['test_seeds']))} (other "
        "fields, timing and clouds; their full `labels.tif` is the truth; seed 1 is left out: the captions' mix and "
        "the epochs were tried on it). Mean ± sd over the test scenes. P@k: share of the truth among the k most "
        "similar pixels, k = the truth's pixel count; AP: average precision. The truth of a description is the "
        "classes whose noise-free generator curve meets the thresholds the sentence states; the rule baseline "
        "applies the same thresholds to each pixel's measured `pimc phenology` metrics, so it would be perfect on "
        "noise-free, cloud-free series and loses where per-field timing, clouds and smoothing shift a pixel's "
        "measured season. Sentences without a threshold (open water, evergreen, bare) have no baseline.",
        "",
    ]
    for r in runs:
        lines += _table(r)
    diff = max(s["cli_max_abs_diff"] for r in runs for s in r["scenes"])
    lines += [f"`pimc query` wrote the same map as these numbers (largest difference {diff:.1e}). The last column "
              "ranks the pixels by the model's own classifier's probability of the class (trained on the sparse "
              "labels): what the pixel embeddings allow on a new scene with a head trained for the classes.",
              "<!-- /text-queries -->"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_text_query", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench_out/text_query")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--dates", type=int, default=24)
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--test-seeds", default="2,3,4,5")
    p.add_argument("--text-labels", default="labels.tif,labels_sparse.tif",
                   help="labels of the training scene for text-fit, one run each (comma-separated)")
    p.add_argument("--model", help="a PIMC model of the training scene (default: pimc fit, cached)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--results", help="write the section into this Markdown file (docs/RESULTS.md)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in a.test_seeds.split(",")]
    for s in [a.train_seed, *seeds]:
        if not (out / f"syn{s}" / "manifest.yaml").exists():
            _pimc("sample-data", "--kind", "synthetic", "--size", str(a.size), "--dates", str(a.dates), "--seed", str(s),
                  str(out / f"syn{s}"))
    train = out / f"syn{a.train_seed}"
    model = Path(a.model) if a.model else out / "model.pimc"
    if not model.exists():
        _pimc("fit", str(train / "manifest.yaml"), "--labels", str(train / "labels_sparse.tif"), "--classes",
              str(train / "classes.json"), "--out", str(model), "--quiet")
    from pimc_core.models.model_file import read_metadata

    runs = []
    for labels in a.text_labels.split(","):
        text_model = out / f"model_text_{Path(labels).stem}.pimc"
        _pimc("text-fit", str(train / "manifest.yaml"), "--model", str(model), "--out", str(text_model), "--labels",
              str(train / labels), "--classes", str(train / "classes.json"), "--epochs", str(a.epochs), "--quiet")
        scenes = [evaluate_scene(out / f"syn{s}", text_model, out / f"eval{s}") for s in seeds]
        runs.append({"command": "python -m benchmarks.bench_text_query " + " ".join(argv if argv is not None else sys.argv[1:]),
                     "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "size": a.size,
                     "dates": a.dates, "train_seed": a.train_seed, "test_seeds": seeds, "text_labels": labels,
                     "text": read_metadata(text_model)["training"]["text"], "scenes": scenes, "summary": summarise(scenes)})
    (out / "text_query.json").write_text(json.dumps(runs, indent=1))
    section = markdown(runs)
    print(section)
    if a.results:
        from training.output import write_section

        write_section(Path(a.results), section, "<!-- text-queries:", "<!-- /text-queries -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
