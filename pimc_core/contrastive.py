"""CLIP-style symmetric InfoNCE, the PIMC pretraining objective.

Two views of the same pixels (e.g. the recurrence-plot embedding and the series / patch
embedding) are pulled together, all other pairs in the batch pushed apart:

    logits = exp(s) * normalize(z_a) @ normalize(z_b).T        # (N, N), s = learnable log-scale
    loss   = (CE(logits, arange(N)) + CE(logits.T, arange(N))) / 2

The temperature ``τ = 1 / exp(s)`` starts at ``init_temperature`` (0.07 as in CLIP) and the
logit scale ``exp(s)`` is clamped at 100 (CLIP's cap) so training cannot collapse onto a
vanishing temperature.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["SymmetricInfoNCE"]


class SymmetricInfoNCE(nn.Module):
    """Symmetric (two-way) InfoNCE with a learnable temperature.

    Args:
        init_temperature: Initial temperature τ (> 0).
        learnable: Learn ``log(1/τ)`` (a parameter) or keep it fixed (a buffer).
        max_logit_scale: Upper clamp of ``1/τ``.
    """

    def __init__(self, init_temperature: float = 0.07, learnable: bool = True, max_logit_scale: float = 100.0) -> None:
        super().__init__()
        if not init_temperature > 0:
            raise ValueError(f"init_temperature must be > 0; got {init_temperature}")
        value = torch.tensor(math.log(1.0 / init_temperature), dtype=torch.float32)
        if learnable:
            self.log_scale = nn.Parameter(value)
        else:
            self.register_buffer("log_scale", value)
        self.max_log_scale = math.log(max_logit_scale)

    @property
    def temperature(self) -> float:
        """Current (clamped) temperature τ."""
        return float(torch.exp(-self.log_scale.detach().clamp(max=self.max_log_scale)))

    def logits(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities ``(N, N)``; row ``i`` = anchor ``z_a[i]`` vs all ``z_b``."""
        a = F.normalize(z_a.float(), dim=-1)
        b = F.normalize(z_b.float(), dim=-1)
        scale = self.log_scale.clamp(max=self.max_log_scale).exp()
        return scale * a @ b.t()

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Loss of a batch of paired embeddings.

        Args:
            z_a: ``(N, D)`` embeddings of view A.
            z_b: ``(N, D)`` embeddings of view B; row ``i`` pairs with ``z_a[i]``.

        Returns:
            Scalar loss (mean of the A→B and B→A cross-entropies).
        """
        if z_a.ndim != 2 or z_a.shape != z_b.shape:
            raise ValueError(f"SymmetricInfoNCE expects two (N, D) tensors of equal shape; got {tuple(z_a.shape)}, {tuple(z_b.shape)}")
        logits = self.logits(z_a, z_b)
        target = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
