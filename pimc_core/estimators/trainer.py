"""Training the classifier's networks inside a wall-clock share: the one-cycle epoch loop.

:func:`run_epochs` runs AdamW over shuffled epochs with a one-cycle learning rate
(:func:`one_cycle`: linear warm-up over the first 20 %, cosine decay to ~0) of the *progress*
``max(step / total_steps, elapsed / seconds)``, so a machine slower than planned still anneals
fully and stops on time. The planning aids measure what a step and an inference pass cost
(:func:`time_steps`, :func:`time_inference`) and round affordable epochs onto a coarse grid
(:func:`round_epochs`), so that small differences in measured speed give the same, seeded, plan;
:func:`recalibrate_bn` re-estimates BatchNorm statistics with the final weights.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

__all__ = [
    "MIN_FINETUNE_S",
    "Runtime",
    "one_cycle",
    "recalibrate_bn",
    "round_epochs",
    "run_epochs",
    "time_inference",
    "time_steps",
]

#: Seconds of fine-tuning granted even when the budget is used up (so a model always trains).
MIN_FINETUNE_S = 5.0


@dataclass
class Runtime:
    """Where and how the networks run, and where progress messages go.

    Attributes:
        device: The torch device.
        amp: Automatic mixed precision (float16) on CUDA; ignored on CPU.
        verbose: Show tqdm bars and phase messages.
        say: Where the messages go (when ``verbose``).
    """

    device: torch.device
    amp: bool = True
    verbose: bool = False
    say: Callable[[str], None] = print

    def message(self, msg: str) -> None:
        if self.verbose:
            self.say(msg)

    def autocast(self) -> Any:
        """float16 autocast on CUDA with ``amp``; a disabled context otherwise."""
        if self.device.type == "cuda" and self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cpu", enabled=False)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def one_cycle(progress: float, warmup: float = 0.2, floor: float = 1e-3) -> float:
    """Learning-rate factor at training progress ``[0, 1]``: linear warm-up, cosine decay."""
    if progress < warmup:
        return 0.04 + 0.96 * progress / warmup
    q = (progress - warmup) / (1.0 - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(q, 1.0)))


def round_epochs(epochs: float) -> int:
    """Round an affordable number of epochs *down* onto a coarse grid (1, 2, 3, 4, 5, 6, 8, 10,
    12, 15, 20, 25, 30, 40, 50, 60, 80, 100, ...), so that small differences in measured speed
    give the same plan (and hence the same, seeded, result)."""
    grid = [1, 2, 3, 4, 5, 6, 8]
    scale = 10
    while grid[-1] < epochs:
        grid += [scale, int(scale * 1.2), int(scale * 1.5), 2 * scale, int(scale * 2.5),
                 3 * scale, 4 * scale, 5 * scale, 6 * scale, 8 * scale]
        scale *= 10
    best = 1
    for g in grid:
        if g <= epochs:
            best = g
    return best


class _Progress:
    """tqdm progress bar when ``verbose``; a no-op otherwise."""

    def __init__(self, total: int, desc: str, verbose: bool) -> None:
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="ep", leave=False, dynamic_ncols=True, mininterval=1.0)

    def update(self, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(**postfix, refresh=False)
            self.bar.update(1)

    def set_total(self, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def time_steps(
    rt: Runtime, step: Callable[[], torch.Tensor], params: list[nn.Parameter], modules: list[nn.Module], n_steps: int = 2
) -> float:
    """Seconds per optimisation step (median, after warm-up); weights and BN statistics restored.

    Args:
        rt: Where the step runs.
        step: Computes the loss of one batch (a scalar tensor).
        params: The parameters the step trains.
        modules: The modules whose state is saved and restored around the measurement.
        n_steps: Steps measured after two warm-up steps.
    """
    saved = [copy.deepcopy(m.state_dict()) for m in modules]
    opt = torch.optim.SGD(params, lr=0.0)
    times = []
    warmup = 2  # the first steps pay one-off costs (kernel selection, allocations)
    for i in range(n_steps + warmup):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        step().backward()
        opt.step()
        rt.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    for m, state in zip(modules, saved):
        m.load_state_dict(state)
    return float(np.median(times))


def run_epochs(
    rt: Runtime,
    params: list[nn.Parameter],
    modules: list[nn.Module],
    loss_of_batch: Callable[[np.ndarray, torch.Generator], torch.Tensor],
    n: int,
    batch_size: int,
    epochs: int,
    lr: float,
    seconds: float,
    gen: torch.Generator,
    desc: str,
    weight_decay: float,
    replan: Callable[[float], tuple[int, float]] | None = None,
    time_driven: bool = False,
) -> list[float]:
    """AdamW over up to ``epochs`` shuffled passes of ``n`` samples within ``seconds``.

    ``loss_of_batch(indices (B,), gen)`` gives the loss of one batch. ``replan(first_epoch_seconds)
    -> (epochs, seconds)``, when given, is called once after the first epoch to correct the plan
    with the measured speed. With ``time_driven`` the run uses all of ``seconds`` (``epochs`` is
    then only a cap): the schedule follows the elapsed time from the first step, so a machine that
    is busier or quieter than it was when the plan was made still gets a fully annealed model, on
    time.

    The learning rate follows a one-cycle curve (linear warm-up over the first 20 %, cosine
    decay to ~0) of the *progress* ``max(step / total_steps, elapsed / seconds)``: when the
    machine is slower than planned, the schedule still anneals fully and training stops on
    time instead of being cut at a high learning rate. Parameters with more than one dimension
    get ``weight_decay``; biases and norms none.

    Returns:
        The mean loss of each epoch run.
    """
    steps_per_epoch = max(1, n // batch_size)  # drop the last partial batch (BatchNorm)
    total = steps_per_epoch * epochs
    decay, no_decay = [], []
    for p in params:
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    scaler = torch.amp.GradScaler("cuda", enabled=rt.device.type == "cuda" and rt.amp)
    for m in modules:
        m.train()
    losses: list[float] = []
    bar = _Progress(epochs, desc, rt.verbose)
    t0 = time.perf_counter()
    step = 0
    progress = 0.0
    ep = 0
    try:
        while ep < epochs:
            perm = torch.randperm(n, generator=gen).numpy()
            tot, cnt = 0.0, 0
            for s in range(steps_per_epoch):
                progress = step / total
                if time_driven or step >= steps_per_epoch:  # past the first epoch, time may end the run
                    progress = max(progress, (time.perf_counter() - t0) / max(seconds, 1e-9))
                if progress >= 1.0:
                    break
                for group in opt.param_groups:
                    group["lr"] = lr * one_cycle(progress)
                idx = perm[s * batch_size : (s + 1) * batch_size] if n >= batch_size else perm
                loss = loss_of_batch(idx, gen)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(params, 5.0)
                scaler.step(opt)
                scaler.update()
                step += 1
                tot += float(loss.detach())
                cnt += 1
            if cnt:
                losses.append(tot / cnt)
            bar.update(loss=f"{losses[-1]:.3f}" if losses else "nan")
            ep += 1
            if progress >= 1.0:
                if ep < epochs:
                    rt.message(f"[{desc}] time share used after {ep}/{epochs} epochs (schedule annealed)")
                break
            if replan is not None and ep == 1:
                epochs, seconds = replan(time.perf_counter() - t0)
                epochs = max(epochs, 1)
                total = steps_per_epoch * epochs
                bar.set_total(epochs)
                replan = None
    finally:
        bar.close()
    return losses


@torch.no_grad()
def time_inference(rt: Runtime, net: nn.Module, xb: torch.Tensor) -> float:
    """Seconds per series of an eval-mode forward pass of ``xb (B, ...)`` (median of 3 after a
    warm-up); the training mode of ``net`` is restored."""
    was_training = net.training
    net.eval()
    times = []
    for i in range(4):
        t0 = time.perf_counter()
        with rt.autocast():
            net(xb)
        rt.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    net.train(was_training)
    return float(np.median(times)) / max(1, xb.shape[0])


@torch.no_grad()
def recalibrate_bn(rt: Runtime, net: nn.Module, Z: torch.Tensor, seed: int, max_samples: int = 8192, batch: int = 512) -> None:
    """Re-estimate BatchNorm running statistics with the final weights on clean training series.

    The running averages kept during training mix statistics of earlier weights and of
    augmented inputs; with few optimisation steps (small data, short budgets) that bias
    hurts evaluation. One cumulative pass over (up to ``max_samples``, drawn with ``seed``)
    training series ``Z (N, C, T)`` fixes it. ``net`` is left in eval mode.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    net.train()
    n = min(Z.shape[0], max_samples)
    order = torch.randperm(Z.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    step = max(2, min(batch, n))
    with rt.autocast():
        for s in range(0, n, step):
            xb = Z[order[s : s + step].to(Z.device)]
            if xb.shape[0] >= 2:
                net(xb)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    net.eval()
