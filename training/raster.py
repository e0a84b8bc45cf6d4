"""Raster training commands: ``python -m training pretrain|finetune|evaluate|forecast
--config training/configs/NAME.yaml [key=value ...]``.

* ``pretrain`` — sample unlabelled pixels of every source, pretrain the encoders by symmetric
  InfoNCE (checkpoints in ``{out_dir}/checkpoints/pretrain``; a rerun resumes), write
  ``{out_dir}/pretrained.pimc``. Under ``torchrun`` (``WORLD_SIZE`` set) pretraining runs DDP;
  rank 0 writes checkpoints, logs and the model (:mod:`training.train`).
* ``finetune`` — classifier on the training labels, from ``init`` (default
  ``{out_dir}/pretrained.pimc`` when present, else from scratch), reading the inputs
  ``classifier_inputs`` names (``auto``: chosen on held-out labelled parcels, as ``pimc fit``
  does); writes ``{out_dir}/classifier.pimc`` and ``{out_dir}/finetune.json`` (with
  ``test_labels``: the test metrics of the saved classifier) (:mod:`training.train`). A config
  with ``task: patch`` classifies image patches of a folder in EuroSAT's layout instead
  (``training/configs/eurosat.yaml``, :mod:`training.patch`).
* ``evaluate`` — on the test labels: for each ``evaluate.label_fractions`` share of the
  labelled parcels, a pretrained network fine-tuned vs the same network trained from scratch,
  a linear probe (logistic regression) on the pretrained embeddings and a random forest on the
  gap-filled index series, all on the same pixels; plus ``evaluate.model`` when given. Writes
  ``{out_dir}/evaluate.json`` and ``evaluate.md`` (:mod:`training.evaluate`).
* ``forecast`` — forecast head (from ``init``) on a spatial checkerboard split (blocks of
  ``min(32, side / 4)`` px) and, when the series hold at least ``L + 2h`` dates, a temporal
  hold-out (test targets = the last ``h`` dates, which no training target reaches)
  of the unlabelled pixels; RMSE/MAE against persistence, seasonal-naive and linear-trend on
  the same test pixels; ``{out_dir}/forecaster.pimc`` and ``forecast.json`` (:mod:`training.forecast`).

Every command trains with the steps of :mod:`pimc_core.fit.pipeline` and ends with one summary
line on stdout; progress goes to stderr; failures end in one line (:func:`pimc_core.cli.boundary.run_command`).
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from pimc_core.cli.boundary import run_command
from pimc_core.errors import ConfigError
from training.config import load_config
from training.evaluate import run_evaluate
from training.forecast import run_forecast
from training.train import run_finetune, run_pretrain

__all__ = ["COMMANDS", "main", "run_evaluate", "run_finetune", "run_forecast", "run_pretrain"]

COMMANDS = {"pretrain": run_pretrain, "finetune": run_finetune, "evaluate": run_evaluate, "forecast": run_forecast}


def summary_line(cmd: str, s: dict[str, Any]) -> str:
    """The one line a command prints on stdout from its summary."""
    if not s:
        return f"{cmd}: nothing to do on this rank"
    if cmd == "pretrain":
        return (f"pretrain: {s['steps']} steps on {s['pixels']} pixels, loss {s['loss_start']} → {s['loss_end']}, "
                f"tau {s['temperature']}, {s['seconds_total']} s; model {s.get('model', '-')}")
    if cmd == "finetune":
        t = s.get("test") or {}
        return (f"finetune: {s['steps']} steps on {s['labelled']} pixels, loss {s['loss_end']}; "
                f"test accuracy {t.get('accuracy', '-')}, macro F1 {t.get('macro_f1', '-')}; model {s['model']}")
    if cmd == "evaluate":
        parts = []
        for r in s["rows"]:
            acc = {k: (r.get(k) or {}).get("accuracy") for k in ("scratch", "pretrained", "linear_probe", "random_forest")}
            parts.append(f"{r['fraction']}: " + ", ".join(f"{k} {v}" for k, v in acc.items() if v is not None))
        return "evaluate: " + "; ".join(parts) + f" ({s['seconds_total']} s)"
    sc = s["scores"]
    return (f"forecast {s['input_len']}→{s['horizon']}: RMSE pimc {sc['pimc']['rmse']}, "
            + ", ".join(f"{k} {v['rmse']}" for k, v in sc.items() if k != "pimc") + f"; model {s['model']}")


def main(argv: Sequence[str] | None = None) -> int:
    """``main([COMMAND, "--config", FILE, "key=value", ...])``; exit status 0, 2 (user error),
    130 (Ctrl-C) or 143 (SIGTERM)."""
    from pimc_core.cli.args import OneLineParser

    argv = list(sys.argv[1:] if argv is None else argv)
    p = OneLineParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=sorted(COMMANDS))
    p.add_argument("--config", required=True, help="YAML config, e.g. training/configs/cpu_demo.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted-key overrides, e.g. pretrain.steps=300")
    args = p.parse_intermixed_args(argv)

    def command() -> None:
        from pimc_core.devices import resolve_device
        from pimc_core.io.atomic import new_folders_removed_on_failure, output_folder
        from training import patch

        if patch.is_patch_config(args.config, args.overrides):  # task: patch (EuroSAT layout)
            if args.command != "finetune":
                raise ConfigError(f"{args.config}: task 'patch' runs with finetune, not {args.command}")
            cfg, run, line = patch.load_patch_config(args.config, args.overrides), patch.run_patch_finetune, \
                patch.summary_line
        else:
            cfg, run = load_config(args.config, args.overrides), COMMANDS[args.command]
            line = lambda s: summary_line(args.command, s)  # noqa: E731
        resolve_device(cfg.device)  # a bad name or a missing GPU fails before any work
        with new_folders_removed_on_failure(cfg.output):
            output_folder(cfg.output)  # out_dir: a file there, a read-only disk
            print(line(run(cfg)))

    return run_command(f"training {args.command}", command,
                       interrupted="no partial output was left; pretraining resumes from its last checkpoint")


if __name__ == "__main__":
    sys.exit(main())
