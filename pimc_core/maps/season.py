"""Does a stack cover the season a model was trained on? Checked once, before any window is read.

A model reads a pixel's series either on its own date grid (``target_dates``: the series is
resampled onto them) or on the stack's acquisition dates as they are (a model with ``n_dates``
and no ``target_dates``). Either way the map is meaningful only where the stack's dates span the
part of the year the model learnt; a 6-year model applied to a 1-year stack, or a January–June
model to a July–December stack, would give maps of extrapolated series without a word.

The rule (in any year: the same season of another year is normal use):

* date grid: the grid the model resamples onto (bound to the stack's year by its ``prepare``)
  must lie within the stack's first and last dates, give or take a tolerance;
* acquisition dates: the stack must have the model's number of dates, and its first and last
  dates must be those of the training series shifted by a whole number of years (the shift
  that best matches the first date), give or take the tolerance.

The tolerance is two date steps of the model (its median spacing) or a tenth of its season,
whichever is longer: a first observation a few days after the grid starts, or a stack one
image short, is accepted. Models that expose neither (e.g. the nearest-centroid baseline, which
adapts to any dates) are not checked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError
from pimc_core.io.timeseries import TimeSeries

__all__ = ["check_season", "season_tolerance"]


def _span(dates: Sequence[dt.date]) -> str:
    return f"{dates[0].isoformat()}..{dates[-1].isoformat()}"


def season_tolerance(dates: Sequence[dt.date]) -> int:
    """Days a stack may miss at each end of a model's season ``dates`` (sorted)."""
    ordinals = np.array([d.toordinal() for d in dates])
    step = float(np.median(np.diff(ordinals))) if len(dates) > 1 else 16.0
    return int(max(2 * step, (ordinals[-1] - ordinals[0]) / 10))


def _shift_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _best_shift(first: dt.date, target: dt.date) -> int:
    """The whole number of years that brings ``first`` closest to ``target``."""
    base = target.year - first.year
    return min((base - 1, base, base + 1), key=lambda k: abs((_shift_years(first, k) - target).days))


def check_season(model: Any, source: TimeSeries, name: str) -> None:
    """Refuse a stack whose dates do not cover the model's season (see the module docstring).

    Args:
        model: a prepared :class:`~pimc_core.maps.protocol.PixelModel` (its optional
            ``target_dates``, ``training_dates`` and ``n_dates`` are read).
        source: the stack.
        name: how the message calls the model (its file name).

    Raises:
        ConfigError: one line naming the model's training season and the stack's dates.
    """
    stack = sorted(source.dates)
    trained = sorted(getattr(model, "training_dates", None) or ())
    grid = sorted(getattr(model, "target_dates", None) or ())
    where = f"{source.source} has {len(stack)} dates {_span(stack)}"
    if grid:
        season = trained or grid
        tol = season_tolerance(grid)
        early = (stack[0] - grid[0]).days
        late = (grid[-1] - stack[-1]).days
        if early <= tol and late <= tol:
            return
        outside = [d for d in grid if d < stack[0] or d > stack[-1]]
        raise ConfigError(
            f"model {name} was trained on the season {_span(season)} ({len(season)} dates); {where}: the model "
            f"would read {_span(grid)}, and {len(outside)} of those {len(grid)} dates fall outside the stack's "
            f"(more than {tol} days beyond its ends); give a stack that covers the model's season (in any year)"
        )
    if not trained:
        return
    n = getattr(model, "n_dates", None)
    if n is not None and len(stack) != int(n):
        raise ConfigError(f"model {name} reads {int(n)} dates as they are (trained on {_span(trained)}); {where}")
    k = _best_shift(trained[0], stack[0])
    first, last = _shift_years(trained[0], k), _shift_years(trained[-1], k)
    tol = season_tolerance(trained)
    if abs((stack[0] - first).days) <= tol and abs((stack[-1] - last).days) <= tol:
        return
    raise ConfigError(
        f"model {name} was trained on the season {_span(trained)} ({len(trained)} dates, read as they are); "
        f"{where}, not the same part of a year (the season in {first.year} would be {first}..{last}, "
        f"±{tol} days); give a stack that covers the model's season (in any year)"
    )
