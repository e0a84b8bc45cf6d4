"""Spatial cross-validation: how accurate a classifier is on labelled fields it did not see.

Accuracy on the training pixels says little about a map: pixels of one field share their
series and their patch, so a classifier can recognise the *fields it was given* and still fail
on the other fields of a class. An honest estimate holds out whole fields. The labelled pixels
are grouped into regions (:func:`pimc_core.learn.input_selection.labelled_regions`: pixels of one
class closer than ``reach``, so a held-out region's patches never overlap a training pixel's),
the regions are dealt into ``K`` folds (:func:`region_folds`, scikit-learn's
``StratifiedGroupKFold`` with the regions as groups: a region is never split between folds),
and each fold is predicted by a classifier trained on the other folds (``fit_fold``, given by
the caller: :func:`pimc_core.fit.pipeline.cross_validate` fine-tunes a copy of the pretrained
network, and mixes in the forest member when the map will use one).

The out-of-fold predictions are pooled (every labelled pixel is predicted once, by a classifier
that did not see its region): overall accuracy, macro-F1, per-class recall (producer's accuracy)
and the confusion matrix (rows reference, columns predicted), plus the standard error of the
accuracy over folds (``std(fold accuracies) / sqrt(K)``). One set of fold fits scores every input
set (:data:`~pimc_core.learn.input_selection.INPUT_SETS`; fine-tuning with modality dropout trains
a network for all of them), so the same folds also choose the classifier's inputs.

The folds are independent fits, so with ``jobs`` above 1 they run in worker processes
(:func:`map_folds`, joblib's process pool, as scikit-learn's ``cross_validate(n_jobs=...)``
does): each fit trains on one thread (:func:`pimc_core.fit.pipeline.training_threads`) and is
seeded, so the figures are the same at any ``jobs``; on a 2-core machine two folds at a time take
about 3/5 of the time of five in a row.

Needs two regions of every class at least (else a fold's training lacks the class):
:func:`cv_blocker` says why it is not possible. The estimate is of the pixels the labels give
(sampled up to ``per_class`` per class), not of a map's area: for that see ``pimc assess``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from pimc_core.errors import ConfigError

__all__ = ["SpatialCV", "confusion_table", "cross_validate", "cv_blocker", "describe", "map_folds", "region_folds"]

#: fit_fold(train, test) -> {input set: (n_test, K) class probabilities of the test samples}
FoldFit = Callable[[np.ndarray, np.ndarray], Mapping[str, np.ndarray]]


def cv_blocker(region: np.ndarray, labels: np.ndarray, names: Mapping[int, str] | None = None) -> str | None:
    """Why spatial cross-validation is impossible on these samples, or None when it is.

    Every class needs two labelled regions at least: with one, the fold that holds it out trains
    without the class.

    Args:
        region: (N,) region id of each sample; labels: (N,) class id of each sample.
        names: class id → name for the message.
    """
    names = names or {}
    region, labels = np.asarray(region), np.asarray(labels)
    few = [str(names.get(int(c), int(c))) for c in np.unique(labels) if np.unique(region[labels == c]).size < 2]
    if not few:
        return None
    which = f"class {few[0]} has 1 field" if len(few) == 1 else f"classes {', '.join(few)} have 1 field each"
    return f"spatial CV not possible: {which} (each class needs 2 separate labelled fields)"


def region_folds(region: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of each sample: (N,) int in ``[0, k)``, ``k = min(folds, regions)``; the samples of
    one region always share a fold (``sklearn.model_selection.StratifiedGroupKFold``, shuffled by
    ``seed``, balancing the classes over folds).

    Args:
        region: (N,) region id of each sample; labels: (N,) class id.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if int(folds) < 2:
        raise ConfigError(f"cv_folds: spatial cross-validation needs 2 folds or more; got {folds}")
    region, labels = np.asarray(region), np.asarray(labels)
    k = min(int(folds), int(np.unique(region).size))
    if k < 2:
        raise ConfigError("spatial cross-validation needs 2 labelled regions or more")
    out = np.full(len(region), -1, np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed) % (2**32))
    with warnings.catch_warnings():  # "the least populated class has fewer members than n_splits": handled
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
        for f, (_, test) in enumerate(splitter.split(np.zeros(len(region)), labels, groups=region)):
            out[test] = f
    return out


@dataclass
class SpatialCV:
    """Pooled out-of-fold scores of one input set, and the input sets' balanced accuracies.

    Attributes:
        inputs: the input set the figures are of.
        accuracy, accuracy_se: pooled overall accuracy, its standard error over folds.
        macro_f1: pooled macro-F1. per_class_recall: class id (str) → recall.
        confusion: (K, K) counts, rows reference, columns predicted, in ``class_ids`` order.
        class_ids: the classes, in the confusion matrix's order.
        folds, regions, pixels: what was cross-validated.
        fold_accuracy: the accuracy of each fold.
        scores: balanced accuracy of every input set scored (for the input choice).
    """

    inputs: str
    accuracy: float
    accuracy_se: float
    macro_f1: float
    per_class_recall: dict[str, float]
    confusion: list[list[int]]
    class_ids: list[int]
    folds: int
    regions: int
    pixels: int
    fold_accuracy: list[float] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The model file's ``training["spatial_cv"]`` (plain JSON values)."""
        return {"accuracy": round(self.accuracy, 4), "accuracy_se": round(self.accuracy_se, 4),
                "macro_f1": round(self.macro_f1, 4), "per_class_recall": self.per_class_recall,
                "confusion": self.confusion, "class_ids": self.class_ids, "folds": self.folds,
                "regions": self.regions, "pixels": self.pixels, "inputs": self.inputs,
                "fold_accuracy": [round(a, 4) for a in self.fold_accuracy],
                "scores": {k: round(v, 4) for k, v in self.scores.items()}}


