"""Encoders for the three PIMC modalities.

* :class:`RPEncoder` — recurrence plots ``(N, C, T, T)`` (one channel per vegetation index, plus
  optional extra channels such as a level plot) → ``(N, embed_dim)``. A small ResNet-style 2-D
  CNN with global pooling, so any ``T`` works.
* :class:`PatchEncoder` — the image patch around a pixel ``(N, B, k, k)`` (``B`` bands or
  indices, any odd or even ``k``) → ``(N, embed_dim)``. Same trunk as the RP encoder but without
  spatial down-sampling (patches are small).
* :class:`SeriesEncoder` — the raw (standardised) series ``(N, C, T)`` → ``(N, embed_dim)``. A
  1-D ResNet whose pooling keeps coarse timing (``pool="bins"``, the default), because *when* a
  crop greens up matters as much as *how*.

All three are deliberately small by default: they must train on a 2-core CPU in minutes. Width
and depth are configurable through :class:`EncoderConfig` (``from_dict`` rejects unknown keys).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.config import FRACTION, POSITIVE_INT, Checked, StrOptions, declared, param
from pimc_core.errors import ConfigError

__all__ = [
    "EncoderConfig",
    "RPEncoder",
    "PatchEncoder",
    "SeriesEncoder",
    "build_encoder",
    "ENCODER_PRESETS",
]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

_POOLS = ("avg", "avgmax", "bins")


@declared
@dataclass
class EncoderConfig(Checked):
    """Hyper-parameters shared by the encoders.

    Attributes:
        in_channels: Input channels (indices for RPs / series, bands for patches).
        width: Channels of the first stage; later stages double it (capped at ``4 * width``).
        depth: Number of residual stages (>= 1).
        embed_dim: Size of the output embedding.
        dropout: Dropout applied to the pooled features before the output projection.
        pool: Global pooling: ``"avg"`` (mean), ``"avgmax"`` (mean and max concatenated) or
            ``"bins"`` (mean over ``bins`` equal segments along time, then flattened; keeps
            coarse timing — only meaningful for :class:`SeriesEncoder`, the 2-D encoders treat it
            as ``"avgmax"``).
        bins: Number of temporal bins for ``pool="bins"``.
        kernel_size: Largest 1-D kernel of :class:`SeriesEncoder` (odd; 2-D encoders use 3×3).
    """

    in_channels: int = param(1, POSITIVE_INT)
    width: int = param(32, POSITIVE_INT)
    depth: int = param(3, POSITIVE_INT)
    embed_dim: int = param(128, POSITIVE_INT)
    dropout: float = param(0.1, FRACTION)
    pool: str = param("avgmax", StrOptions(set(_POOLS)))
    bins: int = param(4, POSITIVE_INT)
    kernel_size: int = param(7, POSITIVE_INT)  # odd: _check

    _config_name: ClassVar[str] = "encoder"

    def _check(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"encoder.kernel_size must be odd; got {self.kernel_size}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EncoderConfig:
        """Build a config from a mapping (e.g. a YAML section).

        A ``preset`` key (``"tiny"``, ``"small"``, ``"base"``) selects the starting values;
        other keys override them.

        Raises:
            ConfigError: Unknown key (named in the message), a wrong type or value.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"encoder config must be a mapping; got {type(data).__name__}")
        data = dict(data)
        preset = data.pop("preset", None)
        base: dict[str, Any] = {}
        if preset is not None:
            if preset not in ENCODER_PRESETS:
                raise ConfigError(
                    f"encoder config: unknown preset {preset!r} (choose from {', '.join(ENCODER_PRESETS)})"
                )
            base = dict(ENCODER_PRESETS[preset])
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"encoder config: unknown key {key!r} (known: preset, {', '.join(sorted(known))})"
                )
        base.update(data)
        return cls(**base)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> EncoderConfig:
        """A named preset, optionally with some fields overridden."""
        return cls.from_dict({"preset": name, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON / YAML serialisable)."""
        return dataclasses.asdict(self)


#: Named starting points. ``tiny`` is for tests, ``small`` the CPU default, ``base`` for a GPU.
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 8, "depth": 2, "embed_dim": 32},
    "small": {"width": 32, "depth": 3, "embed_dim": 128},
    "base": {"width": 64, "depth": 4, "embed_dim": 256},
}


def _stage_widths(width: int, depth: int) -> list[int]:
    return [min(width * (2**i), 4 * width) for i in range(depth)]


# --------------------------------------------------------------------------------------------
# 2-D trunk (recurrence plots, patches)
# --------------------------------------------------------------------------------------------


class _BasicBlock2d(nn.Module):
    """Pre-activation-free ResNet basic block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.short(x), inplace=True)


