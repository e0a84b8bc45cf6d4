"""Several processes, one training: ``torchrun`` ranks, the process group and gathered projections.

Launched by ``torchrun`` (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` in the environment) the
training entry points run distributed data parallel (DDP): :func:`init_distributed` starts the
process group (NCCL on CUDA, gloo on the CPU) once, :func:`default_device` is the rank's GPU,
and :func:`gather_with_grad` concatenates a tensor of every rank so that a contrastive loss sees
the global batch while gradients flow back to each rank's own slice (as in SimCLR). Without
``torchrun`` everything here is the single-process default (rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["DistInfo", "default_device", "dist_info", "gather_with_grad", "init_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and models."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """The process group is initialised (launched by ``torchrun``, any world size)."""
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


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(N, P) of every rank → (world * N, P), rank order; differentiable."""
    return torch.cat(_GatherLayer.apply(x), dim=0)


def default_device() -> torch.device:
    """The rank's CUDA device under ``torchrun`` (``LOCAL_RANK``), the current one otherwise, else the CPU."""
    info = dist_info()
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank if "WORLD_SIZE" in os.environ else torch.cuda.current_device())
    return torch.device("cpu")
