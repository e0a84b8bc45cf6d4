"""Heads on top of the PIMC encoders.

* :class:`ProjectionHead` — maps an embedding into the space where the contrastive loss is
  computed (a 2-layer MLP, as in SimCLR / CLIP-style training; discarded after pretraining).
* :class:`ClassifierHead` — per-pixel class logits.
* :class:`ForecastHead` — the next ``horizon`` values of a series (e.g. NDVI forecasting).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProjectionHead", "ClassifierHead", "ForecastHead"]


class ProjectionHead(nn.Module):
    """Two-layer MLP projection ``(N, embed_dim) → (N, proj_dim)``.

    Args:
        embed_dim: Input embedding size.
        proj_dim: Output size (the contrastive space).
        hidden_dim: Hidden size (default: ``embed_dim``).
    """

    def __init__(self, embed_dim: int, proj_dim: int = 64, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden = hidden_dim or embed_dim
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, proj_dim)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, embed_dim)`` → ``(N, proj_dim)`` (not normalised; the loss normalises)."""
        return self.net(z)


class ClassifierHead(nn.Module):
    """Classifier ``(N, embed_dim) → (N, n_classes)`` logits.

    Args:
        embed_dim: Input embedding size.
        n_classes: Number of classes.
        hidden_dim: Size of an optional hidden layer (0: a single linear layer).
        dropout: Dropout on the input embedding.
    """

    def __init__(self, embed_dim: int, n_classes: int, hidden_dim: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_dim:
            layers += [nn.Linear(embed_dim, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            embed_dim = hidden_dim
        layers.append(nn.Linear(embed_dim, n_classes))
        self.net = nn.Sequential(*layers)
        self.n_classes = n_classes

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, embed_dim)`` → ``(N, n_classes)`` logits."""
        return self.net(z)


class ForecastHead(nn.Module):
    """Forecast head ``(N, embed_dim) → (N, horizon)`` (or ``(N, channels, horizon)``).

    Args:
        embed_dim: Input embedding size.
        horizon: Number of future time steps to predict.
        channels: Number of predicted series (e.g. 1 for NDVI only); with ``channels > 1`` the
            output is ``(N, channels, horizon)``.
        hidden_dim: Hidden layer size.
    """

    def __init__(self, embed_dim: int, horizon: int, channels: int = 1, hidden_dim: int = 128) -> None:
        super().__init__()
        if horizon < 1 or channels < 1:
            raise ValueError(f"ForecastHead needs horizon >= 1 and channels >= 1; got {horizon}, {channels}")
        self.horizon = horizon
        self.channels = channels
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, horizon * channels)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, embed_dim)`` → ``(N, horizon)`` if ``channels == 1`` else ``(N, channels, horizon)``."""
        out = self.net(z)
        if self.channels == 1:
            return out
        return out.view(out.shape[0], self.channels, self.horizon)
