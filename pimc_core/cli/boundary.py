"""The one error boundary of PIMC's command lines (``pimc`` and ``python -m training``).

:func:`run_command` runs a command and turns every *expected* way it can end into one line on
stderr and an exit status:

==============================================  ======  ==============================================
what happened                                   status  what the user sees
==============================================  ======  ==============================================
success                                         0       the command's own output
:class:`~pimc_core.errors.PimcError` (input,    2       ``PROG: error: MESSAGE`` (the message names
config, band, CRS)                                      the file, flag or value at fault)
``OSError`` not wrapped by the library (disk    2       ``PROG: error: PATH: cannot write (no space
full, permission, read-only file system)                left on device)``
``MemoryError``                                 2       ``PROG: error: out of memory …``
Ctrl-C (SIGINT)                                 130     ``PROG: interrupted; …``
SIGTERM                                         143     ``PROG: terminated; …``
anything else (a bug)                           1       ``PROG: internal error: TYPE: MESSAGE`` and
                                                        how to see the traceback
==============================================  ======  ==============================================

SIGTERM is turned into an exception (:class:`Terminated`, a ``KeyboardInterrupt``), so the
clean-up of every output being written runs (:mod:`pimc_core.io.atomic`) exactly as for Ctrl-C;
Python's default would end the process at once and leave temporary files behind.
``PIMC_DEBUG=1`` re-raises instead, with the full traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator

from pimc_core.errors import PimcError, interrupt_behind

__all__ = ["Terminated", "run_command", "sigterm_raises"]


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (raised in the main thread, so clean-up code runs)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _os_error_line(e: OSError) -> str:
    from pimc_core.io.atomic import os_error_message

    where = e.filename if e.filename is not None else "output"
    return os_error_message(e, where)


def run_command(prog: str, command: Callable[[], Any], *, interrupted: str = "no partial output was left") -> int:
    """Run ``command()`` inside the boundary; return the process's exit status (see the table).

    Args:
        prog: the program name at the start of every line (``pimc``, ``training report``).
        command: the work; its return value is ignored.
        interrupted: what an interrupted run leaves, said after ``interrupted;`` / ``terminated;``.
    """
    try:
        with sigterm_raises():
            try:
                command()
            except Exception as e:  # an error raised while an interrupt was being handled is that interrupt
                behind = interrupt_behind(e)
                if behind is None:
                    raise
                raise behind from None
    except BrokenPipeError:  # `pimc info … | head`: the reader left; nothing to report
        with contextlib.suppress(OSError):
            sys.stderr.close()
        return 0
    except BaseException as e:
        if os.environ.get("PIMC_DEBUG") or not isinstance(e, (Exception, KeyboardInterrupt)):
            raise  # SystemExit (argparse) and friends pass through
        status, line = _outcome(e, interrupted)
        print(f"{prog}: {line}", file=sys.stderr)
        return status
    return 0


def _outcome(e: BaseException, interrupted: str) -> tuple[int, str]:
    """Exit status and line (after ``PROG: ``) for an exception that ended a command."""
    if isinstance(e, Terminated):
        return 143, f"terminated; {interrupted}"
    if isinstance(e, KeyboardInterrupt):
        return 130, f"interrupted; {interrupted}"
    if isinstance(e, PimcError):
        return 2, f"error: {e}"
    if isinstance(e, OSError):
        return 2, f"error: {_os_error_line(e)}"
    if isinstance(e, MemoryError):
        return 2, "error: out of memory (try a smaller region, --block or --batch)"
    text = str(e).splitlines()[0] if str(e) else ""  # a bug: one line, the traceback with PIMC_DEBUG=1
    return 1, (f"internal error: {type(e).__name__}: {text} (a bug in PIMC; run with PIMC_DEBUG=1 "
               "for the traceback and report it)")
