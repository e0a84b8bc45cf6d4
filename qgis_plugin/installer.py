"""Installing missing Python packages into a plugin-private folder, on the user's request.

QGIS's Python is often one the user must not (Debian 12: "externally-managed-environment") or
cannot (Windows, macOS app bundles) change with a plain ``pip install``. PIMC installs what is
missing with ``python -m pip install --target FOLDER`` into its own folder
(:func:`packages_dir`, in the QGIS profile, one per Python version) and puts that folder at the
*end* of ``sys.path`` (:func:`ensure_packages_on_path`), so the packages QGIS already has (its
numpy, which its GDAL bindings were built against) always win.

Nothing here runs by itself: :func:`plan_install` says what would be installed, where and with
which command; :func:`run_pip` runs it (the panel's "Install missing packages…" action, after the
user clicked *Install*). No Qt, no qgis at import.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .bootstrap import REQUIREMENTS, Dependency

#: Overrides :func:`packages_dir` (tests, shared installations).
PACKAGES_ENV = "PIMC_PACKAGES_DIR"
#: The CPU builds of torch (a few hundred MB instead of several GB of CUDA packages).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def packages_dir() -> Path:
    """The plugin-private package folder: ``$PIMC_PACKAGES_DIR``, else
    ``<QGIS profile>/python/pimc-packages/pyX.Y`` (outside the plugin folder, so upgrading the
    plugin keeps it), else ``~/.local/share/pimc/packages/pyX.Y``."""
    env = os.environ.get(PACKAGES_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    tag = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        from qgis.core import QgsApplication

        profile = QgsApplication.qgisSettingsDirPath()
        if profile:
            return Path(profile) / "python" / "pimc-packages" / tag
    except ImportError:
        pass
    return Path.home() / ".local" / "share" / "pimc" / "packages" / tag


def ensure_packages_on_path() -> str | None:
    """Append :func:`packages_dir` to ``sys.path`` when it exists; return it (None otherwise)."""
    folder = packages_dir()
    if not folder.is_dir():
        return None
    path = str(folder)
    if path not in sys.path:
        sys.path.append(path)
    return path


def python_executable() -> str | None:
    """The Python interpreter QGIS runs (inside desktop QGIS ``sys.executable`` is the QGIS
    program, or whatever ``python3`` comes first on ``PATH``): the first of ``pythonX.Y`` /
    ``python3`` / ``python.exe`` in ``sys.exec_prefix``, ``sys.executable``, ``pythonX.Y`` on
    ``PATH`` that runs this very Python version."""
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    prefix = Path(sys.exec_prefix)
    candidates = [prefix / "bin" / f"python{ver}", prefix / "bin" / "python3", prefix / "python.exe",
                  prefix / "python3.exe"]
    exe = Path(sys.executable or "")
    if exe.name.lower().startswith("python"):
        candidates.append(exe)
    found = shutil.which(f"python{ver}")
    if found:
        candidates.append(Path(found))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK) and _runs_version(c, ver):
            return str(c)
    return None


def _runs_version(python: Path, ver: str) -> bool:
    try:
        out = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == ver


def requirement_specs(path: Path = REQUIREMENTS) -> dict[str, str]:
    """``{lower-case pip name: requirement}`` from requirements.txt (``rasterio>=1.3`` …)."""
    specs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]
            specs[name.lower()] = line
    return specs


def _installed_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class InstallPlan:
    """What :func:`run_pip` will do: ``packages`` (requirements), into ``target``, with
    ``command``; ``constraints`` keep the versions QGIS already has (numpy …)."""

    packages: tuple[str, ...]
    target: Path
    python: str | None
    command: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    problem: str | None = None
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """Several lines for the confirmation dialog: what, where, the command."""
        lines = [
            "PIMC will install these Python packages (and what they need):",
            *(f"  • {p}" for p in self.packages),
            "into its own folder (added to QGIS's Python search path; nothing else is changed):",
            f"  {self.target}",
        ]
        if self.constraints:
            lines.append("keeping the versions QGIS already has: " + ", ".join(self.constraints))
        lines += list(self.notes)
        lines += ["command:", "  " + " ".join(_quote(c) for c in self.command)]
        if self.problem:
            lines.append(f"cannot install: {self.problem}")
        return "\n".join(lines)


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def plan_install(missing: list[Dependency], target: Path | None = None, pip_args: tuple[str, ...] = (),
                 python: str | None = None) -> InstallPlan:
    """The install of ``missing`` into ``target`` (:func:`packages_dir` by default).

    ``pip_args`` are added to the pip command (e.g. ``--no-index --find-links FOLDER`` for a
    local wheel folder). Packages QGIS already has among numpy/attrs are pinned to their
    versions (``--constraint``), so a dependency never brings a second, incompatible numpy.
    """
    target = Path(target) if target is not None else packages_dir()
    python = python or python_executable()
    specs = requirement_specs()
    packages = tuple(specs.get(d.pip_name.lower(), d.pip_name) for d in missing)
    constraints = tuple(f"{name}=={v}" for name in ("numpy",) if (v := _installed_version(name)))
    args = ["install", "--target", str(target), "--upgrade", "--no-input", "--disable-pip-version-check",
            *pip_args]
    notes = []
    if any(p.lower().startswith("torch") for p in packages) and platform.system() != "Darwin" \
            and "--no-index" not in pip_args:
        args += ["--extra-index-url", TORCH_CPU_INDEX]
        notes.append("torch: the CPU build (about 200 MB); a GPU build is installed by hand, see pytorch.org")
    problem = None if python else "the Python interpreter of this QGIS was not found"
    command = (python or "python", "-m", "pip", *args, *packages)
    return InstallPlan(packages, target, python, command, constraints, problem, tuple(notes))


def progress_of(line: str, seen: int, expected: int) -> tuple[int, float | None]:
    """Progress 0–100 from a pip output line: each ``Collecting`` is one step of the
    resolution (up to 60 %), ``Installing collected packages`` 80 %, ``Successfully installed``
    100 %. Returns (steps seen, progress or None when the line says nothing new)."""
    text = line.strip()
    if text.startswith("Collecting ") or text.startswith("Processing "):
        seen += 1
        return seen, min(60.0, 60.0 * seen / max(expected, seen + 1))
    if text.startswith("Installing collected packages"):
        return seen, 80.0
    if text.startswith("Successfully installed"):
        return seen, 100.0
    return seen, None


def run_pip(plan: InstallPlan, on_line: Callable[[str], None],
            on_progress: Callable[[float], None] = lambda p: None,
            is_cancelled: Callable[[], bool] = lambda: False,
            on_start: Callable[[subprocess.Popen], None] = lambda proc: None) -> int:
    """Run ``plan.command`` (with the constraints file), streaming each output line to
    ``on_line`` and the progress to ``on_progress``; stop the process when ``is_cancelled()``
    after a line (``on_start(process)`` lets a caller stop it at any time).

    Returns pip's exit status (-1 when cancelled). ``plan.target`` is created first; pip itself
    stages the packages and moves them into it at the end.
    """
    if plan.problem:
        on_line(f"cannot install: {plan.problem}")
        return 1
    plan.target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pimc_pip_") as tmp:
        command = list(plan.command)
        if plan.constraints:
            cfile = Path(tmp) / "constraints.txt"
            cfile.write_text("\n".join(plan.constraints) + "\n")
            command[4:4] = ["--constraint", str(cfile)]
        env = dict(os.environ, PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
        env.pop("PYTHONPATH", None)  # pip must see QGIS's Python, not a development path
        on_line("$ " + " ".join(_quote(c) for c in command))
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, cwd=tmp, bufsize=1)
        on_start(proc)
        seen = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            on_line(line.rstrip())
            seen, p = progress_of(line, seen, len(plan.packages) * 3)
            if p is not None:
                on_progress(p)
            if is_cancelled():
                proc.terminate()
                proc.wait(timeout=30)
                return -1
        status = proc.wait()
        return -1 if is_cancelled() else status
