"""The training and model configurations declare their parameters (pimc_core.config.Checked):
the values the hand-written checks refused are refused, with one line naming the parameter and
the value; infinities and booleans given for numbers, which some of those checks let through,
are refused too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pimc_core.errors import ConfigError, InputError
from pimc_core.learn.augment import AugmentConfig
from pimc_core.learn.finetune import FinetuneConfig
from pimc_core.learn.pretrain import PretrainConfig
from pimc_core.models.encoders import EncoderConfig
from pimc_core.models.model_metadata import ModelMetadata
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.tempcnn import CNN1DConfig

REFUSED = [
    (AugmentConfig, "drop_obs", 1.0), (AugmentConfig, "series_noise", -0.1), (AugmentConfig, "patch_noise", "x"),
    (PretrainConfig, "batch_size", 0), (PretrainConfig, "steps", -1), (PretrainConfig, "steps", 1.5),
    (PretrainConfig, "modality_dropout", 1.0), (PretrainConfig, "reconstruct", -0.5), (PretrainConfig, "lr", 0.0),
    (PretrainConfig, "prototypes", 1), (PretrainConfig, "log_every", True),
    (FinetuneConfig, "epochs", 0), (FinetuneConfig, "head_steps", -1), (FinetuneConfig, "head_lr", 0),
    (FinetuneConfig, "modality_dropout", -0.1),
    (EncoderConfig, "depth", 0), (EncoderConfig, "kernel_size", 4), (EncoderConfig, "dropout", 1), (EncoderConfig, "pool", "max"),
    (CNN1DConfig, "filters", 0), (CNN1DConfig, "kernel_size", 6), (CNN1DConfig, "min_epochs", -1),
    (CNN1DConfig, "label_smoothing", 1.0), (CNN1DConfig, "lr", 0.0),
    (PimcModelConfig, "level", "bogus"), (PimcModelConfig, "n_dates", 0), (PimcModelConfig, "n_classes", -1),
    (PimcModelConfig, "forecast_anchor", "mean"),
    # let through by the hand-written checks: infinities where only a lower bound was checked,
    # booleans where a number in [0, 1) was compared
    (AugmentConfig, "series_noise", math.inf), (PretrainConfig, "lr", math.inf), (FinetuneConfig, "head_lr", math.inf),
    (CNN1DConfig, "weight_decay", math.inf), (CNN1DConfig, "noise", math.inf),
    (PretrainConfig, "modality_dropout", False), (FinetuneConfig, "modality_dropout", False),
    (CNN1DConfig, "dropout", False),
]


@pytest.mark.parametrize("cls, name, value", REFUSED)
def test_bad_values_are_refused_naming_parameter_and_value(cls, name, value):
    with pytest.raises(ConfigError, match=name) as e:
        cls(**{name: value})
    assert repr(value) in str(e.value) or str(value) in str(e.value)


def test_accepted_values_are_kept():
    assert AugmentConfig(drop_obs=0, series_noise=1).series_noise == 1  # ints are numbers
    assert PretrainConfig(augment={"drop_obs": 0.5}).augment == AugmentConfig(drop_obs=0.5)
    assert FinetuneConfig(augment={"time_shift": 2}).augment.time_shift == 2
    assert PretrainConfig(prototypes=0).prototypes == 0 and PretrainConfig(prototypes=2).prototypes == 2
    cfg = PimcModelConfig(indices=("NDVI",), patch_bands=("RED",), forecast_inputs=("Phase",), forecast_year_steps=23)
    assert cfg.indices == ("ndvi",) and cfg.patch_bands == ("red",) and cfg.forecast_inputs == ("phase",)
    assert cfg.forecast_year_steps == 23.0 and isinstance(cfg.forecast_year_steps, float)
    assert EncoderConfig.preset("tiny").width == 8
    meta = ModelMetadata(n_dates=np.int64(12), patch_size=None)
    assert meta.n_dates == 12 and type(meta.n_dates) is int


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="prototypes must be 0 .off. or at least 2"):
        PretrainConfig(prototypes=1)
    with pytest.raises(ConfigError, match="share embed_dim"):
        PimcModelConfig(rp_encoder={"embed_dim": 16}, series_encoder={"embed_dim": 8})
    with pytest.raises(ConfigError, match="forecast_index"):
        PimcModelConfig(indices=("evi",), forecast_horizon=2)
    with pytest.raises(ConfigError, match="needs 'climatology'"):
        PimcModelConfig(forecast_anchor="climatology")
    with pytest.raises(InputError, match="newer than this PIMC"):
        ModelMetadata(format_version=2)
    with pytest.raises(ConfigError, match="format_version"):
        ModelMetadata(format_version=True)


def test_class_loss_weights_follow_the_class_shares():
    from pimc_core.learn.finetune import class_loss_weights

    y = np.array([0] * 90 + [1] * 10)
    w = class_loss_weights(y, 3, 1.0)
    assert w[0] * 90 == pytest.approx(w[1] * 10) and w[2] == 0  # every class as heavy; an absent one 0
    assert (w[0] * 90 + w[1] * 10) / 100 == pytest.approx(1.0)  # the mean weight of a pixel is 1
    h = class_loss_weights(y, 3, 0.5)
    assert h[1] / h[0] == pytest.approx(3.0)  # the inverse square root of the shares (0.9 / 0.1)
    np.testing.assert_allclose(class_loss_weights(y, 2, 0.0), [1.0, 1.0])
    with pytest.raises(ConfigError, match="class_weight"):
        FinetuneConfig(class_weight=1.5)


def test_class_weight_cap_limits_a_rare_class():
    from pimc_core.learn.finetune import class_loss_weights

    y = np.array([0] * 3000 + [1] * 6 + [2] * 300)
    w = class_loss_weights(y, 3, 1.0)
    assert w[1] / w[0] == pytest.approx(500.0)  # 6 pixels as heavy as 3000
    c = class_loss_weights(y, 3, 1.0, cap=10)
    assert c[1] / c[0] == pytest.approx(10.0) and c[2] / c[0] == pytest.approx(10.0)  # both at the cap
    assert (c * np.bincount(y)).sum() / len(y) == pytest.approx(1.0)  # still a mean pixel weight of 1
    m = class_loss_weights(y, 3, 1.0, cap=20)
    assert m[2] / m[0] == pytest.approx(10.0) and m[1] / m[0] == pytest.approx(20.0)  # under the cap: unchanged
    assert FinetuneConfig().class_weight_cap == 0  # no limit unless asked
    with pytest.raises(ConfigError, match="class_weight_cap"):
        FinetuneConfig(class_weight_cap=0.5)
