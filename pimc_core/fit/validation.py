"""Before the classifier is fine-tuned: its inputs chosen and its accuracy estimated on held-out fields.

One set of fold fits does both (:func:`validate_classifier`). The labelled pixels are grouped
into regions (:func:`pimc_core.learn.input_selection.labelled_regions`), the regions dealt into
``cv_folds`` folds (:func:`pimc_core.learn.spatial_cv.region_folds`), and for each fold a copy of
the pretrained network is fine-tuned with the classifier's own recipe on the other folds' pixels
(:class:`_FoldFit`: picklable, so that with ``jobs`` above 1 the folds run in worker processes,
with the same figures); its out-of-fold predictions are scored with every input set (``all``,
``temporal``: modality dropout trains one network for both). The better input set
(:func:`~pimc_core.learn.input_selection.pick_inputs`) is the classifier's, and its pooled
out-of-fold figures are the model's held-out accuracy (``training["spatial_cv"]``). When the map
will use the forest member (``ensemble.forest_weight`` above 0 or ``auto``), every fold trains its
own forest on its training pixels (self-trained on the scene, the held-out fields counted
unlabelled, as the fields a map covers are); the out-of-fold probabilities of both members are
kept (:class:`FoldProbabilities`), every candidate weight is scored on them
(:mod:`pimc_core.learn.ensemble_choice`; ``auto`` takes its choice, a configured weight is kept)
and the figures are of the mix at the map's weight.

When cross-validation is off (``cv_folds: 0``) or impossible (a class with a single labelled
region: :func:`~pimc_core.learn.spatial_cv.cv_blocker`, said in the log and stored as
``training["spatial_cv"]["reason"]``), ``classifier_inputs: auto`` falls back to one trial
fine-tuning on a third of the regions held out (:func:`pimc_core.fit.pipeline.choose_inputs`).
With ``ensemble.forest_weight: auto`` the weight is then chosen on the classes with two regions or
more (:func:`partial_folds`, a fine-tuning per fold); a configured weight is used as it is, without
that cost (on a 112² bench stack the partial CV took most of the fit's 273 s).

The choice is made on the same folds the estimate comes from; the patch must win by more than
the check's resolution, so the estimate is of the safer input set in most runs and the selection
adds little optimism.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pimc_core.fit import pipeline as steps
from pimc_core.learn.ensemble import EnsembleConfig
from pimc_core.learn.ensemble_choice import WeightChoice
from pimc_core.learn.finetune import FinetuneConfig
from pimc_core.learn.input_selection import INPUT_SETS, InputChoice
from pimc_core.learn.sampling import PixelSamples

__all__ = ["FoldProbabilities", "Validation", "cross_validate", "partial_folds", "validate_classifier"]

Log = Callable[[str], None]


@dataclass
class Validation:
    """What :func:`validate_classifier` found.

    Attributes:
        choice: the classifier's inputs (:class:`~pimc_core.learn.input_selection.InputChoice`).
        spatial_cv: the model file's ``training["spatial_cv"]``: the figures of
            :meth:`pimc_core.learn.spatial_cv.SpatialCV.summary`, ``{"reason": ...}`` when not
            possible, None when off.
        forest_weight: the forest member's weight and the held-out accuracy of every candidate
            (:class:`~pimc_core.learn.ensemble_choice.WeightChoice`; None without a forest member).
    """

    choice: InputChoice
    spatial_cv: dict[str, Any] | None
    forest_weight: WeightChoice | None = None


@dataclass
class FoldProbabilities:
    """Out-of-fold probabilities of the ensemble's members, kept for the forest weight's choice.

    Attributes:
        fold: (N,) the fold that held each labelled pixel out.
        net, forest: {input set: (N, K) out-of-fold probabilities} of the network and of its
            forest member.
    """

    fold: np.ndarray
    net: dict[str, np.ndarray]
    forest: dict[str, np.ndarray]

    def put(self, f: int, test: np.ndarray, name: str, p_net: np.ndarray, p_for: np.ndarray) -> None:
        """Fold ``f``'s (n_test, K) probabilities of the samples ``test`` ((N,) bool)."""
        self.fold[test] = f
        for store, p in ((self.net, p_net), (self.forest, p_for)):
            store.setdefault(name, np.zeros((self.fold.size, p.shape[1]), np.float64))[test] = p


