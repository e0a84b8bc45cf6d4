"""The architecture of a PIMC network: :class:`PimcModelConfig`, stored in every ``.pimc`` file.

It names the index channels and the number of dates the network reads, whether it has a patch
branch (and its bands and size), how the series level reaches it (``level``), whether the radar
series form their own modality (``radar_modality``), the recurrence-plot parameters, the
encoders' sections (:class:`~pimc_core.models.encoders.EncoderConfig`;
they share ``embed_dim``), the contrastive space, and the classifier and forecast heads (with the
forecast head's side inputs, :mod:`pimc_core.models.forecast_head`). Parameters are declared
(:class:`pimc_core.config.Checked`); the rules that tie several of them together are in
``_check``. The model file keeps :meth:`PimcModelConfig.to_dict` under ``architecture.pimc``, and
:meth:`PimcModelConfig.from_dict` rebuilds it (unknown keys refused).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from pimc_core.config import COUNT, NO_VALIDATION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Checked, StrOptions, declared, param
from pimc_core.errors import ConfigError
from pimc_core.models.encoders import EncoderConfig
from pimc_core.models.forecast_head import FORECAST_INPUTS, side_features_dim
from pimc_core.models.modalities import MODALITIES, SAR_MODALITIES
from pimc_core.series.radar import RADAR_INDICES
from pimc_core.series.recurrence import RecurrencePlotConfig

__all__ = ["LEVELS", "PimcModelConfig"]

#: How the series level reaches the network (see :class:`PimcModelConfig`).
LEVELS: tuple[str, ...] = ("series", "channels", "both", "none")

_RP_DEFAULT = {"width": 16, "depth": 3, "embed_dim": 64, "dropout": 0.1}
_SERIES_DEFAULT = {"width": 16, "depth": 2, "embed_dim": 64, "dropout": 0.1, "pool": "bins", "bins": 6,
                   "kernel_size": 5}
_PATCH_DEFAULT = {"width": 16, "depth": 2, "embed_dim": 64, "dropout": 0.1}
# the radar branch is alone with the speckled radar series (the optical ones have an RP and a series
# branch): wider and deeper than the series branch. On two tuning scenes (64 px, cloud 0.6, seeds
# 11 and 12, not the benchmark's) width 32 / depth 3 with source dropout 0.4 beat 16 / 2 with 0.25
# given both sources (0.852 / 0.827 vs 0.835 / 0.724) and given S1 alone (0.824 / 0.703 vs 0.811 / 0.661)
_SAR_DEFAULT = {**_SERIES_DEFAULT, "width": 32, "depth": 3}


def _enc_cfg(d: Mapping[str, Any] | None, default: Mapping[str, Any], in_channels: int, where: str) -> EncoderConfig:
    data = dict(default)
    data.update(dict(d or {}))
    data.pop("in_channels", None)
    try:
        return EncoderConfig.from_dict({**data, "in_channels": int(in_channels)})
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


@declared
@dataclass
class PimcModelConfig(Checked):
    """Architecture of a :class:`~pimc_core.models.pimc_net.PimcNet` (stored in the model file under ``architecture.pimc``).

    Attributes:
        indices: index channels, in order. n_dates: T of the classification input.
        patch_bands: bands of the patches (empty: no patch encoder). patch_size: k.
        level: how the series level reaches the network: ``"series"`` (1-D branch),
            ``"channels"`` (level plots as extra RP channels), ``"both"`` or ``"none"``.
        rp: :class:`~pimc_core.series.recurrence.RecurrencePlotConfig` fields (``dimension``, ``time_delay``, ``threshold``,
            ``percentage``, ``size``).
        rp_coords: add two coordinate channels (row and column position, -1..1) to the RP
            images, so that the convolutions can tell *when* a recurrence pattern happens (the
            RP encoder's global pooling is otherwise shift-invariant).
        rp_stem_stride: stride of the RP encoder's stem (2 quarters its cost for long series).
        radar_modality: the radar series among ``indices`` (``vv_db``, ``vh_db``, ...; see
            :data:`pimc_core.series.radar.RADAR_INDICES`) form a fourth modality, ``sar``, read by
            their own encoder (``sar_encoder``, a 1-D ResNet like the series branch), while the
            recurrence-plot and series branches read the optical indices only; so one network
            classifies from the optical source, the radar source or both (OmniSat-style). Needs
            optical and radar indices. False (the default, and every model file written before
            it existed): every index is a channel of the same branches.
        rp_encoder, series_encoder, patch_encoder, sar_encoder: :class:`~pimc_core.models.encoders.EncoderConfig`
            fields (``width``, ``depth``, ``embed_dim``, ``dropout``, ...); all modalities share ``embed_dim``.
        proj_dim: size of the contrastive space.
        n_classes: classifier outputs (0: no classifier). classifier_hidden: its hidden layer.
        forecast_horizon: h (0: no forecaster). forecast_input: L, observations it reads.
        forecast_index: the index forecast (one of ``indices``).
        forecast_inputs: side inputs of the forecast head among :data:`~pimc_core.models.forecast_head.FORECAST_INPUTS`
            (empty: the embedding alone, the original head).
        forecast_season_steps: steps in one season (a year) for ``"seasonal"`` (e.g. 23 on a
            16-day grid); ``forecast_input`` must be at least this long.
        forecast_year_steps: steps per year with fractions (365.25 / 16) for ``"climatology"``
            (0: ``forecast_season_steps``).
        forecast_anchor: what the head's output is a change of: ``"last"`` (the last value:
            zero output = persistence) or ``"climatology"`` (the pixel's climatology where it
            has one, else the last value).
        forecast_hidden: hidden units of the forecast head.
        init_temperature: initial InfoNCE temperature.
    """

    # names are made lower-case tuples by _convert; the indices (at least one), the known
    # forecast inputs and the rp / encoder sections (their own configs) are checked in _check
    indices: tuple[str, ...] = param(("ndvi", "evi", "savi"), NO_VALIDATION)
    n_dates: int = param(24, POSITIVE_INT)
    patch_bands: tuple[str, ...] = param((), NO_VALIDATION)
    patch_size: int = param(9, POSITIVE_INT)
    level: str = param("series", StrOptions(set(LEVELS)))
    rp: dict[str, Any] = param(NO_VALIDATION, factory=dict)
    rp_coords: bool = param(False, "boolean")
    rp_stem_stride: int = param(1, POSITIVE_INT)
    rp_encoder: dict[str, Any] = param(NO_VALIDATION, factory=dict)
    series_encoder: dict[str, Any] = param(NO_VALIDATION, factory=dict)
    patch_encoder: dict[str, Any] = param(NO_VALIDATION, factory=dict)
    radar_modality: bool = param(False, "boolean")
    sar_encoder: dict[str, Any] = param(NO_VALIDATION, factory=dict)
    proj_dim: int = param(64, POSITIVE_INT)
    n_classes: int = param(0, COUNT)
    classifier_hidden: int = param(0, COUNT)
    forecast_horizon: int = param(0, COUNT)
    forecast_input: int = param(0, COUNT)
    forecast_index: str = param("ndvi", str)
    forecast_inputs: tuple[str, ...] = param((), NO_VALIDATION)
    forecast_season_steps: int = param(0, COUNT)
    forecast_year_steps: float = param(0.0, NON_NEGATIVE)
    forecast_anchor: str = param("last", StrOptions({"last", "climatology"}))
    forecast_hidden: int = param(128, COUNT)
    init_temperature: float = param(0.07, POSITIVE)

    _config_name: ClassVar[str] = "model"

    def _convert(self) -> None:
        self.indices = tuple(str(i).lower() for i in self.indices)
        self.patch_bands = tuple(str(b).lower() for b in self.patch_bands)
        self.forecast_inputs = tuple(str(i).lower() for i in self.forecast_inputs)
        self.forecast_year_steps = float(self.forecast_year_steps)

    def _check(self) -> None:
        if not self.indices:
            raise ConfigError("model: give at least one index")
        if self.forecast_horizon and self.forecast_index not in self.indices:
            raise ConfigError(f"model: forecast_index {self.forecast_index!r} is not one of the indices {self.indices}")
        bad = [i for i in self.forecast_inputs if i not in FORECAST_INPUTS]
        if bad:
            raise ConfigError(f"model: forecast_inputs {bad} unknown (known: {', '.join(FORECAST_INPUTS)})")
        if self.forecast_anchor == "climatology" and "climatology" not in self.forecast_inputs:
            raise ConfigError("model: forecast_anchor 'climatology' needs 'climatology' in forecast_inputs")
        if self.forecast_horizon and "climatology" in self.forecast_inputs:
            if self.year_steps <= self.forecast_horizon:
                raise ConfigError("model: forecast_inputs 'climatology' needs forecast_year_steps (steps in a year) "
                                  f"> forecast_horizon; got {self.year_steps:g}")
        if self.forecast_horizon and "seasonal" in self.forecast_inputs:
            m = self.forecast_season_steps
            if m < 1:
                raise ConfigError("model: forecast_inputs 'seasonal' needs forecast_season_steps (steps in a year) >= 1")
            if self.forecast_input and self.forecast_input < m:
                raise ConfigError(f"model: forecast_inputs 'seasonal' needs forecast_input >= forecast_season_steps; "
                                  f"got {self.forecast_input} < {m}")
        if self.forecast_horizon and "window" in self.forecast_inputs and not self.forecast_input:
            raise ConfigError("model: forecast_inputs 'window' needs forecast_input (L) > 0")
        if self.radar_modality:
            if not self.sar_indices or not self.optical_indices:
                raise ConfigError(f"model: radar_modality needs optical and radar indices; got {', '.join(self.indices)}")
            if self.forecast_horizon and self.forecast_index in self.sar_indices:
                raise ConfigError(f"model: with radar_modality the forecast index must be optical; got {self.forecast_index!r}")
        self.rp = RecurrencePlotConfig.from_dict(self.rp or {}).to_dict()
        # the encoder sections (unknown keys are named) and their shared embedding size
        dims = {self.rp_cfg().embed_dim, self.series_cfg().embed_dim, self.patch_cfg().embed_dim}
        if self.has_sar:
            dims.add(self.sar_cfg().embed_dim)
        if len(dims) != 1:
            raise ConfigError(f"model: rp_encoder, series_encoder, patch_encoder and sar_encoder must share embed_dim; "
                              f"got {sorted(dims)}")

    # ---- derived
    @property
    def has_series(self) -> bool:
        return self.level in ("series", "both")

    @property
    def has_patch(self) -> bool:
        return bool(self.patch_bands) and self.patch_size > 0

    @property
    def has_sar(self) -> bool:
        """True when the radar series are their own modality (``radar_modality``)."""
        return bool(self.radar_modality)

    @property
    def sar_indices(self) -> tuple[str, ...]:
        """The radar indices of the ``sar`` modality (empty without ``radar_modality``)."""
        return tuple(i for i in self.indices if i in RADAR_INDICES) if self.radar_modality else ()

    @property
    def optical_indices(self) -> tuple[str, ...]:
        """The indices the recurrence-plot and series branches read (all of them without ``radar_modality``)."""
        return tuple(i for i in self.indices if i not in self.sar_indices)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The network's modalities, in the order of the fused embedding's blocks."""
        return SAR_MODALITIES if self.has_sar else MODALITIES

    @property
    def year_steps(self) -> float:
        """Steps per year of the climatology input."""
        return self.forecast_year_steps or float(self.forecast_season_steps)

    @property
    def forecast_extra_dim(self) -> int:
        """Number of side features of the forecast head (0: the original head)."""
        return side_features_dim(self.forecast_inputs, self.forecast_horizon, self.forecast_input)

    @property
    def embed_dim(self) -> int:
        return self.rp_cfg().embed_dim

    @property
    def rp_channels(self) -> int:
        return len(self.optical_indices) * (2 if self.level in ("channels", "both") else 1) + (2 if self.rp_coords else 0)

    @property
    def fused_dim(self) -> int:
        """Size of the fused embedding: one block per modality (absent ones are zeros)."""
        return self.embed_dim * len(self.modalities)

    def rp_cfg(self) -> EncoderConfig:
        return _enc_cfg(self.rp_encoder, _RP_DEFAULT, self.rp_channels, "model.rp_encoder")

    def series_cfg(self) -> EncoderConfig:
        return _enc_cfg(self.series_encoder, _SERIES_DEFAULT, len(self.optical_indices), "model.series_encoder")

    def patch_cfg(self) -> EncoderConfig:
        return _enc_cfg(self.patch_encoder, _PATCH_DEFAULT, max(1, len(self.patch_bands)), "model.patch_encoder")

    def sar_cfg(self) -> EncoderConfig:
        """The radar encoder: ``sar_encoder`` over its defaults (a wider, deeper series branch)
        and the ``embed_dim`` every modality shares."""
        return _enc_cfg({"embed_dim": self.series_cfg().embed_dim, **dict(self.sar_encoder or {})}, _SAR_DEFAULT,
                        max(1, len(self.sar_indices)), "model.sar_encoder")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["indices"] = list(self.indices)
        d["patch_bands"] = list(self.patch_bands)
        d["forecast_inputs"] = list(self.forecast_inputs)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PimcModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise ConfigError(f"model config: unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})")
        d = dict(data)
        for k in ("indices", "patch_bands", "forecast_inputs"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)
