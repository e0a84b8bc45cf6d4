"""Outputs that appear whole or not at all.

Everything PIMC writes (maps, styles, model files, figures, index stacks, sample data) is first
written under a temporary name in the target's own folder (the same file system, so the final
``os.replace`` is atomic) and renamed into place only once complete. A failure, a full disk,
Ctrl-C or SIGTERM (the command line turns it into an exception, :mod:`pimc_core.cli`) removes the
temporaries and leaves the folder as it was.

Temporary names are hidden and recognisable: ``.{name}.pimc-part-{pid}-{random}{suffix}``. They
carry the id of the process that writes them, so what a process killed outright (``kill -9``,
a power cut) left behind is removed by the next PIMC run that writes into the same folder
(:func:`remove_stale_parts`, called by :class:`Staging` and :func:`atomic_path`): a part whose
process no longer exists is stale; parts of live processes (a run going on beside) are kept.

* :func:`atomic_path`: one file;
* :class:`Staging`: several files committed together (a map with its confidence, styles and
  probabilities; a sample stack with its manifest): all are renamed at :meth:`Staging.commit`,
  in the given order, or none is;
* :func:`output_folder` / :func:`output_file` / :func:`future_file`: check (and create) where
  outputs go *before* any work is done, so a wrong ``--out`` fails at once, naming the path;
  :func:`not_an_input` refuses an output path that is one of the run's inputs (writing it would
  destroy them); :func:`new_folders_removed_on_failure`: the output folders a failed command
  created (and left empty) are removed again;
* :func:`follow_umask`: a finished output gets the mode the process's umask gives a new file
  (0644 / 0755 under umask 022), whatever mode its temporary was created with (``mkstemp`` and
  ``mkdtemp`` create 0600 / 0700), so colleagues on a shared drive can open it;
* :func:`os_error_message`: the one line for an ``OSError`` or a GDAL write error (disk full,
  permission, read-only file system).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from pathlib import Path
from typing import Iterable, Iterator

from pimc_core.errors import InputError

__all__ = [
    "PART_MARK",
    "Staging",
    "atomic_path",
    "follow_umask",
    "future_file",
    "is_part",
    "new_folders_removed_on_failure",
    "not_an_input",
    "os_error_message",
    "output_file",
    "output_folder",
    "part_path",
    "remove_stale_parts",
]

#: What marks a temporary output in its name.
PART_MARK = ".pimc-part-"
_PART_RE = re.compile(r"^\..+" + re.escape(PART_MARK) + r"(\d+)-[0-9a-f]+")
# files GDAL may write beside a temporary GeoTIFF
_SIDECARS = (".aux.xml", ".ovr", ".msk")


def part_path(path: str | os.PathLike, suffix: str | None = None) -> Path:
    """A new temporary name for ``path`` in its folder (the file is not created)."""
    path = Path(path)
    token = secrets.token_hex(4)
    return path.parent / f".{path.name}{PART_MARK}{os.getpid()}-{token}{path.suffix if suffix is None else suffix}"


def is_part(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary output name of :func:`part_path`."""
    return _PART_RE.match(Path(path).name) is not None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_parts(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary outputs in ``folder`` whose writing process no longer exists.

    Returns:
        The removed files (empty when there were none or the folder cannot be listed).
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _PART_RE.match(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux
    ``/proc/self/status``); elsewhere set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike) -> None:
    """Give a finished output file (0666) or folder (0777) the mode the umask leaves; nothing
    is changed on a file system that does not keep modes, or on a path that is gone."""
    with contextlib.suppress(OSError):
        full = 0o777 if os.path.isdir(path) else 0o666
        os.chmod(path, full & ~current_umask())


def _unlink_part(tmp: Path) -> None:
    for p in (tmp, *(Path(str(tmp) + s) for s in _SIDECARS)):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            p.unlink()


_GDAL_FUNCTION = re.compile(r"^[A-Za-z_]\w*:\s*")  # GDAL's "_tiffWriteProc:" before its message
_KNOWN_CAUSES = ("no space left", "free disk space", "quota", "permission denied", "read-only file system")


def _write_failure(err: BaseException) -> str:
    """The line of ``err`` that says why a write failed: rasterio chains GDAL's messages as causes
    (``Write failed. See previous exception`` ← ``Write error at scanline 2`` ← ``No space left on
    device``); the one naming a known cause (disk full, quota ...) is used, else the deepest."""
    texts: list[str] = []
    e: BaseException | None = err
    while e is not None and len(texts) < 8:
        line = str(e).splitlines()[0] if str(e) else ""
        if line and "see previous exception" not in line.lower():
            texts.append(_GDAL_FUNCTION.sub("", line))
        e = e.__cause__
    known = [t for t in texts if any(k in t.lower() for k in _KNOWN_CAUSES)]
    return (known or texts[-1:] or [type(err).__name__])[0]