@dataclass
class _FoldFit:
    """One fold's fit of :func:`cross_validate`: picklable, so that folds can run in worker
    processes (:func:`pimc_core.learn.spatial_cv.map_folds`). Called with ``(train, test)`` ((N,)
    bool masks), it returns {input set: ((n_test, K) network probabilities, (n_test, K) forest
    mix at weight 1 or None)}; ``net`` itself is not changed."""

    net: Any
    labelled: PixelSamples
    regions: np.ndarray
    class_ids: Sequence[int]
    cfg: FinetuneConfig
    input_sets: Sequence[str]
    scene: PixelSamples | None
    ensemble: EnsembleConfig | None
    region_map: np.ndarray | None
    label_map: np.ndarray | None
    device: Any
    progress: Any = False  # in this process only (``jobs`` 1): a worker reports nothing

    @property
    def forest_on(self) -> bool:
        return self.ensemble is not None and self.ensemble.enabled and self.scene is not None

    def __call__(self, train: np.ndarray, test: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        ens, device, cfg = self.ensemble, self.device, self.cfg
        fnet = copy.deepcopy(self.net)
        tr, te = self.labelled.subset(np.flatnonzero(train)), self.labelled.subset(np.flatnonzero(test))
        steps.train_classifier(fnet, tr, self.class_ids, cfg, device=device, progress=self.progress)
        fold_map = None  # the label map with this fold's held-out regions unlabelled, for its forest
        if self.forest_on and self.label_map is not None and self.region_map is not None:
            fold_map = np.where(np.isin(self.region_map, np.unique(self.regions[test])), 0, self.label_map)
        out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for name in self.input_sets:
            mods = [m for m in INPUT_SETS[name] if m != "patch" or self.labelled.patches is not None]
            if not self.forest_on:
                out[name] = (steps.classifier_proba(fnet, te, device=device, modalities=mods), None)
                continue
            member = copy.deepcopy(fnet) if ens.network_rounds else fnet
            forest, _ = steps.self_train(member, tr, self.scene, self.class_ids, ens, cfg, seed=cfg.seed,
                                         device=device, modalities=mods, label_map=fold_map, progress=self.progress)
            prob = steps.classifier_proba(member, te, device=device, modalities=mods)
            out[name] = (prob, forest.mix(prob, te.series, 1.0))
        return out


def cross_validate(net, labelled: PixelSamples, regions: np.ndarray, class_ids: Sequence[int], cfg: FinetuneConfig, *,
                   folds: int, input_sets: Sequence[str] = ("all", "temporal"), scene: PixelSamples | None = None,
                   ensemble: EnsembleConfig | None = None, region_map: np.ndarray | None = None,
                   label_map: np.ndarray | None = None, device: Any = None, jobs: int = 1, progress: Any = False,
                   log: Log = steps._quiet,
                   keep: FoldProbabilities | None = None, fold: np.ndarray | None = None):
    """Spatial cross-validation of the classifier ``net`` would get (``net`` itself is not changed).

    Args:
        net: the pretrained :class:`~pimc_core.models.pimc_net.PimcNet` (with a classifier).
        labelled: labelled samples; regions: (N,) their region ids.
        cfg: the fine-tuning recipe (seeded) of the classifier; its seed shuffles the folds.
        folds: K. input_sets: the input sets each fold is scored with.
        scene, ensemble, region_map, label_map: for the forest member (used when
            ``ensemble.enabled``): the scene's unlabelled samples, the ensemble section,
            the (H, W) region and label maps (a fold's held-out regions are unlabelled for its forest).
            The folds are scored on the mix at ``ensemble.pseudo_mix``.
        jobs: folds fitted at a time, in worker processes above 1
            (:func:`~pimc_core.learn.spatial_cv.map_folds`); the figures do not depend on it.
        progress: the training loops' progress (``jobs`` 1 only); log: a line per fold fitted.
        keep: filled with the members' out-of-fold probabilities (forest member only).
        fold: (N,) the fold of each sample, -1 for samples always trained on (given: only
            ``keep`` is filled, nothing scored; :func:`partial_folds`).

    Returns:
        {input set: :class:`~pimc_core.learn.spatial_cv.SpatialCV`}, or None with ``fold``.
    """
    from pimc_core.learn.spatial_cv import cross_validate as run_folds
    from pimc_core.learn.spatial_cv import map_folds

    task = _FoldFit(net, labelled, regions, class_ids, cfg, tuple(input_sets), scene, ensemble, region_map, label_map,
                    device, progress if jobs <= 1 else False)
    if jobs > 1:
        log(f"spatial CV: {jobs} folds at a time in worker processes")

    def on_fold(f: int, test: np.ndarray, result: Mapping[str, tuple]) -> dict[str, np.ndarray]:
        out = {}
        for name, (prob, p_for) in result.items():
            if p_for is not None:
                if keep is not None:
                    keep.put(f, test, name, prob, p_for)
                w = ensemble.pseudo_mix
                prob = (1 - w) * prob + w * p_for
            out[name] = prob
        log(f"spatial CV: fold {f + 1} fitted ({int(test.size - test.sum())} training px, {int(test.sum())} held out)")
        return out

    with steps.training_threads(device):
        if fold is None:
            return run_folds(task, labelled.labels, regions, class_ids, folds=folds, seed=cfg.seed, jobs=jobs,
                             on_fold=on_fold, log=log)
        for f, result in enumerate(map_folds(task, fold, jobs, log)):
            on_fold(f, fold == f, result)
    return None


def partial_folds(regions: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> np.ndarray | None:
    """Folds over the labelled regions of the classes with two regions or more: (N,) fold of
    each sample, -1 for the samples of single-region classes (always trained on, never held
    out); None when fewer than two classes have two regions (held-out pixels of one class tell
    little: on the demo's stack every weight scored 1.000 there). For the forest weight when
    spatial CV of every class is not possible (:func:`~pimc_core.learn.spatial_cv.cv_blocker`)."""
    from pimc_core.learn.spatial_cv import region_folds

    regions, labels = np.asarray(regions), np.asarray(labels)
    multi = [c for c in np.unique(labels) if np.unique(regions[labels == c]).size >= 2]
    if len(multi) < 2:
        return None
    m = np.isin(labels, multi)
    out = np.full(labels.size, -1, np.int64)
    out[m] = region_folds(regions[m], labels[m], folds, seed)
    return out


def validate_classifier(net, labelled: PixelSamples, regions: np.ndarray | None, class_ids: Sequence[int],
                        cfg: FinetuneConfig, *, setting: str, folds: int, names: Mapping[int, str] | None = None,
                        device: Any = None, jobs: int = 1, progress: Any = False, log: Log = steps._quiet,
                        **forest: Any) -> Validation:
    """The classifier's inputs (``setting``: ``auto``, ``all`` or ``temporal``) and its held-out
    accuracy by spatial cross-validation over ``folds`` folds (0: none).

    Args:
        labelled: labelled samples; regions: (N,) their region ids (None only when ``folds`` is 0
            and ``setting`` is not ``auto``).
        cfg: the fine-tuning recipe (seeded). names: class id → name, for messages.
        jobs: folds fitted at a time (:func:`cross_validate`).
        forest: ``scene``, ``ensemble``, ``region_map``, ``label_map`` of :func:`cross_validate`.
    """
    from pimc_core.learn.spatial_cv import cv_blocker, describe

    can_patch = labelled.patches is not None and net.patch_encoder is not None
    blocker = cv_blocker(regions, labelled.labels, names) if folds else None
    if not folds or blocker:
        if blocker:
            log(blocker)
        choice = steps.choose_inputs(net, labelled, regions, class_ids, cfg, setting, device=device,
                                     progress=progress, log=log)
        ens = forest.get("ensemble")
        weight = None
        # the partial CV costs a fine-tuning per fold: only when it decides the weight (``auto``)
        if blocker and ens is not None and ens.forest_weight == "auto" and forest.get("scene") is not None:
            weight = _partial_weight(net, labelled, regions, class_ids, cfg, choice.inputs, folds=folds, device=device,
                                     jobs=jobs, progress=progress, log=log, **forest)
        return Validation(choice, {"reason": blocker, "folds": 0} if blocker else None,
                          weight or _weight_without_cv(ens, blocker or "cv_folds: 0", log))
    if setting == "auto":
        sets = ("all", "temporal") if can_patch else ("temporal",)
    else:
        sets = (setting,) if can_patch or setting == "temporal" else ("temporal",)
    kept = FoldProbabilities(np.full(len(labelled), -1, np.int64), {}, {})
    res = cross_validate(net, labelled, regions, class_ids, cfg, folds=folds, input_sets=sets, device=device,
                         jobs=jobs, progress=progress, log=log, keep=kept, **forest)
    first = next(iter(res.values()))
    if setting == "auto" and can_patch:
        choice = InputChoice.from_scores(first.scores, first.regions, first.pixels,
                                         f"out of fold, {first.folds} folds over {first.regions} labelled regions")
    elif setting == "auto":
        choice = InputChoice("temporal", first.scores, reason="no patch branch: the classifier reads the series")
    else:
        choice = InputChoice.configured(setting)
    log(f"classifier inputs: {choice.inputs} ({choice.reason})")
    name = choice.inputs if choice.inputs in res else sets[0]
    weight = None
    if kept.net:
        weight = _choose_weight(kept, name, labelled.labels, class_ids, forest["ensemble"], log)
        if forest["ensemble"].forest_weight == "auto":
            res = _replay(kept, weight.weight, labelled.labels, regions, class_ids, cfg.seed)
    cv = res[name].summary()
    log(describe(cv) + f" ({cv['pixels']} px, inputs {cv['inputs']})")
    return Validation(choice, cv, weight)


def _choose_weight(kept: FoldProbabilities, name: str, labels: np.ndarray, class_ids: Sequence[int],
                   ens: EnsembleConfig, log: Log) -> WeightChoice:
    """The forest weight from the kept out-of-fold probabilities of input set ``name`` (every
    candidate scored; a configured weight is kept as it is, with the candidates' scores)."""
    from pimc_core.learn.ensemble_choice import choose_forest_weight
    from pimc_core.learn.finetune import class_indices

    y = class_indices(labels, np.asarray(class_ids))
    picked = choose_forest_weight(y, kept.fold, kept.net[name], kept.forest[name], ens.candidates,
                                  prefer=ens.prefer, tolerance=ens.tolerance)
    if ens.forest_weight != "auto":
        picked = dataclasses.replace(picked, weight=float(ens.forest_weight),
                                     reason=f"configured (spatial CV would take {picked.weight:g}: {picked.reason})")
    table = ", ".join(f"{w:g}: {a:.3f}" for w, (a, _) in picked.scores.items())
    log(f"forest weight {picked.weight:g} ({picked.reason}); held-out accuracy by weight {table}")
    return picked


def _partial_weight(net, labelled: PixelSamples, regions: np.ndarray, class_ids: Sequence[int], cfg: FinetuneConfig,
                    inputs: str, *, folds: int, log: Log, **kw: Any) -> WeightChoice | None:
    """The forest weight on held-out fields of the classes with two labelled regions or more
    (:func:`partial_folds`), the other classes' pixels always trained on; None when fewer than
    two classes have two regions."""
    fold = partial_folds(regions, labelled.labels, folds, cfg.seed)
    if fold is None:
        return None
    kept = FoldProbabilities(fold.copy(), {}, {})
    log(f"forest weight: spatial CV on the {int((fold >= 0).sum())} px of the classes with 2 fields or more")
    cross_validate(net, labelled, regions, class_ids, cfg, folds=folds, input_sets=(inputs,), keep=kept, fold=fold,
                   log=log, **kw)
    m = fold >= 0
    part = FoldProbabilities(fold[m], {inputs: kept.net[inputs][m]}, {inputs: kept.forest[inputs][m]})
    picked = _choose_weight(part, inputs, labelled.labels[m], class_ids, kw["ensemble"], log)
    return dataclasses.replace(picked, reason=picked.reason + " (classes with 2 fields or more)")


def _weight_without_cv(ens: EnsembleConfig | None, why: str, log: Log) -> WeightChoice | None:
    """The forest weight without spatial CV: a configured one as it is, ``auto`` the preferred
    weight (None without a forest)."""
    if ens is None or not ens.enabled:
        return None
    if ens.forest_weight != "auto":
        return WeightChoice(float(ens.forest_weight), f"configured (no spatial CV: {why})", {}, float(ens.prefer),
                            float(ens.tolerance))
    picked = WeightChoice(float(ens.prefer), f"no spatial CV ({why}): the preferred weight", {}, float(ens.prefer),
                          float(ens.tolerance))
    log(f"forest weight {picked.weight:g} ({picked.reason})")
    return picked


def _replay(kept: FoldProbabilities, weight: float, labels: np.ndarray, regions: np.ndarray,
            class_ids: Sequence[int], seed: int) -> dict[str, Any]:
    """The spatial CV's figures of the mix at ``weight``, from the kept probabilities (the same
    folds: :func:`~pimc_core.learn.spatial_cv.region_folds` is deterministic)."""
    from pimc_core.learn.spatial_cv import cross_validate as run_folds

    def stored(train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
        return {n: (1 - weight) * kept.net[n][test] + weight * kept.forest[n][test] for n in kept.net}

    return run_folds(stored, labels, regions, class_ids, folds=int(kept.fold.max()) + 1, seed=seed)
