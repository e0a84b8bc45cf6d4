"""The map graph: a trained :class:`~pimc_core.models.pimc_net.PimcNet` as one plain module that
turns a batch of pixels into class probabilities and embeddings, built for speed at inference.

:class:`InferenceNet` computes what :meth:`PimcNet.encode` + :meth:`PimcNet.fuse` +
``PimcNet.classifier`` compute for a map, with three changes that leave the results equal up
to float rounding (the tests compare them):

* the recurrence plots are computed inside the graph, in plain torch operations: the distances
  ``|x_i - x_j|`` (or the embedded trajectories' Euclidean distances), a numeric or
  ``'distance'`` threshold, and the resize to ``rp.size`` as two small matrix products,
  ``A @ D @ A.T`` (bilinear and anti-aliased bilinear resizing are separable linear maps; ``A``
  is made by resizing the identity with :func:`torch.nn.functional.interpolate` itself);
* every batch normalisation is folded into the convolution before it (eval mode);
* the series encoder's time bins are a pooling matrix (any length, exportable).

It holds its input normalisation (the model file's ``normalisation``), so it reads raw index
series and raw reflectance patches: this is the graph ``pimc export --onnx`` writes
(:mod:`pimc_core.models.onnx_export`). Plots with ``threshold='point'`` (per-series
percentiles) are not expressible this way: :func:`graph_supported` says so, and the pixel model
then keeps the reference path.

A network with a radar modality (``sar``: its own encoder on the radar channels of ``series``)
takes a third input, ``modalities`` (N, 4): which of ``rp``, ``series``, ``patch``, ``sar`` each
pixel has (1) or lacks (0), as the pixel model's masks say (the optical source alone, the radar
source alone, a pixel under clouds all season); an absent modality's block is zero and its
presence flag 0, as in :meth:`PimcNet.fuse`.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.errors import ConfigError
from pimc_core.models.modalities import MODALITIES
from pimc_core.models.pimc_net import PimcNet
from pimc_core.series.rp_params import trajectory_params

__all__ = ["InferenceNet", "fold_batchnorm", "graph_supported", "resize_matrix"]


def resize_matrix(side: int, size: int, antialias: bool) -> torch.Tensor:
    """The (size, side) matrix ``A`` with ``interpolate(D, (size, size), 'bilinear',
    align_corners=False, antialias=antialias) == A @ D @ A.T`` for any (side, side) image ``D``."""
    # image i: row i all ones; its resized rows are column i of A (the other factor's rows sum to 1).
    # (A width of 1 would be simpler but interpolate's anti-aliased 1 -> 1 axis is not the identity.)
    rows = torch.eye(side, dtype=torch.float64).reshape(side, 1, side, 1).expand(side, 1, side, side)
    out = F.interpolate(rows.contiguous(), size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
    return out[:, 0, :, 0].t().contiguous().float()


def bin_matrix(length: int, bins: int) -> torch.Tensor:
    """(length, bins) matrix ``P`` with ``h @ P == adaptive_avg_pool1d(h, bins)`` for (N, C, length) ``h``."""
    p = torch.zeros(length, bins)
    for b in range(bins):
        lo, hi = (b * length) // bins, -((-(b + 1) * length) // bins)
        p[lo:hi, b] = 1.0 / (hi - lo)
    return p


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (eval mode) whose ``BatchNorm`` layers that follow a convolution are
    folded into it (the convolution gains a bias, the normalisation becomes an identity).

    A batch normalisation is folded into the child declared just before it when that child is a
    convolution with as many output channels: the order in which PIMC's encoders declare and call
    them (``conv → bn`` in every stem, block and shortcut).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    out = copy.deepcopy(module).eval()
    for parent in out.modules():
        prev_name, prev = None, None
        for name, child in list(parent.named_children()):
            if (isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and isinstance(prev, (nn.Conv1d, nn.Conv2d))
                    and prev.out_channels == child.num_features):
                setattr(parent, prev_name, fuse_conv_bn_eval(prev, child))
                setattr(parent, name, nn.Identity())
            prev_name, prev = name, child
    return out


def graph_supported(net: PimcNet) -> str | None:
    """None when :class:`InferenceNet` can compute ``net``'s recurrence plots; else why not."""
    if net.rp_config.threshold == "point":
        return "recurrence plots with threshold='point' (per-series percentiles)"
    return None


