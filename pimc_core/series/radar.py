"""Radar series: what PIMC derives from Sentinel-1 backscatter, the radar counterpart of the
vegetation indices (:mod:`pimc_core.series.indices`, whose ``INDICES`` registry lists these too).

Every function takes linear σ⁰ (as :meth:`pimc_core.io.timeseries.TimeSeries.read` gives for a
radar source, whatever units the files store) and works element-wise on numpy arrays or torch
tensors of any shape, with the conventions of the optical indices (dtype kept, NaN where
undefined, NaN propagates):

* VV dB = 10·log10(VV), VH dB = 10·log10(VH) (NaN where σ⁰ ≤ 0);
* VH/VV ratio in dB = VH dB − VV dB = 10·log10(VH / VV) (cross-polarisation ratio, rises with
  canopy volume scattering);
* RVI = 4·VH / (VV + VH), the dual-polarisation radar vegetation index of the Awesome Spectral
  Indices catalogue (``DpRVIVV``), from linear σ⁰; about 0 over bare soil, towards 1 and above
  over dense canopies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pimc_core.io.backscatter import linear_to_db
from pimc_core.series.band_math import prepare, safe_divide

__all__ = ["DEFAULT_RADAR_INDICES", "RADAR_BOUNDS", "RADAR_INDICES", "indices_for_bands", "rvi", "to_db", "vh_vv_db"]


def _db(x: Any, is_torch: bool) -> Any:
    """10·log10(x), NaN where x ≤ 0 (x already prepared)."""
    if is_torch:
        return 10.0 * x.where(x > 0, x.new_tensor(math.nan)).log10()
    return linear_to_db(x)


def to_db(sigma0: Any) -> Any:
    """Backscatter in dB (the series ``vv_db`` of VV and ``vh_db`` of VH).

    Args:
        sigma0: linear σ⁰ of one polarisation, numpy array or torch tensor, shape ``(...)``.

    Returns:
        ``10·log10(σ⁰)``, shape ``(...)``, same kind and floating dtype; NaN where σ⁰ ≤ 0.
    """
    (v,), is_torch = prepare(sigma0)
    return _db(v, is_torch)


def vh_vv_db(vv: Any, vh: Any) -> Any:
    """Cross-polarisation ratio VH/VV in dB (the difference VH dB − VV dB).

    Args:
        vv: linear σ⁰ VV, shape ``(...)``.
        vh: linear σ⁰ VH, same shape (or broadcastable).

    Returns:
        ``10·log10(VH / VV)``, shape ``(...)``; NaN where either σ⁰ ≤ 0.
    """
    (a, b), is_torch = prepare(vv, vh)
    return _db(b, is_torch) - _db(a, is_torch)


def rvi(vv: Any, vh: Any) -> Any:
    """Dual-polarisation radar vegetation index ``RVI = 4·VH / (VV + VH)`` (linear σ⁰).

    Args:
        vv: linear σ⁰ VV, shape ``(...)``.
        vh: linear σ⁰ VH, same shape (or broadcastable).

    Returns:
        RVI, shape ``(...)``, in [0, 4) for positive σ⁰; NaN where ``VV + VH == 0``.
    """
    (a, b), is_torch = prepare(vv, vh)
    return safe_divide(4.0 * b, a + b, is_torch)


#: Radar series as entries of :data:`pimc_core.series.indices.INDICES`: name → (function,
#: bands it needs, in the function's argument order).
RADAR_INDICES: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "vv_db": (to_db, ("vv",)),
    "vh_db": (to_db, ("vh",)),
    "vh_vv_db": (vh_vv_db, ("vv", "vh")),
    "rvi": (rvi, ("vv", "vh")),
}

#: Values each radar series can take (None: no useful bound).
RADAR_BOUNDS: dict[str, tuple[float, float] | None] = {"vv_db": None, "vh_db": None, "vh_vv_db": None,
                                                       "rvi": (0.0, 4.0)}

#: The radar series a model uses when a radar source is given and no radar series is asked for.
DEFAULT_RADAR_INDICES: tuple[str, ...] = ("vv_db", "vh_db", "rvi")


def indices_for_bands(indices: Sequence[str], band_names: Sequence[str],
                      all_indices: Mapping[str, tuple[Callable[..., Any], tuple[str, ...]]]) -> tuple[str, ...]:
    """The index channels a model of a source with ``band_names`` uses, given the ``indices`` asked for.

    A source with radar bands and no radar series among ``indices`` gets
    :data:`DEFAULT_RADAR_INDICES` added (optical + radar: ``--sar``); a source whose bands
    compute none of ``indices`` but has radar bands (a radar source alone) uses the radar
    defaults instead. Otherwise ``indices`` are kept as they are (a missing band is reported
    where the series are computed).

    Args:
        indices: index names asked for (e.g. the fit config's ``data.indices``).
        band_names: the source's bands.
        all_indices: the index registry (:data:`pimc_core.series.indices.INDICES`).
    """
    have = set(band_names)
    if not {"vv", "vh"} <= have:
        return tuple(indices)
    computable = [i for i in indices if set(all_indices[i][1]) <= have]
    if not computable:
        return DEFAULT_RADAR_INDICES
    if not any(i in RADAR_INDICES for i in indices):
        return tuple(indices) + DEFAULT_RADAR_INDICES
    return tuple(indices)
