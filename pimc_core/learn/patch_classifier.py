"""Patch classification: the image-patch encoder of PIMC with a classifier head, trained on whole
image patches (EuroSAT's 64 x 64 scenes), the PIMC paper's third task.

* :class:`PatchClassifier` — a :class:`~pimc_core.models.encoders.PatchEncoder` and a
  :class:`~pimc_core.models.heads.ClassifierHead`; the per-band standardisation lives in buffers
  (stored in the model file's metadata, like :class:`~pimc_core.models.pimc_net.PimcNet`'s).
* :func:`pretrained_patch_encoder` — the patch encoder of a PIMC model file (its architecture,
  weights and bands), to start from instead of random weights.
* :func:`train_patch_classifier` — cross-entropy with the steps of :mod:`pimc_core.learn.loop`
  and the hyper-parameters of :class:`~pimc_core.learn.finetune.FinetuneConfig` (``epochs``,
  ``batch_size``, ``lr``, ``encoder_lr_scale``, ``freeze``, ``augment.patch_flip`` /
  ``patch_noise``, ``label_smoothing``, ``seed``; the modality settings do not apply).
* :func:`predict_patches`; :func:`save_patch_classifier` / :func:`load_patch_classifier` — a
  ``.pimc`` file of task ``patch_classification`` (safetensors, nothing unpickled).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.devices import resolve_device
from pimc_core.errors import BandError, ConfigError, InputError
from pimc_core.learn.augment import augment_patches
from pimc_core.learn.finetune import FinetuneConfig, run_batches, to_tensor
from pimc_core.learn.loop import loss_summary, run_steps, step_generator
from pimc_core.models.encoders import EncoderConfig, PatchEncoder
from pimc_core.models.heads import ClassifierHead
from pimc_core.models.model_file import load_model, save_model

__all__ = ["PatchClassifier", "load_patch_classifier", "predict_patches", "pretrained_patch_encoder",
           "save_patch_classifier", "train_patch_classifier"]


class PatchClassifier(nn.Module):
    """Image patches ``(N, B, H, W)`` (raw band values) → class logits ``(N, K)``.

    Args:
        encoder: :class:`EncoderConfig` of the patch encoder (``in_channels`` = ``B``).
        n_classes: ``K``.
        hidden: hidden units of the classifier head (0: linear).
    """

    def __init__(self, encoder: EncoderConfig, n_classes: int, hidden: int = 0) -> None:
        super().__init__()
        self.encoder_cfg = encoder
        self.hidden = int(hidden)
        self.patch_encoder = PatchEncoder.from_config(encoder)
        self.classifier = ClassifierHead(encoder.embed_dim, int(n_classes), self.hidden)
        self.register_buffer("band_mean", torch.zeros(encoder.in_channels), persistent=False)
        self.register_buffer("band_std", torch.ones(encoder.in_channels), persistent=False)

    def set_normalisation(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Per-band ``mean`` and ``std`` (``B`` values each) of the standardisation."""
        self.band_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.band_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, B, H, W)`` raw → standardised (missing values → the band mean)."""
        return torch.nan_to_num((x - self.band_mean[:, None, None]) / self.band_std[:, None, None], nan=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, B, H, W)`` raw band values → ``(N, K)`` logits."""
        return self.classifier(self.patch_encoder(self.standardise(x)))


