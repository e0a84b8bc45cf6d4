"""``pimc sample-design`` and ``pimc assess``: a stratified random sample of a class map, and the
area and accuracy the map's reference sample gives (Olofsson et al. 2014; Stehman 2014 when the
sample's strata are not the map classes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pimc_core.cli.args import finite_float, positive_int
from pimc_core.errors import ConfigError
from pimc_core.io.atomic import future_file, new_folders_removed_on_failure, not_an_input


def cmd_sample_design(args: argparse.Namespace) -> None:
    from pimc_core.maps.class_map import open_class_map
    from pimc_core.maps.sample_design import design_sample

    if (args.n is None) == (args.target_se is None):
        raise ConfigError("give the sample size --n, or --target-se (with --expected-ua) to compute it")
    if args.target_se is not None and not 0 < args.target_se < 1:
        raise ConfigError(f"--target-se {args.target_se}: a standard error of overall accuracy in (0, 1)")
    if Path(args.out).suffix.lower() != ".gpkg":
        raise ConfigError(f"--out {args.out}: the points are written as a GeoPackage; give a .gpkg file name")
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed {args.seed}: give 0..2**32-1")
    future_file(args.out)
    not_an_input(args.out, [args.map])
    cmap = open_class_map(args.map)
    with new_folders_removed_on_failure(Path(args.out).parent):
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        design = design_sample(cmap, args.out, n=args.n, target_se=args.target_se, expected_ua=args.expected_ua,
                               allocation=args.allocation, seed=args.seed)
    print(f"{design.summary()}; fill in 'reference', "
          f"then: pimc assess {args.map} --reference {args.out} --class-field reference --out report.json")


def cmd_assess(args: argparse.Namespace) -> None:
    from pimc_core.io.atomic import output_file
    from pimc_core.maps.assessment import assess, report_summary

    if Path(args.out).suffix.lower() != ".json":
        raise ConfigError(f"--out {args.out}: the report is JSON (.md, .html and .png are written beside it); "
                          "give a .json file name")
    output_file(args.out, create_folder=True)
    not_an_input(args.out, [args.map, args.reference, args.classes, args.strata])
    report, paths = assess(args.map, args.reference, args.class_field, args.out, classes=args.classes,
                           strata=args.strata)
    print("\n".join(report_summary(report)))
    print(f"wrote {', '.join(str(p) for p in paths[:-1])} and {paths[-1]}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sample-design`` and ``assess`` to ``pimc``."""
    p = sub.add_parser("sample-design", help="stratified random sample of a class map → points.gpkg to label",
                       description="Stratified random sampling with the map classes as strata (Olofsson et al. "
                       "2014): points at pixel centres with fields 'stratum' (map class) and an empty 'reference' "
                       "to fill in, then give them to pimc assess.")
    p.add_argument("map", help="class map GeoTIFF (one integer band; 0 and nodata are no class)")
    p.add_argument("--n", type=positive_int("--n"), help="total number of points")
    p.add_argument("--target-se", type=finite_float("--target-se"),
                   help="instead of --n: the standard error of overall accuracy wanted (eq. 13), e.g. 0.01")
    p.add_argument("--expected-ua", default="0.8",
                   help="with --target-se: expected user's accuracy, one value or one per class (default 0.8)")
    p.add_argument("--allocation", default="proportional",
                   help="proportional (default), equal, or min:M (at least M per class, the rest proportional)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0..2**32-1)")
    p.add_argument("--out", required=True, help="GeoPackage of the points to write (POINTS.gpkg)")
    p.set_defaults(func=cmd_sample_design)

    p = sub.add_parser("assess", help="area and accuracy with 95 %% intervals from reference sample points",
                       description="The stratified estimator with the map classes as strata (Olofsson et al. "
                       "2014): error matrix, overall / user's / producer's accuracies and class areas with 95 %% "
                       "confidence intervals, as report.json, report.md, report.html and report.png. With --strata, the sample's strata "
                       "are another raster (Stehman 2014).")
    p.add_argument("map", help="class map GeoTIFF (one integer band; 0 and nodata are no class)")
    p.add_argument("--reference", required=True, help="vector file of sample points with the reference class")
    p.add_argument("--class-field", default="reference", help="attribute holding the reference class (id or name)")
    p.add_argument("--classes", help="classes.json: class names (for the report, and names as reference values)")
    p.add_argument("--strata", help="raster of the strata the sample was drawn from, when they are not the map "
                   "classes (on the map's grid; 0 and nodata: no stratum): Stehman's 2014 estimator")
    p.add_argument("--out", required=True, help="report JSON (report.md, report.html and the error-matrix "
                   "report.png are written beside it)")
    p.set_defaults(func=cmd_assess)
