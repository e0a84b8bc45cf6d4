"""``pimc sample-design`` and ``pimc assess``: a stratified random sample of a class map, and the
area and accuracy the map's reference sample gives (Olofsson et al. 2014; Stehman 2014 when the
sample's strata are not the map classes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pimc_core.cli.args import finite_float, positive_int
from pimc_core.errors import ConfigError
from pimc_core.io.atomic import future_file, new_folders_removed_on_failure, not_an_input


def _expected_ua(text: str, q: int) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--expected-ua {text}: give one accuracy or one per class, comma-separated") from None
    if len(values) not in (1, q) or not all(0 <= v <= 1 for v in values):
        raise ConfigError(f"--expected-ua {text}: give one accuracy in [0, 1] or {q} (one per map class, ascending ids)")
    return values * q if len(values) == 1 else values


def cmd_sample_design(args: argparse.Namespace) -> None:
    from pimc_core.maps.accuracy import sample_size
    from pimc_core.maps.class_map import open_class_map
    from pimc_core.maps.sample_design import allocate, draw_sample, write_sample

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
    n = args.n
    if n is None:
        n = sample_size(cmap.pixels / cmap.pixels.sum(), _expected_ua(args.expected_ua, len(cmap.classes)),
                        args.target_se)
    sizes = allocate(n, cmap.pixels, args.allocation)
    with new_folders_removed_on_failure(Path(args.out).parent):
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        xy, stratum = draw_sample(cmap, sizes, seed=args.seed)
        write_sample(args.out, cmap, xy, stratum)
    per_class = ", ".join(f"{c}: {k}" for c, k in zip(cmap.classes.tolist(), sizes.tolist()))
    print(f"{args.out}: {len(stratum)} points ({args.allocation}; per class {per_class}); fill in 'reference', "
          f"then: pimc assess {args.map} --reference {args.out} --class-field reference --out report.json")


def cmd_assess(args: argparse.Namespace) -> None:
    from pimc_core.io.atomic import output_file
    from pimc_core.io.classes import load_class_table
    from pimc_core.maps.assessment import assess_map, write_report
    from pimc_core.maps.class_map import open_class_map

    if Path(args.out).suffix.lower() != ".json":
        raise ConfigError(f"--out {args.out}: the report is JSON (.md, .html and .png are written beside it); "
                          "give a .json file name")
    output_file(args.out, create_folder=True)
    not_an_input(args.out, [args.map, args.reference, args.classes, args.strata])
    table = load_class_table(args.classes) if args.classes else None
    cmap = open_class_map(args.map)
    report = assess_map(cmap, args.reference, args.class_field, table, strata=args.strata)
    json_path, md_path, html_path, png_path = write_report(report, args.out)
    left = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report["left_out"].items() if v)
    print(f"overall accuracy {report['overall_accuracy']:.3f} ± {report['overall_accuracy_ci95']:.3f} (95 %) from "
          f"{report['points_used']} of {report['points_read']} points" + (f"; left out: {left}" if left else ""))
    for c in report["classes"]:
        area = "" if c["area_ha"] is None else f"area {c['area_ha']:,.0f} ± {c['area_ci95_ha']:,.0f} ha (mapped {c['map_area_ha']:,.0f}); "
        ua = "–" if c["users_accuracy"] is None else f"{c['users_accuracy']:.3f} ± {c['users_accuracy_ci95']:.3f}"
        pa = "–" if c["producers_accuracy"] is None else f"{c['producers_accuracy']:.3f} ± {c['producers_accuracy_ci95']:.3f}"
        print(f"  {c['id']} {c['name']}: {area}user's {ua}; producer's {pa}; n {c['n_samples']}")
    print(f"wrote {json_path}, {md_path}, {html_path} and {png_path}")


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
