"""Which sources a model with a radar modality reads: :class:`SourceInputs`, the part of
:class:`~pimc_core.models.pixel_model.PimcPixelModel` that binds such a model to what it is given.

A network with a radar modality (:attr:`~pimc_core.models.pimc_config.PimcModelConfig.radar_modality`)
classifies from the optical source with its radar source, the optical source alone or the radar
source alone. Bound to a source (:meth:`SourceInputs.select_inputs`), the model's ``indices``,
patches and outputs become those the source provides; :meth:`SourceInputs._expand` puts the
channels of an absent source back at their training mean (standardised 0) for the network, whose
mask then says the source is absent. With both sources, a pixel under clouds all season keeps its
radar channels (:attr:`SourceInputs.channel_groups`) and is classified from them alone
(:meth:`SourceInputs._absent_sources`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.timeseries import TimeSeries
from pimc_core.models.modalities import OPTICAL

__all__ = ["SourceInputs"]


class SourceInputs:
    """Mixin of :class:`~pimc_core.models.pixel_model.PimcPixelModel`: needs ``net``, ``given``
    and ``_full`` (the unbound ``indices``, ``patch_size``, ``patch_bands``, ``patch_channels``,
    ``outputs``) and sets ``indices``, ``patch_size``, ``patch_bands``, ``patch_channels``,
    ``outputs``, ``given``."""

    net: Any
    given: tuple[str, ...]
    _full: dict[str, Any]
    indices: tuple[str, ...]

    def select_inputs(self, source: TimeSeries) -> None:
        """Read what ``source`` gives: an optical source with its radar source (``--sar``: every
        modality), an optical source alone, or a radar source alone (:meth:`bind_sources`).
        Nothing happens for a model without a radar modality (it needs every index it has)."""
        if self.net.sar_encoder is None:
            return
        from pimc_core.io.sar_source import SarSeries, is_radar

        self.bind_sources(self.net.modalities if isinstance(source, SarSeries) else
                          ("sar",) if is_radar(source) else OPTICAL)

    def bind_sources(self, given: Sequence[str]) -> None:
        """For a model with a radar modality: take series of the modalities ``given`` only
        (``sar`` and / or the optical ones): :attr:`indices`, the patches and the outputs become
        those that the given sources provide, and :meth:`predict` masks out the others."""
        cfg = self.net.cfg
        if self.net.sar_encoder is None:
            raise ConfigError("this model has no radar modality: it reads every index it was trained on")
        optical = any(m in given for m in OPTICAL)
        if not optical and "sar" not in given:
            raise ConfigError("give the optical source, the radar source or both")
        self.given = tuple(m for m in self.net.modalities if m in given or (optical and m in OPTICAL))
        keep = set(cfg.sar_indices if "sar" in self.given else ()) | set(cfg.optical_indices if optical else ())
        self.indices = tuple(i for i in self._full["indices"] if i in keep)
        self.patch_size = self._full["patch_size"] if optical else None
        self.patch_bands = self._full["patch_bands"] if optical else ()
        self.patch_channels = self._full["patch_channels"] if optical else 0
        self.outputs = tuple(o for o in self._full["outputs"] if o != "forecast" or optical)

    def _expand(self, x: np.ndarray) -> np.ndarray:
        """(N, C', T) series of the bound :attr:`indices` → (N, C, T) of every index the network
        reads, the channels of a source not given set to their training mean (standardised 0)."""
        full = self._full["indices"]
        if self.indices == full:
            return x
        out = np.empty((x.shape[0], len(full), x.shape[2]), np.float32)
        mean = self.net.idx_mean.detach().cpu().numpy()
        for j, name in enumerate(full):
            out[:, j] = x[:, self.indices.index(name)] if name in self.indices else mean[j]
        return out

    @property
    def channel_groups(self) -> tuple[tuple[int, ...], ...] | None:
        """For a model with a radar modality bound to both sources: the positions in
        :attr:`indices` of the optical and of the radar channels. A pixel is mapped when either
        group has enough valid observations (a pixel under clouds all season is classified from
        the radar alone; :func:`pimc_core.series.pixel.index_series` ``groups``). None otherwise."""
        cfg = self.net.cfg
        if self.net.sar_encoder is None or "sar" not in self.given or not any(m in self.given for m in OPTICAL):
            return None
        return (tuple(i for i, n in enumerate(self.indices) if n in cfg.optical_indices),
                tuple(i for i, n in enumerate(self.indices) if n in cfg.sar_indices))

    def _absent_sources(self, x: np.ndarray, groups: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, T) series whose optical or radar channels may be all NaN → the series with those
        channels at their training mean, and the (N, M) mask of the modalities each pixel has."""
        opt, sar = groups
        has_opt = np.isfinite(x[:, list(opt)]).all(axis=(1, 2))
        has_sar = np.isfinite(x[:, list(sar)]).all(axis=(1, 2))
        if not (has_opt | has_sar).all():
            raise InputError("series contain NaN / inf in both sources' channels; give gap-filled series "
                             "(pimc_core.series.pixel.index_series)")
        mean = self.net.idx_mean.detach().cpu().numpy()
        full = self._full["indices"]
        x = x.copy()
        for rows, chans in ((~has_opt, opt), (~has_sar, sar)):
            for c in chans:
                x[rows, c] = mean[full.index(self.indices[c])]
        mods = self.net.modalities
        mask = np.stack([has_sar if m == "sar" else has_opt for m in mods], axis=1).astype(np.float32)
        return x, mask