class InferenceNet(nn.Module):
    """Raw pixels → class probabilities and embeddings of a :class:`PimcNet` (see the module docstring).

    Args:
        net: the trained network (its normalisation set).
        classify_modalities: the modalities the classifier reads (``training.classify_modalities``).
        patches: whether the graph takes image patches (the network must have a patch encoder).
        outputs: ``probabilities`` and / or ``embeddings`` — what :meth:`forward` returns, in
            this order.

    Shape:
        ``forward(series (N, C, T) float32 gap-filled index series[, patches (N, B, k, k)
        float32 reflectance, NaN = the band mean][, modalities (N, 4) float32, a network with a
        radar modality only; None: every one])`` → ``probabilities (N, K)`` (softmax),
        ``embeddings (N, D)`` (the fused embedding without presence flags).

    Raises:
        ConfigError: recurrence plots it cannot compute (:func:`graph_supported`), patches for a
            network without a patch encoder, an unknown output.
    """

    def __init__(self, net: PimcNet, classify_modalities: Sequence[str] = MODALITIES, *, patches: bool = True,
                 outputs: Sequence[str] = ("probabilities",)) -> None:
        super().__init__()
        why = graph_supported(net)
        if why:
            raise ConfigError(f"the map graph cannot compute {why}")
        bad = [o for o in outputs if o not in ("probabilities", "embeddings")]
        if bad or not outputs:
            raise ConfigError(f"the map graph gives probabilities and / or embeddings; got {list(outputs)}")
        if "probabilities" in outputs and net.classifier is None:
            raise ConfigError("this model has no classifier: no probabilities")
        if patches and net.patch_encoder is None:
            raise ConfigError("this model has no patch encoder: it takes no patches")
        cfg = net.cfg
        self.outputs = tuple(outputs)
        self.with_patches = bool(patches)
        self.patch_size = int(cfg.patch_size) if patches else 0
        self.n_dates = int(cfg.n_dates)
        self.level = cfg.level
        self.rp_coords = bool(cfg.rp_coords)
        rp = net.rp_config
        self.m, self.tau, self.side = trajectory_params(self.n_dates, rp.dimension, rp.time_delay)
        self.threshold = rp.threshold
        self.percentage = float(rp.percentage)
        self.size = self.side if rp.size is None else int(rp.size)
        self.register_buffer("idx_mean", net.idx_mean.detach().clone()[:, None])
        self.register_buffer("idx_std", net.idx_std.detach().clone()[:, None])
        self.register_buffer("band_mean", net.band_mean.detach().clone()[:, None, None])
        self.register_buffer("band_std", net.band_std.detach().clone()[:, None, None])
        self.register_buffer("rp_resize", resize_matrix(self.side, self.size, self.size < self.side))
        self.register_buffer("level_resize", resize_matrix(self.n_dates, self.size, False))
        self.rp_encoder = fold_batchnorm(net.rp_encoder)
        self.series_encoder = fold_batchnorm(net.series_encoder) if net.series_encoder is not None else None
        self.patch_encoder = fold_batchnorm(net.patch_encoder) if patches else None
        self.sar_encoder = fold_batchnorm(net.sar_encoder) if net.sar_encoder is not None else None
        #: the modalities of the fused embedding, in its order (``sar`` last with a radar modality)
        self.modalities = tuple(net.modalities)
        if self.sar_encoder is not None:
            self.register_buffer("optical_channels", torch.tensor(net.optical_channels, dtype=torch.long))
            self.register_buffer("sar_channels", torch.tensor(net.sar_channels, dtype=torch.long))
        if self.series_encoder is not None and self.series_encoder.pool == "bins":
            self.register_buffer("series_bins", bin_matrix(self.n_dates, self.series_encoder.bins))
        if self.sar_encoder is not None and self.sar_encoder.pool == "bins":
            self.register_buffer("sar_bins", bin_matrix(self.n_dates, self.sar_encoder.bins))
        self.classifier = copy.deepcopy(net.classifier).eval() if "probabilities" in outputs else None
        present = {"rp": True, "series": self.series_encoder is not None, "patch": self.with_patches,
                   "sar": self.sar_encoder is not None}
        self.embed_mask = [1.0 if present[m] else 0.0 for m in self.modalities]
        self.class_mask = [v if m in classify_modalities else 0.0 for m, v in zip(self.modalities, self.embed_mask)]
        self.embed_dim = int(cfg.embed_dim)
        #: images (plots, patches) in channels-last memory layout (faster convolutions on a CPU)
        self.channels_last = False
        self.eval()

    # ------------------------------------------------------------------ recurrence plots
    def _plots(self, xs: torch.Tensor) -> torch.Tensor:
        """(N, C, T) standardised series → (N, C', S, S) images, as :meth:`PimcNet.rp_images`."""
        side = self.side
        if self.m == 1:
            d = (xs[:, :, :, None] - xs[:, :, None, :]).abs()
        else:
            sq = None
            for k in range(self.m):
                v = xs[:, :, k * self.tau:k * self.tau + side]
                t = (v[:, :, :, None] - v[:, :, None, :]) ** 2
                sq = t if sq is None else sq + t
            d = torch.sqrt(sq)
        if self.threshold == "distance":
            eps = d.amax(dim=(2, 3), keepdim=True) * (self.percentage / 100.0)
            d = (d < eps).to(xs.dtype)
        elif self.threshold is not None:
            d = (d < float(self.threshold)).to(xs.dtype)
        if self.size != side:
            d = torch.matmul(torch.matmul(self.rp_resize, d), self.rp_resize.t())
        parts = [d]
        if self.level in ("channels", "both"):
            lv = 0.5 * (xs[:, :, :, None] + xs[:, :, None, :])
            if self.size != self.n_dates:
                lv = torch.matmul(torch.matmul(self.level_resize, lv), self.level_resize.t())
            parts.append(lv)
        if self.rp_coords:
            s = self.size
            lin = torch.linspace(-1.0, 1.0, s, device=xs.device, dtype=xs.dtype)
            rows = lin[:, None].expand(s, s)
            parts.append(torch.stack([rows, rows.t()])[None].expand(xs.shape[0], 2, s, s))
        return torch.cat(parts, dim=1) if len(parts) > 1 else d

    @staticmethod
    def _series(enc: nn.Module, bins: torch.Tensor | None, xs: torch.Tensor) -> torch.Tensor:
        """A series encoder on (N, C, T) standardised series, its time bins as the pooling matrix ``bins``."""
        if enc.pool != "bins":
            return enc(xs)
        h = enc.blocks(xs)
        pooled = torch.cat([torch.matmul(h, bins).flatten(1), h.amax(dim=2)], dim=1)
        return enc.proj(pooled)

    # ------------------------------------------------------------------ forward
    def forward(self, series: torch.Tensor, patches: torch.Tensor | None = None,
                modalities: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """See the class docstring."""
        xs = (series - self.idx_mean) / self.idx_std
        n = xs.shape[0]
        xo = xs if self.sar_encoder is None else xs.index_select(1, self.optical_channels)
        images = self._plots(xo)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        blocks = [self.rp_encoder(images)]
        blocks.append(self._series(self.series_encoder, getattr(self, "series_bins", None), xo)
                      if self.series_encoder is not None else xs.new_zeros(n, self.embed_dim))
        if self.with_patches:
            p = torch.nan_to_num((patches - self.band_mean) / self.band_std, nan=0.0)
            if self.channels_last:
                p = p.contiguous(memory_format=torch.channels_last)
            blocks.append(self.patch_encoder(p))
        else:
            blocks.append(xs.new_zeros(n, self.embed_dim))
        if self.sar_encoder is not None:
            blocks.append(self._series(self.sar_encoder, getattr(self, "sar_bins", None),
                                       xs.index_select(1, self.sar_channels)))
        out = []
        if self.classifier is not None:
            out.append(torch.softmax(self.classifier(self._fused(blocks, self.class_mask, modalities, flags=True)), dim=1))
        if "embeddings" in self.outputs:
            out.append(self._fused(blocks, self.embed_mask, modalities, flags=False))
        return tuple(out)

    @staticmethod
    def _fused(blocks: list[torch.Tensor], keep: list[float], modalities: torch.Tensor | None,
               flags: bool) -> torch.Tensor:
        """The blocks times ``keep`` (M,) and, per pixel, ``modalities`` (N, M); with their product
        as presence flags when ``flags`` (the classifier's input, as :meth:`PimcNet.fuse`)."""
        n = blocks[0].shape[0]
        if modalities is None:
            parts = [b * keep[j] if keep[j] != 1.0 else b for j, b in enumerate(blocks)]
            mask = blocks[0].new_tensor(keep).expand(n, len(keep))
        else:
            mask = modalities.to(blocks[0].dtype) * blocks[0].new_tensor(keep)
            parts = [b * mask[:, j:j + 1] for j, b in enumerate(blocks)]
        return torch.cat(parts + [mask], dim=1) if flags else torch.cat(parts, dim=1)
