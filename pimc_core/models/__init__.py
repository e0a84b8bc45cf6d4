"""Neural networks of PIMC: modality encoders, task heads, the PIMC network, the model file.

The names below are loaded on first use, so that ``pimc_core.models.model_file`` (read by the
QGIS plugin to show a model's metadata) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ENCODER_PRESETS": "encoders", "EncoderConfig": "encoders", "PatchEncoder": "encoders",
    "RPEncoder": "encoders", "SeriesEncoder": "encoders", "build_encoder": "encoders",
    "ClassifierHead": "heads", "ForecastHead": "heads", "ProjectionHead": "heads",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
