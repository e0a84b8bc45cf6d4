"""The parameters of the pixel-series classifier, declared once.

:class:`SeriesModelConfig` is the declaration: every parameter of
:class:`~pimc_core.estimators.series_classifier.SeriesClassifier` with its default, its meaning
and its accepted values (``_parameter_constraints``, scikit-learn's vocabulary, checked by
:func:`pimc_core.config.check_params`). The estimator takes the same names as keyword arguments
and checks them against the same constraints in ``fit``; ``python -m training series`` builds the
config from ``--model`` (a :data:`PRESETS` name), ``--config`` YAML and ``--set KEY=VALUE``
(:meth:`SeriesModelConfig.from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from pimc_core.config import Checked, Integral, Interval, Real, config_from_mapping, declared, param
from pimc_core.errors import ConfigError

__all__ = ["BRANCHES", "PRESETS", "SeriesModelConfig", "check_series_rules"]

#: The encoders a series model may use.
BRANCHES = ("series", "rp")


def _at_least(lo: int) -> Interval:
    return Interval(Integral, lo, None, closed="left")


def _within(lo: float, hi: float) -> Interval:
    return Interval(Real, lo, hi, closed="both")


def check_series_rules(obj: Any, where: str) -> None:
    """Rules that the declared constraints cannot state: ``branches`` is a non-empty subset of
    :data:`BRANCHES` without repeats, ``series_kernel`` odd, ``rk_hydra_groups`` even and
    ``device`` one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``.

    Args:
        obj: a :class:`SeriesModelConfig` or a ``SeriesClassifier`` (the same attributes).
        where: the prefix of the messages.

    Raises:
        ConfigError: ``"{where}.{name} must be ...; got {value!r}"``.
    """
    branches = (obj.branches,) if isinstance(obj.branches, str) else tuple(obj.branches)
    if not branches or any(b not in BRANCHES for b in branches) or len(set(branches)) != len(branches):
        raise ConfigError(f"{where}.branches must be a non-empty subset of {BRANCHES}; got {obj.branches!r}")
    if obj.series_kernel % 2 == 0:
        raise ConfigError(f"{where}.series_kernel must be odd; got {obj.series_kernel!r}")
    if obj.rk_hydra_groups % 2:
        raise ConfigError(
            f"{where}.rk_hydra_groups must be even (half see the first differences); got {obj.rk_hydra_groups!r}"
        )
    shares = obj.self_train_shares
    ok = isinstance(shares, (tuple, list)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in shares)
    if not ok or any(not 0 < v <= 1 for v in shares) or any(b <= a for a, b in zip(shares, shares[1:])):
        raise ConfigError(f"{where}.self_train_shares must be increasing numbers in (0, 1]; got {shares!r}")
    if obj.device not in ("auto", "cpu", "cuda") and not str(obj.device).startswith("cuda:"):
        raise ConfigError(f"{where}.device must be auto, cpu, cuda or cuda:N; got {obj.device!r}")


@declared
@dataclass
class SeriesModelConfig(Checked):
    """Everything that defines a ``SeriesClassifier`` run (its parameters, same names).

    Each field states its default and accepted values (:func:`param`); they make the class's
    ``_parameter_constraints``, checked when a config is made (:class:`pimc_core.config.Checked`)
    and by ``SeriesClassifier.fit``, with :func:`check_series_rules` for what ties values together.

    Attributes:
        branches: Encoders used: any non-empty subset of ``("series", "rp")``. The default is the
            series encoder alone: on our benchmarks the fused RP + series model (with or
            without contrastive pretraining) was no more accurate and costs ~2.5× the time, which
            the budget then takes away from the ensemble (see ``PRESETS["pimc"]`` for the full
            PIMC model).
        series_width: First-stage width of the 1-D series encoder.
        series_depth: Residual stages of the series encoder.
        series_kernel: First kernel size of the series encoder (odd).
        series_bins: Temporal bins of the series encoder's pooling.
        rp_width: First-stage width of the 2-D RP encoder.
        rp_depth: Residual stages of the RP encoder.
        rp_size: Largest recurrence-plot side; longer series are average-pooled to this many
            steps before the plot is built.
        rp_stem_stride: Stride of the RP encoder's stem (2 quarters its cost).
        level_plot: Add the level plot ``(x_i + x_j) / 2`` as an extra RP channel.
        diff_channel: Feed first differences to the series encoder as an extra channel.
        embed_dim: Embedding size of each encoder.
        dropout: Dropout in the encoders and the classifier.
        max_length: Longest series fed to the CNNs; longer ones are average-pooled.
        pretrain: Run PIMC contrastive pretraining (needs both branches).
        pretrain_share: Share of the training budget given to pretraining.
        pretrain_max_epochs: Cap on pretraining epochs (over train + unlabelled series).
        temperature: Initial InfoNCE temperature.
        proj_dim: Size of the contrastive projection space.
        modality_dropout: Probability, per sample, of zeroing one branch during training.
        epochs: Fine-tuning epochs per member; ``None`` chooses them from the budget.
        min_epochs: Fewest fine-tuning epochs per member when the budget is short.
        max_epochs: Most fine-tuning epochs per member.
        ensemble: Most ensemble members (fewer if the budget does not allow ``min_epochs``
            for each).
        batch_size: Fine-tuning batch size.
        pretrain_batch_size: Contrastive batch size (negatives per anchor + 1).
        lr: Peak learning rate (one-cycle).
        weight_decay: AdamW weight decay.
        label_smoothing: Cross-entropy label smoothing.
        mixup: Mixup alpha for fine-tuning (0 disables).
        augment: Strength multiplier of the fine-tuning augmentations (0 disables).
        budget_s: Wall-clock seconds for the whole fit (pretraining + fine-tuning).
        seed: Random seed.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: Use automatic mixed precision on CUDA (ignored on CPU).
        threads: Torch CPU threads (``0``: leave torch's default).
        random_kernels: Add a random-kernel member (:mod:`pimc_core.estimators.random_kernels`:
            MiniRocket/MultiRocket-style features + ridge with leave-one-out penalty choice).
            Its probabilities are mixed with the CNN ensemble's, the weight chosen on
            out-of-sample evidence: the ridge's leave-one-out decision values and the CNN
            members' predictions on the fold each member did not train on (with this member on,
            CNN member ``i`` trains on all but fold ``i mod rk_folds`` of the training series).
        rk_features: Target number of random-kernel features.
        rk_max_share: Skip the random-kernel member when its estimated cost (features of the
            training and predicted series + ridge fit) exceeds this share of ``budget_s``.
        rk_folds: Folds for the CNN members' out-of-fold predictions (random-kernel member on).
        rk_hydra_groups: Groups of competing kernels (Hydra-style counts,
            :class:`~pimc_core.estimators.competing_kernels.CompetingKernelTransform`, 8 kernels a
            group) whose features join the random-kernel features before the ridge; ``0`` (default)
            leaves them out: on the generated 24-class table they did not help (0.846 with 64
            groups vs 0.848 without).
        rk_max_length: Longest series the random-kernel member sees (longer ones are
            average-pooled to this many steps). It is separate from ``max_length`` because the
            kernel features cost only linearly in the length: long series keep their detail for
            this member while the CNNs see them pooled. When the full-length estimate exceeds
            ``rk_max_share`` of the budget, the member falls back to the CNNs' length.
        self_train_shares: Shares of the unlabelled series (``fit``'s ``X_unlabelled``, in
            ``python -m training series`` the test series) tried as pseudo-labels for the
            random-kernel ridge (:mod:`pimc_core.estimators.self_training`): the most confident,
            class-balanced share of the mixture's predictions; the share (or none) with the least
            out-of-sample log-loss of the mixture on the labelled series is kept. Increasing numbers
            in ``(0, 1]``; empty (the default): no self-training. Off by default because it did not
            pay where it was measured at size: on generated crop-like tables of 720 / 1680 and
            2400 / 5600 series the check kept no share, while its time (up to
            ``self_train_max_share`` of the budget) is taken from the CNN members, whose training
            fills the budget at the real benchmark's size (7200 / 16800); ``[0.25, 0.5, 1.0]``
            turns it on (8 labelled against 292 unlabelled series: 0.86 → 0.997).
        self_train_max_share: Most of ``budget_s`` that self-training may take (estimated from
            the multiply-adds of its ridge fits and a timed matrix product, reserved before the CNN
            members train): when all unlabelled series would take longer, the shares apply to the
            most confident ones that fit; below a tenth of them, no self-training.
    """

    branches: tuple[str, ...] = param(("series",), tuple, list, str)  # a subset of BRANCHES: check_series_rules
    series_width: int = param(32, _at_least(1))
    series_depth: int = param(3, _at_least(1))
    series_kernel: int = param(7, _at_least(1))  # odd: check_series_rules
    series_bins: int = param(4, _at_least(1))
    rp_width: int = param(16, _at_least(1))
    rp_depth: int = param(3, _at_least(1))
    rp_size: int = param(64, _at_least(2))
    rp_stem_stride: int = param(2, _at_least(1))
    level_plot: bool = param(True, "boolean")
    diff_channel: bool = param(True, "boolean")
    embed_dim: int = param(128, _at_least(1))
    dropout: float = param(0.1, _within(0.0, 0.99))
    max_length: int = param(256, _at_least(2))
    pretrain: bool = param(True, "boolean")
    pretrain_share: float = param(0.2, _within(0.0, 0.9))
    pretrain_max_epochs: int = param(20, _at_least(0))
    temperature: float = param(0.07, _within(1e-4, 10.0))
    proj_dim: int = param(64, _at_least(1))
    modality_dropout: float = param(0.1, _within(0.0, 0.9))
    epochs: int | None = param(None, _at_least(1), None)
    min_epochs: int = param(20, _at_least(1))
    max_epochs: int = param(120, _at_least(1))
    ensemble: int = param(5, _at_least(1))
    batch_size: int = param(64, _at_least(2))
    pretrain_batch_size: int = param(256, _at_least(2))
    lr: float = param(3e-3, _within(1e-7, 10.0))
    weight_decay: float = param(0.05, _within(0.0, 10.0))
    label_smoothing: float = param(0.1, _within(0.0, 0.9))
    mixup: float = param(0.0, _within(0.0, 10.0))
    augment: float = param(1.0, _within(0.0, 10.0))
    budget_s: float = param(540.0, _within(1.0, 1e7))
    seed: int = param(0, _at_least(0))
    device: str = param("auto", str)  # auto, cpu, cuda or cuda:N: check_series_rules
    amp: bool = param(True, "boolean")
    threads: int = param(0, _at_least(0))
    random_kernels: bool = param(True, "boolean")
    rk_features: int = param(10_000, _at_least(336))
    rk_max_share: float = param(0.5, _within(0.0, 0.9))
    rk_folds: int = param(5, _at_least(2))
    rk_hydra_groups: int = param(0, _at_least(0))  # even: check_series_rules
    rk_max_length: int = param(2048, _at_least(9))
    self_train_shares: tuple[float, ...] = param((), tuple, list)  # in (0, 1], increasing: check_series_rules
    self_train_max_share: float = param(0.25, _within(0.0, 0.9))

    _config_name: ClassVar[str] = "series"

    def _convert(self) -> None:
        if isinstance(self.self_train_shares, list):
            self.self_train_shares = tuple(self.self_train_shares)
        if isinstance(self.branches, str):
            self.branches = (self.branches,)
        elif isinstance(self.branches, list):
            self.branches = tuple(self.branches)

    def _check(self) -> None:
        check_series_rules(self, self._config_name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SeriesModelConfig:
        """Build from a mapping (values converted to the annotated types).

        A ``preset`` key (a name of :data:`PRESETS`) gives the starting values.

        Raises:
            ConfigError: an unknown key (named, with the known ones), an unknown preset or a bad
                value.
        """
        if isinstance(data, Mapping) and "preset" in data:
            data = dict(data)
            preset = data.pop("preset")
            if not isinstance(preset, str) or preset not in PRESETS:
                raise ConfigError(f"{cls._config_name}.preset must be one of {', '.join(PRESETS)}; got {preset!r}")
            data = {**PRESETS[preset], **data}
        return config_from_mapping(cls, data, cls._config_name)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON / YAML serialisable; ``branches`` as a list)."""
        d = dataclasses.asdict(self)
        d["branches"] = list(self.branches)
        return d

    def replace(self, **changes: Any) -> SeriesModelConfig:
        return dataclasses.replace(self, **changes)


#: Named configurations for :meth:`SeriesModelConfig.from_dict` (key ``preset``):
#: ``series`` — the 1-D series encoder ensemble (the default, best accuracy per CPU second);
#: ``pimc`` — the full PIMC model: RP encoder (+ level plot) fused with the series encoder,
#: contrastive pretraining on train + unlabelled series, modality dropout.
PRESETS: dict[str, dict[str, Any]] = {
    "series": {},
    "pimc": {"branches": ["series", "rp"], "pretrain": True, "ensemble": 3, "modality_dropout": 0.1},
}