def _score(name: str, y: np.ndarray, pred: np.ndarray, fold: np.ndarray, class_ids: Sequence[int], regions: int,
           scores: dict[str, float]) -> SpatialCV:
    from sklearn.metrics import confusion_matrix, f1_score, recall_score

    ids = [int(c) for c in class_ids]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
        f1 = f1_score(y, pred, labels=ids, average=None, zero_division=0)
        rec = recall_score(y, pred, labels=ids, average=None, zero_division=0)
    present = np.isin(ids, np.unique(y))
    accs = [float((y[fold == f] == pred[fold == f]).mean()) for f in np.unique(fold)]
    se = float(np.std(accs, ddof=1) / np.sqrt(len(accs))) if len(accs) > 1 else float("nan")
    return SpatialCV(name, float((y == pred).mean()), se, float(np.mean(f1[present])),
                     {str(c): round(float(r), 4) for c, r, p in zip(ids, rec, present) if p},
                     confusion_matrix(y, pred, labels=ids).tolist(), ids, len(accs), int(regions), int(y.size),
                     accs, dict(scores))


def map_folds(fit_fold: Callable[[np.ndarray, np.ndarray], Any], fold: np.ndarray, jobs: int = 1,
              log: Callable[[str], None] | None = None) -> Iterator[Any]:
    """``fit_fold(fold != f, fold == f)`` for every fold ``f`` (0, 1, ...; a fold of -1 is always
    trained on), in fold order.

    With ``jobs`` above 1, up to ``jobs`` folds run at a time in worker processes (joblib's
    ``loky`` pool; ``fit_fold`` and its data are pickled to each fold's task, arrays copied rather
    than memory-mapped, which would hand torch read-only arrays: tens of MB a fold at the default
    sample sizes), and the results come back in fold order as they are ready; 1: one after another
    in this process. Where worker processes cannot start or one dies (no process may be started
    here, memory ran out), the folds not yet done run here, one after another, and ``log`` says why.

    Args:
        fit_fold: ``(train, test)`` ((N,) bool masks) → anything picklable.
        fold: (N,) the fold of each sample.
    """
    from concurrent.futures import BrokenExecutor

    k = int(fold.max()) + 1
    masks = [(fold != f, fold == f) for f in range(k)]
    done = 0
    if int(jobs) > 1 and k > 1:
        from joblib import Parallel, delayed

        run = Parallel(n_jobs=min(int(jobs), k), backend="loky", return_as="generator", max_nbytes=None)
        try:
            for result in run(delayed(fit_fold)(train, test) for train, test in masks):
                yield result
                done += 1
        except (OSError, BrokenExecutor) as e:
            why = type(e).__name__ + (f": {str(e).splitlines()[0]}" if str(e).strip() else "")
            if log is not None:
                log(f"spatial CV: worker processes failed ({why}); the {k - done} folds left run in this process")
    for train, test in masks[done:]:
        yield fit_fold(train, test)


