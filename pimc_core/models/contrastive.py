"""CLIP-style symmetric InfoNCE, the PIMC pretraining objective.

Two views of the same pixels (e.g. the recurrence-plot embedding and the series / patch
embedding) are pulled together, all other pairs in the batch pushed apart:

    logits = exp(s) * normalize(z_a) @ normalize(z_b).T        # (N, N), s = learnable log-scale
    loss   = (CE(logits, arange(N)) + CE(logits.T, arange(N))) / 2

The temperature ``τ = 1 / exp(s)`` starts at ``init_temperature`` (0.07 as in CLIP) and the
logit scale ``exp(s)`` is clamped at 100 (CLIP's cap) so training cannot collapse onto a
vanishing temperature.

:class:`SwappedPrototypes` is an optional second term (SwAV, Caron et al. 2020, here across the
two modalities): both views are scored against K learnable unit prototypes, each view's scores
are turned into balanced soft cluster codes by Sinkhorn-Knopp (every prototype gets an equal
share of the batch), and each view predicts the *other* view's codes:

    s_a = normalize(z_a) @ normalize(C).T                          # (N, K)
    q_a = sinkhorn(s_a / eps)                                      # (N, K), no gradient
    loss = -(sum(q_b * log_softmax(s_a / t)) + sum(q_a * log_softmax(s_b / t))) / (2 N)

InfoNCE treats every other pixel of the batch as a negative, pixels of the same crop in another
field included; the prototype term instead groups pixels whose two views agree on a cluster, so
the embedding keeps what many pixels share (a phenology) next to what identifies one pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SymmetricInfoNCE", "SwappedPrototypes", "sinkhorn_codes"]


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


@torch.no_grad()
def sinkhorn_codes(scores: torch.Tensor, eps: float = 0.05, iters: int = 3) -> torch.Tensor:
    """Balanced soft assignments of N samples to K prototypes (Sinkhorn-Knopp, as in SwAV).

    Args:
        scores: ``(N, K)`` similarities (cosines) of the samples to the prototypes.
        eps: entropic regularisation (smaller: harder codes).
        iters: normalisation rounds.

    Returns:
        ``(N, K)`` codes; each row sums to 1 and each prototype receives about N / K in total.
    """
    s = scores.float() / eps
    q = torch.exp(s - s.max()).t()  # (K, N)
    q /= q.sum()
    k, n = q.shape
    for _ in range(iters):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= n
    return (q * n).t()


class SwappedPrototypes(nn.Module):
    """Cross-modal swapped prediction of balanced prototype codes (SwAV-style).

    Args:
        dim: size of the embeddings (the contrastive space).
        n_prototypes: K, the number of learnable prototypes.
        temperature: softmax temperature of the predictions.
        eps: Sinkhorn regularisation of the codes.
        iters: Sinkhorn rounds.
    """

    def __init__(self, dim: int, n_prototypes: int, temperature: float = 0.1, eps: float = 0.05, iters: int = 3) -> None:
        super().__init__()
        if n_prototypes < 2:
            raise ValueError(f"n_prototypes must be >= 2; got {n_prototypes}")
        self.prototypes = nn.Parameter(F.normalize(torch.randn(n_prototypes, dim), dim=1))
        self.temperature = float(temperature)
        self.eps = float(eps)
        self.iters = int(iters)

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` embeddings → ``(N, K)`` cosine similarities to the prototypes."""
        return F.normalize(z.float(), dim=-1) @ F.normalize(self.prototypes, dim=-1).t()

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Loss of a batch of paired ``(N, D)`` embeddings (row i of each: the same sample)."""
        if z_a.ndim != 2 or z_a.shape != z_b.shape:
            raise ValueError(f"SwappedPrototypes expects two (N, D) tensors of equal shape; got {tuple(z_a.shape)}, {tuple(z_b.shape)}")
        s_a, s_b = self.scores(z_a), self.scores(z_b)
        q_a = sinkhorn_codes(s_a.detach(), self.eps, self.iters)
        q_b = sinkhorn_codes(s_b.detach(), self.eps, self.iters)
        la = F.log_softmax(s_a / self.temperature, dim=1)
        lb = F.log_softmax(s_b / self.temperature, dim=1)
        return -0.5 * ((q_b * la).sum(dim=1).mean() + (q_a * lb).sum(dim=1).mean())
