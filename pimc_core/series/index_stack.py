"""The index stack: a GeoTIFF with one float32 band per index and date (index-major), NaN at
invalid observations, written block by block and atomically. Shared by ``pimc indices`` and the
``pimc:indices`` Processing algorithm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pimc_core.errors import Cancelled
from pimc_core.io.raster_io import open_geotiff_writer
from pimc_core.series.indices import compute_indices, required_bands


def write_index_stack(
    ts,
    names: Sequence[str],
    out: str | Path,
    *,
    block: int = 256,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> Path:
    """Index GeoTIFF of a series: one float32 band per index and date (index-major, as
    ``pimc indices``), NaN at invalid observations; written block by block, atomically.

    Args:
        progress: called with the percentage done after each block.
        is_canceled: polled between blocks; when it returns True the partial file is removed
            and :class:`pimc_core.errors.Cancelled` is raised.

    Returns:
        The output path.
    """
    names = tuple(names)
    needed = [b for b in ts.band_names if b in required_bands(names)]
    descriptions = [f"{n.upper()} {d.isoformat()}" for n in names for d in ts.dates]
    windows = list(ts.grid.windows(block))
    out = Path(out)
    with open_geotiff_writer(
        out, ts.grid, len(descriptions), "float32", nodata=float("nan"), descriptions=descriptions,
        tags={"pimc_indices": ",".join(names), "pimc_dates": ",".join(d.isoformat() for d in ts.dates)},
    ) as dst:
        for i, win in enumerate(windows):
            if is_canceled is not None and is_canceled():
                raise Cancelled("cancelled; no output was written")
            obs = ts.read(win, bands=needed or None)
            vals = compute_indices(obs.bands(), names, invalid=~obs.valid)  # (C, T, h, w)
            dst.write(vals.reshape(-1, *vals.shape[2:]).astype(np.float32), window=win)
            if progress is not None:
                progress(100.0 * (i + 1) / len(windows))
        if is_canceled is not None and is_canceled():
            raise Cancelled("cancelled; no output was written")
    return out
