"""Finding ``pimc_core`` and checking the Python packages it needs, without importing them.

Where ``pimc_core`` comes from:

* **Built plugin** (``dist/pimc.zip``, installed as ``<profile>/python/plugins/pimc``): a copy of
  ``pimc_core`` is vendored in ``pimc/ext/pimc_core``; :func:`ensure_core_on_path` puts
  ``pimc/ext`` first on ``sys.path``, so ``import pimc_core`` finds the copy that matches this
  plugin. ``ext`` holds nothing else (the plugin folder itself is never put on ``sys.path``: its
  sub-packages would shadow QGIS's own modules such as ``processing``).
* **Development checkout**: the plugin is the ``qgis_plugin`` package of the repository, and
  ``pimc_core`` is its sibling; the repository root is added to ``sys.path`` only when
  ``pimc_core`` is not importable already (an editable install makes it importable).

Dependencies are checked with :func:`importlib.util.find_spec` (cheap, imports nothing), so the
plugin loads, and says what is missing, even when QGIS's Python lacks them. Nothing here ever
installs a package: :mod:`.installer` does, on the user's request only.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
VENDOR_DIR = PLUGIN_DIR / "ext"
REQUIREMENTS = PLUGIN_DIR / "requirements.txt"

# How pimc_core was found: "vendored", "checkout", "installed" or "missing".
_core_origin: str | None = None
_added_path: str | None = None


@dataclass(frozen=True)
class Dependency:
    """A Python package: import name, pip name, what PIMC uses it for."""

    module: str
    pip_name: str
    purpose: str
    required: bool = True


#: Packages the pixel tools and the Processing algorithms need.
REQUIRED: tuple[Dependency, ...] = (
    Dependency("numpy", "numpy", "arrays"),
    Dependency("rasterio", "rasterio", "reading and writing rasters"),
    Dependency("yaml", "PyYAML", "manifests"),
    Dependency("matplotlib", "matplotlib", "figures"),
)
#: Packages that only some tools need: without torch the index tool still works, while the
#: recurrence plots (pixel inspector, pimc:recurrenceplot) and the model tools do not.
OPTIONAL: tuple[Dependency, ...] = (
    Dependency("torch", "torch", "recurrence plots and the model tools", required=False),
)


def ensure_core_on_path() -> str:
    """Make ``import pimc_core`` work; return where it is found (see the module docstring)."""
    global _core_origin, _added_path
    if _core_origin is not None and _core_origin != "missing":
        return _core_origin
    if (VENDOR_DIR / "pimc_core" / "__init__.py").is_file():
        path = str(VENDOR_DIR)
        if path not in sys.path:
            sys.path.insert(0, path)
            _added_path = path
        _core_origin = "vendored"
    elif _module_available("pimc_core"):
        _core_origin = "installed"
    elif (PLUGIN_DIR.parent / "pimc_core" / "__init__.py").is_file():
        path = str(PLUGIN_DIR.parent)
        if path not in sys.path:
            sys.path.append(path)
            _added_path = path
        _core_origin = "checkout"
    else:
        _core_origin = "missing"
    return _core_origin


def release_core() -> None:
    """Undo :func:`ensure_core_on_path` for a vendored core: drop ``ext`` from ``sys.path`` and
    forget the imported ``pimc_core`` modules, so that an upgraded plugin loads its new copy.
    A checkout's or an installed core is left alone (other code may be using it)."""
    global _core_origin, _added_path
    if _core_origin != "vendored":
        return
    vendor = str(VENDOR_DIR)
    for name in [m for m in sys.modules if m == "pimc_core" or m.startswith("pimc_core.")]:
        f = getattr(sys.modules[name], "__file__", None) or ""
        if f.startswith(vendor):
            del sys.modules[name]
    if _added_path and _added_path in sys.path:
        sys.path.remove(_added_path)
    _core_origin = _added_path = None


#: pimc_core's own floor (pyproject.toml: requires-python).
MIN_PYTHON = (3, 10)


def python_problem() -> str | None:
    """A one-line message when QGIS's Python is older than pimc_core supports, else None."""
    if sys.version_info[:2] >= MIN_PYTHON:
        return None
    return (
        f"PIMC needs Python {'.'.join(map(str, MIN_PYTHON))} or newer, and this QGIS runs Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}: use a QGIS build with a newer Python"
    )


def core_origin() -> str:
    """Where ``pimc_core`` was found: vendored, checkout, installed or missing."""
    return _core_origin or ensure_core_on_path()


