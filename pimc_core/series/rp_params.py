"""The parameters of a recurrence plot: what they accept, and what they mean for a series length.

One declaration, :data:`RP_CONSTRAINTS` (the vocabulary of :mod:`pimc_core.config`), checks the
arguments of :func:`~pimc_core.series.recurrence.recurrence_plot` and
:func:`~pimc_core.series.recurrence.stack_recurrence_plots` and the fields of
:class:`~pimc_core.series.recurrence.RecurrencePlotConfig`; it accepts what pyts's
``RecurrencePlot._check_params`` accepts, except booleans and a NaN threshold (refused).
:func:`trajectory_params` adds the checks that depend on the series length.
"""

from __future__ import annotations

import math
import types
from numbers import Integral
from typing import Any, Union

from pimc_core.config import Interval, Real, StrOptions, check_params
from pimc_core.errors import ConfigError

__all__ = ["RP_CONSTRAINTS", "RP_NAME", "Threshold", "check_rp_params", "trajectory_params"]

Threshold = Union[None, str, int, float]

#: Prefix of the parameter messages (``rp.dimension must be ...``), the models' config key.
RP_NAME = "rp"

_LENGTH_FRACTION = [Interval(Integral, 1, None, closed="left"), Interval(Real, 0, 1, closed="neither")]

#: Accepted values of each parameter: ``dimension`` / ``time_delay`` an integer >= 1 or a
#: fraction of the series length in (0, 1); ``threshold`` None, ``'point'``, ``'distance'`` or a
#: number > 0; ``percentage`` in [0, 100]; ``size`` None or an integer >= 1.
RP_CONSTRAINTS: dict[str, list] = {
    "dimension": _LENGTH_FRACTION,
    "time_delay": _LENGTH_FRACTION,
    "threshold": [None, StrOptions({"point", "distance"}), Interval(Real, 0, None, closed="right")],
    "percentage": [Interval(Real, 0, 100, closed="both")],
    "size": [None, Interval(Integral, 1, None, closed="left")],
}


def check_rp_params(**values: Any) -> None:
    """Check the given parameters (any of :data:`RP_CONSTRAINTS`' names) against their rules.

    Raises:
        ConfigError: ``rp.{name} must be {what it accepts}; got {value!r}``.
    """
    check_params(types.SimpleNamespace(**values), {k: RP_CONSTRAINTS[k] for k in values}, where=RP_NAME)


def trajectory_params(length: int, dimension: int | float = 1,
                      time_delay: int | float = 1) -> tuple[int, int, int]:
    r"""Resolve ``dimension`` and ``time_delay`` for series of a given length.

    Args:
        length: Series length :math:`T` (>= 1).
        dimension: Embedding dimension :math:`m`: an integer in ``[1, T]`` or a float
            :math:`f \in (0, 1)` meaning :math:`\lceil f T \rceil`.
        time_delay: Delay :math:`\tau`: an integer in ``[1, T]`` or a float in ``(0, 1)``.

    Returns:
        ``(m, tau, T')`` with :math:`T' = T - (m - 1)\tau`, the side of the recurrence plot.

    Raises:
        ConfigError: a parameter is invalid for this length (message names it).
    """
    check_rp_params(dimension=dimension, time_delay=time_delay)
    resolved = []
    for name, value in (("dimension", dimension), ("time_delay", time_delay)):
        if isinstance(value, Integral):
            if value > length:
                raise ConfigError(
                    f"recurrence plot: if '{name}' is an integer it must be <= the series length "
                    f"({length}), got {value}")
            resolved.append(int(value))
        else:
            resolved.append(int(math.ceil(value * length)))  # same expression as pyts
    m, tau = resolved
    size = length - (m - 1) * tau
    if size < 1:
        raise ConfigError(
            f"recurrence plot: 'dimension' ({dimension!r} -> {m}) and 'time_delay' "
            f"({time_delay!r} -> {tau}) leave no trajectory in a series of length {length} "
            f"(need (dimension - 1) * time_delay < {length}); use smaller values")
    return m, tau, size
