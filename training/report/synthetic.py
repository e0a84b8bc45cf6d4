"""Section 1 of the report: the synthetic label-efficiency benchmark, one scene per seed.

For a seed: a new scene (:func:`pimc_core.datasets.synthetic.make_synthetic`), its fields split
per class into training and test fields (:func:`field_split`), unlabelled pixels for
pretraining and test pixels drawn with the sampler of :mod:`pimc_core.fit.pipeline`, the network
pretrained once with :func:`pimc_core.fit.pipeline.pretrain_encoders`; then for each label
fraction (nested subsets of the training fields, :func:`fields_for_fraction`) the same
fine-tuning step (:func:`pimc_core.fit.pipeline.train_classifier`) from the pretrained and from
the untouched initial weights, linear probes on both, a random forest and a 1-D CNN, all scored
on the same test pixels; and the ablations at the smallest fraction. A finished seed is saved
with the code and config it came from, so an interrupted report resumes (:func:`cached_seed`).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pimc_core.fit import pipeline as steps
from pimc_core.fit.config import DataConfig
from pimc_core.io.atomic import atomic_path
from training.evaluate import brief, random_forest
from training.output import log, write_text
from training.report.config import ENCODERS, ReportConfig, SyntheticBench, replace_config
from training.report.stats import METHODS, verdict

__all__ = ["cached_seed", "code_fingerprint", "field_split", "fields_for_fraction", "run_synthetic",
           "seasonal_reference", "synthetic_seed"]

_REPO = Path(__file__).resolve().parents[2]


# ============================================================================ scenes and fields
def field_split(labels: np.ndarray, fields: np.ndarray, test_share: float, rng: np.random.Generator
                ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Training and test field ids per class: ``test_share`` of every class's fields (at least
    one, and at least one left for training when the class has two or more).

    Args:
        labels, fields: (H, W) class ids and field ids (0: none).
    """
    lab = labels.ravel()
    fld = fields.ravel()
    sel = (lab > 0) & (fld > 0)
    pairs = np.unique(np.stack([fld[sel], lab[sel]], 1), axis=0)
    train, test = {}, {}
    for c in np.unique(pairs[:, 1]):
        fs = rng.permutation(pairs[pairs[:, 1] == c, 0])
        k = min(max(1, int(round(test_share * fs.size))), max(1, fs.size - 1)) if fs.size > 1 else 0
        test[int(c)], train[int(c)] = np.sort(fs[:k]), fs[k:]  # train keeps the permuted order
    return train, test


def fields_for_fraction(train_fields: Mapping[int, np.ndarray], fraction: float) -> dict[int, np.ndarray]:
    """The first ``max(1, round(fraction * n))`` training fields of every class (the training
    fields come in a random order, so the subsets of increasing fractions are nested)."""
    return {c: fs[:max(1, int(round(fraction * fs.size)))] for c, fs in train_fields.items() if fs.size}


def _read_band1(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1)


def seasonal_reference(ts, k: int, path: Path, bands: Sequence[str]) -> tuple[Path, tuple[str, ...]]:
    """Write ``k`` median composites of ``k`` consecutive groups of dates (equal counts) as one
    GeoTIFF on the stack's grid (bands ``s1_blue, s1_green, ..., sk_swir1``); NaN where a pixel
    has no valid observation in a group. Returns the path and the band names.

    Groups of equal *counts* of dates, unlike ``pimc fit``'s ``reference: seasonal:K``
    (:func:`pimc_core.series.composites.seasonal_composite`: periods of equal *length*); kept so
    that the report's recorded numbers stay reproducible."""
    import rasterio

    from pimc_core.series.composites import composite_of

    obs = ts.read(bands=tuple(bands))
    groups = np.array_split(np.arange(obs.reflectance.shape[0]), k)
    comp = np.concatenate([composite_of(obs.reflectance[g], obs.valid[g]) for g in groups]).astype(np.float32)
    names = tuple(f"s{i + 1}_{b}" for i in range(k) for b in bands)
    g = ts.grid
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", width=g.width, height=g.height, count=comp.shape[0],
                           dtype="float32", crs=g.crs, transform=g.transform, nodata=float("nan")) as dst:
            dst.write(comp)
            for i, n in enumerate(names, start=1):
                dst.set_band_description(i, n)
    return path, names


