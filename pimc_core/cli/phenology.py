"""``pimc phenology``: TIMESAT-style phenology metrics of every pixel of a region
(:func:`pimc_core.maps.phenology.phenology_map`) → ``phenology.tif`` (start, peak and end of
season as day of year, peak value, amplitude, length, integrated index) + ``phenology.qml``.

Added to the ``pimc`` parser by :func:`register` (listed in ``pimc_core.cli.COMMAND_MODULES``).
The region, Dask and progress options are those of the map commands (:mod:`pimc_core.cli.maps`);
it ends with one line on stdout: pixels, seconds, files written.
"""

from __future__ import annotations

import argparse

from pimc_core.cli.args import add_source_args, finite_float, open_from_args, positive_int
from pimc_core.cli.maps import (
    add_execution_args,
    add_region_args,
    executor_from_args,
    progress_bar,
    region_from_args,
)
from pimc_core.errors import ConfigError
from pimc_core.io.atomic import new_folders_removed_on_failure, output_folder

_PARAMS = ("step_days", "window_days", "order", "fraction", "min_amplitude", "min_snr", "min_valid")


def cmd_phenology(args: argparse.Namespace) -> None:
    from pimc_core.maps.phenology import PhenologyModel, phenology_map
    from pimc_core.series.phenology import PhenologyParams

    given = {k: getattr(args, k) for k in _PARAMS if getattr(args, k) is not None}
    try:
        params = PhenologyParams(**given)
    except ConfigError as e:
        raise ConfigError(f"phenology: {e}") from None
    model = PhenologyModel(args.index, params)  # an unknown index fails before the source is opened
    with new_folders_removed_on_failure(args.out):
        output_folder(args.out)  # before anything is read
        ts = open_from_args(args)
        region = region_from_args(args, ts.grid)
        model.prepare(ts)  # too few dates fails here, before the progress bar
        with executor_from_args(args) as ex, progress_bar("phenology", args.quiet) as progress:
            result = phenology_map(ts, region, args.out, index=args.index, params=params, batch_size=args.batch,
                                   block=args.block, progress=progress, executor=ex)
    print(result.summary())


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``phenology`` to ``pimc``."""
    p = sub.add_parser(
        "phenology", help="phenology metrics map: start/peak/end of season, amplitude, length, integral",
        description="TIMESAT-style metrics of one index per pixel: the series is resampled onto a regular grid, "
        "smoothed (Savitzky-Golay) and the season starts / ends where the curve crosses a fraction of its "
        "amplitude; one season over the stack; days are days of year of the first date's year.")
    add_source_args(p)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--index", default="ndvi", help="the index the metrics are of (default ndvi)")
    g = p.add_argument_group("metrics")
    g.add_argument("--step-days", type=positive_int("--step-days"), help="regular grid spacing in days (default 5)")
    g.add_argument("--window-days", type=positive_int("--window-days"),
                   help="Savitzky-Golay window in days (default 60)")
    g.add_argument("--order", type=positive_int("--order"), help="Savitzky-Golay polynomial order (default 3)")
    g.add_argument("--fraction", type=finite_float("--fraction"),
                   help="start/end threshold as a fraction of the amplitude, 0..1 (default 0.2)")
    g.add_argument("--min-amplitude", type=finite_float("--min-amplitude"),
                   help="smaller amplitudes are no season: nodata (default 0.1)")
    g.add_argument("--min-snr", type=finite_float("--min-snr"),
                   help="amplitudes below this many noise standard deviations are no season: nodata (default 10)")
    g.add_argument("--min-valid", type=positive_int("--min-valid"),
                   help="pixels with fewer valid observations are nodata (default 5)")
    add_region_args(p, "region polygon: vector file (GeoPackage, Shapefile, GeoJSON …), GeoJSON text or WKT")
    add_execution_args(p)
    p.set_defaults(func=cmd_phenology)
