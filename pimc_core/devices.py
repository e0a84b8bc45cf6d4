"""Where torch runs: ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` names, and mixed precision on CUDA.

One place for the choice that ``pimc fit``, the map commands and the training CLI all make:

* :func:`resolve_device` turns a user's name into a :class:`torch.device` (``auto``: the first
  CUDA GPU when there is one, else the CPU) with a clear error for a bad name or a GPU that is
  not there;
* :func:`autocast` is the mixed-precision context of a device: float16 autocast on CUDA, a no-op
  on the CPU (CPU inference stays float32, so CPU results do not depend on this switch).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .errors import ConfigError

__all__ = ["DEVICE_CHOICES", "autocast", "resolve_device"]

#: What ``--device`` accepts (``cuda:N`` too).
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: Any = "auto"):
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` / a :class:`torch.device` → :class:`torch.device`.

    Raises:
        ConfigError: an unknown name, or CUDA asked for where torch sees no GPU (or not that one).
    """
    import torch

    if isinstance(name, torch.device):
        dev = name
    else:
        text = "auto" if name is None else str(name).strip().lower()
        if text in ("", "auto"):
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(text)
        except RuntimeError:
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}") from None
        if dev.type not in ("cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!s} requested but torch sees no CUDA GPU "
                              f"(torch {torch.__version__}; use --device cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!s}: only {torch.cuda.device_count()} CUDA GPU(s) visible")
    return dev


@contextlib.contextmanager
def autocast(device, enabled: bool = True) -> Iterator[None]:
    """float16 autocast on a CUDA device (when ``enabled``); nothing on the CPU."""
    import torch

    if enabled and getattr(device, "type", str(device)) == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            yield
    else:
        yield
