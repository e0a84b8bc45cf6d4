"""Augmentations of the two views of a pixel, shared by pretraining and fine-tuning.

* series ``(N, C, T)``: a random time shift (linear resampling, ends held), amplitude scaling
  about the series' minimum (the same factor for every index, plus a per-index factor),
  observations dropped and re-interpolated linearly (simulated clouds), Gaussian noise;
* patches ``(N, B, k, k)``: one of the 8 flips / 90° rotations (the dihedral group), Gaussian
  noise.

Every draw comes from the ``torch.Generator`` the caller passes (one per optimisation step, see
:func:`pimc_core.learn.loop.step_generator`), never from global state, so a step's augmentation
is the same whether or not a run was interrupted before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch

from pimc_core.config import FRACTION, NON_NEGATIVE, Checked, declared, param

__all__ = ["AugmentConfig", "augment_patches", "augment_series", "interpolate_missing", "shift_series"]


@declared
@dataclass
class AugmentConfig(Checked):
    """Augmentations of the two views.

    Attributes:
        drop_obs: share of the observations of a series dropped and re-interpolated linearly
            (simulates clouds); drawn uniformly in [0, drop_obs] per pixel.
        series_noise: Gaussian noise added to the standardised series (std).
        patch_flip: apply one of the 8 flips / 90° rotations to each patch.
        patch_noise: Gaussian noise added to the standardised patches (std).
        time_shift: shift each series in time by a uniform random fraction of up to this many
            steps (linear interpolation, ends held), e.g. sowing dates a few days apart.
        amplitude: scale each series about its minimum by a uniform random factor in
            ``[1 - amplitude, 1 + amplitude]`` (crop vigour), the same for every index.
        channel_scale: the same, drawn independently per index (soil / canopy differences that
            move EVI and SAVI but not the phenology).
    """

    drop_obs: float = param(0.2, FRACTION)
    series_noise: float = param(0.03, NON_NEGATIVE)
    patch_flip: bool = param(True, "boolean")
    patch_noise: float = param(0.05, NON_NEGATIVE)
    time_shift: float = param(0.0, NON_NEGATIVE)
    amplitude: float = param(0.0, NON_NEGATIVE)
    channel_scale: float = param(0.0, NON_NEGATIVE)

    _config_name: ClassVar[str] = "augment"

    @classmethod
    def of(cls, value: Any) -> Any:
        """``value`` made an :class:`AugmentConfig` when it is a mapping of its fields (a config
        section written as a dict); anything else as it is, for the caller's checks."""
        return cls(**value) if isinstance(value, Mapping) else value


def interpolate_missing(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Replace ``x[..., t]`` where ``keep`` is False by linear interpolation (by position)
    between the nearest kept steps; nearest kept value before the first / after the last.

    Args:
        x: (N, C, T). keep: (N, T) bool, at least one True per row.

    Returns:
        (N, C, T).
    """
    n, c, t = x.shape
    pos = torch.arange(t, device=x.device).expand(n, t)
    prev = torch.where(keep, pos, torch.full_like(pos, -1)).cummax(dim=1).values
    nxt = torch.where(keep, pos, torch.full_like(pos, t)).flip(1).cummin(dim=1).values.flip(1)
    no_prev, no_next = prev < 0, nxt >= t
    prev = torch.where(no_prev, nxt, prev).clamp(0, t - 1)
    nxt = torch.where(no_next, prev, nxt).clamp(0, t - 1)
    den = (nxt - prev).float()
    w = torch.where(den > 0, (pos - prev).float() / den.clamp_min(1), torch.zeros_like(den))
    vp = x.gather(2, prev[:, None, :].expand(n, c, t))
    vn = x.gather(2, nxt[:, None, :].expand(n, c, t))
    return vp + (vn - vp) * w[:, None, :].to(x.dtype)


def shift_series(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Resample (N, C, T) series at positions ``t + shift[n]`` (linear, ends held); shift: (N,)."""
    n, c, t = x.shape
    pos = (torch.arange(t, device=x.device, dtype=x.dtype)[None] + shift.to(x.dtype)[:, None]).clamp(0, t - 1)
    lo = pos.floor().long().clamp(0, t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (pos - lo.to(x.dtype))[:, None, :]
    vl = x.gather(2, lo[:, None, :].expand(n, c, t))
    vh = x.gather(2, hi[:, None, :].expand(n, c, t))
    return vl + (vh - vl) * w


def augment_series(series: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
                   noise_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Time shift, amplitude scaling, dropped observations (re-interpolated) and noise.

    Args:
        series: (N, C, T). g: the step's generator.
        noise_scale: (N, C) factor of the noise (e.g. the index's standard deviation, so the
            noise is ``series_noise`` in standardised units).

    Returns:
        (N, C, T).
    """
    n, c, t = series.shape
    x = series
    if cfg.time_shift > 0 and t > 1:
        shift = (torch.rand(n, generator=g) * 2 - 1) * cfg.time_shift
        x = shift_series(x, shift.to(x.device))
    if cfg.amplitude > 0 or cfg.channel_scale > 0:
        scale = 1 + (torch.rand(n, 1, 1, generator=g) * 2 - 1) * cfg.amplitude
        scale = scale + (torch.rand(n, c, 1, generator=g) * 2 - 1) * cfg.channel_scale
        low = x.amin(dim=2, keepdim=True)
        x = low + (x - low) * scale.to(x.device)
    if cfg.drop_obs > 0 and t > 2:
        rate = torch.rand(n, 1, generator=g) * cfg.drop_obs
        keep = torch.rand(n, t, generator=g) >= rate
        keep[:, 0] |= ~keep.any(dim=1)
        x = interpolate_missing(x, keep.to(x.device))
    if cfg.series_noise > 0:
        eps = torch.randn(n, c, t, generator=g).to(x.device) * cfg.series_noise
        if noise_scale is not None:
            eps = eps * noise_scale.to(x.device)[:, :, None]
        x = x + eps
    return x


def augment_patches(patches: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
                    noise_scale: torch.Tensor | None = None) -> torch.Tensor:
    """One of the 8 dihedral transforms per patch, plus noise.

    Args:
        patches: (N, B, k, k). g: the step's generator. noise_scale: (N, B) factor of the noise.

    Returns:
        (N, B, k, k).
    """
    p = patches
    if cfg.patch_flip and p.shape[-1] == p.shape[-2]:
        code = torch.randint(0, 8, (p.shape[0],), generator=g)
        out = p.clone()
        for k in range(8):
            sel = (code == k).nonzero().flatten().to(p.device)
            if sel.numel() == 0 or k == 0:
                continue
            q = p.index_select(0, sel)
            if k & 4:
                q = q.transpose(-1, -2)
            q = torch.rot90(q, k & 3, dims=(-2, -1))
            out.index_copy_(0, sel, q)
        p = out
    if cfg.patch_noise > 0:
        eps = torch.randn(p.shape, generator=g).to(p.device) * cfg.patch_noise
        if noise_scale is not None:
            eps = eps * noise_scale.to(p.device)[:, :, None, None]
        p = p + eps
    return p