def band_normalisation(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-band nan-mean and std of ``(N, B, H, W)`` patches (std of a constant band: 1)."""
    mean = np.nanmean(x, axis=(0, 2, 3))
    std = np.nanstd(x, axis=(0, 2, 3))
    std = np.where(std > 1e-6, std, 1.0)
    return [float(v) for v in mean], [float(v) for v in std]


def pretrained_patch_encoder(path: str | Path) -> tuple[EncoderConfig, dict[str, torch.Tensor], list[str]]:
    """The patch encoder of a PIMC model file: ``(config, state_dict, bands)``; ``bands`` are the
    canonical bands it reads, in channel order.

    Raises:
        InputError: not a model file, or a model without a patch encoder (named).
    """
    from pimc_core.models.pimc_config import PimcModelConfig

    weights, meta = load_model(path)
    arch = (meta.get("architecture") or {})
    if "pimc" in arch:
        cfg = PimcModelConfig.from_dict(arch["pimc"])
        enc, bands = (cfg.patch_cfg() if cfg.has_patch else None), list(cfg.patch_bands)
    elif "patch_encoder" in arch:  # a patch classifier written by save_patch_classifier
        enc = EncoderConfig.from_dict({k: v for k, v in arch["patch_encoder"].items() if k != "kind"})
        bands = list(meta.get("bands") or [])
    else:
        enc, bands = None, []
    if enc is None or "patch_encoder" not in weights:
        raise InputError(f"{path}: the model has no patch encoder to start from (task {meta.get('task')})")
    return enc, weights["patch_encoder"], bands


def train_patch_classifier(model: PatchClassifier, x: np.ndarray, y: np.ndarray, cfg: FinetuneConfig, *,
                           device: str | torch.device | None = None,
                           progress: bool | Callable[[int, int, float], None] = False) -> dict[str, Any]:
    """Train ``model`` in place on patches ``x`` ``(N, B, H, W)`` with labels ``y`` ``(N,)`` in ``0..K-1``.

    The encoder learns at ``lr * encoder_lr_scale`` (frozen with ``freeze``), the head at ``lr``.

    Returns:
        ``{"steps", "loss_start", "loss_end", "seconds", "frozen"}``.
    """
    n = len(y)
    if n == 0:
        raise InputError("no training patch")
    if x.shape[1] != model.encoder_cfg.in_channels:
        raise BandError(f"patches have {x.shape[1]} bands; the encoder reads {model.encoder_cfg.in_channels}")
    dev = resolve_device(device)
    model.to(dev)
    t0 = time.perf_counter()
    batches, total = cfg.batches(n)
    groups = [{"params": list(model.classifier.parameters()), "lr": cfg.lr}]
    enc_params = list(model.patch_encoder.parameters())
    for p in enc_params:
        p.requires_grad_(not cfg.freeze)
    if not cfg.freeze:
        groups.append({"params": enc_params, "lr": cfg.lr * cfg.encoder_lr_scale})
    opt = cfg.optimiser(groups, total, dev)
    y_t = torch.from_numpy(np.asarray(y, np.int64)).to(dev)

    def loss_of(idx: np.ndarray, g: torch.Generator) -> torch.Tensor:
        xb = augment_patches(model.standardise(to_tensor(x, dev, idx)), cfg.augment, g)  # noise in standardised units
        logits = model.classifier(model.patch_encoder(xb))
        return F.cross_entropy(logits, y_t.index_select(0, torch.from_numpy(idx).to(dev)),
                               label_smoothing=cfg.label_smoothing)

    def train_mode() -> None:
        model.train()
        if cfg.freeze:
            model.patch_encoder.eval()

    try:
        losses = run_steps(opt, batches, total, loss_of, lambda step: step_generator(cfg.seed, 5, step),
                           train_mode=train_mode, progress=progress, desc="patch fine-tune")
    finally:
        for p in enc_params:
            p.requires_grad_(True)
    model.eval()
    return {"steps": len(losses), **loss_summary(losses, 4), "seconds": round(time.perf_counter() - t0, 1),
            "frozen": bool(cfg.freeze)}


def predict_patches(model: PatchClassifier, x: np.ndarray, *, batch_size: int = 256,
                    device: str | torch.device | None = None) -> np.ndarray:
    """Class probabilities ``(N, K)`` of patches ``x`` ``(N, B, H, W)``."""
    dev = resolve_device(device)
    model.to(dev).eval()
    return run_batches(lambda sl: F.softmax(model(to_tensor(x, dev, sl)), dim=1), len(x), batch_size)


def save_patch_classifier(path: str | Path, model: PatchClassifier, bands: Sequence[str], classes: Sequence[str],
                          training: Mapping[str, Any]) -> Path:
    """Write ``model`` as a ``.pimc`` of task ``patch_classification``: the encoder and head weights,
    their architecture, the canonical ``bands`` it reads, the standardisation and the class names
    (ids ``0..K-1``)."""
    meta = {
        "task": "patch_classification",
        "architecture": {"patch_encoder": {"kind": "patch", **model.encoder_cfg.to_dict()},
                         "classifier": {"kind": "classifier", "n_classes": len(classes), "hidden": model.hidden}},
        "bands": list(bands),
        "normalisation": {"bands": {"mean": model.band_mean.tolist(), "std": model.band_std.tolist()}},
        "classes": [{"id": i, "name": str(c), "color": None} for i, c in enumerate(classes)],
        "training": dict(training),
    }
    return save_model(path, {"patch_encoder": model.patch_encoder.state_dict(),
                             "classifier": model.classifier.state_dict()}, meta)


def load_patch_classifier(path: str | Path) -> tuple[PatchClassifier, dict[str, Any]]:
    """``(model, metadata)`` of a file written by :func:`save_patch_classifier`.

    Raises:
        InputError: not a patch classifier, or weights that do not fit its architecture.
    """
    weights, meta = load_model(path)
    arch = meta.get("architecture") or {}
    if meta.get("task") != "patch_classification" or "patch_encoder" not in arch:
        raise InputError(f"{path}: not a patch classifier (task {meta.get('task')})")
    try:
        enc = EncoderConfig.from_dict({k: v for k, v in arch["patch_encoder"].items() if k != "kind"})
        head = arch.get("classifier") or {}
        model = PatchClassifier(enc, int(head["n_classes"]), int(head.get("hidden", 0)))
        model.patch_encoder.load_state_dict(weights["patch_encoder"])
        model.classifier.load_state_dict(weights["classifier"])
    except (ConfigError, RuntimeError, KeyError) as e:
        raise InputError(f"{path}: weights do not match the model's architecture ({str(e).splitlines()[0][:300]})") from None
    norm = (meta.get("normalisation") or {}).get("bands") or {}
    if norm:
        model.set_normalisation(norm["mean"], norm["std"])
    return model.eval(), meta
