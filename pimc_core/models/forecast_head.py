"""The forecast head's side inputs: season phase, seasonal-naive residuals, the input window and
the pixel's own climatology, and the head that reads them next to the temporal embedding.

The forecast of a :class:`~pimc_core.models.pimc_net.PimcNet` is a residual on the last
observed value (in standardised units), so "no change" (persistence) is the zero output. With
``forecast_inputs`` (:data:`FORECAST_INPUTS`) the head also reads side features
(:func:`side_features`):

* ``"phase"`` — the day of the year of the forecast origin (the last input date) as
  ``sin``/``cos``: the same shape of series means green-up in spring and senescence in autumn;
* ``"seasonal"`` — for every forecast step the input value one season (``forecast_season_steps``)
  earlier, minus the last value (the seasonal-naive forecast, as a residual);
* ``"window"`` — the whole input window of the forecast index minus the last value;
* ``"climatology"`` — the pixel's own mean seasonal cycle from *all* of its history before the
  origin (:func:`seasonal_climatology`: the mean of the values 1, 2, ... seasons before the
  origin and before each forecast step), minus the last value, with the number of years it
  averages. The encoders still read the last ``L`` steps; this input reads the whole series.

Side features enter both a linear skip and the MLP of :class:`SeasonalForecastHead`; both start
at zero, so an untrained head is persistence and training learns how far to move towards the
seasonal pattern.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from pimc_core.errors import ConfigError

__all__ = ["FORECAST_INPUTS", "SeasonalForecastHead", "seasonal_climatology", "side_features", "side_features_dim"]

#: Side inputs the forecast head can read next to the temporal embedding (see the module docstring).
FORECAST_INPUTS: tuple[str, ...] = ("phase", "seasonal", "window", "climatology")


def side_features_dim(inputs: tuple[str, ...], horizon: int, input_len: int) -> int:
    """Number of side features of ``inputs`` for ``horizon`` steps and ``input_len`` input steps (0: none)."""
    n = 0
    if "phase" in inputs:
        n += 2
    if "seasonal" in inputs:
        n += horizon
    if "window" in inputs:
        n += input_len
    if "climatology" in inputs:
        n += horizon + 3  # origin + h steps, available flag, years
    return n


def seasonal_climatology(x: torch.Tensor, horizon: int, season: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A pixel's mean seasonal cycle at the origin and the next ``horizon`` steps.

    Args:
        x: (N, T) series on a regular grid whose last step is the forecast origin.
        horizon: h.
        season: steps per year, fractions allowed (365.25 / 16 on a 16-day grid): a value
            ``k`` years earlier is interpolated linearly between the two grid steps around it.

    Returns:
        ``clim`` (N, h + 1): for step ``j`` (0 = the origin, position ``T - 1 + j``) the mean of
        the values at ``T - 1 + j - k * season`` over every ``k >= 1`` that lies in the series
        (NaN when none does), and ``years`` (N,): how many years the last step's mean averages.
    """
    n, T = x.shape
    season = float(season)
    if season <= horizon:
        raise ConfigError(f"seasonal climatology: a season ({season:g} steps) must be longer than the horizon ({horizon})")
    vals, counts = [], []
    for j in range(horizon + 1):
        pos = [T - 1 + j - k * season for k in range(1, int(T // season) + 2)]
        pos = [p for p in pos if p >= 0]
        acc = x.new_zeros(n)
        for p in pos:
            lo = int(math.floor(p))
            w = p - lo
            hi = min(lo + 1, T - 1)
            acc = acc + (1 - w) * x[:, lo] + w * x[:, hi]
        vals.append(acc / len(pos) if pos else torch.full((n,), float("nan"), dtype=x.dtype, device=x.device))
        counts.append(len(pos))
    years = torch.full((n,), float(counts[-1]), dtype=x.dtype, device=x.device)
    return torch.stack(vals, dim=1), years


def side_features(cfg: Any, xs: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                  origin_doy: torch.Tensor | None = None,
                  clim: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor | None:
    """Side features of the forecast head from standardised (N, C, L) series: (N, n_extra) or None.

    Args:
        cfg: the :class:`~pimc_core.models.pimc_config.PimcModelConfig`.
        xs: standardised input windows (N, C, L).
        mean, std: the forecast index's standardisation (scalars).
        origin_doy: (N,) day of the year (1..366, fractions allowed) of each window's last
            date; required with ``"phase"``.
        clim: ``(values (N, h + 1), years (N,))`` of :func:`seasonal_climatology` (physical
            units); required with ``"climatology"``.

    Raises:
        ConfigError: ``"phase"`` without ``origin_doy``; a window shorter than a season.
    """
    if not cfg.forecast_extra_dim:
        return None
    ci = cfg.indices.index(cfg.forecast_index)
    x = xs[:, ci]
    last = x[:, -1:]
    feats = []
    if "phase" in cfg.forecast_inputs:
        if origin_doy is None:
            raise ConfigError("this forecaster reads the season phase: give the day of the year of the forecast origin")
        a = torch.as_tensor(origin_doy, dtype=xs.dtype, device=xs.device).reshape(-1, 1) * (2 * np.pi / 365.25)
        feats += [torch.sin(a), torch.cos(a)]
    if "seasonal" in cfg.forecast_inputs:
        m, L = cfg.forecast_season_steps, x.shape[1]
        if L < m:
            raise ConfigError(f"this forecaster reads the value one season ({m} steps) earlier; got {L} input steps")
        idx = torch.tensor([L - m + (i % m) for i in range(cfg.forecast_horizon)], device=xs.device)
        feats.append(x.index_select(1, idx) - last)
    if "window" in cfg.forecast_inputs:
        L = cfg.forecast_input
        if x.shape[1] < L:
            raise ConfigError(f"this forecaster reads {L} input steps; got {x.shape[1]}")
        feats.append(x[:, -L:] - last)
    if "climatology" in cfg.forecast_inputs:
        if clim is None:
            raise ConfigError("this forecaster reads the pixel's climatology: give the whole series or its climatology")
        cv, years = clim
        cs = (torch.as_tensor(cv, dtype=xs.dtype, device=xs.device) - mean) / std
        ok = torch.isfinite(cs).all(dim=1, keepdim=True)
        feats.append(torch.where(ok, cs - last, torch.zeros_like(cs)))
        feats.append(ok.to(xs.dtype))
        feats.append(torch.as_tensor(years, dtype=xs.dtype, device=xs.device).reshape(-1, 1).clamp(max=10) / 4.0)
    return torch.cat(feats, dim=1)


class SeasonalForecastHead(nn.Module):
    """Forecast head with side features: ``delta = MLP([z, f]) + W f + b``.

    ``z`` (N, embed_dim) is the temporal embedding, ``f`` (N, n_extra) the side features (see the
    module docstring). The MLP's last layer and the linear skip start at zero: an untrained head
    predicts no change (persistence).

    Args:
        embed_dim: size of the temporal embedding.
        n_extra: number of side features.
        horizon: forecast steps.
        hidden_dim: hidden units of the MLP.
    """

    def __init__(self, embed_dim: int, n_extra: int, horizon: int, hidden_dim: int = 128) -> None:
        super().__init__()
        if horizon < 1 or n_extra < 1:
            raise ValueError(f"SeasonalForecastHead needs horizon >= 1 and n_extra >= 1; got {horizon}, {n_extra}")
        self.horizon = horizon
        self.net = nn.Sequential(nn.Linear(embed_dim + n_extra, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, horizon))
        self.skip = nn.Linear(n_extra, horizon)
        for lin in (self.net[-1], self.skip):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, z: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """``(N, embed_dim)``, ``(N, n_extra)`` → ``(N, horizon)`` residual (standardised units)."""
        return self.net(torch.cat([z, extra], dim=1)) + self.skip(extra)