def _module_available(name: str) -> bool:
    mod = sys.modules.get(name, False)
    if mod is None:  # an import of it failed before, or it was blocked on purpose
        return False
    if mod is not False:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_dependencies(include_optional: bool = True) -> list[Dependency]:
    """The packages from :data:`REQUIRED` (and :data:`OPTIONAL`) that cannot be imported."""
    deps = REQUIRED + (OPTIONAL if include_optional else ())
    return [d for d in deps if not _module_available(d.module)]


#: Debian/Ubuntu packages of the pip names (torch: Debian 12's python3-torch is 1.13, too old).
APT_NAMES = {"numpy": "python3-numpy", "rasterio": "python3-rasterio", "pyyaml": "python3-yaml",
             "matplotlib": "python3-matplotlib", "attrs": "python3-attr"}
#: The menu entry that installs into PIMC's own folder (:mod:`.install_dialog`).
INSTALL_ACTION = "Raster \u203a PIMC \u203a Install missing packages\u2026"
MAC_PYTHON = "/Applications/QGIS.app/Contents/MacOS/bin/python3"


def linux_distribution(os_release: str = "/etc/os-release") -> str:
    """"debian" for Debian, Ubuntu and their derivatives, else "linux"."""
    try:
        text = Path(os_release).read_text().lower()
    except OSError:
        return "linux"
    ids = " ".join(line.split("=", 1)[1] for line in text.splitlines() if line.startswith(("id=", "id_like=")))
    return "debian" if ("debian" in ids or "ubuntu" in ids) else "linux"


def install_command(packages: list[str] | None = None, system: str | None = None) -> str:
    """The command a user can run (themselves) to install ``packages`` on this platform.

    ``system``: "Windows", "Darwin", "debian" or "linux" (default: this machine). On
    Debian/Ubuntu it is apt (``pip install --user`` stops there with
    "externally-managed-environment"); torch has no recent enough apt package, so for it the
    answer is the install action (a plugin-private folder).
    """
    system = system or platform.system()
    if system == "Linux":
        system = linux_distribution()
    what = " ".join(packages) if packages else f'-r "{REQUIREMENTS}"'
    if system == "Windows":
        return f"python -m pip install {what}   (in the OSGeo4W Shell, as administrator)"
    if system == "Darwin":
        return f"{MAC_PYTHON} -m pip install --user {what}"
    if system == "debian":
        names = packages or [d.pip_name for d in REQUIRED + OPTIONAL]
        apt = [APT_NAMES[n.lower()] for n in names if n.lower() in APT_NAMES]
        other = [n for n in names if n.lower() not in APT_NAMES]
        parts = [f"sudo apt install {' '.join(apt)}"] if apt else []
        if other:
            parts.append(f"{', '.join(other)}: {INSTALL_ACTION}")
        return "; ".join(parts)
    return f"python3 -m pip install --user {what}"


def missing_message(missing: list[Dependency], system: str | None = None) -> tuple[str, str]:
    """A one-line message naming what is missing and how to install it, and the details.

    Returns:
        (text, details) — ``text`` for the message bar, ``details`` for its "more" button.
    """
    names = ", ".join(f"{d.pip_name} ({d.purpose})" for d in missing)
    required = [d for d in missing if d.required]
    effect = (
        "the PIMC tools cannot run until they are installed"
        if required else "the other PIMC tools work without them"
    )
    text = (
        f"missing Python package(s): {names}; {effect}. Install them with {INSTALL_ACTION} "
        f"(into a PIMC folder), or yourself: {install_command([d.pip_name for d in missing], system)}"
    )
    details = "\n".join([
        f"{INSTALL_ACTION} shows what it will install and where (a folder of PIMC's own, added to",
        "QGIS's Python path), and installs only when you click Install. Or install them yourself:",
        f"  Debian/Ubuntu: {install_command(None, 'debian')}",
        f"  other Linux:   {install_command(None, 'linux')}",
        f"  Windows:       {install_command(None, 'Windows')}",
        f"  macOS:         {install_command(None, 'Darwin')}",
        "torch: pick the CPU or GPU build for your machine at https://pytorch.org/get-started/",
        "Then restart QGIS.",
    ])
    return text, details


class MissingDependencyError(ImportError):
    """Raised by :func:`import_core` when a package pimc_core needs cannot be imported."""


def import_core(module: str = "pimc_core"):
    """Import a ``pimc_core`` module, turning an ImportError into a one-line install hint."""
    ensure_core_on_path()
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = (e.name or "").split(".")[0]
        known = {d.module: d for d in REQUIRED + OPTIONAL}
        if top in known:
            missing = [known[top]]
        elif top and top != "pimc_core":
            missing = [Dependency(top, top, "pimc_core")]
        else:
            missing = missing_dependencies(include_optional=False)
        if not missing:
            raise
        text, _ = missing_message(missing)
        raise MissingDependencyError(f"PIMC: {text}") from e
