"""Area and accuracy of a class map from a stratified random sample: the estimator of Olofsson et al. 2014.

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
"Good practices for estimating area and assessing accuracy of land change", Remote Sensing of
Environment 148: 42–57. The strata are the map classes: stratum ``i`` holds ``N_i`` pixels
(weight ``W_i = N_i / N``) of which ``n_i·`` were sampled; ``n_ij`` sample points of map class
``i`` have reference class ``j``. With ``q = number of classes`` and ``A`` the mapped area:

* estimated area proportions (their eq. 4, 9): ``p̂_ij = W_i n_ij / n_i·``, ``p̂_·j = Σ_i p̂_ij``;
* overall accuracy ``Ô = Σ_j p̂_jj`` (eq. 1), user's accuracy ``Û_i = p̂_ii / p̂_i·`` (eq. 2),
  producer's accuracy ``P̂_j = p̂_jj / p̂_·j`` (eq. 3);
* their variances: ``V(Ô) = Σ_i W_i² Û_i (1 − Û_i) / (n_i· − 1)`` (eq. 5),
  ``V(Û_i) = Û_i (1 − Û_i) / (n_i· − 1)`` (eq. 6) and eq. 7 for ``V(P̂_j)``, with
  ``N̂_·j = Σ_i N_i n_ij / n_i·``;
* the standard error of an area proportion ``S(p̂_·k) = sqrt(Σ_i W_i² (n_ik/n_i·)(1 − n_ik/n_i·) / (n_i· − 1))``
  (eq. 10); the area ``Â_k = A p̂_·k`` and its standard error ``S(Â_k) = A S(p̂_·k)`` (eq. 11);
* 95 % confidence intervals as half-widths ``1.96 × SE``;
* the sample size for a target standard error of overall accuracy (eq. 13):
  ``n = (Σ_i W_i S_i / S(Ô))²`` with ``S_i = sqrt(U_i (1 − U_i))`` from expected user's accuracies.

These are Stehman's (2014) estimators with the map classes as strata and without the finite
population correction, so :func:`stratified_estimate` computes them with
:func:`pimc_core.maps.stehman.stehman_estimate` (one implementation of the formulas; a test holds
the two forms to each other within 1e-12). It is checked against the worked example of the paper's section 5 (``tests/test_assessment.py``:
deforestation 21,158 ± 6,158 ha) and against a hand computation of a small example; the sample
counts match scikit-learn's ``confusion_matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pimc_core.errors import InputError

__all__ = ["Z95", "StratifiedEstimate", "error_matrix", "sample_size", "stratified_estimate"]

#: the normal quantile of a two-sided 95 % interval
Z95 = 1.96


@dataclass(frozen=True)
class StratifiedEstimate:
    """What the stratified estimator gives for ``q`` classes (map class ``i`` = stratum ``i``).

    Attributes:
        classes: (q,) class ids, the order of every row and column below.
        counts: (q, q) sample counts ``n_ij`` (rows map class, columns reference class).
        proportions: (q, q) estimated area proportions ``p̂_ij``.
        weights: (q,) stratum weights ``W_i = N_i / N`` ((H,) with H strata other than the map
            classes, :func:`pimc_core.maps.stehman.stehman_estimate`).
        overall_accuracy, overall_accuracy_se: ``Ô`` and its standard error.
        users_accuracy, users_accuracy_se: (q,) ``Û_i`` and standard errors (NaN without samples).
        producers_accuracy, producers_accuracy_se: (q,) ``P̂_j`` and standard errors (NaN when the
            class has no estimated area).
        area_proportion, area_proportion_se: (q,) ``p̂_·j`` and standard errors.
    """

    classes: np.ndarray
    counts: np.ndarray
    proportions: np.ndarray
    weights: np.ndarray
    overall_accuracy: float
    overall_accuracy_se: float
    users_accuracy: np.ndarray
    users_accuracy_se: np.ndarray
    producers_accuracy: np.ndarray
    producers_accuracy_se: np.ndarray
    area_proportion: np.ndarray
    area_proportion_se: np.ndarray


def error_matrix(map_class: Sequence[int], reference: Sequence[int], classes: Sequence[int]) -> np.ndarray:
    """(q, q) sample counts ``n_ij``: rows ``classes`` as mapped, columns as referenced.

    Args:
        map_class, reference: (n,) class ids of the sample points; every id must be in ``classes``.
        classes: (q,) class ids.

    Raises:
        InputError: a class id of a point is not in ``classes``.
    """
    classes = np.asarray(classes)
    m = np.asarray(map_class).ravel()
    r = np.asarray(reference).ravel()
    index = {int(c): k for k, c in enumerate(classes)}
    unknown = sorted({int(v) for v in np.concatenate([m, r]) if int(v) not in index})
    if unknown:
        raise InputError(f"sample points with classes {unknown} that are not among the classes {classes.tolist()}")
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(counts, ([index[int(v)] for v in m], [index[int(v)] for v in r]), 1)
    return counts


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def stratified_estimate(counts: np.ndarray, stratum_pixels: Sequence[float],
                        classes: Sequence[int] | None = None) -> StratifiedEstimate:
    """The stratified estimator with map classes as strata (Olofsson et al. 2014, eqs. 1–11).

    Args:
        counts: (q, q) sample counts ``n_ij`` (rows map class = stratum, columns reference class).
        stratum_pixels: (q,) mapped pixels ``N_i`` of each class.
        classes: (q,) class ids (default 1..q).

    Raises:
        InputError: a mapped class (``N_i > 0``) with fewer than 2 sample points (its variance
            needs ``n_i· − 1 > 0``), or no mapped pixel at all.
    """
    from pimc_core.maps.stehman import stehman_estimate  # the general form (it imports this module)

    n = np.asarray(counts)
    big_n = np.asarray(stratum_pixels, dtype=float)
    q = n.shape[0]
    if n.shape != (q, q) or big_n.shape != (q,):
        raise InputError(f"error matrix {n.shape} and {big_n.shape} stratum sizes do not match")
    if n.size and (np.any(n < 0) or np.any(n != np.round(n))):
        raise InputError("the error matrix holds sample counts: non-negative whole numbers")
    n = n.astype(np.int64)
    cls = np.arange(1, q + 1) if classes is None else np.asarray(classes)
    if big_n.sum() <= 0:
        raise InputError("the map has no classified pixel")
    n_i = n.sum(axis=1)
    thin = [int(c) for c, ni, nn in zip(cls, n_i, big_n) if nn > 0 and ni < 2]
    if thin:
        raise InputError(f"classes {thin} are mapped but have fewer than 2 sample points; the stratified "
                         "estimator needs at least 2 per mapped class (see pimc sample-design)")
    rows, cols = np.nonzero(n)                           # the sample points, one per count
    mapped, referenced = np.repeat(cls[rows], n[rows, cols]), np.repeat(cls[cols], n[rows, cols])
    return stehman_estimate(mapped, mapped, referenced, cls, big_n, cls, fpc=False)


def sample_size(weights: Sequence[float], expected_ua: Sequence[float] | float, target_se: float) -> int:
    """Total sample size for a target standard error of overall accuracy (Olofsson et al. 2014, eq. 13).

    ``n = (Σ_i W_i S_i / S(Ô))²`` with ``S_i = sqrt(U_i (1 − U_i))``, rounded up.

    Args:
        weights: (q,) stratum weights ``W_i`` (mapped area proportions).
        expected_ua: (q,) expected user's accuracies ``U_i`` in [0, 1], or one value for every class.
        target_se: the standard error ``S(Ô)`` wanted, > 0.
    """
    w = np.asarray(weights, dtype=float)
    u = np.broadcast_to(np.asarray(expected_ua, dtype=float), w.shape)
    s = np.sqrt(u * (1 - u))
    return int(np.ceil((np.sum(w * s) / target_se) ** 2 - 1e-9))
