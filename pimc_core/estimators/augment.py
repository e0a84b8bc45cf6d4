"""Label-preserving random perturbations of standardised pixel series (training only).

:func:`augment` is what fine-tuning sees (light: amplitude, level, jitter, one gap-filled
stretch); :func:`contrastive_views` draws the two more strongly perturbed views of a series
that contrastive pretraining pairs. All draws come from the given ``torch.Generator``, so a
seeded fit is reproducible.
"""

from __future__ import annotations

import torch

__all__ = ["augment", "contrastive_views"]


def augment(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Random, label-preserving perturbations of standardised series ``(N, C, T)``.

    Amplitude scaling (±5 %), level shift (±0.05 std), Gaussian jitter (0.03 std) and, for half
    of the series, one segment of up to 15 % of the length replaced by the straight line between
    its ends (what gap filling does to a cloudy stretch). ``strength`` scales all of it.
    """
    if strength <= 0:
        return x
    n, c, t = x.shape
    dev = x.device

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dev)

    def uni(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen).to(dev)

    x = x * (1 + 0.05 * strength * rnd(n, 1, 1)) + 0.05 * strength * rnd(n, 1, 1)
    x = x + 0.03 * strength * rnd(n, c, t)
    if t >= 8:
        seg = (uni(n) * 0.15 * min(strength, 2.0) * t).long().clamp(min=0)
        start = (uni(n) * (t - seg).clamp(min=1)).long()
        active = (uni(n) < 0.5) & (seg >= 2)
        if bool(active.any()):
            pos = torch.arange(t, device=dev)[None, :]
            s, e = start[:, None], (start + seg)[:, None].clamp(max=t - 1)
            inside = (pos > s) & (pos < e) & active[:, None]
            w = ((pos - s).float() / (e - s).clamp(min=1).float()).clamp(0, 1)
            xs = torch.gather(x, 2, s.expand(n, 1)[:, None, :].expand(n, c, 1))
            xe = torch.gather(x, 2, e.expand(n, 1)[:, None, :].expand(n, c, 1))
            line = xs + (xe - xs) * w[:, None, :]
            x = torch.where(inside[:, None, :], line, x)
    return x


def contrastive_views(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently (and more strongly) augmented views for contrastive pretraining."""
    return augment(x, 2.0, gen), augment(x, 2.0, gen)
