"""The analyst's one-step workflow: ``pimc fit SOURCE --labels LABELS --out MODEL.pimc``.

:func:`fit` runs, on one stack:

1. **sampling** (:mod:`pimc_core.learn.sampling`): ``data.pretrain_samples`` random pixels with
   at least ``data.min_valid`` valid observations (unlabelled: self-supervision uses the whole
   stack) and up to ``data.per_class`` labelled pixels per class (stratified), each with its
   gap-filled index series and a ``data.patch_size`` patch of the median composite;
2. **normalisation** per index and band from the unlabelled sample;
3. **self-supervised pretraining** (:mod:`pimc_core.learn.pretrain`): symmetric InfoNCE between the
   recurrence-plot/series view and the patch view of each pixel;
4. **fine-tuning** of the classifier on the labelled pixels (:mod:`pimc_core.learn.finetune`),
   encoders unfrozen, with modality dropout; before it, which inputs the classifier reads at
   prediction (with or without the patch) is chosen on labelled regions held out from a trial
   fine-tuning (``classifier_inputs: auto``, :mod:`pimc_core.learn.input_selection`);
5. **forecast head** (optional, ``forecast.enabled``): from ``L`` observations the next ``h`` NDVI
   values (:func:`pimc_core.learn.forecast.forecast_plan`), on the frozen encoders, trained on
   windows gap-filled only from the observations up to their own origin, as a map's input is
   (:func:`pimc_core.learn.forecast.sample_windows`);
6. one ``.pimc`` file (:func:`pimc_core.models.pixel_model.save_pixel_model`).

Configuration is a :class:`FitConfig` (YAML sections ``data``, ``model``, ``pretrain``,
``finetune``, ``forecast`` and a few top-level keys; unknown keys are a
:class:`~pimc_core.errors.ConfigError` naming them). The defaults are sized for a 2-core CPU:
a 256 x 256 px, 30-date stack is fitted in a few minutes.

This module also holds the small typed-config machinery (:func:`config_from_mapping`,
:func:`apply_overrides`) shared with ``training/config.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pimc_core.config import apply_overrides, config_from_mapping, load_yaml_config, with_section_defaults
from pimc_core.devices import resolve_device
from pimc_core.errors import ConfigError, InputError
from pimc_core.learn.finetune import FinetuneConfig, finetune_classifier, predict_proba
from pimc_core.learn.forecast import forecast_plan, sample_windows, train_forecaster
from pimc_core.learn.pretrain import AugmentConfig, PretrainConfig

__all__ = [
    "DataConfig",
    "FitConfig",
    "FitResult",
    "ForecastConfig",
    "apply_overrides",
    "config_from_mapping",
    "fit",
    "load_fit_config",
]


# ============================================================================ typed configs


# ============================================================================ fit config
@dataclass
class DataConfig:
    """What is sampled from the stack.

    Attributes:
        indices: index channels.
        min_valid: pixels with fewer valid observations are excluded (and nodata in maps).
        dates: ``observed`` (the stack's dates; the model then needs stacks with the same
            number of dates), ``grid`` (resampled onto ``n_dates`` dates every ``step_days``
            days from day-of-year ``start_doy``; ``n_dates`` 0 = one year) or ``auto`` (the
            observed dates when every stack of the run has the same dates, else the grid).
        patch_size: side k of the patches (0: no patch branch).
        patch_bands: bands of the patches (empty: every band of the stack).
        reference: ``median`` (the stack's median composite), ``seasonal:K`` (K median
            composites of consecutive, equally long periods of the stack: the patch then shows
            how the neighbourhood changes over the season) or a raster on the same grid.
        pretrain_samples: unlabelled pixels for self-supervised pretraining.
        per_class: labelled pixels per class for fine-tuning (0: all).
        block: window side for reading.
    """

    indices: tuple[str, ...] = ("ndvi", "evi", "savi")
    min_valid: int = 3
    dates: str = "auto"
    step_days: int = 10
    start_doy: int = 1
    n_dates: int = 0
    patch_size: int = 9
    patch_bands: tuple[str, ...] = ()
    reference: str = "median"
    pretrain_samples: int = 16384
    per_class: int = 1500
    block: int = 256

    def __post_init__(self) -> None:
        if self.dates not in ("auto", "observed", "grid"):
            raise ConfigError(f"data.dates must be 'auto', 'observed' or 'grid'; got {self.dates!r}")
        for name in ("min_valid", "step_days", "start_doy", "pretrain_samples", "block"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be >= 1; got {getattr(self, name)!r}")
        if self.patch_size < 0 or self.per_class < 0 or self.n_dates < 0:
            raise ConfigError("data.patch_size, data.per_class and data.n_dates must be >= 0")
        from pimc_core.series.indices import INDICES

        for i in self.indices:
            if i.lower() not in INDICES:
                raise ConfigError(f"data.indices: unknown index {i!r} (known: {', '.join(INDICES)})")
        self.indices = tuple(i.lower() for i in self.indices)
        from pimc_core.series.composites import stack_reference

        try:
            stack_reference(self.reference)
        except ConfigError as e:
            raise ConfigError(f"data.{e}") from None

    def date_spec(self) -> dict[str, Any]:
        """The model file's ``dates`` entry (``auto`` must have been resolved by :meth:`resolve`)."""
        if self.dates == "grid":
            return {"mode": "grid", "start_doy": self.start_doy, "step_days": self.step_days}
        return {"mode": "observed"}

    def resolve(self, date_lists: Sequence[Sequence[dt.date]]) -> "DataConfig":
        """``auto`` → ``observed`` when every stack has the same dates, else ``grid``."""
        if self.dates != "auto":
            return self
        same = all(tuple(d) == tuple(date_lists[0]) for d in date_lists[1:])
        return dataclasses.replace(self, dates="observed" if same else "grid")

    def target_dates(self, first_date: dt.date) -> list[dt.date] | None:
        """The dates series are resampled onto for a stack starting at ``first_date`` (None: observed)."""
        from pimc_core.series.gapfill import grid_dates

        if self.dates == "grid":
            return grid_dates(first_date, self.grid_size(), self.step_days, self.start_doy)
        return None

    def grid_size(self) -> int:
        return self.n_dates or max(2, int(np.ceil(365 / self.step_days)))


