"""``pimc fit``: pretrain + fine-tune a PIMC pixel model on one stack, write one ``.pimc`` file.

Added to the ``pimc`` parser by :func:`register` (listed in ``pimc_core.cli.COMMAND_MODULES``)::

    pimc fit SOURCE [--sar S1_SOURCE] [--labels LABELS ...] --out MODEL.pimc [--classes classes.json]
             [--config CFG.yaml] [--class-field NAME] [--set KEY=VALUE ...] [--quiet]

``--labels`` may be given several times (rasters and vector files, merged onto the stack's grid).
Progress is shown with tqdm bars (stderr), warnings (label features without a class) as lines
starting ``warning:`` on stderr, also with ``--quiet``; the last line on stdout is a one-line summary.
"""

from __future__ import annotations

import argparse
import sys

from pimc_core.cli.args import add_source_args, open_from_args
from pimc_core.errors import InputError
from pimc_core.io.atomic import not_an_input

__all__ = ["cmd_fit", "register"]


def cmd_fit(args: argparse.Namespace) -> None:
    from pimc_core.fit import fit, load_fit_config

    if args.labels is None and (args.classes or args.class_field):
        raise InputError("--classes and --class-field describe labels: give --labels too (or neither)")
    cfg = load_fit_config(args.config, args.set or ())
    not_an_input(args.out, [args.config])
    ts = open_from_args(args)
    quiet = bool(args.quiet)

    def log(line: str) -> None:
        if not quiet or line.startswith("warning:"):
            print(line, file=sys.stderr, flush=True)

    res = fit(ts, args.labels, args.out, classes=args.classes, config=cfg, class_field=args.class_field,
              progress=not quiet, log=log)
    print(res.summary())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit",
        help="self-supervised pretraining on a stack + fine-tuning on its labelled pixels → MODEL.pimc",
        description="Pretrain the PIMC encoders on every (sampled) pixel of SOURCE without labels, fine-tune the "
        "classifier on the labelled pixels of LABELS (when given), train the forecast head, and write one .pimc "
        "model file.",
    )
    add_source_args(p, sar=True)
    p.add_argument("--labels", action="append", metavar="LABELS",
                   help="class raster on the stack's grid (0 = unlabelled) or vector file of polygons or points with "
                   "--class-field (features without a class are skipped); repeat it to merge several files; "
                   "without it the model is label-free (embed, cluster, similar and forecast; no classify)")
    p.add_argument("--out", required=True, help="model file to write (MODEL.pimc)")
    p.add_argument("--classes", help="classes.json: a list of {\"id\", \"name\", \"color\"} (default: 'class N')")
    p.add_argument("--class-field", help="attribute of a vector label file that holds the class (id or name)")
    p.add_argument("--config", help="YAML fit configuration (sections data, model, pretrain, finetune, forecast)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set pretrain.steps=300 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the summary line")
    p.set_defaults(func=cmd_fit)
