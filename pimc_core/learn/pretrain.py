"""PIMC self-supervised pretraining: symmetric InfoNCE between the temporal view (recurrence
plots + series of a pixel) and the spatial view (its reference-image patch).

One step::

    batch of pixels → augment (series: random observations dropped and re-interpolated, noise;
    patches: one of the 8 flips/rotations, noise) → modality dropout inside the temporal view
    (RP or series branch zeroed for some pixels) → temporal_proj(RP ⊕ series), patch_proj(patch)
    → SymmetricInfoNCE (learnable temperature) [+ prototype_weight × the swapped-prototype loss
    of the two projections, when ``prototypes`` > 0] [+ reconstruct × MSE of the un-augmented
    series decoded from the temporal view, when ``reconstruct`` > 0] → AdamW step, warm-up + cosine
    learning rate

Reproducibility and resuming. Every random draw of step ``s`` (batch order, augmentation,
modality dropout, dropout layers) comes from generators seeded by ``(seed, s)`` or
``(seed, epoch)``, never from state carried across steps; a checkpoint (model, optimizer,
scheduler, gradient scaler, RNG states, step, losses) is written every ``checkpoint_every``
steps with ``torch.save`` and read back with ``torch.load(weights_only=True)``. A run killed at
any point and restarted with the same configuration resumes from the last checkpoint and ends
with exactly the weights of an uninterrupted run (on CPU; CUDA kernels may be
non-deterministic). Checkpoints are our own training files; delivered models are ``.pimc``
(safetensors) files written by :mod:`pimc_core.models.pixel_model`.

Devices and processes. Mixed precision (``torch.autocast`` float16 + ``GradScaler``) on CUDA,
float32 on CPU. Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the same entry
point runs DDP: each rank takes its share of every epoch's permutation (as
``DistributedSampler`` does), the projections are gathered across ranks so the InfoNCE sees
the global batch, and only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from pimc_core.config import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Checked, declared, param
from pimc_core.errors import ConfigError, InputError
from pimc_core.learn.augment import AugmentConfig, augment_patches, augment_series
from pimc_core.learn.checkpoints import (
    check_same_config,
    config_key,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pimc_core.learn.ddp import default_device, dist_info, gather_with_grad, init_distributed
from pimc_core.learn.loop import Batches, Optimiser, run_steps, step_generator
from pimc_core.models.modalities import modality_mask, random_modality_mask
from pimc_core.models.pimc_net import PimcNet

__all__ = [
    "AugmentConfig",
    "PretrainConfig",
    "PretrainResult",
    "batch_order",
    "dist_info",
    "pretrain",
    "pretrain_batches",
    "step_batches",
]

#: settings that may change between a run and its resumption (logging and checkpoint cadence)
_NOT_RESUME_KEYS = ("log_every", "checkpoint_every", "keep_checkpoints")


@declared
@dataclass
class PretrainConfig(Checked):
    """Hyper-parameters of :func:`pretrain`.

    Attributes:
        steps: optimisation steps (batches); 0: no pretraining.
        batch_size: pixels per step (per process under DDP).
        lr, weight_decay: AdamW.
        warmup_steps: linear warm-up, then cosine decay to ``min_lr_ratio * lr``.
        modality_dropout: probability of dropping the RP or the series branch of the temporal
            view of a pixel (never both).
        reconstruct: weight of a reconstruction term (as in OmniSat's masked reconstruction): a
            small decoder (:meth:`PimcNet.attach_reconstructor`, not kept in model files)
            recovers the un-augmented standardised series from the temporal view, so the
            embedding keeps what the series says beyond what the patch can predict (0: off).
        prototypes: K > 0 adds a cross-modal swapped-prototype term (SwAV-style,
            :class:`pimc_core.models.contrastive.SwappedPrototypes`, not kept in model files): each view
            predicts the other view's balanced assignment to K learnable prototypes, which groups
            pixels with a similar phenology instead of only telling pixels apart (0: off).
        prototype_weight: weight of that term.
        augment: :class:`~pimc_core.learn.augment.AugmentConfig`.
        seed: everything random derives from it.
        checkpoint_every: steps between checkpoints (0: only at the end when a folder is given).
        keep_checkpoints: how many step checkpoints to keep (the newest).
        amp: mixed precision on CUDA (ignored on CPU).
        grad_clip: clip the gradient norm (0: off).
        log_every: steps between log lines / progress updates.
    """

    steps: int = param(500, COUNT)
    batch_size: int = param(256, POSITIVE_INT)
    lr: float = param(2e-3, POSITIVE)
    weight_decay: float = param(1e-4, NON_NEGATIVE)
    warmup_steps: int = param(50, COUNT)
    min_lr_ratio: float = param(0.05, NON_NEGATIVE)
    modality_dropout: float = param(0.2, FRACTION)
    reconstruct: float = param(0.0, NON_NEGATIVE)
    prototypes: int = param(0, COUNT)
    prototype_weight: float = param(1.0, NON_NEGATIVE)
    augment: AugmentConfig = param(AugmentConfig, factory=AugmentConfig)  # a mapping: its fields
    seed: int = param(0, COUNT)
    checkpoint_every: int = param(200, COUNT)
    keep_checkpoints: int = param(2, COUNT)
    amp: bool = param(True, "boolean")
    grad_clip: float = param(5.0, NON_NEGATIVE)
    log_every: int = param(20, COUNT)

    _config_name: ClassVar[str] = "pretrain"

    def _convert(self) -> None:
        self.augment = AugmentConfig.of(self.augment)

    def _check(self) -> None:
        if self.prototypes == 1:
            raise ConfigError("pretrain.prototypes must be 0 (off) or at least 2; got 1")


@dataclass
class PretrainResult:
    """What :func:`pretrain` did: per-step losses, steps run, resumed-from step, seconds, temperature."""

    losses: list[float]
    steps: int
    resumed_from: int
    seconds: float
    temperature: float

    def summary(self) -> dict[str, Any]:
        head = float(np.mean(self.losses[: max(1, len(self.losses) // 10)])) if self.losses else float("nan")
        tail = float(np.mean(self.losses[-max(1, len(self.losses) // 10):])) if self.losses else float("nan")
        return {"steps": self.steps, "loss_start": round(head, 4), "loss_end": round(tail, 4),
                "temperature": round(self.temperature, 4), "seconds": round(self.seconds, 1),
                "resumed_from": self.resumed_from}


# ============================================================================ batches
def batch_order(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """This rank's sample indices of an epoch, in order (``DistributedSampler`` semantics:
    a seeded permutation, padded to a multiple of ``world`` by wrapping, then ``rank::world``)."""
    g = torch.Generator()
    g.manual_seed(int(seed) * 100_003 + int(epoch))
    perm = torch.randperm(n, generator=g).numpy()
    total = int(math.ceil(n / world)) * world
    if total > n:
        perm = np.concatenate([perm, perm[: total - n]])
    return perm[rank::world]


def pretrain_batches(n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> Batches:
    """The batches of pretraining: epochs of :func:`batch_order`, full batches only (the tail
    of an epoch that does not fill a batch is skipped), so step ``s`` always sees the same pixels
    whether or not the run was interrupted before it."""
    per_rank = int(math.ceil(n / world))
    if per_rank < batch_size:
        raise ConfigError(f"batch_size {batch_size} is larger than the {per_rank} samples per process")
    return Batches(per_rank, batch_size, lambda epoch: batch_order(n, batch_size, seed, epoch, rank, world), drop_tail=True)


def step_batches(n: int, batch_size: int, seed: int, start_step: int, rank: int = 0, world: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(step, indices)`` of :func:`pretrain_batches` from ``start_step`` on, without end."""
    for _, step, idx in pretrain_batches(n, batch_size, seed, rank, world).steps(start_step):
        yield step, idx


