"""EuroSAT (Helber et al. 2019): 27 000 Sentinel-2 patches of 64×64 px in 10 land-cover classes.

On-disk layout: one folder per class, named as in :data:`EUROSAT_CLASSES`, holding the images
of that class::

    ROOT/AnnualCrop/AnnualCrop_1.tif   ...   ROOT/SeaLake/SeaLake_3000.tif

Two variants are read:

* ``"ms"`` — EuroSATallBands: 13-band GeoTIFFs (``.tif``), uint16 digital numbers of Sentinel-2
  Level-1C (top-of-atmosphere, no atmospheric correction) reflectance × 10 000, all bands
  up-sampled to 10 m. Returned as reflectance ``DN / 10 000``.

  Band order in the files (:data:`EUROSAT_MS_BANDS`): B01, B02, B03, B04, B05, B06, B07, B08,
  B09, B10, B11, B12, **B8A last** — not the wavelength order B08, B8A, B09 … that the EuroSAT
  paper lists. Evidence: phelber/EuroSAT issue #7 (closed by the author without objection),
  the per-channel means of the files (channel 9 ≈ 5 DN fits the cirrus band B10, not B09;
  channel 12 ≈ 1230 DN fits a NIR band), and TorchGeo's fix (torchgeo issue #2458, PR #2480).
  Select bands by name (``bands=["red", "nir08"]``) rather than by position.
* ``"rgb"`` — EuroSAT RGB: 8-bit JPEGs (``.jpg``) rendered from B04, B03, B02. Returned as
  ``value / 255`` in channel order red, green, blue. These are display values, not
  reflectance: do not compute vegetation indices from them.

``root`` may also be a folder above the class folders when every level down to them holds a
single folder (as in the archives: ``2750/`` for RGB,
``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/`` for the multispectral variant).
GeoTIFFs are read with rasterio, JPEGs with Pillow.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pimc_core.errors import BandError, ConfigError, InputError

__all__ = [
    "EUROSAT_CLASSES",
    "EUROSAT_MS_BANDS",
    "EUROSAT_RGB_BANDS",
    "EuroSATDataset",
    "stratified_split",
]

EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)
#: Band of each channel of the multispectral GeoTIFFs.
EUROSAT_MS_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)
#: Channels of the RGB JPEGs.
EUROSAT_RGB_BANDS: tuple[str, ...] = ("red", "green", "blue")
#: Canonical PIMC name of the Sentinel-2 bands that have one.
_S2_CANONICAL: dict[str, str] = {
    "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
    "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B11": "swir1", "B12": "swir2",
}
_CANONICAL_S2 = {v: k for k, v in _S2_CANONICAL.items()}
PATCH_SIZE = 64
_MS_SUFFIXES = (".tif", ".tiff")
_RGB_SUFFIXES = (".jpg", ".jpeg")
# Ignored everywhere: OS / archive litter.
_IGNORED_FILES = {"thumbs.db", "desktop.ini"}


def _ignored(p: Path) -> bool:
    return p.name.startswith((".", "__")) or p.name.lower() in _IGNORED_FILES


def _ms_band_id(name: str) -> str | None:
    """'B8A', 'b08a', 'B2', 'B02', 'nir', ... → the EuroSAT band id, or None."""
    s = str(name).strip()
    low = s.lower()
    if low in _CANONICAL_S2:
        return _CANONICAL_S2[low]
    up = s.upper()
    if up in ("B8A", "B08A"):
        return "B8A"
    if up.startswith("B") and up[1:].isdigit():
        cand = f"B{int(up[1:]):02d}"
        if cand in EUROSAT_MS_BANDS:
            return cand
    return None


def stratified_split(labels: Any, train: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split of sample indices.

    Within each class, ``round(train * n_class)`` samples (at least 1 on each side when the
    class has 2 or more) go to the first part, chosen by a permutation seeded with
    ``(seed, class id)`` — so a class's split does not depend on the other classes.

    Args:
        labels: ``(N,)`` integer class of each sample.
        train: Fraction in ``(0, 1)`` of each class going to the first part.
        seed: Random seed.

    Returns:
        ``(train_idx, test_idx)``: sorted int64 index arrays partitioning ``0..N-1``.

    Raises:
        ConfigError: ``train`` not strictly between 0 and 1.
    """
    if isinstance(train, bool) or not isinstance(train, (int, float)) or not 0 < train < 1:
        raise ConfigError(f"split: train must be a fraction strictly between 0 and 1; got {train!r}")
    y = np.asarray(labels).reshape(-1)
    tr, te = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        perm = idx[np.random.default_rng([int(seed) & 0xFFFFFFFF, int(cls) & 0xFFFFFFFF]).permutation(idx.size)]
        k = int(round(train * idx.size))
        if idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        tr.append(perm[:k])
        te.append(perm[k:])
    cat = lambda parts: np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.empty(0, np.int64)  # noqa: E731
    return cat(tr), cat(te)


