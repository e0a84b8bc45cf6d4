"""Forecasting that cannot peek: causal input windows, observed targets, the forecaster's
training and prediction, and baselines scored on the same set (PIMC's one forecasting module).

A forecast of a vegetation index made on date ``t0`` may use the observations up to ``t0``
and nothing later. Three things in a naive set-up break that rule and this module avoids
each of them:

* **Gap filling across the origin.** A series gap-filled over the whole stack interpolates its
  last input steps towards the first observation *after* ``t0``. :func:`causal_inputs`
  gap-fills every window from the observations up to its own origin only, so after the last
  valid observation the series is flat (the nearest valid value), exactly as it is when a map
  is forecast from the latest data.
* **Scoring invented values.** Where the sky was cloudy (or snowy) over the forecast
  period, a gap-filled target is an interpolation (or, at the end of a series, a copy of the
  last valid value, which hands the win to persistence). :func:`observed_on_grid` keeps a
  target only where a valid observation lies within ``tol_days`` of the grid date
  (``g - tol <= d < g + tol``, so one observation scores at most one grid date; the nearest
  observation when several qualify), and the scores count only those (:func:`masked_metrics`
  reports how many).
* **Training on the future.** Training windows are cut from series truncated at the test
  origin; the workflow (``python -m training forecast``) also pretrains on the truncated stack.

Baselines (:func:`baseline_forecasts`), scored on the same targets as the model:

* ``persistence``: the last value of the (causally gap-filled) input, i.e. the latest valid
  observation;
* ``seasonal_naive``: the pixel's value one calendar year before each target date,
  interpolated from its observations up to the origin;
* ``climatology``: the mean of those values over every earlier year of the series (the strong
  baseline for seasonal vegetation);
* ``linear_trend``: a least-squares line through the last ``trend_points`` input steps,
  extrapolated.

Plan (:func:`forecast_plan`): ``L → h`` is 32 → 10 when the series have at least 42 steps;
otherwise ``h = max(1, min(10, T // 4))`` and ``L = T - h`` (e.g. 30 dates: 23 → 7).

Training (:func:`train_forecaster`, the steps of :mod:`pimc_core.learn.loop`): masked MSE in
standardised units on the observed targets only, AdamW with warm-up and cosine decay, the
temporal encoders (RP + series branch) at ``encoder_lr_scale`` times the head's learning rate (or
frozen, features computed once). Both the forecast head of ``pimc fit`` (windows of its sampled
pixels at the latest origins, :func:`sample_windows`) and ``python -m training forecast`` train
on windows from :func:`make_windows`, so the head never learns from inputs that a map's input
(gap-filled up to its last date) could not have.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from pimc_core.devices import resolve_device
from pimc_core.errors import ConfigError, InputError
from pimc_core.learn.finetune import FinetuneConfig, run_batches
from pimc_core.learn.loop import BestState, loss_summary, run_steps, step_generator

__all__ = [
    "ForecastWindows",
    "PixelObservations",
    "baseline_forecasts",
    "causal_inputs",
    "forecast_plan",
    "grid_step",
    "make_windows",
    "masked_metrics",
    "observed_on_grid",
    "predict_windows",
    "read_pixel_observations",
    "sample_windows",
    "shift_years",
    "train_forecaster",
]


def forecast_plan(n_dates: int, horizon: int | None = None, input_len: int | None = None) -> tuple[int, int]:
    """``(L, h)``: observations read and steps forecast for series of ``n_dates`` steps.

    Default 32 → 10 when ``n_dates >= 42``; otherwise ``h = max(1, min(10, n_dates // 4))`` and
    ``L = n_dates - h``. Explicit values are checked (``L + h <= n_dates``, ``L >= 2``).

    Raises:
        ConfigError: the series are too short.
    """
    T = int(n_dates)
    if horizon is None and input_len is None:
        if T >= 42:
            return 32, 10
        h = max(1, min(10, T // 4))
        L = T - h
    else:
        h = int(horizon) if horizon is not None else max(1, min(10, T // 4))
        L = int(input_len) if input_len is not None else min(32, T - h)
    if h < 1 or L < 2 or L + h > T:
        raise ConfigError(f"forecast: {max(L, 0)} input steps + {h} forecast steps do not fit in series of {T} dates "
                          f"(forecast.input_len >= 2, forecast.horizon >= 1, input_len + horizon <= {T})")
    return L, h


# ============================================================================ observations
@dataclass
class PixelObservations:
    """Index values of some pixels on the stack's acquisition dates.

    Attributes:
        values: (N, C, T) float32, NaN where the observation is invalid (cloud, snow, nodata).
        dates: the T acquisition dates.
        indices: the C index names.
    """

    values: np.ndarray
    dates: tuple[dt.date, ...]
    indices: tuple[str, ...]

    def until(self, last: dt.date) -> "PixelObservations":
        """The observations dated ``last`` or earlier."""
        k = int(np.searchsorted(_days(self.dates), last.toordinal(), side="right"))
        return PixelObservations(self.values[:, :, :k], self.dates[:k], self.indices)

    def subset(self, idx: np.ndarray) -> "PixelObservations":
        return PixelObservations(self.values[idx], self.dates, self.indices)


def _days(dates: Sequence[dt.date]) -> np.ndarray:
    return np.array([d.toordinal() for d in dates], np.int64)


def read_pixel_observations(ts, rows: np.ndarray, cols: np.ndarray, indices: Sequence[str],
                            block: int = 256) -> PixelObservations:
    """Index values of the pixels ``(rows, cols)`` of a stack on every acquisition date.

    Reads window by window (``block`` x ``block``), only the windows holding requested pixels
    and only the bands the indices need.
    """
    from rasterio.windows import Window

    from pimc_core.series.indices import compute_indices, required_bands

    indices = tuple(str(i).lower() for i in indices)
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    need = required_bands(indices)
    ts.require_bands(need)
    bands = [b for b in ts.band_names if b in need]
    out = np.full((rows.size, len(indices), len(ts.dates)), np.nan, np.float32)
    H, W = ts.grid.height, ts.grid.width
    wid = (rows // block) * ((W + block - 1) // block) + cols // block
    for w in np.unique(wid):
        sel = np.flatnonzero(wid == w)
        r0, c0 = int(rows[sel[0]] // block) * block, int(cols[sel[0]] // block) * block
        win = Window(c0, r0, min(block, W - c0), min(block, H - r0))
        obs = ts.read(win, bands=bands)
        vals = compute_indices(obs.bands(), indices, invalid=~obs.valid)  # (C, T, h, w)
        vals = np.asarray(vals, np.float32)[:, :, rows[sel] - r0, cols[sel] - c0]  # (C, T, n)
        out[sel] = np.moveaxis(vals, -1, 0)
    out[~np.isfinite(out)] = np.nan
    return PixelObservations(out, tuple(ts.dates), indices)


# ============================================================================ targets and inputs
def observed_on_grid(values: np.ndarray, obs_dates: Sequence[dt.date], grid: Sequence[dt.date],
                     tol_days: float) -> np.ndarray:
    """Observed values at grid dates: (N, C, T_obs) → (N, C, G), NaN where nothing was observed.

    A grid date ``g`` gets the valid observation ``d`` nearest to it with
    ``g - tol_days <= d < g + tol_days`` (the earlier one on a tie); with ``tol_days`` at most
    half the grid step every observation serves at most one grid date.
    """
    v = np.asarray(values, np.float32)
    od = _days(obs_dates)
    gd = _days(grid)
    out = np.full(v.shape[:-1] + (gd.size,), np.nan, np.float32)
    for j, g in enumerate(gd):
        ks = np.flatnonzero((od >= g - tol_days) & (od < g + tol_days))
        for k in ks[np.argsort(np.abs(od[ks] - g), kind="stable")]:
            val = v[..., k]
            take = np.isfinite(val) & ~np.isfinite(out[..., j])
            out[..., j][take] = val[take]
    return out


def causal_inputs(obs: PixelObservations, grid: Sequence[dt.date], origin: int, input_len: int,
                  min_valid: int = 1) -> np.ndarray:
    """Input windows ending at grid step ``origin``, gap-filled from observations up to it.

    Returns:
        (N, C, L) float32 series on ``grid[origin - L + 1 : origin + 1]``; linear interpolation
        between valid observations dated up to ``grid[origin]``, the nearest valid value beyond
        them (so a window never looks past its origin); NaN for pixels with fewer than
        ``min_valid`` such observations.
    """
    from pimc_core.series.gapfill import resample_to_dates

    if origin < input_len - 1 or origin >= len(grid):
        raise ConfigError(f"forecast origin {origin} leaves no room for {input_len} input steps in a grid of {len(grid)}")
    past = obs.until(grid[origin])
    n, c = obs.values.shape[:2]
    if len(past.dates) == 0:
        return np.full((n, c, input_len), np.nan, np.float32)
    res = resample_to_dates(past.values, list(past.dates), list(grid[origin - input_len + 1:origin + 1]),
                            min_valid=min_valid)
    return np.ascontiguousarray(res.values, np.float32)


@dataclass
class ForecastWindows:
    """Forecast examples: input windows, observed targets and where they come from.

    Attributes:
        inputs: (M, C, L) float32 causal input windows (:func:`causal_inputs`).
        targets: (M, h) float32 observed values of the forecast index at the next ``h`` grid
            dates, NaN where nothing was observed (never scored, never trained on).
        pixel: (M,) index of the pixel. origin: (M,) grid index of the last input step.
        origin_doy: (M,) float32 day of the year of the origin date.
        clim, clim_years: (M, h + 1) and (M,) the pixel's seasonal climatology from its whole
            causal history (:func:`pimc_core.models.forecast_head.seasonal_climatology`), or None.
    """

    inputs: np.ndarray
    targets: np.ndarray
    pixel: np.ndarray
    origin: np.ndarray
    origin_doy: np.ndarray
    clim: np.ndarray | None = None
    clim_years: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def n_targets(self) -> int:
        return int(np.isfinite(self.targets).sum())

    def subset(self, idx: np.ndarray) -> "ForecastWindows":
        return ForecastWindows(self.inputs[idx], self.targets[idx], self.pixel[idx], self.origin[idx], self.origin_doy[idx],
                               None if self.clim is None else self.clim[idx],
                               None if self.clim_years is None else self.clim_years[idx])


def make_windows(obs: PixelObservations, grid: Sequence[dt.date], input_len: int, horizon: int, channel: int,
                 origins: Sequence[int], *, tol_days: float, min_valid: int = 1,
                 targets: np.ndarray | None = None, season: float = 0) -> ForecastWindows:
    """Causal windows of every pixel at every origin in ``origins`` (grid indices of the last
    input step; ``origin + horizon`` must lie on the grid).

    Targets are the observed values of ``channel`` (:func:`observed_on_grid` with ``tol_days``)
    unless ``targets`` (N, G) is given. Windows without any observed target, or whose pixel has
    fewer than ``min_valid`` valid observations up to the origin, are left out. With ``season``
    (steps per year) each window also gets the pixel's climatology from its causal history since
    the grid's start (what a model reading the whole series at that origin would compute).
    """
    from pimc_core.models.forecast_head import seasonal_climatology

    L, h = int(input_len), int(horizon)
    G = len(grid)
    tgt_all = observed_on_grid(obs.values[:, channel:channel + 1], obs.dates, grid, tol_days)[:, 0] \
        if targets is None else np.asarray(targets, np.float32)
    xs, ys, ps, os_, cs, cy = [], [], [], [], [], []
    for o in origins:
        o = int(o)
        if o + h >= G:
            raise ConfigError(f"forecast origin {o} + {h} steps runs past the grid of {G} dates")
        hist = causal_inputs(obs, grid, o, o + 1 if season else L, min_valid)
        x = hist[:, :, -L:]
        y = tgt_all[:, o + 1:o + 1 + h]
        keep = np.isfinite(x).all(axis=(1, 2)) & np.isfinite(y).any(axis=1)
        if keep.any():
            idx = np.flatnonzero(keep)
            xs.append(np.ascontiguousarray(x[idx]))
            ys.append(y[idx])
            ps.append(idx)
            os_.append(np.full(idx.size, o, np.int64))
            if season:
                cv, yrs = seasonal_climatology(torch.from_numpy(np.ascontiguousarray(hist[idx, channel])), h, float(season))
                cs.append(cv.numpy())
                cy.append(yrs.numpy())
    c = obs.values.shape[1]
    if not xs:
        return ForecastWindows(np.zeros((0, c, L), np.float32), np.zeros((0, h), np.float32),
                               np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32),
                               np.zeros((0, h + 1), np.float32) if season else None,
                               np.zeros(0, np.float32) if season else None)
    origin = np.concatenate(os_)
    doy = np.array([grid[o].timetuple().tm_yday for o in range(G)], np.float32)
    return ForecastWindows(np.concatenate(xs), np.concatenate(ys).astype(np.float32), np.concatenate(ps), origin,
                           doy[origin], np.concatenate(cs) if season else None, np.concatenate(cy) if season else None)


def grid_step(grid: Sequence[dt.date]) -> float:
    """The median step of a date grid in days (1 for a single date)."""
    return float(np.median(np.diff(_days(grid)))) if len(grid) > 1 else 1.0


def sample_windows(ts, samples, input_len: int, horizon: int, channel: int, *, max_windows: int | None = None,
                   min_valid: int = 1, block: int = 256) -> ForecastWindows:
    """Causal training windows of sampled pixels of a stack at the latest origins of their dates.

    The pixels ``(samples.rows, samples.cols)`` of ``ts`` are read again as observations
    (:func:`read_pixel_observations`); the grid is ``samples.dates`` (the stack's dates, or the
    model's date grid) and the origins are the last ``max_windows`` grid steps that leave room for
    ``input_len`` steps before and ``horizon`` after (all of them when None). Targets are the
    observations within half a grid step of the target dates; with a year longer than
    ``horizon`` steps the windows carry the pixels' climatology (:func:`make_windows`).

    Args:
        ts: the :class:`~pimc_core.io.timeseries.TimeSeries` the samples come from.
        samples: :class:`~pimc_core.learn.sampling.PixelSamples` (``rows``, ``cols``,
            ``indices``, ``dates``).
        min_valid: a window needs that many valid observations up to its origin.
    """
    grid = list(samples.dates)
    L, h = int(input_len), int(horizon)
    origins = list(range(L - 1, len(grid) - h))
    if max_windows and len(origins) > max_windows:
        origins = origins[-max_windows:]
    obs = read_pixel_observations(ts, samples.rows, samples.cols, samples.indices, block=block)
    step = grid_step(grid)
    season = 365.25 / step
    return make_windows(obs, grid, L, h, channel, origins, tol_days=max(0.5, step / 2.0), min_valid=min_valid,
                        season=season if season > h else 0)


# ============================================================================ baselines and metrics
def shift_years(d: dt.date, years: int) -> dt.date:
    """``d`` moved by whole calendar years (29 February → 28 February)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def baseline_forecasts(obs: PixelObservations, grid: Sequence[dt.date], windows: ForecastWindows, channel: int,
                       *, trend_points: int = 5,
                       fallback: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Persistence, seasonal-naive, climatology and linear-trend forecasts of ``windows``.

    Args:
        obs: the observations the windows were cut from (all of them: each window only uses
            those dated up to its origin).
        grid: the grid the windows live on.
        channel: the forecast index.
        trend_points: steps the linear trend is fitted on.
        fallback: (h,) forecast used as ``seasonal_naive`` when no target date has a year of
            history before it (a one-season series), e.g. the mean training target per step.

    Returns:
        ``{name: {"pred": (M, h), "note": str}}``; ``climatology`` is missing when no window
        has an earlier year, ``seasonal_naive`` too unless ``fallback`` is given.
    """
    from pimc_core.series.gapfill import resample_to_dates

    x = windows.inputs[:, channel].astype(np.float64)
    m, L = x.shape
    h = windows.targets.shape[1]
    out: dict[str, dict[str, Any]] = {
        "persistence": {"pred": np.repeat(x[:, -1:], h, axis=1), "note": "latest valid observation up to the origin"},
    }
    k = max(2, min(L, int(trend_points)))
    t = np.arange(k, dtype=np.float64)
    tc = t - t.mean()
    y = x[:, -k:]
    slope = ((y - y.mean(axis=1, keepdims=True)) * tc).sum(axis=1) / (tc ** 2).sum()
    icpt = y.mean(axis=1) - slope * t.mean()
    out["linear_trend"] = {"pred": icpt[:, None] + slope[:, None] * np.arange(k, k + h)[None],
                           "note": f"least-squares line through the last {k} input steps"}

    first = obs.dates[0]
    snaive = np.full((m, h), np.nan)
    clim = np.full((m, h), np.nan)
    years_used = 0
    for o in np.unique(windows.origin):
        rows = np.flatnonzero(windows.origin == o)
        past = obs.until(grid[int(o)]).subset(windows.pixel[rows])
        if len(past.dates) == 0:
            continue
        targets = [grid[int(o) + 1 + j] for j in range(h)]
        pairs = [(j, yr) for yr in range(1, 200) for j in range(h) if shift_years(targets[j], -yr) >= first]
        if not pairs:
            continue
        years_used = max(years_used, max(yr for _, yr in pairs))
        when = [shift_years(targets[j], -yr) for j, yr in pairs]
        order = np.argsort(_days(when), kind="stable")
        uniq_days, inv = np.unique(_days(when)[order], return_inverse=True)
        res = resample_to_dates(past.values[:, channel], list(past.dates),
                                [dt.date.fromordinal(int(dd)) for dd in uniq_days], min_valid=1)
        vals = res.values[:, inv]  # (n, len(pairs)) in sorted order
        s = np.zeros((rows.size, h))
        cnt = np.zeros(h)
        for col, pi in enumerate(order):
            j, yr = pairs[pi]
            if yr == 1:
                snaive[rows, j] = vals[:, col]
            s[:, j] += vals[:, col]
            cnt[j] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            clim[rows] = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
    if np.isfinite(snaive).all():
        out["seasonal_naive"] = {"pred": snaive, "note": "value one calendar year before each target date "
                                 "(interpolated from the observations up to the origin)"}
    elif fallback is not None:
        out["seasonal_naive"] = {"pred": np.repeat(np.asarray(fallback, np.float64)[None], m, axis=0),
                                 "note": "no earlier year in the series: mean training target of each forecast step"}
    if np.isfinite(clim).all():
        out["climatology"] = {"pred": clim, "note": f"mean of the same calendar date in the earlier years "
                              f"(up to {years_used}) of the pixel's own series"}
    return out


def masked_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float | int]:
    """RMSE, MAE and bias over the finite targets, and their number ``n``."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(target, np.float64)
    ok = np.isfinite(t)
    if not ok.any():
        return {"rmse": float("nan"), "mae": float("nan"), "bias": float("nan"), "n": 0}
    if not np.isfinite(p[ok]).all():
        raise InputError("forecast has NaN where a target was observed")
    d = p[ok] - t[ok]
    return {"rmse": round(float(np.sqrt(np.mean(d ** 2))), 5), "mae": round(float(np.mean(np.abs(d))), 5),
            "bias": round(float(np.mean(d)), 5), "n": int(ok.sum())}


# ============================================================================ training
def _clim_of(windows: "ForecastWindows", net, sl, dev) -> tuple[torch.Tensor, torch.Tensor] | None:
    if not net.needs_history:
        return None
    if windows.clim is None:
        raise ConfigError("this forecaster reads the pixel's climatology: cut the windows with season > 0")
    return (torch.from_numpy(np.ascontiguousarray(windows.clim[sl], np.float32)).to(dev),
            torch.from_numpy(np.ascontiguousarray(windows.clim_years[sl], np.float32)).to(dev))


def predict_windows(net, windows: "ForecastWindows", *, batch_size: int = 1024,
                    device: str | torch.device | None = None) -> np.ndarray:
    """Forecasts (M, h) of forecast windows (physical units)."""
    dev = resolve_device(device)
    net.to(dev).eval()

    def one(sl: slice) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(windows.inputs[sl], np.float32)).to(dev)
        d = torch.from_numpy(np.asarray(windows.origin_doy[sl], np.float32)).to(dev)
        return net.forecast(x, d, clim=_clim_of(windows, net, sl, dev))

    out = run_batches(one, len(windows), batch_size)
    return out if len(windows) else np.zeros((0, net.cfg.forecast_horizon), np.float32)


def _forecaster_groups(net, cfg: FinetuneConfig) -> list[dict[str, Any]]:
    """The forecast head, and the temporal encoders (at ``encoder_lr_scale``) unless ``cfg.freeze``;
    every other parameter is frozen."""
    groups = [{"params": list(net.forecaster.parameters()), "lr": cfg.lr}]
    if not cfg.freeze:
        temporal = [p for name, p in net.named_parameters() if name.startswith(("rp_encoder.", "series_encoder."))]
        groups.append({"params": temporal, "lr": cfg.lr * cfg.encoder_lr_scale})
    for p in net.parameters():
        p.requires_grad_(False)
    for g_ in groups:
        for p in g_["params"]:
            p.requires_grad_(True)
    return groups


def train_forecaster(net, windows: ForecastWindows, cfg: FinetuneConfig, *, device: str | torch.device | None = None,
                     progress: bool | Callable[[int, int, float], None] = False,
                     val: ForecastWindows | None = None) -> dict[str, Any]:
    """Train ``net.forecaster`` (and, unless ``cfg.freeze``, the RP and series encoders) in place.

    Args:
        net: a :class:`~pimc_core.models.pimc_net.PimcNet` with a forecaster (normalisation set).
        windows: training windows; NaN targets carry no loss.
        cfg: a :class:`~pimc_core.learn.finetune.FinetuneConfig` (``epochs``, ``max_steps``,
            ``batch_size``, ``lr``, ``encoder_lr_scale``, ``weight_decay``, ``warmup_steps``,
            ``freeze``, ``augment.series_noise``, ``seed``).
        val: optional validation windows; the weights of the epoch with the lowest validation
            RMSE are kept (early stopping without touching the test set).

    Returns:
        ``{"steps", "loss_start", "loss_end", "seconds", "frozen", "windows", "targets"}`` (+
        ``val_rmse``, ``best_epoch``, ``val_curve`` with ``val``).
    """
    if net.forecaster is None:
        raise ConfigError("the network has no forecaster (forecast_horizon = 0)")
    n = len(windows)
    if n == 0:
        raise InputError("no forecast window with an observed target to train on")
    dev = resolve_device(device)
    net.to(dev)
    t0 = time.perf_counter()
    ci = net.cfg.indices.index(net.cfg.forecast_index)
    batches, total = cfg.batches(n, stream=17, drop_tail=True)
    opt = cfg.optimiser(_forecaster_groups(net, cfg), total, dev)
    std = float(net.idx_std[ci])
    mean = float(net.idx_mean[ci])
    noise = float(getattr(cfg.augment, "series_noise", 0.0) or 0.0)
    y_all = torch.from_numpy(np.ascontiguousarray(windows.targets, np.float32))
    m_all = torch.isfinite(y_all)
    y_all = torch.nan_to_num(y_all, nan=0.0)
    x_all = torch.from_numpy(np.ascontiguousarray(windows.inputs, np.float32))
    d_all = torch.from_numpy(np.ascontiguousarray(windows.origin_doy, np.float32))
    frozen = None
    if cfg.freeze:  # the encoders do not change: their embeddings once
        net.eval()
        with torch.no_grad():
            parts = []
            for s in range(0, n, 1024):
                xs = net.standardise_series(x_all[s:s + 1024].to(dev))
                parts.append(net.temporal_view(net.temporal_embeddings(xs)))
            frozen = torch.cat(parts)

    def loss_of(idx: np.ndarray, g: torch.Generator) -> torch.Tensor:
        ii = torch.from_numpy(idx)
        xs = net.standardise_series(x_all.index_select(0, ii).to(dev))
        if noise > 0 and not cfg.freeze:
            xs = xs + noise * torch.randn(xs.shape, generator=g).to(dev)
        emb = None
        if frozen is not None:
            z = frozen.index_select(0, ii.to(dev))
            emb = {"rp": z[:, :net.cfg.embed_dim]}
            if net.series_encoder is not None:
                emb["series"] = z[:, net.cfg.embed_dim:]
        pred = net.forecast_standardised(xs, d_all.index_select(0, ii).to(dev), emb=emb,
                                         clim=_clim_of(windows, net, idx, dev))
        yt = (y_all.index_select(0, ii).to(dev) - mean) / std
        mk = m_all.index_select(0, ii).to(dev).float()
        return (((pred - yt) ** 2) * mk).sum() / mk.sum().clamp_min(1.0)

    def train_mode() -> None:
        if cfg.freeze:
            net.eval()
            net.forecaster.train()
        else:
            net.train()

    best = None
    if val is not None and len(val):
        best = BestState(net, lambda: masked_metrics(predict_windows(net, val, device=dev), val.targets)["rmse"])
    try:
        losses = run_steps(opt, batches, total, loss_of, lambda step: step_generator(cfg.seed, 3, step),
                           train_mode=train_mode, after_epoch=best, progress=progress, desc="forecast",
                           loss_format=".4f")
    finally:
        for p in net.parameters():
            p.requires_grad_(True)
    chosen = best.restore() if best is not None else {}
    net.eval()
    return {"steps": len(losses), **loss_summary(losses, 5), "seconds": round(time.perf_counter() - t0, 1),
            "frozen": bool(cfg.freeze), "windows": n, "targets": windows.n_targets, **chosen}
