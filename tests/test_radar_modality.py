"""The radar modality: a network trained on an optical source and its radar source (``--sar``)
reads the radar series with its own encoder, aligns every pair of views in pretraining, learns
with source dropout, and classifies from S2 alone, S1 alone or both (chosen by what is given)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pimc_core.errors import ConfigError, InputError
from pimc_core.models.modalities import MODALITIES, SAR_MODALITIES, modality_mask, random_source_mask
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet
from pimc_core.models.pixel_model import PimcPixelModel

INDICES = ("ndvi", "evi", "vv_db", "vh_db", "rvi")
SMALL = {"rp_encoder": {"width": 4, "depth": 2, "embed_dim": 8}, "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
         "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8}


def _net(radar: bool = True, n_classes: int = 3) -> PimcNet:
    torch.manual_seed(0)
    cfg = PimcModelConfig(indices=INDICES, n_dates=8, patch_bands=("red", "nir"), patch_size=3, n_classes=n_classes,
                          radar_modality=radar, **SMALL)
    return PimcNet(cfg).eval()


def test_config_splits_the_indices_and_old_files_read_as_before():
    cfg = _net().cfg
    assert cfg.sar_indices == ("vv_db", "vh_db", "rvi") and cfg.optical_indices == ("ndvi", "evi")
    assert cfg.modalities == SAR_MODALITIES and cfg.fused_dim == 4 * 8
    assert cfg.sar_cfg().in_channels == 3 and cfg.series_cfg().in_channels == 2 and cfg.rp_channels == 2
    # a model file written before the radar modality has neither key: every index is a channel of the same branches
    old = {k: v for k, v in _net(radar=False).cfg.to_dict().items() if k not in ("radar_modality", "sar_encoder")}
    back = PimcModelConfig.from_dict(old)
    assert not back.has_sar and back.modalities == MODALITIES and back.optical_indices == INDICES
    with pytest.raises(ConfigError, match="radar_modality needs optical and radar indices"):
        PimcModelConfig(indices=("ndvi", "evi"), radar_modality=True)
    with pytest.raises(ConfigError, match="forecast index must be optical"):
        PimcModelConfig(indices=INDICES, radar_modality=True, forecast_horizon=2, forecast_index="vv_db")


def test_each_branch_reads_its_own_channels():
    net = _net()
    x = torch.randn(6, len(INDICES), 8)
    y = x.clone()
    y[:, 2:] += 3.0  # change the radar channels only
    ex, ey = net.encode(x, None), net.encode(y, None)
    assert set(ex) == {"rp", "series", "sar"}
    torch.testing.assert_close(ex["rp"], ey["rp"])
    torch.testing.assert_close(ex["series"], ey["series"])
    assert not torch.allclose(ex["sar"], ey["sar"])
    logits = net.classify(x, torch.randn(6, 2, 3, 3))
    assert logits.shape == (6, 3) and net.classifier.net[-1].in_features == 4 * 8 + 4


def test_pretraining_aligns_every_pair_of_views():
    net = _net(n_classes=0)
    x, p = torch.randn(16, len(INDICES), 8), torch.randn(16, 2, 3, 3)
    loss = net.contrastive_loss(x, p)
    emb = net.encode(x, p)
    zt, zp, zs = net.temporal_proj(net.temporal_view(emb)), net.patch_proj(emb["patch"]), net.sar_proj(emb["sar"])
    want = (net.contrastive(zt, zp) + net.contrastive(zt, zs) + net.contrastive(zp, zs)) / 3
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert all(q.grad is not None for q in net.sar_encoder.parameters() if q.requires_grad)


def test_source_dropout_drops_one_source_at_most():
    g = torch.Generator().manual_seed(3)
    base = modality_mask(4000, SAR_MODALITIES, modalities=SAR_MODALITIES)
    m = random_source_mask(base, 0.25, g)
    optical_gone = m[:, :3].sum(1) == 0
    sar_gone = m[:, 3] == 0
    assert not (optical_gone & sar_gone).any()
    assert 0.2 < optical_gone.float().mean() < 0.3 and 0.2 < sar_gone.float().mean() < 0.3
    # a pixel that has one source only keeps it
    only_optical = modality_mask(100, MODALITIES, modalities=SAR_MODALITIES)
    assert torch.equal(random_source_mask(only_optical, 0.5, g), only_optical)


def _model() -> PimcPixelModel:
    net = _net()
    meta = {"classes": [{"id": i + 1, "name": f"c{i}", "color": "#000000"} for i in range(3)],
            "training": {"classify_modalities": ["rp", "series"]}}
    return PimcPixelModel(net, meta)


def test_the_pixel_model_reads_what_is_given():
    model = _model()
    assert model.classify_modalities == ("rp", "series", "sar")  # the input choice is about the patch
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, len(INDICES), 8)).astype(np.float32)
    both = model.predict(x, outputs=("probabilities",))["probabilities"]
    net = model.net
    with torch.no_grad():
        want = torch.softmax(net.classify(torch.from_numpy(x), None), 1).numpy()
    np.testing.assert_allclose(both, want, rtol=1e-5, atol=1e-6)

    model.bind_sources(("rp", "series", "patch"))  # the optical source alone
    assert model.indices == ("ndvi", "evi") and model.patch_size == 3
    s2 = model.predict(x[:, :2], outputs=("probabilities", "embeddings"))
    full = x.copy()
    full[:, 2:] = net.idx_mean[2:].numpy()[None, :, None]
    mask = net.modality_mask(5, ("rp", "series"))
    with torch.no_grad():
        want = torch.softmax(net.classify(torch.from_numpy(full), None, mask), 1).numpy()
    np.testing.assert_allclose(s2["probabilities"], want, rtol=1e-5, atol=1e-6)
    assert np.all(s2["embeddings"][:, 3 * 8:] == 0)  # the radar block is absent

    model.bind_sources(("sar",))  # the radar source alone: no patches, no forecast
    assert model.indices == ("vv_db", "vh_db", "rvi") and model.patch_size is None and model.patch_bands == ()
    s1 = model.predict(x[:, 2:], outputs=("probabilities", "embeddings"))
    assert s1["probabilities"].shape == (5, 3) and np.all(s1["embeddings"][:, : 3 * 8] == 0)
    with pytest.raises(ConfigError, match=r"shape \(N, 3, 8\)"):
        model.predict(x)


def test_a_pixel_without_optical_series_is_classified_from_the_radar():
    model = _model()
    assert model.channel_groups == ((0, 1), (2, 3, 4))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, len(INDICES), 8)).astype(np.float32)
    x[:2, :2] = np.nan  # two pixels under clouds all season
    out = model.predict(x, outputs=("probabilities",))["probabilities"]
    model.bind_sources(("sar",))
    assert model.channel_groups is None
    s1 = model.predict(x[:2, 2:], outputs=("probabilities",))["probabilities"]
    np.testing.assert_allclose(out[:2], s1, rtol=1e-5, atol=1e-6)
    x[2, 3] = np.nan
    model.bind_sources(SAR_MODALITIES)
    x[2, :2] = np.nan  # neither source
    with pytest.raises(InputError, match="both sources' channels"):
        model.predict(x)


def test_index_series_groups_keep_a_pixel_that_one_group_covers():
    import datetime as dt

    from pimc_core.io.timeseries import Observations
    from pimc_core.series.pixel import index_series

    t, dates = 6, tuple(dt.date(2023, 4, 1) + dt.timedelta(days=10 * i) for i in range(6))
    refl = np.full((t, 4, 1, 2), 0.2, np.float32)
    refl[:, 1] = 0.5  # nir
    refl[:, 2:] = 0.05  # vv, vh (linear sigma0)
    valid = np.ones((t, 1, 2), bool)
    refl[:, :2, 0, 0] = np.nan  # pixel 0: no optical observation at all
    obs = Observations(refl, valid, ("red", "nir", "vv", "vh"), dates, None)
    plain = index_series(obs, ("ndvi", "vh_db"))
    assert plain.ok.tolist() == [[False, True]]
    grouped = index_series(obs, ("ndvi", "vh_db"), groups=((0,), (1,)))
    assert grouped.ok.tolist() == [[True, True]]
    assert np.isnan(grouped.filled[0, :, 0, 0]).all() and np.isfinite(grouped.filled[1, :, 0, 0]).all()


def test_the_map_graph_and_its_onnx_file_read_what_is_given(tmp_path, capsys):
    """The fast engines give the reference network's output for both sources, one alone, and pixels
    with one source; the exported file too, with its ``modalities`` input, and its forest member
    mixes in only where both sources are (as pimc classify)."""
    import onnxruntime as ort

    from pimc_core.cli import main
    from pimc_core.models.forest import series_features, train_forest
    from pimc_core.models.pixel_model import load_pixel_model, save_pixel_model
    from pimc_core.series.composites import reflect_fill_patches

    base = _model()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, len(INDICES), 8)).astype(np.float32)
    p = rng.uniform(0.0, 0.4, (120, 2, 3, 3)).astype(np.float32)
    forest = train_forest(series_features(x), (x[:, 0, 0] > 0).astype(int) + (x[:, 2, 0] > 0), 3, trees=10, seed=0)
    training = {**base.metadata["training"], "ensemble": {"forest_weight": 0.5}}
    save_pixel_model(tmp_path / "m.pimc", base.net, classes=base.metadata["classes"], training=training, forest=forest)
    model = load_pixel_model(tmp_path / "m.pimc")
    holes = x.copy()
    holes[:30, :2] = np.nan  # under clouds all season: the radar alone
    holes[30:45, 2:] = np.nan  # no radar: the optical source alone
    cases = [(SAR_MODALITIES, x, p), (SAR_MODALITIES, holes, p), (MODALITIES, x[:, :2], p), (("sar",), x[:, 2:], None)]
    for given, xin, pin in cases:
        model.bind_sources(given)
        out = {}
        for engine in ("reference", "torch", "onnx"):
            model.engine = engine
            out[engine] = model.predict(xin, pin, outputs=("probabilities", "embeddings"))
        for engine in ("torch", "onnx"):
            for k in ("probabilities", "embeddings"):
                np.testing.assert_allclose(out[engine][k], out["reference"][k], atol=2e-5, err_msg=f"{given} {engine} {k}")
    assert "torch map graph" in model.device_summary() or "ONNX Runtime" in model.device_summary()

    assert main(["export", str(tmp_path / "m.pimc"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "modalities (N, 4: rp series patch sar, 1 present / 0 absent)" in capsys.readouterr().out
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["series", "patches", "modalities"]
    model.bind_sources(SAR_MODALITIES)
    model.engine = "reference"
    mean = model.net.idx_mean.numpy()[None, :, None]
    filled = np.where(np.isfinite(holes), holes, mean).astype(np.float32)  # absent channels: any finite values
    mods = np.ones((120, 4), np.float32)
    mods[:30, :3] = 0
    mods[30:45, 3] = 0
    pf = p.copy()
    reflect_fill_patches(pf)
    prob, emb = sess.run(None, {"series": filled, "patches": pf, "modalities": mods})
    ref = model.predict(holes, p, outputs=("probabilities", "embeddings"))
    np.testing.assert_allclose(prob, ref["probabilities"], atol=2e-5)
    np.testing.assert_allclose(emb, ref["embeddings"], atol=2e-5)
    alone = PimcPixelModel(model.net, base.metadata).predict(holes, p, outputs=("probabilities",))["probabilities"]
    np.testing.assert_allclose(prob[:45], alone[:45], atol=2e-5)  # one source: the network alone
    assert np.abs(prob[45:] - alone[45:]).max() > 0.05  # both: the forest mixed in
