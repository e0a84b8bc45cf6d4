"""scikit-learn estimators on pixel-series tables.

* :class:`SeriesClassifier` — the PIMC pixel-series classifier (CNN ensemble + random-kernel
  member inside a wall-clock budget); its parameters are declared by :class:`SeriesModelConfig`.
* :class:`RandomKernelTransform`, :class:`CompetingKernelTransform` — series → kernel features
  (transformers).
* :class:`RidgeLOO` — ridge classifier with exact leave-one-out decision values.
* :mod:`~pimc_core.estimators.self_training` — the classifier's self-training of that ridge on
  pseudo-labelled unlabelled series (:func:`~pimc_core.estimators.self_training.pseudo_label_ridges`).

All are scikit-learn estimators (``clone``, ``get_params`` / ``set_params``, ``Pipeline``,
``cross_val_score``); parameters are checked in ``fit`` with :func:`pimc_core.config.check_params`.
"""

from pimc_core.estimators.competing_kernels import CompetingKernelTransform
from pimc_core.estimators.random_kernels import RandomKernelTransform
from pimc_core.estimators.ridge import RidgeLOO, softmax_temperature
from pimc_core.estimators.series_classifier import SeriesClassifier
from pimc_core.estimators.series_config import PRESETS, SeriesModelConfig

__all__ = [
    "PRESETS",
    "CompetingKernelTransform",
    "RandomKernelTransform",
    "RidgeLOO",
    "SeriesClassifier",
    "SeriesModelConfig",
    "softmax_temperature",
]
