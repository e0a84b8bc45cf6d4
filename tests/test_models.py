"""Encoders and heads: shapes on odd sizes, config validation."""

from __future__ import annotations

import pytest
import torch

from pimc_core.errors import ConfigError
from pimc_core.models import (
    ClassifierHead,
    EncoderConfig,
    ForecastHead,
    PatchEncoder,
    ProjectionHead,
    RPEncoder,
    SeriesEncoder,
    build_encoder,
)


@pytest.mark.parametrize("t", [1, 2, 5, 17, 46])
@pytest.mark.parametrize("depth", [1, 3])
def test_rp_encoder_any_size(t: int, depth: int) -> None:
    enc = RPEncoder(in_channels=3, width=8, depth=depth, embed_dim=24)
    out = enc(torch.rand(4, 3, t, t))
    assert out.shape == (4, 24)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("stride", [1, 2])
def test_rp_encoder_stem_stride(stride: int) -> None:
    enc = RPEncoder(2, 8, 2, 16, stem_stride=stride).eval()
    assert enc(torch.rand(2, 2, 13, 13)).shape == (2, 16)


@pytest.mark.parametrize("k", [1, 3, 5, 8, 9])
def test_patch_encoder_any_size(k: int) -> None:
    enc = PatchEncoder(in_channels=6, width=8, depth=2, embed_dim=20)
    assert enc(torch.randn(3, 6, k, k)).shape == (3, 20)


@pytest.mark.parametrize("t", [1, 3, 7, 46, 101])
@pytest.mark.parametrize("pool", ["avg", "avgmax", "bins"])
def test_series_encoder_any_length(t: int, pool: str) -> None:
    enc = SeriesEncoder(in_channels=2, width=8, depth=2, embed_dim=12, pool=pool, bins=4)
    assert enc(torch.randn(5, 2, t)).shape == (5, 12)


def test_encoders_reject_wrong_channels() -> None:
    with pytest.raises(ValueError, match="channel"):
        RPEncoder(3, 8, 1, 8)(torch.rand(2, 2, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, C, T\)"):
        SeriesEncoder(1, 8, 1, 8)(torch.rand(2, 5))


def test_eval_mode_batch_of_one() -> None:
    for enc, x in [
        (RPEncoder(1, 8, 2, 8), torch.rand(1, 1, 9, 9)),
        (PatchEncoder(4, 8, 2, 8), torch.rand(1, 4, 3, 3)),
        (SeriesEncoder(1, 8, 2, 8), torch.rand(1, 1, 9)),
    ]:
        enc.eval()
        with torch.no_grad():
            assert enc(x).shape == (1, 8)


def test_backward_reaches_all_parameters() -> None:
    enc = SeriesEncoder(1, 8, 2, 8)
    enc(torch.randn(4, 1, 11)).sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_encoder_config_from_dict_and_presets() -> None:
    cfg = EncoderConfig.from_dict({"preset": "tiny", "in_channels": 3})
    assert (cfg.width, cfg.depth, cfg.embed_dim, cfg.in_channels) == (8, 2, 32, 3)
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    assert build_encoder("rp", cfg)(torch.rand(2, 3, 7, 7)).shape == (2, 32)
    assert build_encoder("patch", {"in_channels": 4, "width": 8, "depth": 1, "embed_dim": 8})(torch.rand(2, 4, 5, 5)).shape == (2, 8)
    assert build_encoder("series", {"preset": "tiny"})(torch.rand(2, 1, 10)).shape == (2, 32)


def test_encoder_config_rejects_unknown_key() -> None:
    with pytest.raises(ConfigError, match="widht"):
        EncoderConfig.from_dict({"widht": 16})
    with pytest.raises(ConfigError, match="preset"):
        EncoderConfig.from_dict({"preset": "huge"})
    with pytest.raises(ConfigError, match="depth"):
        EncoderConfig.from_dict({"depth": 0})
    with pytest.raises(ConfigError, match="pool"):
        EncoderConfig(pool="median")
    with pytest.raises(ConfigError, match="kind"):
        build_encoder("audio")


def test_heads_shapes() -> None:
    z = torch.randn(6, 16)
    assert ProjectionHead(16, 8)(z).shape == (6, 8)
    assert ClassifierHead(16, 5)(z).shape == (6, 5)
    assert ClassifierHead(16, 5, hidden_dim=12)(z).shape == (6, 5)
    assert ForecastHead(16, horizon=4)(z).shape == (6, 4)
    assert ForecastHead(16, horizon=4, channels=3)(z).shape == (6, 3, 4)
    with pytest.raises(ValueError):
        ForecastHead(16, horizon=0)
