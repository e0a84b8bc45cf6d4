"""``pimc export MODEL.pimc --onnx OUT.onnx``: a PIMC model as an ONNX file for other tools.

Added to the ``pimc`` parser by :func:`register` (listed in ``pimc_core.cli.COMMAND_MODULES``).
What the file holds (inputs, shapes, normalisation, outputs, metadata) is described in
:mod:`pimc_core.models.onnx_export` and docs/API.md ("ONNX"). The last line on stdout says what
was written.
"""

from __future__ import annotations

import argparse

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.atomic import not_an_input, output_file

__all__ = ["cmd_export", "register"]


def cmd_export(args: argparse.Namespace) -> None:
    from pathlib import Path

    if not args.onnx:
        raise ConfigError("give what to export: --onnx OUT.onnx")
    if Path(args.onnx).suffix.lower() != ".onnx":
        raise ConfigError(f"--onnx {args.onnx}: give a .onnx file name")
    output_file(args.onnx)  # before the model is read
    not_an_input(args.onnx, [args.model], flag="--onnx")
    if not Path(args.model).is_file():
        raise InputError(f"{args.model}: model file not found")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("pimc export --onnx needs the onnx package (pip install onnx)") from None
    from pimc_core.models.onnx_export import OPSET, export_onnx
    from pimc_core.models.pixel_model import load_pixel_model

    opset = OPSET if args.opset is None else args.opset
    model = load_pixel_model(args.model)
    out = export_onnx(model, args.onnx, opset=opset)
    ins = "series (N, {}, {})".format(len(model.indices), model.n_dates)
    if model.patch_size:
        ins += f", patches (N, {model.patch_channels}, {model.patch_size}, {model.patch_size})"
    if model.net.sar_encoder is not None:
        ins += f", modalities (N, {len(model.net.modalities)}: {' '.join(model.net.modalities)}, 1 present / 0 absent)"
    outs = "probabilities (N, {}), embeddings (N, {})".format(model.n_classes, model.embed_dim) if model.n_classes \
        else f"embeddings (N, {model.embed_dim})"
    if model.n_classes and model.forest is not None and model.forest_weight > 0:
        outs += f"; the probabilities mix the forest member in at {model.forest_weight:g}, as pimc classify does"
    print(f"wrote {out} (ONNX opset {opset}): inputs {ins}; outputs {outs}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` to ``pimc``."""
    p = sub.add_parser("export", help="write a .pimc model in another format (ONNX) for other tools",
                       description="Write the model's map graph (recurrence plots, encoders, classifier, with its "
                       "input normalisation) as an ONNX file; the model's metadata goes into its metadata_props.")
    p.add_argument("model", help=".pimc model file")
    p.add_argument("--onnx", metavar="OUT.onnx", help="ONNX file to write")
    p.add_argument("--opset", type=int, help="ONNX opset (at least and by default 17)")
    p.set_defaults(func=cmd_export)
