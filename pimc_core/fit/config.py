"""The parameters of fitting a PIMC pixel model: :class:`FitConfig` and its sections.

A :class:`FitConfig` is what ``pimc fit`` reads from YAML (one section per attribute: ``data``,
``model``, ``pretrain``, ``finetune``, ``forecast``, plus a few top-level keys; unknown keys are
a :class:`~pimc_core.errors.ConfigError` naming them). :class:`DataConfig` (what is sampled from
a stack) and :class:`ForecastConfig` (the forecast head) are shared with the training commands
(``training/config.py``), and so are the sections and settings of :class:`FitSections`, which
both configs extend. Every parameter is declared with its constraint
(:func:`pimc_core.config.param`); rules that tie several together are in ``_check``.

The defaults are sized for a 2-core CPU: a 256 x 256 px, 30-date stack is fitted in a few minutes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar

import numpy as np

from pimc_core.config import (
    COUNT,
    POSITIVE_INT,
    Checked,
    StrOptions,
    apply_overrides,
    config_from_mapping,
    declared,
    load_yaml_config,
    param,
    with_section_defaults,
)
from pimc_core.errors import ConfigError
from pimc_core.learn.ensemble import EnsembleConfig
from pimc_core.learn.finetune import FinetuneConfig
from pimc_core.learn.input_selection import INPUT_SETS
from pimc_core.learn.pretrain import AugmentConfig, PretrainConfig

__all__ = ["DataConfig", "FitConfig", "FitSections", "ForecastConfig", "as_fit_config", "jsonable_config", "load_fit_config"]


@declared
@dataclass
class DataConfig(Checked):
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

    indices: tuple[str, ...] = param(("ndvi", "evi", "savi"), tuple, list)  # known names: _check
    min_valid: int = param(3, POSITIVE_INT)
    dates: str = param("auto", StrOptions({"auto", "observed", "grid"}))
    step_days: int = param(10, POSITIVE_INT)
    start_doy: int = param(1, POSITIVE_INT)
    n_dates: int = param(0, COUNT)
    patch_size: int = param(9, COUNT)
    patch_bands: tuple[str, ...] = param((), tuple, list)
    reference: str = param("median", str)  # a reference stack_reference knows: _check
    pretrain_samples: int = param(16384, POSITIVE_INT)
    per_class: int = param(1500, COUNT)
    block: int = param(256, POSITIVE_INT)

    _config_name: ClassVar[str] = "data"

    def _check(self) -> None:
        from pimc_core.series.composites import stack_reference
        from pimc_core.series.indices import INDICES

        for i in self.indices:
            if i.lower() not in INDICES:
                raise ConfigError(f"data.indices: unknown index {i!r} (known: {', '.join(INDICES)})")
        self.indices = tuple(i.lower() for i in self.indices)
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
        """Dates of the grid (``n_dates``, or one year of ``step_days`` steps)."""
        return self.n_dates or max(2, int(np.ceil(365 / self.step_days)))


def _forecast_finetune() -> FinetuneConfig:
    return FinetuneConfig(epochs=25, lr=2e-3, freeze=True, modality_dropout=0.0, label_smoothing=0.0, batch_size=512)


@declared
@dataclass
class ForecastConfig(Checked):
    """The forecast head of a fitted model.

    Attributes:
        enabled: train one.
        horizon, input_len: ``h`` and ``L`` (0: :func:`pimc_core.learn.forecast.forecast_plan`).
        index: the index forecast.
        max_windows: training windows ``[o, o + L + h)`` per pixel, the latest ones (0: all).
        finetune: its training (frozen encoders by default: cheap, the head learns a residual
            on persistence).
    """

    enabled: bool = param(True, "boolean")
    horizon: int = param(0, COUNT)
    input_len: int = param(0, COUNT)
    index: str = param("ndvi", str)
    max_windows: int = param(4, COUNT)
    finetune: FinetuneConfig = param(FinetuneConfig, factory=_forecast_finetune)

    _config_name: ClassVar[str] = "forecast"


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
    # classes weighted by their share of the pixels to the power -0.5 (class_weight 0.5): with the
    # network's round on the pseudo-labels (ensemble.network_rounds 1), a class with one labelled
    # pixel and hardly any pseudo-labels is otherwise forgotten in that round; every class as heavy
    # as any other (1, the default for a few hours on 2026-12-07) let a class of 6 labelled pixels
    # take whole fields of four others under heavy clouds (docs/BENCHMARKS.md, "The class weight of
    # the network's round")
    return FinetuneConfig(epochs=1000, max_steps=180, batch_size=256, lr=3e-3, encoder_lr_scale=0.5, class_weight=0.5,
                          augment=AugmentConfig(drop_obs=0.3, series_noise=0.03, time_shift=0.5, amplitude=0.05))


#: default ``cv_folds``: see docs/BENCHMARKS.md, "Spatial cross-validation at fit time"
CV_FOLDS = 5

_Sections = TypeVar("_Sections", bound="FitSections")

#: what ``classifier_inputs`` accepts: ``auto`` or an input set
CLASSIFIER_INPUTS = StrOptions({"auto", *INPUT_SETS})


@declared
@dataclass
class FitSections(Checked):
    """The sections and settings of a fit, declared once for ``pimc fit`` (:class:`FitConfig`) and
    the training commands (``training.config.TrainConfig``); each sets its own default sections
    where they differ.

    Attributes:
        data: :class:`DataConfig`.
        model: :class:`~pimc_core.models.pimc_net.PimcModelConfig` fields (``level``, ``rp``,
            ``rp_encoder``, ``series_encoder``, ``patch_encoder``, ``proj_dim``, ...).
        pretrain: :class:`~pimc_core.learn.pretrain.PretrainConfig` (``steps: 0`` skips pretraining).
        finetune: :class:`~pimc_core.learn.finetune.FinetuneConfig` of the classifier.
        forecast: :class:`ForecastConfig`.
        seed: everything random derives from it; one seed gives one model file whatever
            ``threads`` (training runs on one CPU thread, :func:`pimc_core.fit.pipeline.training_threads`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch CPU threads for sampling and the predictions on the training pixels
            (0: the cores not busy with other processes, :func:`pimc_core.devices.auto_threads`);
            they do not change the model.
    """

    data: DataConfig = param(DataConfig, factory=DataConfig)
    model: dict[str, Any] = param(dict, factory=dict)  # PimcModelConfig fields: checked when the network is built
    pretrain: PretrainConfig = param(PretrainConfig, factory=PretrainConfig)
    finetune: FinetuneConfig = param(FinetuneConfig, factory=FinetuneConfig)
    forecast: ForecastConfig = param(ForecastConfig, factory=ForecastConfig)
    seed: int = param(0, COUNT)
    device: str = param("auto", str)
    threads: int = param(0, COUNT)

    @classmethod
    def from_dict(cls: type[_Sections], data: Mapping[str, Any] | None) -> _Sections:
        """The config of a mapping (e.g. read from YAML): values converted to the annotated types, a
        partial section keeps the defaults of the keys it omits, unknown keys named
        (messages prefixed with ``_config_name``)."""
        return config_from_mapping(cls, with_section_defaults(cls, data or {}), cls._config_name or cls.__name__)


@declared
@dataclass
class FitConfig(FitSections):
    """Everything :func:`pimc_core.fit.fit` does (YAML: one section per attribute; unknown keys refused).

    Attributes:
        data, model, pretrain, finetune, forecast, seed, device, threads: see :class:`FitSections`
            (here a shorter pretraining and a fixed fine-tuning budget, sized for a 2-core CPU).
        checkpoint_dir: pretraining checkpoints (empty: none); a rerun resumes from them.
        classifier_inputs: what the classifier reads at prediction: ``all`` (recurrence plots,
            series and patch), ``temporal`` (no patch) or ``auto``: the better of the two on
            held-out labelled regions: the spatial cross-validation's folds (``cv_folds``), or
            without it a trial fine-tuning with a third of the regions held out
            (:func:`pimc_core.learn.input_selection.choose_classifier_inputs`); the patch only when
            it wins by more than the check's resolution; ``temporal`` when no class has two
            labelled regions.
        ensemble: :class:`~pimc_core.learn.ensemble.EnsembleConfig`: the random-forest member of
            the classifier, self-trained on the scene's pixels (``forest_weight``: its share of
            the probabilities, 0.5 by default; 0: the network alone; ``auto``: the weight chosen
            on the spatial CV's folds).
        cv_folds: the held-out accuracy stored with the model: spatial cross-validation over this
            many folds of labelled regions (:mod:`pimc_core.fit.validation`; at most one fold per
            region; the same folds choose ``classifier_inputs: auto``); 0: none (training
            accuracy only); 1 is refused. Each fold costs one fine-tuning.
        cv_jobs: folds fitted at a time, each in a worker process training on one thread
            (:func:`pimc_core.learn.spatial_cv.map_folds`); 0: ``threads`` where it is set, else
            one per CPU core (1 on a GPU); 1: one after another in this process. Not the load
            rule of ``threads`` (:func:`pimc_core.devices.busy_cores`): single-thread workers on
            a busy machine get their share of the cores without OpenMP threads waiting for each
            other. The model's weights and figures are the same whatever it is.
    """

    pretrain: PretrainConfig = param(PretrainConfig, factory=_default_pretrain)
    finetune: FinetuneConfig = param(FinetuneConfig, factory=_default_finetune)
    checkpoint_dir: str = param("", str)
    classifier_inputs: str = param("auto", CLASSIFIER_INPUTS)
    ensemble: EnsembleConfig = param(EnsembleConfig, factory=EnsembleConfig)
    cv_folds: int = param(CV_FOLDS, COUNT)  # 1: _check
    cv_jobs: int = param(0, COUNT)

    _config_name: ClassVar[str] = "fit config"

    def _check(self) -> None:
        if self.cv_folds == 1:
            raise ConfigError("cv_folds: 1 fold holds nothing out; use 2 or more (5 is usual), or 0 for none")



def with_source_indices(cfg: FitConfig, band_names: Sequence[str], log: Callable[[str], None] | None = None) -> FitConfig:
    """``cfg`` with the radar series added to ``data.indices`` (an optical source with ``--sar``)
    or used instead of them (a radar source alone) when the source's ``band_names`` hold the
    radar bands and ``data.indices`` names no radar series
    (:func:`pimc_core.series.radar.indices_for_bands`); ``log`` is told which indices are used."""
    from pimc_core.series.indices import INDICES
    from pimc_core.series.radar import indices_for_bands

    indices = indices_for_bands(cfg.data.indices, band_names, INDICES)
    if indices == tuple(cfg.data.indices):
        return cfg
    if log is not None:
        log(f"indices: {', '.join(indices)} (the source has radar bands; set data.indices to choose)")
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, indices=indices))


def load_fit_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> FitConfig:
    """A :class:`FitConfig` from a YAML file (optional) and ``key=value`` overrides."""
    data = load_yaml_config(path) if path else {}
    apply_overrides(data, overrides, FitConfig)
    return FitConfig.from_dict(data)


def as_fit_config(config: FitConfig | Mapping[str, Any] | str | os.PathLike | None) -> FitConfig:
    """A :class:`FitConfig` from itself, a mapping, a YAML path or None (the defaults)."""
    if isinstance(config, FitConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_fit_config(config)
    return FitConfig.from_dict(config)


def jsonable_config(cfg: Any) -> dict[str, Any]:
    """A config dataclass as plain JSON values (what a model file records)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
