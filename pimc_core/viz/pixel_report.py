"""A pixel's report: its index series, invalid observations, gap-filled curves and recurrence
plots, as a figure (PNG) and an array (NPY). Shared by ``pimc rp``, the QGIS pixel inspector and
the ``pimc:recurrenceplot`` Processing algorithm. Reads that one pixel only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pimc_core.errors import ConfigError, PimcError
from pimc_core.io.atomic import atomic_path
from pimc_core.series.pixel import pixel_index_series


@dataclass
class PixelResult:
    """One pixel's index series and recurrence plots.

    Attributes:
        row, col: the pixel in the series grid. x, y: its centre in the series CRS.
        dates: the T observation dates.
        raw: (C, T) index values, NaN at invalid observations.
        series: (C, T) gap-filled values (what the recurrence plots are made of).
        plots: (C, T', T') recurrence plots.
        index_names: the C index names.
        n_valid: number of valid observations of the pixel.
        season: the phenology metrics of the first index
            (:func:`pimc_core.series.phenology.series_season`: ``sos``, ``pos``, ``eos`` as day
            of year of ``year``, ``peak``, …) with ``index`` and ``year``; None when it has no
            season.
    """

    row: int
    col: int
    x: float
    y: float
    dates: tuple[dt.date, ...]
    raw: np.ndarray
    series: np.ndarray
    plots: np.ndarray
    index_names: tuple[str, ...]
    n_valid: int
    season: dict | None = None

    @property
    def title(self) -> str:
        return (
            f"pixel row {self.row}, col {self.col} (x={self.x:.1f}, y={self.y:.1f}); "
            f"{self.n_valid}/{len(self.dates)} valid"
        )

    def figure(self):
        """The core's :func:`pimc_core.viz.plotting.pixel_figure` of this pixel (a matplotlib Figure)."""
        from pimc_core.viz.plotting import pixel_figure

        return pixel_figure(
            self.dates, self.raw, self.series, self.plots, self.index_names, title=self.title, season=self.season
        )


def parse_threshold(value: object):
    """None / "" → None; "point" / "distance" kept; anything else a number.

    Raises:
        ConfigError: neither of those.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    if text in ("none",):
        return None
    if text in ("point", "distance"):
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"threshold: 'point', 'distance' or a number (got '{value}')") from None


def pixel_result(
    ts,
    row: int,
    col: int,
    indices: Sequence[str] = ("ndvi", "evi", "savi"),
    *,
    min_valid: int = 3,
    threshold=None,
    percentage: float = 10,
    dimension: int | float = 1,
    time_delay: int | float = 1,
) -> PixelResult:
    """Index series and recurrence plots of pixel (row, col) — reads that pixel only.

    Raises:
        PimcError: the pixel has fewer than ``min_valid`` valid observations (no plot is made
            from invented data), or a band an index needs is missing.
    """
    from pimc_core.series.recurrence import stack_recurrence_plots

    names = tuple(indices)
    ps = pixel_index_series(ts, row, col, names, min_valid=min_valid)
    n_valid = int(ps.n_valid[0, 0])
    if not ps.ok[0, 0]:
        raise PimcError(
            f"pixel row {row}, col {col} has only {n_valid} valid observation(s) of {len(ts)} "
            f"(minimum {min_valid}); no recurrence plot without inventing data"
        )
    series = ps.filled[:, :, 0, 0]  # (C, T)
    plots = stack_recurrence_plots(
        series[None], dimension=dimension, time_delay=time_delay, threshold=threshold, percentage=percentage
    )[0]
    x, y = ts.grid.xy(row, col)
    return PixelResult(row, col, x, y, tuple(ps.dates), ps.raw[:, :, 0, 0], series, np.asarray(plots),
                       names, n_valid, _season(ps.raw[0, :, 0, 0], tuple(ps.dates), names[0]))


def _season(raw: np.ndarray, dates: Sequence[dt.date], index: str) -> dict | None:
    """The phenology metrics of one (T,) series with gaps (defaults of the phenology map), or None."""
    from pimc_core.series.phenology import PhenologyParams, series_season

    params = PhenologyParams()
    try:
        m = series_season(raw[None], dates, PhenologyParams(min_valid=min(params.min_valid, len(dates))))
    except ConfigError:  # too short a series for the filter
        return None
    if not np.isfinite(m["sos"][0]):
        return None
    return {"index": index, "year": dates[0].year, **{k: float(v[0]) for k, v in m.items()}}


def save_pixel_outputs(result: PixelResult, png: str | Path | None = None, npy: str | Path | None = None) -> None:
    """Write the figure (PNG) and the recurrence plots ((C, T', T') float32 NPY), atomically:
    both are written under temporary names first and appear together, or neither does."""
    with contextlib.ExitStack() as stack:
        tmp_png = stack.enter_context(atomic_path(png)) if png else None
        tmp_npy = stack.enter_context(atomic_path(npy)) if npy else None
        if tmp_png is not None:
            result.figure().savefig(tmp_png, format="png")
        if tmp_npy is not None:
            with open(tmp_npy, "wb") as f:
                np.save(f, result.plots.astype(np.float32))
