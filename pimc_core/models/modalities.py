"""The modalities of a pixel and which of them a step sees: presence masks and modality dropout.

A pixel has up to three inputs, in the order of the fused embedding's blocks
(:data:`MODALITIES`): ``rp`` (recurrence plots of its index series), ``series`` (the series
itself) and ``patch`` (its neighbourhood in a reference image). A mask ``(N, 3)`` says which
of them each pixel has (1) or lacks (0): an absent modality contributes zeros to the fused
embedding and its presence flag is 0 (OmniSat-style fusion). Modality dropout
(:func:`random_modality_mask`) drops present modalities at random during training, keeping at
least one per pixel, so a classifier works with any subset of inputs at prediction.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["MODALITIES", "modality_mask", "random_modality_mask"]

#: Modalities in the order of the fused embedding blocks.
MODALITIES: tuple[str, ...] = ("rp", "series", "patch")


def modality_mask(n: int, present: Sequence[str] | Mapping[str, bool], device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 3) float mask of the modalities in ``present`` (names of :data:`MODALITIES`)."""
    if isinstance(present, Mapping):
        present = [m for m, v in present.items() if v]
    row = torch.tensor([1.0 if m in present else 0.0 for m in MODALITIES], device=device)
    return row.expand(n, -1).clone()


def random_modality_mask(base: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each present modality of ``base`` (N, 3) with probability ``p``, keeping at least one per row; (N, 3)."""
    if p <= 0:
        return base
    r = torch.rand(base.shape, generator=generator, device="cpu").to(base.device)
    keep = base * (r >= p).float()
    empty = keep.sum(dim=1) == 0
    if empty.any():
        # restore one present modality at random for rows that lost them all
        scores = torch.rand(base.shape, generator=generator, device="cpu").to(base.device) * base
        pick = F.one_hot(scores.argmax(dim=1), base.shape[1]).float()
        keep = torch.where(empty[:, None], pick, keep)
    return keep