@dataclass
class ForecastConfig:
    """The forecast head of a fitted model.

    Attributes:
        enabled: train one.
        horizon, input_len: ``h`` and ``L`` (0: :func:`pimc_core.learn.forecast.forecast_plan`).
        index: the index forecast.
        max_windows: training windows ``[o, o + L + h)`` per pixel, the latest ones (0: all).
        finetune: its training (frozen encoders by default: cheap, the head learns a residual
            on persistence).
    """

    enabled: bool = True
    horizon: int = 0
    input_len: int = 0
    index: str = "ndvi"
    max_windows: int = 4
    finetune: FinetuneConfig = field(default_factory=lambda: FinetuneConfig(
        epochs=25, lr=2e-3, freeze=True, modality_dropout=0.0, label_smoothing=0.0, batch_size=512))


def _default_pretrain() -> PretrainConfig:
    return PretrainConfig(steps=300, batch_size=256, lr=2e-3, warmup_steps=20, checkpoint_every=100)


def _default_finetune() -> FinetuneConfig:
    # mild field-to-field variability as augmentation: more cloud gaps, sowing dates half a step
    # apart, +-5 % vigour. On three held-out synthetic scenes (256², 30 dates, seeds 11-13) it
    # lifted the accuracy on unseen fields by +0.010, +0.001 and +0.004 over drop_obs/noise only.
    # a fixed budget of 180 steps (epochs only bound it): a few labelled fields are otherwise a
    # few dozen steps (the 64² demo: 48 steps, 0.812 on its withheld fields; 180 steps: 0.828)
    # no LP-FT (head_steps): 100 head-only steps first gave 0.946 / 0.951 on the withheld fields of
    # scenes 21 and 22 (256², 30 dates) against 0.947 / 0.954 without (2026-12-04), so it stays off here
    return FinetuneConfig(epochs=1000, max_steps=180, batch_size=256, lr=3e-3, encoder_lr_scale=0.5,
                          augment=AugmentConfig(drop_obs=0.3, series_noise=0.03, time_shift=0.5, amplitude=0.05))


