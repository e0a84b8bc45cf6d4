"""The PIMC Processing provider (id ``pimc``) and its algorithms.

Each algorithm is a thin layer over ``pimc_core``: parameters → one shared helper that opens the
series (:mod:`.common`) → the same core functions the ``pimc`` command line calls. New tools
(fit, classify, forecast, cluster, similarity) add their class to :data:`ALGORITHMS`.
"""

from __future__ import annotations

from .indices_alg import IndicesAlgorithm
from .provider import PimcProvider
from .recurrence_alg import RecurrencePlotAlgorithm

#: Algorithm classes the provider loads, in menu order.
ALGORITHMS = [IndicesAlgorithm, RecurrencePlotAlgorithm]

__all__ = ["ALGORITHMS", "IndicesAlgorithm", "PimcProvider", "RecurrencePlotAlgorithm"]