# ============================================================================ the loop
def pretrain(
    net: PimcNet,
    series: np.ndarray,
    patches: np.ndarray,
    cfg: PretrainConfig,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool | Callable[[int, int, float], None] = False,
    log: Callable[[str], None] | None = None,
    fault_at_step: int | None = None,
) -> PretrainResult:
    """Pretrain ``net``'s encoders and projection heads by symmetric InfoNCE (in place).

    Args:
        net: the network (its normalisation must be set).
        series: (N, C, T) float32 gap-filled index series of the pretraining pixels.
        patches: (N, B, k, k) float32 reference-image patches of the same pixels.
        cfg: :class:`PretrainConfig`.
        checkpoint_dir: folder for ``step_*.pt`` checkpoints (None: none).
        resume: continue from the newest checkpoint in ``checkpoint_dir`` when there is one.
        device: default: the local CUDA device if any, else CPU.
        progress: a tqdm bar (True) or ``progress(step, steps, loss)``.
        log: called with a line every ``cfg.log_every`` steps (rank 0 only).
        fault_at_step: testing aid: raise RuntimeError just before running this step.

    Returns:
        :class:`PretrainResult`.
    """
    info = init_distributed()
    device = torch.device(device) if device is not None else default_device()
    n = int(series.shape[0])
    if patches is None or patches.shape[0] != n:
        raise ConfigError("pretraining needs one patch per series")
    if cfg.batch_size < 2:  # InfoNCE contrasts the pixels of a batch (and BatchNorm needs 2)
        raise ConfigError(f"pretrain.batch_size must be at least 2: contrastive pretraining compares the pixels "
                          f"of a batch; got {cfg.batch_size}")
    if n < cfg.batch_size * max(1, info.world_size):
        raise ConfigError(f"pretraining needs at least batch_size x processes = {cfg.batch_size * info.world_size} pixels; got {n}")
    t0 = time.perf_counter()
    if cfg.reconstruct > 0:
        net.attach_reconstructor()
    if cfg.prototypes > 0:
        net.attach_prototypes(cfg.prototypes)
    net.to(device)
    params = [p for name, p in net.named_parameters() if not name.startswith(("classifier.", "forecaster."))]
    opt = Optimiser([{"params": params, "lr": cfg.lr}], total=cfg.steps, warmup=cfg.warmup_steps,
                    min_lr_ratio=cfg.min_lr_ratio, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                    amp=cfg.amp, device=device)
    model: nn.Module = net
    if info.active:  # launched by torchrun (any world size, 1 included)
        unused = net.classifier is not None or net.forecaster is not None  # heads idle while pretraining
        model = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused)
    gather = gather_with_grad if info.active else None

    losses: list[float] = []
    start = 0
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    key = config_key(cfg, _NOT_RESUME_KEYS)
    last = latest_checkpoint(ckdir) if resume else None
    if last is not None:
        st = load_checkpoint(last)
        check_same_config(st, key, last)
        net.load_state_dict(st["model"])
        if st.get("normalisation"):
            net.set_normalisation(st["normalisation"])
        opt.optimizer.load_state_dict(st["optimizer"])
        opt.scheduler.load_state_dict(st["scheduler"])
        if "scaler" in st and opt.amp:
            opt.scaler.load_state_dict(st["scaler"])
        set_rng_state(st["rng"])
        start = int(st["step"])
        losses = [float(v) for v in st["losses"]]
    resumed_from = start

    # data on the device once (pixel samples are small), pinned batches otherwise
    xs_all = torch.from_numpy(np.ascontiguousarray(series, np.float32))
    ps_all = torch.from_numpy(np.ascontiguousarray(patches, np.float32))
    if device.type == "cuda":
        xs_all, ps_all = xs_all.to(device), ps_all.to(device)
    s_std = net.idx_std.detach().cpu()
    b_std = net.band_std.detach().cpu()
    temporal = ("rp", "series") if net.series_encoder is not None else ("rp",)

    def rng(step: int) -> torch.Generator:
        if fault_at_step is not None and step == fault_at_step:
            raise RuntimeError(f"injected fault before step {step}")
        return step_generator(cfg.seed, step, info.rank)

    def loss_of(idx: np.ndarray, g: torch.Generator) -> torch.Tensor:
        ii = torch.from_numpy(idx).to(xs_all.device)
        x_raw = xs_all.index_select(0, ii).to(device, non_blocking=True)
        p = ps_all.index_select(0, ii).to(device, non_blocking=True)
        x = augment_series(x_raw, cfg.augment, g, noise_scale=s_std.expand(x_raw.shape[0], -1))
        p = augment_patches(p, cfg.augment, g, noise_scale=b_std.expand(p.shape[0], -1))
        mask = random_modality_mask(modality_mask(x.shape[0], temporal, device), cfg.modality_dropout, g)
        extra: dict[str, Any] = {}
        if cfg.reconstruct > 0:
            extra.update(target=x_raw, reconstruct_weight=float(cfg.reconstruct))
        if cfg.prototypes > 0:
            extra["prototype_weight"] = float(cfg.prototype_weight)
        # through the (DDP) wrapper's forward, so that gradients are synchronised across ranks
        return model(x, p, mask=mask, task="contrastive", gather=gather, **extra)

    def after_step(done: int, lv: float) -> None:
        if not math.isfinite(lv):
            raise InputError(f"pretraining diverged at step {done - 1} (loss {lv}); lower pretrain.lr")
        if log is not None and info.is_main and cfg.log_every and done % cfg.log_every == 0:
            log(f"pretrain step {done}/{cfg.steps} loss {np.mean(losses[-cfg.log_every:]):.4f} "
                f"tau {net.contrastive.temperature:.4f} lr {opt.lr:.2e}")
        if ckdir is not None and info.is_main and (
            (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == cfg.steps
        ):
            save_checkpoint(ckdir, done, {
                "model": net.state_dict(), "optimizer": opt.optimizer.state_dict(),
                "scheduler": opt.scheduler.state_dict(), "scaler": opt.scaler.state_dict(), "rng": rng_state(),
                "step": done, "losses": torch.tensor(losses, dtype=torch.float64), "config": key,
                "normalisation": net.normalisation(),
            }, cfg.keep_checkpoints)

    batches = pretrain_batches(n, cfg.batch_size, cfg.seed, info.rank, info.world_size)
    run_steps(opt, batches, cfg.steps, loss_of, rng, start=start, losses=losses, train_mode=model.train,
              after_step=after_step, progress=progress if info.is_main else False, desc="pretrain")
    net.eval()
    return PretrainResult(losses, len(losses), resumed_from, time.perf_counter() - t0, net.contrastive.temperature)
