"""``python -m training pretrain`` and ``finetune``: the pipeline steps on a config's stacks.

* :func:`run_pretrain`: unlabelled pixels of every source → encoders pretrained by symmetric
  InfoNCE (checkpoints in ``{out_dir}/checkpoints/pretrain``; a rerun resumes) →
  ``{out_dir}/pretrained.pimc``. Under ``torchrun`` (``WORLD_SIZE`` set) pretraining runs DDP;
  rank 0 writes checkpoints, logs and the model.
* :func:`run_finetune`: the classifier on the training labels, from ``init`` (default
  ``{out_dir}/pretrained.pimc`` when present, else from scratch), reading the inputs
  ``classifier_inputs`` names (``auto``: chosen on held-out labelled parcels, as ``pimc fit``
  does) → ``{out_dir}/classifier.pimc`` and ``finetune.json`` (with ``test_labels``: the test
  metrics of the saved classifier).

Both run the steps of :mod:`pimc_core.fit.pipeline`, as ``pimc fit`` does.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from pimc_core.errors import ConfigError, InputError
from pimc_core.fit import pipeline as steps
from training.config import TrainConfig
from training.output import log, write_json
from training.stacks import RasterRun

__all__ = ["init_path", "metrics_record", "run_finetune", "run_pretrain"]


def init_path(cfg: TrainConfig) -> Path | None:
    """The pretrained model a network starts from: ``init``, else ``{out_dir}/pretrained.pimc``
    when it exists, else None (from scratch)."""
    if cfg.init:
        p = Path(cfg.init)
        if not p.exists():
            raise InputError(f"init: {p} not found")
        return p
    p = cfg.output / "pretrained.pimc"
    return p if p.exists() else None


def metrics_record(m: dict[str, Any]) -> dict[str, Any]:
    """Classification metrics for a JSON record: the confusion matrix last."""
    return {k: v for k, v in m.items() if k != "confusion"} | {"confusion": m.get("confusion")}


def run_pretrain(cfg: TrainConfig) -> dict[str, Any]:
    """Pretrain and write ``{out_dir}/pretrained.pimc``; returns the summary."""
    from pimc_core.learn.pretrain import dist_info

    t0 = time.perf_counter()
    run = RasterRun(cfg)
    unl = run.unlabelled(cfg.data.pretrain_samples, cfg.seed)
    if not cfg.data.patch_size:
        raise ConfigError("pretraining contrasts series and patches: data.patch_size must be > 0")
    net = run.net(unl)
    log(f"pretraining on {len(unl)} pixels of {len(run.stacks)} stack(s), T={unl.n_dates}")
    res = steps.pretrain_encoders(net, unl, cfg.pretrain, seed=cfg.seed, device=run.device(),
                                  checkpoint_dir=cfg.output / "checkpoints" / "pretrain", progress=True, log=log)
    summary = {"command": "pretrain", "pixels": len(unl), **res.summary(), "seconds_total": round(time.perf_counter() - t0, 1)}
    if dist_info().is_main:
        path = run.save(net, cfg.output / "pretrained.pimc", unl,
                        {"workflow": "python -m training pretrain", "config": cfg.to_dict(), "pretrain": res.summary()})
        summary["model"] = str(path)
        write_json(cfg.output / "pretrain.json", summary)
    return summary


def run_finetune(cfg: TrainConfig) -> dict[str, Any]:
    """Fine-tune a classifier; write ``{out_dir}/classifier.pimc`` (+ test metrics)."""
    from pimc_core.learn.pretrain import dist_info

    if not dist_info().is_main:
        return {}
    t0 = time.perf_counter()
    run = RasterRun(cfg, need_labels=True)
    train, parcels = run.labelled(cfg.seed, cfg.data.per_class or None)
    init = init_path(cfg)
    log(f"fine-tuning on {len(train)} labelled pixels ({'from ' + str(init) if init else 'from scratch'})")
    dev = run.device()
    ft = dataclasses.replace(cfg.finetune, seed=cfg.seed)
    net = run.net(train, n_classes=len(run.class_ids), init=init)
    choice = steps.choose_inputs(net, train, parcels, run.class_ids, ft, cfg.classifier_inputs, device=dev,
                                 progress=True, log=log)
    modalities = choice.modalities(train.patches is not None)
    hist = steps.train_classifier(net, train, run.class_ids, ft, device=dev, progress=True)
    hist["inputs"] = choice.summary()
    summary: dict[str, Any] = {"command": "finetune", "init": str(init) if init else None, "labelled": len(train), **hist}
    test = run.test(cfg.evaluate.test_samples, cfg.seed)
    if test is not None:
        summary["test"] = metrics_record(steps.score(net, test, run.class_ids, device=dev, modalities=modalities))
    path = run.save(net, cfg.output / "classifier.pimc", train,
                    {"workflow": "python -m training finetune", "config": cfg.to_dict(), "finetune": hist,
                     "test": summary.get("test"), "classify_modalities": modalities}, classes=run.table)
    summary["model"] = str(path)
    summary["seconds_total"] = round(time.perf_counter() - t0, 1)
    write_json(cfg.output / "finetune.json", summary)
    return summary