class _Trunk2d(nn.Module):
    """Stem + ``depth`` residual stages + global avg/max pooling + linear projection."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        depth: int,
        embed_dim: int,
        dropout: float,
        downsample: bool,
        stem_stride: int,
    ) -> None:
        super().__init__()
        widths = _stage_widths(width, depth)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks = []
        c = widths[0]
        for i, w in enumerate(widths):
            stride = 2 if (downsample and i > 0) else 1
            blocks.append(_BasicBlock2d(c, w, stride))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(2 * c, embed_dim)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.proj(self.drop(pooled))


class _Encoder2d(nn.Module):
    """A :class:`_Trunk2d` behind a check of its input: ``(N, C, H, W)`` → ``(N, embed_dim)``."""

    _shape: ClassVar[str] = "(N, C, H, W)"

    def __init__(self, in_channels: int, width: int, depth: int, embed_dim: int, dropout: float, downsample: bool,
                 stem_stride: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.embed_dim = embed_dim
        self.trunk = _Trunk2d(in_channels, width, depth, embed_dim, dropout, downsample, stem_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x`` (float, the shape of the class docstring) → ``(N, embed_dim)`` embeddings."""
        _check_input(x, 4, self.in_channels, type(self).__name__, self._shape)
        return self.trunk(x)

    @classmethod
    def from_config(cls, cfg: EncoderConfig, **kwargs: Any) -> "_Encoder2d":
        return cls(cfg.in_channels, cfg.width, cfg.depth, cfg.embed_dim, cfg.dropout, **kwargs)


class RPEncoder(_Encoder2d):
    """Recurrence-plot encoder: a small 2-D ResNet.

    Args:
        in_channels: Number of plot channels ``C`` (e.g. 3 for NDVI/EVI/SAVI; +1 per extra
            channel such as a level plot).
        width: Channels of the first stage (doubled per stage, capped at ``4 * width``).
        depth: Number of residual stages; stages after the first halve the resolution.
        embed_dim: Output embedding size.
        dropout: Dropout before the output projection.
        stem_stride: Stride of the stem convolution; 2 quarters the cost on plots larger than
            about 32×32 at little loss (``None``: 2 when ``T > 40`` is seen at run time is not
            possible for a fixed module, so the caller picks; default 1).

    Shape:
        Input ``(N, C, T, T)`` for any ``T >= 1``; output ``(N, embed_dim)``.
    """

    _shape = "(N, C, T, T)"

    def __init__(self, in_channels: int = 1, width: int = 32, depth: int = 3, embed_dim: int = 128,
                 dropout: float = 0.1, stem_stride: int = 1) -> None:
        super().__init__(in_channels, width, depth, embed_dim, dropout, True, stem_stride)


class PatchEncoder(_Encoder2d):
    """Image-patch encoder for the spatial context of a pixel.

    Args:
        in_channels: Number of bands / indices ``B`` in the patch.
        width: Channels of the first stage.
        depth: Number of residual stages (no down-sampling: patches are a few pixels wide).
        embed_dim: Output embedding size.
        dropout: Dropout before the output projection.

    Shape:
        Input ``(N, B, k, k)`` for any ``k >= 1`` (also non-square); output ``(N, embed_dim)``.
    """

    _shape = "(N, B, k, k)"

    def __init__(self, in_channels: int = 3, width: int = 32, depth: int = 2, embed_dim: int = 128,
                 dropout: float = 0.1) -> None:
        super().__init__(in_channels, width, depth, embed_dim, dropout, False, 1)


# --------------------------------------------------------------------------------------------
# 1-D trunk (series)
# --------------------------------------------------------------------------------------------


