"""The PIMC network (shapes, modality dropout), contrastive pretraining (loss decreases,
checkpoint / resume equality, the DDP path at world size 1) and the downstream helpers."""

from __future__ import annotations

import dataclasses
import itertools
import socket

import numpy as np
import pytest
import torch

from pimc_core.errors import ConfigError, InputError
from pimc_core.learn import forecast as fc
from pimc_core.learn.augment import AugmentConfig, augment_patches, interpolate_missing
from pimc_core.learn.checkpoints import latest_checkpoint, load_checkpoint
from pimc_core.learn.finetune import (
    FinetuneConfig,
    embed,
    finetune_classifier,
    linear_probe,
    predict_proba,
)
from pimc_core.learn.forecast import forecast_plan
from pimc_core.learn.pretrain import PretrainConfig, pretrain, step_batches
from pimc_core.models.modalities import MODALITIES, modality_mask, random_modality_mask
from pimc_core.models.pimc_config import PimcModelConfig
from tests.toy_data import make_net, toy


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------------------ model
@pytest.mark.parametrize("level", ["series", "channels", "both", "none"])
def test_shapes_with_any_subset_of_modalities(level):
    series, patches, _ = toy(n=6)
    net = make_net(series, patches, n_classes=4, level=level).eval()
    x, p = torch.from_numpy(series), torch.from_numpy(patches)
    with torch.no_grad():
        both = net.classify(x, p)
        rp_only = net.classify(x, None)
        patch_only = net.classify(None, p)
        emb = net.embed(x, None)
    assert both.shape == rp_only.shape == patch_only.shape == (6, 4)
    assert emb.shape == (6, net.cfg.fused_dim) == (6, 3 * 8)
    assert torch.all(emb[:, 16:] == 0)  # the patch block of a series-only embedding
    if level in ("channels", "none"):
        assert torch.all(emb[:, 8:16] == 0)  # no series branch
    # an explicit mask equals leaving the input out
    with torch.no_grad():
        masked = net.classify(x, p, modality_mask(6, ("rp", "series")))
    torch.testing.assert_close(masked, rp_only)
    # RP images: one channel per index (+ level plots)
    assert net.rp_images(net.standardise_series(x)).shape[1] == (6 if level in ("channels", "both") else 3)
    coords = make_net(series, patches, level=level, rp_coords=True)
    assert coords.rp_images(coords.standardise_series(x)).shape[1] == (8 if level in ("channels", "both") else 5)


def test_modality_dropout_keeps_one_modality():
    g = torch.Generator().manual_seed(0)
    base = modality_mask(2000, MODALITIES)
    m = random_modality_mask(base, 0.6, g)
    assert (m.sum(1) >= 1).all() and 0.3 < float(m.mean()) < 0.6
    only_rp = modality_mask(100, ("rp",))
    assert torch.equal(random_modality_mask(only_rp, 0.9, g), only_rp)


def test_nan_in_patches_is_the_band_mean():
    series, patches, _ = toy(n=4)
    net = make_net(series, patches)
    p = torch.from_numpy(patches.copy())
    p[:, 0, 0, 0] = float("nan")
    out = net.standardise_patches(p)
    assert torch.isfinite(out).all() and torch.all(out[:, 0, 0, 0] == 0)


def test_config_checks():
    with pytest.raises(ConfigError, match="level"):
        PimcModelConfig(level="bogus")
    with pytest.raises(ConfigError, match="unknown key"):
        PimcModelConfig(rp_encoder={"widht": 3})
    with pytest.raises(ConfigError, match="embed_dim"):
        PimcModelConfig(rp_encoder={"embed_dim": 16}, series_encoder={"embed_dim": 8})
    with pytest.raises(ConfigError, match="unknown key"):
        PimcModelConfig.from_dict({"bogus": 1})


# ------------------------------------------------------------------------------ augmentation
def test_interpolate_missing_is_linear_between_kept_steps():
    x = torch.tensor([[[0.0, 9.0, 9.0, 3.0, 9.0]]])
    keep = torch.tensor([[True, False, False, True, False]])
    torch.testing.assert_close(interpolate_missing(x, keep), torch.tensor([[[0.0, 1.0, 2.0, 3.0, 3.0]]]))