@dataclass
class _Scene:
    """One seed's scene: its stack, truth, field split, sampler and the pretraining / test pixels."""

    ts: Any
    names: list[str]
    class_ids: list[int]
    labels: np.ndarray  # (H, W) class ids
    fields: np.ndarray  # (H, W) field ids
    train_fields: dict[int, np.ndarray]
    test_fields: dict[int, np.ndarray]
    data: DataConfig
    sampler: steps.Sampler
    unlabelled: Any  # PixelSamples for pretraining
    test: Any  # PixelSamples of the test fields, with their labels
    pool_pixels: int  # pixels of the training fields


def _scene(sc: SyntheticBench, seed: int, folder: Path) -> _Scene:
    from pimc_core.datasets.synthetic import BAND_NAMES, make_synthetic
    from pimc_core.io.timeseries import open_series

    sample = make_synthetic(folder, size=sc.size, n_dates=sc.n_dates, seed=sc.scene_seed + seed)
    ts = open_series(sample.manifest)
    labels = _read_band1(sample.labels).astype(np.int64)
    fields = _read_band1(sample.fields).astype(np.int64)
    train_f, test_f = field_split(labels, fields, sc.test_share, np.random.default_rng([seed, 0x5EB0]))
    test_mask = np.isin(fields, np.concatenate([v for v in test_f.values()]))
    train_mask = np.isin(fields, np.concatenate([v for v in train_f.values()]))
    reference, patch_bands = "median", tuple(BAND_NAMES)
    if sc.reference.startswith("seasonal:"):
        path, patch_bands = seasonal_reference(ts, int(sc.reference.split(":")[1]),
                                               folder / "seasonal_reference.tif", BAND_NAMES)
        reference = str(path)
    data = DataConfig(indices=tuple(sc.indices), min_valid=sc.min_valid, dates="observed", patch_size=sc.patch_size,
                      patch_bands=patch_bands, reference=reference)
    steps.check_stack(ts, data)
    sampler = steps.Sampler(data, patch_bands)
    unl = sampler.draw(ts, sc.pretrain_samples, mask=None if sc.pretrain_on == "all" else train_mask, seed=seed * 7 + 1)
    test = sampler.draw(ts, sc.test_pixels, mask=test_mask, seed=seed * 7 + 2)
    test.labels = labels[test.rows, test.cols]
    return _Scene(ts, list(sample.class_names), [int(c) for c in sample.class_ids], labels, fields, train_f, test_f,
                  data, sampler, unl, test, int(train_mask.sum()))


# ============================================================================ one seed
def _finetune_score(sc: SyntheticBench, scene: _Scene, train, norm: Mapping[str, Any], seed: int,
                    weights: Mapping[str, Any] | None, ft, dev, patches: bool = True) -> dict[str, Any]:
    """Fine-tune a fresh network (initialised with ``seed + 1``; ``weights``: pretrained encoders
    loaded over it, None: from scratch) on ``train`` and score it on the scene's test pixels;
    ``patches=False`` trains and predicts without the image patch. Metrics plus ``seconds``."""
    t1 = time.perf_counter()
    net = steps.build_net(sc.model, scene.data, train, seed=seed + 1, n_classes=len(scene.class_ids), normalisation=norm)
    if weights is not None:
        net.load_module_state(weights, strict=False)
    steps.train_classifier(net, train, scene.class_ids, ft, device=dev, patches=patches)
    m = steps.score(net, scene.test, scene.class_ids, device=dev, modalities=None if patches else ("rp", "series"))
    return {**brief(m), "seconds": round(time.perf_counter() - t1, 1)}


def _timed(fn, *args, **kw) -> dict[str, Any]:
    t1 = time.perf_counter()
    out = brief(fn(*args, **kw))
    return {**out, "seconds": round(time.perf_counter() - t1, 1)}


