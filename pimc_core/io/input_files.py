"""Input paths checked before anything opens them.

A path named by a manifest, or found in a folder of rasters, may be something no reader should
open: a FIFO (named pipe: opening it waits for a writer, for ever), a socket or device, a
symbolic link that loops or points nowhere. :func:`path_kind` asks ``stat`` what a path is,
without opening it; :func:`check_input_file` turns anything but a regular file into one
:class:`~pimc_core.errors.InputError` line naming the path and what it is. :func:`local_path`
refuses what is no local path at all: an empty name (it would mean the working folder) or a URL
(``https://…``, GDAL's ``/vsicurl/``), which ``Path`` would silently mangle into a missing file.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from pimc_core.errors import InputError

__all__ = ["FILE", "FOLDER", "MISSING", "check_input_file", "local_path", "path_kind"]

FILE = "a file"
FOLDER = "a folder"
MISSING = "missing"


_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|/vsi[a-z0-9]+/)")


def local_path(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` as a ``Path`` when it names a local file or folder.

    Raises:
        InputError: an empty name, or a URL: ``"https://x/m.yaml: a URL; PIMC reads local files
            (download it first)"``.
    """
    text = os.fspath(path)
    if not text.strip():
        raise InputError(f"the {what} is an empty path; give a file or folder")
    if _URL.match(text):
        raise InputError(f"{text}: a URL; PIMC reads local files (download the {what} first)")
    return Path(text)


def path_kind(path: str | os.PathLike) -> str:
    """What ``path`` is, following symbolic links, found by ``stat`` (nothing is opened).

    Returns:
        :data:`FILE`, :data:`FOLDER`, :data:`MISSING`, or a description of anything else:
        ``"a FIFO (named pipe)"``, ``"a socket"``, ``"a device"``, ``"a symbolic link loop"``,
        ``"a broken symbolic link"``, ``"not accessible (permission denied)"``.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "a broken symbolic link" if os.path.islink(path) else MISSING
        return f"not accessible ({e.strerror or e})"
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_input_file(path: str | os.PathLike, what: str = "raster", missing: str | None = None) -> Path:
    """``path`` if it is a regular file (or a link to one); never opens it.

    Args:
        what: what the file should be, for the message (``"raster"``, ``"manifest"``).
        missing: the message when nothing is there (default ``"{path}: file not found"``).

    Raises:
        InputError: ``"{path}: is a FIFO (named pipe), not a raster file"`` and the like.
    """
    path = Path(path)
    kind = path_kind(path)
    if kind == FILE:
        return path
    if kind == MISSING:
        raise InputError(missing or f"{path}: file not found")
    if kind.startswith("not "):
        raise InputError(f"{path}: {kind}, not a {what} file")
    raise InputError(f"{path}: is {kind}, not a {what} file")
