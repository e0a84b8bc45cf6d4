"""Training checkpoints: the whole state of a run at a step, so that a killed run resumes exactly.

A checkpoint is one ``step_{step:08d}.pt`` file in a folder, written with ``torch.save`` under a
temporary name and renamed into place (:func:`pimc_core.io.atomic.atomic_path`), the oldest ones
pruned; it is read back with ``torch.load(weights_only=True)``, so a checkpoint file cannot run
code. It holds what the training loop needs to continue as if never stopped: model, optimiser,
scheduler and gradient-scaler states, the RNG states (:func:`rng_state`), the step, the losses so
far and the settings that must not change between the two runs (:func:`check_same_config`).

Checkpoints are our own training files; delivered models are ``.pimc`` (safetensors) files
(:mod:`pimc_core.models.pixel_model`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from pimc_core.errors import ConfigError, InputError

__all__ = ["check_same_config", "config_key", "latest_checkpoint", "load_checkpoint", "rng_state", "save_checkpoint",
           "set_rng_state"]


def _name(step: int) -> str:
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


def save_checkpoint(folder: Path, step: int, state: Mapping[str, Any], keep: int) -> Path:
    """Write ``state`` as the checkpoint of ``step`` in ``folder`` (created); keep the newest ``keep`` (0: all)."""
    from pimc_core.io.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _name(step)
    with atomic_path(final) as tmp, open(tmp, "wb") as f:  # a file object: a full disk is an OSError
        torch.save(dict(state), f)
    if keep > 0:
        for old in sorted(folder.glob("step_*.pt"))[:-keep]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code runs).

    Raises:
        InputError: not a readable checkpoint (corrupt or foreign file).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / foreign file
        raise InputError(f"{path}: not a readable PIMC checkpoint ({str(e).splitlines()[0][:200]})") from None


def rng_state() -> dict[str, Any]:
    """torch's global RNG states (CPU, and every CUDA device when there is one)."""
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(st["cuda"]))


def config_key(cfg: Any, ignore: Iterable[str] = ()) -> dict[str, Any]:
    """The settings of a config dataclass that must match to resume (``ignore``: e.g. logging cadence)."""
    d = dataclasses.asdict(cfg)
    for k in ignore:
        d.pop(k, None)
    return d


def check_same_config(state: Mapping[str, Any], key: Mapping[str, Any], path: Path) -> None:
    """Refuse to resume from a checkpoint written with other settings (its ``config`` vs ``key``).

    Raises:
        ConfigError: naming the settings that differ.
    """
    old = state.get("config") or {}
    diff = [k for k in key if k in old and old[k] != key[k]]
    if diff:
        raise ConfigError(
            f"{path}: checkpoint was written with different settings ({', '.join(diff)}); "
            "use another checkpoint folder or the same configuration to resume"
        )
