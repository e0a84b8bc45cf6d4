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

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from pimc_core.devices import auto_threads
from pimc_core.errors import ConfigError, InputError
from pimc_core.models.pimc_net import PimcNet, modality_mask, random_modality_mask

__all__ = [
    "AugmentConfig",
    "PretrainConfig",
    "PretrainResult",
    "augment_patches",
    "augment_series",
    "auto_threads",
    "dist_info",
    "pretrain",
]


# ============================================================================ configs
@dataclass
class AugmentConfig:
    """Augmentations of the two views.

    Attributes:
        drop_obs: share of the observations of a series dropped and re-interpolated linearly
            (simulates clouds); drawn uniformly in [0, drop_obs] per pixel.
        series_noise: Gaussian noise added to the standardised series (std).
        patch_flip: apply one of the 8 flips / 90° rotations to each patch.
        patch_noise: Gaussian noise added to the standardised patches (std).
        time_shift: shift each series in time by a uniform random fraction of up to this many
            steps (linear interpolation, ends held), e.g. sowing dates a few days apart.
        amplitude: scale each series about its minimum by a uniform random factor in
            ``[1 - amplitude, 1 + amplitude]`` (crop vigour), the same for every index.
        channel_scale: the same, drawn independently per index (soil / canopy differences that
            move EVI and SAVI but not the phenology).
    """

    drop_obs: float = 0.2
    series_noise: float = 0.03
    patch_flip: bool = True
    patch_noise: float = 0.05
    time_shift: float = 0.0
    amplitude: float = 0.0
    channel_scale: float = 0.0

    def __post_init__(self) -> None:
        for name in ("drop_obs", "series_noise", "patch_noise", "time_shift", "amplitude", "channel_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (name == "drop_obs" and v >= 1):
                raise ConfigError(f"augment.{name} must be a number >= 0{' and < 1' if name == 'drop_obs' else ''}; got {v!r}")


@dataclass
class PretrainConfig:
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
        augment: :class:`AugmentConfig`.
        seed: everything random derives from it.
        checkpoint_every: steps between checkpoints (0: only at the end when a folder is given).
        keep_checkpoints: how many step checkpoints to keep (the newest).
        amp: mixed precision on CUDA (ignored on CPU).
        grad_clip: clip the gradient norm (0: off).
        log_every: steps between log lines / progress updates.
    """

    steps: int = 500
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    modality_dropout: float = 0.2
    reconstruct: float = 0.0
    prototypes: int = 0
    prototype_weight: float = 1.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    amp: bool = True
    grad_clip: float = 5.0
    log_every: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.augment, Mapping):
            self.augment = AugmentConfig(**self.augment)
        v = self.batch_size
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"pretrain.batch_size must be a positive integer; got {v!r}")
        for name in ("steps", "warmup_steps", "checkpoint_every", "keep_checkpoints", "log_every", "seed", "prototypes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"pretrain.{name} must be an integer >= 0; got {v!r}")
        if not 0 <= self.modality_dropout < 1:
            raise ConfigError(f"pretrain.modality_dropout must be in [0, 1); got {self.modality_dropout!r}")
        for name in ("reconstruct", "prototype_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise ConfigError(f"pretrain.{name} must be a number >= 0; got {v!r}")
        if self.prototypes == 1:
            raise ConfigError("pretrain.prototypes must be 0 (off) or at least 2; got 1")
        if not self.lr > 0:
            raise ConfigError(f"pretrain.lr must be > 0; got {self.lr!r}")


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


# ============================================================================ augmentation
def _gen(*parts: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0]))
    return g


def interpolate_missing(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Replace ``x[..., t]`` where ``keep`` is False by linear interpolation (by position)
    between the nearest kept steps; nearest kept value before the first / after the last.

    Args:
        x: (N, C, T). keep: (N, T) bool, at least one True per row.
    """
    n, c, t = x.shape
    pos = torch.arange(t, device=x.device).expand(n, t)
    prev = torch.where(keep, pos, torch.full_like(pos, -1)).cummax(dim=1).values
    nxt = torch.where(keep, pos, torch.full_like(pos, t)).flip(1).cummin(dim=1).values.flip(1)
    no_prev, no_next = prev < 0, nxt >= t
    prev = torch.where(no_prev, nxt, prev).clamp(0, t - 1)
    nxt = torch.where(no_next, prev, nxt).clamp(0, t - 1)
    den = (nxt - prev).float()
    w = torch.where(den > 0, (pos - prev).float() / den.clamp_min(1), torch.zeros_like(den))
    vp = x.gather(2, prev[:, None, :].expand(n, c, t))
    vn = x.gather(2, nxt[:, None, :].expand(n, c, t))
    return vp + (vn - vp) * w[:, None, :].to(x.dtype)


def shift_series(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Resample (N, C, T) series at positions ``t + shift[n]`` (linear, ends held)."""
    n, c, t = x.shape
    pos = (torch.arange(t, device=x.device, dtype=x.dtype)[None] + shift.to(x.dtype)[:, None]).clamp(0, t - 1)
    lo = pos.floor().long().clamp(0, t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (pos - lo.to(x.dtype))[:, None, :]
    vl = x.gather(2, lo[:, None, :].expand(n, c, t))
    vh = x.gather(2, hi[:, None, :].expand(n, c, t))
    return vl + (vh - vl) * w


def augment_series(series: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
                   noise_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Time shift, amplitude scaling, dropped observations (re-interpolated) and noise; (N, C, T)."""
    n, c, t = series.shape
    x = series
    if cfg.time_shift > 0 and t > 1:
        shift = (torch.rand(n, generator=g) * 2 - 1) * cfg.time_shift
        x = shift_series(x, shift.to(x.device))
    if cfg.amplitude > 0 or cfg.channel_scale > 0:
        scale = 1 + (torch.rand(n, 1, 1, generator=g) * 2 - 1) * cfg.amplitude
        scale = scale + (torch.rand(n, c, 1, generator=g) * 2 - 1) * cfg.channel_scale
        low = x.amin(dim=2, keepdim=True)
        x = low + (x - low) * scale.to(x.device)
    if cfg.drop_obs > 0 and t > 2:
        rate = torch.rand(n, 1, generator=g) * cfg.drop_obs
        keep = torch.rand(n, t, generator=g) >= rate
        keep[:, 0] |= ~keep.any(dim=1)
        x = interpolate_missing(x, keep.to(x.device))
    if cfg.series_noise > 0:
        eps = torch.randn(n, c, t, generator=g).to(x.device) * cfg.series_noise
        if noise_scale is not None:
            eps = eps * noise_scale.to(x.device)[:, :, None]
        x = x + eps
    return x


def augment_patches(patches: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
                    noise_scale: torch.Tensor | None = None) -> torch.Tensor:
    """One of the 8 dihedral transforms per patch, plus noise; (N, B, k, k)."""
    p = patches
    if cfg.patch_flip and p.shape[-1] == p.shape[-2]:
        code = torch.randint(0, 8, (p.shape[0],), generator=g)
        out = p.clone()
        for k in range(8):
            sel = (code == k).nonzero().flatten().to(p.device)
            if sel.numel() == 0 or k == 0:
                continue
            q = p.index_select(0, sel)
            if k & 4:
                q = q.transpose(-1, -2)
            q = torch.rot90(q, k & 3, dims=(-2, -1))
            out.index_copy_(0, sel, q)
        p = out
    if cfg.patch_noise > 0:
        eps = torch.randn(p.shape, generator=g).to(p.device) * cfg.patch_noise
        if noise_scale is not None:
            eps = eps * noise_scale.to(p.device)[:, :, None, None]
        p = p + eps
    return p


# ============================================================================ threads


# ============================================================================ distributed
@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized()


def dist_info() -> DistInfo:
    """Rank / world size from ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(backend: str | None = None) -> DistInfo:
    """Initialise the process group when launched by ``torchrun`` (``WORLD_SIZE`` set); idempotent."""
    info = dist_info()
    if "WORLD_SIZE" not in os.environ or not torch.distributed.is_available():
        return info
    if not torch.distributed.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        torch.distributed.init_process_group(backend=backend)
    return info


class _GatherLayer(torch.autograd.Function):
    """all_gather that lets gradients flow back to each rank's own slice (as in SimCLR)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor):  # type: ignore[override]
        out = [torch.zeros_like(x) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # type: ignore[override]
        g = torch.stack(grads)
        torch.distributed.all_reduce(g)
        return g[torch.distributed.get_rank()]


def _gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    return torch.cat(_GatherLayer.apply(x), dim=0)


def default_device() -> torch.device:
    info = dist_info()
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank if "WORLD_SIZE" in os.environ else torch.cuda.current_device())
    return torch.device("cpu")


# ============================================================================ checkpoints
def _ckpt_name(step: int) -> str:
    return f"step_{step:08d}.pt"


def latest_checkpoint(folder: str | os.PathLike | None) -> Path | None:
    """The newest ``step_*.pt`` in ``folder`` (None when there is none)."""
    if folder is None:
        return None
    p = Path(folder)
    if not p.is_dir():
        return None
    files = sorted(p.glob("step_*.pt"))
    return files[-1] if files else None


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _ckpt_name(step)
    tmp = folder / f".{final.name}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, final)
    if keep > 0:
        for old in sorted(folder.glob("step_*.pt"))[:-keep]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code runs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / foreign file
        raise InputError(f"{path}: not a readable PIMC checkpoint ({str(e).splitlines()[0][:200]})") from None


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: Mapping[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(st["cuda"]))


# ============================================================================ schedule
def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min_ratio``."""

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        span = max(1, total - warmup)
        prog = min(1.0, (step - warmup) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * prog))

    return f


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


def step_batches(n: int, batch_size: int, seed: int, start_step: int, rank: int = 0, world: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(step, indices)`` from ``start_step`` on: epochs of seeded permutations, full batches
    only (the tail of an epoch that does not fill a batch is skipped), so step ``s`` always sees
    the same pixels whether or not the run was interrupted before it."""
    per_rank = int(math.ceil(n / world))
    per_epoch = max(1, per_rank // batch_size)
    if per_rank < batch_size:
        raise ConfigError(f"batch_size {batch_size} is larger than the {per_rank} samples per process")
    step = start_step
    while True:
        epoch, pos = divmod(step, per_epoch)
        order = batch_order(n, batch_size, seed, epoch, rank, world)
        for b in range(pos, per_epoch):
            yield step, order[b * batch_size:(b + 1) * batch_size]
            step += 1


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
    if n < cfg.batch_size * max(1, info.world_size):
        raise ConfigError(f"pretraining needs at least batch_size x processes = {cfg.batch_size * info.world_size} pixels; got {n}")
    t0 = time.perf_counter()
    if cfg.reconstruct > 0:
        net.attach_reconstructor()
    if cfg.prototypes > 0:
        net.attach_prototypes(cfg.prototypes)
    net.to(device)
    params = [p for name, p in net.named_parameters() if not name.startswith(("classifier.", "forecaster."))]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio))
    use_amp = bool(cfg.amp and device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    model: nn.Module = net
    if info.active:  # launched by torchrun (any world size, 1 included)
        unused = net.classifier is not None or net.forecaster is not None  # heads idle while pretraining
        model = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused)
    gather = _gather_with_grad if info.active else None

    losses: list[float] = []
    start = 0
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    last = latest_checkpoint(ckdir) if resume else None
    if last is not None:
        st = load_checkpoint(last)
        _check_ckpt_config(st, cfg, last)
        net.load_state_dict(st["model"])
        if st.get("normalisation"):
            net.set_normalisation(st["normalisation"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        if "scaler" in st and use_amp:
            scaler.load_state_dict(st["scaler"])
        _set_rng_state(st["rng"])
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

    bar = None
    if progress is True and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc="pretrain", unit="step", leave=False)
    model.train()
    try:
        for step, idx in step_batches(n, cfg.batch_size, cfg.seed, start, info.rank, info.world_size):
            if step >= cfg.steps:
                break
            if fault_at_step is not None and step == fault_at_step:
                raise RuntimeError(f"injected fault before step {step}")
            g = _gen(cfg.seed, step, info.rank)
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))  # dropout layers
            ii = torch.from_numpy(idx).to(xs_all.device)
            x = xs_all.index_select(0, ii).to(device, non_blocking=True)
            p = ps_all.index_select(0, ii).to(device, non_blocking=True)
            x_raw = x
            x = augment_series(x_raw, cfg.augment, g, noise_scale=s_std.expand(x.shape[0], -1))
            p = augment_patches(p, cfg.augment, g, noise_scale=b_std.expand(p.shape[0], -1))
            base = modality_mask(x.shape[0], ("rp", "series") if net.series_encoder is not None else ("rp",), device)
            mask = random_modality_mask(base, cfg.modality_dropout, g)
            extra: dict[str, Any] = {}
            if cfg.reconstruct > 0:
                extra.update(target=x_raw, reconstruct_weight=float(cfg.reconstruct))
            if cfg.prototypes > 0:
                extra["prototype_weight"] = float(cfg.prototype_weight)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                loss = _contrastive(model, net, x, p, mask, gather, extra)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise InputError(f"pretraining diverged at step {step} (loss {lv}); lower pretrain.lr")
            losses.append(lv)
            done = step + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{lv:.3f}")
            elif callable(progress) and info.is_main:
                progress(done, cfg.steps, lv)
            if log is not None and info.is_main and cfg.log_every and done % cfg.log_every == 0:
                log(f"pretrain step {done}/{cfg.steps} loss {np.mean(losses[-cfg.log_every:]):.4f} "
                    f"tau {net.contrastive.temperature:.4f} lr {sched.get_last_lr()[0]:.2e}")
            if ckdir is not None and info.is_main and (
                (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == cfg.steps
            ):
                save_checkpoint(ckdir, done, {
                    "model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict(), "rng": _rng_state(), "step": done,
                    "losses": torch.tensor(losses, dtype=torch.float64), "config": _cfg_dict(cfg),
                    "normalisation": net.normalisation(),
                }, cfg.keep_checkpoints)
    finally:
        if bar is not None:
            bar.close()
    net.eval()
    return PretrainResult(losses, len(losses), resumed_from, time.perf_counter() - t0, net.contrastive.temperature)


def _contrastive(model: nn.Module, net: PimcNet, x, p, mask, gather, extra: Mapping[str, Any]) -> torch.Tensor:
    # through the (DDP) wrapper's forward, so that gradients are synchronised across ranks
    return model(x, p, mask=mask, task="contrastive", gather=gather, **extra)


def _cfg_dict(cfg: PretrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    # only what must match to resume exactly (not logging / checkpoint cadence)
    for k in ("log_every", "checkpoint_every", "keep_checkpoints"):
        d.pop(k, None)
    return d


def _check_ckpt_config(st: Mapping[str, Any], cfg: PretrainConfig, path: Path) -> None:
    old = st.get("config") or {}
    new = _cfg_dict(cfg)
    diff = [k for k in new if k in old and old[k] != new[k]]
    if diff:
        raise ConfigError(
            f"{path}: checkpoint was written with different settings ({', '.join(diff)}); "
            "use another checkpoint folder or the same configuration to resume"
        )
