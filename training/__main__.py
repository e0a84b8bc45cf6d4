"""``python -m training <command> ...`` — dispatch to the training commands.

Commands:
    pretrain   Self-supervised PIMC pretraining (symmetric InfoNCE, RP x patch) on raster sources.
    finetune   Classifier head (and encoders) on labelled pixels, from a pretrained model or scratch.
               With task: patch (configs/eurosat.yaml): image patches of a EuroSAT-layout folder.
    evaluate   Pretrained vs scratch vs linear probe vs RandomForest at several label fractions.
    forecast   NDVI forecast head, scored against persistence, seasonal-naive and linear trend.
    series     Train and evaluate the pixel-series classifier on UCR-layout tables.
    report     The evaluation report docs/RESULTS.md (+ plots): PIMC vs scratch vs baselines.

    python -m training pretrain|finetune|evaluate|forecast --config training/configs/NAME.yaml [key=value ...]
    python -m training series --train TRAIN.tsv --test TEST.tsv [--out report.json]
    python -m training report [--config training/configs/report.yaml] [--out docs/RESULTS.md] [--quick] [key=value ...]

Every command runs inside the one error boundary of PIMC's command lines
(:func:`pimc_core.cli.boundary.run_command`): an expected failure ends in one line on stderr and
exit status 2, Ctrl-C in 130, SIGTERM in 143.
"""

from __future__ import annotations

import importlib
import sys

from pimc_core.cli.boundary import run_command
from pimc_core.errors import ConfigError

#: command -> module whose ``main(argv)`` runs it; the raster commands get their name as argv[0].
_RASTER = ("pretrain", "finetune", "evaluate", "forecast")
_COMMANDS = {**{c: "training.raster" for c in _RASTER}, "series": "training.series", "report": "training.report"}


def _unknown(cmd: str) -> None:
    raise ConfigError(f"unknown command {cmd!r} (choose from {', '.join(_COMMANDS)})")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        if not argv:
            print(f"python -m training: error: give a command ({', '.join(_COMMANDS)})", file=sys.stderr)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in _COMMANDS:
        return run_command("python -m training", lambda: _unknown(cmd))
    module = importlib.import_module(_COMMANDS[cmd])
    return int(module.main([cmd, *rest] if cmd in _RASTER else rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
