"""Area and accuracy of a class map from a stratified random sample whose strata are not the map
classes: the estimator of Stehman 2014.

Stehman, S. V. (2014). "Estimating area and map accuracy for stratified random sampling when the
strata are different from the map classes", International Journal of Remote Sensing 35(13):
4923–4939. Stratum ``h`` holds ``N_h`` pixels of which ``n_h`` were sampled; every sample point
``u`` has a stratum, a map class and a reference class. Each quantity is the mean (a proportion)
or the ratio of the means of an indicator ``y_u`` (and ``x_u``) over the population:

* a population mean (eq. 2/3): ``ȳ̂ = Σ_h N_h ȳ_h / N`` with ``ȳ_h`` the mean of ``y_u`` over the
  sample points of stratum ``h``: overall accuracy (``y_u = 1`` when map class = reference class,
  eq. 12), the area proportion of reference class ``k`` (``y_u = 1`` when the reference class is
  ``k``, eq. 14) and cell ``(i, j)`` of the error matrix (map ``i``, reference ``j``, eq. 16);
  its variance (eq. 25): ``V̂(ȳ̂) = (1/N²) Σ_h N_h² (1 − n_h/N_h) s²_yh / n_h``;
* a ratio (eq. 27) ``R̂ = Σ_h N_h ȳ_h / Σ_h N_h x̄_h``: user's accuracy of map class ``i``
  (``y_u = 1`` when map and reference are ``i``, ``x_u = 1`` when the map class is ``i``, eq. 18/19)
  and producer's accuracy of reference class ``j`` (``x_u = 1`` when the reference class is ``j``,
  eq. 22/23); its variance (eq. 28):
  ``V̂(R̂) = (1/X̂²) Σ_h N_h² (1 − n_h/N_h) (s²_yh + R̂² s²_xh − 2 R̂ s_xyh) / n_h`` with
  ``X̂ = Σ_h N_h x̄_h`` and within-stratum sample (co)variances (divisor ``n_h − 1``).

When the strata are the map classes these formulas are those of Olofsson et al. 2014
(:func:`pimc_core.maps.accuracy.stratified_estimate`) up to the finite population correction
``1 − n_h/N_h``, which Olofsson et al. leave out (``fpc=False`` gives their values exactly; a test
checks both). Checked against the numerical example of Stehman 2014, section 4
(``tests/test_stehman.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pimc_core.errors import InputError
from pimc_core.maps.accuracy import StratifiedEstimate, _ratio, error_matrix

__all__ = ["stehman_estimate"]


def _index(values: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    """(n,) positions of ``values`` in ``ids``."""
    pos = {int(v): k for k, v in enumerate(ids.tolist())}
    unknown = sorted({int(v) for v in values.tolist()} - set(pos))
    if unknown:
        raise InputError(f"sample points in {what} {unknown}, not among {ids.tolist()}")
    return np.array([pos[int(v)] for v in values.tolist()], dtype=np.int64)


class _Strata:
    """Within-stratum means and (co)variances of indicators, and the two estimators built on them."""

    def __init__(self, h: np.ndarray, big_n: np.ndarray, fpc: bool):
        self.h = h
        self.big_n = big_n
        self.n_h = np.bincount(h, minlength=len(big_n)).astype(float)  # every stratum here has points
        fpc_h = 1 - self.n_h / np.where(big_n > 0, big_n, np.inf) if fpc else np.ones(len(big_n))
        self.scale = big_n**2 * fpc_h / self.n_h                   # N_h² (1 − n_h/N_h) / n_h (0 without pixels)

    def mean(self, y: np.ndarray) -> np.ndarray:
        """(H, K) stratum means of (n, K) values."""
        out = np.zeros((len(self.big_n), y.shape[1]))
        np.add.at(out, self.h, y)
        return out / self.n_h[:, None]

    def cov(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(H, K) within-stratum sample covariances of (n, K) ``y`` and ``x`` (divisor n_h − 1)."""
        dy, dx = y - self.mean(y)[self.h], x - self.mean(x)[self.h]
        out = np.zeros((len(self.big_n), y.shape[1]))
        np.add.at(out, self.h, dy * dx)
        return out / np.maximum(self.n_h - 1, 1)[:, None]  # one point (a stratum without pixels): 0

    def total(self, y: np.ndarray) -> np.ndarray:
        """(K,) estimated population totals ``Σ_h N_h ȳ_h``."""
        return self.big_n @ self.mean(y)

    def proportion(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((K,) population means, (K,) standard errors) of (n, K) indicators (eq. 2, 25)."""
        var = self.scale @ self.cov(y, y) / self.big_n.sum() ** 2
        return self.total(y) / self.big_n.sum(), np.sqrt(var)

    def ratio(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((K,) ratios ``Ŷ/X̂``, (K,) standard errors) of (n, K) indicators (eq. 27, 28); NaN where X̂ = 0."""
        big_x = self.total(x)
        r = _ratio(self.total(y), big_x)
        r0 = np.nan_to_num(r)
        s = self.cov(y, y) + r0**2 * self.cov(x, x) - 2 * r0 * self.cov(y, x)
        return r, np.sqrt(_ratio(self.scale @ s, big_x**2))


def stehman_estimate(stratum: Sequence[int], map_class: Sequence[int], reference: Sequence[int],
                     strata: Sequence[int], stratum_pixels: Sequence[float], classes: Sequence[int],
                     *, fpc: bool = True) -> StratifiedEstimate:
    """Stehman's (2014) estimator for a stratified random sample whose strata differ from the map classes.

    Args:
        stratum, map_class, reference: (n,) stratum, map class and reference class of each sample point.
        strata: (H,) stratum ids; ``stratum_pixels``: (H,) their sizes ``N_h`` in pixels.
        classes: (q,) class ids (map and reference), the order of the rows and columns.
        fpc: apply the finite population correction ``1 − n_h/N_h`` (Stehman's eqs. 25, 28).

    Returns:
        a :class:`~pimc_core.maps.accuracy.StratifiedEstimate`: ``counts`` are the (q, q) sample
        counts, ``proportions`` the (q, q) estimated area proportions of eq. 16, ``weights`` the
        (H,) stratum weights ``N_h / N``; user's accuracies are per map class, producer's
        accuracies and areas per reference class.

    Raises:
        InputError: a stratum, map class or reference class outside ``strata`` / ``classes``, or a
            stratum with pixels and fewer than 2 sample points.
    """
    ids = np.asarray(strata, dtype=np.int64)
    big_n = np.asarray(stratum_pixels, dtype=float)
    cls = np.asarray(classes, dtype=np.int64)
    if big_n.shape != ids.shape:
        raise InputError(f"{len(ids)} strata and {big_n.shape} stratum sizes do not match")
    h = _index(np.asarray(stratum, dtype=np.int64).ravel(), ids, "strata")
    m = _index(np.asarray(map_class, dtype=np.int64).ravel(), cls, "map classes")
    r = _index(np.asarray(reference, dtype=np.int64).ravel(), cls, "reference classes")
    n_h = np.bincount(h, minlength=len(ids))
    thin = [int(s) for s, k, big in zip(ids, n_h, big_n) if big > 0 and k < 2]
    if thin:
        raise InputError(f"strata {thin} have fewer than 2 sample points; the stratified estimator needs at least "
                         "2 per stratum")
    keep = n_h > 0  # a stratum without points has no pixels (else refused above): it adds nothing
    st = _Strata(np.cumsum(keep)[h] - 1, big_n[keep], fpc)  # points of a stratum without pixels weigh 0
    q = len(cls)
    one_m, one_r = np.eye(q)[m], np.eye(q)[r]                      # (n, q) indicators of map / reference class
    agree = one_m * one_r                                          # (n, q): map = reference = class
    oa, oa_se = st.proportion(agree.sum(axis=1, keepdims=True))    # eq. 12
    area, area_se = st.proportion(one_r)                           # eq. 14
    cells, _ = st.proportion((one_m[:, :, None] * one_r[:, None, :]).reshape(len(m), q * q))  # eq. 16
    ua, ua_se = st.ratio(agree, one_m)                             # eq. 18, 19
    pa, pa_se = st.ratio(agree, one_r)                             # eq. 22, 23
    counts = error_matrix(cls[m], cls[r], cls)
    return StratifiedEstimate(cls, counts, cells.reshape(q, q), big_n / big_n.sum(), float(oa[0]), float(oa_se[0]),
                              ua, ua_se, pa, pa_se, area, area_se)
