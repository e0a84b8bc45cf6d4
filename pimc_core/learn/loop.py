"""The optimisation loop every PIMC training runs: pretraining, classifier fine-tuning, forecaster.

One step::

    batch indices (a seeded permutation per epoch) → the step's generator (seeded by the run's
    seed, a stream tag and the step; it also reseeds torch's global RNG for dropout layers)
    → loss (the caller's function of the batch and the generator; under float16 autocast on CUDA
    when mixed precision is on) → AdamW step (gradient scaling with mixed precision, gradient-norm
    clipping) → learning-rate schedule (linear warm-up, then cosine decay to ``min_lr_ratio``)

* :class:`Batches`: which samples each step sees. Epoch ``e`` uses ``order(e)`` (by default
  :func:`permutation`, a ``torch.randperm`` seeded by ``seed * 7919 + stream + e``) cut into
  ``max(1, size // batch_size)`` batches; the tail that does not fill a batch joins the last
  batch (``drop_tail=False``) or is skipped (``drop_tail=True``), so step ``s`` always sees the
  same samples, also after a resume.
* :class:`Optimiser`: AdamW over parameter groups, the schedule, an optional ``GradScaler``
  (mixed precision on CUDA only: CPU training stays float32) and clipping; one :meth:`~Optimiser.step`.
* :func:`run_steps`: the loop: epochs until ``total`` steps, a hook to set train / eval modes at
  each epoch, after each step (logging, checkpoints) and after each epoch (validation for early
  stopping, :class:`BestState`), a tqdm bar or a ``progress(step, total, loss)`` callback.
* :class:`WeightAverage`: an ``after_step`` hook that keeps the mean of the weights over the last
  steps (stochastic weight averaging) and loads it at the end.

Everything random derives from the seed and the step number, never from state carried across
steps, so a run is reproducible on the CPU and an interrupted one resumes to the same weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from pimc_core.devices import autocast

__all__ = ["BestState", "Batches", "Optimiser", "WeightAverage", "loss_summary", "lr_lambda", "permutation",
           "run_steps", "step_generator", "total_steps"]


def step_generator(*parts: int) -> torch.Generator:
    """A ``torch.Generator`` seeded from integers (e.g. ``(seed, stream, step)``) through ``numpy.random.SeedSequence``."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0]))
    return g


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Learning-rate factor of step ``s``: linear warm-up for ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        span = max(1, total - warmup)
        prog = min(1.0, (step - warmup) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * prog))

    return f


def permutation(n: int, seed: int, epoch: int, stream: int = 0) -> np.ndarray:
    """The sample order of an epoch: (n,) ``torch.randperm`` seeded by ``seed * 7919 + stream + epoch``."""
    g = torch.Generator()
    g.manual_seed(int(seed) * 7919 + int(stream) + int(epoch))
    return torch.randperm(n, generator=g).numpy()


