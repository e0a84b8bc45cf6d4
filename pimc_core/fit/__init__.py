"""Fitting a PIMC pixel model: ``pimc fit`` and the training steps every workflow shares.

* :mod:`pimc_core.fit.config`: :class:`FitConfig` and its sections (:class:`DataConfig`,
  :class:`ForecastConfig`), read from YAML and ``key=value`` overrides;
* :mod:`pimc_core.fit.pipeline`: the steps (sample, build the network, pretrain, choose the
  classifier's inputs, fine-tune, forecast head, save), also composed by ``python -m training``;
* :mod:`pimc_core.fit.workflow`: :func:`fit`, the steps in order on one stack → one ``.pimc`` file.
"""

from __future__ import annotations

from pimc_core.config import apply_overrides, config_from_mapping
from pimc_core.fit.config import DataConfig, FitConfig, ForecastConfig, load_fit_config
from pimc_core.fit.workflow import FitResult, fit

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
