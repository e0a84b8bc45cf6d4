"""PASTIS (Sainte Fare Garnot & Landrieu, ICCV 2021): Sentinel-2 time series of 128×128-px
patches over France with per-pixel crop-type labels.

The on-disk format (``metadata.geojson``, ``DATA_S2/S2_{ID}.npy``, ``ANNOTATIONS/TARGET_{ID}.npy``),
the classes, band order and official folds are described in
:mod:`pimc_core.datasets.pastis_format` (its constants are re-exported here).

:class:`PastisDataset` loads whole patches (:meth:`PastisDataset.load_patch`) or samples
labelled pixels and resamples their series onto one common date grid
(:meth:`PastisDataset.sample_pixels`, :mod:`pimc_core.datasets.pastis_sampling`), since T and
the dates differ from patch to patch. Series are returned as reflectance (0–1) with bands in
the canonical PIMC order ``blue, green, red, rededge1, rededge2, rededge3, nir, nir08, swir1,
swir2`` (:data:`BAND_NAMES`), ready for :func:`pimc_core.series.indices.compute_indices` via
:func:`band_mapping`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimc_core.datasets.pastis_format import (
    BACKGROUND,
    BAND_NAMES,
    N_BANDS,
    OFFICIAL_SPLITS,
    PASTIS_CLASSES,
    PASTIS_COLORS,
    REFLECTANCE_SCALE,
    S2_BANDS,
    VOID,
    Patch,
    parse_folds,
    parse_patch_id,
    read_metadata,
    sort_key,
)
from pimc_core.datasets.pastis_sampling import sample_pixels
from pimc_core.datasets.patches import extract_patches
from pimc_core.errors import ConfigError, InputError
from pimc_core.series.gapfill import date_grid

__all__ = [
    "BACKGROUND",
    "BAND_NAMES",
    "OFFICIAL_SPLITS",
    "PASTIS_CLASSES",
    "PASTIS_COLORS",
    "REFLECTANCE_SCALE",
    "S2_BANDS",
    "VOID",
    "PastisDataset",
    "band_mapping",
    "class_table",
]


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
    if arr.ndim == 0 or arr.shape[axis] != N_BANDS:
        raise InputError(f"expected {N_BANDS} bands along axis {axis}; got shape {arr.shape}")
    return {name: np.take(arr, i, axis=axis) for i, name in enumerate(BAND_NAMES)}


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
        self.folds = parse_folds(folds)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: PASTIS folder not found")
        meta_path = self.root / "metadata.geojson"
        if not meta_path.is_file():
            raise InputError(f"{meta_path}: PASTIS metadata file not found")
        for sub in ("DATA_S2", "ANNOTATIONS"):
            if not (self.root / sub).is_dir():
                raise InputError(f"{self.root / sub}: PASTIS folder not found")
        self._all = read_metadata(meta_path)
        selected = [p for p in self._all.values() if p.fold in self.folds]
        self._patches: dict[int | str, Patch] = {
            p.id: p for p in sorted(selected, key=lambda p: sort_key(p.id))
        }
        self.patch_ids: list[int | str] = list(self._patches)
        for pid in self.patch_ids:
            for path in (self._s2_path(pid), self._target_path(pid)):
                if not path.is_file():
                    raise InputError(f"{path}: data file of patch {pid} (fold {self._patches[pid].fold}) not found")
        self._labels: dict[int | str, np.ndarray] = {}

    # ---------------------------------------------------------------- metadata

    def _get(self, patch_id: Any) -> Patch:
        try:
            pid = parse_patch_id(patch_id, "patch id")
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

    def _s2(self, p: Patch) -> np.ndarray:
        """Memory-mapped (T, 10, H, W) array, checked against the metadata."""
        path = self._s2_path(p.id)
        arr = self._npy(path, mmap=True)
        if arr.ndim != 4 or arr.shape[1] != N_BANDS:
            raise InputError(f"{path}: expected an array (T, {N_BANDS}, H, W); got shape {arr.shape}")
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

    def _compact_labels(self, p: Patch) -> np.ndarray:
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

    def _labels_for(self, p: Patch, shape: tuple[int, int]) -> np.ndarray:
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
        out = np.empty((r.size, N_BANDS, int(size), int(size)), dtype=np.float32)
        keys = [self._get(i).id for i in ids]
        groups: dict[int | str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        for k, idx in groups.items():
            sel = np.asarray(idx)
            out[sel] = extract_patches(self.reference_image(k), r[sel], c[sel], size)
        return out

    # ---------------------------------------------------------------- pixel sampling

    sample_pixels = sample_pixels
