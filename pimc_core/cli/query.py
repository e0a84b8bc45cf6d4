"""``pimc text-fit`` and ``pimc query``: text queries over pixels.

* ``pimc text-fit SOURCE --model M.pimc --out M_text.pimc [--labels L --classes classes.json]``
  samples pixels of SOURCE, writes captions from their phenology metrics (and class names /
  descriptions where labelled), trains a text head against the frozen embeddings of M
  (:mod:`pimc_core.learn.text_align`) and writes M with the head added
  (:func:`pimc_core.models.text_encoder.save_text_model`); it ends with one line: pixels,
  vocabulary, first and last loss, seconds.
* ``pimc query SOURCE --model M_text.pimc --text "green-up in April, harvested in July" --out DIR``
  writes ``similarity.tif`` + ``similarity.qml`` (:func:`pimc_core.maps.text_query.query_map`);
  words the model does not know are named in one line on stderr and ignored.

Added to the ``pimc`` parser by :func:`register` (listed in ``pimc_core.cli.COMMAND_MODULES``).
"""

from __future__ import annotations

import argparse
import sys

from pimc_core.cli.args import add_source_args, finite_float, open_from_args, positive_int
from pimc_core.cli.maps import add_execution_args, add_region_args, executor_from_args, progress_bar, region_from_args
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.atomic import future_file, new_folders_removed_on_failure, not_an_input, output_folder
from pimc_core.io.input_files import local_path

_REGION = "region polygon: vector file (GeoPackage, Shapefile, GeoJSON …), GeoJSON text or WKT"
_FIT = ("epochs", "batch_size", "lr", "seed", "out_dim")


def cmd_query(args: argparse.Namespace) -> None:
    from pimc_core.maps.text_query import query_map

    if not str(args.text).strip():
        raise ConfigError("--text: give a sentence, e.g. \"green-up in April, harvested in July\"")
    local_path(args.model, "model file")
    with new_folders_removed_on_failure(args.out):
        output_folder(args.out)  # before anything is read
        ts = open_from_args(args)
        region = region_from_args(args, ts.grid)
        with executor_from_args(args) as ex, progress_bar("query", args.quiet) as progress:
            result = query_map(ts, args.model, args.text, region, args.out, batch_size=args.batch, block=args.block,
                               progress=progress, executor=ex)
    if result.extra.get("unknown"):
        print(f"pimc: query: words not in the model's vocabulary, ignored: {', '.join(result.extra['unknown'])}",
              file=sys.stderr)
    print(result.summary())


def cmd_text_fit(args: argparse.Namespace) -> None:
    from pimc_core.io.classes import class_descriptions, load_class_table
    from pimc_core.io.labels import read_labels
    from pimc_core.learn.text_align import TextFitConfig, fit_text_head
    from pimc_core.maps.text_query import collect_facts
    from pimc_core.models.text_encoder import save_text_model

    if args.labels is None and (args.classes or args.class_field):
        raise InputError("--classes and --class-field describe labels: give --labels too (or neither)")
    given = {k: getattr(args, k) for k in _FIT if getattr(args, k) is not None}
    try:
        cfg = TextFitConfig(**given)
    except ConfigError as e:
        raise ConfigError(f"text-fit: {e}") from None
    local_path(args.model, "model file")
    out = future_file(args.out)  # before anything is read
    not_an_input(out, [args.model, args.labels, args.classes])
    output_folder(out.parent)
    ts = open_from_args(args)
    not_an_input(out, ts.files())
    region = region_from_args(args, ts.grid)
    classes = load_class_table(args.classes) if args.classes else None
    labels = read_labels(args.labels, ts.grid, class_field=args.class_field, classes=classes) if args.labels else None
    descriptions = class_descriptions(args.classes) if args.classes else {}
    with executor_from_args(args) as ex, progress_bar("text-fit: sample", args.quiet) as progress:
        facts = collect_facts(ts, args.model, region, out.parent, labels=labels, descriptions=descriptions,
                              pixels=args.pixels, seed=cfg.seed, index=args.index, batch_size=args.batch,
                              block=args.block, progress=progress, executor=ex)
    with progress_bar("text-fit: train", args.quiet) as progress:
        head, summary = fit_text_head(facts, cfg, progress)
    summary.update({"source": str(ts.source), "labels": str(args.labels) if args.labels else None})
    save_text_model(out, args.model, head, summary)
    losses = summary["losses"]
    print(f"text head: {summary['pixels']} pixels ({summary['labelled_pixels']} labelled), {summary['vocabulary']} words, "
          f"loss {losses[0]:.3f} -> {losses[-1]:.3f} in {summary['seconds']:.1f} s; written to {out}")


def _command(sub: argparse._SubParsersAction, name: str, help: str, description: str, model: str,
             out: str) -> argparse.ArgumentParser:
    """A sub-command with the source, ``--model``, ``--out``, region and execution options."""
    p = sub.add_parser(name, help=help, description=description)
    add_source_args(p, sar=True)
    p.add_argument("--model", required=True, help=model)
    p.add_argument("--out", required=True, help=out)
    add_region_args(p, _REGION)
    add_execution_args(p)
    return p


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``text-fit`` and ``query`` to ``pimc``."""
    p = _command(sub, "text-fit", "train a text head on captions of the pixels, aligned with a model's embeddings",
                 "Sample pixels of SOURCE, caption each from its phenology metrics (and its class name and description "
                 "where --labels label it), train a small text encoder aligned with the model's pixel embeddings "
                 "(InfoNCE), and write the model with the text head added to --out.",
                 "the PIMC model file (.pimc) whose embeddings the text is aligned with",
                 "model file to write: the model with its text head (MODEL_text.pimc)")
    p.add_argument("--labels", help="class raster on the stack's grid or vector file (class names go into captions)")
    p.add_argument("--classes", help="classes.json (names; an optional \"description\" per class is captioned too)")
    p.add_argument("--class-field", help="attribute of a vector label file that holds the class")
    p.add_argument("--index", default="ndvi", help="the index whose phenology is captioned (default ndvi)")
    p.add_argument("--pixels", type=positive_int("--pixels"), default=20000, help="pixels sampled (default 20000)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int("--epochs"), help="passes over the pixels (default 40)")
    g.add_argument("--batch-size", type=positive_int("--batch-size"), help="pixels per step (default 256)")
    g.add_argument("--lr", type=finite_float("--lr"), help="learning rate (default 0.003)")
    g.add_argument("--out-dim", type=positive_int("--out-dim"), help="size of the joint space (default 32)")
    g.add_argument("--seed", type=int, help="sampling, captions and weights (default 0)")
    p.set_defaults(func=cmd_text_fit)

    q = _command(sub, "query", "similarity map of the pixels to a sentence (a model with a text head)",
                 "Encode a sentence with the model's text head and write the cosine similarity of every pixel's "
                 "embedding to it (similarity.tif, -1..1). It understands what the captions say: class names, green-up "
                 "/ peak / harvest (or bare after) in [early|mid|late] <month>, peak NDVI values, no season.",
                 "model file with a text head (pimc text-fit)", "output folder (created if missing)")
    q.add_argument("--text", required=True, help="the query, e.g. \"green-up in April, harvested in July\"")
    q.set_defaults(func=cmd_query)
