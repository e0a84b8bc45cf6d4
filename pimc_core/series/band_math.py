"""Band arithmetic shared by the optical indices (:mod:`pimc_core.series.indices`) and the radar
series (:mod:`pimc_core.series.radar`): bringing bands to one array kind (numpy or torch) and one
floating dtype, and division that gives NaN (never ±inf) where the denominator is zero.

torch is imported lazily: a numpy caller (the QGIS plugin, qgis_process, Dask workers) does not
pay torch's import time, and a tensor can only reach us if torch is already imported.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from pimc_core.errors import InputError

__all__ = ["is_torch", "prepare", "safe_divide"]


def is_torch(x: Any) -> bool:
    """True if ``x`` is a torch tensor (False without importing torch when it is not imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_scalar(x: Any) -> bool:
    """True for a Python int or float (not a bool), which does not decide an array's dtype."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def prepare(*arrays: Any) -> tuple[list[Any], bool]:
    """Bring inputs to one array kind and one floating dtype.

    If any input is a torch tensor, all inputs become tensors on that tensor's device; otherwise
    all become numpy arrays. The common dtype is the promotion of the floating inputs, or float32
    when no input is floating.

    Returns:
        (converted arrays, True if torch).
    """
    # Python scalars (e.g. a constant reflectance) do not decide the dtype of array inputs.
    tensors = [a for a in arrays if is_torch(a)]
    if tensors:
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise InputError(
                "band tensors are on different devices ("
                + ", ".join(sorted(str(d) for d in devices))
                + "); move them to one device first"
            )
        import torch

        device = tensors[0].device
        converted = [a if is_torch(a) else torch.as_tensor(np.asarray(a), device=device) for a in arrays]
        floats = [a.dtype for a, orig in zip(converted, arrays) if a.dtype.is_floating_point and not is_scalar(orig)]
        if floats:
            dtype = floats[0]
            for d in floats[1:]:
                dtype = torch.promote_types(dtype, d)
        else:
            dtype = torch.float32
        return [a.to(dtype) for a in converted], True

    converted = [np.asarray(a) for a in arrays]
    for a in converted:
        if a.dtype.kind not in "biuf":
            raise InputError(f"reflectance must be numeric; got an array of dtype {a.dtype}")
    floats = [a.dtype for a, orig in zip(converted, arrays) if a.dtype.kind == "f" and not is_scalar(orig)]
    if not floats and all(is_scalar(a) for a in arrays):
        floats = [a.dtype for a in converted if a.dtype.kind == "f"]
    dtype = np.result_type(*floats) if floats else np.dtype(np.float32)
    return [a.astype(dtype, copy=False) for a in converted], False


def safe_divide(num: Any, den: Any, is_torch: bool) -> Any:
    """num / den with NaN wherever den == 0 (NaN in num or den propagates)."""
    if is_torch:
        return (num / den).masked_fill_(den == 0, float("nan"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(num, den)
    zero = den == 0
    if np.ndim(out) == 0:
        return out.dtype.type(np.nan) if zero else out
    out[zero] = np.nan
    return out