@dataclass
class Batches:
    """Which samples each step sees (see the module docstring).

    Attributes:
        size: samples per epoch (of this process).
        batch_size: samples per step.
        order: ``order(epoch)`` → (size,) sample indices of the epoch in order.
        drop_tail: skip the samples that do not fill a last batch (else they join it).
    """

    size: int
    batch_size: int
    order: Callable[[int], np.ndarray]
    drop_tail: bool = False

    @classmethod
    def shuffled(cls, n: int, batch_size: int, seed: int, stream: int = 0, drop_tail: bool = False) -> "Batches":
        """Epochs of :func:`permutation` ``(n, seed, epoch, stream)``."""
        return cls(n, batch_size, lambda epoch: permutation(n, seed, epoch, stream), drop_tail)

    @property
    def per_epoch(self) -> int:
        """Steps per epoch: ``max(1, size // batch_size)`` (a set smaller than a batch is one batch)."""
        return max(1, self.size // self.batch_size)

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The batches of an epoch: index arrays of ``batch_size`` (the last one longer or shorter, see ``drop_tail``)."""
        o, bs, nb = self.order(epoch), self.batch_size, self.per_epoch
        return [o[i * bs:(i + 1) * bs] if self.drop_tail or i < nb - 1 else o[i * bs:] for i in range(nb)]

    def steps(self, start: int = 0) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(epoch, step, indices)`` from step ``start`` on, without end."""
        step = start
        epoch, pos = divmod(start, self.per_epoch)
        while True:
            for idx in self.epoch(epoch)[pos:]:
                yield epoch, step, idx
                step += 1
            epoch, pos = epoch + 1, 0


def total_steps(batches: Batches, epochs: int, max_steps: int = 0) -> int:
    """``epochs`` passes of ``batches``, capped at ``max_steps`` when it is > 0."""
    total = batches.per_epoch * int(epochs)
    return min(total, int(max_steps)) if max_steps else total


class Optimiser:
    """AdamW, its warm-up + cosine schedule, gradient scaling and clipping: one optimisation step.

    Args:
        groups: parameter groups, ``[{"params": [...], "lr": ...}, ...]``.
        total: steps of the schedule. warmup: its linear warm-up. min_lr_ratio: its end factor.
        weight_decay: AdamW's.
        grad_clip: clip the gradient norm of all the groups' parameters (0: off).
        amp: mixed precision (float16 autocast + ``GradScaler``), used only on a CUDA ``device``.
        device: where the loss is computed.

    Attributes:
        optimizer, scheduler, scaler: the torch objects (their ``state_dict`` go into checkpoints).
        params: every parameter the step updates.
    """

    def __init__(self, groups: Sequence[Mapping[str, Any]], *, total: int, warmup: int, min_lr_ratio: float,
                 weight_decay: float, grad_clip: float = 0.0, amp: bool = False,
                 device: torch.device | str = "cpu") -> None:
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW([dict(g) for g in groups], weight_decay=weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(warmup, total, min_lr_ratio))
        self.device = torch.device(device)
        self.amp = bool(amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.grad_clip = float(grad_clip)

    def autocast(self):
        """The context the loss is computed in: float16 autocast with mixed precision on CUDA, else nothing."""
        return autocast(self.device, enabled=self.amp)

    def step(self, loss: torch.Tensor) -> float:
        """Back-propagate ``loss``, clip, update the parameters, advance the schedule; returns the loss value."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())

    @property
    def lr(self) -> float:
        """The first group's current learning rate."""
        return self.scheduler.get_last_lr()[0]


class BestState:
    """Early stopping by validation: remembers the weights of the epoch with the lowest score.

    Args:
        module: the network whose ``state_dict`` is kept.
        score: ``score()`` → the validation error after an epoch (lower is better).
    """

    def __init__(self, module: torch.nn.Module, score: Callable[[], float]) -> None:
        self.module, self.score = module, score
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        self.curve: list[float] = []

    def __call__(self, epoch: int) -> None:
        r = self.score()
        self.curve.append(r)
        if self.best is None or r < self.best[0]:
            self.best = (r, epoch, {k: v.detach().clone() for k, v in self.module.state_dict().items()})

    def restore(self) -> dict[str, Any]:
        """Load the best weights; ``{"val_rmse", "best_epoch" (1-based), "val_curve"}`` (empty when never scored)."""
        if self.best is None:
            return {}
        self.module.load_state_dict(self.best[2])
        return {"val_rmse": self.best[0], "best_epoch": self.best[1] + 1, "val_curve": self.curve}


class WeightAverage:
    """Stochastic weight averaging (Izmailov et al., 2018): the uniform mean of a network's weights
    over the last steps of a run, loaded into it at the end.

    Called as ``after_step(steps_done, loss)`` of :func:`run_steps`; it averages the floating
    parameters and buffers (batch-norm statistics too) after every step from ``start`` on and
    leaves integer buffers as they are. torch's ``torch.optim.swa_utils.AveragedModel`` does the
    same on a deep copy of the network, but it also averages integer buffers (``num_batches_tracked``),
    which its averaging function does not support; this keeps one float copy of each tensor instead.

    Args:
        module: the network being trained.
        start: the first step (``steps_done``) whose weights enter the mean.
    """

    def __init__(self, module: torch.nn.Module, start: int) -> None:
        self.module, self.start = module, int(start)
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    def __call__(self, steps_done: int, loss: float = 0.0) -> None:
        if steps_done < self.start:
            return
        self.count += 1
        with torch.no_grad():
            for k, v in self.module.state_dict().items():
                if not v.is_floating_point():
                    continue
                if k not in self.mean:
                    self.mean[k] = v.detach().clone()
                else:
                    self.mean[k].add_(v.detach() - self.mean[k], alpha=1.0 / self.count)

    def load(self) -> int:
        """Load the mean into the network; the number of steps averaged (0: nothing changed)."""
        if self.count:
            state = self.module.state_dict()
            state.update(self.mean)
            self.module.load_state_dict(state)
        return self.count


def run_steps(
    opt: Optimiser,
    batches: Batches,
    total: int,
    loss_of: Callable[[np.ndarray, torch.Generator], torch.Tensor],
    rng: Callable[[int], torch.Generator],
    *,
    start: int = 0,
    losses: list[float] | None = None,
    train_mode: Callable[[], Any] | None = None,
    after_step: Callable[[int, float], None] | None = None,
    after_epoch: Callable[[int], None] | None = None,
    progress: bool | Callable[[int, int, float], None] = False,
    desc: str = "train",
    loss_format: str = ".3f",
) -> list[float]:
    """Run optimisation steps ``start .. total - 1``.

    Args:
        opt: the optimiser.
        batches: which samples each step sees; step ``s`` is batch ``s % per_epoch`` of epoch
            ``s // per_epoch``.
        total: the step to stop before.
        loss_of: ``loss_of(indices, generator)`` → the scalar loss of a batch; ``indices`` (B,)
            int64, ``generator`` the step's (draw augmentations from it).
        rng: ``rng(step)`` → the step's generator; it also reseeds torch's global RNG.
        start: the first step (resuming).
        losses: list the step losses are appended to (default: a new one); returned.
        train_mode: called at the start of every epoch (``net.train()``, or only a head).
        after_step: ``after_step(steps_done, loss)`` (logging, divergence checks, checkpoints).
        after_epoch: ``after_epoch(epoch)`` after every epoch run (validation, :class:`BestState`).
        progress: a tqdm bar (True) or ``progress(steps_done, total, loss)``.
        desc, loss_format: the bar's label and loss format.
    """
    losses = [] if losses is None else losses
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc=desc, unit="step", leave=False)
    ran: int | None = None  # the epoch running
    try:
        for epoch, step, idx in batches.steps(start):
            if step >= total:
                break
            if epoch != ran:
                if ran is not None and after_epoch is not None:
                    after_epoch(ran)
                if train_mode is not None:
                    train_mode()
                ran = epoch
            g = rng(step)
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))  # dropout layers
            with opt.autocast():
                loss = loss_of(idx, g)
            lv = opt.step(loss)
            losses.append(lv)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=format(lv, loss_format))
            elif callable(progress):
                progress(step + 1, total, lv)
            if after_step is not None:
                after_step(step + 1, lv)
        if ran is not None and after_epoch is not None:
            after_epoch(ran)
    finally:
        if bar is not None:
            bar.close()
    return losses


def loss_summary(losses: Sequence[float], digits: int = 4) -> dict[str, float]:
    """``{"loss_start", "loss_end"}``: the mean of the first and of the last tenth of the steps."""
    k = max(1, len(losses) // 10)
    return {"loss_start": round(float(np.mean(losses[:k])), digits), "loss_end": round(float(np.mean(losses[-k:])), digits)}
