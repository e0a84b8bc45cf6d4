"""Neural networks of PIMC: modality encoders and task heads."""

from __future__ import annotations

from .encoders import ENCODER_PRESETS, EncoderConfig, PatchEncoder, RPEncoder, SeriesEncoder, build_encoder
from .heads import ClassifierHead, ForecastHead, ProjectionHead

__all__ = [
    "ENCODER_PRESETS",
    "EncoderConfig",
    "RPEncoder",
    "PatchEncoder",
    "SeriesEncoder",
    "build_encoder",
    "ProjectionHead",
    "ClassifierHead",
    "ForecastHead",
]
