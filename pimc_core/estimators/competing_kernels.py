"""Competing-kernel (Hydra-style) count features of series.

Competing kernels (:class:`CompetingKernelTransform`) follow Hydra (Dempster, Schmidt, Webb,
DMKD 2024), our own code from the paper's description: groups of ``k`` random kernels
(normal weights, centred, unit absolute sum) are applied at each dilation ``2^0 … 2^⌊log₂((T-1)/8)⌋``
and, at every time step, compete within their group: the kernel with the largest response adds
that response to its count ("soft" max count), the one with the smallest adds one ("hard" min
count). Half of the groups see the series, half its first differences. Counts are square-rooted
and standardised with zeros kept at zero (the paper's sparse scaling). The features are a
dictionary-like histogram of which shape matches where, complementary to the biased pooling of
the two-valued kernels.

Measured inside the series classifier on the generated 24-class table (``python -m training
series``): joining 64 groups to the two-valued kernels' features of
:mod:`pimc_core.estimators.random_kernels` gave 0.846 against 0.848 without, so the classifier
leaves them out by default (``rk_hydra_groups: 0``). Own code for the same reason as the random-kernel transform
(aeon, which has Hydra, needs numpy >= 2; PIMC's GDAL bindings need numpy < 2).
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pimc_core.config import Interval
from pimc_core.errors import ConfigError
from pimc_core.estimators.random_kernels import KLEN, SeriesFeatureTransform

__all__ = ["CompetingKernelTransform"]


class CompetingKernelTransform(SeriesFeatureTransform):
    """Series ``(N, C, T)`` → competing-kernel (Hydra-style) counts ``(N, n_features_out_)``.

    Features: for each dilation ``d`` of ``2^0 … 2^⌊log₂((T-1)/8)⌋`` (at most ``max_dilations``),
    each representation (the series and, with ``diff``, its first differences: ``groups / 2``
    groups each) and each group of ``kernels`` kernels of length 9, two counts per kernel over
    the ``T`` positions (zero padding, "same" length): the sum of its responses where it is the
    group's largest, and how often it is the group's smallest. So
    ``n_features_out_ = n_dilations × groups × kernels × 2``. ``transform`` returns them
    square-rooted (negative sums clipped to zero) and standardised with the training mean and
    standard deviation, zeros left at zero.

    Multi-channel series: each group convolves the sum of a random, non-empty subset of channels.

    Args:
        groups: Kernel groups per dilation (even when ``diff``).
        kernels: Kernels per group (≥ 2: they compete).
        diff: Give half of the groups the first differences.
        max_dilations: Most dilations.
        seed: Seed of the kernel weights and channel subsets.
        batch_size: Series per batch in :meth:`transform`.

    Attributes:
        dilations_: The dilations. weights_: per representation, ``(n_dil, g_r * k, 1, 9)``
            kernels. mix_: per representation, ``(g_r, C)`` channel subsets or ``None``.
        mean_, scale_: ``(n_features_out_,)`` scaling of the counts. n_channels_, length_: the
            fitted ``(C, T)``. n_features_out_: number of output features.
    """

    _parameter_constraints: dict = {
        "groups": [Interval(Integral, 1, None, closed="left")],  # even with diff: _check
        "kernels": [Interval(Integral, 2, None, closed="left")],
        "diff": ["boolean"],
        "max_dilations": [Interval(Integral, 1, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, groups: int = 64, kernels: int = 8, diff: bool = True, max_dilations: int = 8,
                 seed: int = 0, batch_size: int = 512) -> None:
        self.groups, self.kernels, self.diff = groups, kernels, diff
        self.max_dilations, self.seed, self.batch_size = max_dilations, seed, batch_size

    def _check(self) -> None:
        if self.diff and self.groups % 2:
            raise ConfigError(
                f"CompetingKernelTransform.groups must be even when half of them see the differences; got {self.groups!r}"
            )

    def _reps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, torch.diff(x, dim=-1)] if self.diff and x.shape[-1] >= 2 else [x]

    def fit(self, X: np.ndarray | torch.Tensor, y: Any = None) -> CompetingKernelTransform:
        """Draw kernels for the length and channels of ``X`` ``(N, T)`` / ``(N, C, T)`` and learn
        the scaling of its counts (``y`` is ignored).

        Raises:
            ConfigError: bad parameters. InputError: bad series.
        """
        self._check_parameters()
        x = self._as_3d(X)
        n, c, t = x.shape
        gen = torch.Generator().manual_seed(self.seed)
        top = int(math.floor(math.log2(max((t - 1) / (KLEN - 1), 1.0))))
        self.dilations_ = [2**i for i in range(min(top + 1, self.max_dilations))]
        n_reps = len(self._reps(x[:1]))
        g_r = self.groups // n_reps
        self.weights_, self.mix_ = [], []
        for _ in range(n_reps):
            w = torch.randn(len(self.dilations_), g_r * self.kernels, 1, KLEN, generator=gen)
            w = w - w.mean(-1, keepdim=True)
            self.weights_.append(w / w.abs().sum(-1, keepdim=True).clamp(min=1e-8))
            mix = None
            if c > 1:
                mix = torch.zeros(g_r, c)
                for g in range(g_r):
                    size = int(torch.randint(1, c + 1, (1,), generator=gen))
                    mix[g, torch.randperm(c, generator=gen)[:size]] = 1.0
            self.mix_.append(mix)
        self.n_channels_, self.length_ = c, t
        self.n_features_out_ = len(self.dilations_) * g_r * n_reps * self.kernels * 2
        counts = self._counts_all(x)
        nz = counts != 0
        m = nz.sum(0).clamp(min=1)
        self.mean_ = counts.sum(0) / m
        var = ((counts - self.mean_) ** 2 * nz).sum(0) / m
        self.scale_ = torch.where(var > 1e-12, var.clamp(min=1e-12).rsqrt(), torch.zeros(()))
        return self

    def _counts(self, x: torch.Tensor) -> torch.Tensor:
        """Square-rooted counts ``(B, n_features_out_)`` of ``(B, C, T)`` series."""
        b = x.shape[0]
        k = self.kernels
        cols = []
        for rep, w_all, mix in zip(self._reps(x), self.weights_, self.mix_):
            g_r = w_all.shape[1] // k
            t = rep.shape[-1]
            offset = (torch.arange(g_r) * k)[None, None, :]  # (1, 1, g_r): flat index of each group's kernel 0
            for di, d in enumerate(self.dilations_):
                pad = (KLEN // 2) * d
                w = w_all[di][:, 0, :]  # (g_r * k, 9)
                if mix is None:  # one GEMM over the dilated windows: (B, T, 9) @ (9, g_r * k)
                    win = F.pad(rep[:, 0], (pad, pad)).unfold(-1, 2 * pad + 1, 1)[..., ::d]
                    resp = (win @ w.T).view(b, t, g_r, k)
                else:  # each group's channel subset, summed: (B, g_r, T), one input channel per group
                    xin = torch.einsum("bct,gc->bgt", rep, mix)
                    resp = F.conv1d(xin, w_all[di], padding=pad, dilation=d, groups=g_r)
                    resp = resp.view(b, g_r, k, t).permute(0, 3, 1, 2)
                vmax, amax = resp.max(dim=-1)  # (B, T, g_r)
                amin = resp.argmin(dim=-1)
                soft = torch.zeros(b, g_r * k).scatter_add_(1, (amax + offset).reshape(b, -1), vmax.reshape(b, -1))
                hard = torch.zeros(b, g_r * k).scatter_add_(1, (amin + offset).reshape(b, -1), torch.ones(b, t * g_r))
                cols.append(soft)
                cols.append(hard)
        return torch.cat(cols, dim=1).clamp(min=0.0).sqrt()

    def _counts_all(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._counts(x[s : s + self.batch_size]) for s in range(0, x.shape[0], self.batch_size)])

    def _batch_features(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled counts ``(B, n_features_out_)`` of a batch ``(B, C, T)``: zeros stay zero."""
        cnt = self._counts(x)
        return ((cnt - self.mean_) * (cnt != 0)) * self.scale_