def synthetic_seed(cfg: ReportConfig, seed: int, work: Path, dev, threads: int) -> dict[str, Any]:
    """Every method at every fraction, and the ablations, on the scene of ``seed``."""
    from pimc_core.learn.finetune import classification_metrics, embed, linear_probe
    from pimc_core.models.pimc_net import compute_normalisation
    from pimc_core.models.tempcnn import CNN1DClassifier

    sc = cfg.synthetic
    t0 = time.perf_counter()
    s = _scene(sc, seed, work / f"synthetic_seed{seed}")
    unl, test, class_ids = s.unlabelled, s.test, s.class_ids
    norm = compute_normalisation(unl.series, unl.patches)

    # ---- pretraining (once per seed); ``untrained`` keeps the weights it starts from
    base = steps.build_net(sc.model, s.data, unl, seed=seed, normalisation=norm)
    untrained = copy.deepcopy(base)
    emb_test_untrained = embed(untrained, test.series, test.patches, device=dev)
    n_fields = int(len(np.unique(s.fields)))
    log(f"[synthetic seed {seed}] {sc.size}² px, {n_fields} fields; pretraining "
        f"{sc.pretrain.steps} steps on {len(unl)} unlabelled pixels")
    res = steps.pretrain_encoders(base, unl, sc.pretrain, seed=seed, device=dev, log=log if sc.pretrain.log_every else None)
    weights = base.module_state(include=ENCODERS)
    emb_test = embed(base, test.series, test.patches, device=dev)
    out: dict[str, Any] = {
        "seed": seed, "scene_seed": sc.scene_seed + seed, "fields": n_fields,
        "train_fields": int(sum(v.size for v in s.train_fields.values())),
        "test_fields": int(sum(v.size for v in s.test_fields.values())),
        "train_pool_pixels": s.pool_pixels, "test_pixels": len(test), "pretrain_pixels": len(unl),
        "pretrain": res.summary(), "rows": []}

    def probe(net, train, emb_te):
        return linear_probe(embed(net, train.series, train.patches, device=dev), train.labels, emb_te, test.labels)

    def cnn(train):
        model = CNN1DClassifier(dataclasses.replace(sc.cnn, seed=seed), device=dev).fit(train.series, train.labels)
        return classification_metrics(test.labels, model.predict(test.series), class_ids)

    first_train = None
    for frac in cfg.fractions:
        chosen = fields_for_fraction(s.train_fields, frac)
        ids = np.concatenate(list(chosen.values()))
        lab_sub = np.where(np.isin(s.fields, ids), s.labels, 0).astype(np.uint8)
        train = s.sampler.draw(s.ts, labels=lab_sub, per_class=sc.max_pixels_per_class, seed=seed * 7 + 3)
        first_train = train if first_train is None else first_train
        row: dict[str, Any] = {
            "fraction": frac, "fields": int(ids.size), "labelled_pixels_available": int((lab_sub > 0).sum()),
            "train_pixels": len(train), "fields_per_class": {str(c): int(v.size) for c, v in chosen.items()},
            "pixel_share": round(float((lab_sub > 0).sum()) / max(1, s.pool_pixels), 5)}
        log(f"[synthetic seed {seed}] fraction {frac}: {ids.size} fields, {len(train)} labelled pixels")
        ft = dataclasses.replace(sc.finetune, seed=seed)
        row["scratch"] = _finetune_score(sc, s, train, norm, seed, None, ft, dev)
        row["pimc_finetuned"] = _finetune_score(sc, s, train, norm, seed, weights, ft, dev)
        row["pimc_probe"] = _timed(probe, base, train, emb_test)
        row["random_probe"] = _timed(probe, untrained, train, emb_test_untrained)
        row["random_forest"] = _timed(lambda: random_forest(train, test, sc.rf_trees, seed, threads, class_ids))
        row["cnn1d"] = _timed(cnn, train)
        log(f"[synthetic seed {seed}] fraction {frac}: " + ", ".join(
            f"{k} {row[k]['accuracy']:.3f}" for k in METHODS if k in row))
        out["rows"].append(row)

    out["ablations"] = {ab.name: _ablation(sc, s, i, first_train, norm, weights, seed, dev)
                        for i, ab in enumerate(sc.ablations)}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["class_ids"] = class_ids
    out["class_names"] = s.names
    return out