def os_error_message(err: BaseException, path: str | os.PathLike) -> str:
    """One line for a failed write of ``path``: ``"{path}: cannot write (no space left on device)"``.

    Understands ``OSError`` numbers and the text of GDAL's errors, also when rasterio chains them
    as causes (it raises them without an errno).
    """
    code = getattr(err, "errno", None)
    text = _write_failure(err)
    low = text.lower()
    if code == errno.ENOSPC or "no space left" in low or "free disk space" in low:
        why = "no space left on device"
    elif code == errno.EDQUOT or "quota" in low:
        why = "disk quota exceeded"
    elif code in (errno.EACCES, errno.EPERM) or "permission denied" in low:
        why = "permission denied"
    elif code == errno.EROFS or "read-only file system" in low:
        why = "read-only file system"
    else:
        why = getattr(err, "strerror", None) or text
    return f"{path}: cannot write ({why})"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is
    left as it was. An ``OSError`` (disk full, permission) becomes an :class:`InputError`
    naming ``path``.

    Raises:
        InputError: the folder does not exist, or writing / renaming failed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output folder does not exist")
    remove_stale_parts(path.parent)
    tmp = part_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
        follow_umask(path)
    except OSError as e:
        _unlink_part(tmp)
        raise InputError(os_error_message(e, path)) from None
    except BaseException:
        _unlink_part(tmp)
        raise


class Staging:
    """Several outputs in one folder, renamed into place together at :meth:`commit` or not at all.

    Usage::

        with Staging(out_dir) as stage:
            tmp = stage.path("classes.tif")      # write the file at tmp
            ...
            stage.commit()                       # every staged file appears now

    Leaving the block without :meth:`commit` (an error, an interrupt) removes every temporary
    file. Renaming is done in staging order; should a rename itself fail (the disk cannot fail
    a rename on the same file system, but a file may be locked elsewhere), the files already
    renamed stay and the error names the first that could not be.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: output folder does not exist")
        remove_stale_parts(self.folder)
        self._staged: list[tuple[Path, Path]] = []
        self._temps: list[Path] = []
        self.committed: list[Path] = []

    def temp(self, name: str, suffix: str | None = None) -> Path:
        """A temporary path in the folder for an intermediate file (removed at the end)."""
        tmp = part_path(self.folder / name, suffix)
        self._temps.append(tmp)
        return tmp

    def path(self, name: str, suffix: str | None = None) -> Path:
        """A temporary path that :meth:`commit` renames to ``folder / name``."""
        tmp = self.temp(name, suffix)
        self._staged.append((tmp, self.folder / name))
        return tmp

    def commit(self) -> list[Path]:
        """Rename every staged file into place (in staging order); returns the final paths."""
        for tmp, final in self._staged:
            try:
                os.replace(tmp, final)
            except OSError as e:
                raise InputError(os_error_message(e, final)) from None
            follow_umask(final)
            with contextlib.suppress(FileNotFoundError):  # statistics of an older file
                Path(str(final) + ".aux.xml").unlink()
            self.committed.append(final)
        self._staged = []
        self.abort()  # intermediates
        return list(self.committed)

    def abort(self) -> None:
        """Remove every temporary file that was not committed."""
        for tmp in self._temps:
            _unlink_part(tmp)
        self._temps = []
        self._staged = []

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()
        if isinstance(exc, OSError):
            raise InputError(os_error_message(exc, self.folder)) from None


def _given(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path; an empty path (``--out ''``, which would mean the working folder) is refused."""
    if not os.fspath(path).strip():
        raise InputError(f"the {what} is an empty path; give a name")
    return Path(path)


def output_folder(folder: str | os.PathLike, *, create: bool = True) -> Path:
    """Check that ``folder`` can take outputs (creating it when asked), before any work is done.

    Raises:
        InputError: it is empty, a file, cannot be created, or is not writable.
    """
    path = _given(folder, "output folder")
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file, not an output folder")
    if not path.exists():
        if not create:
            raise InputError(f"{path}: output folder does not exist")
        try:
            path.mkdir(parents=True, exist_ok=True)  # mode 0777 less the umask
        except OSError as e:
            raise InputError(f"{path}: cannot create the output folder ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{path}: output folder is not writable")
    return path


def output_file(path: str | os.PathLike, *, create_folder: bool = False) -> Path:
    """Check that a file can be written at ``path`` (its folder exists and is writable, the path
    is not a folder), before any work is done.

    Raises:
        InputError: naming the path and what is wrong.
    """
    path = _given(path, "output file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    output_folder(path.parent if str(path.parent) else Path("."), create=create_folder)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{path}: exists and is not writable")
    return path


def future_file(path: str | os.PathLike) -> Path:
    """Check, creating nothing, that a file can be written at ``path`` once its folder is made:
    the folder must take it or, when the folder does not exist yet, its nearest existing parent
    must be a writable folder.

    Raises:
        InputError: naming the path and what is wrong.
    """
    path = _given(path, "output file")
    if path.parent.exists():
        return output_file(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    output_folder(parent, create=False)
    return path


def not_an_input(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], flag: str = "--out") -> None:
    """Refuse an output path that is one of the run's input files (the same file, also through
    a link): writing it would destroy the input.

    Raises:
        InputError: ``"{out}: is an input of this run; writing {flag} there would destroy it ..."``.
    """
    try:
        st = os.stat(out)
    except OSError:
        return  # nothing there yet: it cannot be an input
    for p in inputs:
        if p is None or not os.fspath(p):
            continue
        with contextlib.suppress(OSError):
            other = os.stat(p)
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                raise InputError(f"{out}: is an input of this run ({p}); writing {flag} there would destroy it "
                                 f"- choose another {flag}")


@contextlib.contextmanager
def new_folders_removed_on_failure(folder: str | os.PathLike) -> Iterator[None]:
    """On an exception in the block (an error, Ctrl-C, SIGTERM), remove ``folder`` and those of
    its parents that did not exist before the block, when they are empty: a command that fails
    leaves no new output folder behind."""
    path = Path(os.path.abspath(os.fspath(folder) or "."))
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    try:
        yield
    except BaseException:
        for p in missing:  # deepest first; a folder that holds anything stays
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
