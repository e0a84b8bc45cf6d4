"""Where to label next, by coverage: points that are diverse in the model's embedding space, far
from what is labelled already, and uncertain.

Why beside plain uncertainty sampling (:mod:`pimc_core.maps.suggest`): with a few labelled fields
per class the map's errors are *whole fields* whose crop calendar differs from the labelled fields
of their class, and the network is often confident on such a field, so the field's pixels have a
low entropy and uncertainty sampling passes them by. What gives such a field away is that its
pixels lie far, in the embedding space, from every labelled pixel. So each candidate gets a weight

    ``w = novelty × (uncertainty + median uncertainty of the candidates)``

where *novelty* is the cosine distance ``1 − cos`` from the candidate's embedding to the nearest
labelled pixel's (1 for every candidate when nothing is labelled); the added median keeps a
confident but novel pixel in play. The N points are then the *weighted k-means* batch of Zhdanov
(2019, "Diverse mini-batch active learning", arXiv:1901.05954): k-means with ``k = N`` on the
L2-normalised embeddings with those weights (scikit-learn's :class:`~sklearn.cluster.KMeans`,
``sample_weight``), and from each cluster the candidate nearest its centre. Clusters spread the
points over the kinds of pixels the scene has (one field type does not take many points); the
weights pull the centres toward the unlabelled, unsure kinds. In place of an empty cluster comes
the heaviest candidate not chosen.

Everything here is numpy and scikit-learn on the candidates that
:class:`pimc_core.maps.suggest.SuggestJob` keeps (one pixel per cell and predicted class), so the
cost does not grow with the raster beyond that.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STRATEGIES", "coverage_pick", "novelty"]

#: How ``pimc suggest`` chooses its points, the default first: ``coverage`` (this module) or
#: ``uncertainty`` (:mod:`pimc_core.maps.suggest`'s heuristic).
STRATEGIES = ("coverage", "uncertainty")

#: Rows of the candidate × labelled similarity matrix computed at once.
_CHUNK = 4096


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def novelty(emb: np.ndarray, labelled: np.ndarray | None) -> np.ndarray:
    """Cosine distance ``(n,)`` in [0, 2] of each row of ``emb (n, D)`` to its nearest row of
    ``labelled (m, D)``; all ones when ``labelled`` is None or empty."""
    if labelled is None or len(labelled) == 0:
        return np.ones(len(emb), np.float32)
    e, lab = _unit(emb), _unit(labelled)
    out = np.empty(len(e), np.float32)
    for s in range(0, len(e), _CHUNK):
        out[s:s + _CHUNK] = 1.0 - (e[s:s + _CHUNK] @ lab.T).max(axis=1)
    return np.clip(out, 0.0, 2.0)


def coverage_pick(emb: np.ndarray, uncertainty: np.ndarray, labelled: np.ndarray | None, n: int,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``n`` candidates chosen by weighted k-means (see the module docstring).

    Args:
        emb: ``(N, D)`` embeddings of the candidates.
        uncertainty: ``(N,)`` their normalised entropy in [0, 1].
        labelled: ``(M, D)`` embeddings of labelled pixels, or None.
        n: points to choose (``1 <= n <= N``).
        seed: k-means seed.

    Returns:
        ``(idx, nov)``: ``(n,)`` distinct indices into the candidates, and ``(N,)`` every
        candidate's novelty.
    """
    from sklearn.cluster import KMeans

    emb = np.asarray(emb, np.float32)
    u = np.asarray(uncertainty, np.float64)
    if not 1 <= n <= len(emb):
        raise ValueError(f"coverage_pick: n must be in 1..{len(emb)}; got {n}")
    nov = novelty(emb, labelled)
    w = nov.astype(np.float64) * (u + float(np.median(u)))
    if not np.any(w > 0):
        w = np.ones_like(w)
    e = _unit(emb)
    if n == len(e):
        return np.arange(n), nov
    km = KMeans(n_clusters=n, n_init=1, random_state=int(seed) % (2**31)).fit(e, sample_weight=w)
    dist = km.transform(e)  # (N, n) distance to every centre
    chosen: list[int] = []
    for c in range(n):  # clusters do not share members, so no candidate is picked twice
        members = np.flatnonzero(km.labels_ == c)
        if members.size:
            chosen.append(int(members[np.argmin(dist[members, c])]))
    if len(chosen) < n:  # empty clusters: the heaviest candidates left
        taken = np.zeros(len(e), bool)
        taken[chosen] = True
        rest = np.flatnonzero(~taken)
        rest = rest[np.argsort(-w[rest], kind="stable")][: n - len(chosen)]
        chosen.extend(int(i) for i in rest)
    return np.asarray(chosen, np.int64), nov
