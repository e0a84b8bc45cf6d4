"""The forest weight of the classifier ensemble, chosen on held-out fields.

The map's class probabilities are ``(1 - w) * network + w * forest``
(:mod:`pimc_core.learn.ensemble`). Which ``w`` is best depends on the scene: where the labelled
fields show the other fields' crop calendars well, the network is ahead; where fields of a class
differ more than the labelled few show, the forest generalises better. Spatial cross-validation
(:mod:`pimc_core.fit.validation`) gives, for every labelled pixel, the out-of-fold probabilities
of a network and a forest trained without its region; :func:`weight_scores` scores every
candidate ``w`` on them (pooled accuracy and the accuracy of each fold), :func:`pick_weight`
takes the best, and when the folds cannot separate it from other candidates (the pooled
difference is within ``tolerance`` standard errors of the paired fold differences) the one
nearest ``prefer`` among them: the check's resolution is a few points with a few dozen labelled
fields, and an undecided check should fall on the safer side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["WeightChoice", "choose_forest_weight", "pick_weight", "weight_scores"]

#: Scores: candidate weight -> (pooled accuracy, [accuracy of each fold]).
Scores = Mapping[float, tuple[float, Sequence[float]]]


@dataclass
class WeightChoice:
    """A forest weight chosen on cross-validation folds.

    Attributes:
        weight: the chosen ``w``.
        reason: one line: how it was chosen.
        scores: candidate ``w`` -> (pooled accuracy, accuracies of the folds).
        prefer, tolerance: the rule's settings (:func:`pick_weight`).
    """

    weight: float
    reason: str
    scores: dict[float, tuple[float, list[float]]] = field(default_factory=dict)
    prefer: float = 0.5
    tolerance: float = 1.0

    def summary(self) -> dict[str, Any]:
        """The model file's ``training["ensemble"]["choice"]`` (plain JSON values). The accuracies are
        stored unrounded: :func:`pick_weight` on :meth:`scores_from_summary` then makes the same
        choice (rounded to 4 digits, a weight exactly 1 SE behind, as when a single fold differs,
        could land on either side)."""
        return {"weight": self.weight, "reason": self.reason, "prefer": self.prefer, "tolerance": self.tolerance,
                "accuracy": {f"{w:g}": float(a) for w, (a, _) in self.scores.items()},
                "fold_accuracy": {f"{w:g}": [float(x) for x in f] for w, (_, f) in self.scores.items()}}

    @staticmethod
    def scores_from_summary(summary: Mapping[str, Any]) -> dict[float, tuple[float, list[float]]]:
        """The ``scores`` of a stored :meth:`summary`."""
        return {float(w): (float(a), [float(x) for x in summary["fold_accuracy"][w]])
                for w, a in summary["accuracy"].items()}


def weight_scores(y: np.ndarray, fold: np.ndarray, p_net: np.ndarray, p_for: np.ndarray,
                  candidates: Sequence[float]) -> dict[float, tuple[float, list[float]]]:
    """Accuracy of every mix ``(1 - w) * p_net + w * p_for``.

    Args:
        y: (N,) class index of each labelled pixel (column of the probabilities).
        fold: (N,) the fold that held each pixel out.
        p_net, p_for: (N, K) out-of-fold probabilities of the network and of the forest.
        candidates: the weights ``w`` in [0, 1].

    Returns:
        ``{w: (pooled accuracy, [accuracy of each fold, in fold order])}``.
    """
    y, fold = np.asarray(y), np.asarray(fold)
    folds = np.unique(fold)
    out = {}
    for w in candidates:
        hit = ((1.0 - w) * p_net + w * p_for).argmax(axis=1) == y
        out[float(w)] = (float(hit.mean()), [float(hit[fold == f].mean()) for f in folds])
    return out


def pick_weight(scores: Scores, prefer: float, tolerance: float) -> tuple[float, str]:
    """The weight of :func:`weight_scores`' ``scores`` to use, and why.

    The best pooled accuracy wins unless other candidates are within ``tolerance`` standard
    errors of it (the standard error of the paired fold differences, ``std / sqrt(K)``); then
    the candidate nearest ``prefer`` among those (the better one when two are as near).
    """
    best = max(scores, key=lambda w: (scores[w][0], -abs(w - prefer)))
    top, top_folds = scores[best][0], np.asarray(scores[best][1])
    level = []
    for w, (acc, folds) in scores.items():
        d = top_folds - np.asarray(folds)
        se = float(np.std(d, ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
        if top - acc <= tolerance * se + 1e-12:
            level.append(w)
    pick = min(level, key=lambda w: (abs(w - prefer), -scores[w][0]))
    if pick == best:
        why = f"best held-out accuracy {top:.3f}"
        if len(level) > 1:
            why += f"; {len(level) - 1} other weight(s) within {tolerance:g} SE, this one nearest {prefer:g}"
    else:
        why = (f"held-out accuracy {scores[pick][0]:.3f}, within {tolerance:g} SE of the best ({best:g}: {top:.3f}); "
               f"nearest the preferred weight {prefer:g}")
    return pick, why


def choose_forest_weight(y: np.ndarray, fold: np.ndarray, p_net: np.ndarray, p_for: np.ndarray,
                         candidates: Sequence[float], *, prefer: float, tolerance: float) -> WeightChoice:
    """:func:`weight_scores` then :func:`pick_weight` (arrays as in :func:`weight_scores`)."""
    scores = weight_scores(y, fold, p_net, p_for, candidates)
    w, why = pick_weight(scores, prefer, tolerance)
    return WeightChoice(w, why, scores, float(prefer), float(tolerance))
