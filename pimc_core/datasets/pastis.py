"""PASTIS (Sainte Fare Garnot & Landrieu, ICCV 2021): Sentinel-2 time series of 128×128-px
patches over France with per-pixel crop-type labels.

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

:class:`PastisDataset` loads whole patches (:meth:`PastisDataset.load_patch`) or samples
labelled pixels and resamples their series onto one common date grid
(:meth:`PastisDataset.sample_pixels`), since T and the dates differ from patch to patch. Series
are returned as reflectance (0–1) with bands in the canonical PIMC order
``blue, green, red, rededge1, rededge2, rededge3, nir, nir08, swir1, swir2``
(:data:`BAND_NAMES`), ready for :func:`pimc_core.series.indices.compute_indices` via
:func:`band_mapping`.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pimc_core.errors import ConfigError, InputError
from pimc_core.series.gapfill import date_grid, resample_to_dates

__all__ = [
    "BAND_NAMES",
    "BACKGROUND",
    "OFFICIAL_SPLITS",
    "PASTIS_CLASSES",
    "PASTIS_COLORS",
    "REFLECTANCE_SCALE",
    "S2_BANDS",
    "VOID",
    "PastisDataset",
    "band_mapping",
    "class_table",
    "extract_patches",
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
PASTIS_COLORS: tuple[str, ...] = (
    "#000000", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf", "#ffffff",
)
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

_N_BANDS = len(S2_BANDS)


def class_table(exclude: Iterable[int] = ()) -> list[dict[str, Any]]:
    """``[{"id", "name", "color"}]`` for the PASTIS classes (the model-file ``classes`` schema).

    Args:
        exclude: Class ids to leave out (e.g. ``(0, 19)`` for a crops-only classifier).
    """
    skip = set(int(c) for c in exclude)
    return [
        {"id": i, "name": n, "color": c}
        for i, (n, c) in enumerate(zip(PASTIS_CLASSES, PASTIS_COLORS))
        if i not in skip
    ]


def band_mapping(series: Any, axis: int = -1) -> dict[str, Any]:
    """Split a 10-band array into ``{canonical band name: array}`` (views, no copy).

    Args:
        series: Array with the 10 PASTIS bands along ``axis``, e.g. ``(N, T, 10)`` from
            :meth:`PastisDataset.sample_pixels` (→ ``(N, T)`` per band) or ``(T, 10, H, W)`` from
            :meth:`PastisDataset.load_patch` with ``axis=1`` (→ ``(T, H, W)`` per band).
        axis: The band axis.

    Returns:
        Mapping suitable for :func:`pimc_core.series.indices.compute_indices`.
    """
    arr = np.asarray(series)
    if arr.ndim == 0 or arr.shape[axis] != _N_BANDS:
        raise InputError(f"expected {_N_BANDS} bands along axis {axis}; got shape {arr.shape}")
    return {name: np.take(arr, i, axis=axis) for i, name in enumerate(BAND_NAMES)}


def extract_patches(image: np.ndarray, rows: Any, cols: Any, size: int) -> np.ndarray:
    """The ``size × size`` window around each pixel, reflect-padded at the image borders.

    The window of pixel ``(r, c)`` covers rows ``r - size // 2 .. r - size // 2 + size - 1``
    (likewise for columns), so the pixel is at the centre for odd ``size`` and at index
    ``size // 2`` for even ``size``. Outside the image, values are mirrored without repeating
    the edge (``numpy.pad(mode="reflect")``; a 1-pixel-wide axis repeats its only value).

    Args:
        image: ``(C, H, W)`` array.
        rows: ``(N,)`` row indices.
        cols: ``(N,)`` column indices.
        size: Window side k >= 1.

    Returns:
        ``(N, C, k, k)`` array, dtype of ``image``.

    Raises:
        ConfigError: ``size`` < 1.
        InputError: ``image`` is not 3-D, or a row/column is outside the image.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"patch size must be an integer >= 1; got {size!r}")
    size = int(size)
    img = np.asarray(image)
    if img.ndim != 3:
        raise InputError(f"image must have shape (C, H, W); got {img.shape}")
    C, H, W = img.shape
    r = np.asarray(rows, dtype=np.int64).reshape(-1)
    c = np.asarray(cols, dtype=np.int64).reshape(-1)
    if r.shape != c.shape:
        raise InputError(f"rows and cols differ in length ({r.size} vs {c.size})")
    bad = (r < 0) | (r >= H) | (c < 0) | (c >= W)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"pixel (row {r[i]}, col {c[i]}) is outside the {H}x{W} image")
    before, after = size // 2, size - 1 - size // 2
    mode = "reflect" if min(H, W) > 1 else "edge"
    padded = np.pad(img, ((0, 0), (before, after), (before, after)), mode=mode)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(1, 2))  # (C, H, W, k, k)
    return np.ascontiguousarray(windows[:, r, c].transpose(1, 0, 2, 3))