def _ablation(sc: SyntheticBench, s: _Scene, i: int, train, norm, weights, seed: int, dev) -> dict[str, Any]:
    """The scores of ablation ``i`` on the smallest fraction's labelled pixels ``train``."""
    ab = sc.ablations[i]
    t1 = time.perf_counter()
    w = weights
    if ab.pretrain:
        pcfg = replace_config(sc.pretrain, ab.pretrain, f"synthetic.ablations[{i}].pretrain")
        alt = steps.build_net(sc.model, s.data, s.unlabelled, seed=seed, normalisation=norm)
        log(f"[synthetic seed {seed}] ablation {ab.name!r}: pretraining {pcfg.steps} steps")
        steps.pretrain_encoders(alt, s.unlabelled, pcfg, seed=seed, device=dev)
        w = alt.module_state(include=ENCODERS)
    fcfg = dataclasses.replace(replace_config(sc.finetune, ab.finetune, f"synthetic.ablations[{i}].finetune"), seed=seed)
    if ab.transfer:
        w = {k: v for k, v in w.items() if k in ab.transfer}
    patches = ab.inputs != "temporal"
    res: dict[str, Any] = {}
    if ab.retrains_scratch:
        m = _finetune_score(sc, s, train, norm, seed, None, fcfg, dev, patches=patches)
        res.update(scratch_accuracy=m["accuracy"], scratch_macro_f1=m["macro_f1"])
    m = _finetune_score(sc, s, train, norm, seed, w, fcfg, dev, patches=patches)
    res.update(accuracy=m["accuracy"], macro_f1=m["macro_f1"])
    log(f"[synthetic seed {seed}] ablation {ab.name!r}: accuracy {res['accuracy']:.3f}"
        + (f" (scratch on the same inputs and recipe {res['scratch_accuracy']:.3f})" if "scratch_accuracy" in res else ""))
    return {**res, "seconds": round(time.perf_counter() - t1, 1)}


# ============================================================================ every seed
def code_fingerprint() -> str:
    """Hash of the sources that compute the numbers (``pimc_core/``, ``training/``): a cached result
    is reused only by the same code."""
    import hashlib

    h = hashlib.sha256()
    for folder in ("pimc_core", "training"):
        for f in sorted((_REPO / folder).rglob("*.py")):
            h.update(str(f.relative_to(_REPO)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cached_seed(cfg: ReportConfig, seed: int, work: Path, dev, threads: int) -> dict[str, Any]:
    """:func:`synthetic_seed`, or its result saved by an earlier run of the same code, config and
    seed (``{out_dir}/synthetic_seed{seed}/result.json``): an interrupted report resumes with the
    seeds it had finished."""
    key = {"code": code_fingerprint(), "seed": seed, "fractions": list(cfg.fractions), "device": str(dev),
           "threads": threads, "synthetic": dataclasses.asdict(cfg.synthetic)}
    path = work / f"synthetic_seed{seed}" / "result.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        if saved.get("key") == json.loads(json.dumps(key, default=str)):
            log(f"[synthetic seed {seed}] reused from {path} (same code, config and seed; computed {saved.get('date')})")
            return {**saved["result"], "cached": saved.get("date")}
    result = synthetic_seed(cfg, seed, work, dev, threads)
    write_text(path, json.dumps({"key": key, "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                                 "result": result}, default=str) + "\n")
    return result


def run_synthetic(cfg: ReportConfig, work: Path, dev, threads: int) -> dict[str, Any]:
    """Every seed of the synthetic benchmark and the aggregated table."""
    runs = [cached_seed(cfg, s, work, dev, threads) for s in cfg.seeds]
    table = []
    for i, frac in enumerate(cfg.fractions):
        rows = [r["rows"][i] for r in runs]
        entry: dict[str, Any] = {"fraction": frac, "fields": [r["fields"] for r in rows],
                                 "train_pixels": [r["train_pixels"] for r in rows],
                                 "pixel_share": [r["pixel_share"] for r in rows],
                                 "fields_per_class": [r["fields_per_class"] for r in rows]}
        for m in METHODS:
            entry[m] = {k: [r[m][k] for r in rows] for k in ("accuracy", "macro_f1")}
        table.append(entry)
    ablations = []
    for ab in cfg.synthetic.ablations:
        keys = ("accuracy", "macro_f1") + (("scratch_accuracy", "scratch_macro_f1") if ab.retrains_scratch else ())
        ablations.append({"name": ab.name, "pretrain": dict(ab.pretrain), "finetune": dict(ab.finetune),
                          "transfer": list(ab.transfer), "inputs": ab.inputs,
                          **{k: [r["ablations"][ab.name][k] for r in runs] for k in keys}})
    return {"runs": runs, "table": table, "verdict": verdict(table), "ablations": ablations}