class EuroSATDataset:
    """The EuroSAT images under a folder.

    Args:
        root: Folder holding the class folders (or a chain of single folders above it).
        variant: ``"ms"`` (13-band GeoTIFFs), ``"rgb"`` (JPEGs) or ``"auto"`` (from the files).
        bands: Channels to return, in this order. For ``"ms"``: band ids (``"B04"``, ``"B4"``,
            ``"B8A"``) or canonical names (``"red"``, ``"nir"``, ``"nir08"``); for ``"rgb"``:
            ``"red"``, ``"green"``, ``"blue"``. Default: all, in file order.
        classes: Class names defining the label ids (default: the class folders present, in
            :data:`EUROSAT_CLASSES` order). Folders must be among them; a listed class may
            have no folder (no sample).

    Attributes:
        root: The folder holding the class folders.
        variant: ``"ms"`` or ``"rgb"``.
        classes: Class names; ``labels`` index into it.
        files: Image paths, sorted by class then name.
        labels: ``(N,)`` int64 class id of each file.
        bands: Sensor band id of each returned channel (``"B02"`` …, or ``"red"`` … for RGB).
        band_names: Canonical PIMC name of each channel where one exists (``"blue"``,
            ``"nir"`` …), else the band id (``"B01"``, ``"B09"``, ``"B10"``).

    Raises:
        InputError: Missing or empty root, unknown class folders (named), files that are not
            images of the variant (named), mixed variants.
        ConfigError / BandError: Bad ``variant`` / unknown band names.
    """

    size = PATCH_SIZE

    def __init__(
        self,
        root: str | Path,
        variant: str = "auto",
        bands: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        if variant not in ("auto", "ms", "rgb"):
            raise ConfigError(f"EuroSAT variant must be 'auto', 'ms' or 'rgb'; got {variant!r}")
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"{root}: EuroSAT folder not found")
        known = list(classes) if classes is not None else list(EUROSAT_CLASSES)
        if classes is not None:
            bad = [c for c in known if not isinstance(c, str) or not c]
            if bad or len(set(known)) != len(known):
                raise ConfigError(f"EuroSAT classes must be distinct non-empty names; got {list(classes)!r}")
        self.root = self._find_class_root(root, set(known))

        subdirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not _ignored(p))
        unknown = [p.name for p in subdirs if p.name not in known]
        if unknown:
            raise InputError(
                f"{self.root}: unknown class folder(s) {', '.join(unknown)} "
                f"(EuroSAT classes: {', '.join(known)})"
            )
        present = {p.name for p in subdirs}
        self.classes: list[str] = list(known) if classes is not None else [c for c in known if c in present]

        files: list[Path] = []
        labels: list[int] = []
        suffixes: set[str] = set()
        for cid, name in enumerate(self.classes):
            folder = self.root / name
            if not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                if _ignored(f):
                    continue
                if f.is_dir():
                    raise InputError(f"{f}: unexpected folder inside class folder {name}")
                suf = f.suffix.lower()
                if suf not in _MS_SUFFIXES + _RGB_SUFFIXES:
                    raise InputError(f"{f}: not a EuroSAT image (expected .tif or .jpg)")
                suffixes.add("ms" if suf in _MS_SUFFIXES else "rgb")
                files.append(f)
                labels.append(cid)
        if not files:
            raise InputError(f"{self.root}: no EuroSAT image found (expected class folders of .tif or .jpg files)")
        if len(suffixes) > 1:
            raise InputError(f"{self.root}: mixes GeoTIFF (multispectral) and JPEG (RGB) images; keep one variant")
        found = suffixes.pop()
        if variant != "auto" and variant != found:
            kind = {"ms": "13-band GeoTIFFs (.tif)", "rgb": "RGB JPEGs (.jpg)"}
            raise InputError(f"{self.root}: variant '{variant}' requested but the folder holds {kind[found]}")
        self.variant: str = found
        self.files: list[Path] = files
        self.labels: np.ndarray = np.asarray(labels, dtype=np.int64)
        self._band_index, self.bands = self._select_bands(bands)
        self.band_names: tuple[str, ...] = tuple(_S2_CANONICAL.get(b, b) for b in self.bands)

    # ---------------------------------------------------------------- setup helpers

    @staticmethod
    def _find_class_root(root: Path, known: set[str]) -> Path:
        """Descend through single-folder levels until a folder holds class folders or files."""
        cur = root
        for _ in range(8):
            entries = [p for p in cur.iterdir() if not _ignored(p)]
            dirs = [p for p in entries if p.is_dir()]
            if any(p.name in known for p in dirs) or len(dirs) != 1 or len(entries) != 1:
                break
            if not any(q.is_dir() and not _ignored(q) for q in dirs[0].iterdir()):
                break  # a lone folder of files: let the caller name it as an unknown class
            cur = dirs[0]
        entries = [p for p in cur.iterdir() if not _ignored(p)]
        if not entries:
            raise InputError(f"{root}: EuroSAT folder is empty")
        return cur

    def _select_bands(self, bands: Sequence[str] | None) -> tuple[list[int], tuple[str, ...]]:
        all_bands = EUROSAT_MS_BANDS if self.variant == "ms" else EUROSAT_RGB_BANDS
        if bands is None:
            return list(range(len(all_bands))), tuple(all_bands)
        if isinstance(bands, str):
            bands = [bands]
        idx, ids = [], []
        for b in bands:
            bid = _ms_band_id(b) if self.variant == "ms" else str(b).strip().lower()
            if bid not in all_bands:
                raise BandError(
                    f"EuroSAT {self.variant} has no band {b!r} (available: {', '.join(all_bands)}"
                    + (", or canonical names blue, green, red, rededge1-3, nir, nir08, swir1, swir2)"
                       if self.variant == "ms" else ")")
                )
            if bid in ids:
                raise ConfigError(f"EuroSAT bands: {b!r} requested twice")
            idx.append(all_bands.index(bid))
            ids.append(bid)
        if not ids:
            raise ConfigError("EuroSAT bands: empty band list")
        return idx, tuple(ids)

    # ---------------------------------------------------------------- access

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        sizes = f"{len(self)} images, {len(self.classes)} classes, {len(self.bands)} bands"
        return f"EuroSATDataset({str(self.root)!r}, variant={self.variant!r}, {sizes})"

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """Image ``i``: ``(x, y)`` with ``x`` ``(C, 64, 64)`` float32 and ``y`` its class id.

        Raises:
            IndexError: ``i`` out of range.
            InputError: The file is not a readable image of the variant, has the wrong band
                count or size (the message names the file).
        """
        n = len(self.files)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"EuroSAT index must be an integer; got {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"EuroSAT index {i} out of range for {n} images")
        i = int(i) % n
        path = self.files[i]
        x = self._read_ms(path) if self.variant == "ms" else self._read_rgb(path)
        return x, int(self.labels[i])

    def _read_ms(self, path: Path) -> np.ndarray:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as src:
                    count, h, w = src.count, src.height, src.width
                    if count != len(EUROSAT_MS_BANDS):
                        raise InputError(
                            f"{path}: {count} band(s); EuroSAT multispectral images have "
                            f"{len(EUROSAT_MS_BANDS)} ({', '.join(EUROSAT_MS_BANDS)})"
                        )
                    self._check_size(path, h, w)
                    data = src.read([k + 1 for k in self._band_index])
        except RasterioIOError as exc:
            raise InputError(f"{path}: not a readable GeoTIFF ({str(exc).splitlines()[0]})") from None
        if data.dtype.kind not in "iuf":
            raise InputError(f"{path}: unexpected data type {data.dtype}")
        return data.astype(np.float32) * np.float32(1e-4)

    def _read_rgb(self, path: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                img.load()
                mode, (w, h) = img.mode, img.size
                if mode != "RGB":
                    nb = len(img.getbands())
                    raise InputError(f"{path}: {nb} band(s) ({mode}); EuroSAT RGB images have 3 (RGB)")
                self._check_size(path, h, w)
                arr = np.asarray(img, dtype=np.uint8)  # (H, W, 3)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise InputError(f"{path}: not a readable JPEG image ({exc})") from None
        return np.ascontiguousarray(arr.transpose(2, 0, 1)[self._band_index], dtype=np.float32) / np.float32(255.0)

    def _check_size(self, path: Path, h: int, w: int) -> None:
        if (h, w) != (self.size, self.size):
            raise InputError(f"{path}: {w}x{h} px; EuroSAT images are {self.size}x{self.size}")

    def load_all(
        self,
        max_per_class: int | None = None,
        seed: int = 0,
        indices: Sequence[int] | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read many images into one array.

        Args:
            max_per_class: At most this many images per class, a random subset drawn with
                ``seed`` (from ``indices`` when given).
            seed: Random seed for ``max_per_class``.
            indices: Only these images (e.g. from :meth:`split`); default all.

        Returns:
            ``(X, y)``: ``X`` ``(N, C, 64, 64)`` float32, ``y`` ``(N,)`` int64, in index order.

        Raises:
            InputError: An unreadable or malformed image (named).
        """
        idx = np.arange(len(self), dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise InputError(f"load_all: index out of range 0..{len(self) - 1}")
        if max_per_class is not None:
            if isinstance(max_per_class, bool) or not isinstance(max_per_class, (int, np.integer)) or max_per_class < 1:
                raise ConfigError(f"max_per_class must be an integer >= 1; got {max_per_class!r}")
            rng = np.random.default_rng(seed)
            keep = []
            for cls in np.unique(self.labels[idx]):
                members = idx[self.labels[idx] == cls]
                if members.size > max_per_class:
                    members = rng.choice(members, size=int(max_per_class), replace=False)
                keep.append(members)
            idx = np.sort(np.concatenate(keep)) if keep else idx
        X = np.empty((idx.size, len(self.bands), self.size, self.size), dtype=np.float32)
        for j, i in enumerate(idx):
            X[j] = self[int(i)][0]
        return X, self.labels[idx].copy()

    def split(self, train: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic stratified split: ``(train_idx, test_idx)`` (see :func:`stratified_split`)."""
        return stratified_split(self.labels, train=train, seed=seed)
