"""Toy pixels and tiny networks shared by the training tests."""

from __future__ import annotations

import numpy as np
import torch

from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet, compute_normalisation

TINY = dict(
    rp_encoder={"width": 4, "depth": 2, "embed_dim": 8},
    series_encoder={"width": 4, "depth": 1, "embed_dim": 8},
    patch_encoder={"width": 4, "depth": 1, "embed_dim": 8},
    proj_dim=8,
)


def toy(n=96, c=3, t=10, b=4, k=5, seed=0):
    """Series with a per-pixel level and phase; patches whose bands encode the same two factors."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.1, 0.8, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    tt = np.linspace(0, 2 * np.pi, t)
    base = level[:, None] + 0.2 * np.sin(tt[None] + phase[:, None])
    series = np.stack([base * (1 + 0.1 * i) for i in range(c)], axis=1).astype(np.float32)
    series += rng.normal(0, 0.01, series.shape).astype(np.float32)
    feats = np.stack([level, np.sin(phase), np.cos(phase), level ** 2], axis=1)[:, :b]
    patches = np.repeat(np.repeat(feats[:, :, None, None], k, 2), k, 3).astype(np.float32)
    patches += rng.normal(0, 0.02, patches.shape).astype(np.float32)
    labels = (phase > np.pi).astype(np.int64) + 1 + 2 * (level > 0.45)
    return series, patches, labels


def make_net(series, patches, n_classes=0, horizon=0, level="series", **kw):
    cfg = PimcModelConfig(indices=("ndvi", "evi", "savi")[: series.shape[1]], n_dates=series.shape[2],
                          patch_bands=("blue", "green", "red", "nir")[: patches.shape[1]] if patches is not None else (),
                          patch_size=patches.shape[-1] if patches is not None else 1, n_classes=n_classes,
                          forecast_horizon=horizon, forecast_input=series.shape[2] - horizon if horizon else 0,
                          level=level, **{**TINY, **kw})
    torch.manual_seed(0)
    net = PimcNet(cfg)
    net.set_normalisation(compute_normalisation(series, patches))
    return net
