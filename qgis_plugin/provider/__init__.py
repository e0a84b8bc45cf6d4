"""The PIMC Processing provider (id ``pimc``) and its algorithms.

Each algorithm is a thin layer over ``pimc_core``: parameters → one shared helper that opens the
series (:mod:`.common`) → the same core functions the ``pimc`` command line calls. New tools add
their class to :data:`ALGORITHMS`.
"""

from __future__ import annotations

from .accuracy_alg import AssessAlgorithm, SampleDesignAlgorithm
from .fit_alg import FitAlgorithm
from .indices_alg import IndicesAlgorithm
from .maps_alg import ClassifyAlgorithm, ClusterAlgorithm, EmbedAlgorithm, ForecastAlgorithm, SimilarityAlgorithm
from .phenology_alg import PhenologyAlgorithm
from .provider import PimcProvider
from .recurrence_alg import RecurrencePlotAlgorithm
from .suggest_alg import SuggestAlgorithm

#: Algorithm classes the provider loads, in menu order.
ALGORITHMS = [
    IndicesAlgorithm, RecurrencePlotAlgorithm,
    FitAlgorithm,
    ClassifyAlgorithm, ForecastAlgorithm, EmbedAlgorithm, ClusterAlgorithm, SimilarityAlgorithm,
    PhenologyAlgorithm, SuggestAlgorithm,
    SampleDesignAlgorithm, AssessAlgorithm,
]

__all__ = [
    "ALGORITHMS", "AssessAlgorithm", "ClassifyAlgorithm", "ClusterAlgorithm", "EmbedAlgorithm", "FitAlgorithm", "ForecastAlgorithm",
    "IndicesAlgorithm", "PhenologyAlgorithm", "PimcProvider", "RecurrencePlotAlgorithm", "SampleDesignAlgorithm", "SimilarityAlgorithm",
    "SuggestAlgorithm",
]
