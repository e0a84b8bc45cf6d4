"""``python -m training evaluate``: label efficiency on the test labels.

For each ``evaluate.label_fractions`` share of the labelled parcels (``repeats`` draws): a
pretrained network fine-tuned vs the same network trained from scratch, a linear probe
(logistic regression) on the pretrained embeddings and a random forest on the gap-filled index
series, all on the same pixels; plus ``evaluate.model`` when given. Writes
``{out_dir}/evaluate.json`` and ``evaluate.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError
from pimc_core.fit import pipeline as steps
from training.config import TrainConfig
from training.output import log, write_json, write_text
from training.stacks import RasterRun
from training.train import init_path

__all__ = ["brief", "random_forest", "run_evaluate"]


def brief(m: dict[str, Any]) -> dict[str, Any]:
    """Overall accuracy and macro F1 of a metrics dict."""
    return {"accuracy": m.get("accuracy"), "macro_f1": m.get("macro_f1")}


def random_forest(train, test, trees: int, seed: int, threads: int,
                  class_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """Accuracy and macro F1 on ``test`` of a random forest on the flattened (N, C, T) series of
    ``train`` (``class_ids``: the classes scored; default: those of train and test)."""
    from sklearn.ensemble import RandomForestClassifier

    from pimc_core.learn.finetune import classification_metrics

    rf = RandomForestClassifier(n_estimators=trees, n_jobs=max(1, threads), random_state=seed)
    rf.fit(train.series.reshape(len(train), -1), train.labels)
    pred = rf.predict(test.series.reshape(len(test), -1))
    ids = sorted(set(train.labels.tolist()) | set(test.labels.tolist())) if class_ids is None else class_ids
    return brief(classification_metrics(test.labels, pred, ids))


def _budgeted(ft, n: int):
    """Small labelled sets get more epochs (at least ~150 steps), capped by max_steps."""
    steps_per_epoch = max(1, n // max(1, min(ft.batch_size, n)))
    epochs = max(ft.epochs, int(math.ceil(150 / steps_per_epoch)))
    return dataclasses.replace(ft, epochs=min(epochs, 200))


def _parcel_subset(labels: np.ndarray, parcels: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Indices of the pixels in a random ``frac`` of the parcels of every class (>= 1 parcel)."""
    rng = np.random.default_rng([seed, 0xF4AC])
    keep = np.zeros(labels.size, bool)
    for c in np.unique(labels):
        ps = np.unique(parcels[labels == c])
        k = max(1, int(round(frac * ps.size)))
        chosen = rng.choice(ps, size=k, replace=False)
        keep |= (labels == c) & np.isin(parcels, chosen)
    return np.flatnonzero(keep)


def _finetuned_score(run: RasterRun, train, test, init, ft, dev) -> dict[str, Any]:
    """Accuracy and macro F1 on ``test`` of a network (from ``init`` or scratch) fine-tuned on ``train``."""
    net = run.net(train, n_classes=len(run.class_ids), init=init)
    steps.train_classifier(net, train, run.class_ids, dataclasses.replace(ft, seed=run.cfg.seed), device=dev,
                           progress=True)
    return brief(steps.score(net, test, run.class_ids, device=dev))


def run_evaluate(cfg: TrainConfig) -> dict[str, Any]:
    """Label-fraction study (pretrained vs scratch vs linear probe vs RF) and model scoring."""
    from pimc_core.learn.finetune import embed, linear_probe
    from pimc_core.learn.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    run = RasterRun(cfg, need_labels=True)
    dev = run.device()
    test = run.test(cfg.evaluate.test_samples, cfg.seed)
    if test is None:
        raise ConfigError("evaluate needs test labels: give sources[].test_labels")
    pool, parcels = run.labelled(cfg.seed, cfg.data.per_class or None)
    init = init_path(cfg)
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"command": "evaluate", "test_pixels": len(test), "pool_pixels": len(pool),
                              "parcels": int(len(np.unique(parcels))), "init": str(init) if init else None, "rows": rows}
    for frac in cfg.evaluate.label_fractions:
        for rep in range(cfg.evaluate.repeats):
            idx = _parcel_subset(pool.labels, parcels, frac, cfg.seed + 1000 * rep)
            train = pool.subset(idx)
            row: dict[str, Any] = {"fraction": frac, "repeat": rep, "labelled": len(train),
                                   "parcels": int(len(np.unique(parcels[idx])))}
            log(f"fraction {frac}: {len(train)} labelled pixels in {row['parcels']} parcels")
            ft = _budgeted(cfg.finetune, len(train))
            row["scratch"] = _finetuned_score(run, train, test, None, ft, dev)
            if init is not None:
                row["pretrained"] = _finetuned_score(run, train, test, init, ft, dev)
                base = run.net(train, init=init)
                row["linear_probe"] = linear_probe(embed(base, train.series, train.patches, device=dev), train.labels,
                                                   embed(base, test.series, test.patches, device=dev), test.labels)
            row["random_forest"] = random_forest(train, test, cfg.evaluate.rf_trees, cfg.seed, run.threads)
            rows.append(row)
            log("  " + json.dumps({k: v for k, v in row.items() if k not in ("fraction", "repeat")}))
    if cfg.evaluate.model:
        report["model"] = {"path": cfg.evaluate.model, **_score_model_file(cfg.evaluate.model, test)}
    report["seconds_total"] = round(time.perf_counter() - t0, 1)
    write_json(cfg.output / "evaluate.json", report)
    write_text(cfg.output / "evaluate.md", _markdown(report))
    return report


def _score_model_file(path: str, test) -> dict[str, Any]:
    """Accuracy and macro F1 on ``test`` of a ``.pimc`` model (reading the inputs it was fitted for)."""
    from pimc_core.learn.finetune import classification_metrics
    from pimc_core.models.pixel_model import load_pixel_model

    m = load_pixel_model(path)
    out = m.predict(test.series, test.patches if m.net.patch_encoder is not None else None, outputs=("probabilities",))
    ids = [int(c["id"]) for c in m.class_table]
    return brief(classification_metrics(test.labels, np.asarray(ids)[out["probabilities"].argmax(1)], ids))


def _markdown(rep: dict[str, Any]) -> str:
    lines = [f"# Evaluation ({rep['test_pixels']} test pixels; pool {rep['pool_pixels']} labelled pixels in "
             f"{rep['parcels']} parcels)", "",
             "| label fraction | labelled px | parcels | scratch acc | pretrained acc | linear probe acc | RF acc |",
             "|---|---|---|---|---|---|---|"]
    for r in rep["rows"]:
        g = lambda k: (r.get(k) or {}).get("accuracy", "—")  # noqa: E731
        lines.append(f"| {r['fraction']} | {r['labelled']} | {r['parcels']} | {g('scratch')} | {g('pretrained')} | "
                     f"{g('linear_probe')} | {g('random_forest')} |")
    if "model" in rep:
        lines += ["", f"model {rep['model']['path']}: accuracy {rep['model']['accuracy']}, macro F1 {rep['model']['macro_f1']}"]
    return "\n".join(lines) + "\n"
