"""``pimc classify | forecast | embed | cluster | similar | suggest``: maps of a region with a model,
and the points of a region where a label would help most.

Added to the ``pimc`` parser by :func:`register` (listed in ``pimc_core.cli.COMMAND_MODULES``).
Each command opens the series, builds the region
(``--bbox`` / ``--polygon``), runs :mod:`pimc_core.maps.engine` in this process or on Dask
(``--workers N`` / ``--scheduler ADDR``), shows a progress bar on stderr and ends with one line
on stdout: pixels, seconds, pixels per second, files written (``suggest``: the points file, how
many points and how uncertain, :mod:`pimc_core.maps.suggest`; ``suggest --labels`` never suggests a
pixel those label files label).

``--model`` is a ``.pimc`` model file (loaded by ``pimc_core.models.pixel_model.load_pixel_model``) or
``builtin:nearest-centroid``, the documented non-PIMC baseline for the synthetic sample data
(:class:`pimc_core.models.centroid.NearestCentroidModel`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from pathlib import Path
from typing import Any, Callable

from pimc_core.cli.args import add_source_args, finite_float, open_from_args, positive_int
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.atomic import future_file, new_folders_removed_on_failure, not_an_input, output_folder
from pimc_core.io.input_files import local_path
from pimc_core.maps.coverage import STRATEGIES

BUILTIN_MODELS = ("builtin:nearest-centroid",)


def model_reference(spec: str, device: str = "cpu", engine: str = "torch") -> Any:
    """What ``--model`` names, as something both this process and Dask workers can load: a
    path (str, loaded on the CPU with the ``torch`` engine) or a picklable factory (a model file on
    ``device`` with ``engine``, which each Dask worker resolves on its own machine: ``auto``
    takes that machine's GPU when it has one)."""
    from pimc_core.devices import resolve_device
    from pimc_core.models.centroid import NearestCentroidModel

    if engine == "onnx" and not spec.startswith("builtin:"):
        check_onnx_engine(device)
    if device != "cpu":
        resolve_device(device)  # a bad name or a missing GPU fails here, before any window is read
    if spec.startswith("builtin:"):
        if engine not in ("auto", "torch"):
            raise ConfigError(f"--engine {engine} applies to .pimc model files, not to {spec}")
        if spec == "builtin:nearest-centroid":
            return NearestCentroidModel.for_synthetic
        raise ConfigError(f"--model: unknown built-in model '{spec}' (known: {', '.join(BUILTIN_MODELS)})")
    local_path(spec, "model file")
    if device == "cpu" and engine == "torch":
        return spec
    if not Path(spec).exists():
        raise InputError(f"{spec}: model file not found")
    from pimc_core.models.pixel_model import load_pixel_model

    return functools.partial(load_pixel_model, spec, device=device, engine=engine)


def check_onnx_engine(device: str) -> None:
    """``--engine onnx``: onnxruntime importable, and a CPU device (ConfigError otherwise)."""
    if str(device).lower() not in ("cpu", "auto"):
        raise ConfigError(f"--engine onnx runs on the CPU; got --device {device} (use --engine torch on a GPU)")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError("--engine onnx needs the onnxruntime package (pip install onnxruntime)") from None


def region_from_args(args: argparse.Namespace, grid, *, polygon: bool = True):
    from pimc_core.io.regions import parse_region

    return parse_region(
        grid, bbox=args.bbox, bbox_crs=args.bbox_crs,
        polygon=args.polygon if polygon else getattr(args, "map_polygon", None),
        polygon_crs=args.polygon_crs if polygon else None,
        layer=args.layer if polygon else None, all_touched=args.all_touched if polygon else False,
    )


@contextlib.contextmanager
def executor_from_args(args: argparse.Namespace):
    if args.workers is None and args.scheduler is None:
        yield None
        return
    from pimc_core.maps.dask_executor import DaskExecutor

    with DaskExecutor(workers=args.workers or 2, scheduler=args.scheduler) as ex:
        yield ex


@contextlib.contextmanager
def progress_bar(desc: str, quiet: bool):
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, disable=quiet, leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")

    def update(fraction: float) -> None:
        n = int(round(100 * fraction))
        if n != bar.n:
            bar.n = n
            bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def _run(args: argparse.Namespace, desc: str, fn: Callable[..., Any], *, ts=None, region=None, **kw) -> None:
    with new_folders_removed_on_failure(args.out):
        _run_in(args, desc, fn, ts=ts, region=region, **kw)


def _run_in(args: argparse.Namespace, desc: str, fn: Callable[..., Any], *, ts=None, region=None,
            check_out: Callable[[str], Any] = output_folder, **kw) -> None:
    check_out(args.out)  # before anything is read
    ts = ts if ts is not None else open_from_args(args)
    region = region if region is not None else region_from_args(args, ts.grid)
    device = "cpu" if args.engine == "onnx" and args.device == "auto" else args.device
    model = model_reference(args.model, device, args.engine)
    with executor_from_args(args) as ex, progress_bar(desc, args.quiet) as progress:
        result = fn(ts, model, region, args.out, batch_size=args.batch, block=args.block, progress=progress,
                    executor=ex, **kw)
    print(result.summary())


# ----------------------------------------------------------------------------- commands
def cmd_classify(args: argparse.Namespace) -> None:
    from pimc_core.maps.engine import run_inference

    products = ("classes", "confidence", "uncertainty") + (("probabilities",) if args.probabilities else ())
    _run(args, "classify", run_inference, products=products, smooth=_smoothing(args))


def _smoothing(args: argparse.Namespace) -> Any:
    """The smoothing of ``--smooth [--smooth-window N] [--smoothness S]`` (checked), or None."""
    from pimc_core.maps.smoothing import SmoothConfig

    given = [flag for flag, v in (("--smooth-window", args.smooth_window), ("--smoothness", args.smoothness))
             if v is not None]
    if not args.smooth:
        if given:
            raise ConfigError(f"{given[0]} applies to --smooth: give --smooth too (or neither)")
        return None
    opts = {"window": args.smooth_window, "smoothness": args.smoothness}
    try:
        return SmoothConfig(**{k: v for k, v in opts.items() if v is not None})
    except ConfigError as e:
        raise ConfigError(f"--smooth: {e}") from None


def cmd_forecast(args: argparse.Namespace) -> None:
    from pimc_core.maps.engine import run_inference

    _run(args, "forecast", run_inference, products=("forecast",))


def cmd_embed(args: argparse.Namespace) -> None:
    from pimc_core.maps.engine import run_inference

    _run(args, "embed", run_inference, products=("embeddings",))


def cmd_cluster(args: argparse.Namespace) -> None:
    from pimc_core.maps.engine import cluster_map

    _run(args, "cluster", cluster_map, k=args.k, sample_size=args.sample, seed=args.seed)


def cmd_similar(args: argparse.Namespace) -> None:
    with new_folders_removed_on_failure(args.out):
        _similar(args)


def _similar(args: argparse.Namespace) -> None:
    from pimc_core.io.regions import parse_region
    from pimc_core.maps.engine import similarity_map

    output_folder(args.out)  # before anything is read
    ts = open_from_args(args)
    if (args.x is None) != (args.y is None):
        raise ConfigError("give both --x and --y")
    if args.x is None and args.polygon is None:
        raise ConfigError("give a query pixel (--x, --y) or a query polygon (--polygon)")
    if args.x is not None and args.polygon is not None:
        raise ConfigError("give a query pixel (--x, --y) or a query polygon (--polygon), not both")
    if args.crs is not None and args.x is None:
        raise ConfigError("--crs applies to --x/--y")
    query: dict[str, Any] = {}
    if args.x is not None:
        query["query_xy"] = (args.x, args.y, args.crs)
    else:
        query["query_region"] = parse_region(ts.grid, polygon=args.polygon, polygon_crs=args.polygon_crs,
                                             layer=args.layer, all_touched=args.all_touched)
    _run_in(args, "similar", similarity_map, ts=ts, region=region_from_args(args, ts.grid, polygon=False), **query)


def _points_file(out: str) -> None:
    """``--out`` of suggest: a ``.gpkg`` file that can be written (its folder may be new)."""
    if Path(out).suffix.lower() != ".gpkg":
        raise ConfigError(f"--out {out}: the points are written as a GeoPackage; give a .gpkg file name")
    future_file(out)


def _labelled(args: argparse.Namespace, grid) -> Any:
    """(H, W) bool mask of the pixels ``--labels`` label (merged as ``pimc fit`` does), or None;
    the reader's warnings (features without a class) go to stderr."""
    if args.labels is None:
        return None
    from pimc_core.io.labels import read_label_files

    lmap = read_label_files(args.labels, grid, class_field=args.class_field)
    for line in lmap.warnings:
        print(f"warning: {line}", file=sys.stderr, flush=True)
    return lmap.array > 0


def cmd_suggest(args: argparse.Namespace) -> None:
    from pimc_core.maps.suggest import suggest_samples

    if args.labels is None and args.class_field:
        raise InputError("--class-field describes labels: give --labels too (or neither)")
    with new_folders_removed_on_failure(Path(args.out).parent):
        _points_file(args.out)  # before anything is read
        not_an_input(args.out, args.labels or ())  # the points of the last round, say
        ts = open_from_args(args)
        _run_in(args, "suggest", suggest_samples, ts=ts, check_out=_points_file, n=args.n, seed=args.seed,
                spacing=args.spacing, exclude=_labelled(args, ts.grid), strategy=args.strategy)


# ----------------------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser, *, polygon_help: str, out_help: str = "output folder (created if missing)") -> None:
    add_source_args(p, sar=True)
    p.add_argument("--model", required=True, help=".pimc model file (or builtin:nearest-centroid, a baseline)")
    p.add_argument("--out", required=True, help=out_help)
    add_region_args(p, polygon_help)
    add_execution_args(p)
    e = p.add_argument_group("model")
    e.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (a CUDA GPU when there is one, float16 autocast; else the CPU), cpu, cuda or cuda:N")
    e.add_argument("--engine", choices=("auto", "torch", "onnx", "reference"), default="torch",
                   help="how a .pimc model computes classes and embeddings: torch (default: its map graph in torch), "
                   "onnx (that graph in ONNX Runtime, CPU), auto (onnx on a CPU when onnxruntime is installed, else "
                   "torch) or reference (the network as trained, slower)")


def add_region_args(p: argparse.ArgumentParser, polygon_help: str) -> None:
    """``--bbox``, ``--bbox-crs``, ``--polygon`` … : the region a map covers."""
    g = p.add_argument_group("region (default: the whole raster)")
    g.add_argument("--bbox", type=float, nargs=4, metavar=("XMIN", "YMIN", "XMAX", "YMAX"))
    g.add_argument("--bbox-crs", help="CRS of --bbox, e.g. EPSG:4326 (default: the raster's)")
    g.add_argument("--polygon", help=polygon_help)
    g.add_argument("--polygon-crs", help="CRS of --polygon (default: WKT the raster's, GeoJSON EPSG:4326, files their own)")
    g.add_argument("--layer", help="layer of a multi-layer vector file (default: the first)")
    g.add_argument("--all-touched", action="store_true", help="include every pixel the polygon touches")


def add_execution_args(p: argparse.ArgumentParser) -> None:
    """``--workers`` / ``--scheduler``, ``--block``, ``--batch``, ``--quiet``: how a map runs."""
    e = p.add_argument_group("execution")
    x = e.add_mutually_exclusive_group()
    x.add_argument("--workers", type=positive_int("--workers"), help="Dask LocalCluster of N processes")
    x.add_argument("--scheduler", metavar="ADDR", help="existing Dask scheduler, e.g. tcp://host:8786")
    e.add_argument("--block", type=positive_int("--block"), default=256, help="window side in pixels (memory)")
    e.add_argument("--batch", type=positive_int("--batch"), default=4096, help="pixels per model call (memory)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")


_REGION_POLYGON = "region polygon: vector file (GeoPackage, Shapefile, GeoJSON …), GeoJSON text or WKT"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the map commands to ``pimc``."""
    p = sub.add_parser("classify", help="class map + confidence + uncertainty of a region with a model")
    _common(p, polygon_help=_REGION_POLYGON)
    p.add_argument("--probabilities", action="store_true", help="also write probabilities.tif (one band per class)")
    s = p.add_argument_group("Bayesian smoothing of the class probabilities (off by default)")
    s.add_argument("--smooth", action="store_true",
                   help="pull each pixel's class probabilities towards its neighbourhood's (sits' Bayesian smoothing)")
    s.add_argument("--smooth-window", type=int, metavar="N", help="neighbourhood side in pixels, odd >= 3 (default 7)")
    s.add_argument("--smoothness", type=finite_float("--smoothness"), metavar="S",
                   help="prior variance of a class logit, > 0; larger is smoother (default 10)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("forecast", help="index forecast map: one band per future date")
    _common(p, polygon_help=_REGION_POLYGON)
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("embed", help="embedding map: one band per embedding dimension")
    _common(p, polygon_help=_REGION_POLYGON)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("cluster", help="unsupervised map: k-means clusters of the embeddings")
    _common(p, polygon_help=_REGION_POLYGON)
    p.add_argument("--k", type=positive_int("--k"), required=True, help="number of clusters (2-255)")
    p.add_argument("--sample", type=positive_int("--sample"), default=100_000, help="pixels k-means is fitted on")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("similar", help="similarity map: cosine similarity to a query pixel or polygon")
    _common(p, polygon_help="query polygon (mean embedding): vector file, GeoJSON text or WKT")
    p.add_argument("--x", type=float, help="query pixel x")
    p.add_argument("--y", type=float, help="query pixel y")
    p.add_argument("--crs", help="CRS of --x/--y (default: the raster's)")
    p.add_argument("--map-polygon", help="restrict the map to this polygon (the --bbox alternative)")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("suggest", help="N points where a label would help the model most → points.gpkg",
                       description="Classify the region, then write N points (pixel centres) that cover the kinds "
                       "of pixel the labels (--labels) do not, leaning to uncertain ones (or, with --strategy "
                       "uncertainty, the most uncertain pixels spread over the scene and the predicted classes), "
                       "with an empty 'class' field to fill in; give the file back to pimc fit --labels POINTS.gpkg "
                       "--class-field class.")
    _common(p, polygon_help=_REGION_POLYGON, out_help="GeoPackage of the points to write (POINTS.gpkg)")
    p.add_argument("--n", type=positive_int("--n"), required=True, help="number of points")
    p.add_argument("--seed", type=int, default=0, help="breaks ties in uncertainty (0..2**32-1)")
    p.add_argument("--spacing", type=finite_float("--spacing"), default=0.5,
                   help="--strategy uncertainty: first minimum distance between points, as a fraction of sqrt(pixels / N) "
                   "(default 0.5)")
    p.add_argument("--labels", action="append", metavar="LABELS",
                   help="labels already made (as pimc fit --labels: a class raster on the stack's grid or a vector "
                   "file with --class-field; repeatable): their labelled pixels are never suggested")
    p.add_argument("--class-field", help="attribute of a vector label file that holds the class (id or name)")
    p.add_argument("--strategy", choices=STRATEGIES, default=STRATEGIES[0],
                   help="coverage (default): weighted k-means in the model's embedding space, away from the --labels "
                   "pixels and toward uncertain ones (finds confidently mapped fields unlike any labelled one); "
                   "uncertainty: the most uncertain pixels, spread over the scene and the predicted classes")
    p.set_defaults(func=cmd_suggest)
