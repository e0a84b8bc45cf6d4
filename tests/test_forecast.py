"""Forecasting: causal inputs, observed-only scoring, baselines, the residual / seasonal head,
the forecaster in model files and map inference, and the ``python -m training forecast``
workflow's hold-out (pretraining never sees the held-out dates)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pimc_core.errors import ConfigError
from pimc_core.learn import forecast as fc
from pimc_core.models.forecast_head import SeasonalForecastHead
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet

D0 = dt.date(2020, 1, 1)


def days(*offsets: int) -> tuple[dt.date, ...]:
    return tuple(D0 + dt.timedelta(days=int(o)) for o in offsets)


# ============================================================================ targets and inputs
def test_observed_on_grid_keeps_only_real_observations():
    obs_dates = days(0, 9, 14, 31, 40)
    v = np.array([[[0.1, 0.2, np.nan, 0.4, 0.5]]], np.float32)  # day 14 is cloudy
    grid = days(0, 10, 20, 30, 40, 50)
    got = fc.observed_on_grid(v, obs_dates, grid, tol_days=5)
    # day 0 → 0.1; day 10 → the obs of day 9; day 20: only day 14 lies within 5 days and it is
    # invalid → NaN; day 30 → day 31; day 40 → 0.5; day 50: nothing observed → NaN
    np.testing.assert_array_equal(np.isnan(got[0, 0]), [False, False, True, False, False, True])
    np.testing.assert_allclose(got[0, 0, [0, 1, 3, 4]], [0.1, 0.2, 0.4, 0.5])
    # half-open window: an observation exactly tol after g belongs to the next grid date only
    got = fc.observed_on_grid(np.array([[[0.7]]], np.float32), days(5), days(0, 10), tol_days=5)
    np.testing.assert_array_equal(np.isnan(got[0, 0]), [True, False])


def test_causal_inputs_never_look_past_the_origin():
    obs_dates = days(*range(0, 200, 10))
    vals = np.linspace(0.1, 0.9, len(obs_dates), dtype=np.float32)[None, None].repeat(2, 0)
    vals[1, 0, 8:10] = np.nan  # pixel 1: clouds at days 80, 90
    obs = fc.PixelObservations(vals, obs_dates, ("ndvi",))
    grid = days(*range(5, 200, 10))  # grid dates between the acquisitions
    x = fc.causal_inputs(obs, grid, origin=8, input_len=4)  # origin = day 85
    assert x.shape == (2, 1, 4)
    # pixel 0: the step at day 85 (the origin) cannot interpolate towards day 90: it holds day 80
    np.testing.assert_allclose(x[0, 0, -1], vals[0, 0, 8])
    # pixel 1: last valid observation is day 70; the tail is flat at it (no future value used)
    np.testing.assert_allclose(x[1, 0, -2:], [vals[1, 0, 7], vals[1, 0, 7]])
    # changing every observation after the origin changes nothing
    later = vals.copy()
    later[:, :, 9:] = 5.0
    np.testing.assert_array_equal(fc.causal_inputs(fc.PixelObservations(later, obs_dates, ("ndvi",)), grid, 8, 4), x)


def test_windows_targets_are_observed_values_and_empty_windows_are_dropped():
    obs_dates = days(*range(0, 100, 10))
    vals = np.arange(10, dtype=np.float32)[None, None].repeat(3, 0) / 10
    vals[1, 0, 6:] = np.nan  # pixel 1: nothing observed after day 50
    obs = fc.PixelObservations(vals, obs_dates, ("ndvi",))
    grid = obs_dates
    w = fc.make_windows(obs, grid, input_len=3, horizon=2, channel=0, origins=[2, 5, 7], tol_days=5)
    # pixel 1 has no target for origins 5 and 7 (days 60..90 unobserved): those windows are gone
    assert len(w) == 3 * 3 - 2
    assert w.inputs.shape == (7, 1, 3) and w.targets.shape == (7, 2)
    assert np.isfinite(w.targets).all()
    # targets are the next observations
    for x, y, o in zip(w.inputs, w.targets, w.origin):
        np.testing.assert_allclose(y, [(o + 1) / 10, (o + 2) / 10])
    assert w.origin_doy.tolist() == [grid[o].timetuple().tm_yday for o in w.origin]
    vals[2, 0, 8] = np.nan  # one unobserved target: kept as NaN, not filled
    w = fc.make_windows(fc.PixelObservations(vals, obs_dates, ("ndvi",)), grid, 3, 2, 0, [7], tol_days=5)
    assert w.n_targets == 3 and np.isnan(w.targets).sum() == 1


# ============================================================================ baselines and scores
def _sine_obs(years: int = 3, step: int = 8):
    ds = [D0 + dt.timedelta(days=k) for k in range(0, 365 * years, step)]
    t = np.array([(d - D0).days for d in ds], np.float64)
    v = (0.5 + 0.3 * np.sin(2 * np.pi * t / 365.0))[None, None].astype(np.float32)
    return fc.PixelObservations(v, tuple(ds), ("ndvi",)), ds


def test_baselines_on_a_known_series():
    obs, ds = _sine_obs()
    grid = ds
    o = len(grid) - 6
    w = fc.make_windows(obs, grid, input_len=50, horizon=4, channel=0, origins=[o], tol_days=4)
    b = fc.baseline_forecasts(obs, grid, w, 0)
    assert set(b) == {"persistence", "linear_trend", "seasonal_naive", "climatology"}
    np.testing.assert_allclose(b["persistence"]["pred"], np.repeat(w.inputs[:, 0, -1:], 4, 1))
    # a pure annual cycle: one year earlier (and any mean of earlier years) is the target
    np.testing.assert_allclose(b["seasonal_naive"]["pred"], w.targets, atol=0.01)
    np.testing.assert_allclose(b["climatology"]["pred"], w.targets, atol=0.01)
    assert fc.masked_metrics(b["seasonal_naive"]["pred"], w.targets)["rmse"] < \
        fc.masked_metrics(b["persistence"]["pred"], w.targets)["rmse"]
    # the linear trend of a line is the line
    line = fc.PixelObservations(np.arange(20, dtype=np.float32)[None, None] / 10, days(*range(0, 200, 10)), ("ndvi",))
    wl = fc.make_windows(line, line.dates, 5, 3, 0, [10], tol_days=5)
    np.testing.assert_allclose(fc.baseline_forecasts(line, line.dates, wl, 0)["linear_trend"]["pred"], wl.targets, atol=1e-5)


def test_masked_metrics_count_only_observed_targets():
    pred = np.array([[0.5, 0.5, 0.5]])
    tgt = np.array([[0.5, np.nan, 1.5]])
    m = fc.masked_metrics(pred, tgt)
    assert m["n"] == 2 and m["rmse"] == pytest.approx(np.sqrt(0.5), abs=1e-5) and m["mae"] == pytest.approx(0.5)
    assert fc.masked_metrics(pred, np.full_like(tgt, np.nan))["n"] == 0


# ============================================================================ the head
TINY_MODEL = dict(indices=("ndvi", "evi"), n_dates=12, rp={"size": 8},
                  rp_encoder={"width": 4, "depth": 1, "embed_dim": 8},
                  series_encoder={"width": 4, "depth": 1, "embed_dim": 8, "bins": 2},
                  patch_encoder={"width": 4, "depth": 1, "embed_dim": 8}, proj_dim=8, patch_size=3)


def net_with(**kw) -> PimcNet:
    torch.manual_seed(0)
    net = PimcNet(PimcModelConfig.from_dict({**TINY_MODEL, **kw}))
    net.set_normalisation({"indices": {"mean": [0.4, 0.3], "std": [0.2, 0.1]}})
    return net.eval()


def test_residual_head_starts_at_persistence_and_can_be_seasonal_naive():
    net = net_with(forecast_horizon=3, forecast_input=8, forecast_inputs=("phase", "seasonal"), forecast_season_steps=4)
    assert isinstance(net.forecaster, SeasonalForecastHead) and net.needs_origin
    x = torch.rand(5, 2, 8)
    doy = torch.full((5,), 100.0)
    with torch.no_grad():
        out = net.forecast(x, doy)
    np.testing.assert_allclose(out.numpy(), x[:, 0, -1:].repeat(1, 3).numpy(), atol=1e-6)  # persistence
    # skip = identity on the seasonal residuals: last + (value one season earlier - last)
    with torch.no_grad():
        net.forecaster.skip.weight.zero_()
        net.forecaster.skip.weight[:, 2:5] = torch.eye(3)
        out = net.forecast(x, doy)
    np.testing.assert_allclose(out.numpy(), x[:, 0, 4:7].numpy(), atol=1e-5)  # L - m + i = 4 + i
    with pytest.raises(ConfigError, match="day of the year"):
        net.forecast(x)
    with pytest.raises(ConfigError, match="forecast_season_steps"):
        PimcModelConfig.from_dict({**TINY_MODEL, "forecast_horizon": 3, "forecast_input": 3,
                                   "forecast_inputs": ["seasonal"], "forecast_season_steps": 4})
    with pytest.raises(ConfigError, match="unknown"):
        PimcModelConfig.from_dict({**TINY_MODEL, "forecast_horizon": 3, "forecast_inputs": ["moon"]})


def test_train_forecaster_ignores_unobserved_targets():
    net = net_with(forecast_horizon=2, forecast_input=6, forecast_inputs=("phase",))
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.6, (96, 2, 6)).astype(np.float32)
    y = np.repeat(x[:, 0, -1:] + 0.2, 2, axis=1)  # a learnable shift
    y[::3, 1] = np.nan
    w = fc.ForecastWindows(x, y.astype(np.float32), np.arange(96), np.zeros(96, np.int64), np.full(96, 120.0, np.float32))
    from pimc_core.learn.finetune import FinetuneConfig

    before = fc.masked_metrics(fc.predict_windows(net, w), y)["rmse"]
    hist = fc.train_forecaster(net, w, FinetuneConfig(epochs=30, batch_size=32, lr=1e-2, warmup_steps=2), device="cpu")
    after = fc.masked_metrics(fc.predict_windows(net, w), y)["rmse"]
    assert np.isfinite(hist["loss_end"]) and hist["targets"] == int(np.isfinite(y).sum())
    assert after < 0.5 * before


# ============================================================================ model files
def test_forecaster_in_model_files_and_map_inference(tmp_path):
    from pimc_core.models.pixel_model import load_pixel_model, save_pixel_model

    grid = [dt.date(2021, 1, 1) + dt.timedelta(days=16 * i) for i in range(12)]
    net = net_with(forecast_horizon=3, forecast_input=8, forecast_inputs=("phase", "seasonal"), forecast_season_steps=4)
    with torch.no_grad():
        net.forecaster.skip.weight.normal_(0, 0.1)
    path = save_pixel_model(tmp_path / "f.pimc", net, dates={"mode": "grid", "start_doy": 1, "step_days": 16},
                            training_dates=grid)
    m = load_pixel_model(path)
    assert m.outputs[-1] == "forecast" and m.forecast_dates[0] == grid[-1] + dt.timedelta(days=16)
    x = np.random.default_rng(1).uniform(0.1, 0.8, (4, 2, 12)).astype(np.float32)
    got = m.predict(x, outputs=("forecast",))["forecast"]
    with torch.no_grad():
        want = net.forecast(torch.from_numpy(x[:, :, -8:]), torch.full((4,), float(grid[-1].timetuple().tm_yday)))
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5)
    from pimc_core.models.model_file import load_model

    assert load_model(path)[1]["architecture"]["forecaster"]["version"] == 2
    # a forecaster without side inputs (the original layout) saves and loads as before
    old = net_with(forecast_horizon=3, forecast_input=8)
    p2 = save_pixel_model(tmp_path / "o.pimc", old, training_dates=grid)
    meta = load_model(p2)[1]
    assert "version" not in meta["architecture"]["forecaster"]
    meta["architecture"]["pimc"] = {k: v for k, v in meta["architecture"]["pimc"].items()
                                    if k not in ("forecast_inputs", "forecast_season_steps", "forecast_hidden")}
    m2 = load_pixel_model(p2)
    assert m2.predict(x, outputs=("forecast",))["forecast"].shape == (4, 3)
    assert PimcModelConfig.from_dict(meta["architecture"]["pimc"]).forecast_inputs == ()


def test_a_forecast_never_leaves_the_index_range(tmp_path):
    """The head extrapolates (on the real Landsat demo 5 % of the first forecast date's pixels
    came out above NDVI 1); the model clips its forecasts to what the index can be."""
    from pimc_core.models.pixel_model import load_pixel_model, save_pixel_model

    grid = [dt.date(2021, 1, 1) + dt.timedelta(days=16 * i) for i in range(12)]
    net = net_with(forecast_horizon=3, forecast_input=8)
    with torch.no_grad():
        for prm in net.forecaster.parameters():
            prm.normal_(0, 3.0)  # a head that overshoots wildly
    m = load_pixel_model(save_pixel_model(tmp_path / "f.pimc", net, training_dates=grid))
    x = np.random.default_rng(1).uniform(0.1, 0.9, (64, 2, 12)).astype(np.float32)
    with torch.no_grad():
        raw = net.forecast(torch.from_numpy(x[:, :, -8:])).numpy()
    got = m.predict(x, outputs=("forecast",))["forecast"]
    assert (np.abs(raw) > 1).any()  # the head itself leaves the range ...
    np.testing.assert_allclose(got, np.clip(raw, -1, 1), atol=1e-5)  # ... the model's NDVI forecast does not


# ============================================================================ the workflow
def _workflow_cfg(tmp_path: Path, **extra) -> Path:
    cfg = {
        "name": "fc", "out_dir": str(tmp_path / "run"),
        "sources": [{"path": str(tmp_path / "data"), "synthetic": {"size": 24, "n_dates": 20, "seed": 3, "n_classes": 3,
                                                                  "cloud_fraction": 0.3}}],
        "data": {"indices": ["ndvi", "evi"], "patch_size": 3, "pretrain_samples": 400, "min_valid": 3},
        "model": {"rp_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                  "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8, "bins": 2},
                  "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8, "rp": {"size": 8},
                  "forecast_inputs": ["phase"]},
        "pretrain": {"steps": 3, "batch_size": 64, "warmup_steps": 1},
        "forecast": {"input_len": 6, "horizon": 3, "max_windows": 0,
                     "finetune": {"epochs": 1, "max_steps": 4, "batch_size": 64}},
        "threads": 1,
    }
    cfg.update(extra)
    p = tmp_path / "fc.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_workflow_holds_out_the_last_dates_everywhere(tmp_path, monkeypatch):
    from pimc_core.learn import pretrain
    from pimc_core.learn import sampling as pixel_samples
    from training import raster

    seen = {"sampled_until": [], "pretrain_T": []}
    real_sample, real_pretrain = pixel_samples.sample_pixels, pretrain.pretrain

    def spy_sample(ts, *a, **kw):
        seen["sampled_until"].append(ts.dates[-1])
        return real_sample(ts, *a, **kw)

    def spy_pretrain(net, series, patches, *a, **kw):
        seen["pretrain_T"].append(series.shape[2])
        return real_pretrain(net, series, patches, *a, **kw)

    monkeypatch.setattr(pixel_samples, "sample_pixels", spy_sample)
    monkeypatch.setattr(pretrain, "pretrain", spy_pretrain)
    cfg = _workflow_cfg(tmp_path)
    assert raster.main(["forecast", "--config", str(cfg)]) == 0
    rep = json.loads((tmp_path / "run" / "forecast.json").read_text())
    from pimc_core.io.timeseries import open_series

    dates = open_series(tmp_path / "data" / "manifest.yaml").dates
    T, L, h = len(dates), 6, 3
    cutoff = dates[T - h - 1]
    assert (rep["input_len"], rep["horizon"]) == (L, h) and "held out" in rep["split"]
    # pixels, series and patches for pretraining come from the stack cut at the test origin
    assert seen["sampled_until"] == [cutoff] and seen["pretrain_T"] == [T - h]
    from pimc_core.models.model_file import load_model

    meta = load_model(tmp_path / "run" / "forecast_pretrained.pimc")[1]
    assert max(dt.date.fromisoformat(d) for d in meta["training"]["dates"]) == cutoff
    assert meta["training"]["data_until"] == cutoff.isoformat()
    # every score counts the same observed targets, fewer than the forecast values (clouds)
    n = rep["test_targets"]
    assert 0 < n <= rep["test_windows"] * h
    assert {k: v["n"] for k, v in rep["scores"].items()} == {k: n for k in rep["scores"]}
    assert {"pimc", "persistence", "seasonal_naive", "linear_trend"} <= set(rep["scores"])
    assert set(rep["targets_by_date"]) <= {d.isoformat() for d in dates[T - h:]}
    # the forecaster reads the whole series in map inference and forecasts after its end
    from pimc_core.models.pixel_model import load_pixel_model

    m = load_pixel_model(rep["model"])
    assert m.n_dates == T and m.forecast_input == L and m.forecast_dates[0] > dates[-1]
    # a rerun reuses the truncated pretraining; an init that has seen the held-out dates is refused
    seen["pretrain_T"].clear()
    assert raster.main(["forecast", "--config", str(cfg)]) == 0 and seen["pretrain_T"] == []
    assert raster.main(["forecast", "--config", str(cfg), f"init={rep['model']}"]) == 0  # trained up to the cutoff
    full = tmp_path / "full.pimc"
    from pimc_core.models.pixel_model import save_pixel_model

    save_pixel_model(full, m.net, training_dates=dates)
    assert raster.main(["forecast", "--config", str(cfg), f"init={full}"]) == 2


# ============================================================================ pimc fit's forecast head
def test_fit_forecast_head_trains_on_inputs_that_end_at_their_origin(tmp_path, monkeypatch):
    """The forecast head of ``pimc fit`` (a map forecasts from series gap-filled up to their last
    date) trains on windows gap-filled from the observations up to each window's own origin:
    changing every observation after an origin leaves the inputs of that origin's windows as
    they are, where series gap-filled over the whole stack would have changed."""
    import shutil

    import rasterio

    from pimc_core import fit as fit_mod
    from pimc_core.datasets.synthetic import make_synthetic
    from pimc_core.fit import pipeline as fit_steps
    from pimc_core.io.timeseries import open_series
    from pimc_core.series.gapfill import fill_gaps

    stack = make_synthetic(tmp_path / "a", size=16, n_dates=12, seed=2, cloud_fraction=0.35)
    seen = []
    real = fit_steps.sample_windows

    def spy(ts, samples, *a, **kw):
        seen.append((samples, a, kw, real(ts, samples, *a, **kw)))
        return seen[-1][-1]

    monkeypatch.setattr(fit_steps, "sample_windows", spy)
    cfg = {"data": {"pretrain_samples": 200, "patch_size": 3, "indices": ["ndvi", "evi"]},
           "model": {"rp_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                     "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                     "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8},
           "pretrain": {"steps": 0}, "forecast": {"input_len": 5, "horizon": 2, "max_windows": 0,
                                                  "finetune": {"epochs": 1, "batch_size": 64}}, "threads": 1}
    fit_mod.fit(stack.manifest, None, tmp_path / "m.pimc", config=cfg, progress=False)
    samples, args, kw, w = seen[0]
    L, h, ci = args
    assert (L, h) == (5, 2) and len(np.unique(w.origin)) == 12 - L - h + 1 and w.n_targets > 0
    o = int(w.origin.min())
    cut = samples.dates[o]

    # the same stack with every observation after the first origin changed (NIR halved)
    changed = tmp_path / "b"
    shutil.copytree(stack.manifest.parent, changed)
    for p in sorted(changed.glob("S2_*.tif")):
        if dt.datetime.strptime(p.stem[3:], "%Y%m%d").date() > cut:
            with rasterio.open(p, "r+") as ds:
                ds.write((ds.read(4) // 2).astype(ds.dtypes[3]), 4)
    ts2 = open_series(changed / "manifest.yaml")
    w2 = real(ts2, samples, *args, **kw)
    first, first2 = w.origin == o, w2.origin == o
    np.testing.assert_array_equal(w2.pixel[first2], w.pixel[first])
    np.testing.assert_array_equal(w2.inputs[first2], w.inputs[first])  # nothing after the origin is read
    assert not np.array_equal(w2.inputs[~first2], w.inputs[~first])  # later origins do see the change
    # gap-filling the whole stack (the old training inputs) would have leaked the change into them
    obs, obs2 = (fc.read_pixel_observations(t, samples.rows, samples.cols, samples.indices)
                 for t in (open_series(stack.manifest), ts2))
    whole, whole2 = (fill_gaps(ob.values, list(ob.dates), min_valid=1).values[:, :, o - L + 1:o + 1] for ob in (obs, obs2))
    assert not np.array_equal(whole[w.pixel[first]], whole2[w.pixel[first]])