def test_patch_flips_are_dihedral():
    p = torch.arange(2 * 9, dtype=torch.float32).reshape(1, 2, 3, 3).repeat(64, 1, 1, 1)
    out = augment_patches(p, AugmentConfig(patch_noise=0.0), torch.Generator().manual_seed(1))
    seen = {tuple(o[0].flatten().tolist()) for o in out}
    assert len(seen) == 8
    assert all(sorted(s) == list(range(9)) for s in seen)


# ------------------------------------------------------------------------------ pretraining
def test_infonce_decreases_on_a_toy_set():
    series, patches, _ = toy(n=128)
    net = make_net(series, patches)
    cfg = PretrainConfig(steps=40, batch_size=32, lr=3e-3, warmup_steps=2, checkpoint_every=0, seed=0)
    res = pretrain(net, series, patches, cfg, device="cpu")
    assert len(res.losses) == 40 and res.steps == 40
    first, last = np.mean(res.losses[:5]), np.mean(res.losses[-5:])
    assert last < first - 0.3, (first, last)


def _phase_toy(n, seed, t=16, k=5):
    """Series = level + a seasonal wave of random phase; the patch knows the level only."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.1, 0.8, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    tt = np.linspace(0, 2 * np.pi, t)
    base = level[:, None] + 0.2 * np.sin(tt[None] + phase[:, None])
    series = np.stack([base * (1 + 0.1 * i) for i in range(3)], 1).astype(np.float32)
    series += rng.normal(0, 0.01, series.shape).astype(np.float32)
    patches = np.repeat(np.repeat(np.stack([level, level ** 2], 1)[:, :, None, None], k, 2), k, 3).astype(np.float32)
    patches += rng.normal(0, 0.02, patches.shape).astype(np.float32)
    return series, patches, np.stack([np.sin(phase), np.cos(phase)], 1)


def _assert_interrupted_run_resumes_exactly(series, patches, tmp_path, **cfg_kw):
    """A 5-step run killed before step 3 (checkpoint at 2) resumes to the losses of an
    uninterrupted run (``cfg_kw``: the pretraining option under test)."""
    cfg = PretrainConfig(steps=5, batch_size=32, warmup_steps=1, checkpoint_every=2, seed=1, **cfg_kw)
    res_a = pretrain(make_net(series, patches), series, patches, cfg, device="cpu", checkpoint_dir=tmp_path / "a")
    with pytest.raises(RuntimeError, match="injected"):
        pretrain(make_net(series, patches), series, patches, cfg, device="cpu", checkpoint_dir=tmp_path / "b",
                 fault_at_step=3)
    res_b = pretrain(make_net(series, patches), series, patches, cfg, device="cpu", checkpoint_dir=tmp_path / "b")
    assert res_b.resumed_from == 2 and res_b.losses == res_a.losses


def test_reconstruction_term_keeps_what_the_patch_does_not_know(tmp_path):
    """reconstruct > 0: the temporal view must also decode the series, so information the patch
    cannot predict (here the phase of the seasonal wave) stays in the embedding; the decoder is
    not part of the model file, and runs with it resume exactly."""
    from sklearn.linear_model import RidgeCV

    series, patches, phase = _phase_toy(256, 0)
    te_series, _, te_phase = _phase_toy(256, 1)
    r2 = {}
    for w in (0.0, 1.0):
        net = make_net(series, patches)
        cfg = PretrainConfig(steps=120, batch_size=32, lr=3e-3, warmup_steps=2, checkpoint_every=0, seed=0, reconstruct=w)
        pretrain(net, series, patches, cfg, device="cpu")
        assert (net.reconstructor is not None) == (w > 0)

        def feats(s):
            with torch.no_grad():
                return net.temporal_view(net.temporal_embeddings(net.standardise_series(torch.from_numpy(s)))).numpy()

        ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(feats(series), phase)
        r2[w] = ridge.score(feats(te_series), te_phase)
    assert r2[1.0] > r2[0.0] + 0.04, r2  # measured 0.93 vs 0.84
    weights = net.module_state()
    assert "reconstructor" not in weights
    fresh = make_net(series, patches)
    fresh.load_module_state(weights)  # strict: a model file never needs the decoder
    # checkpoints carry the decoder: an interrupted run resumes to the same losses
    _assert_interrupted_run_resumes_exactly(series, patches, tmp_path, reconstruct=1.0)
    with pytest.raises(ConfigError, match="reconstruct"):
        PretrainConfig(reconstruct=-0.5)


def test_prototype_term_is_trained_checkpointed_and_left_out_of_model_files(tmp_path):
    """prototypes > 0: the prototypes learn (they move, and the pixels do not all fall on one of
    them), are not part of the model file, and a run with them resumes exactly."""
    series, patches, _ = toy(n=128)
    net = make_net(series, patches)
    before = net.attach_prototypes(6).prototypes.detach().clone()
    cfg = PretrainConfig(steps=30, batch_size=32, lr=3e-3, warmup_steps=2, checkpoint_every=0, seed=0, prototypes=6)
    pretrain(net, series, patches, cfg, device="cpu")
    assert net.prototypes.prototypes.shape == (6, net.cfg.proj_dim)
    assert float((net.prototypes.prototypes.detach() - before).abs().max()) > 0.01
    with torch.no_grad():
        emb = net.encode(torch.from_numpy(series), torch.from_numpy(patches))
        used = net.prototypes.scores(net.patch_proj(emb["patch"])).argmax(1).unique()
    assert used.numel() >= 2, used  # not collapsed onto one prototype (3 of 6 when written)
    weights = net.module_state()
    assert "prototypes" not in weights
    make_net(series, patches).load_module_state(weights)  # strict: a model file never needs them
    _assert_interrupted_run_resumes_exactly(series, patches, tmp_path, prototypes=6)
    for bad in (dict(prototypes=1), dict(prototypes=-2), dict(prototype_weight=-1.0)):
        with pytest.raises(ConfigError, match="prototype"):
            PretrainConfig(**bad)


def test_step_batches_resume_mid_epoch():
    full = list(itertools.islice(step_batches(10, 3, seed=4, start_step=0), 12))
    later = list(itertools.islice(step_batches(10, 3, seed=4, start_step=4), 8))
    assert [s for s, _ in full] == list(range(12))
    for (s1, b1), (s2, b2) in zip(full[4:9], later[:5]):
        assert s1 == s2 and np.array_equal(b1, b2)


def _state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_checkpoint_resume_reaches_the_same_weights(tmp_path):
    series, patches, _ = toy(n=64)
    cfg = PretrainConfig(steps=7, batch_size=16, lr=2e-3, warmup_steps=2, checkpoint_every=2, keep_checkpoints=2, seed=3)
    net_a = make_net(series, patches)
    res_a = pretrain(net_a, series, patches, cfg, device="cpu", checkpoint_dir=tmp_path / "a")

    net_b = make_net(series, patches)
    with pytest.raises(RuntimeError, match="injected"):
        pretrain(net_b, series, patches, cfg, device="cpu", checkpoint_dir=tmp_path / "b", fault_at_step=5)
    assert latest_checkpoint(tmp_path / "b").name == "step_00000004.pt"
    assert len(list((tmp_path / "b").glob("step_*.pt"))) == 2  # older ones pruned
    net_b2 = make_net(series, patches)  # a fresh process: nothing but the checkpoint survives
    res_b = pretrain(net_b2, series, patches, cfg, device="cpu", checkpoint_dir=tmp_path / "b")
    assert res_b.resumed_from == 4
    assert res_b.losses == res_a.losses
    sa, sb = _state(net_a), _state(net_b2)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # checkpoints load with weights_only (no pickle code) and hold the whole training state
    st = load_checkpoint(latest_checkpoint(tmp_path / "b"))
    assert {"model", "optimizer", "scheduler", "rng", "step", "losses"} <= set(st) and st["step"] == 7
    # a different configuration refuses to resume from these checkpoints
    with pytest.raises(ConfigError, match="lr"):
        pretrain(make_net(series, patches), series, patches, PretrainConfig(**{**cfg.__dict__, "lr": 1e-3}),
                 device="cpu", checkpoint_dir=tmp_path / "b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "step_00000001.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="checkpoint"):
        pretrain(make_net(series, patches), series, patches, cfg, device="cpu", checkpoint_dir=tmp_path / "c")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_path_at_world_size_one(monkeypatch):
    series, patches, _ = toy(n=64)
    cfg = PretrainConfig(steps=3, batch_size=16, warmup_steps=1, checkpoint_every=0, seed=1)
    plain = make_net(series, patches)
    res_plain = pretrain(plain, series, patches, cfg, device="cpu")
    for k, v in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "WORLD_SIZE": "1",
                 "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(k, v)
    ddp = make_net(series, patches)
    try:
        res_ddp = pretrain(ddp, series, patches, cfg, device="cpu")
        assert torch.distributed.is_initialized() and torch.distributed.get_backend() == "gloo"
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    np.testing.assert_allclose(res_ddp.losses, res_plain.losses, rtol=1e-5)
    for k, v in _state(plain).items():
        torch.testing.assert_close(_state(ddp)[k], v, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ downstream
def test_classifier_finetuning_and_linear_probe():
    series, patches, labels = toy(n=128)
    net = make_net(series, patches, n_classes=4)
    hist = finetune_classifier(net, series, patches, labels, [1, 2, 3, 4],
                               FinetuneConfig(epochs=8, batch_size=32, lr=1e-2, seed=0))
    assert hist["loss_end"] < hist["loss_start"]
    for p in (patches, None):
        prob = predict_proba(net, series, p)
        assert prob.shape == (128, 4) and np.allclose(prob.sum(1), 1, atol=1e-5)
    prob = predict_proba(net, None, patches)
    assert prob.shape == (128, 4)
    assert (np.array([1, 2, 3, 4])[predict_proba(net, series, patches).argmax(1)] == labels).mean() > 0.6
    frozen = make_net(series, patches, n_classes=4)
    before = {k: v.clone() for k, v in frozen.rp_encoder.state_dict().items()}
    finetune_classifier(frozen, series, patches, labels, [1, 2, 3, 4], FinetuneConfig(epochs=2, batch_size=32, freeze=True))
    for k, v in frozen.rp_encoder.state_dict().items():
        assert torch.equal(v, before[k])
    emb = embed(net, series, patches)
    assert emb.shape == (128, 24)
    lp = linear_probe(emb[:96], labels[:96], emb[96:], labels[96:])
    assert 0 <= lp["accuracy"] <= 1 and lp["n_test"] == 32
    with pytest.raises(ConfigError, match="not among"):
        finetune_classifier(net, series, patches, labels + 10, [1, 2, 3, 4], FinetuneConfig(epochs=1))


def test_lp_ft_trains_the_head_on_frozen_encoders_first():
    """head_steps: a linear probe of the head (encoders frozen) and then the usual fine-tuning,
    step for step the same as the two calls made by hand; fine-tuning then starts from a trained head."""
    series, patches, labels = toy(n=128)
    cfg = FinetuneConfig(epochs=4, batch_size=32, lr=3e-3, seed=0, head_steps=12, head_lr=2e-2)
    lpft = make_net(series, patches, n_classes=4)
    encoder_before = {k: v.clone() for k, v in lpft.rp_encoder.state_dict().items()}
    out = finetune_classifier(lpft, series, patches, labels, [1, 2, 3, 4], cfg)
    assert out["head_steps"] == 12 and out["steps"] == 16 and not out["frozen"]
    assert any(not torch.equal(v, encoder_before[k]) for k, v in lpft.rp_encoder.state_dict().items())
    by_hand = make_net(series, patches, n_classes=4)
    head = finetune_classifier(by_hand, series, patches, labels, [1, 2, 3, 4],
                               dataclasses.replace(cfg, head_steps=0, freeze=True, max_steps=12, lr=2e-2,
                                                   warmup_steps=0))
    assert head["steps"] == 12 and head["frozen"]
    for k, v in by_hand.rp_encoder.state_dict().items():  # the probe leaves the encoders alone
        assert torch.equal(v, encoder_before[k])
    finetune_classifier(by_hand, series, patches, labels, [1, 2, 3, 4], dataclasses.replace(cfg, head_steps=0))
    for k, v in _state(lpft).items():
        torch.testing.assert_close(_state(by_hand)[k], v)
    plain = finetune_classifier(make_net(series, patches, n_classes=4), series, patches, labels, [1, 2, 3, 4],
                                dataclasses.replace(cfg, head_steps=0))
    assert out["loss_start"] < plain["loss_start"]  # the full fine-tuning starts from a trained head
    with pytest.raises(ConfigError, match="head_steps"):
        FinetuneConfig(head_steps=-1)


def _toy_windows(series: np.ndarray, L: int, h: int, step_days: int = 30):
    """Every window of gap-free (N, C, T) series on a regular grid (causal = plain windows here)."""
    import datetime as dt

    grid = [dt.date(2021, 1, 1) + dt.timedelta(days=step_days * i) for i in range(series.shape[2])]
    obs = fc.PixelObservations(series, tuple(grid), ("ndvi", "evi", "savi")[: series.shape[1]])
    w = fc.make_windows(obs, grid, L, h, 0, range(L - 1, len(grid) - h), tol_days=step_days / 2)
    return obs, grid, w


def test_forecast_plan_head_and_baselines():
    assert forecast_plan(42) == (32, 10)
    assert forecast_plan(60) == (32, 10)
    assert forecast_plan(30) == (23, 7)
    assert forecast_plan(12) == (9, 3)
    with pytest.raises(ConfigError):
        forecast_plan(10, horizon=9, input_len=5)
    series, patches, _ = toy(n=64, t=12)
    L, h = forecast_plan(12)
    obs, grid, w = _toy_windows(series, L, h)
    xs, ys = w.inputs, w.targets
    assert xs.shape == (64, 3, 9) and ys.shape == (64, 3)
    np.testing.assert_array_equal(xs, series[:, :, :L])  # one window per pixel: the first L steps
    net = make_net(series[:, :, :L], patches, horizon=h)
    with torch.no_grad():
        out = net.forecast(torch.from_numpy(xs))
    # a zero residual head is persistence
    torch.nn.init.zeros_(net.forecaster.net[-1].weight)
    torch.nn.init.zeros_(net.forecaster.net[-1].bias)
    np.testing.assert_allclose(fc.predict_windows(net, w), np.repeat(xs[:, 0, -1:], h, 1), rtol=1e-5, atol=1e-6)
    hist = fc.train_forecaster(make_net(series[:, :, :L], patches, horizon=h), w,
                               FinetuneConfig(epochs=3, batch_size=32, freeze=False))
    assert hist["steps"] == 6 and out.shape == (64, h)
    # frozen encoders: the head trains on features computed once; predictions agree with forecast()
    fnet = make_net(series[:, :, :L], patches, horizon=h)
    before = {k: v.clone() for k, v in fnet.series_encoder.state_dict().items()}
    hist = fc.train_forecaster(fnet, w, FinetuneConfig(epochs=20, batch_size=32, lr=1e-2, freeze=True))
    assert hist["loss_end"] < hist["loss_start"]
    assert all(torch.equal(v, before[k]) for k, v in fnet.series_encoder.state_dict().items())
    rmse_model = fc.masked_metrics(fc.predict_windows(fnet, w), ys)["rmse"]
    rmse_persist = fc.masked_metrics(np.repeat(xs[:, 0, -1:], h, 1), ys)["rmse"]
    assert rmse_model < rmse_persist
    # a season (12 monthly steps) longer than the series before the targets: the training targets' mean
    base = fc.baseline_forecasts(obs, grid, w, 0, fallback=ys.mean(axis=0))
    assert set(base) == {"persistence", "seasonal_naive", "linear_trend"}
    assert "mean training target" in base["seasonal_naive"]["note"]
    np.testing.assert_allclose(base["seasonal_naive"]["pred"], np.repeat(ys.mean(axis=0)[None], 64, axis=0))
    line = np.arange(12, dtype=np.float32)[None, None] * 0.1
    lo, lg, lw = _toy_windows(line, 9, 3)
    np.testing.assert_allclose(fc.baseline_forecasts(lo, lg, lw, 0)["linear_trend"]["pred"], [[0.9, 1.0, 1.1]], atol=1e-6)
    seasonal = np.tile(np.arange(4.0, dtype=np.float32), 4)[None, None, :14]
    so, sg, sw = _toy_windows(seasonal, 12, 2, step_days=91)  # four steps a year
    np.testing.assert_allclose(fc.baseline_forecasts(so, sg, sw, 0)["seasonal_naive"]["pred"], [[0.0, 1.0]], atol=0.05)
    m = fc.masked_metrics(np.zeros((2, 2)), np.ones((2, 2)))
    assert (m["rmse"], m["mae"]) == (1.0, 1.0)
