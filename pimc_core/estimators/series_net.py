"""The network of the pixel-series classifier: recurrence-plot and series encoders of one pixel.

:class:`PixelSeriesNet` holds up to two encoders of the same standardised series ``(N, C, T)``:

* an :class:`~pimc_core.models.encoders.RPEncoder` over recurrence plots ``|x_i - x_j|``
  computed on the fly (:func:`recurrence_plots_torch`, pyts semantics: ``dimension=1,
  time_delay=1, threshold=None``), plus a *level plot* ``(x_i + x_j) / 2`` channel
  (:func:`level_plots_torch`): a recurrence plot forgets the series level, the level plot gives
  it back;
* a :class:`~pimc_core.models.encoders.SeriesEncoder` (1-D ResNet) over the series and its
  first differences, with time-binned pooling (keeps *when* things happen).

Their embeddings are concatenated and classified by a
:class:`~pimc_core.models.heads.ClassifierHead`; a per-sample mask can zero a whole branch
(modality dropout, a missing modality).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.estimators.series_config import SeriesModelConfig
from pimc_core.models.encoders import RPEncoder, SeriesEncoder
from pimc_core.models.heads import ClassifierHead

__all__ = ["PixelSeriesNet", "level_plots_torch", "recurrence_plots_torch"]


def recurrence_plots_torch(x: torch.Tensor) -> torch.Tensor:
    """Unthresholded recurrence plots ``|x_i - x_j|`` (pyts ``RecurrencePlot()`` defaults).

    Args:
        x: ``(..., T)`` series.

    Returns:
        ``(..., T, T)`` plots, same dtype and device.
    """
    return (x.unsqueeze(-1) - x.unsqueeze(-2)).abs()


def level_plots_torch(x: torch.Tensor) -> torch.Tensor:
    """Level plots ``(x_i + x_j) / 2``: the series level that a recurrence plot forgets.

    Args:
        x: ``(..., T)`` series.

    Returns:
        ``(..., T, T)`` plots.
    """
    return 0.5 * (x.unsqueeze(-1) + x.unsqueeze(-2))


class PixelSeriesNet(nn.Module):
    """Fused per-pixel network: RP encoder + series encoder → classifier.

    Args:
        n_channels: Series channels ``C`` (e.g. 1 for NDVI only, 3 for NDVI/EVI/SAVI).
        n_classes: Number of classes.
        cfg: Architecture settings (a
            :class:`~pimc_core.estimators.series_config.SeriesModelConfig`).

    Shape:
        ``forward``: ``(N, C, T)`` standardised series → ``(N, n_classes)`` logits.
    """

    def __init__(self, n_channels: int, n_classes: int, cfg: SeriesModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_channels = n_channels
        self.branches = tuple(cfg.branches)
        self.encoders = nn.ModuleDict()
        if "series" in self.branches:
            c_in = n_channels * (2 if cfg.diff_channel else 1)
            self.encoders["series"] = SeriesEncoder(
                c_in, cfg.series_width, cfg.series_depth, cfg.embed_dim, cfg.dropout, "bins", cfg.series_bins, cfg.series_kernel
            )
        if "rp" in self.branches:
            c_in = n_channels * (2 if cfg.level_plot else 1)
            self.encoders["rp"] = RPEncoder(c_in, cfg.rp_width, cfg.rp_depth, cfg.embed_dim, cfg.dropout, cfg.rp_stem_stride)
        self.classifier = ClassifierHead(cfg.embed_dim * len(self.branches), n_classes, hidden_dim=0, dropout=cfg.dropout)

    # -- inputs of each branch ------------------------------------------------------------

    def series_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T)`` → series-encoder input ``(N, C or 2C, T)``."""
        if not self.cfg.diff_channel:
            return x
        d = torch.diff(x, dim=-1, prepend=x[..., :1])
        return torch.cat([x, d], dim=1)

    def rp_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T)`` → RP-encoder input ``(N, C or 2C, T', T')`` with ``T' <= rp_size``."""
        if x.shape[-1] > self.cfg.rp_size:
            x = F.adaptive_avg_pool1d(x, self.cfg.rp_size)
        planes = [recurrence_plots_torch(x)]
        if self.cfg.level_plot:
            planes.append(level_plots_torch(x))
        return torch.cat(planes, dim=1)

    def embed(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        """Embedding ``(N, embed_dim)`` of one branch for series ``(N, C, T)``."""
        if branch == "series":
            return self.encoders["series"](self.series_input(x))
        return self.encoders["rp"](self.rp_input(x))

    def features(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated branch embeddings ``(N, B * embed_dim)``.

        Args:
            x: ``(N, C, T)`` standardised series.
            keep: Optional ``(N, B)`` 0/1 mask; a 0 zeroes that branch's embedding for that
                sample (modality dropout / a missing modality).
        """
        zs = [self.embed(x, b) for b in self.branches]
        if keep is not None:
            zs = [z * keep[:, i : i + 1].to(z.dtype) for i, z in enumerate(zs)]
        return torch.cat(zs, dim=1)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N, n_classes)`` for standardised series ``(N, C, T)``."""
        return self.classifier(self.features(x, keep))
