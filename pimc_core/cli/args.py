"""Options and argument types shared by the ``pimc`` sub-commands.

* :func:`add_source_args` / :func:`open_from_args`: the options that open a time series
  (``SOURCE``, ``--sensor``, ``--bands``, quality mask, scaling), in every command that reads one;
* :func:`parse_indices`: ``--index ndvi,evi`` checked against the known indices;
* :func:`positive_int`, :func:`int_or_float`, :func:`finite_float`: argparse types with a message
  naming the option;
* :class:`OneLineParser`: the parser class of ``pimc`` and ``python -m training``, whose usage
  errors are one line, as every other error of PIMC's command lines.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, NoReturn

from pimc_core.errors import ConfigError

__all__ = ["OneLineParser", "add_source_args", "finite_float", "int_or_float", "open_from_args", "parse_band_mapping",
           "parse_indices", "positive_int"]


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors (a missing or unknown option, a bad value) end in
    ONE line on stderr, ``PROG: error: MESSAGE (see PROG --help)``, and exit status 2, like
    every other error of PIMC's command lines; its sub-parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_source_args(p: argparse.ArgumentParser, sar: bool = False) -> None:
    """Options shared by every command that opens a time series (``sar``: also ``--sar S1_SOURCE``)."""
    p.add_argument("source", help="manifest .yaml, folder of dated rasters, or folder of date folders")
    g = p.add_argument_group("reading the series")
    if sar:
        g.add_argument("--sar", metavar="S1_SOURCE",
                       help="Sentinel-1 source on the same grid (manifest with sensor: sentinel1-grd, or a folder of "
                       "VV/VH rasters), read beside SOURCE on its own dates (radar series vv_db, vh_db, vh_vv_db, rvi)")
    g.add_argument("--sensor", help="preset: sentinel2-l2a, landsat89-c2l2, landsat457-c2l2, landsat457-sr, sentinel1-grd, "
                   "reflectance")
    g.add_argument("--bands", help="band mapping inside multi-band files, e.g. blue=1,red=3,nir=4")
    g.add_argument("--mask-band", type=positive_int("--mask-band"), help="1-based quality band inside multi-band files")
    g.add_argument("--mask-valid", help="quality values that are valid, e.g. 4,5,6")
    g.add_argument("--mask-invalid", help="quality values that are invalid, e.g. 3,8,9,10")
    g.add_argument("--mask-bits", help="quality bits that mark invalid data when set, e.g. 1,3,4")
    g.add_argument("--scale", type=finite_float("--scale"), help="reflectance = DN * scale + offset")
    g.add_argument("--offset", type=finite_float("--offset"))
    g.add_argument("--nodata", type=float)
    g.add_argument("--boa-offset", action="store_true", help="Sentinel-2 baseline 04.00+: offset -0.1")


def _int_list(text: str, opt: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{opt}: expected comma-separated integers (got '{text}')") from None


def parse_band_mapping(text: str) -> dict[str, int]:
    """'red=3,nir=4' → {'red': 3, 'nir': 4}."""
    out: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, idx = part.partition("=")
        try:
            out[name.strip().lower()] = int(idx)
        except ValueError:
            raise ConfigError(f"--bands: expected name=index pairs like red=3,nir=4 (got '{part}')") from None
        if out[name.strip().lower()] < 1:
            raise ConfigError(f"--bands: band indices are 1-based (got '{part}')")
    return out


def open_from_args(args: argparse.Namespace):
    """Open the time series named by the shared source options."""
    from pimc_core.io.sensors import QualityRule, check_band_name
    from pimc_core.io.timeseries import open_series

    quality = None
    rules = [(k, getattr(args, f"mask_{k}")) for k in ("valid", "invalid", "bits")]
    given = [(k, v) for k, v in rules if v]
    if len(given) > 1:
        raise ConfigError("give only one of --mask-valid, --mask-invalid, --mask-bits")
    if given:
        k, v = given[0]
        quality = QualityRule.from_dict({k: _int_list(v, f"--mask-{k}")})
    bands = None
    if args.bands:
        bands = {check_band_name(k, "--bands"): v for k, v in parse_band_mapping(args.bands).items()}
    ts = open_series(
        args.source, sensor=args.sensor, bands=bands, mask_band=args.mask_band, quality=quality,
        scale=args.scale, offset=args.offset, nodata=args.nodata, boa_offset=args.boa_offset,
    )
    if getattr(args, "sar", None):
        from pimc_core.io.sar_source import with_sar

        ts = with_sar(ts, open_series(args.sar))
    return ts


def parse_indices(text: str) -> tuple[str, ...]:
    """'ndvi,evi' → ('ndvi', 'evi'), validated."""
    from pimc_core.series.indices import INDICES

    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    for n in names:
        if n not in INDICES:
            raise ConfigError(f"--index: unknown index '{n}' (known: {', '.join(INDICES)})")
    if not names:
        raise ConfigError("--index: give at least one index")
    return names


def positive_int(opt: str) -> Callable[[str], int]:
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{opt} must be a positive integer (got '{text}')") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{opt} must be a positive integer (got '{text}')")
        return v

    return conv


def int_or_float(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer or a fraction (got '{text}')") from None


def finite_float(opt: str) -> Callable[[str], float]:
    """An argparse type: a finite number (``nan`` and ``inf`` are refused, naming ``opt``)."""
    def conv(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{opt} must be a number (got '{text}')") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{opt} must be a finite number (got '{text}')")
        return v

    return conv