def cross_validate(fit_fold: Callable[[np.ndarray, np.ndarray], Any], labels: np.ndarray, region: np.ndarray,
                   class_ids: Sequence[int], *, folds: int, seed: int, jobs: int = 1,
                   on_fold: Callable[[int, np.ndarray, Any], Mapping[str, np.ndarray]] | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, SpatialCV]:
    """Fit ``fit_fold`` on every fold's complement, predict the fold, pool and score.

    Args:
        fit_fold: ``(train, test)`` ((N,) bool masks) → {input set: (n_test, K) probabilities}
            (:data:`FoldFit`), or whatever ``on_fold`` turns into that.
        labels: (N,) class ids; region: (N,) region ids (:func:`region_folds` groups by them).
        class_ids: the classifier's classes, in output order.
        folds: K (at most the number of regions). seed: the folds' shuffle.
        jobs: folds fitted at a time (:func:`map_folds`; above 1 ``fit_fold`` must be picklable).
        on_fold: ``(f, test, result)`` → {input set: probabilities}, run in this process on each
            fold's result in fold order (e.g. to keep or log it); None: the result is that.
        log: where :func:`map_folds` says that worker processes failed.

    Returns:
        {input set: :class:`SpatialCV`} for every input set ``fit_fold`` gives (same folds; each
        carries every set's balanced accuracy in ``scores``).
    """
    from sklearn.metrics import balanced_accuracy_score

    y, region = np.asarray(labels), np.asarray(region)
    fold = region_folds(region, y, folds, seed)
    ids = np.asarray(class_ids)
    preds: dict[str, np.ndarray] = {}
    for f, result in enumerate(map_folds(fit_fold, fold, jobs, log)):
        test = fold == f
        for name, prob in (on_fold(f, test, result) if on_fold else result).items():
            preds.setdefault(name, np.zeros(len(y), ids.dtype))[test] = ids[np.asarray(prob).argmax(1)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
        scores = {k: float(balanced_accuracy_score(y, v)) for k, v in preds.items()}
    n_reg = int(np.unique(region).size)
    return {name: _score(name, y, p, fold, class_ids, n_reg, scores) for name, p in preds.items()}


def describe(cv: Mapping[str, Any] | None) -> str:
    """One line for a stored ``training["spatial_cv"]``: ``held-out accuracy 0.84 ± 0.03 (5 folds,
    23 fields), macro-F1 0.81``, or why there is none (``reason``)."""
    if not cv:
        return "held-out accuracy: not estimated (cv_folds: 0)"
    if cv.get("reason"):
        return str(cv["reason"])
    return (f"held-out accuracy {cv['accuracy']:.2f} ± {cv['accuracy_se']:.2f} ({cv['folds']} folds, "
            f"{cv['regions']} fields), macro-F1 {cv['macro_f1']:.2f}")


def confusion_table(cv: Mapping[str, Any] | None, names: Mapping[str, str] | None = None) -> list[str]:
    """The confusion matrix of a stored ``training["spatial_cv"]`` as text lines: one row per
    reference class (``id name``), one column per predicted class (by id), and the class's recall;
    [] without one."""
    if not cv or not cv.get("confusion"):
        return []
    names = names or {}
    ids = [str(c) for c in cv["class_ids"]]
    rows = [f"{c} {str(names.get(c, ''))[:16]}".rstrip() for c in ids]
    head = "reference \\ predicted"
    rw = max(len(head), *(len(r) for r in rows))
    cw = max(4, *(len(str(v)) for row in cv["confusion"] for v in row), *(len(c) for c in ids))
    rec = cv.get("per_class_recall") or {}
    lines = [head.ljust(rw) + " | " + " ".join(c.rjust(cw) for c in ids) + " | recall"]
    for lab, cid, row in zip(rows, ids, cv["confusion"]):
        r = f"{rec[cid]:.2f}" if cid in rec else "–"
        lines.append(lab.ljust(rw) + " | " + " ".join(str(v).rjust(cw) for v in row) + f" | {r}")
    return lines
