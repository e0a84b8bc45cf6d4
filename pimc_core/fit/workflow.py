"""The analyst's one-step workflow: ``pimc fit SOURCE --labels LABELS --out MODEL.pimc``.

:func:`fit` runs the steps of :mod:`pimc_core.fit.pipeline` on one stack:

1. **sampling** (:mod:`pimc_core.learn.sampling`): ``data.pretrain_samples`` random pixels with
   at least ``data.min_valid`` valid observations (unlabelled: self-supervision uses the whole
   stack) and up to ``data.per_class`` labelled pixels per class (stratified), each with its
   gap-filled index series and a ``data.patch_size`` patch of the median composite;
2. **normalisation** per index and band from the unlabelled sample;
3. **self-supervised pretraining** (:mod:`pimc_core.learn.pretrain`): symmetric InfoNCE between the
   recurrence-plot/series view and the patch view of each pixel;
4. **fine-tuning** of the classifier on the labelled pixels (:mod:`pimc_core.learn.finetune`),
   encoders unfrozen, with modality dropout; before it, spatial cross-validation over
   ``cv_folds`` folds of labelled regions (:mod:`pimc_core.fit.validation`) estimates the
   held-out accuracy stored with the model and chooses which inputs the classifier reads at
   prediction (with or without the patch; ``classifier_inputs: auto``);
5. **forecast head** (optional, ``forecast.enabled``): from ``L`` observations the next ``h`` NDVI
   values (:func:`pimc_core.learn.forecast.forecast_plan`), on the frozen encoders, trained on
   windows gap-filled only from the observations up to their own origin, as a map's input is
   (:func:`pimc_core.learn.forecast.sample_windows`);
6. one ``.pimc`` file (:func:`pimc_core.models.pixel_model.save_pixel_model`).

The configuration is a :class:`~pimc_core.fit.config.FitConfig`. A seed gives the same weights
whatever ``threads`` (the training stages run on one thread: :func:`pimc_core.fit.pipeline.training_threads`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pimc_core.errors import InputError
from pimc_core.fit import pipeline as steps
from pimc_core.fit.config import FitConfig, as_fit_config, jsonable_config, with_source_indices
from pimc_core.io.sar_source import SarSeries

__all__ = ["FitResult", "fit"]


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        path: the model file written.
        seconds: wall-clock time. stages: seconds per stage.
        n_pretrain, n_labelled: pixels used. classes: the class table.
        train_metrics: classification metrics on the labelled pixels (training data: optimistic).
        pretrain, finetune, forecast: the training summaries.
        spatial_cv: the held-out accuracy by spatial cross-validation (``training["spatial_cv"]``
            of the model file; ``{"reason": ...}`` when not possible; None: not asked for).
        ensemble: the forest member (``training["ensemble"]``: its weight, and with spatial CV
            the held-out accuracy of every candidate weight in ``choice``), or None.
    """

    path: Path
    seconds: float
    stages: dict[str, float]
    n_pretrain: int
    n_labelled: int
    classes: list[dict[str, Any]]
    train_metrics: dict[str, Any]
    pretrain: dict[str, Any]
    finetune: dict[str, Any]
    forecast: dict[str, Any] | None = None
    spatial_cv: dict[str, Any] | None = None
    ensemble: dict[str, Any] | None = None

    def summary(self) -> str:
        """One line for the end of ``pimc fit``."""
        from pimc_core.learn.spatial_cv import describe

        pre = self.pretrain
        pre_txt = (f"pretrain {pre['steps']} steps loss {pre['loss_start']:.2f}→{pre['loss_end']:.2f}"
                   if pre.get("steps") else "no pretraining")
        fc = ""
        if self.forecast:
            fc = f"; forecast {self.forecast['input_len']}→{self.forecast['horizon']}"
        ens = ""
        if self.ensemble:
            choice = self.ensemble.get("choice") or {}
            how = (" (configured)" if str(choice.get("reason", "")).startswith("configured") else
                   " (chosen on held-out fields)" if choice.get("accuracy") else " (no held-out fields to choose on)")
            ens = f"; forest weight {self.ensemble['forest_weight']:g}{how}"
        if not self.classes:
            return (f"{self.path}: label-free (no classifier), {self.n_pretrain} unlabelled pixels; {pre_txt}"
                    f"{fc}; {self.seconds:.0f} s")
        return (
            f"{self.path}: {len(self.classes)} classes, {self.n_labelled} labelled + {self.n_pretrain} unlabelled pixels; "
            f"{pre_txt}; fine-tune {self.finetune['steps']} steps; "
            f"training accuracy {self.train_metrics.get('accuracy', float('nan')):.3f} (on the pixels it trained on); "
            f"{describe(self.spatial_cv)}{ens}{fc}; {self.seconds:.0f} s"
        )


