#!/usr/bin/env python3
"""Build the QGIS plugin archive ``dist/pimc.zip``.

Layout inside the zip (what QGIS's "Install from ZIP" and the plugin repository expect)::

    pimc/                    the qgis_plugin/ package, renamed
    pimc/metadata.txt        from the repository root
    pimc/ext/pimc_core/      a copy of the core library, found by the plugin at start-up

Only text sources go in (``.py``, ``.txt``, ``.svg``, ``.md``, ``.yaml``, ``.json``, ``.qml``,
``.ui``); ``__pycache__``, compiled files and any other binary are left out. Entries are sorted
and time-stamped 1980-01-01, so the same sources give a byte-identical zip.

Standard library only: ``python3 scripts/plugin_zip.py [--out dist/pimc.zip]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "pimc"
TEXT_SUFFIXES = {".py", ".txt", ".svg", ".md", ".yaml", ".yml", ".json", ".qml", ".ui", ".cfg"}
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _files(folder: Path, skip_top: tuple[str, ...] = ()) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        top = Path(dirpath) == folder
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                             and not (top and d in skip_top))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in TEXT_SUFFIXES and not name.startswith(".") and p.is_file() and not p.is_symlink():
                out.append(p)
    return out


def plugin_entries(root: Path = ROOT) -> list[tuple[str, Path]]:
    """(name in the zip, file) pairs, sorted by name."""
    plugin, core, meta = root / "qgis_plugin", root / "pimc_core", root / "metadata.txt"
    for p in (plugin / "__init__.py", core / "__init__.py", meta):
        if not p.is_file():
            raise SystemExit(f"plugin_zip: {p} is missing")
    # qgis_plugin/ext would be a stale vendored copy: the zip gets a fresh one
    entries = [(f"{PLUGIN_NAME}/{p.relative_to(plugin).as_posix()}", p) for p in _files(plugin, ("ext",))]
    entries.append((f"{PLUGIN_NAME}/metadata.txt", meta))
    entries += [(f"{PLUGIN_NAME}/ext/pimc_core/{p.relative_to(core).as_posix()}", p) for p in _files(core)]
    for extra in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
        if (root / extra).is_file():
            entries.append((f"{PLUGIN_NAME}/LICENSE", root / extra))
            break
    return sorted(entries)


def build(out: Path, root: Path = ROOT) -> Path:
    """Write the zip to ``out`` (atomically); return its path."""
    entries = plugin_entries(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        dirs: set[str] = set()
        for name, _ in entries:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]) + "/")
        for d in sorted(dirs):
            info = zipfile.ZipInfo(d, FIXED_TIME)
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        for name, path in entries:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "dist" / f"{PLUGIN_NAME}.zip"), help="zip to write (default: dist/pimc.zip)")
    args = ap.parse_args(argv)
    out = build(Path(args.out))
    with zipfile.ZipFile(out) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    n_core = sum(n.startswith(f"{PLUGIN_NAME}/ext/") for n in names)
    print(f"{out}: {len(names)} files ({len(names) - n_core} plugin, {n_core} pimc_core), {out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