@dataclass
class FitConfig:
    """Everything :func:`fit` does (YAML: one section per attribute; unknown keys refused).

    Attributes:
        data: :class:`DataConfig`.
        model: :class:`~pimc_core.models.pimc_net.PimcModelConfig` fields (``level``, ``rp``,
            ``rp_encoder``, ``series_encoder``, ``patch_encoder``, ``proj_dim``, ...).
        pretrain: :class:`~pimc_core.learn.pretrain.PretrainConfig` (``steps: 0`` skips pretraining).
        finetune: :class:`~pimc_core.learn.finetune.FinetuneConfig` of the classifier.
        forecast: :class:`ForecastConfig`.
        seed: everything random derives from it.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch CPU threads (0: the cores not busy with other processes,
            :func:`pimc_core.devices.auto_threads`).
        checkpoint_dir: pretraining checkpoints (empty: none); a rerun resumes from them.
        classifier_inputs: what the classifier reads at prediction: ``all`` (recurrence plots,
            series and patch), ``temporal`` (no patch) or ``auto``: the better of the two on
            labelled regions held out from a trial fine-tuning
            (:func:`pimc_core.learn.input_selection.choose_classifier_inputs`; ``all`` when no class
            has two labelled regions).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    pretrain: PretrainConfig = field(default_factory=_default_pretrain)
    finetune: FinetuneConfig = field(default_factory=_default_finetune)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    checkpoint_dir: str = ""
    classifier_inputs: str = "auto"

    def __post_init__(self) -> None:
        from pimc_core.learn.input_selection import check_inputs_setting

        check_inputs_setting(self.classifier_inputs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "FitConfig":
        return config_from_mapping(cls, with_section_defaults(cls, data or {}), "fit config")


def load_fit_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> FitConfig:
    """A :class:`FitConfig` from a YAML file (optional) and ``key=value`` overrides."""
    data = load_yaml_config(path) if path else {}
    apply_overrides(data, overrides, FitConfig)
    return FitConfig.from_dict(data)


# ============================================================================ fit
@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        path: the model file written.
        seconds: wall-clock time. stages: seconds per stage.
        n_pretrain, n_labelled: pixels used. classes: the class table.
        train_metrics: classification metrics on the labelled pixels (training data).
        pretrain, finetune, forecast: the training summaries.
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

    def summary(self) -> str:
        """One line for the end of ``pimc fit``."""
        pre = self.pretrain
        pre_txt = (f"pretrain {pre['steps']} steps loss {pre['loss_start']:.2f}→{pre['loss_end']:.2f}"
                   if pre.get("steps") else "no pretraining")
        fc = ""
        if self.forecast:
            fc = f"; forecast {self.forecast['input_len']}→{self.forecast['horizon']}"
        if not self.classes:
            return (f"{self.path}: label-free (no classifier), {self.n_pretrain} unlabelled pixels; {pre_txt}"
                    f"{fc}; {self.seconds:.0f} s")
        return (
            f"{self.path}: {len(self.classes)} classes, {self.n_labelled} labelled + {self.n_pretrain} unlabelled pixels; "
            f"{pre_txt}; fine-tune {self.finetune['steps']} steps, training accuracy {self.train_metrics.get('accuracy', float('nan')):.3f}"
            f"{fc}; {self.seconds:.0f} s"
        )


def fit(
    source: Any,
    labels: str | os.PathLike | None,
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
        labels: class raster on the stack's grid (0 = unlabelled) or vector file (``class_field``);
            None: no classifier.
        out: the ``.pimc`` file to write (its folder must exist).
        classes: ``classes.json`` path or a class table; without it classes are ``class N``
            (or the vector's class names).
        config: :class:`FitConfig`, a mapping or a YAML path.
        class_field: the class attribute of a vector label file.
        progress: tqdm bars.
        log: called with progress lines (stage starts / ends).

    Raises:
        BandError: the stack lacks a band the indices or patches need.
        InputError / ConfigError: unreadable inputs, no labelled pixel, bad configuration.
    """
    import torch

    prev_threads = torch.get_num_threads()
    try:
        return _fit(source, labels, out, classes=classes, config=config, class_field=class_field,
                    progress=progress, log=log)
    finally:
        torch.set_num_threads(prev_threads)  # auto_threads changed it for this run only