# --------------------------------------------------------------------------------------------
# metadata parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Patch:
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


def _patch_id(value: Any, where: str) -> int | str:
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


def _parse_folds(folds: Any) -> tuple[int, ...]:
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


def _sort_key(pid: int | str) -> tuple[int, Any]:
    return (0, pid) if isinstance(pid, int) else (1, pid)


# --------------------------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------------------------


class PastisDataset:
    """The patches of some PASTIS folds.

    Args:
        root: PASTIS folder (holding ``metadata.geojson``, ``DATA_S2/``, ``ANNOTATIONS/``).
        folds: Fold numbers (1–5) or a split name ``"train"`` (1, 2, 3), ``"val"`` (4) or
            ``"test"`` (5).

    Attributes:
        root: The folder.
        folds: Selected folds.
        patch_ids: Ids of the selected patches, ascending.
        band_names: :data:`BAND_NAMES`.

    Raises:
        InputError: Missing folder / metadata / data file of a selected patch, unreadable or
            malformed metadata (the message names the file and patch).
        ConfigError: Bad ``folds``.
    """

    band_names: tuple[str, ...] = BAND_NAMES
    classes: tuple[str, ...] = PASTIS_CLASSES

    def __init__(self, root: str | Path, folds: Sequence[int] | int | str = (1, 2, 3)) -> None:
        self.root = Path(root)
        self.folds = _parse_folds(folds)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: PASTIS folder not found")
        meta_path = self.root / "metadata.geojson"
        if not meta_path.is_file():
            raise InputError(f"{meta_path}: PASTIS metadata file not found")
        for sub in ("DATA_S2", "ANNOTATIONS"):
            if not (self.root / sub).is_dir():
                raise InputError(f"{self.root / sub}: PASTIS folder not found")
        self._all = self._read_metadata(meta_path)
        selected = [p for p in self._all.values() if p.fold in self.folds]
        self._patches: dict[int | str, _Patch] = {
            p.id: p for p in sorted(selected, key=lambda p: _sort_key(p.id))
        }
        self.patch_ids: list[int | str] = list(self._patches)
        for pid in self.patch_ids:
            for path in (self._s2_path(pid), self._target_path(pid)):
                if not path.is_file():
                    raise InputError(f"{path}: data file of patch {pid} (fold {self._patches[pid].fold}) not found")
        self._labels: dict[int | str, np.ndarray] = {}

    # ---------------------------------------------------------------- metadata

    def _read_metadata(self, path: Path) -> dict[int | str, _Patch]:
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
        out: dict[int | str, _Patch] = {}
        for i, feat in enumerate(feats):
            props = feat.get("properties") if isinstance(feat, dict) else None
            if not isinstance(props, dict):
                raise InputError(f"{path}: feature {i} has no properties")
            for key in ("ID_PATCH", "Fold", "dates-S2"):
                if key not in props:
                    raise InputError(f"{path}: feature {i} lacks property '{key}'")
            pid = _patch_id(props["ID_PATCH"], f"{path}: feature {i}")
            where = f"{path}: patch {pid}"
            fold = props["Fold"]
            fold_i = _as_int(fold)
            if fold_i is None or not 1 <= fold_i <= 5:
                raise InputError(f"{where}: Fold must be 1-5; got {fold!r}")
            if pid in out:
                raise InputError(f"{where}: ID_PATCH appears twice")
            out[pid] = _Patch(pid, fold_i, _parse_dates(props["dates-S2"], where))
        if not out:
            raise InputError(f"{path}: no patch in metadata")
        return out

    def _get(self, patch_id: Any) -> _Patch:
        try:
            pid = _patch_id(patch_id, "patch id")
        except InputError:
            raise InputError(f"unknown PASTIS patch {patch_id!r}") from None
        if pid in self._patches:
            return self._patches[pid]
        if pid in self._all:
            raise InputError(
                f"PASTIS patch {pid} is in fold {self._all[pid].fold}, not in the selected folds "
                f"{', '.join(map(str, self.folds))}"
            )
        raise InputError(f"PASTIS patch {pid} is not in {self.root / 'metadata.geojson'}")

    def __len__(self) -> int:
        return len(self.patch_ids)

    def __repr__(self) -> str:
        return f"PastisDataset({str(self.root)!r}, folds={self.folds}, {len(self)} patches)"

    def fold(self, patch_id: Any) -> int:
        """Official fold (1–5) of a patch."""
        return self._get(patch_id).fold

    def dates(self, patch_id: Any) -> list[_dt.date]:
        """Acquisition dates of a patch's time steps, in file order (``T`` dates)."""
        return list(self._get(patch_id).dates)

    def date_span(self) -> tuple[_dt.date, _dt.date]:
        """(earliest, latest) acquisition date over the selected patches."""
        firsts = [min(p.dates) for p in self._patches.values()]
        lasts = [max(p.dates) for p in self._patches.values()]
        if not firsts:
            raise InputError(f"{self.root}: no patch in folds {', '.join(map(str, self.folds))}")
        return min(firsts), max(lasts)

    def default_dates(self, step_days: int = 10) -> list[_dt.date]:
        """A regular grid every ``step_days`` days over :meth:`date_span`."""
        start, end = self.date_span()
        return date_grid(start, end, step_days)

    # ---------------------------------------------------------------- files

    def _s2_path(self, pid: int | str) -> Path:
        return self.root / "DATA_S2" / f"S2_{pid}.npy"

    def _target_path(self, pid: int | str) -> Path:
        return self.root / "ANNOTATIONS" / f"TARGET_{pid}.npy"

    @staticmethod
    def _npy(path: Path, mmap: bool) -> np.ndarray:
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path}: not a readable .npy array ({str(exc).splitlines()[0]})") from None

    def _s2(self, p: _Patch) -> np.ndarray:
        """Memory-mapped (T, 10, H, W) array, checked against the metadata."""
        path = self._s2_path(p.id)
        arr = self._npy(path, mmap=True)
        if arr.ndim != 4 or arr.shape[1] != _N_BANDS:
            raise InputError(f"{path}: expected an array (T, {_N_BANDS}, H, W); got shape {arr.shape}")
        if arr.dtype.kind not in "iuf":
            raise InputError(f"{path}: expected numeric reflectance DNs; got dtype {arr.dtype}")
        if arr.shape[0] != len(p.dates):
            raise InputError(
                f"{path}: {arr.shape[0]} time steps, but metadata.geojson lists {len(p.dates)} "
                f"dates-S2 for patch {p.id}"
            )
        return arr

    def labels(self, patch_id: Any) -> np.ndarray:
        """Semantic class of each pixel, ``(H, W)`` int64."""
        return self._compact_labels(self._get(patch_id)).astype(np.int64)

    def _compact_labels(self, p: _Patch) -> np.ndarray:
        """(H, W) labels in the smallest unsigned dtype, cached (a few MB for all of PASTIS)."""
        if p.id not in self._labels:
            path = self._target_path(p.id)
            arr = self._npy(path, mmap=False)
            if arr.ndim == 3:
                arr = arr[0]
            if arr.ndim != 2:
                raise InputError(f"{path}: expected a (3, H, W) or (H, W) label array; got shape {arr.shape}")
            if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(arr == np.round(arr))):
                raise InputError(f"{path}: labels must be integer class ids; got dtype {arr.dtype}")
            if arr.size and arr.min() < 0:
                raise InputError(f"{path}: negative class id {int(arr.min())}")
            top = int(arr.max()) if arr.size else 0
            dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int64
            self._labels[p.id] = np.ascontiguousarray(arr, dtype=dtype)
        return self._labels[p.id]

    def _labels_for(self, p: _Patch, shape: tuple[int, int]) -> np.ndarray:
        y = self._compact_labels(p)
        if y.shape != tuple(shape):
            raise InputError(
                f"{self._target_path(p.id)}: labels are {y.shape[0]}x{y.shape[1]} but the S2 data "
                f"of patch {p.id} is {shape[0]}x{shape[1]}"
            )
        return y

    # ---------------------------------------------------------------- whole patches

    def load_patch(self, patch_id: Any) -> tuple[np.ndarray, np.ndarray, list[_dt.date]]:
        """One patch's full time series and labels.

        Args:
            patch_id: A selected patch id.

        Returns:
            ``(x, y, dates)``: ``x`` ``(T, 10, H, W)`` float32 reflectance (bands as
            :data:`BAND_NAMES`), ``y`` ``(H, W)`` int64 class ids, ``dates`` the ``T``
            acquisition dates (chronological; time steps are reordered if the metadata lists
            them out of order).

        Raises:
            InputError: Unknown patch, patch not in the selected folds, unreadable or malformed
                files, number of time steps ≠ number of metadata dates.
        """
        p = self._get(patch_id)
        arr = self._s2(p)
        x = np.asarray(arr, dtype=np.float32) * np.float32(REFLECTANCE_SCALE)
        y = self._labels_for(p, arr.shape[2:]).astype(np.int64)
        dates = list(p.dates)
        order = sorted(range(len(dates)), key=lambda i: dates[i])
        if order != list(range(len(dates))):
            x = x[order]
            dates = [dates[i] for i in order]
        return x, y, dates

    def reference_image(self, patch_id: Any) -> np.ndarray:
        """Temporal median of a patch's stack: ``(10, H, W)`` float32 reflectance.

        A cloud-robust single image of the patch, the source of :meth:`patches`.
        """
        p = self._get(patch_id)
        arr = self._s2(p)
        return (np.median(np.asarray(arr), axis=0) * REFLECTANCE_SCALE).astype(np.float32)

    def patches(self, patch_ids: Any, rows: Any, cols: Any, size: int) -> np.ndarray:
        """The ``size × size`` image patch around each pixel, from its patch's reference image.

        Args:
            patch_ids: ``(N,)`` patch id of each pixel (a single id is broadcast).
            rows: ``(N,)`` rows.
            cols: ``(N,)`` columns.
            size: Window side k (see :func:`extract_patches` for even k and border handling:
                reflect padding).

        Returns:
            ``(N, 10, k, k)`` float32 reflectance from :meth:`reference_image`.
        """
        r = np.asarray(rows, dtype=np.int64).reshape(-1)
        c = np.asarray(cols, dtype=np.int64).reshape(-1)
        ids = np.asarray(patch_ids, dtype=object).reshape(-1)
        if ids.size == 1:
            ids = np.repeat(ids, r.size)
        if not (ids.size == r.size == c.size):
            raise InputError(f"patch_ids, rows and cols differ in length ({ids.size}, {r.size}, {c.size})")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ConfigError(f"patch size must be an integer >= 1; got {size!r}")
        out = np.empty((r.size, _N_BANDS, int(size), int(size)), dtype=np.float32)
        keys = [self._get(i).id for i in ids]
        groups: dict[int | str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        for k, idx in groups.items():
            sel = np.asarray(idx)
            out[sel] = extract_patches(self.reference_image(k), r[sel], c[sel], size)
        return out

    # ---------------------------------------------------------------- pixel sampling

    def sample_pixels(
        self,
        n: int | None = None,
        *,
        seed: int = 0,
        exclude_classes: Iterable[int] = (BACKGROUND, VOID),
        per_class: int | None = None,
        target_dates: Sequence[_dt.date] | None = None,
        step_days: int = 10,
        patch_size: int | None = None,
        min_valid: int = 3,
    ) -> dict[str, Any]:
        """Draw labelled pixels and resample their series onto one common date grid.

        Pixels are drawn without replacement, uniformly over all pixels of the selected
        patches whose class is not excluded (``n`` in total), or class-balanced (up to
        ``per_class`` of each class). The draw depends only on ``seed`` and the data.

        Each pixel's 10-band series (on its patch's own T dates) is interpolated linearly in
        time onto ``target_dates`` with :func:`pimc_core.series.gapfill.resample_to_dates` (dates
        outside the patch's acquisitions take the nearest observation; nothing is
        extrapolated). Observations whose 10 bands are all 0 are treated as no-data.

        Args:
            n: Number of pixels in total (all eligible pixels if fewer). Give ``n`` or
                ``per_class``, not both.
            seed: Random seed.
            exclude_classes: Class ids never sampled (default background 0 and void 19).
            per_class: Class-balanced draw: up to this many pixels of each present class.
            target_dates: Output dates (strictly increasing); default :meth:`default_dates`
                with ``step_days``.
            step_days: Spacing of the default grid.
            patch_size: Also return the ``k × k`` image patch around each pixel (from
                :meth:`reference_image`, reflect-padded at borders).
            min_valid: Pixels with fewer valid observations are dropped.

        Returns:
            Dict with ``series`` ``(N, T_grid, 10)`` float32 reflectance (bands as
            ``band_names``), ``labels`` ``(N,)`` int64, ``patch_ids`` ``(N,)`` (int64 for
            numeric ids), ``rows`` / ``cols`` ``(N,)`` int64, ``dates`` (the ``T_grid`` dates),
            ``band_names`` (:data:`BAND_NAMES`) and, with ``patch_size``, ``patches``
            ``(N, 10, k, k)`` float32. Pixels are ordered by patch, then row-major.

        Raises:
            ConfigError: Both or neither of ``n`` / ``per_class``, non-positive counts.
            InputError: No eligible pixel; malformed files (see :meth:`load_patch`).
        """
        if (n is None) == (per_class is None):
            raise ConfigError("sample_pixels: give either n (total pixels) or per_class, not both")
        for name, val in (("n", n), ("per_class", per_class), ("patch_size", patch_size)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1):
                raise ConfigError(f"sample_pixels: {name} must be an integer >= 1; got {val!r}")
        excluded = {int(c) for c in exclude_classes}
        if not self._patches:
            raise InputError(f"{self.root}: no patch in folds {', '.join(map(str, self.folds))}")
        if target_dates is None:
            target = self.default_dates(step_days)
        else:
            target = list(target_dates)
            if not target:
                raise InputError("sample_pixels: target_dates is empty")
        rng = np.random.default_rng(seed)

        patches = list(self._patches.values())
        shapes = [self._s2(p).shape[2:] for p in patches]
        labels = [self._labels_for(p, s).reshape(-1) for p, s in zip(patches, shapes)]
        n_cls = max(int(y.max()) + 1 if y.size else 0 for y in labels)
        hist = np.stack([np.bincount(y, minlength=n_cls) for y in labels])  # (P, n_cls)
        for c in excluded:
            if 0 <= c < n_cls:
                hist[:, c] = 0
        if hist.sum() == 0:
            raise InputError(
                f"{self.root}: no pixel to sample in folds {self.folds} outside classes {sorted(excluded)}"
            )

        chosen: list[list[np.ndarray]] = [[] for _ in patches]  # flat pixel indices per patch

        def draw(counts: np.ndarray, k: int, cls: int | None) -> None:
            total = int(counts.sum())
            k = min(k, total)
            if k == 0:
                return
            ranks = np.sort(rng.choice(total, size=k, replace=False))
            cum = np.cumsum(counts)
            which = np.searchsorted(cum, ranks, side="right")
            local = ranks - (cum - counts)[which]
            for pi in np.unique(which):
                y = labels[pi]
                mask = ~np.isin(y, sorted(excluded)) if cls is None else (y == cls)
                chosen[pi].append(np.flatnonzero(mask)[local[which == pi]])

        if per_class is None:
            draw(hist.sum(axis=1), int(n), None)
        else:
            for cls in np.flatnonzero(hist.sum(axis=0)):
                draw(hist[:, cls], int(per_class), int(cls))

        numeric = all(isinstance(p.id, int) for p in patches)
        out_series, out_lab, out_pid, out_r, out_c, out_patch = [], [], [], [], [], []
        for pi, p in enumerate(patches):
            if not chosen[pi]:
                continue
            flat = np.sort(np.concatenate(chosen[pi]))
            H, W = shapes[pi]
            rows, cols = np.divmod(flat, W)
            arr = self._s2(p)
            vals = np.asarray(arr[:, :, rows, cols], dtype=np.float32)  # (T, 10, m)
            nodata = np.all(vals == 0, axis=1, keepdims=True)  # (T, 1, m)
            vals = np.where(nodata, np.float32(np.nan), vals * np.float32(REFLECTANCE_SCALE))
            dates, vals = _chronological(list(p.dates), vals)
            res = resample_to_dates(vals.transpose(2, 1, 0), dates, target, min_valid=min_valid)  # (m, 10, Tg)
            ok = res.ok.all(axis=1)
            out_series.append(res.values[ok].transpose(0, 2, 1))
            out_lab.append(labels[pi][flat[ok]].astype(np.int64))
            out_pid.append(np.full(int(ok.sum()), p.id, dtype=np.int64 if numeric else object))
            out_r.append(rows[ok])
            out_c.append(cols[ok])
            if patch_size is not None:
                out_patch.append(extract_patches(self.reference_image(p.id), rows[ok], cols[ok], int(patch_size)))

        def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(shape, dtype=dtype)

        result: dict[str, Any] = {
            "series": np.ascontiguousarray(cat(out_series, (0, len(target), _N_BANDS), np.float32), dtype=np.float32),
            "labels": cat(out_lab, (0,), np.int64).astype(np.int64),
            "patch_ids": cat(out_pid, (0,), np.int64 if numeric else object),
            "rows": cat(out_r, (0,), np.int64).astype(np.int64),
            "cols": cat(out_c, (0,), np.int64).astype(np.int64),
            "dates": target,
            "band_names": BAND_NAMES,
        }
        if patch_size is not None:
            result["patches"] = cat(out_patch, (0, _N_BANDS, int(patch_size), int(patch_size)), np.float32)
        return result


def _chronological(dates: list[_dt.date], vals: np.ndarray) -> tuple[list[_dt.date], np.ndarray]:
    """Sort time steps (axis 0) by date and average observations sharing a date (NaN-aware)."""
    order = sorted(range(len(dates)), key=lambda i: dates[i])
    if order != list(range(len(dates))):
        dates = [dates[i] for i in order]
        vals = vals[order]
    uniq = sorted(set(dates))
    if len(uniq) == len(dates):
        return dates, vals
    merged = np.empty((len(uniq),) + vals.shape[1:], dtype=vals.dtype)
    pos = {d: i for i, d in enumerate(uniq)}
    groups: dict[int, list[int]] = {}
    for t, d in enumerate(dates):
        groups.setdefault(pos[d], []).append(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups stay NaN
        for u, ts in groups.items():
            merged[u] = np.nanmean(vals[ts], axis=0) if len(ts) > 1 else vals[ts[0]]
    return uniq, merged
