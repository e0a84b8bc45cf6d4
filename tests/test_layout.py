"""The layout of pimc_core: a package per stage, imports pointing one way, small files.

Data flows raster stack → index series → recurrence plots → encoders → heads → maps, and so do
the imports: a module may import its own stage and earlier ones, never a later one (not even
lazily inside a function). The order is written once, here, and in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "pimc_core"

#: stage of each top-level module / package of pimc_core (lower = earlier in the data flow)
STAGES = {
    "errors": 0, "config": 0, "devices": 0,
    "io": 1,
    "series": 2,
    "models": 3, "datasets": 3, "viz": 3,
    "learn": 4, "estimators": 4,
    "maps": 5,
    "fit": 6,
    "demo": 7, "cli": 7,
    "__init__": 8, "__main__": 8,
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level pimc_core part) of every import of pimc_core in a file, lazy ones too."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "pimc_core":
                names = [f"pimc_core.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "pimc_core" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def _stage_of(path: Path) -> str:
    rel = path.relative_to(CORE).parts
    return rel[0].removesuffix(".py")


def test_every_part_of_pimc_core_has_a_stage():
    parts = {p.name.removesuffix(".py") for p in CORE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert parts <= set(STAGES), f"give these a stage in STAGES: {sorted(parts - set(STAGES))}"


def test_imports_point_from_later_stages_to_earlier_ones():
    upward = []
    for path in sorted(CORE.rglob("*.py")):
        me = _stage_of(path)
        for line, other in _imports(path):
            if other != me and other in STAGES and STAGES[other] > STAGES[me]:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({me}) imports pimc_core.{other}")
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def test_the_library_uses_absolute_imports():
    relative = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in CORE.rglob("*.py")
                for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert not relative, relative


def test_pimc_core_top_level_is_small_and_stages_are_packages():
    modules = [p.name for p in CORE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    packages = [p.name for p in CORE.iterdir() if (p / "__init__.py").exists()]
    assert len(modules) <= 8, modules
    assert {"io", "series", "models", "learn", "maps"} <= set(packages)


def test_no_source_file_over_600_lines():
    """One concept per module: a file past 600 lines holds several (split it along them)."""
    big = [f"{p.relative_to(ROOT)}: {n} lines"
           for folder in ("pimc_core", "training", "qgis_plugin")
           for p in sorted((ROOT / folder).rglob("*.py"))
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600]
    assert not big, big
