"""The modalities of a pixel and which of them a step sees: presence masks and modality dropout.

A pixel has up to three optical inputs, in the order of the fused embedding's blocks
(:data:`MODALITIES`): ``rp`` (recurrence plots of its index series), ``series`` (the series
itself) and ``patch`` (its neighbourhood in a reference image); a network trained on an optical
and a radar source has a fourth, ``sar`` (the radar series: :data:`SAR_MODALITIES`). A mask
``(N, M)`` (M = 3 or 4, the network's modalities) says which of them each pixel has (1) or lacks
(0): an absent modality contributes zeros to the fused embedding and its presence flag is 0
(OmniSat-style fusion). Modality dropout (:func:`random_modality_mask`) drops present
modalities at random during training, keeping at least one per pixel, and source dropout
(:func:`random_source_mask`) drops a whole source (every optical modality, or the radar one), so
a classifier works with any subset of inputs at prediction: S2 alone, S1 alone or both.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["MODALITIES", "OPTICAL", "SAR_MODALITIES", "modality_mask", "random_modality_mask", "random_source_mask"]

#: Modalities in the order of the fused embedding blocks (a network without a radar encoder).
MODALITIES: tuple[str, ...] = ("rp", "series", "patch")
#: The modalities of a network with a radar encoder: the optical ones, then ``sar``.
SAR_MODALITIES: tuple[str, ...] = MODALITIES + ("sar",)
#: The modalities an optical source gives (the radar source gives ``sar``).
OPTICAL: tuple[str, ...] = MODALITIES


def modality_mask(n: int, present: Sequence[str] | Mapping[str, bool], device: torch.device | str = "cpu",
                  modalities: Sequence[str] = MODALITIES) -> torch.Tensor:
    """(n, M) float mask of the modalities in ``present`` among ``modalities`` (M of them)."""
    if isinstance(present, Mapping):
        present = [m for m, v in present.items() if v]
    row = torch.tensor([1.0 if m in present else 0.0 for m in modalities], device=device)
    return row.expand(n, -1).clone()


def random_modality_mask(base: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each present modality of ``base`` (N, M) with probability ``p``, keeping at least one per row; (N, M)."""
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


def random_source_mask(mask: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Source dropout of a (N, 4) mask of :data:`SAR_MODALITIES`: each row loses all its optical
    modalities with probability ``p``, else its radar one with probability ``p``, and only when
    the other source is present in that row; (N, 4). Modality dropout alone rarely removes all
    three optical blocks at once, which is what a radar-only input looks like."""
    if p <= 0:
        return mask
    if mask.shape[1] != len(SAR_MODALITIES):
        raise ValueError(f"source dropout needs a mask of the {len(SAR_MODALITIES)} modalities {SAR_MODALITIES}")
    r = torch.rand(mask.shape[0], generator=generator, device="cpu").to(mask.device)
    has_opt = mask[:, :3].sum(dim=1) > 0
    has_sar = mask[:, 3] > 0
    drop_opt = (r < p) & has_sar
    drop_sar = (r >= p) & (r < 2 * p) & has_opt
    out = mask.clone()
    out[drop_opt, :3] = 0.0
    out[drop_sar, 3] = 0.0
    return out
