"""pimc_core is a library: it must never import qgis, PyQt, PySide or Qt."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pimc_core

FORBIDDEN = ("qgis", "PyQt4", "PyQt5", "PyQt6", "PySide", "PySide2", "PySide6", "sip", "Qt")
CORE = Path(pimc_core.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__",
        ):
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    mods.add(arg.value)
    return mods


def test_no_source_file_imports_qt_or_qgis():
    offenders = []
    for py in sorted(CORE.rglob("*.py")):
        for mod in _imported_modules(py):
            if mod.split(".")[0] in FORBIDDEN:
                offenders.append(f"{py.relative_to(CORE.parent)} imports {mod}")
    assert not offenders, "\n".join(offenders)


def test_importing_every_core_module_loads_no_qt():
    names = [m.name for m in pkgutil.walk_packages([str(CORE)], "pimc_core.")]
    code = (
        "import importlib, json, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
