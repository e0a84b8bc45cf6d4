"""Where torch runs: ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` names, and mixed precision on CUDA.

One place for the choice that ``pimc fit``, the map commands and the training CLI all make:

* :func:`resolve_device` turns a user's name into a :class:`torch.device` (``auto``: the first
  CUDA GPU when there is one, else the CPU) with a clear error for a bad name or a GPU that is
  not there;
* :func:`autocast` is the mixed-precision context of a device: float16 autocast on CUDA, a no-op
  on the CPU (CPU inference stays float32, so CPU results do not depend on this switch).
* :func:`auto_threads` sets torch's CPU threads to the cores that other processes leave free
  (:func:`busy_cores`).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Iterator

from pimc_core.errors import ConfigError

__all__ = ["DEVICE_CHOICES", "auto_threads", "autocast", "busy_cores", "describe_device", "resolve_device"]

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


def _runnable_now(path: str = "/proc/loadavg", readings: int = 3) -> int | None:
    """Threads runnable right now on the machine, this one excluded: the median of ``readings``
    of the fourth field of Linux's ``/proc/loadavg`` (``running/total``) minus one; ``None``
    where that file is not there or not in that form."""
    counts = []
    for i in range(readings):
        try:
            with open(path, encoding="ascii") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return None
        if i + 1 < readings:
            time.sleep(0.02)
    return max(0, sorted(counts)[len(counts) // 2] - 1)


#: ``[monotonic time, busy cores]`` of the last reading of :func:`busy_cores`.
_busy_cache: list[float] = []


def busy_cores(max_age: float = 2.0) -> float:
    """Cores that other processes keep busy: the 1-minute load average, or the threads runnable
    right now where they are fewer. The average lags: after a job on both cores of a 2-core
    machine ends it stays above 0.5 for about 80 s, so a ``pimc classify`` started right after
    ``pimc fit`` (as ``make demo`` does) would have taken one thread on an idle machine; the
    count of runnable threads drops as soon as the job ends. Alone it is a snapshot, which is
    why it may lower the average but never raise it.

    A reading takes about 40 ms (three looks at ``/proc/loadavg``), and map inference asks once
    per batch of pixels, so a reading younger than ``max_age`` seconds is reused.
    """
    t = time.monotonic()
    if _busy_cache and t - _busy_cache[0] < max_age:
        return _busy_cache[1]
    try:
        load = float(os.getloadavg()[0])
    except (OSError, AttributeError):
        load = 0.0
    now = _runnable_now()
    busy = load if now is None else min(load, float(now))
    _busy_cache[:] = [t, busy]
    return busy


def auto_threads(requested: int = 0) -> int:
    """Set and return torch's CPU threads: ``requested`` if > 0, else the cores not already busy.

    On a small shared machine, torch's default (one thread per core) is badly hurt by other
    processes: measured on a 2-core VM at load ~7, a training step of the PIMC network ran 4x to
    45x slower with 2 threads than with 1 (OpenMP threads wait for each other). ``0`` therefore
    means ``max(1, cores - round(busy))``, ``busy`` from :func:`busy_cores`.
    """
    import torch

    if requested and requested > 0:
        n = int(requested)
    else:
        cores = os.cpu_count() or 1
        n = max(1, min(torch.get_num_threads(), cores - int(round(busy_cores()))))
    torch.set_num_threads(n)
    return n


def describe_device(device, threads: int = 0) -> str:
    """A device in words for status lines: ``CPU, 2 threads`` (``threads``: torch CPU threads used,
    0: torch's current setting) or ``CUDA NVIDIA H100 80GB HBM3 (cuda:0), float16 autocast``."""
    import torch

    dev = resolve_device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"CUDA {torch.cuda.get_device_name(index)} (cuda:{index}), float16 autocast"
    n = int(threads) or torch.get_num_threads()
    return f"CPU, {n} thread{'s' if n != 1 else ''}"
