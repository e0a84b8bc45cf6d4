"""The on-disk format of PASTIS: class names and colours, band order, scaling, official folds,
and the reading of ``metadata.geojson``.

On-disk layout read here (the official release, also the layout of PASTIS-R / PASTIS-HD)::

    ROOT/
      metadata.geojson            FeatureCollection, one feature per patch; properties used:
                                    ID_PATCH  int, e.g. 10000
                                    Fold      int 1..5 (official folds)
                                    dates-S2  {"0": 20180924, "1": 20180929, ...}: acquisition
                                              date (YYYYMMDD) of each time step, keyed by index.
                                              Some tools write it as a JSON string; both work.
      DATA_S2/S2_{ID_PATCH}.npy   (T, 10, H, W) int16, T = 38..61 (varies per patch), H = W = 128
                                  in the release (not assumed here). Level-2A surface reflectance
                                  as digital numbers (reflectance × 10 000; the data predate the
                                  2022 +1000 offset), bands in wavelength order B2, B3, B4, B5,
                                  B6, B7, B8, B8A, B11, B12 (the 20 m bands bilinearly up-sampled
                                  to 10 m; both per the authors, pastis-benchmark issue #19).
      ANNOTATIONS/TARGET_{ID}.npy (3, H, W) with the semantic class in channel 0 (plain (H, W)
                                  arrays are accepted too).

Classes: 0 Background (non-agricultural land), 1–18 crop types, 19 Void (parcels mostly
outside the patch) — see :data:`PASTIS_CLASSES`. Official split: folds 1–3 train, 4 validation,
5 test (:data:`OFFICIAL_SPLITS`).
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.classes import TAB20

__all__ = [
    "BACKGROUND", "BAND_NAMES", "N_BANDS", "OFFICIAL_SPLITS", "PASTIS_CLASSES", "PASTIS_COLORS", "REFLECTANCE_SCALE",
    "S2_BANDS", "VOID", "Patch", "parse_folds", "parse_patch_id", "read_metadata", "sort_key",
]

#: Class names, index = class id in the TARGET arrays.
PASTIS_CLASSES: tuple[str, ...] = (
    "Background",
    "Meadow",
    "Soft winter wheat",
    "Corn",
    "Winter barley",
    "Winter rapeseed",
    "Spring barley",
    "Sunflower",
    "Grapevine",
    "Beet",
    "Winter triticale",
    "Winter durum wheat",
    "Fruits/vegetables/flowers",
    "Potatoes",
    "Leguminous fodder",
    "Soybeans",
    "Orchard",
    "Mixed cereal",
    "Sorghum",
    "Void label",
)
#: Display colours of the classes (the PASTIS benchmark colour map: black background,
#: matplotlib "tab20" for the crops, white void).
PASTIS_COLORS: tuple[str, ...] = ("#000000", *TAB20[1:19], "#ffffff")
BACKGROUND = 0
VOID = 19
#: Sentinel-2 band of each of the 10 channels of the S2 arrays.
S2_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: Canonical PIMC name of each channel (same order as :data:`S2_BANDS`).
BAND_NAMES: tuple[str, ...] = (
    "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir1", "swir2",
)
#: reflectance = DN × REFLECTANCE_SCALE.
REFLECTANCE_SCALE = 1e-4
#: Official folds of each split.
OFFICIAL_SPLITS: dict[str, tuple[int, ...]] = {"train": (1, 2, 3), "val": (4,), "test": (5,)}

N_BANDS = len(S2_BANDS)


@dataclass(frozen=True)
class Patch:
    """One patch of the metadata: its id, official fold and acquisition dates (file order)."""

    id: int | str
    fold: int
    dates: tuple[_dt.date, ...]


def _as_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a digit string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def parse_patch_id(value: Any, where: str) -> int | str:
    """Patch ids are integers in PASTIS; other non-empty strings are kept as they are."""
    as_int = _as_int(value)
    if as_int is not None:
        return as_int
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InputError(f"{where}: ID_PATCH must be an integer; got {value!r}")


def _parse_date(value: Any, where: str) -> _dt.date:
    s = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        s = str(int(value))
    try:
        if len(s) == 8 and s.isdigit():
            return _dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
        return _dt.date.fromisoformat(s)
    except ValueError:
        raise InputError(f"{where}: not a date YYYYMMDD: {value!r}") from None


def _parse_dates(value: Any, where: str) -> tuple[_dt.date, ...]:
    if isinstance(value, str):  # serialised dict (JSON, or a Python repr)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise InputError(f"{where}: dates-S2 is not a mapping of index → YYYYMMDD") from None
    if isinstance(value, Mapping):
        try:
            keyed = sorted((int(k), v) for k, v in value.items())
        except (TypeError, ValueError):
            raise InputError(f"{where}: dates-S2 keys must be time-step indices '0', '1', ...") from None
        idx = [k for k, _ in keyed]
        if idx != list(range(len(idx))):
            raise InputError(f"{where}: dates-S2 keys must be 0..{len(idx) - 1} without gaps; got {idx[:5]}...")
        values = [v for _, v in keyed]
    elif isinstance(value, (list, tuple)):
        values = list(value)
    else:
        raise InputError(f"{where}: dates-S2 must be a mapping of index → YYYYMMDD; got {type(value).__name__}")
    if not values:
        raise InputError(f"{where}: dates-S2 is empty")
    return tuple(_parse_date(v, f"{where}: dates-S2[{i}]") for i, v in enumerate(values))


def parse_folds(folds: Any) -> tuple[int, ...]:
    """Fold numbers from fold numbers (1-5) or a split name (train, val, test); ConfigError otherwise."""
    if isinstance(folds, str):
        key = folds.strip().lower()
        if key not in OFFICIAL_SPLITS:
            raise ConfigError(f"folds: unknown split {folds!r} (use train, val, test or fold numbers 1-5)")
        return OFFICIAL_SPLITS[key]
    items = [folds] if isinstance(folds, (int, np.integer)) else folds
    bad = ConfigError(f"folds must be fold numbers 1-5 or a split name (train, val, test); got {folds!r}")
    try:
        items = list(items)
    except TypeError:
        raise bad from None
    if not items or any(isinstance(f, bool) or not isinstance(f, (int, np.integer)) or not 1 <= f <= 5 for f in items):
        raise bad
    return tuple(dict.fromkeys(int(f) for f in items))


def sort_key(pid: int | str) -> tuple[int, Any]:
    """Numeric ids first, in order, then the others."""
    return (0, pid) if isinstance(pid, int) else (1, pid)



def read_metadata(path: Path) -> dict[int | str, Patch]:
    """The patches listed by ``metadata.geojson``: id → :class:`Patch` (fold, dates).

    Raises:
        InputError: unreadable file, not a FeatureCollection, a feature without ID_PATCH, Fold or
            dates-S2, a bad value, a repeated id (the message names the file and the feature).
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text (GeoJSON) file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list):
        raise InputError(f"{path}: not a GeoJSON FeatureCollection (no 'features' list)")
    out: dict[int | str, Patch] = {}
    for i, feat in enumerate(feats):
        props = feat.get("properties") if isinstance(feat, dict) else None
        if not isinstance(props, dict):
            raise InputError(f"{path}: feature {i} has no properties")
        for key in ("ID_PATCH", "Fold", "dates-S2"):
            if key not in props:
                raise InputError(f"{path}: feature {i} lacks property '{key}'")
        pid = parse_patch_id(props["ID_PATCH"], f"{path}: feature {i}")
        where = f"{path}: patch {pid}"
        fold = props["Fold"]
        fold_i = _as_int(fold)
        if fold_i is None or not 1 <= fold_i <= 5:
            raise InputError(f"{where}: Fold must be 1-5; got {fold!r}")
        if pid in out:
            raise InputError(f"{where}: ID_PATCH appears twice")
        out[pid] = Patch(pid, fold_i, _parse_dates(props["dates-S2"], where))
    if not out:
        raise InputError(f"{path}: no patch in metadata")
    return out
