"""Figures: a pixel's index curves with its recurrence plots. Uses matplotlib's object API
(no pyplot global state), so it is safe inside QGIS and in worker threads.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

# Debian's python3-matplotlib (pulled in by QGIS) puts an older mpl_toolkits on the path next to
# the venv's matplotlib; only the 3-D projection, which PIMC does not use, is affected.
warnings.filterwarnings("ignore", message="Unable to import Axes3D", category=UserWarning)

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pimc_core.io.atomic import atomic_path  # noqa: E402

INDEX_COLORS = {"ndvi": "#1b9e77", "evi": "#d95f02", "savi": "#7570b3", "evi2": "#e7298a"}


def pixel_figure(
    dates: Sequence[dt.date],
    raw: np.ndarray,
    filled: np.ndarray,
    plots: np.ndarray,
    index_names: Sequence[str],
    *,
    title: str = "",
    extra_curves: dict[str, tuple[Sequence[dt.date], np.ndarray]] | None = None,
    season: dict | None = None,
) -> Figure:
    """Index curves (top) and one recurrence plot per index (bottom).

    Args:
        dates: the T observation dates.
        raw: (C, T) index values, NaN at invalid observations (marked with crosses).
        filled: (C, T) gap-filled values (lines).
        plots: (C, T', T') recurrence plots.
        index_names: the C index names.
        title: figure title.
        extra_curves: name → (dates, values) drawn dashed (e.g. a forecast).
        season: phenology metrics to mark on the curves (``sos``, ``pos``, ``eos`` as day of
            year of ``year``, ``peak``, ``index``; see ``pimc_core.viz.pixel_report.PixelResult``).
    """
    c = len(index_names)
    fig = Figure(figsize=(3.2 * max(c, 2), 6.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(2, c, height_ratios=[1, 1.25])
    ax = fig.add_subplot(gs[0, :])
    d = np.array(dates, dtype="datetime64[D]")
    invalid = ~np.isfinite(raw)
    for i, name in enumerate(index_names):
        col = INDEX_COLORS.get(name, None)
        ax.plot(d, filled[i], "-", color=col, lw=1.4, label=name.upper())
        ok = ~invalid[i]
        ax.plot(d[ok], raw[i][ok], "o", color=col, ms=3.5)
        if invalid[i].any():
            ax.plot(d[invalid[i]], filled[i][invalid[i]], "x", color="0.45", ms=5)
    if invalid.any():
        ax.plot([], [], "x", color="0.45", label="invalid (gap-filled)")
    for name, (fd, fv) in (extra_curves or {}).items():
        ax.plot(np.array(fd, dtype="datetime64[D]"), fv, "--", lw=1.6, label=name)
    if season is not None:
        _mark_season(ax, season, INDEX_COLORS.get(season.get("index", ""), "0.2"))
    ax.set_ylabel("index value")
    ax.grid(alpha=0.3)
    # beside the curves, never over them (a long series fills the whole axes)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    for i, name in enumerate(index_names):
        a = fig.add_subplot(gs[1, i])
        im = a.imshow(plots[i], cmap="viridis", origin="lower", interpolation="nearest")
        a.set_title(f"RP {name.upper()}", fontsize=9)
        a.set_xlabel("t")
        a.set_ylabel("t")
        fig.colorbar(im, ax=a, shrink=0.75)
    return fig


def _mark_season(ax, season: dict, color: str) -> None:
    """Start and end of season as dotted lines, the peak as a star, each labelled, on ``ax``."""
    jan1 = np.datetime64(f"{int(season['year']):04d}-01-01", "D")

    def day(key: str) -> np.datetime64:
        return jan1 + np.timedelta64(int(round(season[key])) - 1, "D")

    name = str(season.get("index", "")).upper()
    for key, text in (("sos", "start"), ("eos", "end")):
        ax.axvline(day(key), color=color, ls=":", lw=1.3)
        ax.annotate(text, (day(key), 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                    textcoords="offset points", fontsize=8, color=color)
    ax.plot([day("pos")], [season["peak"]], "*", color=color, ms=11, mec="k", mew=0.6,
            label=f"{name} season: start, peak, end")
    ax.annotate("peak", (day("pos"), season["peak"]), xytext=(6, 4), textcoords="offset points", fontsize=8,
                color=color)


def mean_curve_figure(dates: Sequence[dt.date], values: np.ndarray, label: str, title: str) -> Figure:
    """A single curve over dates (e.g. the scene-mean NDVI), valid points only.

    Args:
        dates: T dates. values: (T,) values, NaN where unknown.
    """
    fig = Figure(figsize=(9, 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    d = np.array(dates, dtype="datetime64[D]")
    ok = np.isfinite(values)
    ax.plot(d[ok], values[ok], "o-", ms=3, lw=1, label=label)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save a figure to PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
