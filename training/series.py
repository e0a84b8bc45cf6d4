"""``python -m training series`` — train and evaluate the PIMC classifier on pixel-series tables.

Example::

    python -m training series --train Crop_TRAIN.tsv --test Crop_TEST.tsv --out report.json

Tables use the UCR archive layout (see :mod:`pimc_core.io.tables`). The unlabelled test series are
used, never their labels: for self-supervised (contrastive) pretraining together with the training
series (``--model pimc``) and for self-training of the random-kernel member (pseudo-labels of the
most confident test series, the share chosen on held-out training series;
:mod:`pimc_core.estimators.self_training`; off by default, ``--set self_train_shares=[0.25,0.5,1.0]``
turns it on).
``--no-unlabelled`` uses neither. Labels of the test table are only used to score the predictions. The whole run
(loading, pretraining, fine-tuning, inference) is planned to fit ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_BUDGET_S = 600.0


def _budget(text: str) -> float:
    """``--budget``: a positive, finite number of seconds."""
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--budget must be a number of seconds (got '{text}')") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"--budget must be a positive number of seconds (got '{text}')")
    return v


def build_parser() -> argparse.ArgumentParser:
    from pimc_core.cli.args import OneLineParser

    p = OneLineParser(
        prog="python -m training series",
        description="Train the PIMC pixel-series classifier (recurrence-plot + series encoders, contrastive "
        "pretraining, fine-tuning) on a UCR-layout table and evaluate it on another.",
    )
    p.add_argument("--train", required=True, help="training table (TSV/CSV, label first, then values in date order)")
    p.add_argument("--test", required=True, help="test table (same layout and length)")
    p.add_argument("--out", default=None, help="write the JSON report here")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--budget", type=_budget, default=DEFAULT_BUDGET_S,
        help=f"wall-clock seconds for the whole run, inference included (default {DEFAULT_BUDGET_S:.0f})",
    )
    p.add_argument(
        "--model", choices=("series", "pimc"), default="series",
        help="series: 1-D series-encoder ensemble (default, most accurate per CPU second); pimc: recurrence-plot "
        "encoder + series encoder with contrastive pretraining on train + test series",
    )
    p.add_argument("--config", default=None, help="YAML/JSON file with SeriesModelConfig overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key (YAML value); repeatable")
    p.add_argument("--no-unlabelled", action="store_true",
                   help="do not use the (unlabelled) test series for self-supervised pretraining or self-training")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--predictions", default=None, help="write one predicted label per test row to this file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, only the summary line")
    return p


def _load_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--config`` file (``extends:`` honoured) with the ``--set KEY=VALUE`` overrides applied."""
    from pimc_core.config import apply_overrides, load_yaml_config

    cfg = load_yaml_config(args.config) if args.config else {}
    return apply_overrides(cfg, args.set)


def _metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    labels = np.unique(np.concatenate([y_true, y_pred]))
    f1s = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, y_true)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(f1s[present])),
        "per_class_f1": {str(lab): round(float(v), 4) for lab, v in zip(labels, f1s) if np.isin(lab, y_true)},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from pimc_core.errors import InputError
    from pimc_core.estimators import SeriesClassifier, SeriesModelConfig
    from pimc_core.io.atomic import future_file, not_an_input
    from pimc_core.io.tables import load_series_table

    t0 = time.perf_counter()
    for flag, path in (("--out", args.out), ("--predictions", args.predictions)):  # before any work
        if path is not None:
            future_file(path)
            not_an_input(path, [args.train, args.test, args.config], flag)
    overrides = _load_overrides(args)
    overrides.setdefault("preset", args.model)
    overrides.setdefault("seed", args.seed)
    if args.device:
        overrides["device"] = args.device
    X_tr, y_tr = load_series_table(args.train)
    X_te, y_te = load_series_table(args.test)
    if X_tr.shape[1] != X_te.shape[1]:
        raise InputError(f"{args.test} has series of {X_te.shape[1]} values but {args.train} has {X_tr.shape[1]}")
    if y_tr.dtype.kind != y_te.dtype.kind and not (y_tr.dtype.kind in "if" and y_te.dtype.kind in "if"):
        y_tr, y_te = y_tr.astype(str), y_te.astype(str)
    load_s = time.perf_counter() - t0
    # the classifier plans inference of the test series into its budget; keep a little for the report
    budget = float(args.budget)
    reserve = 0.03 * budget + 3.0
    overrides.setdefault("budget_s", max(5.0, budget - load_s - reserve))
    cfg = SeriesModelConfig.from_dict(overrides)
    verbose = not args.quiet
    clf = SeriesClassifier.from_config(cfg, verbose=verbose, log=lambda m: print(m, file=sys.stderr, flush=True))
    clf.fit(X_tr, y_tr, None if args.no_unlabelled else X_te, predict_size=X_te.shape[0])
    t_inf = time.perf_counter()
    pred = clf.predict(X_te)
    infer_s = time.perf_counter() - t_inf
    if y_te.dtype.kind == "i" and clf.classes_.dtype.kind == "i":
        y_eval, pred_eval = y_te, pred
    elif y_te.dtype.kind in "if" and clf.classes_.dtype.kind in "if":
        y_eval = y_te.astype(np.float64)
        pred_eval = pred.astype(np.float64)
    else:
        y_eval, pred_eval = y_te.astype(str), pred.astype(str)
    m = _metrics(y_eval, pred_eval)
    seconds = time.perf_counter() - t0
    report = {
        "command": "series",
        "train": str(args.train),
        "test": str(args.test),
        **m,
        "n_train": int(X_tr.shape[0]),
        "n_test": int(X_te.shape[0]),
        "length": int(X_tr.shape[1]),
        "n_classes": int(len(clf.classes_)),
        "missing_fraction_train": round(float(np.isnan(X_tr).mean()), 5),
        "missing_fraction_test": round(float(np.isnan(X_te).mean()), 5),
        "unseen_test_labels": sorted({str(v) for v in np.setdiff1d(np.unique(y_te.astype(str)), clf.classes_.astype(str))}),
        "seconds": round(seconds, 1),
        "seconds_load": round(load_s, 1),
        "seconds_fit": clf.history_.get("fit_seconds"),
        "seconds_inference": round(infer_s, 1),
        "budget_s": budget,
        "seed": int(cfg.seed),
        "config": cfg.to_dict(),
        "training": clf.history_,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(clf.device_),
            "threads": torch.get_num_threads(),
        },
    }
    if args.predictions:
        _write_text(args.predictions, "\n".join(str(v) for v in pred.tolist()) + "\n")
    if args.out:
        _write_text(args.out, json.dumps(report, indent=2) + "\n")
    return report


def _write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    from pimc_core.io.atomic import atomic_path, output_folder

    output_folder(Path(path).parent)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m training series ...``; exit status 0, 2 (user error), 130 (Ctrl-C) or 143 (SIGTERM)."""
    from pimc_core.cli.boundary import run_command

    args = build_parser().parse_args(argv)

    def series() -> None:
        rep = run(args)
        print(
            f"series: accuracy={rep['accuracy']:.4f} macro_f1={rep['macro_f1']:.4f} n_train={rep['n_train']} "
            f"n_test={rep['n_test']} classes={rep['n_classes']} seconds={rep['seconds']:.1f}"
            + (f" report={args.out}" if args.out else "")
        )

    return run_command("training series", series)


if __name__ == "__main__":
    sys.exit(main())
