"""Pretrained vs from-scratch patch classification on a generated EuroSAT-layout folder:
``python -m training.eurosat_compare --init PRETRAINED.pimc [--out docs/RESULTS.md] [--seeds 0,1,2,3,4]
[--fractions 0.2,0.8] [--work DIR]``.

The folder comes from :mod:`training.eurosat_sample` (5 classes, 30 multispectral images each,
spectral jitter 0.25, seed 7). For every seed and training fraction the same split trains two
networks of the same architecture and bands (those of the pretrained model's patch encoder): one
started from the model's patch encoder, one from random weights (:func:`training.patch.run_patch_finetune`;
40 epochs, batch 8). The Markdown section (a table of mean ± standard deviation over the seeds and
the per-seed differences) replaces the one between :data:`BEGIN` and :data:`END` in ``--out``, or
is appended; ``python -m training report`` keeps it when it rewrites the file (:func:`training.output.keep_marked_sections`).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["BEGIN", "END", "compare", "render_section"]

BEGIN = "<!-- patch-classification: python -m training.eurosat_compare -->"
END = "<!-- /patch-classification -->"
FOLDER = {"per_class": 30, "jitter": 0.25, "seed": 7}


def compare(init: Path, work: Path, seeds: Sequence[int], fractions: Sequence[float],
            epochs: int = 40, folder: dict[str, Any] = FOLDER) -> list[dict[str, Any]]:
    """One row per (fraction, seed): the scratch and pretrained test metrics."""
    from pimc_core.learn.patch_classifier import pretrained_patch_encoder
    from training.eurosat_sample import write_eurosat_folder
    from training.patch import PatchRunConfig, run_patch_finetune

    enc, _, bands = pretrained_patch_encoder(init)
    root = work / "folder"
    if not root.exists():
        write_eurosat_folder(root, "ms", folder["per_class"], folder["jitter"], folder["seed"])
    rows = []
    for frac in fractions:
        for seed in seeds:
            row: dict[str, Any] = {"fraction": frac, "seed": seed}
            for kind in ("scratch", "pretrained"):
                cfg = PatchRunConfig.from_mapping({
                    "out_dir": str(work / f"{kind}_{frac}_{seed}"), "seed": seed, "device": "cpu",
                    "init": str(init) if kind == "pretrained" else "",
                    "dataset": {"path": str(root), "train_fraction": frac, "bands": list(bands)},
                    "encoder": {k: v for k, v in enc.to_dict().items() if k != "in_channels"},
                    "finetune": {"epochs": epochs, "batch_size": 8}})
                s = run_patch_finetune(cfg)
                row[kind] = {"accuracy": s["test"]["accuracy"], "macro_f1": s["test"]["macro_f1"]}
                row["train"], row["test"] = s["dataset"]["train"], s["dataset"]["test"]
            rows.append(row)
    return rows


def render_section(rows: list[dict[str, Any]], init: Path, command: str) -> str:
    """The Markdown section of :func:`compare`'s rows, between :data:`BEGIN` and :data:`END`."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    L = [BEGIN, "## 5. Patch classification: pretrained vs from scratch (generated EuroSAT-layout folder)", "",
         f"Written by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
         + (f", commit {commit[:12]}" if commit else "") + "; `python -m training report` keeps this section as it is.",
         "", f"The folder: `python -m training.eurosat_sample` with {FOLDER['per_class']} multispectral images per class, "
         f"spectral jitter {FOLDER['jitter']}, seed {FOLDER['seed']} (5 classes: crop stripes, forest and pasture "
         "blobs, roofs, water). Both networks read the bands of the pretrained model's patch encoder and have its "
         f"architecture; the pretrained one starts from `{init.name}` (the patch encoder that `python -m training "
         "pretrain --config training/configs/cpu_demo.yaml` trains contrastively on 7 x 7 px patches of a generated "
         "series), the other from random weights. Same split, seed and steps for both; test on the images not "
         "trained on. Mean ± sample standard deviation over the seeds.", "",
         "| train share | train / test images | seeds | OA scratch | OA pretrained | macro F1 scratch | "
         "macro F1 pretrained | pretrained − scratch OA per seed |", "|---|---|---|---|---|---|---|---|"]

    def ms(v: list[float]) -> str:
        return f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else f"{v[0]:.3f}"

    for frac in dict.fromkeys(r["fraction"] for r in rows):
        rs = [r for r in rows if r["fraction"] == frac]
        get = lambda k, m: [r[k][m] for r in rs]  # noqa: E731
        diff = ", ".join(f"{p - s:+.3f}" for p, s in zip(get("pretrained", "accuracy"), get("scratch", "accuracy")))
        L.append(f"| {frac:g} | {rs[0]['train']} / {rs[0]['test']} | {len(rs)} | {ms(get('scratch', 'accuracy'))} | "
                 f"{ms(get('pretrained', 'accuracy'))} | {ms(get('scratch', 'macro_f1'))} | "
                 f"{ms(get('pretrained', 'macro_f1'))} | {diff} |")
    L += ["", "A generated folder with five classes is a check that the path from a pretrained PIMC model to a "
          "patch classifier works, not a measure of what pretraining gives on EuroSAT: the encoder was pretrained on "
          "7 x 7 px patches of another generated scene, and EuroSAT itself is not reachable here.", END]
    return "\n".join(L) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from pimc_core.cli.args import OneLineParser
    from pimc_core.cli.boundary import run_command

    p = OneLineParser(prog="python -m training.eurosat_compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True, help="a .pimc with a patch encoder (python -m training pretrain)")
    p.add_argument("--out", default="docs/RESULTS.md")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--fractions", default="0.2,0.8")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--work", default="runs/eurosat_compare")
    argv = list(sys.argv[1:] if argv is None else argv)
    a = p.parse_args(argv)

    def command() -> None:
        from pimc_core.errors import ConfigError
        from pimc_core.io.atomic import output_folder
        from training.output import write_section

        try:
            seeds = [int(s) for s in a.seeds.split(",")]
            fractions = [float(f) for f in a.fractions.split(",")]
        except ValueError:
            raise ConfigError(f"--seeds / --fractions: comma-separated numbers; got {a.seeds!r} / {a.fractions!r}") from None
        out, work = Path(a.out), Path(a.work)
        output_folder(out.parent, create=False)
        output_folder(work)
        rows = compare(Path(a.init), work, seeds, fractions, a.epochs)
        cmd = "python -m training.eurosat_compare " + " ".join(argv)
        write_section(out, render_section(rows, Path(a.init), cmd), BEGIN, END)
        print(f"{out}: patch classification section, {len(rows)} runs of two networks")

    return run_command("training.eurosat_compare", command)


if __name__ == "__main__":
    sys.exit(main())
