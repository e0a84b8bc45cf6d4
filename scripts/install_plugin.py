#!/usr/bin/env python3
"""Install ``dist/pimc.zip`` into a QGIS profile: ``<profile>/python/plugins/pimc``.

Where:

* default: the ``default`` profile of the user's QGIS 3 — Linux
  ``~/.local/share/QGIS/QGIS3/profiles/default``, Windows ``%APPDATA%/QGIS/QGIS3/profiles/default``,
  macOS ``~/Library/Application Support/QGIS/QGIS3/profiles/default``;
* ``QGIS_PROFILE_DIR=DIR`` (or ``--config-dir DIR``): the layout QGIS uses when started with
  ``QGIS_CUSTOM_CONFIG_PATH=DIR``, i.e. ``DIR/profiles/default/python/plugins/pimc``;
* ``--profile NAME`` picks another profile than ``default``.

An existing ``pimc`` folder there is replaced (nothing else is touched). The plugin still has to be
enabled: Plugins › Manage and Install Plugins, or headless
``QGIS_CUSTOM_CONFIG_PATH=DIR qgis_process.bin plugins enable pimc``.

Standard library only: ``python3 scripts/install_plugin.py [--zip dist/pimc.zip] [--build]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "pimc"


def default_qgis3_dir() -> Path:
    """The QGIS3 settings folder of this user on this platform."""
    home = Path.home()
    system = platform.system()
    if system == "Windows":
        return Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")) / "QGIS" / "QGIS3"
    if system == "Darwin":
        return home / "Library" / "Application Support" / "QGIS" / "QGIS3"
    return Path(os.environ.get("XDG_DATA_HOME", home / ".local" / "share")) / "QGIS" / "QGIS3"


def plugins_dir(config_dir: str | None = None, profile: str = "default") -> Path:
    """``<profile>/python/plugins`` for a QGIS_CUSTOM_CONFIG_PATH-style ``config_dir`` (or the
    user's default QGIS3 folder)."""
    base = Path(config_dir).expanduser() if config_dir else default_qgis3_dir()
    return base / "profiles" / profile / "python" / "plugins"


def install(zip_path: Path, dest_plugins: Path) -> Path:
    """Unpack the zip's ``pimc/`` folder into ``dest_plugins``, replacing an older copy."""
    if not zip_path.is_file():
        raise SystemExit(f"install_plugin: {zip_path} not found; build it first (make plugin-zip)")
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        if f"{PLUGIN_NAME}/metadata.txt" not in names or any(
            not n.startswith(f"{PLUGIN_NAME}/") or ".." in Path(n).parts for n in names
        ):
            raise SystemExit(f"install_plugin: {zip_path} is not a {PLUGIN_NAME} plugin zip")
        dest_plugins.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{PLUGIN_NAME}-", dir=dest_plugins))
        try:
            zf.extractall(staging)
            target = dest_plugins / PLUGIN_NAME
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.exists():
                shutil.rmtree(target)
            os.replace(staging / PLUGIN_NAME, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zip", default=str(ROOT / "dist" / f"{PLUGIN_NAME}.zip"))
    ap.add_argument("--build", action="store_true", help="build the zip first (scripts/plugin_zip.py)")
    ap.add_argument("--config-dir", default=os.environ.get("QGIS_PROFILE_DIR") or None,
                    help="a QGIS_CUSTOM_CONFIG_PATH-style folder (default: $QGIS_PROFILE_DIR, else the user's QGIS3 folder)")
    ap.add_argument("--profile", default="default")
    args = ap.parse_args(argv)
    if args.build:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import plugin_zip

        plugin_zip.build(Path(args.zip))
    target = install(Path(args.zip), plugins_dir(args.config_dir, args.profile))
    print(f"installed {PLUGIN_NAME} into {target}")
    cfg = f"QGIS_CUSTOM_CONFIG_PATH={args.config_dir} " if args.config_dir else ""
    print(f"enable it in QGIS (Plugins › Manage and Install Plugins) or: {cfg}qgis_process.bin plugins enable {PLUGIN_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
