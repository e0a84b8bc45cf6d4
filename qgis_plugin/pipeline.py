"""The work behind the pixel inspector and the Processing algorithms lives in pimc_core
(:mod:`pimc_core.viz.pixel_report`, :mod:`pimc_core.series.index_stack`), shared with the ``pimc`` CLI.
This module only resolves those names through :func:`bootstrap.import_core`, so a missing
dependency becomes a one-line install hint instead of an ImportError.
"""

from __future__ import annotations

from .bootstrap import import_core

_PIXEL = ("PixelResult", "pixel_result", "save_pixel_outputs", "parse_threshold")


def __getattr__(name: str):
    if name in _PIXEL:
        return getattr(import_core("pimc_core.viz.pixel_report"), name)
    if name == "write_indices":
        return import_core("pimc_core.series.index_stack").write_index_stack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
