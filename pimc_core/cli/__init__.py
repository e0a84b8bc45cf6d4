"""The ``pimc`` command line (console script ``pimc = pimc_core.cli:main``).

Sub-commands live in one module per family, each with a ``register(sub)`` that adds its
parsers: :mod:`pimc_core.cli.data` (info, sample-data, indices, rp), :mod:`pimc_core.cli.maps`
(classify, forecast, embed, cluster, similar), :mod:`pimc_core.cli.phenology` (phenology), :mod:`pimc_core.cli.query` (text-fit, query),
:mod:`pimc_core.cli.accuracy` (sample-design, assess), :mod:`pimc_core.cli.fit` (fit),
:mod:`pimc_core.cli.export` (export). Every command runs
inside the one error boundary of PIMC's command lines (:mod:`pimc_core.cli.boundary`): an
expected failure (input, configuration, I/O, CRS, disk full) ends with one line on stderr,
``pimc: error: …``, and exit status 2; Ctrl-C (130) and SIGTERM (143) leave no partial output.
Tracebacks are shown only with ``PIMC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from pimc_core.cli.args import OneLineParser
from pimc_core.cli.boundary import run_command

__all__ = ["build_parser", "main"]

#: the modules whose ``register(sub)`` adds sub-commands, in the order of ``pimc --help``
COMMAND_MODULES = ("pimc_core.cli.data", "pimc_core.cli.maps", "pimc_core.cli.phenology", "pimc_core.cli.accuracy",
                   "pimc_core.cli.query", "pimc_core.cli.fit", "pimc_core.cli.export")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``pimc``."""
    from pimc_core import __version__

    parser = OneLineParser(prog="pimc", description="PIMC: pixel time series → recurrence plots → maps")
    parser.add_argument("--version", action="version", version=f"pimc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pimc`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_command("pimc", lambda: args.func(args), interrupted="no partial output was left")


if __name__ == "__main__":
    sys.exit(main())