class _BasicBlock1d(nn.Module):
    """1-D residual block with two convolutions of kernel ``k`` (``'same'`` padding)."""

    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.short: nn.Module = nn.Identity()
        if c_in != c_out:
            self.short = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.short(x), inplace=True)


class SeriesEncoder(nn.Module):
    """1-D ResNet over the (standardised) series.

    No temporal down-sampling (series of remote-sensing pixels are short); the first block uses
    ``kernel_size``, later ones shrink towards 3. Pooling ``"bins"`` averages the features over
    ``bins`` equal time segments and flattens them, so the embedding knows *when* a pattern
    happens (green-up date separates crops); ``"avg"`` / ``"avgmax"`` are shift-invariant.

    Args:
        in_channels: Number of series channels ``C`` (indices, differences, ...).
        width: Channels of the first stage (doubled per stage, capped at ``4 * width``).
        depth: Number of residual stages.
        embed_dim: Output embedding size.
        dropout: Dropout before the output projection.
        pool: ``"bins"``, ``"avgmax"`` or ``"avg"``.
        bins: Number of time bins for ``pool="bins"``.
        kernel_size: Kernel of the first stage (odd).

    Shape:
        Input ``(N, C, T)`` for any ``T >= 1``; output ``(N, embed_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 32,
        depth: int = 3,
        embed_dim: int = 128,
        dropout: float = 0.1,
        pool: str = "bins",
        bins: int = 4,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        if pool not in _POOLS:
            raise ConfigError(f"SeriesEncoder: pool must be one of {', '.join(_POOLS)}; got {pool!r}")
        self.in_channels = in_channels
        self.embed_dim = embed_dim
        self.pool = pool
        self.bins = bins
        widths = _stage_widths(width, depth)
        kernels = [max(3, kernel_size - 2 * i) | 1 for i in range(depth)]
        blocks = []
        c = in_channels
        for w, k in zip(widths, kernels):
            blocks.append(_BasicBlock1d(c, w, k))
            c = w
        self.blocks = nn.Sequential(*blocks)
        n_feat = {"avg": c, "avgmax": 2 * c, "bins": c * (bins + 1)}[pool]
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(n_feat, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode series.

        Args:
            x: ``(N, C, T)`` float tensor.

        Returns:
            ``(N, embed_dim)`` embeddings.
        """
        _check_input(x, 3, self.in_channels, "SeriesEncoder", "(N, C, T)")
        h = self.blocks(x)
        if self.pool == "avg":
            pooled = h.mean(dim=2)
        elif self.pool == "avgmax":
            pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        else:
            # mean over `bins` segments (timing) + global max (strongest response anywhere)
            binned = F.adaptive_avg_pool1d(h, self.bins).flatten(1)
            pooled = torch.cat([binned, h.amax(dim=2)], dim=1)
        return self.proj(self.drop(pooled))

    @classmethod
    def from_config(cls, cfg: EncoderConfig) -> SeriesEncoder:
        return cls(
            cfg.in_channels, cfg.width, cfg.depth, cfg.embed_dim, cfg.dropout, cfg.pool, cfg.bins, cfg.kernel_size
        )


def build_encoder(kind: str, cfg: EncoderConfig | dict[str, Any] | None = None) -> nn.Module:
    """Build an encoder by modality name.

    Args:
        kind: ``"rp"``, ``"patch"`` or ``"series"``.
        cfg: An :class:`EncoderConfig` or a mapping for :meth:`EncoderConfig.from_dict`.

    Raises:
        ConfigError: Unknown ``kind`` or bad config.
    """
    if not isinstance(cfg, EncoderConfig):
        cfg = EncoderConfig.from_dict(cfg)
    if kind == "rp":
        return RPEncoder.from_config(cfg)
    if kind == "patch":
        return PatchEncoder.from_config(cfg)
    if kind == "series":
        return SeriesEncoder.from_config(cfg)
    raise ConfigError(f"unknown encoder kind {kind!r} (choose from rp, patch, series)")


def _check_input(x: torch.Tensor, ndim: int, channels: int, who: str, shape: str) -> None:
    if x.ndim != ndim or x.shape[1] != channels:
        raise ValueError(f"{who} expects {shape} with {channels} channel(s); got shape {tuple(x.shape)}")
