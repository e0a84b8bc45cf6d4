"""Vegetation indices from surface reflectance.

Every index takes reflectance scaled to 0–1 (not digital numbers such as 0–10000; nothing is
rescaled or clipped here) and works element-wise on arrays of any shape:

* numpy arrays in → numpy array out; torch tensors in → torch tensor out on the same device.
* Floating inputs keep their dtype (mixed floating dtypes are promoted, e.g. float32 + float64 →
  float64); integer or boolean inputs are computed in float32.
* A zero denominator gives NaN (never ±inf); NaN inputs propagate to NaN outputs.

Formulas follow the Awesome Spectral Indices catalogue (https://github.com/awesome-spectral-indices),
with B = blue, R = red, N = near infrared:

* NDVI  = (N − R) / (N + R)
* EVI   = G·(N − R) / (N + C1·R − C2·B + L),  G = 2.5, C1 = 6, C2 = 7.5, L = 1
* SAVI  = (1 + L)·(N − R) / (N + R + L),      L = 0.5 by default
* EVI2  = 2.5·(N − R) / (N + 2.4·R + 1)

The registry :data:`INDICES` also lists the radar series of :mod:`pimc_core.series.radar` (``vv_db``,
``vh_db``, ``vh_vv_db``, ``rvi``), functions of the radar bands ``vv`` and ``vh`` (linear σ⁰).

:func:`compute_indices` computes several indices from a mapping of canonical, lower-case band
names (``blue, green, red, nir, swir1, swir2``) and stacks them along a new leading axis.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.series.band_math import is_torch as _is_torch
from pimc_core.series.band_math import prepare as _prepare
from pimc_core.series.band_math import safe_divide as _safe_divide
from pimc_core.series.radar import RADAR_BOUNDS, RADAR_INDICES

__all__ = [
    "CANONICAL_BANDS",
    "INDEX_BOUNDS",
    "INDICES",
    "compute_indices",
    "evi",
    "evi2",
    "ndvi",
    "required_bands",
    "savi",
]

#: Canonical band names, lower-case, as used as keys of the ``bands`` mapping.
CANONICAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2")

# EVI coefficients (MODIS / Huete et al. 2002).
EVI_G = 2.5
EVI_C1 = 6.0
EVI_C2 = 7.5
EVI_L = 1.0


# --------------------------------------------------------------------------------------------
# indices
# --------------------------------------------------------------------------------------------


def ndvi(red: Any, nir: Any) -> Any:
    """Normalized Difference Vegetation Index.

    ``NDVI = (N − R) / (N + R)``

    Args:
        red: Red reflectance (0–1), numpy array or torch tensor, any shape ``(...)``.
        nir: Near-infrared reflectance (0–1), same shape as ``red`` (or broadcastable).

    Returns:
        NDVI, shape ``(...)``, same kind (numpy/torch) and floating dtype as the inputs
        (float32 for integer inputs). NaN where ``N + R == 0`` or an input is NaN.
    """
    (r, n), is_torch = _prepare(red, nir)
    return _safe_divide(n - r, n + r, is_torch)


def evi(blue: Any, red: Any, nir: Any) -> Any:
    """Enhanced Vegetation Index (Huete et al. 2002).

    ``EVI = G·(N − R) / (N + C1·R − C2·B + L)`` with ``G = 2.5, C1 = 6, C2 = 7.5, L = 1``.

    Args:
        blue: Blue reflectance (0–1), numpy array or torch tensor, shape ``(...)``.
        red: Red reflectance (0–1), shape ``(...)``.
        nir: Near-infrared reflectance (0–1), shape ``(...)``.

    Returns:
        EVI, shape ``(...)``, same kind and floating dtype as the inputs. NaN where the
        denominator is zero or an input is NaN. Values are not clipped: over bright, blue-heavy
        surfaces (clouds, snow) the denominator can approach zero and EVI can be far outside
        [-1, 1]; mask such pixels rather than clipping.
    """
    (b, r, n), is_torch = _prepare(blue, red, nir)
    num = EVI_G * (n - r)
    den = n + EVI_C1 * r - EVI_C2 * b + EVI_L
    return _safe_divide(num, den, is_torch)


def savi(red: Any, nir: Any, L: float = 0.5) -> Any:
    """Soil-Adjusted Vegetation Index (Huete 1988).

    ``SAVI = (1 + L)·(N − R) / (N + R + L)``

    Args:
        red: Red reflectance (0–1), numpy array or torch tensor, shape ``(...)``.
        nir: Near-infrared reflectance (0–1), shape ``(...)``.
        L: Soil brightness correction factor (0.5 by default; note the Awesome Spectral
            Indices catalogue defaults to 1.0).

    Returns:
        SAVI, shape ``(...)``, same kind and floating dtype as the inputs. NaN where
        ``N + R + L == 0`` or an input is NaN.
    """
    (r, n), is_torch = _prepare(red, nir)
    L = float(L)
    return _safe_divide((1.0 + L) * (n - r), n + r + L, is_torch)


def evi2(red: Any, nir: Any) -> Any:
    """Two-band Enhanced Vegetation Index (Jiang et al. 2008), EVI without the blue band.

    ``EVI2 = 2.5·(N − R) / (N + 2.4·R + 1)``

    Args:
        red: Red reflectance (0–1), numpy array or torch tensor, shape ``(...)``.
        nir: Near-infrared reflectance (0–1), shape ``(...)``.

    Returns:
        EVI2, shape ``(...)``, same kind and floating dtype as the inputs. NaN where the
        denominator is zero or an input is NaN.
    """
    (r, n), is_torch = _prepare(red, nir)
    return _safe_divide(2.5 * (n - r), n + 2.4 * r + 1.0, is_torch)


#: Registry: index name → (function, band names it needs, in the function's argument order).
INDICES: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "ndvi": (ndvi, ("red", "nir")),
    "evi": (evi, ("blue", "red", "nir")),
    "savi": (savi, ("red", "nir")),
    "evi2": (evi2, ("red", "nir")),
    **RADAR_INDICES,  # VV/VH dB, their ratio and the radar vegetation index (linear σ⁰ in)
}

#: Values an index can take at all, for any reflectances in [0, 1] (None: no useful bound):
#: NDVI is a normalised difference; SAVI with L = 0.5 is (1 + L) times one. Forecasts of an
#: index are clipped to it (:class:`pimc_core.models.pixel_model.PimcPixelModel`).
INDEX_BOUNDS: dict[str, tuple[float, float] | None] = {"ndvi": (-1.0, 1.0), "savi": (-1.5, 1.5), "evi": None, "evi2": None,
                                                        **RADAR_BOUNDS}

# Index to suggest when a band needed by another one is missing.
_ALTERNATIVES: dict[str, tuple[str, ...]] = {"evi": ("evi2",)}


def _normalise_names(names: str | Iterable[str]) -> list[str]:
    if isinstance(names, str):
        names = (names,)
    try:
        names = list(names)
    except TypeError:
        raise ConfigError(f"index names must be a list of strings; got {names!r}") from None
    valid = ", ".join(INDICES)
    if not names:
        raise ConfigError(f"no index requested; choose among: {valid}")
    out = []
    for name in names:
        key = name.strip().lower() if isinstance(name, str) else name
        if key not in INDICES:
            raise ConfigError(f"unknown index {name!r}; valid indices: {valid}")
        out.append(key)
    return out


def required_bands(names: str | Iterable[str]) -> tuple[str, ...]:
    """Band names needed to compute the given indices.

    Args:
        names: Index names (e.g. ``("ndvi", "evi")``), or a single name.

    Returns:
        Canonical band names, each once, in order of first need (e.g. ``("red", "nir", "blue")``).

    Raises:
        ConfigError: An index name is unknown (the message lists the valid names).
    """
    seen: dict[str, None] = {}
    for name in _normalise_names(names):
        for band in INDICES[name][1]:
            seen.setdefault(band, None)
    return tuple(seen)


def _quote_list(items: Iterable[str]) -> str:
    items = [f"'{i}'" for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _missing_band_error(index: str, missing: list[str], available: list[str]) -> BandError:
    what = "band" if len(missing) == 1 else "bands"
    msg = (
        f"index '{index}' needs {what} {_quote_list(missing)}, which this data lacks "
        f"(available: {', '.join(available) if available else 'none'})"
    )
    for alt in _ALTERNATIVES.get(index, ()):
        alt_bands = INDICES[alt][1]
        if all(b in available for b in alt_bands):
            msg += f"; use '{alt}', which needs only {' and '.join(alt_bands)}"
            break
    return BandError(msg)


def compute_indices(
    bands: Mapping[str, Any],
    names: str | Iterable[str] = ("ndvi", "evi", "savi"),
    *,
    invalid: Any = None,
) -> Any:
    """Compute several indices and stack them along a new leading axis.

    Args:
        bands: Mapping of canonical lower-case band name (``blue, green, red, nir, swir1,
            swir2``) → reflectance (0–1). The bands used must all have the same shape ``(...)``,
            e.g. ``(T, H, W)`` or ``(N, T)``. numpy arrays or torch tensors (if any is a tensor
            the result is a tensor on its device). Extra bands are ignored.
        names: Index names, in output order; see :data:`INDICES`.
        invalid: Optional boolean mask broadcastable to ``(...)``; True marks observations to
            discard (cloud, shadow, no data), which become NaN in every index.

    Returns:
        Array of shape ``(C, ...)`` with ``C = len(names)``; ``out[i]`` is index ``names[i]``.
        Floating dtype of the bands (promoted if mixed), float32 for integer bands.

    Raises:
        ConfigError: Unknown index name (the message lists the valid ones).
        BandError: A band needed by a requested index is missing (the message names index and
            band, and suggests an index computable from the available bands where one exists).
        InputError: The bands used differ in shape, or ``invalid`` is not a boolean mask
            broadcastable to the band shape.
    """
    index_names = _normalise_names(names)
    if not isinstance(bands, Mapping):
        raise InputError(f"bands must be a mapping of band name → array; got {type(bands).__name__}")
    available = [str(k) for k in bands]
    for name in index_names:
        missing = [b for b in INDICES[name][1] if b not in bands]
        if missing:
            raise _missing_band_error(name, missing, available)

    needed = required_bands(index_names)
    arrays, is_torch = _prepare(*(bands[b] for b in needed))
    shapes = {b: tuple(a.shape) for b, a in zip(needed, arrays)}
    if len(set(shapes.values())) > 1:
        detail = ", ".join(f"{b} {s}" for b, s in shapes.items())
        raise InputError(f"bands must all have the same shape; got {detail}")
    shape = next(iter(shapes.values()))
    prepared = dict(zip(needed, arrays))

    outputs = []
    for name in index_names:
        func, band_names = INDICES[name]
        outputs.append(func(*(prepared[b] for b in band_names)))
    stacked = sys.modules["torch"].stack(outputs, dim=0) if is_torch else np.stack(outputs, axis=0)

    if invalid is not None:
        mask_shape = tuple(invalid.shape) if hasattr(invalid, "shape") else np.shape(invalid)
        try:
            ok = np.broadcast_shapes(mask_shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise InputError(f"invalid mask of shape {mask_shape} does not broadcast to the band shape {shape}")
        if is_torch:
            import torch

            mask = invalid.to(stacked.device) if _is_torch(invalid) else torch.as_tensor(np.asarray(invalid), device=stacked.device)
            if mask.dtype != torch.bool:
                raise InputError(f"invalid mask must be boolean; got dtype {mask.dtype}")
            stacked = stacked.masked_fill(mask, float("nan"))
        else:
            mask = invalid.detach().cpu().numpy() if _is_torch(invalid) else np.asarray(invalid)
            if mask.dtype != np.bool_:
                raise InputError(f"invalid mask must be boolean; got dtype {mask.dtype}")
            stacked = np.where(mask, np.array(np.nan, dtype=stacked.dtype), stacked)
    return stacked
