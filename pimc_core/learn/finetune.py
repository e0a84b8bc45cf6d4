"""Downstream training and evaluation of a :class:`~pimc_core.models.pimc_net.PimcNet`.

* :func:`finetune_classifier` — pixel classification by cross-entropy, encoders frozen (only
  the head learns, on embeddings computed once) or fine-tuned (at ``encoder_lr_scale`` times
  the head's learning rate), with modality dropout so the classifier works with any subset of
  inputs, and the pretraining augmentations. ``head_steps`` first trains the head alone on the
  frozen encoders, then fine-tunes everything (LP-FT: Kumar et al., "Fine-Tuning can Distort
  Pretrained Features and Underperform Out-of-Distribution", ICLR 2022).
* :func:`classification_metrics` — accuracy, macro F1, Cohen's kappa, per-class F1 and the
  confusion matrix (scikit-learn's ``sklearn.metrics``).
* :func:`linear_probe` — scikit-learn ``LogisticRegression`` on frozen embeddings.
* :func:`predict_proba`, :func:`embed` — class probabilities and fused embeddings of pixels.

The optimisation steps are those of :mod:`pimc_core.learn.loop`; forecasting is
:mod:`pimc_core.learn.forecast`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pimc_core.config import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Checked, Interval, Options, declared, param
from pimc_core.devices import resolve_device
from pimc_core.errors import ConfigError, InputError
from pimc_core.learn.augment import AugmentConfig, augment_patches, augment_series
from pimc_core.learn.loop import Batches, Optimiser, WeightAverage, loss_summary, run_steps, step_generator, total_steps
from pimc_core.models.modalities import random_modality_mask, random_source_mask
from pimc_core.models.pimc_net import PimcNet

__all__ = [
    "FinetuneConfig",
    "class_loss_weights",
    "class_indices",
    "classification_metrics",
    "embed",
    "finetune_classifier",
    "linear_probe",
    "predict_proba",
    "run_batches",
    "to_tensor",
]


@declared
@dataclass
class FinetuneConfig(Checked):
    """Hyper-parameters of the downstream training.

    Attributes:
        epochs: passes over the labelled pixels (``max_steps`` caps the total).
        batch_size: pixels per step.
        lr: learning rate of the head; encoders learn at ``lr * encoder_lr_scale``.
        freeze: keep the encoders frozen (only the head learns).
        head_steps: without ``freeze``, steps of training the head alone on the frozen encoders
            (embeddings computed once, at ``head_lr``, no warm-up) before everything is fine-tuned
            (LP-FT); 0: the head and the encoders start together from a random head.
        head_lr: learning rate of those head-only steps.
        modality_dropout: probability of dropping each modality of a pixel (at least one kept).
        source_dropout: for a network with a radar modality, the probability that a pixel loses
            every optical modality, and (separately) that it loses the radar one
            (:func:`~pimc_core.models.modalities.random_source_mask`), so that the classifier
            learns to work from the radar source alone and from the optical source alone (0.4
            beat 0.25 on two tuning scenes, with the radar encoder's defaults).
        augment: augmentations (as in pretraining).
        label_smoothing: cross-entropy label smoothing.
        mixup: Beta(mixup, mixup) mixing of pairs of fused embeddings and their labels before
            the classifier (manifold mixup; 0: off).
        soup: fine-tuning runs from the same starting weights (the pretrained encoders and one head
            initialisation), each with its own seed (data order, augmentations, dropout), whose
            weights are averaged into the one network kept ("model soup", Wortsman et al., 2022: an
            ensemble's variance reduction at one network's cost in maps); 1, the default: one run.
        weight_average: average the weights over the last ``weight_average`` share of the steps
            and keep the mean (stochastic weight averaging, :class:`~pimc_core.learn.loop.WeightAverage`;
            0, the default: keep the last step's weights).
        class_weight: each class's loss weighted by (its share of the pixels trained on: the
            labelled ones, and in the network's round also the pseudo-labelled)^-``class_weight``,
            normalised to a mean of 1 over those pixels: 0 (default) none, 0.5 the inverse
            square root of the class frequency, 1 every class as heavy as any other.
        class_weight_cap: no class's weight more than this many times the most common class's
            (0, the default: no limit); keeps a class of a handful of labelled pixels from
            outweighing thousands of another's.
        seed: everything random derives from it.
    """

    epochs: int = param(20, POSITIVE_INT)
    max_steps: int = param(0, COUNT)  # 0: no cap
    batch_size: int = param(256, POSITIVE_INT)
    lr: float = param(3e-3, POSITIVE)
    encoder_lr_scale: float = param(0.5, NON_NEGATIVE)
    weight_decay: float = param(1e-4, NON_NEGATIVE)
    warmup_steps: int = param(20, COUNT)
    freeze: bool = param(False, "boolean")
    head_steps: int = param(0, COUNT)
    head_lr: float = param(1e-2, POSITIVE)
    modality_dropout: float = param(0.2, FRACTION)
    source_dropout: float = param(0.4, Interval(Real, 0, 0.5, closed="both"))
    augment: AugmentConfig = param(  # a mapping: its fields
        AugmentConfig, factory=lambda: AugmentConfig(drop_obs=0.15, series_noise=0.02))
    label_smoothing: float = param(0.05, FRACTION)
    mixup: float = param(0.0, NON_NEGATIVE)
    class_weight: float = param(0.0, Interval(Real, 0, 1, closed="both"))
    class_weight_cap: float = param(0.0, Interval(Real, 1, None, closed="left"), Options(Real, {0}))
    weight_average: float = param(0.0, FRACTION)
    soup: int = param(1, POSITIVE_INT)
    seed: int = param(0, COUNT)

    _config_name: ClassVar[str] = "finetune"

    def _convert(self) -> None:
        self.augment = AugmentConfig.of(self.augment)

    def batches(self, n: int, stream: int = 0, drop_tail: bool = False) -> tuple[Batches, int]:
        """The batches of ``n`` samples (``min(batch_size, n)`` a step, shuffled by ``seed``) and
        the steps to run: ``epochs`` passes, capped at ``max_steps``."""
        b = Batches.shuffled(n, max(1, min(self.batch_size, n)), self.seed, stream, drop_tail)
        return b, total_steps(b, self.epochs, self.max_steps)

    def optimiser(self, groups: Sequence[Mapping[str, Any]], total: int, device: torch.device | str) -> Optimiser:
        """AdamW over ``groups``: warm-up ``min(warmup_steps, total // 5)``, cosine decay to 2 %, gradient norm clipped at 5."""
        return Optimiser(groups, total=total, warmup=min(self.warmup_steps, total // 5), min_lr_ratio=0.02,
                         weight_decay=self.weight_decay, grad_clip=5.0, device=device)


# ============================================================================ helpers
@torch.no_grad()
def run_batches(fn: Callable[[slice], torch.Tensor], n: int, batch_size: int) -> np.ndarray:
    """``fn(slice)`` over ``n`` samples in slices of ``batch_size``, concatenated on the CPU as numpy."""
    outs = []
    for s in range(0, n, batch_size):
        outs.append(fn(slice(s, min(n, s + batch_size))).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def to_tensor(a: np.ndarray | None, device: torch.device, sl: slice | np.ndarray | None = None) -> torch.Tensor | None:
    """``a[sl]`` as a contiguous float32 tensor on ``device`` (None stays None)."""
    if a is None:
        return None
    a = a if sl is None else a[sl]
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)



# ============================================================================ inference helpers
def predict_proba(net: PimcNet, series: np.ndarray | None, patches: np.ndarray | None, *,
                  batch_size: int = 1024, device: str | torch.device | None = None) -> np.ndarray:
    """Class probabilities (N, K) from whichever inputs are given: series (N, C, T), patches (N, B, k, k)."""
    dev = resolve_device(device)
    net.to(dev).eval()
    n = (series if series is not None else patches).shape[0]
    return run_batches(lambda sl: F.softmax(net.classify(to_tensor(series, dev, sl), to_tensor(patches, dev, sl)), dim=1),
                       n, batch_size)


def embed(net: PimcNet, series: np.ndarray | None, patches: np.ndarray | None, *,
          batch_size: int = 1024, device: str | torch.device | None = None) -> np.ndarray:
    """Fused embeddings (N, M·D) (absent modalities are zero blocks)."""
    dev = resolve_device(device)
    net.to(dev).eval()
    n = (series if series is not None else patches).shape[0]
    return run_batches(lambda sl: net.embed(to_tensor(series, dev, sl), to_tensor(patches, dev, sl)), n, batch_size)


# ============================================================================ classification
def class_indices(labels: np.ndarray, class_ids: Sequence[int]) -> np.ndarray:
    """(N,) class ids → (N,) int64 indices into ``class_ids`` (the classifier's output order).

    Raises:
        ConfigError: a label that is not among ``class_ids``.
    """
    ids = [int(c) for c in class_ids]
    lut = {c: i for i, c in enumerate(ids)}
    bad = sorted(set(int(v) for v in np.unique(labels)) - set(ids))
    if bad:
        raise ConfigError(f"labels {bad} are not among the classes {ids}")
    return np.array([lut[int(v)] for v in labels], np.int64)


def class_loss_weights(y: np.ndarray, k: int, power: float, cap: float = 0.0) -> np.ndarray:
    """(k,) loss weights of the classes of ``y`` (class indices 0..k-1): (the class's share of
    ``y``)^-``power``, at most ``cap`` times the weight of the most common class (``cap`` 0: no
    limit), scaled so that the mean weight of the pixels of ``y`` is 1; 0 for a class with no
    pixel."""
    counts = np.bincount(np.asarray(y, np.int64), minlength=k).astype(np.float64)
    w = np.where(counts > 0, (np.maximum(counts, 1) / max(counts.sum(), 1)) ** -float(power), 0.0)
    if cap > 0 and np.any(counts > 0):
        w = np.minimum(w, float(cap) * w[counts > 0].min())
    return w * counts.sum() / max(float((w * counts).sum()), 1e-12)


def _soup(net: PimcNet, series: np.ndarray, patches: np.ndarray | None, labels: np.ndarray,
          class_ids: Sequence[int], cfg: FinetuneConfig, device: Any, progress: Any) -> dict[str, Any]:
    """``cfg.soup`` runs of :func:`finetune_classifier` from ``net``'s current weights (run ``i``
    with seed ``cfg.seed + 7919 * i``), their weights averaged into ``net``; the first run's history
    with ``steps`` and ``seconds`` summed over the runs and ``soup`` the number of runs."""
    t0 = time.perf_counter()
    start = {k: v.detach().clone() for k, v in net.state_dict().items()}
    mean = WeightAverage(net, start=0)
    runs = []
    for i in range(cfg.soup):
        net.load_state_dict(start)
        runs.append(finetune_classifier(net, series, patches, labels, class_ids,
                                        dataclasses.replace(cfg, soup=1, seed=cfg.seed + 7919 * i),
                                        device=device, progress=progress))
        mean(i)
    mean.load()
    net.eval()
    return {**runs[0], "steps": sum(r["steps"] for r in runs), "seconds": round(time.perf_counter() - t0, 1),
            "soup": len(runs)}


def finetune_classifier(
    net: PimcNet,
    series: np.ndarray,
    patches: np.ndarray | None,
    labels: np.ndarray,
    class_ids: Sequence[int],
    cfg: FinetuneConfig,
    *,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int, int, float], None] = False,
) -> dict[str, Any]:
    """Train ``net.classifier`` (and, unless frozen, the encoders) on labelled pixels, in place.

    Args:
        series: (N, C, T); patches: (N, B, k, k) or None; labels: (N,) class ids.
        class_ids: the class ids in the order of the classifier's outputs.

    Returns:
        ``{"steps", "loss_start", "loss_end", "seconds", "frozen"}`` (``steps`` not counting the
        ``head_steps``; with them also ``"head_steps"`` and ``"head_loss_end"``; with
        ``weight_average`` also ``"averaged_steps"``; with ``soup`` > 1 also ``"soup"``, and
        ``steps`` summed over its runs).
    """
    if cfg.soup > 1:
        return _soup(net, series, patches, labels, class_ids, cfg, device, progress)
    if cfg.head_steps and not cfg.freeze:
        t_head = time.perf_counter()
        head = finetune_classifier(
            net, series, patches, labels, class_ids,
            dataclasses.replace(cfg, freeze=True, epochs=max(cfg.epochs, cfg.head_steps), max_steps=cfg.head_steps,
                                lr=cfg.head_lr, warmup_steps=0, head_steps=0, weight_average=0.0),
            device=device)
        out = finetune_classifier(net, series, patches, labels, class_ids, dataclasses.replace(cfg, head_steps=0),
                                  device=device, progress=progress)
        out.update(head_steps=head["steps"], head_loss_end=head["loss_end"],
                   seconds=round(time.perf_counter() - t_head, 1))
        return out
    if net.classifier is None:
        raise ConfigError("the network has no classifier (n_classes = 0)")
    ids = [int(c) for c in class_ids]
    if len(ids) != net.cfg.n_classes:
        raise ConfigError(f"{len(ids)} class ids for a classifier with {net.cfg.n_classes} outputs")
    y_all = class_indices(labels, ids)
    dev = resolve_device(device)
    net.to(dev)
    t0 = time.perf_counter()
    n = len(y_all)
    if n == 0:
        raise InputError("no labelled pixel to train the classifier on")
    has_patch = patches is not None and net.patch_encoder is not None
    present = tuple(m for m in net.modalities
                    if (m != "patch" or has_patch) and (m != "series" or net.series_encoder is not None))
    batches, total = cfg.batches(n)

    head = list(net.classifier.parameters())
    groups = [{"params": head, "lr": cfg.lr}]
    emb: dict[str, torch.Tensor] = {}
    if cfg.freeze:
        for p in net.parameters():
            p.requires_grad_(False)
        for p in head:
            p.requires_grad_(True)
        # embeddings once; modality dropout on the fixed embeddings
        net.eval()
        with torch.no_grad():
            emb_parts: dict[str, list[torch.Tensor]] = {}
            for s in range(0, n, 1024):
                sl = slice(s, min(n, s + 1024))
                e = net.encode(to_tensor(series, dev, sl), to_tensor(patches, dev, sl) if has_patch else None)
                for k, v in e.items():
                    emb_parts.setdefault(k, []).append(v)
            emb = {k: torch.cat(v) for k, v in emb_parts.items()}
    else:
        encoders = [p for name, p in net.named_parameters()
                    if name.startswith(("rp_encoder.", "series_encoder.", "patch_encoder.", "sar_encoder."))]
        for p in net.parameters():
            p.requires_grad_(False)
        for p in head + encoders:
            p.requires_grad_(True)
        groups.append({"params": encoders, "lr": cfg.lr * cfg.encoder_lr_scale})
    opt = cfg.optimiser(groups, total, dev)
    y_t = torch.from_numpy(y_all).to(dev)
    weight = None
    if cfg.class_weight > 0:
        weight = torch.tensor(class_loss_weights(y_all, len(ids), cfg.class_weight, cfg.class_weight_cap),
                              dtype=torch.float32, device=dev)
    s_std = net.idx_std.detach().cpu()
    b_std = net.band_std.detach().cpu()

    def loss_of(idx: np.ndarray, g: torch.Generator) -> torch.Tensor:
        ii = torch.from_numpy(idx).to(dev)
        mask = random_modality_mask(net.modality_mask(len(idx), present, dev), cfg.modality_dropout, g)
        if net.sar_encoder is not None:
            mask = random_source_mask(mask, cfg.source_dropout, g)
        if cfg.freeze:
            e = {k: v.index_select(0, ii) for k, v in emb.items()}
        else:
            x = augment_series(to_tensor(series, dev, idx), cfg.augment, g, noise_scale=s_std.expand(len(idx), -1))
            p = None
            if has_patch:
                p = augment_patches(to_tensor(patches, dev, idx), cfg.augment, g, noise_scale=b_std.expand(len(idx), -1))
            e = net.encode(x, p)
        fused = net.fuse(e, mask)
        y = y_t.index_select(0, ii)
        if cfg.mixup <= 0:
            return F.cross_entropy(net.classifier(fused), y, weight=weight, label_smoothing=cfg.label_smoothing)
        lam = float(torch.distributions.Beta(cfg.mixup, cfg.mixup).sample())
        perm = torch.randperm(len(idx), generator=g).to(dev)
        logits = net.classifier(lam * fused + (1 - lam) * fused.index_select(0, perm))
        return lam * F.cross_entropy(logits, y, weight=weight, label_smoothing=cfg.label_smoothing) + (1 - lam) * \
            F.cross_entropy(logits, y.index_select(0, perm), weight=weight, label_smoothing=cfg.label_smoothing)

    def train_mode() -> None:
        (net.classifier if cfg.freeze else net).train()

    average = WeightAverage(net, start=total - int(round(cfg.weight_average * total))) if cfg.weight_average else None
    try:
        losses = run_steps(opt, batches, total, loss_of, lambda step: step_generator(cfg.seed, 1, step),
                           train_mode=train_mode, after_step=average, progress=progress, desc="fine-tune")
    finally:
        for p in net.parameters():
            p.requires_grad_(True)
    net.eval()
    out = {"steps": len(losses), **loss_summary(losses, 4), "seconds": round(time.perf_counter() - t0, 1),
           "frozen": bool(cfg.freeze)}
    if average is not None:
        out["averaged_steps"] = average.load()
    return out


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_ids: Sequence[int]) -> dict[str, Any]:
    """Overall accuracy, macro F1, Cohen's kappa, per-class F1 and the confusion matrix."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

    ids = [int(c) for c in class_ids]
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    if yt.size == 0:
        return {"n": 0}
    f1 = f1_score(yt, yp, labels=ids, average=None, zero_division=0)
    return {
        "n": int(yt.size),
        "accuracy": round(float((yt == yp).mean()), 4),
        "macro_f1": round(float(np.mean(f1)), 4),
        "kappa": round(float(cohen_kappa_score(yt, yp)), 4),
        "f1": {str(c): round(float(v), 4) for c, v in zip(ids, f1)},
        "confusion": confusion_matrix(yt, yp, labels=ids).tolist(),
    }


def linear_probe(train_emb: np.ndarray, train_y: np.ndarray, test_emb: np.ndarray, test_y: np.ndarray,
                 *, C: float = 1.0, max_iter: int = 2000) -> dict[str, Any]:
    """Logistic regression on frozen (standardised) embeddings; accuracy and macro F1 on the test set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    clf.fit(train_emb, train_y)
    pred = clf.predict(test_emb)
    ids = sorted(set(int(v) for v in np.unique(train_y)) | set(int(v) for v in np.unique(test_y)))
    m = classification_metrics(test_y, pred, ids)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n_train": int(len(train_y)), "n_test": int(len(test_y))}
