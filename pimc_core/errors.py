"""User-facing errors.

Every problem a user can fix (a bad file, a missing band, a wrong parameter) is raised as a
:class:`PimcError` whose message names the file, band or parameter at fault. The CLI prints the
message on one line and exits non-zero; the QGIS plugin shows it in the message bar. Anything
else escaping is a bug.
"""

from __future__ import annotations


class PimcError(Exception):
    """A problem with the user's input, reported as one clear line."""


class InputError(PimcError):
    """Bad input data: unreadable raster, inconsistent grids, missing files."""


class ConfigError(PimcError):
    """Bad configuration: unknown keys, wrong types, out-of-range values."""


class BandError(PimcError):
    """A band required by an index or a model is missing from the data."""


class Cancelled(PimcError):
    """The user cancelled a running job."""


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C / SIGTERM (a ``KeyboardInterrupt``) that ``exc`` was raised while handling, if any.

    A signal that lands inside a library's clean-up (e.g. the exit of a nested ``rasterio.Env``)
    can make that clean-up raise its own error, which then replaces the interrupt; callers report
    the interrupt instead.
    """
    cause = exc.__context__
    while cause is not None and not isinstance(cause, KeyboardInterrupt):
        cause = cause.__context__
    return cause
