"""Which inputs the pixel classifier should use, chosen on labelled regions it did not see.

Labels usually come as whole fields (polygons). Pixels of one field share their image patch
almost exactly, so a classifier fine-tuned on a few fields can recognise *those fields* by
their patches and still fail on other fields of the same class. Pixel-level validation cannot
see that (the validation pixels sit in the training fields); **region-held-out validation**
can: the labelled pixels are grouped into regions of one class (:func:`labelled_regions`,
``scipy.ndimage.label``), a share of each class's regions is held out (:func:`region_split`),
the classifier is fine-tuned on the others, and each input set is scored on the held-out regions
by balanced accuracy (the mean per-class recall, ``sklearn.metrics.balanced_accuracy_score``).

Labels that are scattered points (survey points, a few hundred inside a few fields) would make
every point a region of its own, and held-out "regions" would sit in the very fields the
classifier trains on, patches overlapping. So pixels of one class closer than ``reach`` pixels
are one region (:func:`labelled_regions`; ``pimc fit`` uses twice the patch size): a held-out
region's patches never overlap a training pixel's, and points of one field fall together.

When the check cannot separate the two input sets, the safer one wins: the patch is kept only
when ``all`` beats ``temporal`` by more than the check's resolution (:func:`patch_margin`: two
points, or the standard error of a proportion over the held-out regions, whichever is larger);
with nothing to hold out the classifier reads ``temporal``.

Input sets (:data:`INPUT_SETS`): ``all`` (the recurrence plots, the series and the patch) or
``temporal`` (recurrence plots and series; the patch is dropped at prediction, which modality
dropout during fine-tuning trains for). The fitted model stores the choice
(``training.classify_modalities``); embeddings, clusters and similarity maps keep every input.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pimc_core.errors import ConfigError

__all__ = ["INPUT_SETS", "InputChoice", "check_inputs_setting", "choose_classifier_inputs", "labelled_regions",
           "patch_margin", "pick_inputs", "region_split"]

#: Modalities the classifier reads, per input set.
INPUT_SETS: dict[str, tuple[str, ...]] = {"all": ("rp", "series", "patch"), "temporal": ("rp", "series")}


def check_inputs_setting(value: str, key: str = "classifier_inputs") -> None:
    """Raise a ConfigError naming ``key`` unless ``value`` is ``auto`` or a key of :data:`INPUT_SETS`."""
    if value != "auto" and value not in INPUT_SETS:
        raise ConfigError(f"{key} must be auto, {' or '.join(INPUT_SETS)}; got {value!r}")


def labelled_regions(labels: np.ndarray, reach: int = 1) -> np.ndarray:
    """Regions of equal class id: (H, W) int64, 0 where unlabelled.

    Pixels of one class belong to one region when a chain of pixels of that class joins them with
    steps of at most ``reach`` pixels (Chebyshev distance; 1: 8-connected regions).

    Args:
        labels: (H, W) class ids, 0 = unlabelled.
        reach: the largest step, in pixels (>= 1).
    """
    from scipy import ndimage

    lab = np.asarray(labels)
    r = max(1, int(reach))
    out = np.zeros(lab.shape, np.int64)
    nxt = 0
    for cid in np.unique(lab[lab > 0]):
        mask = lab == cid
        # each pixel grown into an r x r square: two pixels at most r apart touch (8-neighbourhood)
        grown = ndimage.maximum_filter(mask, size=r, mode="constant")
        reg, n = ndimage.label(grown, structure=np.ones((3, 3), bool))
        out[mask] = reg[mask] + nxt
        nxt += n
    return out


def patch_margin(scores: dict[str, float], n_regions: int) -> float:
    """How much ``all`` must beat ``temporal`` by to keep the patch: the larger of 0.02 and the
    standard error of a proportion near the scores over ``n_regions`` held-out regions."""
    p = min(max(float(np.mean(list(scores.values()))), 0.0), 1.0)
    return max(0.02, float(np.sqrt(p * (1 - p) / max(int(n_regions), 1))))


def pick_inputs(scores: dict[str, float], n_regions: int) -> tuple[str, float]:
    """``(input set, margin)``: ``all`` only when its score beats ``temporal``'s by more than
    :func:`patch_margin` over ``n_regions`` held-out regions, else ``temporal``."""
    margin = patch_margin(scores, n_regions)
    return ("all" if scores["all"] > scores["temporal"] + margin else "temporal"), margin


def region_split(region: np.ndarray, labels: np.ndarray, share: float, seed: int) -> np.ndarray | None:
    """Hold out whole regions: (N,) bool, True for the held-out samples.

    Every class with two regions or more gives ``max(1, round(share * regions))`` of them, and
    never all; classes with a single region stay in training. None when no class has two
    regions (nothing can be held out).

    Args:
        region: (N,) region id of each sample. labels: (N,) class of each sample.
        share: held-out share of each class's regions, in (0, 1).
    """
    if not 0 < share < 1:
        raise ConfigError(f"held-out share of regions must be in (0, 1); got {share}")
    rng = np.random.default_rng([int(seed), 0x5E1])
    held = np.zeros(len(region), bool)
    for cid in np.unique(labels):
        regs = np.unique(region[labels == cid])
        if regs.size < 2:
            continue
        k = min(regs.size - 1, max(1, int(round(share * regs.size))))
        held |= np.isin(region, rng.permutation(regs)[:k]) & (labels == cid)
    return held if held.any() else None


@dataclass
class InputChoice:
    """The outcome of :func:`choose_classifier_inputs`.

    Attributes:
        inputs: the chosen input set (a key of :data:`INPUT_SETS`).
        scores: balanced accuracy of each input set on the held-out regions (empty: not validated).
        held_out_regions, held_out_pixels: what was held out.
        reason: one line for the log.
    """

    inputs: str
    scores: dict[str, float]
    held_out_regions: int = 0
    held_out_pixels: int = 0
    reason: str = ""

    def summary(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "scores": {k: round(v, 4) for k, v in self.scores.items()},
                "held_out_regions": self.held_out_regions, "held_out_pixels": self.held_out_pixels,
                "reason": self.reason}

    @classmethod
    def from_scores(cls, scores: dict[str, float], n_regions: int, n_pixels: int, how: str) -> "InputChoice":
        """The choice :func:`pick_inputs` makes from balanced accuracies ``scores`` measured ``how``
        (e.g. ``on 12 held-out labelled regions (480 px)``)."""
        best, margin = pick_inputs(scores, n_regions)
        txt = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
        return cls(best, scores, n_regions, n_pixels,
                   reason=f"balanced accuracy {how}: {txt}; the patch needs more than temporal + {margin:.3f}")

    @classmethod
    def configured(cls, inputs: str) -> "InputChoice":
        """The input set named by the configuration (``classifier_inputs`` other than ``auto``): not validated."""
        return cls(inputs, {}, reason=f"classifier_inputs: {inputs} (configured)")

    def modalities(self, patches_given: bool) -> list[str]:
        """The modalities the classifier reads (``training.classify_modalities`` of the model file)."""
        return [m for m in INPUT_SETS[self.inputs] if m != "patch" or patches_given]


def choose_classifier_inputs(
    net: Any,
    series: np.ndarray,
    patches: np.ndarray | None,
    labels: np.ndarray,
    region: np.ndarray,
    class_ids: Sequence[int],
    finetune_cfg: Any,
    *,
    share: float = 1 / 3,
    default: str = "temporal",
    device: Any = None,
    progress: Any = False,
) -> InputChoice:
    """Fine-tune a copy of ``net`` without some labelled regions and score each input set there.

    ``net`` itself is not changed. The copy is trained with exactly ``finetune_cfg`` (the
    recipe the final classifier gets) on the remaining regions.

    Args:
        net: a :class:`~pimc_core.models.pimc_net.PimcNet` with a classifier (pretrained or not).
        series: (N, C, T) labelled series; patches: (N, B, k, k) or None; labels: (N,) class ids.
        region: (N,) labelled-region id of each sample (:func:`labelled_regions`).
        class_ids: the classifier's classes, in output order.
        finetune_cfg: a :class:`~pimc_core.learn.finetune.FinetuneConfig`.
        share: held-out share of each class's regions.
        default: the input set when nothing can be held out (or the network has no patch branch).

    Returns:
        :class:`InputChoice`; ``all`` only when it beats ``temporal`` by more than :func:`patch_margin`.
    """
    from sklearn.metrics import balanced_accuracy_score

    from pimc_core.learn.finetune import finetune_classifier, predict_proba

    if default not in INPUT_SETS:
        raise ConfigError(f"classifier inputs must be one of {', '.join(INPUT_SETS)}; got {default!r}")
    if patches is None or net.patch_encoder is None:
        return InputChoice("temporal", {}, reason="no patch branch: the classifier reads the series")
    held = region_split(np.asarray(region), np.asarray(labels), share, int(finetune_cfg.seed))
    if held is None:
        return InputChoice(default, {}, reason=f"no class has two labelled regions to hold one out: {default}")
    train = ~held
    probe = copy.deepcopy(net)
    finetune_classifier(probe, series[train], patches[train], labels[train], class_ids, finetune_cfg,
                        device=device, progress=progress)
    ids = np.asarray(class_ids)
    y = labels[held]
    # a modality left out of the inputs is a modality not given (the network fuses what it gets)
    preds = {name: ids[predict_proba(probe, series[held], patches[held] if "patch" in mods else None,
                                     device=device).argmax(1)]
             for name, mods in INPUT_SETS.items()}
    with warnings.catch_warnings():  # only classes with two regions or more are held out: sklearn warns of the others
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
        scores = {k: float(balanced_accuracy_score(y, v)) for k, v in preds.items()}
    n_reg = int(np.unique(np.asarray(region)[held]).size)
    return InputChoice.from_scores(scores, n_reg, int(held.sum()),
                                   f"on {n_reg} held-out labelled regions ({int(held.sum())} px)")