def _fit(source, labels, out, *, classes, config, class_field, progress, log) -> FitResult:
    import torch

    from pimc_core.io.classes import load_class_table
    from pimc_core.io.labels import read_labels
    from pimc_core.io.timeseries import TimeSeries, open_series
    from pimc_core.learn.pretrain import pretrain
    from pimc_core.learn.sampling import sample_pixels
    from pimc_core.models.pimc_net import PimcModelConfig, PimcNet, compute_normalisation
    from pimc_core.models.pixel_model import save_pixel_model

    t_start = time.perf_counter()
    say = log or (lambda s: None)
    if isinstance(config, FitConfig):
        cfg = config
    elif isinstance(config, (str, os.PathLike)):
        cfg = load_fit_config(config)
    else:
        cfg = FitConfig.from_dict(config)
    out = Path(out)
    if not out.parent.exists():
        raise InputError(f"{out.parent}: output folder does not exist")
    ts = source if isinstance(source, TimeSeries) else open_series(source)
    dev = resolve_device(cfg.device)
    from pimc_core.devices import auto_threads

    threads = auto_threads(cfg.threads) if dev.type == "cpu" else torch.get_num_threads()
    dcfg = cfg.data.resolve([ts.dates])
    stages: dict[str, float] = {}

    # ---- inputs: bands, labels, classes, dates
    from pimc_core.series.indices import required_bands

    ts.require_bands(required_bands(dcfg.indices))
    patch_bands = tuple(dcfg.patch_bands) or tuple(ts.band_names)
    from pimc_core.series.composites import stack_reference

    from_stack = stack_reference(dcfg.reference) > 0  # patches from composites of the stack itself
    if dcfg.patch_size and from_stack:
        ts.require_bands(patch_bands)
    table = None
    if classes is not None:
        table = load_class_table(classes) if isinstance(classes, (str, os.PathLike)) else [dict(c) for c in classes]
    t0 = time.perf_counter()
    lmap = None
    class_table: list[dict[str, Any]] = []
    if labels is not None:
        lmap = read_labels(labels, ts.grid, class_field=class_field, classes=table)
        counts = lmap.counts()
        if not counts:
            raise InputError(f"{labels}: no labelled pixel (every value is 0 / nodata)")
        class_table = lmap.classes
        label_txt = f"labels: {sum(counts.values())} labelled pixels in {len(counts)} classes"
    else:
        label_txt = "no labels: pretraining and forecast head only (no classifier)"
    class_ids = [int(c["id"]) for c in class_table]
    target = dcfg.target_dates(ts.dates[0])
    say(f"{ts.source}: {len(ts)} dates, {ts.grid.width}x{ts.grid.height} px; {label_txt}")

    # ---- samples
    common = dict(indices=dcfg.indices, min_valid=dcfg.min_valid, target_dates=target,
                  patch_size=dcfg.patch_size, patch_bands=patch_bands if from_stack else (dcfg.patch_bands or None),
                  reference=dcfg.reference, block=dcfg.block, progress=progress)
    unl = sample_pixels(ts, dcfg.pretrain_samples, seed=cfg.seed, **common)
    if len(unl) == 0:
        raise InputError(f"{ts.source}: no pixel has {dcfg.min_valid} or more valid observations (data.min_valid)")
    lab = sample_pixels(ts, labels=lmap, per_class=dcfg.per_class or None, seed=cfg.seed + 1, **common) if lmap else None
    stages["sampling"] = time.perf_counter() - t0
    if lab is not None and len(lab) == 0:
        raise InputError(f"{labels}: no labelled pixel has {dcfg.min_valid} or more valid observations")
    n_lab = len(lab) if lab is not None else 0
    say(f"sampled {len(unl)} pixels for pretraining and {n_lab} labelled pixels in {stages['sampling']:.1f} s")

    # ---- model
    T = unl.n_dates
    fc_plan = None
    if cfg.forecast.enabled and T >= 8 and cfg.forecast.index in dcfg.indices:
        fc_plan = forecast_plan(T, cfg.forecast.horizon or None, cfg.forecast.input_len or None)
    mdict = dict(cfg.model)
    mdict.setdefault("rp", {"size": 16} if T > 16 else {})
    try:
        mcfg = PimcModelConfig.from_dict({
            **mdict,
            "indices": dcfg.indices, "n_dates": T,
            "patch_bands": unl.patch_bands if dcfg.patch_size else (),
            "patch_size": dcfg.patch_size or 1,
            "n_classes": len(class_ids),
            "forecast_horizon": fc_plan[1] if fc_plan else 0,
            "forecast_input": fc_plan[0] if fc_plan else 0,
            "forecast_index": cfg.forecast.index,
        })
    except ConfigError as e:
        raise ConfigError(f"fit config model: {e}") from None
    torch.manual_seed(cfg.seed)
    net = PimcNet(mcfg)
    net.set_normalisation(compute_normalisation(unl.series, unl.patches))

    # ---- pretraining
    t0 = time.perf_counter()
    pre_summary: dict[str, Any] = {"steps": 0}
    if cfg.pretrain.steps and mcfg.has_patch:
        pcfg = dataclasses.replace(cfg.pretrain, seed=cfg.seed, batch_size=min(cfg.pretrain.batch_size, len(unl)))
        res = pretrain(net, unl.series, unl.patches, pcfg, checkpoint_dir=cfg.checkpoint_dir or None,
                       device=dev, progress=progress, log=say)
        pre_summary = res.summary()
    stages["pretrain"] = time.perf_counter() - t0

    # ---- classifier
    ft_summary: dict[str, Any] = {"steps": 0}
    train_metrics: dict[str, Any] = {}
    classify_modalities: list[str] | None = None
    if lab is not None:
        from pimc_core.learn.input_selection import InputChoice, choose_classifier_inputs, labelled_regions

        fcfg = dataclasses.replace(cfg.finetune, seed=cfg.seed)
        if cfg.classifier_inputs == "auto":
            t0 = time.perf_counter()
            region = labelled_regions(lmap.array)[lab.rows, lab.cols]
            choice = choose_classifier_inputs(net, lab.series, lab.patches, lab.labels, region, class_ids, fcfg,
                                              device=dev, progress=progress)
            stages["input_selection"] = time.perf_counter() - t0
        else:
            choice = InputChoice.configured(cfg.classifier_inputs)
        say(f"classifier inputs: {choice.inputs} ({choice.reason})")
        t0 = time.perf_counter()
        ft_summary = finetune_classifier(net, lab.series, lab.patches, lab.labels, class_ids, fcfg, device=dev,
                                         progress=progress)
        stages["finetune"] = time.perf_counter() - t0
        classify_modalities = choice.modalities(lab.patches is not None)
        ft_summary["inputs"] = choice.summary()
        prob = predict_proba(net, lab.series, lab.patches if "patch" in classify_modalities else None, device=dev)
        from pimc_core.learn.finetune import classification_metrics

        train_metrics = classification_metrics(lab.labels, np.asarray(class_ids)[prob.argmax(1)], class_ids)

    # ---- forecaster
    fc_summary = None
    if fc_plan is not None:
        t0 = time.perf_counter()
        L, h = fc_plan
        ci = list(dcfg.indices).index(cfg.forecast.index)
        wins = sample_windows(ts, unl, L, h, ci, max_windows=cfg.forecast.max_windows or None,
                              min_valid=dcfg.min_valid, block=dcfg.block)
        fc_summary = train_forecaster(net, wins, dataclasses.replace(cfg.forecast.finetune, seed=cfg.seed),
                                      device=dev, progress=progress)
        fc_summary.update({"input_len": L, "horizon": h})
        stages["forecast"] = time.perf_counter() - t0

    # ---- save
    net.to("cpu")
    seconds = time.perf_counter() - t_start
    training = {
        "workflow": "pimc fit",
        "source": str(ts.source),
        "labels": str(labels) if labels is not None else None,
        "config": _jsonable_config(cfg),
        "samples": {"pretrain": len(unl), "labelled": n_lab,
                    "per_class": {str(k): v for k, v in lab.class_counts().items()} if lab is not None else {}},
        "pretrain": pre_summary,
        "finetune": ft_summary,
        "forecast": fc_summary,
        "train_metrics": {k: v for k, v in train_metrics.items() if k != "confusion"},
        "seconds": round(seconds, 1),
        "stages": {k: round(v, 1) for k, v in stages.items()},
        "seed": cfg.seed,
        "classify_modalities": classify_modalities,
        "device": str(dev),
        "threads": threads,
    }
    path = save_pixel_model(
        out, net, classes=class_table, dates=dcfg.date_spec(), training_dates=unl.dates,
        min_valid=dcfg.min_valid, patch_reference=unl.reference or "median", training=training,
    )
    return FitResult(path, time.perf_counter() - t_start, stages, len(unl), n_lab, class_table, train_metrics,
                     pre_summary, ft_summary, fc_summary)


def _jsonable_config(cfg: FitConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
