"""``python -m training forecast``: the forecast head, scored against baselines without leakage.

From the first ``L`` steps of the index series predict the next ``h`` (:func:`run_forecast`).
Pixels are split by a spatial checkerboard (blocks of ``min(32, side / 4)`` px) and, when the
series hold at least ``L + 2h`` dates, the last ``h`` grid dates are held out as well (test
targets = the last ``h`` dates, which no training target reaches). RMSE / MAE of the network
against persistence, seasonal-naive, climatology and linear-trend on the same observed test
targets; ``{out_dir}/forecaster.pimc`` and ``forecast.json``. The encoders come from a
pretraining that never saw a held-out date (:func:`_fc_pretrained`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.fit import pipeline as steps
from training.config import TrainConfig
from training.output import log, write_json
from training.stacks import RasterRun

__all__ = ["run_forecast"]


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


def _fc_grid(run: RasterRun, ts) -> list[dt.date]:
    return list(run.target(ts) or ts.dates)


def _fc_step(grid: Sequence[dt.date]) -> float:
    return float(np.median(np.diff([d.toordinal() for d in grid]))) if len(grid) > 1 else 1.0


def _fc_prepare(cfg: TrainConfig, run: RasterRun, L: int, h: int, ci: int, temporal: bool, n: int, seed: int) -> list[_FcPart]:
    """Sample pixels, split them (checkerboard), cut causal windows with observed targets."""
    from pimc_core.learn import forecast as fc
    from pimc_core.series.gapfill import resample_to_dates

    parts = []
    per = run.per_stack(n)
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
            log(f"note: {ts.source}: the date grid ends {grid[-1]}, the last observation is {ts.dates[-1]}; "
                 "the held-out steps are the grid's last ones, not the last observations (adjust data.n_dates)")
        smp = run.sampler.draw(ts_pre, per, seed=seed + 101 * i, target_dates=pre_grid)
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
    key = {"model": cfg.model, "pretrain": dataclasses.asdict(cfg.pretrain), "data": dataclasses.asdict(cfg.data),
           "seed": cfg.seed, "sources": [dataclasses.asdict(s) for s in cfg.sources],
           "cutoffs": [str(p.cutoff) for p in parts], "pixels": pixels}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _fc_pretrained(cfg: TrainConfig, run: RasterRun, parts: Sequence[_FcPart], temporal: bool, L: int, h: int,
                   dev) -> tuple[Path | None, str]:
    """The pretrained encoders for the forecaster, never trained on a held-out date.

    Order: ``init`` (refused when its training dates reach past the cutoff) → the default
    ``{out_dir}/pretrained.pimc`` when it stops before the cutoff (or there is no temporal
    hold-out) → a pretraining run on the stacks truncated at the cutoff (all sampled pixels;
    without a temporal hold-out, the training pixels only), cached in
    ``{out_dir}/forecast_pretrained.pimc`` → none (``pretrain.steps: 0``: from scratch).
    """
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
        log(f"not using {dflt}: pretrained on dates up to {bad}, past the forecast cutoff {cutoff}")
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
    net = run.net(smp)
    log(f"pretraining for the forecaster on {len(smp)} pixels ({who}), T={smp.n_dates}")
    res = steps.pretrain_encoders(net, smp, cfg.pretrain, seed=cfg.seed, device=dev, progress=True, log=log)
    run.save(net, path, smp, {"workflow": "python -m training forecast (pretraining on the truncated series)",
                                "fingerprint": fp, "pixels": who, "data_until": str(cutoff) if cutoff else None,
                                "pretrain": res.summary()})
    return path, f"{path} ({who}; {res.summary().get('steps')} steps, loss {res.summary().get('loss_start')} → " \
                 f"{res.summary().get('loss_end')})"


def _fc_model(cfg: TrainConfig, L: int, h: int, step: float) -> dict[str, Any]:
    """The model section with the forecast head's side inputs made consistent with L, h and the grid."""
    model = dict(cfg.model)
    inputs = [str(x).lower() for x in (model.get("forecast_inputs") or [])]
    m = int(round(365.25 / step))  # the windows' climatology uses the same season length
    if "seasonal" in inputs and m > L:
        log(f"note: forecast input 'seasonal' dropped: a season is {m} steps, the input only {L}")
        inputs.remove("seasonal")
    if "climatology" in inputs and m <= h:
        log(f"note: forecast input 'climatology' dropped: a season ({m} steps) is not longer than the horizon {h}")
        inputs.remove("climatology")
    if "seasonal" in inputs or "climatology" in inputs:
        model["forecast_season_steps"] = m
    if "climatology" in inputs:
        model["forecast_year_steps"] = round(365.25 / step, 4)
    elif model.get("forecast_anchor") == "climatology":
        model["forecast_anchor"] = "last"
    model["forecast_inputs"] = inputs
    return model


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
    run = RasterRun(cfg)
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
    dev = run.device()
    init, init_note = _fc_pretrained(cfg, run, parts, temporal, L, h, dev)
    model = _fc_model(cfg, L, h, step)
    from pimc_core.learn.sampling import PixelSamples

    smp = PixelSamples.concat([p.samples for p in parts])
    net = run.net(smp, model=model, forecast=(L, h), init=init)
    net.cfg.n_dates = T  # the saved forecaster reads the whole grid (its last L steps) in map inference
    log(f"forecast {L} → {h}: {len(train)} training windows ({train.n_targets} observed targets), "
         f"{len(test)} test windows; encoders {init_note}")
    with steps.training_threads(dev):
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
    path = run.save(net, cfg.output / "forecaster.pimc", saved,
                    {"workflow": "python -m training forecast", "config": cfg.to_dict(), "forecast": summary,
                     "data_until": str(until) if until else None})
    summary["model"] = str(path)
    summary["seconds_total"] = round(time.perf_counter() - t0, 1)
    write_json(cfg.output / "forecast.json", summary)
    return summary