def fit(
    source: Any,
    labels: str | os.PathLike | Sequence[str | os.PathLike] | None,
    out: str | os.PathLike,
    *,
    classes: str | os.PathLike | Sequence[Mapping[str, Any]] | None = None,
    config: FitConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    class_field: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Pretrain on a stack, fine-tune on its labelled pixels, save one ``.pimc`` model.

    Without labels (``labels=None``) the model is label-free: pretrained encoders (embeddings,
    cluster and similarity maps) and the forecast head, no classifier.

    Args:
        source: a :class:`~pimc_core.io.timeseries.TimeSeries` or anything :func:`open_series` opens.
        labels: class raster on the stack's grid (0 = unlabelled) or vector file of polygons or
            points (``class_field``), or a list of them, merged (a pixel two files give different
            classes is an error; vector features without a class are skipped with a warning line
            to ``log``); None: no classifier.
        out: the ``.pimc`` file to write (its folder must exist).
        classes: ``classes.json`` path or a class table; without it classes are ``class N``
            (or the vector's class names).
        config: :class:`FitConfig`, a mapping or a YAML path.
        class_field: the class attribute of a vector label file.
        progress: tqdm bars.
        log: called with progress lines (stage starts / ends).

    Raises:
        BandError: the stack lacks a band the indices or patches need.
        InputError / ConfigError: unreadable inputs, no labelled pixel, too few dates, bad configuration.
    """
    import torch

    prev_threads = torch.get_num_threads()
    try:
        return _fit(source, labels, out, classes=classes, config=config, class_field=class_field,
                    progress=progress, log=log)
    finally:
        torch.set_num_threads(prev_threads)  # auto_threads changed it for this run only


def _forest_weight(ens: Any, chosen: Any) -> float:
    """The forest member's weight in the map: chosen on the spatial CV's folds (``auto``,
    :class:`~pimc_core.learn.ensemble_choice.WeightChoice`) or configured."""
    if chosen is not None:
        return float(chosen.weight)
    return 0.0 if ens.forest_weight == "auto" else float(ens.forest_weight)


def _label_files(labels) -> list:
    """The label files of ``labels`` (one path or several), as a list; [] for None."""
    if labels is None:
        return []
    return [labels] if isinstance(labels, (str, os.PathLike)) else list(labels)


def _read_labels(labels, ts, classes, class_field, say):
    """(label map or None, class table, a line saying what the labels are); warnings go to ``say``."""
    from pimc_core.io.classes import load_class_table
    from pimc_core.io.labels import read_label_files

    files = _label_files(labels)
    if not files:
        return None, [], "no labels: pretraining and forecast head only (no classifier)"
    table = None
    if classes is not None:
        table = load_class_table(classes) if isinstance(classes, (str, os.PathLike)) else [dict(c) for c in classes]
    lmap = read_label_files(files, ts.grid, class_field=class_field, classes=table)
    for line in lmap.warnings:
        say(f"warning: {line}")
    counts = lmap.counts()
    if not counts:
        raise InputError(f"{lmap.source}: no labelled pixel (every value is 0 / nodata)")
    steps.check_label_classes(counts, lmap.source)
    return lmap, lmap.classes, f"labels: {sum(counts.values())} labelled pixels in {len(counts)} classes"


def _fit(source, labels, out, *, classes, config, class_field, progress, log) -> FitResult:
    import torch

    from pimc_core.devices import auto_threads, resolve_device
    from pimc_core.io.atomic import not_an_input, output_file, output_folder
    from pimc_core.io.timeseries import TimeSeries, open_series

    t_start = time.perf_counter()
    say = log or (lambda s: None)
    cfg = as_fit_config(config)
    out = output_file(out)
    ts = source if isinstance(source, TimeSeries) else open_series(source)
    cfg = with_source_indices(cfg, ts.band_names, say)  # radar series for a radar source or --sar
    not_an_input(out, [*ts.files(), *_label_files(labels), classes if isinstance(classes, (str, os.PathLike)) else None])
    if cfg.checkpoint_dir:
        output_folder(cfg.checkpoint_dir)  # before any work: a file there, a read-only disk
    dev = resolve_device(cfg.device)
    threads = auto_threads(cfg.threads) if dev.type == "cpu" else torch.get_num_threads()
    # an optical and a radar source are two stacks of their own dates: `auto` takes the date grid
    dcfg = cfg.data.resolve([ts.optical.dates, ts.sar.dates] if isinstance(ts, SarSeries) else [ts.dates])
    stages: dict[str, float] = {}

    # ---- inputs: dates, bands, labels, classes
    steps.check_stack(ts, dcfg)
    t0 = time.perf_counter()
    lmap, class_table, label_txt = _read_labels(labels, ts, classes, class_field, say)
    class_ids = [int(c["id"]) for c in class_table]
    say(f"{ts.source}: {len(ts)} dates, {ts.grid.width}x{ts.grid.height} px; {label_txt}")

    # ---- samples
    sampler = steps.Sampler.for_stack(dcfg, ts.band_names, progress)
    unl = sampler.draw(ts, dcfg.pretrain_samples, seed=cfg.seed)
    if len(unl) == 0:
        raise InputError(f"{ts.source}: no pixel has {dcfg.min_valid} or more valid observations (data.min_valid)")
    lab = sampler.draw(ts, labels=lmap, per_class=dcfg.per_class or None, seed=cfg.seed + 1) if lmap else None
    stages["sampling"] = time.perf_counter() - t0
    if lab is not None and len(lab) == 0:
        raise InputError(f"{lmap.source}: no labelled pixel has {dcfg.min_valid} or more valid observations")
    n_lab = len(lab) if lab is not None else 0
    say(f"sampled {len(unl)} pixels for pretraining and {n_lab} labelled pixels in {stages['sampling']:.1f} s")

    # ---- model
    fc_plan = steps.plan_forecast(unl.n_dates, cfg.forecast, dcfg.indices)
    net = steps.build_net(cfg.model, dcfg, unl, seed=cfg.seed, n_classes=len(class_ids), forecast=fc_plan,
                          forecast_index=cfg.forecast.index, where="fit config model")

    # ---- pretraining
    t0 = time.perf_counter()
    pre_summary: dict[str, Any] = {"steps": 0}
    if cfg.pretrain.steps and net.cfg.has_patch:
        res = steps.pretrain_encoders(net, unl, cfg.pretrain, seed=cfg.seed, device=dev,
                                      checkpoint_dir=cfg.checkpoint_dir or None, progress=progress, log=say)
        pre_summary = res.summary()
    stages["pretrain"] = time.perf_counter() - t0

    # ---- classifier
    ft_summary: dict[str, Any] = {"steps": 0}
    train_metrics: dict[str, Any] = {}
    spatial_cv: dict[str, Any] | None = None
    classify_modalities: list[str] | None = None
    forest, ens_summary = None, None
    if lab is not None:
        from pimc_core.fit.validation import validate_classifier
        from pimc_core.learn.input_selection import labelled_regions

        fcfg = dataclasses.replace(cfg.finetune, seed=cfg.seed)
        t0 = time.perf_counter()
        reach = 2 * max(int(net.cfg.patch_size), 1)  # held-out regions: no patch overlaps a training pixel's
        region_map = labelled_regions(lmap.array, reach) if cfg.classifier_inputs == "auto" or cfg.cv_folds else None
        regions = region_map[lab.rows, lab.cols] if region_map is not None else None
        checked = validate_classifier(
            net, lab, regions, class_ids, fcfg, setting=cfg.classifier_inputs, folds=cfg.cv_folds,
            names={int(c["id"]): str(c.get("name", c["id"])) for c in class_table}, device=dev,
            jobs=cfg.cv_jobs or ((cfg.threads or os.cpu_count() or 1) if dev.type == "cpu" else 1), progress=progress,
            log=say, scene=unl, ensemble=cfg.ensemble, region_map=region_map, label_map=lmap.array)
        choice, spatial_cv = checked.choice, checked.spatial_cv
        if region_map is not None:
            stages["spatial_cv" if spatial_cv and spatial_cv.get("folds") else "input_selection"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ft_summary = steps.train_classifier(net, lab, class_ids, fcfg, device=dev, progress=progress)
        stages["finetune"] = time.perf_counter() - t0
        classify_modalities = choice.modalities(lab.patches is not None)
        ft_summary["inputs"] = choice.summary()
        weight = _forest_weight(cfg.ensemble, checked.forest_weight)
        if weight > 0:
            t0 = time.perf_counter()
            forest, ens_summary = steps.self_train(net, lab, unl, class_ids, cfg.ensemble, fcfg, seed=cfg.seed,
                                                   device=dev, modalities=classify_modalities, label_map=lmap.array,
                                                   progress=progress)
            stages["forest"] = time.perf_counter() - t0
            say(f"forest member: {cfg.ensemble.trees} trees on {ens_summary['labelled']} labelled and "
                f"{ens_summary['pseudo_labelled']} pseudo-labelled pixels in {stages['forest']:.1f} s")
        if checked.forest_weight is not None:
            ens_summary = {**(ens_summary or {}), "forest_weight": weight, "choice": checked.forest_weight.summary()}
        train_metrics = steps.score(net, lab, class_ids, device=dev, modalities=classify_modalities, forest=forest,
                                    forest_weight=weight)

    # ---- forecaster
    fc_summary = None
    if fc_plan is not None:
        t0 = time.perf_counter()
        fc_summary = steps.train_forecast_head(net, ts, unl, fc_plan, cfg.forecast, dcfg, seed=cfg.seed,
                                               device=dev, progress=progress)
        stages["forecast"] = time.perf_counter() - t0

    # ---- save
    seconds = time.perf_counter() - t_start
    training = {
        "workflow": "pimc fit",
        "source": str(ts.source),
        "stack": ts.record(),
        "labels": lmap.source if lmap is not None else None,
        "config": jsonable_config(cfg),
        "samples": {"pretrain": len(unl), "labelled": n_lab,
                    "per_class": {str(k): v for k, v in lab.class_counts().items()} if lab is not None else {}},
        "pretrain": pre_summary,
        "finetune": ft_summary,
        "forecast": fc_summary,
        "ensemble": ens_summary,
        "train_metrics": {k: v for k, v in train_metrics.items() if k != "confusion"},
        "spatial_cv": spatial_cv,
        "seconds": round(seconds, 1),
        "stages": {k: round(v, 1) for k, v in stages.items()},
        "seed": cfg.seed,
        "classify_modalities": classify_modalities,
        "device": str(dev),
        "threads": threads,
        "training_threads": steps.TRAINING_THREADS if dev.type == "cpu" else None,
    }
    path = steps.save_model(out, net, dcfg, unl, training, classes=class_table, forest=forest)
    return FitResult(path, time.perf_counter() - t_start, stages, len(unl), n_lab, class_table, train_metrics,
                     pre_summary, ft_summary, fc_summary, spatial_cv, ens_summary)
