"""Acquisition dates from file and folder names.

Recognised, in this order of priority:

1. Landsat Collection 1/2 product ids, ``LC08_L2SP_198030_20230105_20230110_02_T1`` (the
   acquisition date is the first of the two dates);
2. Landsat scene ids, ``LE70350322008118EDC00`` (year and day of year at characters 10–16);
3. Sentinel-2 product and granule names, ``..._20230105T105441_...`` (date before the ``T``);
4. ``YYYY-MM-DD`` (also with ``_`` or ``.`` separators);
5. ``YYYYMMDD`` as a run of exactly eight digits;
6. year + day of year, ``YYYYDOY`` or ``YYYY-DOY``, as a run of exactly seven digits.
"""

from __future__ import annotations

import datetime as dt
import re

_LANDSAT_PRODUCT = re.compile(r"L[CTEOM]0\d_[A-Z0-9]{4}_\d{6}_(\d{8})_\d{8}_\d{2}_[A-Z0-9]{2}", re.I)
_LANDSAT_SCENE = re.compile(r"L[CTEOM]\d(\d{3})(\d{3})(\d{4})(\d{3})[A-Z]{3}\d{2}", re.I)
_S2 = re.compile(r"(?<!\d)(\d{8})T\d{6}(?!\d)")
_ISO = re.compile(r"(?<!\d)(\d{4})[-_.](\d{2})[-_.](\d{2})(?!\d)")
_COMPACT = re.compile(r"(?<!\d)(\d{8})(?!\d)")
_DOY = re.compile(r"(?<!\d)(\d{4})[-_]?(\d{3})(?!\d)")


def _ymd(s: str) -> dt.date | None:
    try:
        d = dt.datetime.strptime(s, "%Y%m%d").date()
    except ValueError:
        return None
    return d if 1950 <= d.year <= 2100 else None


def _year_doy(year: str, doy: str) -> dt.date | None:
    y, j = int(year), int(doy)
    if not (1950 <= y <= 2100) or not 1 <= j <= (366 if _is_leap(y) else 365):
        return None
    return dt.date(y, 1, 1) + dt.timedelta(days=j - 1)


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def date_from_name(name: str) -> dt.date | None:
    """Parse the acquisition date out of a file or folder name.

    Args:
        name: a file or folder name (a path is fine; only its last part is used).

    Returns:
        The date, or None when no recognised pattern is present.
    """
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    m = _LANDSAT_PRODUCT.search(name)
    if m and (d := _ymd(m.group(1))):
        return d
    m = _LANDSAT_SCENE.search(name)
    if m and (d := _year_doy(m.group(3), m.group(4))):
        return d
    m = _S2.search(name)
    if m and (d := _ymd(m.group(1))):
        return d
    for m in _ISO.finditer(name):
        if d := _ymd("".join(m.groups())):
            return d
    for m in _COMPACT.finditer(name):
        if d := _ymd(m.group(1)):
            return d
    for m in _DOY.finditer(name):
        if d := _year_doy(m.group(1), m.group(2)):
            return d
    return None


def parse_date(value: object, where: str) -> dt.date:
    """A date from YAML (already a date), an ISO string, or a compact/DOY string."""
    from pimc_core.errors import ConfigError

    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (str, int)):
        d = date_from_name(str(value))
        if d is not None:
            return d
    raise ConfigError(f"{where}: cannot read a date from {value!r} (use YYYY-MM-DD)")
