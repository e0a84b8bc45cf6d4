"""Cancelling a map run: a thread-safe flag the engine checks between batches.

A GUI button, a signal handler or QGIS's ``feedback.isCanceled`` stops a run; the engine raises
:class:`~pimc_core.errors.Cancelled` at the next batch and every output being written is removed.
"""

from __future__ import annotations

import threading
from typing import Callable

from pimc_core.errors import Cancelled, ConfigError

__all__ = ["CancelToken", "cancel_check"]


class CancelToken:
    """A thread-safe cancel flag: call :meth:`cancel` from anywhere (a GUI button, a signal
    handler); the engine checks it between batches and raises :class:`Cancelled`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancelled."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user; no output was written")


def cancel_check(cancel: CancelToken | Callable[[], bool] | None) -> Callable[[], None]:
    """A ``check()`` raising Cancelled, from a token, a ``() -> bool`` (e.g. QGIS
    ``feedback.isCanceled``) or None."""
    if cancel is None:
        return lambda: None
    if isinstance(cancel, CancelToken):
        return cancel.check
    if callable(cancel):
        def check() -> None:
            if cancel():
                raise Cancelled("cancelled by the user; no output was written")
        return check
    raise ConfigError(f"cancel must be a CancelToken or a callable (got {type(cancel).__name__})")
